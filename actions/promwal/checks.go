package promwal

import (
	"errors"
	"fmt"
	"os"
	"path/filepath"
	"strings"
	"time"
)

// Sentinel errors a refusal wraps, one per precondition; test them with
// errors.Is. Every refusal is permanent: retrying does not change a fact
// on disk.
var (
	// ErrRefused is wrapped by every refusal.
	ErrRefused = errors.New("refused")
	// ErrNotTSDB: the data dir has neither wal/ nor chunks_head/, or one
	// of the head entries is not a plain directory.
	ErrNotTSDB = errors.New("not a Prometheus TSDB data dir")
	// ErrWALTooSmall: wal/ is smaller than the configured minimum.
	ErrWALTooSmall = errors.New("WAL below the minimum size")
	// ErrLocked: another process holds the flock on <data dir>/lock.
	ErrLocked = errors.New("TSDB lock held")
	// ErrInUse: a process has files under the data dir open or mapped.
	ErrInUse = errors.New("data dir in use")
	// ErrInsideDataDir: the quarantine dir is the data dir or inside it.
	ErrInsideDataDir = errors.New("quarantine dir inside the data dir")
	// ErrCrossDevice: the quarantine dir (or a head entry) is on another
	// filesystem than the data dir, so a rename would become a copy.
	ErrCrossDevice = errors.New("quarantine dir on another filesystem")
)

// RefusedError lists every precondition that failed. It matches
// ErrRefused and each failed check's sentinel with errors.Is.
type RefusedError struct {
	DataDir string
	Failed  []Check
}

func (e *RefusedError) Error() string {
	msgs := make([]string, len(e.Failed))
	for i, c := range e.Failed {
		msgs[i] = c.Name + ": " + c.Detail
	}
	return fmt.Sprintf("refuse to quarantine the head of %s: %s", e.DataDir, strings.Join(msgs, "; "))
}

// Unwrap returns ErrRefused and the sentinel of each failed check.
func (e *RefusedError) Unwrap() []error {
	errs := []error{ErrRefused}
	for _, c := range e.Failed {
		errs = append(errs, c.err)
	}
	return errs
}

// Check is one precondition and its evidence.
type Check struct {
	// Name is one of tsdb, wal_size, outside, same_filesystem, lock,
	// open_files.
	Name string `json:"name"`
	OK   bool   `json:"ok"`
	// Detail is the evidence, pass or fail.
	Detail string `json:"detail"`
	err    error
}

func pass(name, format string, args ...any) Check {
	return Check{Name: name, OK: true, Detail: fmt.Sprintf(format, args...)}
}

func fail(name string, err error, format string, args ...any) Check {
	return Check{Name: name, Detail: fmt.Sprintf(format, args...), err: err}
}

// QuarantineOptions say what to quarantine where.
type QuarantineOptions struct {
	// DataDir is the TSDB dir (--storage.tsdb.path), an absolute path.
	DataDir string
	// QuarantineDir, an absolute path outside DataDir on the same
	// filesystem, receives a folder <basename(DataDir)>-<UTC time>/. It is
	// created if missing.
	QuarantineDir string
	// MinWALBytes is the smallest wal/ worth quarantining.
	MinWALBytes int64
	// Evidence are the caller's reasons (the alert, say), copied into the
	// manifest.
	Evidence []string
	// Now returns the current time; nil means time.Now.
	Now func() time.Time
	// rename is os.Rename; tests make it fail.
	rename func(oldpath, newpath string) error
}

func (o QuarantineOptions) now() time.Time {
	if o.Now == nil {
		return time.Now().UTC()
	}
	return o.Now().UTC()
}

// folderTimeFormat names quarantine folders. It has no colon (shell- and
// scp-friendly) and can never look like a block ULID or a tmp dir.
const folderTimeFormat = "20060102T150405Z"

// Preview is what a quarantine would do now, and whether it may.
type Preview struct {
	Inventory *Inventory `json:"inventory"`
	// QuarantineDir is the quarantine dir, symlinks resolved as far as it
	// exists.
	QuarantineDir string `json:"quarantine_dir"`
	// Target is the folder a quarantine started now would create.
	Target string `json:"target"`
	// Checks are the preconditions in a fixed order.
	Checks []Check `json:"checks"`
	// FreeBytes is the free space of the data dir's filesystem; renames
	// do not change it.
	FreeBytes uint64 `json:"free_bytes"`
	// RestoreCommand is the command that would undo a quarantine into
	// Target.
	RestoreCommand string `json:"restore_command"`
}

// Err returns a *RefusedError listing the failed checks, or nil.
func (p *Preview) Err() error { return refusal(p.Inventory.DataDir, p.Checks) }

func refusal(dataDir string, checks []Check) error {
	var failed []Check
	for _, c := range checks {
		if !c.OK {
			failed = append(failed, c)
		}
	}
	if len(failed) == 0 {
		return nil
	}
	return &RefusedError{DataDir: dataDir, Failed: failed}
}

// PreviewQuarantine inspects opts.DataDir and evaluates every precondition without
// changing anything. The lock is probed with a non-blocking flock that is
// released at once (a lock file that does not exist is not created). An
// error means the dir could not be inspected at all; failed preconditions
// are in the result (see Preview.Err). It is safe for concurrent use.
func PreviewQuarantine(opts QuarantineOptions) (*Preview, error) {
	qdir, err := checkPaths(opts)
	if err != nil {
		return nil, err
	}
	now := opts.now()
	inv, err := Inspect(opts.DataDir, InspectOptions{Now: now})
	if err != nil {
		return nil, err
	}
	p := &Preview{Inventory: inv, QuarantineDir: qdir, Target: targetPath(qdir, inv.DataDir, now)}
	p.Checks = append(staticChecks(inv, qdir, opts.MinWALBytes), probeLock(inv.DataDir), openFilesCheck(inv.DataDir))
	p.FreeBytes, _ = freeBytes(inv.DataDir)
	p.RestoreCommand = restoreCommand(inv.DataDir, p.Target, entryNames(inv.Entries))
	return p, nil
}

// checkPaths checks that both paths are absolute and returns the
// quarantine dir with symlinks resolved as far as it exists.
func checkPaths(opts QuarantineOptions) (string, error) {
	if !filepath.IsAbs(opts.DataDir) {
		return "", fmt.Errorf("data dir %q must be an absolute path", opts.DataDir)
	}
	if !filepath.IsAbs(opts.QuarantineDir) {
		return "", fmt.Errorf("quarantine dir %q must be an absolute path", opts.QuarantineDir)
	}
	if opts.MinWALBytes < 0 {
		return "", fmt.Errorf("minimum WAL size %d must not be negative", opts.MinWALBytes)
	}
	q, _, err := resolveExisting(filepath.Clean(opts.QuarantineDir))
	if err != nil {
		return "", fmt.Errorf("quarantine dir: %w", err)
	}
	return q, nil
}

// targetPath is the quarantine folder for dataDir at now.
func targetPath(qdir, dataDir string, now time.Time) string {
	return filepath.Join(qdir, filepath.Base(dataDir)+"-"+now.UTC().Format(folderTimeFormat))
}

// staticChecks are the preconditions that depend only on the inventory and
// the paths, in their reporting order.
func staticChecks(inv *Inventory, qdir string, minWAL int64) []Check {
	return []Check{tsdbCheck(inv), walSizeCheck(inv, minWAL), outsideCheck(inv.DataDir, qdir), sameFSCheck(inv, qdir)}
}

func tsdbCheck(inv *Inventory) Check {
	if len(inv.Entries) == 0 || !inv.WAL.Present && !hasEntry(inv.Entries, chunksHeadDir) {
		return fail("tsdb", ErrNotTSDB, "%s has neither wal/ nor chunks_head/", inv.DataDir)
	}
	for _, e := range inv.Entries {
		if e.Symlink != "" {
			return fail("tsdb", ErrNotTSDB, "%s is a symlink to %s; moving the link would not move the data: quarantine it by hand", e.Name, e.Symlink)
		}
		if !e.Dir {
			return fail("tsdb", ErrNotTSDB, "%s is not a directory", e.Name)
		}
	}
	return pass("tsdb", "%s present; %d blocks", strings.Join(entryNames(inv.Entries), ", "), len(inv.Blocks))
}

func walSizeCheck(inv *Inventory, minWAL int64) Check {
	w := inv.WAL
	if w.Bytes < minWAL {
		return fail("wal_size", ErrWALTooSmall, "wal/ holds %d bytes (%s), below the minimum %d (%s): a WAL this small does not explain an OOM during replay",
			w.Bytes, human(w.Bytes), minWAL, Bytes(minWAL))
	}
	return pass("wal_size", "wal/ holds %d bytes (%s), at least the minimum %d (%s)", w.Bytes, human(w.Bytes), minWAL, Bytes(minWAL))
}

func outsideCheck(dataDir, qdir string) Check {
	if qdir == dataDir || strings.HasPrefix(qdir, dataDir+string(filepath.Separator)) {
		return fail("outside", ErrInsideDataDir, "quarantine dir %s is inside the data dir %s, where Prometheus could treat or delete it as its own", qdir, dataDir)
	}
	return pass("outside", "quarantine dir %s is outside the data dir", qdir)
}

func sameFSCheck(inv *Inventory, qdir string) Check {
	dataDev, err := statDev(inv.DataDir)
	if err != nil {
		return fail("same_filesystem", ErrCrossDevice, "stat data dir: %v", err)
	}
	_, existing, err := resolveExisting(qdir)
	if err != nil {
		return fail("same_filesystem", ErrCrossDevice, "quarantine dir: %v", err)
	}
	qDev, err := statDev(existing)
	if err != nil {
		return fail("same_filesystem", ErrCrossDevice, "stat %s: %v", existing, err)
	}
	if qDev != dataDev {
		return fail("same_filesystem", ErrCrossDevice, "%s (device %d) is not on the data dir's filesystem (device %d): a rename would become a copy", existing, qDev, dataDev)
	}
	for _, e := range inv.Entries {
		if inv.devs[e.Name] != dataDev {
			return fail("same_filesystem", ErrCrossDevice, "%s is another filesystem (a mount point) than the data dir", e.Name)
		}
	}
	return pass("same_filesystem", "%s and the data dir are on the same filesystem (device %d): renames are atomic and copy nothing", existing, dataDev)
}

// resolveExisting resolves symlinks in the longest existing prefix of path
// and appends the rest. It also returns that existing prefix, resolved.
func resolveExisting(path string) (resolved, existing string, err error) {
	rest := ""
	for p := path; ; p = filepath.Dir(p) {
		r, err := filepath.EvalSymlinks(p)
		if err == nil {
			fi, err := os.Stat(r)
			if err != nil {
				return "", "", err
			}
			if !fi.IsDir() {
				return "", "", fmt.Errorf("%s is not a directory", r)
			}
			return filepath.Join(r, rest), r, nil
		}
		if !errors.Is(err, os.ErrNotExist) || p == filepath.Dir(p) {
			return "", "", err
		}
		rest = filepath.Join(filepath.Base(p), rest)
	}
}

func hasEntry(es []Entry, name string) bool {
	for _, e := range es {
		if e.Name == name {
			return true
		}
	}
	return false
}

func entryNames(es []Entry) []string {
	names := make([]string, len(es))
	for i, e := range es {
		names[i] = e.Name
	}
	return names
}
