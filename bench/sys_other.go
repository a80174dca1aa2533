//go:build !linux

package bench

import (
	"io/fs"
	"os"
)

func allocatedBytes(info fs.FileInfo) int64 { return info.Size() }

func fdatasync(f *os.File) error { return f.Sync() }
