package playbooks

import (
	"bytes"
	"context"
	"log/slog"
	"os"
	"path/filepath"
	"runtime"
	"strings"
	"sync"
	"testing"
	"time"

	"github.com/fsnotify/fsnotify"
	"github.com/stretchr/testify/require"
)

const (
	watchTimeout  = 10 * time.Second       // for a call of changed that must come
	watchDebounce = 20 * time.Millisecond  // short, to keep the tests quick
	watchSettle   = 150 * time.Millisecond // for the stragglers of a step to arrive
)

// watchRig runs WatchFiles in the background and records each call of
// changed on a buffered channel.
type watchRig struct {
	t       *testing.T
	changed chan struct{}
}

// startWatch runs WatchFiles on globs until the test ends, and returns once
// its watches are in place (its first call of changed). The test fails if
// WatchFiles returns an error or does not stop within watchTimeout.
func startWatch(t *testing.T, globs []string) *watchRig {
	t.Helper()
	ctx, cancel := context.WithCancel(context.Background())
	r := &watchRig{t: t, changed: make(chan struct{}, 100)}
	done := make(chan error, 1)
	logger := slog.New(slog.NewTextHandler(t.Output(), &slog.HandlerOptions{Level: slog.LevelDebug}))
	go func() {
		done <- WatchFiles(ctx, globs, WatchOptions{Debounce: watchDebounce, Logger: logger}, r.signal)
	}()
	t.Cleanup(func() {
		cancel()
		select {
		case err := <-done:
			require.NoError(t, err)
		case <-time.After(watchTimeout):
			t.Error("WatchFiles did not return after its context was cancelled")
		}
	})
	r.wait("the first call, once the watches are in place")
	return r
}

func (r *watchRig) signal() {
	select {
	case r.changed <- struct{}{}:
	default: // calls are already pending: one is as good as many
	}
}

// wait fails the test unless changed is called within watchTimeout.
func (r *watchRig) wait(after string) {
	r.t.Helper()
	select {
	case <-r.changed:
	case <-time.After(watchTimeout):
		r.t.Fatalf("changed was not called within %s after %s", watchTimeout, after)
	}
}

// settle waits for the stragglers of the last step and drains them; it
// returns how many calls it drained.
func (r *watchRig) settle() int {
	time.Sleep(watchSettle)
	for n := 0; ; n++ {
		select {
		case <-r.changed:
		default:
			return n
		}
	}
}

func writeFile(t *testing.T, path, content string) {
	t.Helper()
	require.NoError(t, os.MkdirAll(filepath.Dir(path), 0o755))
	require.NoError(t, os.WriteFile(path, []byte(content), 0o644))
}

func requireContent(t *testing.T, path, want string) {
	t.Helper()
	got, err := os.ReadFile(path)
	require.NoError(t, err)
	require.Equal(t, want, string(got))
}

// watchStep changes the tree; changed must be called after it.
type watchStep struct {
	name string
	do   func(t *testing.T, dir string)
}

func TestWatchFiles(t *testing.T) {
	tests := []struct {
		name  string
		setup func(t *testing.T, dir string) (globs []string)
		steps []watchStep
	}{{
		name:  "in-place write",
		setup: flatTree,
		steps: []watchStep{{"writing a.yaml in place", func(t *testing.T, dir string) {
			f, err := os.OpenFile(filepath.Join(dir, "a.yaml"), os.O_WRONLY|os.O_APPEND, 0)
			require.NoError(t, err)
			_, err = f.WriteString("# more\n")
			require.NoError(t, err)
			require.NoError(t, f.Close())
		}}},
	}, {
		name:  "new file",
		setup: flatTree,
		steps: []watchStep{{"creating b.yaml", func(t *testing.T, dir string) {
			writeFile(t, filepath.Join(dir, "b.yaml"), "b")
		}}},
	}, {
		name:  "file removed",
		setup: flatTree,
		steps: []watchStep{{"removing a.yaml", func(t *testing.T, dir string) {
			require.NoError(t, os.Remove(filepath.Join(dir, "a.yaml")))
		}}},
	}, {
		name:  "editor save",
		setup: flatTree,
		steps: []watchStep{{"renaming a temporary file over a.yaml", func(t *testing.T, dir string) {
			tmp := filepath.Join(dir, ".a.yaml.swp")
			writeFile(t, tmp, "a2")
			require.NoError(t, os.Rename(tmp, filepath.Join(dir, "a.yaml")))
			requireContent(t, filepath.Join(dir, "a.yaml"), "a2")
		}}, {"saving a.yaml a second time", func(t *testing.T, dir string) {
			tmp := filepath.Join(dir, ".a.yaml.swp")
			writeFile(t, tmp, "a3")
			require.NoError(t, os.Rename(tmp, filepath.Join(dir, "a.yaml")))
		}}},
	}, {
		name: "folder created later",
		setup: func(t *testing.T, dir string) []string {
			return []string{filepath.Join(dir, "later", "sub", "*.yaml")}
		},
		steps: []watchStep{{"creating the folder and a file in it", func(t *testing.T, dir string) {
			writeFile(t, filepath.Join(dir, "later", "sub", "a.yaml"), "a")
		}}, {"writing that file again", func(t *testing.T, dir string) {
			writeFile(t, filepath.Join(dir, "later", "sub", "a.yaml"), "a2")
		}}, {"removing the folder", func(t *testing.T, dir string) {
			require.NoError(t, os.RemoveAll(filepath.Join(dir, "later")))
		}}, {"creating it again", func(t *testing.T, dir string) {
			writeFile(t, filepath.Join(dir, "later", "sub", "a.yaml"), "a3")
		}}, {"writing the file in the new folder", func(t *testing.T, dir string) {
			writeFile(t, filepath.Join(dir, "later", "sub", "a.yaml"), "a4")
		}}},
	}, {
		name: "watched folder renamed",
		setup: func(t *testing.T, dir string) []string {
			writeFile(t, filepath.Join(dir, "pb", "a.yaml"), "a")
			return []string{filepath.Join(dir, "pb", "*.yaml")}
		},
		steps: []watchStep{{"renaming the folder away", func(t *testing.T, dir string) {
			require.NoError(t, os.Rename(filepath.Join(dir, "pb"), filepath.Join(dir, "pb.old")))
		}}, {"creating it again", func(t *testing.T, dir string) {
			writeFile(t, filepath.Join(dir, "pb", "a.yaml"), "a2")
		}}, {"writing the file in the new folder", func(t *testing.T, dir string) {
			writeFile(t, filepath.Join(dir, "pb", "a.yaml"), "a3")
		}}},
	}, {
		name: "glob in a folder level",
		setup: func(t *testing.T, dir string) []string {
			return []string{filepath.Join(dir, "*", "pb", "*.yaml")}
		},
		steps: []watchStep{{"creating team1/pb/a.yaml", func(t *testing.T, dir string) {
			writeFile(t, filepath.Join(dir, "team1", "pb", "a.yaml"), "a")
		}}, {"writing it again", func(t *testing.T, dir string) {
			writeFile(t, filepath.Join(dir, "team1", "pb", "a.yaml"), "a2")
		}}, {"creating team2", func(t *testing.T, dir string) {
			require.NoError(t, os.Mkdir(filepath.Join(dir, "team2"), 0o755))
		}}, {"creating team2/pb/b.yaml", func(t *testing.T, dir string) {
			writeFile(t, filepath.Join(dir, "team2", "pb", "b.yaml"), "b")
		}}},
	}, {
		name: "symlinked folder swapped",
		setup: func(t *testing.T, dir string) []string {
			writeFile(t, filepath.Join(dir, "releases", "v1", "a.yaml"), "v1")
			require.NoError(t, os.Symlink(filepath.Join("releases", "v1"), filepath.Join(dir, "current")))
			return []string{filepath.Join(dir, "current", "*.yaml")}
		},
		steps: []watchStep{{"pointing current at v2 with a rename", func(t *testing.T, dir string) {
			writeFile(t, filepath.Join(dir, "releases", "v2", "a.yaml"), "v2")
			require.NoError(t, os.Symlink(filepath.Join("releases", "v2"), filepath.Join(dir, "current.tmp")))
			require.NoError(t, os.Rename(filepath.Join(dir, "current.tmp"), filepath.Join(dir, "current")))
			requireContent(t, filepath.Join(dir, "current", "a.yaml"), "v2")
		}}, {"writing the file of v2", func(t *testing.T, dir string) {
			writeFile(t, filepath.Join(dir, "releases", "v2", "a.yaml"), "v2.1")
		}}},
	}}
	for _, tt := range tests {
		t.Run(tt.name, func(t *testing.T) {
			t.Parallel()
			dir := t.TempDir()
			r := startWatch(t, tt.setup(t, dir))
			for _, s := range tt.steps {
				r.settle()
				s.do(t, dir)
				r.wait(s.name)
			}
		})
	}
}

// flatTree holds a.yaml, matched by *.yaml.
func flatTree(t *testing.T, dir string) []string {
	writeFile(t, filepath.Join(dir, "a.yaml"), "a")
	return []string{filepath.Join(dir, "*.yaml")}
}

// kubeletWrite projects payload (key → content) into dir, a ConfigMap
// volume, exactly as the kubelet's AtomicWriter.Write does
// (k8s.io/kubernetes pkg/volume/util/atomic_writer.go):
//
//  1. read the ..data symlink to find the current timestamped folder (none
//     on the first write);
//  2. create a new timestamped folder in dir, "..<UTC time as
//     2006_01_02_15_04_05>.<random>" (os.MkdirTemp), and chmod it 0755;
//  3. write each key's file into it and chmod it to the key's mode;
//  4. create the relative symlink ..data_tmp -> <new timestamped folder>;
//  5. rename ..data_tmp over ..data: the atomic switch;
//  6. create each user-visible symlink <key> -> ..data/<key>, only if it
//     does not exist yet;
//  7. remove the user-visible symlinks of keys that left the payload;
//  8. remove the old timestamped folder and everything in it.
//
// The kubelet skips all this when nothing changed (the tests always change
// something) and may chown the new folder between 3 and 4 (left out here). <key> itself is never written, renamed or removed while it
// stays in the payload: only ..data, ..data_tmp and the timestamped folders
// change.
func kubeletWrite(t *testing.T, dir string, payload map[string]string) {
	t.Helper()
	dataDir := filepath.Join(dir, "..data")
	oldTS, err := os.Readlink(dataDir) // 1
	if err != nil {
		require.ErrorIs(t, err, os.ErrNotExist)
		oldTS = ""
	}
	var oldKeys []string
	if oldTS != "" {
		entries, err := os.ReadDir(filepath.Join(dir, oldTS))
		require.NoError(t, err)
		for _, e := range entries {
			oldKeys = append(oldKeys, e.Name())
		}
	}
	tsDir, err := os.MkdirTemp(dir, time.Now().UTC().Format("..2006_01_02_15_04_05.")) // 2
	require.NoError(t, err)
	require.NoError(t, os.Chmod(tsDir, 0o755))
	for key, content := range payload { // 3
		p := filepath.Join(tsDir, key)
		require.NoError(t, os.WriteFile(p, []byte(content), 0o644))
		require.NoError(t, os.Chmod(p, 0o644))
	}
	tmpLink := filepath.Join(dir, "..data_tmp")
	require.NoError(t, os.Symlink(filepath.Base(tsDir), tmpLink)) // 4
	require.NoError(t, os.Rename(tmpLink, dataDir))               // 5
	for key := range payload {                                    // 6
		visible := filepath.Join(dir, key)
		if _, err := os.Readlink(visible); os.IsNotExist(err) {
			require.NoError(t, os.Symlink(filepath.Join("..data", key), visible))
		}
	}
	for _, key := range oldKeys { // 7
		if _, ok := payload[key]; !ok {
			require.NoError(t, os.Remove(filepath.Join(dir, key)))
		}
	}
	if oldTS != "" { // 8
		require.NoError(t, os.RemoveAll(filepath.Join(dir, oldTS)))
	}
}

func TestWatchFilesKubeletAtomicWriter(t *testing.T) {
	t.Parallel()
	dir := t.TempDir()
	kubeletWrite(t, dir, map[string]string{"disk.yaml": "v1"})
	glob := filepath.Join(dir, "*.yaml")
	matched := func() []string {
		files, err := ExpandGlobs([]string{glob})
		require.NoError(t, err)
		return files
	}
	disk := filepath.Join(dir, "disk.yaml")
	require.Equal(t, []string{disk}, matched())
	r := startWatch(t, []string{glob})

	for _, v := range []string{"v2", "v3"} {
		r.settle()
		kubeletWrite(t, dir, map[string]string{"disk.yaml": v})
		r.wait("the kubelet swapped ..data to " + v)
		requireContent(t, disk, v)
		target, err := os.Readlink(disk)
		require.NoError(t, err)
		require.Equal(t, filepath.Join("..data", "disk.yaml"), target, "the glob-matched path itself is never replaced")
		t.Logf("the swap to %s gave %d call(s) of changed", v, 1+r.settle())
	}

	r.settle()
	kubeletWrite(t, dir, map[string]string{"disk.yaml": "v4", "more.yaml": "m"})
	r.wait("the kubelet added a key")
	require.Equal(t, []string{disk, filepath.Join(dir, "more.yaml")}, matched())
	requireContent(t, filepath.Join(dir, "more.yaml"), "m")

	r.settle()
	kubeletWrite(t, dir, map[string]string{"disk.yaml": "v4"})
	r.wait("the kubelet removed a key")
	require.Equal(t, []string{disk}, matched())
}

// lockedBuffer is a bytes.Buffer safe for concurrent use.
type lockedBuffer struct {
	mu  sync.Mutex
	buf bytes.Buffer
}

func (b *lockedBuffer) Write(p []byte) (int, error) {
	b.mu.Lock()
	defer b.mu.Unlock()
	return b.buf.Write(p)
}

func (b *lockedBuffer) String() string {
	b.mu.Lock()
	defer b.mu.Unlock()
	return b.buf.String()
}

func TestWatchFilesErrorTriggers(t *testing.T) {
	t.Parallel()
	fw, err := fsnotify.NewWatcher()
	require.NoError(t, err)
	defer fw.Close()
	var logs lockedBuffer
	o := WatchOptions{Debounce: watchDebounce, Logger: slog.New(slog.NewTextHandler(&logs, nil))}
	w := newFolderWatch(fw, []string{filepath.Join(t.TempDir(), "*.yaml")}, o)

	ctx, cancel := context.WithCancel(context.Background())
	errs := make(chan error)
	done := make(chan error, 1)
	r := &watchRig{t: t, changed: make(chan struct{}, 100)}
	go func() { done <- w.run(ctx, fw.Events, errs, r.signal) }()
	r.wait("the first call")
	r.settle()
	errs <- fsnotify.ErrEventOverflow
	r.wait("an fsnotify error")
	cancel()
	require.NoError(t, <-done)
	require.Contains(t, logs.String(), `level=WARN msg="playbook folder watch error, reloading" component=playbooks err="fsnotify: queue or buffer overflow"`)
}

// TestWatchFilesMalformedGlob shows that a malformed glob is logged and
// otherwise ignored: the other globs, here relative ones, are still watched.
func TestWatchFilesMalformedGlob(t *testing.T) {
	dir := t.TempDir()
	t.Chdir(dir)
	var logs lockedBuffer
	o := WatchOptions{Debounce: watchDebounce, Logger: slog.New(slog.NewTextHandler(&logs, nil))}
	ctx, cancel := context.WithCancel(context.Background())
	r := &watchRig{t: t, changed: make(chan struct{}, 100)}
	done := make(chan error, 1)
	go func() {
		done <- WatchFiles(ctx, []string{"[", "x/[/*.yaml", "[*.yaml", "*.yaml"}, o, r.signal)
	}()
	r.wait("the first call")
	r.settle()
	writeFile(t, filepath.Join(dir, "a.yaml"), "a")
	r.wait("creating a.yaml matched by a relative glob")
	cancel()
	require.NoError(t, <-done)
	require.Contains(t, logs.String(), `level=WARN msg="malformed playbook glob, only its literal folder is watched" component=playbooks glob=[ err="syntax error in pattern"`)
	require.Equal(t, 3, strings.Count(logs.String(), "malformed playbook glob"))
}

// TestWatchFilesStopsOnCancel is not parallel, so that the goroutine count
// is its own.
func TestWatchFilesStopsOnCancel(t *testing.T) {
	before := runtime.NumGoroutine()
	globs := []string{filepath.Join(t.TempDir(), "*.yaml")}
	ctx, cancel := context.WithCancel(context.Background())
	r := &watchRig{t: t, changed: make(chan struct{}, 100)}
	done := make(chan error, 1)
	go func() { done <- WatchFiles(ctx, globs, WatchOptions{}, r.signal) }()
	r.wait("the first call")
	cancel()
	select {
	case err := <-done:
		require.NoError(t, err)
	case <-time.After(2 * time.Second):
		t.Fatal("WatchFiles did not return within 2s of its context being cancelled")
	}
	// Polled by hand: require.Eventually runs its condition on a goroutine
	// of its own.
	for deadline := time.Now().Add(watchTimeout); runtime.NumGoroutine() > before; time.Sleep(10 * time.Millisecond) {
		if time.Now().After(deadline) {
			t.Fatalf("%d goroutines left behind", runtime.NumGoroutine()-before)
		}
	}
}

func TestGlobFolders(t *testing.T) {
	dir := t.TempDir()
	for _, d := range []string{"a/x/pb", "b/pb", "c"} {
		require.NoError(t, os.MkdirAll(filepath.Join(dir, d), 0o755))
	}
	tests := []struct {
		glob string
		want []string
	}{
		{"/etc/selfheal/playbooks/*.yaml", []string{"/etc/selfheal/playbooks"}},
		{"/etc/selfheal/playbooks.yaml", []string{"/etc/selfheal"}},
		{"playbooks/*.yaml", []string{"playbooks"}},
		{"*.yaml", []string{"."}},
		{"[", []string{"."}},
		{dir + "/[/*.yaml", []string{dir}},
		{dir + "/*/pb/*.yaml", []string{dir + "/b/pb", dir + "/a", dir + "/b", dir + "/c", dir}},
		{dir + "/*/*/pb/*.yaml", []string{dir + "/a/x/pb", dir + "/a/x", dir + "/b/pb", dir + "/a", dir + "/b", dir + "/c", dir}},
		{dir + "/nope/*/*.yaml", []string{dir + "/nope"}},
	}
	for _, tt := range tests {
		t.Run(tt.glob, func(t *testing.T) {
			require.Equal(t, tt.want, globFolders(tt.glob))
		})
	}
}
