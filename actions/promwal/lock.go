package promwal

import (
	"errors"
	"io/fs"
	"os"
	"path/filepath"

	"golang.org/x/sys/unix"
)

// Prometheus locks a data dir with flock(LOCK_EX|LOCK_NB) on <dir>/lock
// (tsdb/fileutil/flock_unix.go) for as long as it runs, unless the lock
// file is disabled: upstream with --storage.tsdb.no-lockfile, and by
// default in Debian's package (which only locks with
// --storage.tsdb.use-lockfile). The open_files check covers those.

// dirLock is our flock on <data dir>/lock, held across the renames so that
// a Prometheus starting meanwhile fails to lock the dir and exits.
type dirLock struct {
	f       *os.File
	path    string
	created bool
}

// probeLock reports whether another process holds the data dir's lock,
// with a non-blocking flock released at once. A missing lock file is not
// created.
func probeLock(dataDir string) Check {
	path := filepath.Join(dataDir, lockFile)
	f, err := os.Open(path)
	if errors.Is(err, fs.ErrNotExist) {
		return pass("lock", "%s does not exist: no Prometheus that uses a lock file runs on this dir (see open_files for one that does not)", path)
	}
	if err != nil {
		return fail("lock", ErrLocked, "open %s: %v", path, err)
	}
	defer f.Close()
	if c, ok := flockCheck(f, path); !ok {
		return c
	}
	_ = unix.Flock(int(f.Fd()), unix.LOCK_UN)
	return pass("lock", "%s exists but no process holds its flock (a killed Prometheus leaves it behind); probed with a non-blocking flock, released at once", path)
}

// acquireLock takes the data dir's lock and holds it. A missing lock file
// is created, and removed again by release, so the dir ends as it was.
func acquireLock(dataDir string) (*dirLock, Check) {
	path := filepath.Join(dataDir, lockFile)
	f, err := os.OpenFile(path, os.O_RDWR|os.O_CREATE|os.O_EXCL, 0o644)
	created := err == nil
	if errors.Is(err, fs.ErrExist) {
		f, err = os.Open(path)
	}
	if err != nil {
		return nil, fail("lock", ErrLocked, "open %s: %v", path, err)
	}
	if c, ok := flockCheck(f, path); !ok {
		f.Close()
		return nil, c
	}
	how := "exists (left behind by a stopped or killed Prometheus) and"
	if created {
		how = "did not exist; created it for the duration, and"
	}
	return &dirLock{f: f, path: path, created: created},
		pass("lock", "%s %s no other process held its flock; we hold it until the renames are done", path, how)
}

// flockCheck takes an exclusive non-blocking flock on f.
func flockCheck(f *os.File, path string) (Check, bool) {
	err := unix.Flock(int(f.Fd()), unix.LOCK_EX|unix.LOCK_NB)
	switch {
	case errors.Is(err, unix.EWOULDBLOCK):
		return fail("lock", ErrLocked, "%s is locked (flock) by another process: a Prometheus is running on this dir", path), false
	case err != nil:
		return fail("lock", ErrLocked, "flock %s: %v", path, err), false
	}
	return Check{}, true
}

// release removes a lock file we created (while still holding it), then
// unlocks and closes it.
func (l *dirLock) release() error {
	var err error
	if l.created {
		err = os.Remove(l.path)
	}
	_ = unix.Flock(int(l.f.Fd()), unix.LOCK_UN)
	return errors.Join(err, l.f.Close())
}
