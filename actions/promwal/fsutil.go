package promwal

import (
	"io/fs"
	"os"
	"syscall"

	"golang.org/x/sys/unix"
)

// devOf returns the device a file is on, or 0 if unknown.
func devOf(fi fs.FileInfo) uint64 {
	if st, ok := fi.Sys().(*syscall.Stat_t); ok {
		return uint64(st.Dev) //nolint:unconvert // int32 on some platforms
	}
	return 0
}

// statDev returns the device path is on.
func statDev(path string) (uint64, error) {
	fi, err := os.Stat(path)
	if err != nil {
		return 0, err
	}
	return devOf(fi), nil
}

// freeBytes returns the space available to unprivileged users on path's
// filesystem.
func freeBytes(path string) (uint64, error) {
	var st unix.Statfs_t
	if err := unix.Statfs(path, &st); err != nil {
		return 0, err
	}
	return uint64(st.Bavail) * uint64(st.Bsize), nil //nolint:unconvert // types differ per platform
}

// syncDir fsyncs a directory so renames and creations in it are durable.
func syncDir(path string) error {
	d, err := os.Open(path)
	if err != nil {
		return err
	}
	if err := d.Sync(); err != nil {
		d.Close()
		return err
	}
	return d.Close()
}
