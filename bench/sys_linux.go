package bench

import (
	"io/fs"
	"os"
	"syscall"
)

// sysProcAttr makes the kernel kill a child when the suite dies, even by
// SIGKILL, so no node outlives a run.
func sysProcAttr() *syscall.SysProcAttr {
	return &syscall.SysProcAttr{Pdeathsig: syscall.SIGKILL}
}

func allocatedBytes(info fs.FileInfo) int64 {
	if st, ok := info.Sys().(*syscall.Stat_t); ok {
		return st.Blocks * 512
	}
	return info.Size()
}

func fdatasync(f *os.File) error { return syscall.Fdatasync(int(f.Fd())) }
