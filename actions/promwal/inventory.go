package promwal

import (
	"encoding/json"
	"errors"
	"fmt"
	"io/fs"
	"os"
	"path/filepath"
	"slices"
	"strconv"
	"strings"
	"time"
)

// Names in a TSDB data dir that this package knows.
const (
	walDir        = "wal"
	chunksHeadDir = "chunks_head"
	wblDir        = "wbl"
	snapshotGlob  = "chunk_snapshot."
	lockFile      = "lock"
	queriesFile   = "queries.active"
)

// InspectOptions tune Inspect.
type InspectOptions struct {
	// Now is the time ages in descriptions are measured from; zero means
	// time.Now().
	Now time.Time
}

// Inventory is what Inspect found in a TSDB data dir: the head entries a
// quarantine moves, every file under them, and what stays.
type Inventory struct {
	// DataDir is the data dir with symlinks resolved.
	DataDir string `json:"data_dir"`
	// Entries are the top-level entries a quarantine moves, in name order:
	// wal, chunks_head, wbl and chunk_snapshot.* when present.
	Entries []Entry `json:"entries"`
	// Files are every file under Entries, by path relative to DataDir.
	Files []File `json:"files"`
	// TotalBytes is the sum of Files' sizes.
	TotalBytes int64 `json:"total_bytes"`
	// WAL summarizes wal/.
	WAL WAL `json:"wal"`
	// Blocks are the persisted blocks (ULID dirs), oldest first. They stay.
	Blocks []Block `json:"blocks"`
	// Kept are other known entries that stay: lock, queries.active.
	Kept []string `json:"kept,omitempty"`
	// Temporary are tmp dirs Prometheus deletes at its next start; they
	// stay.
	Temporary []string `json:"temporary,omitempty"`
	// Unknown are entries this package does not know; they stay.
	Unknown []string `json:"unknown,omitempty"`
	// LockFile reports whether DataDir/lock exists. Its existence means
	// nothing by itself: a killed Prometheus leaves it behind.
	LockFile bool `json:"lock_file"`
	// LossWindow is what moving Entries loses.
	LossWindow LossWindow `json:"loss_window"`
	// devs are the devices Entries are on, by name.
	devs map[string]uint64
}

// Entry is one top-level entry of the head.
type Entry struct {
	Name string `json:"name"`
	// Symlink is the link's target when the entry is a symlink (which a
	// quarantine refuses to move).
	Symlink string `json:"symlink,omitempty"`
	Dir     bool   `json:"dir"`
	Files   int    `json:"files"`
	Bytes   int64  `json:"bytes"`
}

// File is one file of the head, by path relative to the data dir.
type File struct {
	Path  string `json:"path"`
	Bytes int64  `json:"bytes"`
}

// WAL summarizes the write-ahead log.
type WAL struct {
	Present bool  `json:"present"`
	Bytes   int64 `json:"bytes"`
	// Segments counts the numbered segment files; First and Last name the
	// lowest and highest.
	Segments     int    `json:"segments"`
	FirstSegment string `json:"first_segment,omitempty"`
	LastSegment  string `json:"last_segment,omitempty"`
	// Checkpoint names the newest checkpoint.NNNNNNNN dir, if any.
	Checkpoint string `json:"checkpoint,omitempty"`
	// LastWrite is the newest modification time of a non-empty segment:
	// when the head last got data. Prometheus creates a new, empty segment
	// at every start, so empty ones (a crash loop's) say nothing.
	LastWrite time.Time `json:"last_write,omitzero"`
}

// Block is a persisted block, from its meta.json.
type Block struct {
	ULID    string    `json:"ulid"`
	MinTime time.Time `json:"min_time,omitzero"`
	MaxTime time.Time `json:"max_time,omitzero"`
	// Err says why meta.json could not be read; the block still stays.
	Err string `json:"error,omitempty"`
}

// LossWindow estimates which samples a quarantine loses: those newer than
// the newest block, up to the head's last write. Samples not scraped while
// Prometheus is down are lost as well, quarantine or not.
type LossWindow struct {
	// From is the newest block's maxTime; zero when there is no block, and
	// everything since the WAL started is lost.
	From time.Time `json:"from,omitzero"`
	// To is when the head last got data (see WAL.LastWrite); zero if
	// unknown.
	To time.Time `json:"to,omitzero"`
	// Description says the above in a sentence.
	Description string `json:"description"`
}

// Duration is To − From, or 0 when either is unknown.
func (l LossWindow) Duration() time.Duration {
	if l.From.IsZero() || l.To.IsZero() || l.To.Before(l.From) {
		return 0
	}
	return l.To.Sub(l.From)
}

// Inspect reads the TSDB data dir dataDir without changing anything: it
// classifies the top-level entries, walks the head entries (not following
// symlinks), reads blocks' meta.json and estimates the loss window. It does
// not judge whether a quarantine may proceed; see Preview.
func Inspect(dataDir string, opts InspectOptions) (*Inventory, error) {
	if opts.Now.IsZero() {
		opts.Now = time.Now()
	}
	dir, err := filepath.EvalSymlinks(dataDir)
	if err != nil {
		return nil, fmt.Errorf("data dir: %w", err)
	}
	des, err := os.ReadDir(dir)
	if err != nil {
		return nil, fmt.Errorf("data dir: %w", err)
	}
	inv := &Inventory{DataDir: dir}
	for _, de := range des {
		name := de.Name()
		switch {
		case isHeadEntry(name):
			e, dev, files, err := walkEntry(dir, name)
			if err != nil {
				return nil, err
			}
			if inv.devs == nil {
				inv.devs = map[string]uint64{}
			}
			inv.devs[name] = dev
			inv.Entries = append(inv.Entries, e)
			inv.Files = append(inv.Files, files...)
			inv.TotalBytes += e.Bytes
		case name == lockFile:
			inv.LockFile = true
			inv.Kept = append(inv.Kept, name)
		case name == queriesFile:
			inv.Kept = append(inv.Kept, name)
		case isTmp(name):
			inv.Temporary = append(inv.Temporary, name)
		case de.IsDir() && isULID(name):
			inv.Blocks = append(inv.Blocks, readBlock(filepath.Join(dir, name)))
		default:
			inv.Unknown = append(inv.Unknown, name)
		}
	}
	slices.SortFunc(inv.Blocks, func(a, b Block) int { return strings.Compare(a.ULID, b.ULID) })
	if inv.WAL, err = summarizeWAL(dir, inv.Entries); err != nil {
		return nil, err
	}
	inv.LossWindow = lossWindow(inv, opts.Now)
	return inv, nil
}

// isHeadEntry reports whether name is part of the head a quarantine moves.
func isHeadEntry(name string) bool {
	switch name {
	case walDir, chunksHeadDir, wblDir:
		return true
	}
	return strings.HasPrefix(name, snapshotGlob) && !strings.Contains(name, ".tmp")
}

// isTmp reports whether Prometheus treats name as a temporary dir it
// deletes at startup (tsdb/db.go isTmpDir).
func isTmp(name string) bool {
	if strings.HasPrefix(name, snapshotGlob) {
		return strings.Contains(name, ".tmp")
	}
	return strings.HasSuffix(name, ".tmp") || strings.HasSuffix(name, ".tmp-for-creation") ||
		strings.HasSuffix(name, ".tmp-for-deletion")
}

// isULID reports whether name looks like a block's ULID: 26 characters of
// Crockford base32, the first at most '7'.
func isULID(name string) bool {
	if len(name) != 26 || name[0] > '7' {
		return false
	}
	for _, c := range strings.ToUpper(name) {
		if !strings.ContainsRune("0123456789ABCDEFGHJKMNPQRSTVWXYZ", c) {
			return false
		}
	}
	return true
}

// walkEntry lists the files under dataDir/name, by path relative to
// dataDir, and returns the device the entry is on. A symlink entry is
// recorded, not followed.
func walkEntry(dataDir, name string) (Entry, uint64, []File, error) {
	root := filepath.Join(dataDir, name)
	fi, err := os.Lstat(root)
	if err != nil {
		return Entry{}, 0, nil, fmt.Errorf("inspect %s: %w", name, err)
	}
	e := Entry{Name: name, Dir: fi.IsDir()}
	if fi.Mode()&fs.ModeSymlink != 0 {
		e.Symlink, _ = os.Readlink(root)
		return e, devOf(fi), nil, nil
	}
	var files []File
	err = filepath.WalkDir(root, func(path string, d fs.DirEntry, err error) error {
		if err != nil {
			return err
		}
		if d.IsDir() {
			return nil
		}
		info, err := d.Info()
		if err != nil {
			return err
		}
		rel, _ := filepath.Rel(dataDir, path)
		files = append(files, File{Path: filepath.ToSlash(rel), Bytes: info.Size()})
		e.Files++
		e.Bytes += info.Size()
		return nil
	})
	if err != nil {
		return Entry{}, 0, nil, fmt.Errorf("inspect %s: %w", name, err)
	}
	return e, devOf(fi), files, nil
}

// readBlock reads a block's meta.json. An unreadable one is reported, not
// fatal: the block is left alone either way.
func readBlock(dir string) Block {
	b := Block{ULID: filepath.Base(dir)}
	data, err := os.ReadFile(filepath.Join(dir, "meta.json"))
	if err != nil {
		b.Err = err.Error()
		return b
	}
	var meta struct {
		MinTime *int64 `json:"minTime"`
		MaxTime *int64 `json:"maxTime"`
	}
	if err := json.Unmarshal(data, &meta); err != nil {
		b.Err = "meta.json: " + err.Error()
		return b
	}
	if meta.MinTime == nil || meta.MaxTime == nil {
		b.Err = "meta.json: no minTime or maxTime"
		return b
	}
	b.MinTime, b.MaxTime = time.UnixMilli(*meta.MinTime).UTC(), time.UnixMilli(*meta.MaxTime).UTC()
	return b
}

// summarizeWAL describes wal/ from the files walkEntry found.
func summarizeWAL(dataDir string, entries []Entry) (WAL, error) {
	i := slices.IndexFunc(entries, func(e Entry) bool { return e.Name == walDir })
	if i < 0 {
		return WAL{}, nil
	}
	w := WAL{Present: true, Bytes: entries[i].Bytes}
	if entries[i].Symlink != "" || !entries[i].Dir {
		return w, nil
	}
	des, err := os.ReadDir(filepath.Join(dataDir, walDir))
	if err != nil {
		return WAL{}, fmt.Errorf("inspect wal: %w", err)
	}
	first, last := -1, -1
	for _, de := range des {
		name := de.Name()
		if strings.HasPrefix(name, "checkpoint.") && !strings.HasSuffix(name, ".tmp") && de.IsDir() {
			w.Checkpoint = max(w.Checkpoint, name)
			continue
		}
		n, err := strconv.Atoi(name)
		if err != nil || !de.Type().IsRegular() {
			continue
		}
		w.Segments++
		if first < 0 || n < first {
			first, w.FirstSegment = n, name
		}
		if n > last {
			last, w.LastSegment = n, name
		}
		info, err := de.Info()
		if err != nil {
			if errors.Is(err, fs.ErrNotExist) {
				continue
			}
			return WAL{}, fmt.Errorf("inspect wal: %w", err)
		}
		if info.Size() > 0 && info.ModTime().After(w.LastWrite) {
			w.LastWrite = info.ModTime().UTC()
		}
	}
	return w, nil
}

// lossWindow estimates what moving the head loses.
func lossWindow(inv *Inventory, now time.Time) LossWindow {
	var l LossWindow
	for _, b := range inv.Blocks {
		if b.Err == "" && b.MaxTime.After(l.From) {
			l.From = b.MaxTime
		}
	}
	l.To = inv.WAL.LastWrite
	to := "the head's last write (unknown: no WAL segment has data)"
	if !l.To.IsZero() {
		to = fmt.Sprintf("the head's last write at %s (newest non-empty WAL segment, %s ago)",
			l.To.Format(time.RFC3339), roundAge(now.Sub(l.To)))
	}
	if l.From.IsZero() {
		l.Description = "everything since the WAL started (there is no readable block), up to " + to
		return l
	}
	l.Description = fmt.Sprintf("samples after the newest block's maxTime %s (%s ago) up to %s",
		l.From.Format(time.RFC3339), roundAge(now.Sub(l.From)), to)
	if d := l.Duration(); d > 0 {
		l.Description += fmt.Sprintf(": about %s", roundAge(d))
	}
	return l
}

// roundAge rounds d for people: seconds under an hour, minutes above.
func roundAge(d time.Duration) time.Duration {
	if d < time.Hour {
		return d.Round(time.Second)
	}
	return d.Round(time.Minute)
}
