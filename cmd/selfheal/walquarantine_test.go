package main

import (
	"encoding/json"
	"os"
	"path/filepath"
	"testing"

	"github.com/stretchr/testify/require"
)

// tsdb writes a small Prometheus data dir: a WAL segment of size bytes and
// one block.
func tsdb(t *testing.T, size int) string {
	t.Helper()
	dir := filepath.Join(t.TempDir(), "data")
	require.NoError(t, os.MkdirAll(filepath.Join(dir, "wal"), 0o755))
	require.NoError(t, os.MkdirAll(filepath.Join(dir, "chunks_head"), 0o755))
	require.NoError(t, os.WriteFile(filepath.Join(dir, "wal", "00000000"), make([]byte, size), 0o644))
	block := filepath.Join(dir, "01JBLOCK0000000000000000000")
	require.NoError(t, os.MkdirAll(block, 0o755))
	require.NoError(t, os.WriteFile(filepath.Join(block, "meta.json"), []byte(`{"ulid":"01JBLOCK0000000000000000000","minTime":0,"maxTime":1000,"version":1}`), 0o644))
	return dir
}

func TestWalQuarantineDryRunThenRun(t *testing.T) {
	data := tsdb(t, 4096)
	q := filepath.Join(filepath.Dir(data), "quarantine")
	require.NoError(t, os.MkdirAll(q, 0o755))

	code, stdout, stderr := runCLI(t, "", "wal-quarantine", "--data-dir="+data, "--quarantine-dir="+q, "--min-wal-bytes=1024", "--dry-run")
	require.Equal(t, 0, code, stderr)
	require.Contains(t, stdout, "wal/00000000")
	require.DirExists(t, filepath.Join(data, "wal"), "a dry run moves nothing")

	code, _, stderr = runCLI(t, "", "wal-quarantine", "--data-dir="+data, "--quarantine-dir="+q, "--min-wal-bytes=1MiB")
	require.Equal(t, 1, code)
	require.Contains(t, stderr, "WAL")
	require.DirExists(t, filepath.Join(data, "wal"), "a refusal moves nothing")

	code, stdout, stderr = runCLI(t, "", "wal-quarantine", "--data-dir="+data, "--quarantine-dir="+q, "--min-wal-bytes=1024")
	require.Equal(t, 0, code, stderr)
	var manifest map[string]any
	require.NoError(t, json.Unmarshal([]byte(stdout), &manifest), stdout)
	require.NoDirExists(t, filepath.Join(data, "wal"))
	require.FileExists(t, filepath.Join(data, "01JBLOCK0000000000000000000", "meta.json"), "blocks are never touched")
}
