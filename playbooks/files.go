package playbooks

import (
	"errors"
	"fmt"
	"io"
	"log/slog"
	"os"
	"path/filepath"
	"slices"
	"sync"
)

// MaxFileSize is the most a playbook file may hold, and the most the
// playbook keys of one ConfigMap may hold together: 1 MiB, what Kubernetes
// allows a whole ConfigMap. Bigger content is refused before it is parsed,
// and a file before it is read: parsing YAML takes many times its size in
// memory (a 14 MB file took the daemon to about 1 GB).
const MaxFileSize = 1 << 20

// TooLargeError says content is over MaxFileSize. It reads
// "<source>: 14.0 MiB is over the 1 MiB limit for a playbook file".
type TooLargeError struct {
	// Source names the content: a file, a ConfigMap key, or a ConfigMap
	// (configmap/<ns>/<name>) when its keys are too large together.
	Source string
	// Size is the content's size in bytes; 0 when the file grew past the
	// limit while it was read.
	Size int64
	// What the limit is for: "a playbook file", or "the playbook keys of a
	// ConfigMap".
	What string
}

func (e *TooLargeError) Error() string {
	limit := fmt.Sprintf("the %d MiB limit for %s", MaxFileSize>>20, e.What)
	if e.Size <= MaxFileSize {
		return fmt.Sprintf("%s: it grew past %s while it was read", e.Source, limit)
	}
	size := fmt.Sprintf("%.1f MiB", float64(e.Size)/(1<<20))
	if size == "1.0 MiB" { // just over: the bytes say why
		size = fmt.Sprintf("%d bytes", e.Size)
	}
	return fmt.Sprintf("%s: %s is over %s", e.Source, size, limit)
}

// ReadFile reads a playbook file of at most MaxFileSize bytes. A bigger
// one is a *TooLargeError, found from the file's size before anything is
// read; a file that grows while it is read is cut off one byte past the
// limit and refused the same way.
func ReadFile(name string) ([]byte, error) {
	f, err := os.Open(name)
	if err != nil {
		return nil, fmt.Errorf("read playbook file: %w", err)
	}
	defer f.Close()
	if fi, err := f.Stat(); err == nil && fi.Mode().IsRegular() && fi.Size() > MaxFileSize {
		return nil, &TooLargeError{Source: name, Size: fi.Size(), What: "a playbook file"}
	}
	data, err := io.ReadAll(io.LimitReader(f, MaxFileSize+1))
	if err != nil {
		return nil, fmt.Errorf("read playbook file: %w", err)
	}
	if len(data) > MaxFileSize {
		return nil, &TooLargeError{Source: name, What: "a playbook file"}
	}
	return data, nil
}

// Unmatched returns the index of every glob that matches no file. A
// malformed glob is not among them: ExpandGlobs reports it.
func Unmatched(globs []string) []int {
	var out []int
	for i, g := range globs {
		if matches, err := filepath.Glob(g); err == nil && len(matches) == 0 {
			out = append(out, i)
		}
	}
	return out
}

// filesOwner is the Catalog owner of the config's playbook files.
const filesOwner = "files"

// FilesOptions configure Files.
type FilesOptions struct {
	// Logger receives a warning for each glob that comes to match no
	// file; nil discards.
	Logger *slog.Logger
}

// Files are the playbook files of the config, the Catalog owner "files".
// It remembers which files it loaded, so that a folder that vanishes does
// not take its playbooks with it. It is safe for concurrent use: SIGHUP,
// the folder watch and POST /-/reload all call Reload.
type Files struct {
	globs   []string
	catalog *Catalog
	log     *slog.Logger

	mu    sync.Mutex
	known []string     // the sources handed to the catalog by the last Reload
	empty map[int]bool // the globs that matched no file at the last Reload
}

// NewFiles returns the files the globs match, to be loaded into c by
// Reload.
func NewFiles(globs []string, c *Catalog, o FilesOptions) *Files {
	if o.Logger == nil {
		o.Logger = slog.New(slog.DiscardHandler)
	}
	return &Files{globs: slices.Clone(globs), catalog: c, log: o.Logger.With("component", "playbooks"), empty: map[int]bool{}}
}

// Reload reads every file the globs match and hands them to the catalog:
// changed files are parsed, and a file that is broken, unreadable or over
// MaxFileSize keeps its last good version. A file gone from a folder that
// can be listed is removed with its playbooks. A file no longer matched
// because its folder cannot be listed (removed, renamed away, unreadable)
// keeps its last good version too, failing with that reason, until the
// folder can be listed again: then what it holds is the truth, even when
// it is empty.
//
// A glob that matches no file is logged at warn level by the first Reload
// that finds it so: the first Reload of all, or one after it matched. The
// error joins the globs' problems and every file that is not active as it
// is on disk.
func (f *Files) Reload() error {
	f.mu.Lock()
	defer f.mu.Unlock()
	files, err := ReadFiles(f.globs)
	matched := map[string]bool{}
	for _, file := range files {
		matched[file.Source] = true
	}
	for _, src := range f.known {
		if matched[src] {
			continue
		}
		if lerr := listFolder(filepath.Dir(src)); lerr != nil {
			files = append(files, File{Source: src, Err: fmt.Errorf("%s: cannot list its folder: %w", src, lerr)})
		}
	}
	f.warnUnmatched()
	res := f.catalog.Replace(filesOwner, files)
	f.known = f.known[:0]
	for _, file := range files {
		f.known = append(f.known, file.Source)
	}
	return errors.Join(err, res.Err())
}

// warnUnmatched logs each glob that matches no file now and did at the
// last Reload (or had no last Reload).
func (f *Files) warnUnmatched() {
	empty := map[int]bool{}
	for _, i := range Unmatched(f.globs) {
		empty[i] = true
		if !f.empty[i] {
			f.log.Warn("playbook glob matches no file", "glob", f.globs[i])
		}
	}
	f.empty = empty
}

// listFolder returns why dir cannot be listed, or nil.
func listFolder(dir string) error {
	d, err := os.Open(dir)
	if err != nil {
		return err
	}
	defer d.Close()
	if _, err := d.Readdirnames(1); err != nil && !errors.Is(err, io.EOF) {
		return err
	}
	return nil
}
