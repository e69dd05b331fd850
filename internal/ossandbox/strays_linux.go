package ossandbox

import (
	"bytes"
	"os"
	"strconv"
	"syscall"
)

// prSetChildSubreaper is prctl's PR_SET_CHILD_SUBREAPER (linux/prctl.h).
const prSetChildSubreaper = 36

// becomeSubreaper makes this process the subreaper of its descendants: an
// orphan among them is reparented here instead of to init, so a process
// that left its command's group is still found, as a child of this one.
func becomeSubreaper() error {
	if _, _, errno := syscall.RawSyscall(syscall.SYS_PRCTL, prSetChildSubreaper, 1, 0); errno != 0 {
		return os.NewSyscallError("prctl(PR_SET_CHILD_SUBREAPER)", errno)
	}
	return nil
}

// killStrays kills and reaps each child of this process that is in no
// running command's process group: a process that left its group, or one
// of a killed group reparented here (a zombie to reap). Command leaders
// are never touched: their groups are live until exec has waited for them.
func (s *Sandbox) killStrays() {
	ents, err := os.ReadDir("/proc")
	if err != nil {
		return
	}
	me := os.Getpid()
	s.liveMu.Lock()
	defer s.liveMu.Unlock()
	for _, e := range ents {
		pid, err := strconv.Atoi(e.Name())
		if err != nil {
			continue
		}
		ppid, pgrp, ok := procParent(pid)
		if !ok || ppid != me || s.live[pgrp] > 0 {
			continue
		}
		// Its group too when it leads one (setsid): the processes it
		// started there. Never a group it merely joined, which may be
		// anyone's.
		if pgrp == pid {
			_ = syscall.Kill(-pgrp, syscall.SIGKILL)
		}
		_ = syscall.Kill(pid, syscall.SIGKILL)
		// Dead already: reaped now; else at the next pass.
		var ws syscall.WaitStatus
		_, _ = syscall.Wait4(pid, &ws, syscall.WNOHANG, nil)
	}
}

// procParent reads the parent and the process group of pid from
// /proc/PID/stat ("pid (comm) state ppid pgrp ..."; comm may hold spaces
// and parentheses, so the fields count from the last ')').
func procParent(pid int) (ppid, pgrp int, ok bool) {
	b, err := os.ReadFile("/proc/" + strconv.Itoa(pid) + "/stat")
	if err != nil {
		return 0, 0, false
	}
	i := bytes.LastIndexByte(b, ')')
	if i < 0 {
		return 0, 0, false
	}
	f := bytes.Fields(b[i+1:])
	if len(f) < 3 {
		return 0, 0, false
	}
	ppid, err1 := strconv.Atoi(string(f[1]))
	pgrp, err2 := strconv.Atoi(string(f[2]))
	return ppid, pgrp, err1 == nil && err2 == nil
}
