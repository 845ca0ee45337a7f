package silence

import (
	"context"
	"encoding/base64"
	"encoding/json"
	"fmt"
	"io"
	"net/http"
	"net/http/httptest"
	"strings"
	"testing"
	"time"

	"github.com/stretchr/testify/require"

	"github.com/selfheal/selfheal/actions"
)

// TestErrorBodiesNeverShowCredentials has an Alertmanager (or the proxy in
// front of it) echo the basic auth it got in its error bodies, for the
// POST of Run and the DELETE of Finish: neither the errors nor the plan
// show the password, nor the Authorization header built from the URL's
// userinfo.
func TestErrorBodiesNeverShowCredentials(t *testing.T) {
	const password = "am-PASSWORD"
	header := "Basic " + base64.StdEncoding.EncodeToString([]byte("selfheal:"+password))
	srv := httptest.NewServer(http.HandlerFunc(func(w http.ResponseWriter, r *http.Request) {
		_, _ = io.Copy(io.Discard, r.Body)
		u, pw, _ := r.BasicAuth()
		w.Header().Set("Content-Type", "application/json")
		w.WriteHeader(http.StatusForbidden)
		_ = json.NewEncoder(w).Encode(fmt.Sprintf("forbidden: Authorization: %s (%s:%s)", r.Header.Get("Authorization"), u, pw))
	}))
	defer srv.Close()
	u := "http://selfheal:" + password + "@" + strings.TrimPrefix(srv.URL, "http://")
	p := DefaultParams()
	p.ExpireOnFinish = true
	a, err := New(p, Options{URL: u, Now: func() time.Time { return now }})
	require.NoError(t, err)

	_, runErr := a.Run(context.Background(), target())
	require.ErrorContains(t, runErr, "forbidden")
	finishErr := a.Finish(context.Background(), target(), actions.Result{Details: map[string]string{DetailSilenceID: "6f1cbb2e-0b9a-4c55-9a3c-3f1a2f6a7d10"}})
	require.ErrorContains(t, finishErr, "forbidden")
	plan, err := a.Plan(context.Background(), target())
	require.NoError(t, err)
	shown := fmt.Sprintf("%v\n%v\n%#v", runErr, finishErr, plan)
	require.Contains(t, shown, "<secret>")
	for _, s := range []string{password, header[len("Basic "):]} {
		require.NotContains(t, shown, s)
	}
}
