package promwal

import (
	"context"
	"encoding/json"
	"fmt"
	"io"
	"io/fs"
	"net"
	"net/http"
	"net/url"
	"os"
	"os/exec"
	"path/filepath"
	"strings"
	"syscall"
	"testing"
	"time"

	"github.com/stretchr/testify/require"

	"github.com/selfheal/selfheal/actions"
)

// Debian's Prometheus, installed by `make deps`, and its promtool.
const (
	prometheusBin = "/usr/bin/prometheus"
	promtoolBin   = "/usr/bin/promtool"
)

// prometheus is a real Prometheus process started by a test.
type prometheus struct {
	cmd  *exec.Cmd
	addr string
	log  string
	done chan struct{}
}

// startPrometheus starts Debian's Prometheus on data, scraping itself every
// second, with extra flags. t.Cleanup stops it: SIGTERM, SIGKILL after 10s.
func startPrometheus(t *testing.T, data string, extra ...string) *prometheus {
	t.Helper()
	dir := t.TempDir()
	l, err := net.Listen("tcp", "127.0.0.1:0")
	require.NoError(t, err)
	addr := l.Addr().String()
	require.NoError(t, l.Close())
	cfg := filepath.Join(dir, "prometheus.yml")
	require.NoError(t, os.WriteFile(cfg, fmt.Appendf(nil,
		"global:\n  scrape_interval: 1s\n  evaluation_interval: 1s\nscrape_configs:\n  - job_name: self\n    static_configs:\n      - targets: [%q]\n", addr), 0o644))
	p := &prometheus{addr: addr, log: filepath.Join(dir, "prometheus.log"), done: make(chan struct{})}
	logf, err := os.Create(p.log)
	require.NoError(t, err)
	args := append([]string{"--config.file=" + cfg, "--storage.tsdb.path=" + data, "--web.listen-address=" + addr}, extra...)
	p.cmd = exec.Command(prometheusBin, args...)
	p.cmd.Stdout, p.cmd.Stderr = logf, logf
	require.NoError(t, p.cmd.Start())
	go func() {
		_ = p.cmd.Wait()
		logf.Close()
		close(p.done)
	}()
	t.Cleanup(func() { p.stop(syscall.SIGTERM) })
	return p
}

// stop signals the process and waits for it, escalating to SIGKILL after
// 10s.
func (p *prometheus) stop(sig syscall.Signal) {
	select {
	case <-p.done:
		return
	default:
	}
	_ = p.cmd.Process.Signal(sig)
	select {
	case <-p.done:
	case <-time.After(10 * time.Second):
		_ = p.cmd.Process.Kill()
		<-p.done
	}
}

func (p *prometheus) logTail() string {
	raw, _ := os.ReadFile(p.log)
	if len(raw) > 4000 {
		raw = raw[len(raw)-4000:]
	}
	return string(raw)
}

// waitReady waits until GET /-/ready answers 200 and returns how long it
// took. It fails when the process exits first.
func (p *prometheus) waitReady(t *testing.T, timeout time.Duration) time.Duration {
	t.Helper()
	start := time.Now()
	for time.Since(start) < timeout {
		select {
		case <-p.done:
			t.Fatalf("prometheus exited before it was ready:\n%s", p.logTail())
		default:
		}
		if resp, err := http.Get("http://" + p.addr + "/-/ready"); err == nil {
			_, _ = io.Copy(io.Discard, resp.Body)
			resp.Body.Close()
			if resp.StatusCode == http.StatusOK {
				return time.Since(start)
			}
		}
		time.Sleep(50 * time.Millisecond)
	}
	t.Fatalf("prometheus not ready after %s:\n%s", timeout, p.logTail())
	return 0
}

// query runs an instant PromQL query and returns the result vector's
// length.
func (p *prometheus) query(t *testing.T, q string, at time.Time) int {
	t.Helper()
	v := url.Values{"query": {q}}
	if !at.IsZero() {
		v.Set("time", fmt.Sprint(at.Unix()))
	}
	resp, err := http.Get("http://" + p.addr + "/api/v1/query?" + v.Encode())
	require.NoError(t, err)
	defer resp.Body.Close()
	var body struct {
		Status string `json:"status"`
		Data   struct {
			Result []json.RawMessage `json:"result"`
		} `json:"data"`
	}
	require.NoError(t, json.NewDecoder(resp.Body).Decode(&body))
	require.Equal(t, "success", body.Status)
	return len(body.Data.Result)
}

// createBlock writes a real block with one series, one sample a minute
// for an hour starting on the 2h boundary 4 to 6 hours ago, into data with
// promtool, and returns the block's maxTime as a time. Starting on a
// boundary keeps the samples inside one 2h block range whatever the time
// of day (promtool cuts blocks at those boundaries).
func createBlock(t *testing.T, data string) time.Time {
	t.Helper()
	start := time.Now().Add(-4 * time.Hour).Truncate(2 * time.Hour)
	var om strings.Builder
	om.WriteString("# TYPE selfheal_block_test gauge\n")
	for i := range 61 {
		fmt.Fprintf(&om, "selfheal_block_test{n=\"1\"} %d %d\n", i, start.Add(time.Duration(i)*time.Minute).Unix())
	}
	om.WriteString("# EOF\n")
	in := filepath.Join(t.TempDir(), "block.om")
	require.NoError(t, os.WriteFile(in, []byte(om.String()), 0o644))
	out, err := exec.Command(promtoolBin, "tsdb", "create-blocks-from", "openmetrics", in, data).CombinedOutput()
	require.NoError(t, err, "%s", out)
	inv, err := Inspect(data, InspectOptions{})
	require.NoError(t, err)
	require.Len(t, inv.Blocks, 1)
	require.Empty(t, inv.Blocks[0].Err)
	return inv.Blocks[0].MaxTime
}

// walkHead lists every file under the head entries of data, as Inspect
// should, from an independent walk.
func walkHead(t *testing.T, data string) ([]File, int64) {
	t.Helper()
	var files []File
	var total int64
	des, err := os.ReadDir(data)
	require.NoError(t, err)
	for _, de := range des {
		n := de.Name()
		if n != "wal" && n != "chunks_head" && n != "wbl" && !(strings.HasPrefix(n, "chunk_snapshot.") && !strings.Contains(n, ".tmp")) {
			continue
		}
		require.NoError(t, filepath.WalkDir(filepath.Join(data, n), func(p string, d fs.DirEntry, err error) error {
			require.NoError(t, err)
			if d.IsDir() {
				return nil
			}
			fi, err := os.Lstat(p)
			require.NoError(t, err)
			rel, _ := filepath.Rel(data, p)
			files = append(files, File{Path: rel, Bytes: fi.Size()})
			total += fi.Size()
			return nil
		}))
	}
	return files, total
}

// TestRealPrometheus runs the cleanup on a data dir written by a real
// Prometheus that was SIGKILLed, refuses while one runs, and checks that
// Prometheus starts again on the cleaned dir with its block intact.
func TestRealPrometheus(t *testing.T) {
	if testing.Short() {
		t.Skip("starts Prometheus three times")
	}
	for _, bin := range []string{prometheusBin, promtoolBin} {
		if _, err := os.Stat(bin); err != nil {
			t.Fatalf("%s is missing: run make deps (%v)", bin, err)
		}
	}
	began := time.Now()
	root := t.TempDir()
	data := filepath.Join(root, "data")
	require.NoError(t, os.Mkdir(data, 0o755))
	blockMax := createBlock(t, data)
	qdir := filepath.Join(root, "quarantine")
	o := QuarantineOptions{DataDir: data, QuarantineDir: qdir, MinWALBytes: 1}

	// Upstream Prometheus locks the data dir by default; Debian's package
	// only with --storage.tsdb.use-lockfile.
	first := startPrometheus(t, data, "--storage.tsdb.use-lockfile")
	t.Logf("prometheus ready after %s", first.waitReady(t, 60*time.Second))
	require.Eventually(t, func() bool { return first.query(t, "up", time.Time{}) > 0 }, 30*time.Second, 200*time.Millisecond, "the first scrape")
	time.Sleep(3 * time.Second)
	require.Equal(t, 1, first.query(t, "selfheal_block_test", blockMax.Add(-time.Minute)), "the block is loaded")

	t.Run("refuses while Prometheus runs with a lock file", func(t *testing.T) {
		_, err := Quarantine(context.Background(), o)
		require.ErrorIs(t, err, ErrLocked)
		require.ErrorIs(t, err, ErrInUse)
		require.ErrorContains(t, err, "(prometheus) has "+data+"/")
		require.NoDirExists(t, qdir)
		require.DirExists(t, filepath.Join(data, "wal"))

		a, err := New(&Params{Mode: ModeHost, DataDir: actions.MustTemplate(data), QuarantineDir: actions.MustTemplate(qdir),
			MinWALBytes: 1, ReadyTimeout: 1}, Deps{})
		require.NoError(t, err)
		_, err = a.Run(context.Background(), target())
		require.ErrorIs(t, err, ErrLocked)
		require.NoDirExists(t, qdir)
	})
	first.stop(syscall.SIGKILL)
	require.FileExists(t, filepath.Join(data, "lock"), "a killed Prometheus leaves its lock file")

	t.Run("refuses while Debian's Prometheus runs without a lock file", func(t *testing.T) {
		require.NoError(t, os.Remove(filepath.Join(data, "lock")))
		debian := startPrometheus(t, data)
		debian.waitReady(t, 60*time.Second)
		require.NoFileExists(t, filepath.Join(data, "lock"))
		_, err := Quarantine(context.Background(), o)
		require.ErrorIs(t, err, ErrInUse)
		require.NotErrorIs(t, err, ErrLocked)
		require.NoDirExists(t, qdir)
		debian.stop(syscall.SIGKILL)
	})

	// What a crash loop leaves: a lock file nobody holds, a WAL, no
	// process.
	require.NoError(t, os.WriteFile(filepath.Join(data, "lock"), nil, 0o644))
	before := snapshot(t, data)
	files, total := walkHead(t, data)
	require.NotEmpty(t, files)
	inv, err := Inspect(data, InspectOptions{})
	require.NoError(t, err)
	t.Logf("head files after SIGKILL: %v", files)
	t.Logf("head after SIGKILL: %d files, %d bytes; wal %d bytes in %d segments (%s..%s, checkpoint %q); chunks_head %d bytes; loss window %s",
		len(files), total, inv.WAL.Bytes, inv.WAL.Segments, inv.WAL.FirstSegment, inv.WAL.LastSegment, inv.WAL.Checkpoint,
		total-inv.WAL.Bytes, inv.LossWindow.Description)
	require.Equal(t, blockMax, inv.LossWindow.From)
	require.False(t, inv.LossWindow.To.IsZero(), "a WAL segment has data")

	a, err := New(&Params{
		Mode: ModeHost, DataDir: actions.MustTemplate(data), QuarantineDir: actions.MustTemplate(qdir),
		MinWALBytes: 1, ReadyTimeout: 1,
	}, Deps{})
	require.NoError(t, err)
	plan, err := a.Plan(context.Background(), target())
	require.NoError(t, err)
	require.Equal(t, before, snapshot(t, data), "plan has no side effect")
	require.NoDirExists(t, qdir)
	require.Equal(t, files, planFiles(t, plan), "the plan lists every file of the head with its bytes")
	require.Contains(t, plan.Summary, fmt.Sprintf("(%d files, %d bytes) into %s/data-", len(files), total, qdir))
	require.True(t, hasPrefix(plan.Details, fmt.Sprintf("total: %d files, %d bytes (%s);", len(files), total, human(total))), "%v", plan.Details)

	res, err := a.Run(context.Background(), target())
	require.NoError(t, err)
	m := readManifest(t, res.Details["manifest_path"])
	require.Equal(t, files, m.Files, "Run moved exactly what Plan listed")
	require.Equal(t, total, m.TotalBytes)
	require.Empty(t, m.Warnings)
	require.Equal(t, without(before, headNames(before)...), snapshot(t, data), "the block, lock and queries.active are untouched")
	moved := snapshot(t, m.QuarantinePath)
	delete(moved, ManifestName)
	delete(moved, ".")
	require.Equal(t, only(before, headNames(before)...), moved)

	second := startPrometheus(t, data, "--storage.tsdb.use-lockfile")
	took := second.waitReady(t, 60*time.Second)
	t.Logf("prometheus ready %s after the cleanup", took)
	require.DirExists(t, filepath.Join(data, "wal"), "Prometheus recreated its WAL")
	require.Equal(t, 1, second.query(t, "selfheal_block_test", blockMax.Add(-time.Minute)), "the block survived and is queried")
	require.Contains(t, readFile(t, second.log), "A lockfile from a previous execution already existed")
	second.stop(syscall.SIGTERM)
	t.Logf("real-Prometheus test took %s", time.Since(began).Round(time.Millisecond))
}

// headNames returns the head's top-level names in a snapshot.
func headNames(snap map[string]string) []string {
	var out []string
	for rel := range snap {
		if !strings.Contains(rel, "/") && isHeadEntry(rel) {
			out = append(out, rel)
		}
	}
	return out
}

func readFile(t *testing.T, path string) string {
	t.Helper()
	raw, err := os.ReadFile(path)
	require.NoError(t, err)
	return string(raw)
}
