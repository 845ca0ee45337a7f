package main

import (
	"bytes"
	"log/slog"
	"os"
	"path/filepath"
	"strings"
	"testing"

	"github.com/stretchr/testify/require"

	"github.com/selfheal/selfheal/playbooks"
)

const mib = 1 << 20

// book is a valid playbook file defining name, padded with a comment to
// size bytes when size is not 0.
func book(t *testing.T, name string, size int) []byte {
	t.Helper()
	data := []byte("playbooks:\n  - name: " + name + "\n    match: ['alertname=\"X\"']\n    steps:\n      - name: s\n        action: exec\n        with: {command: [/bin/true]}\n")
	if size == 0 {
		return data
	}
	pad := size - len(data) - len("#\n")
	require.GreaterOrEqual(t, pad, 0)
	data = append(append(append(data, '#'), strings.Repeat("x", pad)...), '\n')
	require.Len(t, data, size)
	return data
}

// TestCheckGlobMatchingNothing: a glob of the config that matches no file
// is a warning, not a failure, since the daemon starts with it; a file
// named on the command line that does not exist is a failure.
func TestCheckGlobMatchingNothing(t *testing.T) {
	dir := t.TempDir()
	cfg := filepath.Join(dir, "selfheal.yml")
	good := filepath.Join(dir, "pb", "a.yaml")
	require.NoError(t, os.MkdirAll(filepath.Dir(good), 0o755))
	require.NoError(t, os.WriteFile(good, book(t, "a", 0), 0o644))
	require.NoError(t, os.WriteFile(cfg, []byte("receiver: {insecure: true}\nplaybooks:\n  files: [pb/*.yaml, nope/*.yaml]\n"), 0o644))

	code, stdout, stderr := runCLI(t, "", "check", "--config.file="+cfg)
	require.Equal(t, 0, code, stderr)
	require.Equal(t, "WARNING: playbooks.files[1] \""+filepath.Join(dir, "nope", "*.yaml")+"\" matches no file\n", stderr)
	require.Contains(t, stdout, "SUCCESS: "+good+": 1 playbooks\n")

	missing := filepath.Join(dir, "missing.yaml")
	code, _, stderr = runCLI(t, "", "check", good, missing)
	require.Equal(t, 1, code)
	require.Equal(t, "FAILED: "+missing+"\n  matches no file\n", stderr)
}

// TestCheckSizeLimit: a playbook file over 1 MiB is reported, one of
// exactly 1 MiB is checked as usual.
func TestCheckSizeLimit(t *testing.T) {
	dir := t.TempDir()
	at, over := filepath.Join(dir, "at.yaml"), filepath.Join(dir, "over.yaml")
	require.NoError(t, os.WriteFile(at, book(t, "at", mib), 0o644))
	require.NoError(t, os.WriteFile(over, book(t, "over", mib+1), 0o644))

	code, stdout, stderr := runCLI(t, "", "check", at, over)
	require.Equal(t, 1, code)
	require.Equal(t, "SUCCESS: "+at+": 1 playbooks\n", stdout)
	require.Equal(t, "FAILED: "+over+"\n  "+over+": 1048577 bytes is over the 1 MiB limit for a playbook file\n", stderr)
}

// TestCheckManifestSizeLimit: a ConfigMap whose playbook keys hold more
// than 1 MiB is reported, even when the manifest is smaller (an alias
// repeats a value), as the API server would refuse it.
func TestCheckManifestSizeLimit(t *testing.T) {
	dir := t.TempDir()
	manifest := filepath.Join(dir, "big.yaml")
	value := strings.ReplaceAll(string(book(t, "big", 600<<10)), "\n", "\n    ")
	doc := "apiVersion: v1\nkind: ConfigMap\nmetadata:\n  name: big\n  namespace: ops\n  labels: {selfheal.io/playbook: \"true\"}\ndata:\n" +
		"  a.yaml: &pb |\n    " + value + "\n  b.yaml: *pb\n"
	require.NoError(t, os.WriteFile(manifest, []byte(doc), 0o644))
	code, stdout, stderr := runCLI(t, "", "check", manifest)
	require.Equal(t, 1, code, stdout)
	require.Equal(t, "FAILED: "+manifest+":"+position(t, manifest, "a.yaml:")+": configmap/ops/big/a.yaml\n"+
		"  configmap/ops/big: 1.2 MiB is over the 1 MiB limit for the playbook keys of a ConfigMap\n"+
		"FAILED: "+manifest+":"+position(t, manifest, "b.yaml:")+": configmap/ops/big/b.yaml\n"+
		"  configmap/ops/big: 1.2 MiB is over the 1 MiB limit for the playbook keys of a ConfigMap\n", stderr)
}

// TestFilesGlobMatchingNothingWarnsAtStart: the daemon logs a glob that
// matches no file at warn level when it loads the files.
func TestFilesGlobMatchingNothingWarnsAtStart(t *testing.T) {
	var logs bytes.Buffer
	logger := slog.New(slog.NewTextHandler(&logs, nil))
	glob := filepath.Join(t.TempDir(), "nope", "*.yaml")
	catalog := playbooks.NewCatalog(nil, playbooks.CatalogOptions{Logger: logger})
	files := newFileSource([]string{glob}, catalog, logger)
	require.NoError(t, files.reload())
	require.Contains(t, logs.String(), `level=WARN msg="playbook glob matches no file" component=playbooks glob=`+glob+"\n")
}
