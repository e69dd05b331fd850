//go:build !linux

package sandboxhost

import "syscall"

func isolationPossible() bool             { return false }
func noIsolation(error)                   {}
func isolateAttr(*syscall.SysProcAttr)    {}
func setDeathSignal(*syscall.SysProcAttr) {}
