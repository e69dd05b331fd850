package sandboxhost

import (
	"os"
	"sync"
	"syscall"
)

var isolation struct {
	sync.Mutex
	off bool
}

// isolationPossible reports whether children may get a network namespace
// of their own: as root (CAP_SYS_ADMIN), or through a user namespace.
func isolationPossible() bool {
	isolation.Lock()
	defer isolation.Unlock()
	return !isolation.off
}

// noIsolation records that starting a namespaced child failed.
func noIsolation(error) {
	isolation.Lock()
	isolation.off = true
	isolation.Unlock()
}

// isolateAttr puts a child in a new network namespace; a host that is
// not root needs a user namespace for that, mapping its own user.
func isolateAttr(a *syscall.SysProcAttr) {
	a.Cloneflags |= syscall.CLONE_NEWNET
	if os.Geteuid() != 0 {
		a.Cloneflags |= syscall.CLONE_NEWUSER
		a.UidMappings = []syscall.SysProcIDMap{{ContainerID: os.Geteuid(), HostID: os.Geteuid(), Size: 1}}
		a.GidMappings = []syscall.SysProcIDMap{{ContainerID: os.Getegid(), HostID: os.Getegid(), Size: 1}}
		a.GidMappingsEnableSetgroups = false
	}
}

// setDeathSignal kills a child when the host dies.
func setDeathSignal(a *syscall.SysProcAttr) { a.Pdeathsig = syscall.SIGKILL }
