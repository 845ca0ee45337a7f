package jenkins

import (
	"context"
	"encoding/base64"
	"fmt"
	"io"
	"net/http"
	"net/http/httptest"
	"net/url"
	"strings"
	"testing"

	"github.com/stretchr/testify/require"
)

// TestLocationNeverShowsCredentials has Jenkins (or a login proxy in front
// of it) answer with a 3xx whose Location echoes the credentials: the
// basic-auth header, the token, and the form of the trigger with a secret
// parameter. Neither the error nor the log shows them.
func TestLocationNeverShowsCredentials(t *testing.T) {
	const secretParam = "deploy-key-VALUE"
	basic := base64.StdEncoding.EncodeToString([]byte(fakeUser + ":" + fakeToken))
	echo := func(w http.ResponseWriter, r *http.Request) {
		b, _ := io.ReadAll(r.Body)
		w.Header().Set("Location", "http://login.example/next/"+url.PathEscape(strings.TrimPrefix(r.Header.Get("Authorization"), "Basic "))+
			"?from="+url.QueryEscape(string(b))+"&u="+url.QueryEscape(fakeToken))
		w.WriteHeader(http.StatusFound)
	}
	tests := []struct {
		name     string
		redirect func(r *http.Request) bool
		wantText string
	}{
		{"root, at connect", func(r *http.Request) bool { return true }, "GET"},
		{"trigger", func(r *http.Request) bool { return r.Method == http.MethodPost }, "did not queue the build"},
	}
	for _, tt := range tests {
		t.Run(tt.name, func(t *testing.T) {
			f := newFake(t, func(f *fake) {
				f.jobs["deploy"] = &fakeJob{params: []string{"HOST", "DEPLOY_KEY"}}
			})
			front := httptest.NewServer(http.HandlerFunc(func(w http.ResponseWriter, r *http.Request) {
				if tt.redirect(r) {
					echo(w, r)
					return
				}
				f.ServeHTTP(w, r)
			}))
			defer front.Close()
			logs := &logBuffer{}
			a, _, err := build(t, Servers{"default": {URL: front.URL, User: fakeUser, APIToken: fakeToken}}, logs,
				"job: deploy\nparameters: {HOST: '{{ .Labels.instance }}', DEPLOY_KEY: "+secretParam+"}\n")
			require.NoError(t, err)
			res, err := a.Run(context.Background(), target())
			require.ErrorContains(t, err, tt.wantText)
			require.ErrorContains(t, err, "login.example")
			plan, perr := a.Plan(context.Background(), target())
			require.NoError(t, perr)
			shown := fmt.Sprintf("%v\n%#v\n%#v\n%s", err, res, plan, logs.String())
			for _, s := range []string{fakeToken, basic, url.QueryEscape(basic), secretParam} {
				require.NotContains(t, shown, s)
			}
		})
	}
}
