package log

import (
	"errors"
	"fmt"
	"io"
	"os"

	"github.com/cockroachdb/pebble/v2/vfs"
)

// The FS seam is Pebble's vfs.FS: vfs.Default in production, vfs.NewMem,
// vfs.NewCrashableMem and errorfs in tests. These helpers are the only file
// operations the package composes out of it.

// writeCategory tags this package's writes in vfs implementations that
// account disk writes by category.
const writeCategory vfs.DiskWriteCategory = "theeye-log"

// SyncDir fsyncs a directory so that files created, renamed or removed in it
// survive a crash.
func SyncDir(fs vfs.FS, dir string) error {
	d, err := fs.OpenDir(dir)
	if err != nil {
		return fmt.Errorf("open dir %s: %w", dir, err)
	}
	if err := d.Sync(); err != nil {
		_ = d.Close()
		return fmt.Errorf("sync dir %s: %w", dir, err)
	}
	return d.Close()
}

// WriteFileAtomic replaces dir/name with data: write name.tmp, fsync it,
// rename it over name, fsync dir. After a crash the file holds either the
// old or the new contents (a leftover .tmp in log/ is removed by Open).
// The server's other small state files (raftnode's state.json) use it too.
func WriteFileAtomic(fs vfs.FS, dir, name string, data []byte) error {
	path := fs.PathJoin(dir, name)
	tmp := path + tmpSuffix
	f, err := fs.Create(tmp, writeCategory)
	if err != nil {
		return fmt.Errorf("create %s: %w", tmp, err)
	}
	if _, err := f.Write(data); err != nil {
		_ = f.Close()
		return fmt.Errorf("write %s: %w", tmp, err)
	}
	if err := f.Sync(); err != nil {
		_ = f.Close()
		return fmt.Errorf("sync %s: %w", tmp, err)
	}
	if err := f.Close(); err != nil {
		return fmt.Errorf("close %s: %w", tmp, err)
	}
	if err := fs.Rename(tmp, path); err != nil {
		return fmt.Errorf("rename %s: %w", tmp, err)
	}
	return SyncDir(fs, dir)
}

// copyPrefix writes the first n bytes of src to a new file dst and fsyncs
// it. dst must not exist or is replaced.
func copyPrefix(fs vfs.FS, dst string, src vfs.File, n int64) error {
	f, err := fs.Create(dst, writeCategory)
	if err != nil {
		return fmt.Errorf("create %s: %w", dst, err)
	}
	if _, err := io.Copy(f, io.NewSectionReader(src, 0, n)); err != nil {
		_ = f.Close()
		return fmt.Errorf("copy to %s: %w", dst, err)
	}
	if err := f.Sync(); err != nil {
		_ = f.Close()
		return fmt.Errorf("sync %s: %w", dst, err)
	}
	if err := f.Close(); err != nil {
		return fmt.Errorf("close %s: %w", dst, err)
	}
	return nil
}

// exists reports whether path exists.
func exists(fs vfs.FS, path string) (bool, error) {
	_, err := fs.Stat(path)
	if err == nil {
		return true, nil
	}
	if errors.Is(err, os.ErrNotExist) {
		return false, nil
	}
	return false, err
}

// NoReuseFS wraps fs so that a file Pebble asks to reuse (ReuseForWrite: a
// retired WAL file taken for the next WAL) is removed and created anew
// instead of renamed and written over: a reused WAL keeps, past what is
// written into it again, the bytes of its earlier life, and an erased
// event must leave every file. Pebble's contract for ReuseForWrite allows
// this; it costs the metadata sync of a fresh file once per WAL.
func NoReuseFS(fs vfs.FS) vfs.FS { return noReuseFS{fs} }

type noReuseFS struct{ vfs.FS }

func (fs noReuseFS) ReuseForWrite(oldname, newname string, category vfs.DiskWriteCategory) (vfs.File, error) {
	if err := fs.FS.Remove(oldname); err != nil && !errors.Is(err, os.ErrNotExist) {
		return nil, fmt.Errorf("remove retired file %s: %w", oldname, err)
	}
	return fs.FS.Create(newname, category)
}

// Unwrap returns the FS it wraps.
func (fs noReuseFS) Unwrap() vfs.FS { return fs.FS }
