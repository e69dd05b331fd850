//go:build !linux

package main

import "errors"

func loopbackUp() error { return errors.New("network namespaces are Linux's") }
