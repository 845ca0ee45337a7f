package playbooks

import (
	"context"
	"fmt"
	"io"
	"log/slog"
	"os"
	"path/filepath"
	"strings"
	"testing"
	"testing/synctest"
	"time"

	"github.com/fsnotify/fsnotify"
	"github.com/prometheus/client_golang/prometheus/testutil"
	"github.com/stretchr/testify/require"
)

// reloadOK renders the selfheal_config_last_reload_successful series, as
// testutil.CollectAndCompare expects them: sourceValue alternates a source
// and its value, in source order.
func reloadOK(sourceValue ...string) io.Reader {
	var b strings.Builder
	b.WriteString("# HELP selfheal_config_last_reload_successful Whether the newest content of the playbook source is active (1) or was refused (0).\n" +
		"# TYPE selfheal_config_last_reload_successful gauge\n")
	for i := 0; i+1 < len(sourceValue); i += 2 {
		fmt.Fprintf(&b, "selfheal_config_last_reload_successful{source=%q} %s\n", sourceValue[i], sourceValue[i+1])
	}
	return strings.NewReader(b.String())
}

// TestFilesFolderGoneKeepsLastGoodVersion removes the watched playbook
// folder: the playbooks it held stay active and their sources fail, as a
// broken file does, until the folder is back. The watch runs in a synctest
// bubble on injected events, so its debounce timer runs on the fake clock.
func TestFilesFolderGoneKeepsLastGoodVersion(t *testing.T) {
	fw, err := fsnotify.NewWatcher() // outside the bubble: its reader goroutine sits in a syscall
	require.NoError(t, err)
	defer fw.Close()
	synctest.Test(t, func(t *testing.T) {
		pb := filepath.Join(t.TempDir(), "pb")
		a, c := filepath.Join(pb, "a.yaml"), filepath.Join(pb, "c.yaml")
		writeFile(t, a, string(book("a")))
		writeFile(t, c, string(book("c")))
		glob := filepath.Join(pb, "*.yaml")
		cat := NewCatalog(testRegistry(t), CatalogOptions{})
		var logs lockedBuffer
		files := NewFiles([]string{glob}, cat, FilesOptions{Logger: slog.New(slog.NewTextHandler(&logs, nil))})

		ctx, cancel := context.WithCancel(t.Context())
		reloads := make(chan error)
		reload := func() {
			select {
			case reloads <- files.Reload():
			case <-ctx.Done():
			}
		}
		events := make(chan fsnotify.Event)
		done := make(chan error, 1)
		w := newFolderWatch(fw, []string{glob}, WatchOptions{Debounce: time.Second})
		go func() { done <- w.run(ctx, events, make(chan error), reload) }()
		require.NoError(t, <-reloads, "the first call")
		good := cat.Set().Get("a")
		require.NotNil(t, good)
		require.NoError(t, testutil.CollectAndCompare(cat, reloadOK(a, "1", c, "1"), "selfheal_config_last_reload_successful"))

		require.NoError(t, os.RemoveAll(pb))
		events <- fsnotify.Event{Name: pb, Op: fsnotify.Remove}
		err := <-reloads
		require.Same(t, good, cat.Set().Get("a"), "the last good version stays active")
		require.Equal(t, []string{"a", "c"}, names(cat.Set().All()))
		want := a + ": cannot list its folder: open " + pb + ": no such file or directory"
		require.ErrorContains(t, err, want)
		st := statusOf(t, cat, a)
		require.Equal(t, want, st.LastError)
		require.Equal(t, good.Revision, st.Revision)
		require.NoError(t, testutil.CollectAndCompare(cat, reloadOK(a, "0", c, "0"), "selfheal_config_last_reload_successful"))
		require.Contains(t, logs.String(), `level=WARN msg="playbook glob matches no file" component=playbooks glob=`+glob+"\n")

		writeFile(t, a, string(book("a", "b")))
		writeFile(t, c, string(book("c")))
		events <- fsnotify.Event{Name: pb, Op: fsnotify.Create}
		require.NoError(t, <-reloads, "the folder is back")
		require.Equal(t, []string{"a", "b", "c"}, names(cat.Set().All()))
		require.Empty(t, statusOf(t, cat, a).LastError)
		require.NoError(t, testutil.CollectAndCompare(cat, reloadOK(a, "1", c, "1"), "selfheal_config_last_reload_successful"))

		require.NoError(t, os.Remove(c))
		events <- fsnotify.Event{Name: c, Op: fsnotify.Remove}
		require.NoError(t, <-reloads)
		require.Equal(t, []string{"a", "b"}, names(cat.Set().All()), "a file removed from a folder that is there is removed")

		cancel()
		require.NoError(t, <-done)
	})
}

func statusOf(t *testing.T, c *Catalog, source string) SourceStatus {
	t.Helper()
	for _, st := range c.Statuses() {
		if st.Source == source {
			return st
		}
	}
	t.Fatalf("no source %s in %+v", source, c.Statuses())
	return SourceStatus{}
}

// padded returns a playbook file defining names, padded with a comment to
// exactly size bytes.
func padded(t *testing.T, size int, names ...string) []byte {
	t.Helper()
	data := book(names...)
	pad := size - len(data) - len("#\n")
	require.GreaterOrEqual(t, pad, 0)
	data = append(data, '#')
	data = append(data, strings.Repeat("x", pad)...)
	data = append(data, '\n')
	require.Len(t, data, size)
	return data
}

const mib = 1 << 20

// TestFileSizeLimit: a file just over 1 MiB is refused before it is read,
// and its last good version stays; a file of exactly 1 MiB loads.
func TestFileSizeLimit(t *testing.T) {
	require.Equal(t, mib, MaxFileSize)
	dir := t.TempDir()
	at, over := filepath.Join(dir, "at.yaml"), filepath.Join(dir, "over.yaml")
	writeFile(t, at, string(padded(t, mib, "at")))
	writeFile(t, over, string(book("over")))
	cat := NewCatalog(testRegistry(t), CatalogOptions{})
	files, err := ReadFiles([]string{filepath.Join(dir, "*.yaml")})
	require.NoError(t, err)
	res := cat.Replace("files", files)
	require.NoError(t, res.Err())
	good := cat.Set().Get("over")
	require.NotNil(t, good)
	require.NotNil(t, cat.Set().Get("at"), "a file of exactly 1 MiB loads")

	writeFile(t, over, string(padded(t, mib+1, "over", "more")))
	files, err = ReadFiles([]string{filepath.Join(dir, "*.yaml")})
	require.NoError(t, err)
	want := over + ": 1048577 bytes is over the 1 MiB limit for a playbook file"
	require.Len(t, files, 2)
	require.Equal(t, File{Source: at, Data: padded(t, mib, "at")}, files[0])
	require.Equal(t, over, files[1].Source)
	require.Nil(t, files[1].Data, "not read")
	require.EqualError(t, files[1].Err, want)
	res = cat.Replace("files", files)
	require.EqualError(t, res.Err(), want)
	require.Same(t, good, cat.Set().Get("over"), "the last good version stays")
	require.Nil(t, cat.Set().Get("more"))
	require.Equal(t, want, statusOf(t, cat, over).LastError)

	_, err = LoadFiles(testRegistry(t), []string{over})
	require.EqualError(t, err, want, "dry-run reads files the same way")

	// A 14 MiB file, sparse: its size is known without reading it.
	big := filepath.Join(dir, "big.yaml")
	f, err := os.Create(big)
	require.NoError(t, err)
	require.NoError(t, f.Truncate(14*mib))
	require.NoError(t, f.Close())
	_, err = ReadFile(big)
	require.EqualError(t, err, big+": 14.0 MiB is over the 1 MiB limit for a playbook file")
}

// TestParseSizeLimit: content that did not come from a file, such as a
// ConfigMap key, is refused over 1 MiB before it is parsed.
func TestParseSizeLimit(t *testing.T) {
	const source = "configmap/ops/big/a.yaml"
	_, err := Parse(testRegistry(t), source, padded(t, mib+1, "a"))
	require.EqualError(t, err, source+": 1048577 bytes is over the 1 MiB limit for a playbook file")
	pbs, err := Parse(testRegistry(t), source, padded(t, mib, "a"))
	require.NoError(t, err)
	require.Len(t, pbs, 1)
}
