package jenkins

import (
	"context"
	"encoding/pem"
	"fmt"
	"io"
	"log"
	"net/http"
	"net/http/httptest"
	"os"
	"path/filepath"
	"regexp"
	"sync"
	"testing"
	"time"

	"github.com/stretchr/testify/require"

	"github.com/selfheal/selfheal/actions"
)

func TestRunContextDeadline(t *testing.T) {
	f := newFake(t, func(f *fake) {
		f.jobs["deploy"] = deployJob()
		f.buildPolls = 1 << 30
	})
	a, _, err := build(t, f.servers(fakeToken), nil, step)
	require.NoError(t, err)
	ctx, cancel := context.WithTimeout(context.Background(), 300*time.Millisecond)
	defer cancel()
	start := time.Now()
	res, err := a.Run(ctx, target())
	require.Less(t, time.Since(start), 5*time.Second, "ctx is honoured")
	require.ErrorIs(t, err, ErrGaveUp)
	require.ErrorIs(t, err, context.DeadlineExceeded)
	require.False(t, actions.IsRetryable(err), "the build may still run: not retryable")
	require.Regexp(t, `^jenkins.build deploy on default: gave up waiting after \d+ms \(context deadline exceeded\); `+
		`build may still be running at http://127\.0\.0\.1:\d+/job/deploy/1/$`, err.Error())
	require.Equal(t, f.srv.URL+"/job/deploy/1/", res.Details["build_url"])
}

// TestRunCancelledDuringTrigger: a request gojenkins cannot cancel is
// abandoned when ctx ends.
func TestRunCancelledDuringTrigger(t *testing.T) {
	release := make(chan struct{})
	f := newFake(t, func(f *fake) { f.jobs["deploy"] = deployJob() })
	slow := httptestServer(t, http.HandlerFunc(func(w http.ResponseWriter, r *http.Request) {
		if r.URL.Path == "/job/deploy/api/json" {
			<-release
		}
		f.ServeHTTP(w, r)
	}))
	defer close(release)
	a, _, err := build(t, Servers{"default": {URL: slow.URL, User: fakeUser, APIToken: fakeToken}}, nil, step)
	require.NoError(t, err)
	ctx, cancel := context.WithTimeout(context.Background(), 100*time.Millisecond)
	defer cancel()
	start := time.Now()
	_, err = a.Run(ctx, target())
	require.Less(t, time.Since(start), 5*time.Second)
	require.ErrorIs(t, err, context.DeadlineExceeded)
	require.False(t, actions.IsRetryable(err))
	require.Contains(t, err.Error(), "GET "+slow.URL+"/job/deploy/api/json: context deadline exceeded")
}

// TestRunJenkinsDownDuringCrumb: gojenkins dereferences the nil response
// of a failed crumb request; Run must return an error, not panic.
func TestRunJenkinsDownDuringCrumb(t *testing.T) {
	f := newFake(t, func(f *fake) {
		f.jobs["deploy"] = deployJob()
		f.crumbHangup = true
	})
	a, _, err := build(t, f.servers(fakeToken), nil, step)
	require.NoError(t, err)
	res, err := a.Run(context.Background(), target())
	require.Error(t, err)
	require.True(t, actions.IsRetryable(err), "nothing was triggered: retryable")
	require.Contains(t, err.Error(), "POST "+f.srv.URL+"/job/deploy/buildWithParameters: gojenkins panicked")
	require.Contains(t, err.Error(), "nil pointer dereference")
	require.Empty(t, res.Details)
	require.Empty(t, f.posts())
	require.Positive(t, f.count(http.MethodGet, "/crumbIssuer/api/json/api/json"))
}

func TestRunJenkinsDown(t *testing.T) {
	f := newFake(t, nil)
	servers := f.servers(fakeToken)
	f.srv.Close()
	a, _, err := build(t, servers, nil, step)
	require.NoError(t, err)
	_, err = a.Run(context.Background(), target())
	require.Error(t, err)
	require.True(t, actions.IsRetryable(err))
	require.Contains(t, err.Error(), `jenkins.build deploy on default: Get "`+f.srv.URL+`/api/json": dial tcp`)
}

// TestInitOnceRetried: Init runs once per server, and again after a
// failure.
func TestInitOnceRetried(t *testing.T) {
	f := newFake(t, func(f *fake) {
		f.jobs["deploy"] = deployJob()
		f.rootStatus = http.StatusServiceUnavailable
	})
	a, _, err := build(t, f.servers(fakeToken), nil, step)
	require.NoError(t, err)
	_, err = a.Run(context.Background(), target())
	require.True(t, actions.IsRetryable(err), "503 on Init: %v", err)
	require.Contains(t, err.Error(), "GET "+f.srv.URL+"/api/json answered 503 Service Unavailable")
	require.Empty(t, f.posts())

	f.set(func(f *fake) { f.rootStatus = 0 })
	for range 3 {
		_, err = a.Run(context.Background(), target())
		require.NoError(t, err)
	}
	// Init and the status probe of the failure, then one Init.
	require.Equal(t, 3, f.count(http.MethodGet, "/api/json"))
	require.Len(t, f.posts(), 3)
}

// TestConcurrentRuns runs steps on two servers at once (-race finds a
// racing Init).
func TestConcurrentRuns(t *testing.T) {
	fakes := []*fake{
		newFake(t, func(f *fake) { f.jobs["deploy"] = deployJob() }),
		newFake(t, func(f *fake) { f.jobs["deploy"] = deployJob() }),
	}
	servers := Servers{
		"a": {URL: fakes[0].srv.URL, User: fakeUser, APIToken: fakeToken},
		"b": {URL: fakes[1].srv.URL, User: fakeUser, APIToken: fakeToken},
	}
	r := actions.NewRegistry()
	require.NoError(t, r.Register(NewSpec(Options{Servers: servers, MinPollInterval: time.Millisecond})))
	var acts []actions.Action
	for _, server := range []string{"a", "b"} {
		for i := range 4 {
			a, _, err := buildWith(t, r, fmt.Sprintf("server: %s\njob: deploy\nparameters: {HOST: h%d}\npoll_interval: 1ms", server, i))
			require.NoError(t, err)
			acts = append(acts, a)
		}
	}
	var wg sync.WaitGroup
	errs := make([]error, len(acts))
	for i, a := range acts {
		wg.Go(func() { _, errs[i] = a.Run(context.Background(), target()) })
	}
	wg.Wait()
	for _, err := range errs {
		require.NoError(t, err)
	}
	for _, f := range fakes {
		require.Equal(t, 1, f.count(http.MethodGet, "/api/json"), "one Init per server")
		require.Len(t, f.posts(), 4)
	}
}

func TestTLS(t *testing.T) {
	f := newFake(t, func(f *fake) { f.jobs["deploy"] = deployJob() })
	srv := httptest.NewUnstartedServer(f)
	srv.Config.ErrorLog = log.New(io.Discard, "", 0) // the handshake the unknown CA fails
	srv.StartTLS()
	t.Cleanup(srv.Close)
	caFile := filepath.Join(t.TempDir(), "ca.pem")
	require.NoError(t, os.WriteFile(caFile, pem.EncodeToMemory(&pem.Block{Type: "CERTIFICATE", Bytes: srv.Certificate().Raw}), 0o600))
	// The fake's own URLs (job "url", Location) name its plain-HTTP
	// listener: only the id of a Location is used, so this still works.
	tests := []struct {
		name    string
		server  Server
		wantErr string
	}{
		{name: "ca_file", server: Server{URL: srv.URL, User: fakeUser, APIToken: fakeToken, CAFile: caFile}},
		{name: "insecure_skip_verify", server: Server{URL: srv.URL, User: fakeUser, APIToken: fakeToken, InsecureSkipVerify: true}},
		{
			name:    "unknown CA",
			server:  Server{URL: srv.URL, User: fakeUser, APIToken: fakeToken},
			wantErr: "certificate signed by unknown authority (set the server's ca_file, or insecure_skip_verify)",
		},
	}
	for _, tt := range tests {
		t.Run(tt.name, func(t *testing.T) {
			a, _, err := build(t, Servers{"default": tt.server}, nil, step)
			require.NoError(t, err)
			res, err := a.Run(context.Background(), target())
			if tt.wantErr != "" {
				require.ErrorContains(t, err, tt.wantErr)
				require.False(t, actions.IsRetryable(err))
				return
			}
			require.NoError(t, err)
			require.Equal(t, "SUCCESS", res.Details["result"])
			require.Regexp(t, "^"+regexp.QuoteMeta(srv.URL)+`/job/deploy/\d+/$`, res.Details["build_url"])
		})
	}
}
