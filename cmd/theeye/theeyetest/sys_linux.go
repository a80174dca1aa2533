package theeyetest

import "syscall"

// sysProcAttr makes the kernel kill a child when its parent dies, even by
// SIGKILL, so no node outlives the test or the benchmark that started it.
func sysProcAttr() *syscall.SysProcAttr {
	return &syscall.SysProcAttr{Pdeathsig: syscall.SIGKILL}
}
