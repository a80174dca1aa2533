package bench

import (
	"io/fs"
	"os"
	"syscall"
)

func allocatedBytes(info fs.FileInfo) int64 {
	if st, ok := info.Sys().(*syscall.Stat_t); ok {
		return st.Blocks * 512
	}
	return info.Size()
}

func fdatasync(f *os.File) error { return syscall.Fdatasync(int(f.Fd())) }
