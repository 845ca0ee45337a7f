package webhook

import (
	"fmt"
	"maps"
	"net/http"
	"net/url"
	"os"
	"slices"
	"strings"

	"github.com/selfheal/selfheal/actions"
)

// secretShown replaces a secret wherever something is shown.
const secretShown = "<secret>"

// request is a webhook rendered for one target: exactly what Run sends and
// what Plan shows. Plan and Run both build it with prepare.
type request struct {
	method string
	url    *url.URL
	header http.Header
	body   string
	// secretHeaders are the canonical names of headers shown as secrets.
	secretHeaders map[string]bool
	// secrets are values never to show: the token and secret header values.
	secrets []string
}

// String names the request for errors and plans: "POST https://host/path",
// a password in the URL hidden.
func (r *request) String() string { return r.method + " " + r.url.Redacted() }

// redact replaces every secret value in s with "<secret>", for text that
// may echo one, like a response body.
func (r *request) redact(s string) string {
	for _, v := range r.secrets {
		if v != "" {
			s = strings.ReplaceAll(s, v, secretShown)
		}
	}
	return s
}

// prepare renders the request for t and reads the bearer token. It has no
// side effect.
func (a *Action) prepare(t actions.Target) (*request, error) {
	rawURL, err := a.p.URL.Render(t)
	if err != nil {
		return nil, fmt.Errorf("url: %w", err)
	}
	u, err := checkURL(rawURL)
	if err != nil {
		return nil, err
	}
	body, err := a.p.Body.Render(t)
	if err != nil {
		return nil, fmt.Errorf("body: %w", err)
	}
	r := &request{method: a.p.Method, url: u, header: http.Header{}, body: body, secretHeaders: map[string]bool{}}
	for _, name := range slices.Sorted(maps.Keys(a.p.Headers)) {
		v, err := a.p.Headers[name].Render(t)
		if err != nil {
			return nil, fmt.Errorf("headers.%s: %w", name, err)
		}
		if strings.ContainsAny(v, "\r\n\x00") {
			return nil, fmt.Errorf("headers.%s: value contains a line break or NUL", name)
		}
		canon := http.CanonicalHeaderKey(name)
		r.header.Set(canon, v)
		if secretHeader(canon) {
			r.secretHeaders[canon] = true
			r.secrets = append(r.secrets, v)
		}
	}
	if body != "" && r.header.Get("Content-Type") == "" {
		r.header.Set("Content-Type", "application/json")
	}
	if a.p.BearerTokenFile != "" {
		tok, err := readToken(a.p.BearerTokenFile)
		if err != nil {
			return nil, err
		}
		r.header.Set("Authorization", "Bearer "+tok)
		r.secretHeaders["Authorization"] = true
		r.secrets = append(r.secrets, tok)
	}
	return r, nil
}

// readToken reads a bearer token. Its errors name the file, never the
// content.
func readToken(path string) (string, error) {
	b, err := os.ReadFile(path)
	if err != nil {
		return "", fmt.Errorf("bearer_token_file: %w", err)
	}
	tok := strings.TrimSpace(string(b))
	if tok == "" {
		return "", fmt.Errorf("bearer_token_file: %s is empty", path)
	}
	if strings.IndexFunc(tok, func(r rune) bool { return r <= ' ' || r == 0x7f }) >= 0 {
		return "", fmt.Errorf("bearer_token_file: %s: the token contains whitespace or control characters", path)
	}
	return tok, nil
}

// checkURL parses s and checks it is an absolute http(s) URL.
func checkURL(s string) (*url.URL, error) {
	u, err := url.Parse(s)
	if err != nil {
		return nil, fmt.Errorf("url: %w", err)
	}
	if u.Scheme != "http" && u.Scheme != "https" || u.Host == "" {
		return nil, fmt.Errorf("url: %q is not an absolute http or https URL", u.Redacted())
	}
	return u, nil
}

// secretHeader reports whether a header's value must never be shown: its
// name mentions authorization, a token, a secret, a key, a password or a
// cookie.
func secretHeader(name string) bool {
	n := strings.ToLower(name)
	for _, w := range []string{"authorization", "token", "secret", "key", "password", "cookie"} {
		if strings.Contains(n, w) {
			return true
		}
	}
	return false
}

// shownHeaders lists r's headers for a plan, sorted, secret values hidden.
// The Authorization header of a bearer token shows as "Bearer <secret>".
func (r *request) shownHeaders() []actions.Param {
	var out []actions.Param
	for _, name := range slices.Sorted(maps.Keys(r.header)) {
		v := r.header.Get(name)
		switch {
		case name == "Authorization" && strings.HasPrefix(v, "Bearer ") && r.secretHeaders[name]:
			v = "Bearer " + secretShown
		case r.secretHeaders[name]:
			v = secretShown
		}
		out = append(out, actions.Param{Name: "headers." + name, Value: v})
	}
	return out
}
