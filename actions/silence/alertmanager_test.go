package silence

import (
	"context"
	"fmt"
	"net"
	"net/http"
	"os"
	"os/exec"
	"path/filepath"
	"strings"
	"syscall"
	"testing"
	"time"

	"github.com/go-openapi/strfmt"
	amclient "github.com/prometheus/alertmanager/api/v2/client"
	amalert "github.com/prometheus/alertmanager/api/v2/client/alert"
	amsilence "github.com/prometheus/alertmanager/api/v2/client/silence"
	"github.com/prometheus/alertmanager/api/v2/models"
	"github.com/prometheus/common/model"
	"github.com/stretchr/testify/require"

	"github.com/selfheal/selfheal/actions"
)

// alertmanagerBin is Debian's prometheus-alertmanager, installed by
// `make deps`.
const alertmanagerBin = "/usr/bin/prometheus-alertmanager"

// startAlertmanager runs a real Alertmanager on a free loopback port, with
// its config and storage in a temporary directory, waits until it is
// ready and stops it by its PID when the test ends. It returns its base
// URL.
func startAlertmanager(t *testing.T) string {
	t.Helper()
	if testing.Short() {
		t.Skip("starts a real Alertmanager; run without -short")
	}
	if _, err := os.Stat(alertmanagerBin); err != nil {
		t.Fatalf("%s is not installed; run `make deps` (apt-get install prometheus-alertmanager): %v", alertmanagerBin, err)
	}
	dir := t.TempDir()
	cfg := filepath.Join(dir, "am.yml")
	require.NoError(t, os.WriteFile(cfg, []byte("route: {receiver: x}\nreceivers: [{name: x}]\n"), 0o644))
	l, err := net.Listen("tcp", "127.0.0.1:0")
	require.NoError(t, err)
	addr := l.Addr().String()
	require.NoError(t, l.Close())

	logPath := filepath.Join(dir, "alertmanager.log")
	logFile, err := os.Create(logPath)
	require.NoError(t, err)
	cmd := exec.Command(alertmanagerBin,
		"--config.file="+cfg,
		"--storage.path="+dir,
		"--web.listen-address="+addr,
		"--cluster.listen-address=")
	cmd.Stdout, cmd.Stderr = logFile, logFile
	require.NoError(t, cmd.Start())
	require.NoError(t, logFile.Close())
	done := make(chan struct{})
	go func() { _ = cmd.Wait(); close(done) }()
	t.Cleanup(func() {
		_ = cmd.Process.Signal(syscall.SIGTERM)
		select {
		case <-done:
		case <-time.After(10 * time.Second):
			t.Logf("alertmanager did not stop on SIGTERM; killing pid %d", cmd.Process.Pid)
			_ = cmd.Process.Kill()
			<-done
		}
		if t.Failed() {
			log, _ := os.ReadFile(logPath)
			t.Logf("--- alertmanager log ---\n%s", log)
		}
	})

	url := "http://" + addr
	deadline := time.Now().Add(30 * time.Second)
	for {
		resp, err := http.Get(url + "/-/ready")
		if err == nil {
			resp.Body.Close()
			if resp.StatusCode == http.StatusOK {
				return url
			}
		}
		select {
		case <-done:
			t.Fatalf("alertmanager (pid %d) exited before it was ready", cmd.Process.Pid)
		case <-time.After(100 * time.Millisecond):
		}
		if time.Now().After(deadline) {
			t.Fatalf("alertmanager at %s not ready after 30s", url)
		}
	}
}

// apiClient is the generated API v2 client on url, for the test's own
// checks.
func apiClient(url string) *amclient.AlertmanagerAPI {
	cfg := amclient.DefaultTransportConfig().WithHost(strings.TrimPrefix(url, "http://"))
	return amclient.NewHTTPClientWithConfig(strfmt.Default, cfg)
}

// getSilence reads silence id back from the API.
func getSilence(t *testing.T, api *amclient.AlertmanagerAPI, id string) *models.GettableSilence {
	t.Helper()
	ok, err := api.Silence.GetSilence(amsilence.NewGetSilenceParams().WithSilenceID(strfmt.UUID(id)))
	require.NoError(t, err)
	require.NotNil(t, ok.Payload)
	return ok.Payload
}

// storedMatchers renders stored matchers as plans and results do.
func storedMatchers(t *testing.T, ms models.Matchers) string {
	t.Helper()
	parts := make([]string, len(ms))
	for i, m := range ms {
		require.False(t, *m.IsRegex, "matcher %s", *m.Name)
		require.True(t, m.IsEqual == nil || *m.IsEqual, "matcher %s", *m.Name)
		parts[i] = fmt.Sprintf("%s=%q", *m.Name, *m.Value)
	}
	return strings.Join(parts, ", ")
}

// alertState returns the state Alertmanager gives the alert with labels
// and the ids of the silences muting it.
func alertState(t *testing.T, api *amclient.AlertmanagerAPI, labels map[string]string) (string, []string) {
	t.Helper()
	ok, err := api.Alert.GetAlerts(amalert.NewGetAlertsParams().WithFilter([]string{fmt.Sprintf("alertname=%q", labels["alertname"])}))
	require.NoError(t, err)
	for _, a := range ok.Payload {
		if len(a.Labels) == len(labels) && a.Labels["instance"] == labels["instance"] {
			return *a.Status.State, a.Status.SilencedBy
		}
	}
	t.Fatalf("alert %v not found", labels)
	return "", nil
}

func paramOf(p actions.Plan, name string) string {
	for _, x := range p.Params {
		if x.Name == name {
			return x.Value
		}
	}
	return ""
}

func TestAlertmanager(t *testing.T) {
	url := startAlertmanager(t)
	api := apiClient(url)
	tg := target()

	// The alert the silences are for, firing in Alertmanager.
	endsAt := strfmt.DateTime(time.Now().Add(time.Hour))
	_, err := api.Alert.PostAlerts(amalert.NewPostAlertsParams().WithAlerts(models.PostableAlerts{{
		Alert:  models.Alert{Labels: tg.Labels},
		EndsAt: endsAt,
	}}))
	require.NoError(t, err)
	state, _ := alertState(t, api, tg.Labels)
	require.Equal(t, "active", state)

	tests := []struct {
		name string
		set  func(p *Params)
	}{
		{name: "defaults: every label", set: func(p *Params) { p.ExpireOnFinish = true }},
		{name: "chosen labels, templated comment", set: func(p *Params) {
			p.Matchers = []string{"instance", "alertname"}
			p.Duration = model.Duration(90 * time.Minute)
			p.Comment = actions.MustTemplate("restarting {{ .Labels.instance }} for {{ .Playbook }}")
			p.CreatedBy = "selfheal-test"
			p.ExpireOnFinish = true
		}},
	}
	for _, tt := range tests {
		t.Run(tt.name, func(t *testing.T) {
			p := DefaultParams()
			tt.set(p)
			a, err := New(p, Options{URL: url})
			require.NoError(t, err)
			ctx := context.Background()

			plan, err := a.Plan(ctx, tg)
			require.NoError(t, err)
			res, err := a.Run(ctx, tg)
			require.NoError(t, err)
			id := res.Details["silence_id"]
			require.NotEmpty(t, id)

			// What the server stored is what the plan said.
			s := getSilence(t, api, id)
			require.Equal(t, "active", *s.Status.State)
			require.Equal(t, paramOf(plan, "matchers"), storedMatchers(t, s.Matchers))
			require.Equal(t, paramOf(plan, "matchers"), res.Details["matchers"])
			require.Equal(t, paramOf(plan, "comment"), *s.Comment)
			require.Equal(t, paramOf(plan, "created_by"), *s.CreatedBy)
			require.Equal(t, paramOf(plan, "url"), url)
			stored := time.Time(*s.EndsAt).Sub(time.Time(*s.StartsAt))
			require.InDelta(t, time.Duration(p.Duration), stored, float64(time.Second), "stored duration %s", stored)
			require.Equal(t, paramOf(plan, "duration"), p.Duration.String())
			wantEnd, err := time.Parse(time.RFC3339Nano, res.Details["ends_at"])
			require.NoError(t, err)
			require.True(t, wantEnd.Equal(time.Time(*s.EndsAt)), "ends_at %s, stored %s", wantEnd, time.Time(*s.EndsAt))

			// The alert is muted by it.
			state, by := alertState(t, api, tg.Labels)
			require.Equal(t, "suppressed", state)
			require.Equal(t, []string{id}, by)

			// Finish expires it, and finishing twice is harmless.
			require.NoError(t, a.Finish(ctx, tg, res))
			require.Equal(t, "expired", *getSilence(t, api, id).Status.State)
			require.NoError(t, a.Finish(ctx, tg, res))
			require.Equal(t, "expired", *getSilence(t, api, id).Status.State)
			state, by = alertState(t, api, tg.Labels)
			require.Equal(t, "active", state)
			require.Empty(t, by)
		})
	}

	t.Run("expire an unknown silence", func(t *testing.T) {
		a, err := New(DefaultParams(), Options{URL: url})
		require.NoError(t, err)
		err = a.Expire(context.Background(), "00000000-0000-4000-8000-000000000000")
		require.ErrorIs(t, err, ErrNotFound)
		require.False(t, actions.IsRetryable(err))
	})

	t.Run("a 4xx from the server is permanent, with its message", func(t *testing.T) {
		a, err := New(DefaultParams(), Options{URL: url})
		require.NoError(t, err)
		err = a.Expire(context.Background(), "not-a-uuid")
		require.ErrorContains(t, err, "alertmanager.silence: expire silence not-a-uuid on "+url+": status 422 ")
		require.False(t, actions.IsRetryable(err))
		t.Log(err)
	})
}
