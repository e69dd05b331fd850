//go:build !linux

package sandboxd

import "errors"

func loopbackUp() error { return errors.New("network namespaces are Linux's") }
