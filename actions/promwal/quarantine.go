package promwal

import (
	"bytes"
	"context"
	"crypto/sha256"
	"encoding/hex"
	"encoding/json"
	"errors"
	"fmt"
	"io/fs"
	"os"
	"path/filepath"
	"slices"
	"strings"
	"time"
)

// ManifestName is the manifest's file name in a quarantine folder.
const ManifestName = "manifest.json"

// Manifest records a quarantine: what moved where, what it loses, why, and
// how to undo it. It is written into the quarantine folder before the
// first rename (Complete false) and rewritten once every rename is done.
type Manifest struct {
	Version int `json:"version"`
	// Complete is false while the renames run; a manifest left incomplete
	// means the quarantine was interrupted.
	Complete       bool      `json:"complete"`
	DataDir        string    `json:"data_dir"`
	QuarantinePath string    `json:"quarantine_path"`
	CreatedAt      time.Time `json:"created_at"`
	// Entries are the moved top-level entries; Files every moved file.
	Entries    []Entry `json:"entries"`
	Files      []File  `json:"files"`
	FileCount  int     `json:"file_count"`
	TotalBytes int64   `json:"total_bytes"`
	WAL        WAL     `json:"wal"`
	// BlocksKept are the blocks left in place.
	BlocksKept []Block `json:"blocks_kept"`
	// LeftAlone are the other entries left in place, unknown ones included.
	LeftAlone  []string   `json:"left_alone,omitempty"`
	LossWindow LossWindow `json:"loss_window"`
	// Evidence are the checks that passed and the caller's reasons.
	Evidence []string `json:"evidence"`
	// Digest is the SHA-256 of "path\tbytes\n" over Files.
	Digest string `json:"digest"`
	// RestoreCommand is a /bin/sh one-liner that moves the entries back.
	// It is shown, never run by selfheal.
	RestoreCommand string `json:"restore_command"`
	RestoreNote    string `json:"restore_note"`
	// Warnings are surprises found after the move, such as files that
	// changed meanwhile.
	Warnings []string `json:"warnings,omitempty"`
	// Path is where the manifest was written.
	Path string `json:"-"`
}

const restoreNote = "Run it only while Prometheus is stopped and before it has started again on this data dir: " +
	"once started, Prometheus writes a new head, and the command refuses to mix the two (it fails if any entry exists again)."

// Quarantine moves the head of a TSDB data dir — wal/, chunks_head/, wbl/
// and chunk_snapshot.* — into a new folder <QuarantineDir>/<basename of
// DataDir>-<UTC time>/ with rename(2), never copying or deleting, and
// writes a manifest there. Blocks, lock, queries.active and unknown
// entries stay. Prometheus recreates an empty head at its next start.
//
// It first takes the flock on <DataDir>/lock and holds it throughout, then
// evaluates every precondition of PreviewQuarantine; any failure is a
// *RefusedError and nothing is moved. The renames are all or nothing: if
// one fails, those done are renamed back. ctx is honoured until the first
// rename.
func Quarantine(ctx context.Context, opts QuarantineOptions) (m *Manifest, err error) {
	qdir, err := checkPaths(opts)
	if err != nil {
		return nil, err
	}
	dataDir, err := filepath.EvalSymlinks(opts.DataDir)
	if err != nil {
		return nil, fmt.Errorf("data dir: %w", err)
	}
	lk, lockCheck := acquireLock(dataDir)
	if lk != nil {
		defer func() {
			if rerr := lk.release(); rerr != nil {
				err = errors.Join(err, fmt.Errorf("release lock: %w", rerr))
			}
		}()
	}
	now := opts.now()
	inv, err := Inspect(dataDir, InspectOptions{Now: now})
	if err != nil {
		return nil, err
	}
	if lk != nil && lk.created { // our own lock file is not part of the dir
		inv.LockFile = false
		inv.Kept = slices.DeleteFunc(inv.Kept, func(n string) bool { return n == lockFile })
	}
	checks := append(staticChecks(inv, qdir, opts.MinWALBytes), lockCheck, openFilesCheck(dataDir))
	if err := refusal(dataDir, checks); err != nil {
		return nil, err
	}
	if err := ctx.Err(); err != nil {
		return nil, fmt.Errorf("quarantine %s: %w", dataDir, err)
	}
	m = newManifest(inv, targetPath(qdir, dataDir, now), now, checks, opts.Evidence)
	rename := opts.rename
	if rename == nil {
		rename = os.Rename
	}
	if err := m.move(qdir, rename); err != nil {
		return nil, err
	}
	return m, nil
}

// newManifest describes moving inv's head into target.
func newManifest(inv *Inventory, target string, now time.Time, checks []Check, evidence []string) *Manifest {
	m := &Manifest{
		Version:        1,
		DataDir:        inv.DataDir,
		QuarantinePath: target,
		CreatedAt:      now,
		Entries:        inv.Entries,
		Files:          inv.Files,
		FileCount:      len(inv.Files),
		TotalBytes:     inv.TotalBytes,
		WAL:            inv.WAL,
		BlocksKept:     inv.Blocks,
		LeftAlone:      slices.Concat(inv.Kept, inv.Temporary, inv.Unknown),
		LossWindow:     inv.LossWindow,
		Digest:         digest(inv.Files),
		RestoreCommand: restoreCommand(inv.DataDir, target, entryNames(inv.Entries)),
		RestoreNote:    restoreNote,
		Path:           filepath.Join(target, ManifestName),
	}
	if m.BlocksKept == nil {
		m.BlocksKept = []Block{}
	}
	for _, c := range checks {
		m.Evidence = append(m.Evidence, c.Name+": "+c.Detail)
	}
	m.Evidence = append(m.Evidence, evidence...)
	return m
}

// move creates the quarantine folder, writes the manifest, renames the
// entries (rolling back on failure), syncs, verifies and completes the
// manifest.
func (m *Manifest) move(qdir string, rename func(string, string) error) error {
	if err := os.MkdirAll(qdir, 0o750); err != nil {
		return fmt.Errorf("create quarantine dir: %w", err)
	}
	if err := os.Mkdir(m.QuarantinePath, 0o750); err != nil {
		return fmt.Errorf("create quarantine folder: %w", err)
	}
	if err := m.write(); err != nil {
		return errors.Join(err, removeEmptyFolder(m.QuarantinePath))
	}
	var done []string
	for _, e := range m.Entries {
		if err := rename(filepath.Join(m.DataDir, e.Name), filepath.Join(m.QuarantinePath, e.Name)); err != nil {
			return m.rollback(done, rename, fmt.Errorf("move %s: %w", e.Name, err))
		}
		done = append(done, e.Name)
	}
	for _, d := range []string{m.DataDir, m.QuarantinePath, qdir} {
		if err := syncDir(d); err != nil {
			m.Warnings = append(m.Warnings, fmt.Sprintf("fsync %s: %v", d, err))
		}
	}
	m.verify()
	m.Complete = true
	if err := m.write(); err != nil {
		return fmt.Errorf("entries moved to %s, but completing the manifest failed: %w (restore with: %s)", m.QuarantinePath, err, m.RestoreCommand)
	}
	return nil
}

// rollback renames the entries in done back after cause, and removes the
// quarantine folder if it is empty again but for the manifest.
func (m *Manifest) rollback(done []string, rename func(string, string) error, cause error) error {
	errs := []error{cause}
	for _, name := range slices.Backward(done) {
		if err := rename(filepath.Join(m.QuarantinePath, name), filepath.Join(m.DataDir, name)); err != nil {
			errs = append(errs, fmt.Errorf("roll back %s: %w (restore by hand: %s)", name, err, m.RestoreCommand))
		}
	}
	if len(errs) == 1 {
		errs = append(errs, removeEmptyFolder(m.QuarantinePath))
	}
	return fmt.Errorf("quarantine %s: %w", m.DataDir, errors.Join(errs...))
}

// removeEmptyFolder removes a quarantine folder that holds nothing but our
// manifest.
func removeEmptyFolder(dir string) error {
	if err := os.Remove(filepath.Join(dir, ManifestName)); err != nil && !errors.Is(err, fs.ErrNotExist) {
		return err
	}
	return os.Remove(dir)
}

// verify compares what is in the quarantine folder with what was planned
// and records any difference as a warning; Files stays what was planned.
func (m *Manifest) verify() {
	var got []File
	for _, e := range m.Entries {
		_, _, files, err := walkEntry(m.QuarantinePath, e.Name)
		if err != nil {
			m.Warnings = append(m.Warnings, "verify: "+err.Error())
			return
		}
		got = append(got, files...)
	}
	if d := digest(got); d != m.Digest {
		m.Warnings = append(m.Warnings, fmt.Sprintf("verify: the moved files differ from the inventory taken under the lock (%d files, %d bytes now); something wrote to the head meanwhile", len(got), sumBytes(got)))
	}
}

// write writes the manifest through a temporary file and a rename.
func (m *Manifest) write() error {
	data, err := MarshalJSON(m)
	if err != nil {
		return err
	}
	tmp := m.Path + ".new"
	f, err := os.OpenFile(tmp, os.O_WRONLY|os.O_CREATE|os.O_TRUNC, 0o640)
	if err != nil {
		return fmt.Errorf("write manifest: %w", err)
	}
	_, err = f.Write(data)
	err = errors.Join(err, f.Sync(), f.Close())
	if err == nil {
		err = os.Rename(tmp, m.Path)
	}
	if err != nil {
		return fmt.Errorf("write manifest: %w", errors.Join(err, os.Remove(tmp)))
	}
	return nil
}

// MarshalJSON renders v (a Manifest or a Preview) as indented JSON ending
// in a newline, without escaping the shell's &, < and > in the restore
// command.
func MarshalJSON(v any) ([]byte, error) {
	var b bytes.Buffer
	enc := json.NewEncoder(&b)
	enc.SetEscapeHTML(false)
	enc.SetIndent("", "  ")
	if err := enc.Encode(v); err != nil {
		return nil, err
	}
	return b.Bytes(), nil
}

// digest hashes a file list.
func digest(files []File) string {
	h := sha256.New()
	for _, f := range files {
		fmt.Fprintf(h, "%s\t%d\n", f.Path, f.Bytes)
	}
	return hex.EncodeToString(h.Sum(nil))
}

func sumBytes(files []File) int64 {
	var n int64
	for _, f := range files {
		n += f.Bytes
	}
	return n
}

// restoreCommand is a /bin/sh one-liner, run in a subshell so that its
// exit never closes an interactive shell, that moves entries from target
// back into dataDir, refusing if any of them exists there again.
func restoreCommand(dataDir, target string, entries []string) string {
	if len(entries) == 0 {
		return ""
	}
	names := make([]string, len(entries))
	srcs := make([]string, len(entries))
	for i, e := range entries {
		names[i] = shellQuote(e)
		srcs[i] = shellQuote(filepath.Join(target, e))
	}
	return fmt.Sprintf(`(cd -- %s && for e in %s; do if [ -e "$e" ]; then echo "restore: $e exists again in the data dir (has Prometheus started since?); nothing restored" >&2; exit 1; fi; done && mv -- %s .)`,
		shellQuote(dataDir), strings.Join(names, " "), strings.Join(srcs, " "))
}

// shellQuote quotes s for a POSIX shell: bare if it is made of safe
// characters, single-quoted otherwise.
func shellQuote(s string) string {
	if s != "" && strings.IndexFunc(s, func(r rune) bool {
		return !(r >= 'a' && r <= 'z' || r >= 'A' && r <= 'Z' || r >= '0' && r <= '9' || strings.ContainsRune("@%+=:,./-_", r))
	}) < 0 {
		return s
	}
	return "'" + strings.ReplaceAll(s, "'", `'"'"'`) + "'"
}
