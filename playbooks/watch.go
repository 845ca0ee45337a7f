package playbooks

import (
	"context"
	"errors"
	"fmt"
	"io/fs"
	"log/slog"
	"maps"
	"os"
	"path/filepath"
	"runtime"
	"slices"
	"strings"
	"time"

	"github.com/fsnotify/fsnotify"
)

const (
	// defaultWatchDebounce is WatchOptions.Debounce when it is not set.
	defaultWatchDebounce = 100 * time.Millisecond
	// longestBurst bounds a burst, in debounce periods, so that a folder
	// that never goes quiet cannot hide a change.
	longestBurst = 10
)

// errWatchClosed is returned when fsnotify closes its channels although
// WatchFiles did not close it.
var errWatchClosed = errors.New("watch playbook files: fsnotify watcher stopped")

// WatchOptions configures WatchFiles. The zero value is ready to use.
type WatchOptions struct {
	// Debounce is how long the folders must stay quiet to end a burst:
	// events closer than this are one change. 0 (or less) means 100ms. A
	// burst that never goes quiet still ends after ten Debounce periods.
	Debounce time.Duration
	// Logger receives the watched folders at start and warnings (a folder
	// that cannot be watched, a watch error, a malformed glob); nil means
	// discard.
	Logger *slog.Logger
}

// WatchFiles watches the folders that globs can match in and calls changed,
// from one goroutine, once per burst of filesystem events. It returns when
// ctx is done (nil), or with an error if the watcher cannot be created.
//
// It watches folders, never files, so that a file replaced by a rename or a
// symlink swap (an editor's save, a mounted ConfigMap's ..data switch) is
// seen. For each glob (relative ones against the working directory, as in
// ExpandGlobs) the folders are: the deepest literal folder prefix, or its
// nearest existing ancestor while it does not exist; every existing folder
// matching the glob's folder part level by level ("/a/*/b/*.yaml" watches
// "/a", "/a/*" and "/a/*/b"); the folder of every current match; and the
// parent of every symlink on the path to those. That set is computed again
// after every burst, so a folder created later is watched once it appears
// and a removed, renamed or re-pointed one is dropped or followed. Any event
// in a watched folder, the removal or renaming of a watched folder, and an
// fsnotify error (such as a queue overflow, logged at warn level) count.
//
// changed is also called once when the first watches are in place, so a
// change between the caller's first load and the start of the watch is not
// lost. Calls may be spurious; the caller is expected to re-read the files
// and compare. changed runs on the goroutine of WatchFiles: while it runs,
// events wait in the kernel queue, so it should not block for long. A nil
// changed is allowed and does nothing.
//
// A malformed glob is not an error here (LoadFiles reports it): it is logged
// at warn level and only the folder named by its literal prefix is watched.
// Everything WatchFiles starts has stopped when it returns.
func WatchFiles(ctx context.Context, globs []string, o WatchOptions, changed func()) error {
	fw, err := fsnotify.NewWatcher()
	if err != nil {
		return fmt.Errorf("watch playbook files: %w", err)
	}
	defer fw.Close()
	return newFolderWatch(fw, globs, o).run(ctx, fw.Events, fw.Errors, changed)
}

// folderWatch keeps an fsnotify watcher on the folders the globs want and
// turns its events into bursts. It is owned by one goroutine.
type folderWatch struct {
	fw       *fsnotify.Watcher
	globs    []string
	debounce time.Duration
	log      *slog.Logger

	dirs       map[string]os.FileInfo // watched folder → the folder it was when added
	timer      *time.Timer            // ends the pending burst
	burstStart time.Time              // zero when no burst is pending
	events     int                    // in the pending burst
}

func newFolderWatch(fw *fsnotify.Watcher, globs []string, o WatchOptions) *folderWatch {
	if o.Debounce <= 0 {
		o.Debounce = defaultWatchDebounce
	}
	if o.Logger == nil {
		o.Logger = slog.New(slog.DiscardHandler)
	}
	timer := time.NewTimer(o.Debounce)
	timer.Stop()
	return &folderWatch{
		fw:       fw,
		globs:    slices.Clone(globs),
		debounce: o.Debounce,
		log:      o.Logger.With("component", "playbooks"),
		dirs:     map[string]os.FileInfo{},
		timer:    timer,
	}
}

// run is the loop of WatchFiles, reading events and errs (the fsnotify
// channels, or a test's).
func (w *folderWatch) run(ctx context.Context, events <-chan fsnotify.Event, errs <-chan error, changed func()) error {
	defer w.timer.Stop()
	if changed == nil {
		changed = func() {}
	}
	for _, g := range w.globs {
		if _, err := filepath.Match(g, ""); err != nil {
			w.log.Warn("malformed playbook glob, only its literal folder is watched", "glob", g, "err", err)
		}
	}
	if w.sync() {
		w.event()
	}
	w.log.Info("watching playbook folders", "dirs", slices.Sorted(maps.Keys(w.dirs)))
	changed()
	for {
		select {
		case <-ctx.Done():
			return nil
		case ev, ok := <-events:
			if !ok {
				return errWatchClosed
			}
			w.forget(ev)
			w.event()
		case err, ok := <-errs:
			if !ok {
				return errWatchClosed
			}
			w.log.Warn("playbook folder watch error, reloading", "err", err)
			w.event()
		case <-w.timer.C:
			w.log.Debug("playbook folders changed", "events", w.events)
			w.burstStart, w.events = time.Time{}, 0
			if w.sync() {
				w.event()
			}
			if ctx.Err() != nil {
				return nil
			}
			changed()
		}
	}
}

// event counts an event in the pending burst, starting one if needed: the
// burst ends a debounce period from now, or when it reaches its longest.
func (w *folderWatch) event() {
	now := time.Now()
	if w.burstStart.IsZero() {
		w.burstStart = now
	}
	w.events++
	w.timer.Reset(min(w.debounce, w.burstStart.Add(longestBurst*w.debounce).Sub(now)))
}

// forget drops a watched folder that ev removed or renamed: fsnotify has
// dropped its watch, or follows it under another name. sync adds the path
// back if it names a wanted folder again.
func (w *folderWatch) forget(ev fsnotify.Event) {
	if !ev.Has(fsnotify.Remove) && !ev.Has(fsnotify.Rename) {
		return
	}
	if _, ok := w.dirs[ev.Name]; ok {
		w.unwatch(ev.Name)
	}
}

func (w *folderWatch) unwatch(dir string) {
	_ = w.fw.Remove(dir) // fails if fsnotify dropped the watch already: nothing left to do
	delete(w.dirs, dir)
}

// sync makes the watched folders those the globs want now: it adds new
// ones, drops the ones no longer wanted and watches again a path that now
// names another folder (a swapped symlink, a folder renamed and created
// again). It reports whether a folder vanished while being added, in which
// case the caller should sync again soon.
func (w *folderWatch) sync() (again bool) {
	want := w.wanted()
	for dir, was := range w.dirs {
		if now, ok := want[dir]; !ok || !os.SameFile(was, now) {
			w.unwatch(dir)
		}
	}
	for _, dir := range slices.Sorted(maps.Keys(want)) {
		if _, ok := w.dirs[dir]; ok {
			continue
		}
		if err := w.fw.Add(dir); err != nil {
			if errors.Is(err, fs.ErrNotExist) {
				again = true
				continue
			}
			w.log.Warn("cannot watch playbook folder", "dir", dir, "err", err)
			continue
		}
		w.dirs[dir] = want[dir]
	}
	return again
}

// wanted returns the folders WatchFiles documents, by absolute path, each
// with the folder it names now. Two paths to one folder give one watch.
func (w *folderWatch) wanted() map[string]os.FileInfo {
	want := map[string]os.FileInfo{}
	for _, g := range w.globs {
		for _, dir := range globFolders(g) {
			addExisting(want, dir)
		}
	}
	files, _ := ExpandGlobs(w.globs) // a malformed glob was logged at start
	for _, f := range files {
		addExisting(want, filepath.Dir(f))
	}
	for _, dir := range slices.Collect(maps.Keys(want)) {
		for p := dir; p != filepath.Dir(p); p = filepath.Dir(p) {
			if fi, err := os.Lstat(p); err == nil && fi.Mode()&fs.ModeSymlink != 0 {
				addExisting(want, filepath.Dir(p))
			}
		}
	}
	var kept []os.FileInfo
	for _, dir := range slices.Sorted(maps.Keys(want)) {
		fi := want[dir]
		if slices.ContainsFunc(kept, func(k os.FileInfo) bool { return os.SameFile(k, fi) }) {
			delete(want, dir)
			continue
		}
		kept = append(kept, fi)
	}
	return want
}

// addExisting adds dir to want, or its nearest existing ancestor folder if
// dir is not a folder (yet), whose events will tell when it appears.
func addExisting(want map[string]os.FileInfo, dir string) {
	if abs, err := filepath.Abs(dir); err == nil {
		dir = abs
	}
	for {
		if fi, err := os.Stat(dir); err == nil && fi.IsDir() {
			want[dir] = fi
			return
		}
		parent := filepath.Dir(dir)
		if parent == dir {
			return
		}
		dir = parent
	}
}

// globFolders returns the folders in which a match of glob could appear:
// the deepest literal folder prefix (existing or not) and the existing
// paths that each deeper level of the glob's folder part matches. A
// malformed level matches nothing.
func globFolders(glob string) []string {
	var out []string
	for p := filepath.Dir(glob); ; p = filepath.Dir(p) {
		if !hasGlobMeta(p) {
			return append(out, p)
		}
		matches, _ := filepath.Glob(p)
		out = append(out, matches...)
	}
}

// hasGlobMeta reports whether path has a character filepath.Match treats
// specially; the escape character counts, so an escaped level is globbed
// rather than taken literally.
func hasGlobMeta(path string) bool {
	magic := `*?[`
	if runtime.GOOS != "windows" {
		magic = `*?[\`
	}
	return strings.ContainsAny(path, magic)
}
