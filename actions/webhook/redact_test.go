package webhook

import (
	"bytes"
	"context"
	"encoding/base64"
	"fmt"
	"io"
	"log/slog"
	"net/http"
	"net/http/httptest"
	"net/url"
	"strings"
	"testing"

	"github.com/stretchr/testify/require"

	"github.com/selfheal/selfheal/actions"
)

// TestSecretsNeverShown has servers echo every credential of the request
// back, in a 3xx Location and in an error body, and checks that the error,
// the result, the log and the plan show none of them: the bearer token,
// headers whose names look secret (X-Auth, X-Signature), a ?token= query
// and the basic auth built from the URL's userinfo.
func TestSecretsNeverShown(t *testing.T) {
	secrets := []string{token, "sig-VALUE", "xauth-VALUE", "query-VALUE", "userinfo-PW",
		base64.StdEncoding.EncodeToString([]byte("hookuser:userinfo-PW"))}
	echo := func(r *http.Request) string {
		u, pw, _ := r.BasicAuth()
		return strings.Join([]string{r.Header.Get("Authorization"), r.Header.Get("X-Signature"),
			r.Header.Get("X-Auth"), r.URL.Query().Get("token"), u + ":" + pw}, " ")
	}
	tests := []struct {
		name      string
		answer    func(w http.ResponseWriter, r *http.Request)
		userinfo  bool
		wantInErr string
	}{
		{
			name: "3xx Location",
			answer: func(w http.ResponseWriter, r *http.Request) {
				w.Header().Set("Location", "http://elsewhere.example/"+url.PathEscape(echo(r)))
				w.WriteHeader(http.StatusFound)
			},
			wantInErr: "Location",
		},
		{
			name: "error body",
			answer: func(w http.ResponseWriter, r *http.Request) {
				w.WriteHeader(http.StatusBadGateway)
				fmt.Fprint(w, "rejected "+echo(r))
			},
			wantInErr: "rejected",
		},
		{
			name: "error body, basic auth from the url",
			answer: func(w http.ResponseWriter, r *http.Request) {
				w.WriteHeader(http.StatusBadRequest)
				fmt.Fprint(w, "rejected "+echo(r))
			},
			userinfo:  true,
			wantInErr: "rejected",
		},
	}
	for _, tt := range tests {
		t.Run(tt.name, func(t *testing.T) {
			srv := httptest.NewServer(http.HandlerFunc(func(w http.ResponseWriter, r *http.Request) {
				_, _ = io.Copy(io.Discard, r.Body)
				tt.answer(w, r)
			}))
			defer srv.Close()
			var logs bytes.Buffer
			p := DefaultParams()
			p.URL = actions.MustTemplate(srv.URL + "/hook?token=query-VALUE")
			if tt.userinfo {
				p.URL = actions.MustTemplate("http://hookuser:userinfo-PW@" + strings.TrimPrefix(srv.URL, "http://") + "/hook?token=query-VALUE")
			} else {
				p.BearerTokenFile = writeToken(t, token)
			}
			p.Headers = map[string]actions.Template{
				"X-Signature": actions.MustTemplate("sig-VALUE"),
				"X-Auth":      actions.MustTemplate("xauth-VALUE"),
			}
			a, err := New(p, srv.Client(), slog.New(slog.NewTextHandler(&logs, &slog.HandlerOptions{Level: slog.LevelDebug})))
			require.NoError(t, err)

			res, err := a.Run(context.Background(), target())
			require.Error(t, err)
			require.Contains(t, err.Error(), tt.wantInErr)
			plan, perr := a.Plan(context.Background(), target())
			require.NoError(t, perr)
			shown := fmt.Sprintf("%v\n%#v\n%#v\n%s", err, res, plan, logs.String())
			require.Contains(t, shown, "<secret>")
			for _, s := range secrets {
				require.NotContains(t, shown, s)
			}
		})
	}
}
