package promwal

import (
	"context"
	"encoding/json"
	"os"
	"os/exec"
	"path/filepath"
	"strings"
	"syscall"
	"testing"
	"time"

	"github.com/stretchr/testify/require"
	"golang.org/x/sys/unix"
)

func TestInspect(t *testing.T) {
	data := fakeTSDB(t)
	inv, err := Inspect(data, InspectOptions{Now: testNow})
	require.NoError(t, err)

	require.Equal(t, data, inv.DataDir)
	require.Equal(t, headEntries, entryNames(inv.Entries))
	require.Equal(t, headFiles, inv.Files)
	var total int64
	for _, f := range headFiles {
		total += f.Bytes
	}
	require.Equal(t, total, inv.TotalBytes)
	require.Equal(t, WAL{
		Present: true, Bytes: walBytes, Segments: 5,
		FirstSegment: "00000010", LastSegment: "00000014",
		Checkpoint: "checkpoint.00000009", LastWrite: lastWrite,
	}, inv.WAL)
	require.Len(t, inv.Blocks, 2)
	require.Equal(t, newerBlock, inv.Blocks[1].ULID)
	require.Equal(t, newestMaxTime, inv.Blocks[1].MaxTime)
	require.Equal(t, []string{"lock", "queries.active"}, inv.Kept)
	require.Equal(t, []string{"01HQZ0000000000000000000C3.tmp-for-creation", "chunk_snapshot.000014.0000000001.tmp"}, inv.Temporary)
	require.Equal(t, []string{"notes.txt"}, inv.Unknown)
	require.True(t, inv.LockFile)

	lw := inv.LossWindow
	require.Equal(t, newestMaxTime, lw.From)
	require.Equal(t, lastWrite, lw.To, "the empty segment of a crashed start is not evidence of data")
	require.Equal(t, 150*time.Minute, lw.Duration())
	require.Equal(t, "samples after the newest block's maxTime 2025-03-01T08:00:00Z (3h0m0s ago) up to "+
		"the head's last write at 2025-03-01T10:30:00Z (newest non-empty WAL segment, 30m0s ago): about 2h30m0s", lw.Description)
}

func TestInspectLossWindowWithoutBlocks(t *testing.T) {
	data := fakeTSDB(t)
	require.NoError(t, os.RemoveAll(filepath.Join(data, olderBlock)))
	require.NoError(t, os.RemoveAll(filepath.Join(data, newerBlock)))
	inv, err := Inspect(data, InspectOptions{Now: testNow})
	require.NoError(t, err)
	require.True(t, inv.LossWindow.From.IsZero())
	require.Zero(t, inv.LossWindow.Duration())
	require.True(t, strings.HasPrefix(inv.LossWindow.Description, "everything since the WAL started"), inv.LossWindow.Description)
}

func TestInspectUnreadableBlockMeta(t *testing.T) {
	data := fakeTSDB(t)
	require.NoError(t, os.WriteFile(filepath.Join(data, newerBlock, "meta.json"), []byte("{"), 0o644))
	inv, err := Inspect(data, InspectOptions{Now: testNow})
	require.NoError(t, err)
	require.NotEmpty(t, inv.Blocks[1].Err)
	// The window then starts at the newest readable block.
	require.Equal(t, newestMaxTime.Add(-2*time.Hour), inv.LossWindow.From)
}

func TestQuarantineMovesExactlyTheHead(t *testing.T) {
	data := fakeTSDB(t)
	before := snapshot(t, data)
	o := opts(data)
	o.Evidence = []string{"alert PrometheusOOMLoop"}

	m, err := Quarantine(context.Background(), o)
	require.NoError(t, err)

	target := filepath.Join(o.QuarantineDir, "data-20250301T110000Z")
	require.Equal(t, target, m.QuarantinePath)
	require.Equal(t, without(before, headEntries...), snapshot(t, data), "blocks, lock, tmp dirs and unknown entries are untouched")
	moved := snapshot(t, target)
	delete(moved, ManifestName)
	delete(moved, ".")
	want := only(before, headEntries...)
	require.Equal(t, want, moved, "the head moved byte for byte")

	// The manifest on disk is the one returned, complete.
	raw, err := os.ReadFile(filepath.Join(target, ManifestName))
	require.NoError(t, err)
	require.Contains(t, string(raw), `done && mv -- `, "the restore command is readable in the file")
	var onDisk Manifest
	require.NoError(t, json.Unmarshal(raw, &onDisk))
	onDisk.Path = m.Path
	require.Equal(t, *m, onDisk)
	require.True(t, m.Complete)
	require.Equal(t, filepath.Join(target, ManifestName), m.Path)
	require.Equal(t, data, m.DataDir)
	require.Equal(t, testNow, m.CreatedAt)
	require.Equal(t, headFiles, m.Files)
	require.Equal(t, len(headFiles), m.FileCount)
	require.Equal(t, sumBytes(headFiles), m.TotalBytes)
	require.Equal(t, headEntries, entryNames(m.Entries))
	require.Equal(t, []string{olderBlock, newerBlock}, []string{m.BlocksKept[0].ULID, m.BlocksKept[1].ULID})
	require.Equal(t, []string{"lock", "queries.active", "01HQZ0000000000000000000C3.tmp-for-creation", "chunk_snapshot.000014.0000000001.tmp", "notes.txt"}, m.LeftAlone)
	require.Equal(t, 150*time.Minute, m.LossWindow.Duration())
	require.Equal(t, digest(headFiles), m.Digest)
	require.Empty(t, m.Warnings)
	require.Contains(t, m.Evidence, "alert PrometheusOOMLoop")
	for _, name := range []string{"tsdb", "wal_size", "outside", "same_filesystem", "lock", "open_files"} {
		require.True(t, hasPrefix(m.Evidence, name+": "), "evidence for %s in %v", name, m.Evidence)
	}
	require.Equal(t, `(cd -- `+data+` && for e in chunk_snapshot.000013.0000004096 chunks_head wal wbl; do if [ -e "$e" ]; then echo "restore: $e exists again in the data dir (has Prometheus started since?); nothing restored" >&2; exit 1; fi; done && mv -- `+
		target+`/chunk_snapshot.000013.0000004096 `+target+`/chunks_head `+target+`/wal `+target+`/wbl .)`, m.RestoreCommand)
	require.FileExists(t, filepath.Join(data, "lock"), "a lock file left by Prometheus stays")
}

func hasPrefix(lines []string, prefix string) bool {
	for _, l := range lines {
		if strings.HasPrefix(l, prefix) {
			return true
		}
	}
	return false
}

func TestRestoreCommandRoundTrip(t *testing.T) {
	data := fakeTSDB(t)
	before := snapshot(t, data)
	m, err := Quarantine(context.Background(), opts(data))
	require.NoError(t, err)
	require.NotEqual(t, before, snapshot(t, data))

	out, err := exec.Command("/bin/sh", "-c", m.RestoreCommand).CombinedOutput()
	require.NoError(t, err, "%s", out)
	require.Equal(t, before, snapshot(t, data), "the restore puts the tree back identical")
	left := snapshot(t, m.QuarantinePath)
	delete(left, ".")
	require.Equal(t, []string{ManifestName}, keys(left), "only the manifest stays in the quarantine folder")
}

func TestRestoreRefusesOnceANewHeadExists(t *testing.T) {
	data := fakeTSDB(t)
	m, err := Quarantine(context.Background(), opts(data))
	require.NoError(t, err)
	// Prometheus started again and created a new wal/.
	require.NoError(t, os.MkdirAll(filepath.Join(data, "wal"), 0o755))
	beforeData, beforeQ := snapshot(t, data), snapshot(t, m.QuarantinePath)

	out, err := exec.Command("/bin/sh", "-c", m.RestoreCommand).CombinedOutput()
	require.Error(t, err)
	require.Contains(t, string(out), "restore: wal exists again in the data dir")
	require.Equal(t, beforeData, snapshot(t, data))
	require.Equal(t, beforeQ, snapshot(t, m.QuarantinePath))
}

func TestRestoreCommandQuotesPaths(t *testing.T) {
	root := t.TempDir()
	data := filepath.Join(root, "it's data $HOME")
	require.NoError(t, os.MkdirAll(filepath.Join(data, "wal"), 0o755))
	require.NoError(t, os.WriteFile(filepath.Join(data, "wal", "00000000"), []byte("x"), 0o644))
	before := snapshot(t, data)
	m, err := Quarantine(context.Background(), QuarantineOptions{DataDir: data, QuarantineDir: filepath.Join(root, "q `x`")})
	require.NoError(t, err)
	out, err := exec.Command("/bin/sh", "-c", m.RestoreCommand).CombinedOutput()
	require.NoError(t, err, "%s", out)
	require.Equal(t, before, snapshot(t, data))
}

func keys(m map[string]string) []string {
	var out []string
	for k := range m {
		out = append(out, k)
	}
	return out
}

// holdLock takes the flock on data/lock through a file descriptor of its
// own, as a running Prometheus does, until the test ends.
func holdLock(t *testing.T, data string) {
	t.Helper()
	f, err := os.OpenFile(filepath.Join(data, "lock"), os.O_RDWR|os.O_CREATE, 0o644)
	require.NoError(t, err)
	require.NoError(t, unix.Flock(int(f.Fd()), unix.LOCK_EX|unix.LOCK_NB))
	t.Cleanup(func() { f.Close() })
}

// holdOpen starts a child process that keeps path open, as a Prometheus
// without a lock file keeps its WAL segment open, until the test ends.
func holdOpen(t *testing.T, path string) int {
	t.Helper()
	cmd := exec.Command("/bin/sh", "-c", `exec sleep 300 < "$1"`, "sh", path)
	require.NoError(t, cmd.Start())
	t.Cleanup(func() {
		_ = cmd.Process.Kill()
		_ = cmd.Wait()
	})
	// Wait until the shell has exec'd sleep with the file open.
	require.Eventually(t, func() bool {
		p, ok := procUses(cmd.Process.Pid, filepath.Dir(path))
		return ok && p != ""
	}, 10*time.Second, 10*time.Millisecond)
	return cmd.Process.Pid
}

func TestQuarantineRefuses(t *testing.T) {
	for _, tc := range []struct {
		name   string
		setup  func(t *testing.T, data string, o *QuarantineOptions)
		is     error
		detail string
	}{
		{"lock held by another process", func(t *testing.T, data string, _ *QuarantineOptions) { holdLock(t, data) },
			ErrLocked, "is locked (flock) by another process: a Prometheus is running on this dir"},
		{"lock held, no lock file before", func(t *testing.T, data string, _ *QuarantineOptions) {
			require.NoError(t, os.Remove(filepath.Join(data, "lock")))
			holdLock(t, data)
		}, ErrLocked, "is locked (flock)"},
		{"a process has a WAL segment open", func(t *testing.T, data string, _ *QuarantineOptions) {
			holdOpen(t, filepath.Join(data, "wal", "00000013"))
		}, ErrInUse, "(sleep) has " + "%DATA%/wal/00000013 open"},
		{"WAL below the minimum", func(_ *testing.T, _ string, o *QuarantineOptions) { o.MinWALBytes = walBytes + 1 },
			ErrWALTooSmall, "wal/ holds 106304 bytes (103.8 KiB), below the minimum 106305 (106305)"},
		{"quarantine dir inside the data dir", func(_ *testing.T, data string, o *QuarantineOptions) {
			o.QuarantineDir = filepath.Join(data, "quarantine")
		}, ErrInsideDataDir, "is inside the data dir"},
		{"quarantine dir is the data dir", func(_ *testing.T, data string, o *QuarantineOptions) { o.QuarantineDir = data },
			ErrInsideDataDir, "is inside the data dir"},
		{"quarantine dir inside the data dir through a symlink", func(t *testing.T, data string, o *QuarantineOptions) {
			link := filepath.Join(filepath.Dir(data), "sneaky")
			require.NoError(t, os.Symlink(data, link))
			o.QuarantineDir = filepath.Join(link, "q")
		}, ErrInsideDataDir, "is inside the data dir"},
		{"no wal and no chunks_head", func(t *testing.T, data string, o *QuarantineOptions) {
			require.NoError(t, os.Rename(filepath.Join(data, "wal"), filepath.Join(data, "wal.old")))
			require.NoError(t, os.Rename(filepath.Join(data, "chunks_head"), filepath.Join(data, "chunks_head.old")))
			o.MinWALBytes = 0
		}, ErrNotTSDB, "has neither wal/ nor chunks_head/"},
		{"wal is a symlink", func(t *testing.T, data string, _ *QuarantineOptions) {
			elsewhere := filepath.Join(filepath.Dir(data), "walstore")
			require.NoError(t, os.Rename(filepath.Join(data, "wal"), elsewhere))
			require.NoError(t, os.Symlink(elsewhere, filepath.Join(data, "wal")))
		}, ErrNotTSDB, "wal is a symlink to"},
		{"quarantine dir on another filesystem", func(t *testing.T, data string, o *QuarantineOptions) {
			o.QuarantineDir = otherFilesystemDir(t, data)
		}, ErrCrossDevice, "is not on the data dir's filesystem"},
	} {
		t.Run(tc.name, func(t *testing.T) {
			data := fakeTSDB(t)
			o := opts(data)
			tc.setup(t, data, &o)
			before := snapshot(t, filepath.Dir(data))

			m, err := Quarantine(context.Background(), o)
			require.Nil(t, m)
			require.ErrorIs(t, err, ErrRefused)
			require.ErrorIs(t, err, tc.is)
			require.Contains(t, err.Error(), strings.ReplaceAll(tc.detail, "%DATA%", data))
			require.Equal(t, before, snapshot(t, filepath.Dir(data)), "a refusal changes nothing")

			// The preview refuses the same way, also without side effects.
			p, err := PreviewQuarantine(o)
			require.NoError(t, err)
			require.ErrorIs(t, p.Err(), tc.is)
			require.Equal(t, before, snapshot(t, filepath.Dir(data)))
		})
	}
}

// otherFilesystemDir returns a fresh dir on another filesystem than data:
// /dev/shm, a tmpfs on Linux.
func otherFilesystemDir(t *testing.T, data string) string {
	t.Helper()
	dir, err := os.MkdirTemp("/dev/shm", "promwal-test-")
	if err != nil {
		t.Skipf("no /dev/shm to test a second filesystem: %v", err)
	}
	t.Cleanup(func() { os.RemoveAll(dir) })
	d1, err := statDev(dir)
	require.NoError(t, err)
	d2, err := statDev(data)
	require.NoError(t, err)
	if d1 == d2 {
		t.Skip("/dev/shm is on the same filesystem as the test's temporary dir")
	}
	return dir
}

func TestQuarantineReportsEveryFailedCheck(t *testing.T) {
	data := fakeTSDB(t)
	holdLock(t, data)
	o := opts(data)
	o.MinWALBytes = 1 << 30
	o.QuarantineDir = filepath.Join(data, "q")
	_, err := Quarantine(context.Background(), o)
	var re *RefusedError
	require.ErrorAs(t, err, &re)
	var names []string
	for _, c := range re.Failed {
		names = append(names, c.Name)
	}
	require.Equal(t, []string{"wal_size", "outside", "lock"}, names)
}

func TestQuarantineCreatesAndRemovesAMissingLockFile(t *testing.T) {
	data := fakeTSDB(t)
	require.NoError(t, os.Remove(filepath.Join(data, "lock")))
	before := snapshot(t, data)
	m, err := Quarantine(context.Background(), opts(data))
	require.NoError(t, err)
	require.NoFileExists(t, filepath.Join(data, "lock"))
	require.Equal(t, without(before, headEntries...), snapshot(t, data))
	require.NotContains(t, m.LeftAlone, "lock")
}

func TestQuarantineHonoursContext(t *testing.T) {
	data := fakeTSDB(t)
	before := snapshot(t, filepath.Dir(data))
	ctx, cancel := context.WithCancel(context.Background())
	cancel()
	_, err := Quarantine(ctx, opts(data))
	require.ErrorIs(t, err, context.Canceled)
	require.Equal(t, before, snapshot(t, filepath.Dir(data)))
}

func TestQuarantineRollsBackWhenARenameFails(t *testing.T) {
	data := fakeTSDB(t)
	o := opts(data)
	before := snapshot(t, data)
	var calls []string
	o.rename = func(from, to string) error {
		calls = append(calls, filepath.Base(from)+">"+filepath.Base(filepath.Dir(to)))
		if filepath.Base(from) == "wal" && filepath.Dir(from) == data {
			return &os.LinkError{Op: "rename", Old: from, New: to, Err: syscall.EIO}
		}
		return os.Rename(from, to)
	}
	_, err := Quarantine(context.Background(), o)
	require.ErrorIs(t, err, syscall.EIO)
	require.ErrorContains(t, err, "move wal")
	require.Equal(t, []string{
		"chunk_snapshot.000013.0000004096>data-20250301T110000Z", "chunks_head>data-20250301T110000Z", "wal>data-20250301T110000Z",
		"chunks_head>data", "chunk_snapshot.000013.0000004096>data",
	}, calls, "the entries moved are moved back, last first")
	require.Equal(t, before, snapshot(t, data), "all or nothing")
	require.NoDirExists(t, filepath.Join(o.QuarantineDir, "data-20250301T110000Z"), "the emptied folder and its manifest are removed")
}

func TestQuarantineFolderExistsAlready(t *testing.T) {
	data := fakeTSDB(t)
	o := opts(data)
	require.NoError(t, os.MkdirAll(filepath.Join(o.QuarantineDir, "data-20250301T110000Z"), 0o750))
	before := snapshot(t, data)
	_, err := Quarantine(context.Background(), o)
	require.ErrorIs(t, err, os.ErrExist)
	require.Equal(t, before, snapshot(t, data))
}

func TestQuarantineRequiresAbsolutePaths(t *testing.T) {
	for _, o := range []QuarantineOptions{
		{DataDir: "data", QuarantineDir: "/q"},
		{DataDir: "/data", QuarantineDir: "q"},
	} {
		_, err := Quarantine(context.Background(), o)
		require.ErrorContains(t, err, "must be an absolute path")
		_, err = PreviewQuarantine(o)
		require.ErrorContains(t, err, "must be an absolute path")
	}
	_, err := Quarantine(context.Background(), QuarantineOptions{DataDir: "/nonexistent/data", QuarantineDir: "/q"})
	require.ErrorIs(t, err, os.ErrNotExist)
}
