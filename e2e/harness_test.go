// Package e2e tests selfheal as a user runs it: the built binary, fed by a
// real Prometheus and Alertmanager (Debian's packages), killed with -9 and
// restarted. Every process a test starts is stopped by its PID.
package e2e

import (
	"bufio"
	"bytes"
	"fmt"
	"io"
	"net"
	"net/http"
	"os"
	"os/exec"
	"path/filepath"
	"strings"
	"syscall"
	"testing"
	"time"

	"github.com/prometheus/common/expfmt"
	"github.com/prometheus/common/model"
	"github.com/stretchr/testify/require"
)

// selfhealBin is the binary under test, built once by TestMain with -race.
var selfhealBin string

func TestMain(m *testing.M) {
	os.Exit(func() int {
		dir, err := os.MkdirTemp("", "selfheal-e2e-")
		if err != nil {
			fmt.Fprintln(os.Stderr, err)
			return 1
		}
		defer os.RemoveAll(dir)
		selfhealBin = filepath.Join(dir, "selfheal")
		build := exec.Command("go", "build", "-race", "-o", selfhealBin, "../cmd/selfheal")
		build.Stdout, build.Stderr = os.Stdout, os.Stderr
		if err := build.Run(); err != nil {
			fmt.Fprintln(os.Stderr, "build selfheal:", err)
			return 1
		}
		return m.Run()
	}())
}

// requireE2E skips in -short mode (make test-short) and fails, never skips,
// when a real component is missing: `make deps` installs them.
func requireE2E(t *testing.T, bins ...string) {
	t.Helper()
	if testing.Short() {
		t.Skip("end-to-end test; run without -short (make test or make e2e)")
	}
	for _, b := range bins {
		if _, err := exec.LookPath(b); err != nil {
			t.Fatalf("%s is not installed; run `make deps` (apt-get install prometheus prometheus-alertmanager)", b)
		}
	}
}

// proc is a process started by a test, known by its PID.
type proc struct {
	name string
	cmd  *exec.Cmd
	log  string
	done chan struct{}
}

// start runs bin with args, its output in dir/name.log, and stops it by PID
// when the test ends.
func start(t *testing.T, dir, name, bin string, args ...string) *proc {
	t.Helper()
	logPath := filepath.Join(dir, name+".log")
	f, err := os.OpenFile(logPath, os.O_CREATE|os.O_WRONLY|os.O_APPEND, 0o644)
	require.NoError(t, err)
	cmd := exec.Command(bin, args...)
	cmd.Stdout, cmd.Stderr = f, f
	cmd.SysProcAttr = &syscall.SysProcAttr{Setpgid: true}
	require.NoError(t, cmd.Start(), "start %s", name)
	f.Close()
	p := &proc{name: name, cmd: cmd, log: logPath, done: make(chan struct{})}
	go func() { _ = cmd.Wait(); close(p.done) }()
	t.Logf("started %s pid %d", name, cmd.Process.Pid)
	t.Cleanup(func() {
		p.stop(t)
		if t.Failed() {
			t.Logf("--- %s log (%s) ---\n%s", name, logPath, tail(logPath, 60))
		}
	})
	return p
}

// stop sends SIGTERM to the PID, then SIGKILL after 10s.
func (p *proc) stop(t *testing.T) {
	select {
	case <-p.done:
		return
	default:
	}
	_ = p.cmd.Process.Signal(syscall.SIGTERM)
	select {
	case <-p.done:
	case <-time.After(10 * time.Second):
		t.Logf("%s did not stop on SIGTERM; killing pid %d", p.name, p.cmd.Process.Pid)
		_ = p.cmd.Process.Kill()
		<-p.done
	}
}

// kill9 kills the PID with SIGKILL, as a crash would, and waits for it.
func (p *proc) kill9(t *testing.T) {
	t.Helper()
	require.NoError(t, p.cmd.Process.Signal(syscall.SIGKILL))
	<-p.done
	t.Logf("killed %s pid %d with SIGKILL", p.name, p.cmd.Process.Pid)
}

func tail(path string, n int) string {
	data, err := os.ReadFile(path)
	if err != nil {
		return err.Error()
	}
	lines := strings.Split(strings.TrimRight(string(data), "\n"), "\n")
	if len(lines) > n {
		lines = lines[len(lines)-n:]
	}
	return strings.Join(lines, "\n")
}

// freePort returns a loopback port nothing listens on right now.
func freePort(t *testing.T) int {
	t.Helper()
	l, err := net.Listen("tcp", "127.0.0.1:0")
	require.NoError(t, err)
	defer l.Close()
	return l.Addr().(*net.TCPAddr).Port
}

// eventually polls cond every 100ms until it holds or timeout passes.
func eventually(t *testing.T, timeout time.Duration, what string, cond func() bool) {
	t.Helper()
	deadline := time.Now().Add(timeout)
	for !cond() {
		if time.Now().After(deadline) {
			t.Fatalf("timed out after %s waiting for %s", timeout, what)
		}
		time.Sleep(100 * time.Millisecond)
	}
}

func waitHTTP(t *testing.T, url string, timeout time.Duration) {
	t.Helper()
	eventually(t, timeout, url, func() bool {
		resp, err := http.Get(url)
		if err != nil {
			return false
		}
		resp.Body.Close()
		return resp.StatusCode == http.StatusOK
	})
}

// getBody returns the body of a GET, or "" when it fails.
func getBody(t *testing.T, url string) string {
	t.Helper()
	resp, err := http.Get(url)
	if err != nil {
		return ""
	}
	defer resp.Body.Close()
	data, err := io.ReadAll(resp.Body)
	if err != nil || resp.StatusCode != http.StatusOK {
		return ""
	}
	return string(data)
}

// metric returns the sum of the samples of a metric family whose labels
// include match, from a /metrics endpoint; 0 when there is none.
func metric(t *testing.T, base, name string, match map[string]string) float64 {
	t.Helper()
	resp, err := http.Get(base + "/metrics")
	require.NoError(t, err)
	defer resp.Body.Close()
	parser := expfmt.NewTextParser(model.UTF8Validation)
	families, err := parser.TextToMetricFamilies(resp.Body)
	require.NoError(t, err)
	f, ok := families[name]
	if !ok {
		return 0
	}
	sum := 0.0
	for _, m := range f.GetMetric() {
		labels := map[string]string{}
		for _, l := range m.GetLabel() {
			labels[l.GetName()] = l.GetValue()
		}
		ok := true
		for k, v := range match {
			ok = ok && labels[k] == v
		}
		if !ok {
			continue
		}
		switch {
		case m.Counter != nil:
			sum += m.GetCounter().GetValue()
		case m.Gauge != nil:
			sum += m.GetGauge().GetValue()
		}
	}
	return sum
}

// lines returns the non-empty lines of a file; a missing file has none.
func lines(t *testing.T, path string) []string {
	t.Helper()
	data, err := os.ReadFile(path)
	if os.IsNotExist(err) {
		return nil
	}
	require.NoError(t, err)
	var out []string
	sc := bufio.NewScanner(bytes.NewReader(data))
	for sc.Scan() {
		if s := strings.TrimSpace(sc.Text()); s != "" {
			out = append(out, s)
		}
	}
	return out
}

func writeFile(t *testing.T, path, content string) {
	t.Helper()
	require.NoError(t, os.MkdirAll(filepath.Dir(path), 0o755))
	require.NoError(t, os.WriteFile(path, []byte(content), 0o644))
}

// daemon is a selfheal process under test.
type daemon struct {
	*proc
	url string
	// token is the receiver's bearer token (dir/token), which the read
	// API and /-/reload ask for too; "" when the config has none.
	token string
}

// request sends method path to the daemon with its bearer token and
// returns the status and body.
func (d *daemon) request(t *testing.T, method, path string) (int, string) {
	t.Helper()
	req, err := http.NewRequest(method, d.url+path, nil)
	require.NoError(t, err)
	if d.token != "" {
		req.Header.Set("Authorization", "Bearer "+d.token)
	}
	resp, err := http.DefaultClient.Do(req)
	require.NoError(t, err)
	defer resp.Body.Close()
	body, err := io.ReadAll(resp.Body)
	require.NoError(t, err)
	return resp.StatusCode, string(body)
}

// get returns the body of an authenticated GET of path, or "" unless it
// answers 200.
func (d *daemon) get(t *testing.T, path string) string {
	t.Helper()
	code, body := d.request(t, http.MethodGet, path)
	if code != http.StatusOK {
		return ""
	}
	return body
}

// startSelfheal starts the binary with the config in dir/selfheal.yml and
// storage in storage, and waits until it is ready.
func startSelfheal(t *testing.T, dir, storage string, port int) *daemon {
	t.Helper()
	return startSelfhealAs(t, dir, storage, port, "e2e")
}

// startSelfhealAs is startSelfheal with the node name set by --cluster.name,
// as a Deployment pod gets a new hostname at every restart.
func startSelfhealAs(t *testing.T, dir, storage string, port int, node string) *daemon {
	t.Helper()
	return startSelfhealWith(t, dir, storage, port, node, "--cluster.listen-address=")
}

// startSelfhealWith starts selfheal serve with extra flags (the cluster's)
// and waits until it is ready.
func startSelfhealWith(t *testing.T, dir, storage string, port int, node string, extra ...string) *daemon {
	t.Helper()
	d := launchSelfheal(t, dir, storage, port, node, extra...)
	waitHTTP(t, d.url+"/-/ready", 30*time.Second)
	return d
}

// launchSelfheal starts selfheal serve and does not wait for it: replicas
// of a cluster become ready together.
func launchSelfheal(t *testing.T, dir, storage string, port int, node string, extra ...string) *daemon {
	t.Helper()
	addr := fmt.Sprintf("127.0.0.1:%d", port)
	args := append([]string{"serve",
		"--config.file=" + filepath.Join(dir, "selfheal.yml"),
		"--storage.path=" + storage,
		"--web.listen-address=" + addr,
		"--cluster.name=" + node,
		"--log.level=debug"}, extra...)
	name := "selfheal"
	if node != "e2e" {
		name += "-" + node
	}
	p := start(t, dir, name, selfhealBin, args...)
	d := &daemon{proc: p, url: "http://" + addr}
	if tok, err := os.ReadFile(filepath.Join(dir, "token")); err == nil {
		d.token = strings.TrimSpace(string(tok))
	}
	return d
}

// tryPost sends a webhook payload with the daemon's token, from any
// goroutine: it returns the status or the error instead of failing t.
func (d *daemon) tryPost(body []byte) (int, error) {
	req, err := http.NewRequest(http.MethodPost, d.url+"/api/v1/alerts", bytes.NewReader(body))
	if err != nil {
		return 0, err
	}
	req.Header.Set("Content-Type", "application/json")
	req.Header.Set("Authorization", "Bearer "+d.token)
	resp, err := http.DefaultClient.Do(req)
	if err != nil {
		return 0, err
	}
	resp.Body.Close()
	return resp.StatusCode, nil
}

// postAlerts sends a webhook payload with the bearer token and returns the status.
func (d *daemon) postAlerts(t *testing.T, body []byte, token string) int {
	t.Helper()
	req, err := http.NewRequest(http.MethodPost, d.url+"/api/v1/alerts", bytes.NewReader(body))
	require.NoError(t, err)
	req.Header.Set("Content-Type", "application/json")
	if token != "" {
		req.Header.Set("Authorization", "Bearer "+token)
	}
	resp, err := http.DefaultClient.Do(req)
	require.NoError(t, err)
	resp.Body.Close()
	return resp.StatusCode
}
