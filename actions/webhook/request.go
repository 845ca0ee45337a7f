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
	"github.com/selfheal/selfheal/redact"
)

// request is a webhook rendered for one target: exactly what Run sends and
// what Plan shows. Plan and Run both build it with prepare.
type request struct {
	method string
	url    *url.URL
	header http.Header
	body   string
	// secretHeaders are the canonical names of headers shown as secrets.
	secretHeaders map[string]bool
	// redactor knows the values never to show: the token, the secret
	// header values and the URL's password, raw and as basic auth.
	redactor *redact.Redactor
}

// String names the request for errors and plans: "POST https://host/path",
// secrets in the URL (a password, a ?token=) hidden.
func (r *request) String() string { return r.redactor.String(r.method + " " + r.url.String()) }

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
	if err := actions.CheckRenderedURL(a.p.URL, u); err != nil {
		return nil, fmt.Errorf("url: %w", err)
	}
	body, err := a.p.Body.Render(t)
	if err != nil {
		return nil, fmt.Errorf("body: %w", err)
	}
	r := &request{method: a.p.Method, url: u, header: http.Header{}, body: body, secretHeaders: map[string]bool{}}
	var secrets []string
	if pw, ok := u.User.Password(); ok {
		secrets = redact.BasicAuth(u.User.Username(), pw)
	}
	for k, vs := range u.Query() {
		if redact.Name(k) {
			secrets = append(secrets, vs...)
		}
	}
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
			secrets = append(secrets, v)
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
		secrets = append(secrets, tok)
	}
	r.redactor = redact.New(secrets...)
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

// secretHeader reports whether a header's value must never be shown
// (redact.Name: Authorization, X-Auth, X-Signature, X-Api-Key, Cookie, …).
func secretHeader(name string) bool { return redact.Name(name) }

// shownHeaders lists r's headers for a plan, sorted, secret values hidden.
// The Authorization header of a bearer token shows as "Bearer <secret>".
func (r *request) shownHeaders() []actions.Param {
	var out []actions.Param
	for _, name := range slices.Sorted(maps.Keys(r.header)) {
		v := r.header.Get(name)
		switch {
		case name == "Authorization" && strings.HasPrefix(v, "Bearer ") && r.secretHeaders[name]:
			v = "Bearer " + redact.Shown
		case r.secretHeaders[name]:
			v = redact.Shown
		}
		out = append(out, actions.Param{Name: "headers." + name, Value: v})
	}
	return out
}
