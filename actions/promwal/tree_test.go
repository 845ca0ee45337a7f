package promwal

import (
	"crypto/sha256"
	"encoding/hex"
	"fmt"
	"io/fs"
	"math/rand/v2"
	"os"
	"path/filepath"
	"strings"
	"testing"
	"time"

	"github.com/stretchr/testify/require"
)

// Fake TSDB layout used by the unit tests. Two blocks, the newer ending at
// newestMaxTime; WAL segments 10..14 with a checkpoint of 9, the newest
// non-empty one written at lastWrite (segment 14 is empty, as after a
// crashed start); head chunks, an out-of-order WBL, a snapshot, a stale
// lock, tmp dirs and an unknown file.
const (
	olderBlock = "01HQZ0000000000000000000A1"
	newerBlock = "01HQZ0000000000000000000B2"
)

var (
	newestMaxTime = time.Date(2025, 3, 1, 8, 0, 0, 0, time.UTC)
	lastWrite     = time.Date(2025, 3, 1, 10, 30, 0, 0, time.UTC)
	testNow       = time.Date(2025, 3, 1, 11, 0, 0, 0, time.UTC)
)

// headFiles are the files of the fake head, relative to the data dir, with
// their sizes, in the order Inspect lists them.
var headFiles = []File{
	{"chunk_snapshot.000013.0000004096/00000000", 2048},
	{"chunks_head/000001", 4096},
	{"chunks_head/000002", 1024},
	{"wal/00000010", 32768},
	{"wal/00000011", 32768},
	{"wal/00000012", 32768},
	{"wal/00000013", 5000},
	{"wal/00000014", 0},
	{"wal/checkpoint.00000009/00000000", 3000},
	{"wbl/00000000", 700},
}

// walBytes is the size of the fake wal/.
const walBytes = 32768*3 + 5000 + 3000

// fakeTSDB builds the fake data dir as <tmp>/prometheus/data and returns
// its path.
func fakeTSDB(t *testing.T) string {
	t.Helper()
	root := filepath.Join(t.TempDir(), "prometheus")
	data := filepath.Join(root, "data")
	rng := rand.New(rand.NewPCG(1, 2))
	write := func(rel string, size int64) {
		p := filepath.Join(data, rel)
		require.NoError(t, os.MkdirAll(filepath.Dir(p), 0o755))
		buf := make([]byte, size)
		for i := range buf {
			buf[i] = byte(rng.IntN(256))
		}
		require.NoError(t, os.WriteFile(p, buf, 0o644))
	}
	for _, f := range headFiles {
		write(f.Path, f.Bytes)
	}
	for i, b := range []struct {
		ulid string
		max  time.Time
	}{{olderBlock, newestMaxTime.Add(-2 * time.Hour)}, {newerBlock, newestMaxTime}} {
		write(b.ulid+"/index", int64(1000+i))
		write(b.ulid+"/chunks/000001", int64(9000+i))
		write(b.ulid+"/tombstones", 9)
		meta := fmt.Sprintf(`{"ulid":%q,"minTime":%d,"maxTime":%d,"stats":{"numSamples":1},"compaction":{"level":1},"version":1}`,
			b.ulid, b.max.Add(-2*time.Hour).UnixMilli(), b.max.UnixMilli())
		require.NoError(t, os.WriteFile(filepath.Join(data, b.ulid, "meta.json"), []byte(meta), 0o644))
	}
	write("lock", 0)
	write("queries.active", 20001)
	write("01HQZ0000000000000000000C3.tmp-for-creation/index", 10)
	write("chunk_snapshot.000014.0000000001.tmp/00000000", 10)
	write("notes.txt", 5)
	for i, seg := range []string{"00000010", "00000011", "00000012", "00000013"} {
		mt := lastWrite.Add(time.Duration(i-3) * time.Hour)
		require.NoError(t, os.Chtimes(filepath.Join(data, "wal", seg), mt, mt))
	}
	// The empty segment a crashed start created is newer than any data.
	empty := lastWrite.Add(20 * time.Minute)
	require.NoError(t, os.Chtimes(filepath.Join(data, "wal", "00000014"), empty, empty))
	return data
}

// snapshot describes every entry under dir: kind, mode, size and content
// hash of files, link targets. Two equal snapshots mean identical trees.
func snapshot(t *testing.T, dir string) map[string]string {
	t.Helper()
	out := map[string]string{}
	err := filepath.WalkDir(dir, func(p string, d fs.DirEntry, err error) error {
		if err != nil {
			return err
		}
		rel, _ := filepath.Rel(dir, p)
		info, err := d.Info()
		if err != nil {
			return err
		}
		switch {
		case d.Type()&fs.ModeSymlink != 0:
			target, _ := os.Readlink(p)
			out[rel] = "link " + target
		case d.IsDir():
			out[rel] = "dir " + info.Mode().String()
		default:
			data, err := os.ReadFile(p)
			if err != nil {
				return err
			}
			sum := sha256.Sum256(data)
			out[rel] = fmt.Sprintf("file %s %d %s", info.Mode(), info.Size(), hex.EncodeToString(sum[:]))
		}
		return nil
	})
	require.NoError(t, err)
	return out
}

// without returns snap minus the entries under any of the top-level names.
func without(snap map[string]string, names ...string) map[string]string {
	out := map[string]string{}
	for rel, v := range snap {
		top, _, _ := strings.Cut(rel, string(filepath.Separator))
		keep := true
		for _, n := range names {
			if top == n {
				keep = false
			}
		}
		if keep {
			out[rel] = v
		}
	}
	return out
}

// only returns the entries of snap under the top-level names.
func only(snap map[string]string, names ...string) map[string]string {
	out := map[string]string{}
	rest := without(snap, names...)
	for rel, v := range snap {
		if _, ok := rest[rel]; !ok {
			out[rel] = v
		}
	}
	return out
}

// headEntries are the fake head's top-level names.
var headEntries = []string{"chunk_snapshot.000013.0000004096", "chunks_head", "wal", "wbl"}

// opts returns quarantine options for data with the quarantine dir next to
// it and the test clock.
func opts(data string) QuarantineOptions {
	return QuarantineOptions{
		DataDir:       data,
		QuarantineDir: filepath.Join(filepath.Dir(data), "quarantine"),
		MinWALBytes:   64 << 10,
		Now:           func() time.Time { return testNow },
	}
}
