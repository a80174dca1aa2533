//go:build !linux

package bench

import (
	"io/fs"
	"os"
	"syscall"
)

func sysProcAttr() *syscall.SysProcAttr { return nil }

func allocatedBytes(info fs.FileInfo) int64 { return info.Size() }

func fdatasync(f *os.File) error { return f.Sync() }
