// Package redact owns how secrets are kept out of everything selfheal
// shows: logs, errors, run records (and so the API and the store), plans,
// and the output of dry-run and check. A Redactor knows the secret values
// in play — configured tokens and passwords, rendered values of secret
// parameters and headers — and replaces them, and anything shaped like a
// secret, with "<secret>".
package redact

import (
	"cmp"
	"encoding/base64"
	"net/url"
	"regexp"
	"slices"
	"strconv"
	"strings"
)

// Shown is what a secret is replaced with.
const Shown = "<secret>"

// minLen is the shortest value masked wherever it appears: a shorter one
// would mask ordinary words. Shorter secrets are still masked by shape.
const minLen = 4

// Redactor masks secrets in text. A nil *Redactor masks by shape only.
// It is immutable and safe for concurrent use.
type Redactor struct {
	// values are the known secrets and their escaped forms, longest
	// first.
	values []string
}

// New returns a Redactor that knows values (empty and short ones are
// ignored) besides the shapes every Redactor masks.
func New(values ...string) *Redactor {
	return (*Redactor)(nil).With(values...)
}

// With returns a Redactor that knows r's values and values. r is not
// changed.
func (r *Redactor) With(values ...string) *Redactor {
	out := &Redactor{}
	if r != nil {
		out.values = slices.Clone(r.values)
	}
	for _, v := range values {
		if len(v) < minLen {
			continue
		}
		q := strconv.Quote(v)
		out.values = append(out.values, v, url.QueryEscape(v), url.PathEscape(v), q[1:len(q)-1])
	}
	slices.SortFunc(out.values, func(a, b string) int { return cmp.Compare(len(b), len(a)) })
	out.values = slices.Compact(out.values)
	return out
}

// BasicAuth returns the secret values of a basic-auth credential: the
// password, and the user:password pair as the Authorization header
// carries it (base64).
func BasicAuth(user, password string) []string {
	if password == "" {
		return nil
	}
	return []string{password, base64.StdEncoding.EncodeToString([]byte(user + ":" + password))}
}

// String returns s with every known value, and everything shaped like a
// secret, replaced by Shown. The shapes are: the password of a URL's
// userinfo; the value of a name=value (a query parameter, a form field, an
// environment variable) and of a header line whose name looks secret (see
// Name); the credentials of an Authorization header; a Bearer token and a
// Basic credential anywhere.
func (r *Redactor) String(s string) string {
	if r != nil {
		for _, v := range r.values {
			s = strings.ReplaceAll(s, v, Shown)
		}
	}
	s = userinfo.ReplaceAllStringFunc(s, maskUserinfo)
	s = authorization.ReplaceAllStringFunc(s, maskAuthorization)
	s = headerLine.ReplaceAllStringFunc(s, maskHeaderLine)
	s = bearer.ReplaceAllStringFunc(s, maskBearer)
	s = basic.ReplaceAllStringFunc(s, maskBasic)
	return assignment.ReplaceAllStringFunc(s, maskAssignment)
}

// Strings returns m with every value passed through String; nil stays nil.
func (r *Redactor) Strings(m map[string]string) map[string]string {
	if m == nil {
		return nil
	}
	out := make(map[string]string, len(m))
	for k, v := range m {
		out[k] = r.String(v)
	}
	return out
}

// Error returns err with its text passed through String, keeping the chain
// (errors.Is and errors.As see what err wraps). An error with nothing to
// hide is returned as is.
func (r *Redactor) Error(err error) error {
	if err == nil {
		return nil
	}
	msg := err.Error()
	if shown := r.String(msg); shown != msg {
		return &redactedError{msg: shown, err: err}
	}
	return err
}

type redactedError struct {
	msg string
	err error
}

func (e *redactedError) Error() string { return e.msg }
func (e *redactedError) Unwrap() error { return e.err }

// secretWords are what a name holding a secret contains.
var secretWords = []string{"auth", "token", "secret", "signature", "passw", "key", "cookie", "credential"}

// Name reports whether a header, parameter, query or environment variable
// named name holds a secret: its name contains auth (Authorization,
// X-Auth), token, secret, signature, passw (password, passwd), key,
// cookie or credential, in any case (FOO_PASSWORD, X-Api-Key).
func Name(name string) bool {
	n := strings.ToLower(name)
	for _, w := range secretWords {
		if strings.Contains(n, w) {
			return true
		}
	}
	return false
}

var (
	// userinfo is scheme://user:password@.
	userinfo = regexp.MustCompile(`([A-Za-z][A-Za-z0-9+.\-]*://[^\s/?#@:"'<>]*):([^\s/?#@"'<>]+)@`)
	// authorization is an Authorization header with its value: a word,
	// then maybe a second one on the same line.
	authorization = regexp.MustCompile(`(?i)\b((?:proxy-)?authorization[ \t]*[:=][ \t]*)([^\s"',;<]+)(?:([ \t]+)([^\s"',;<]+))?`)
	// headerLine is "Name: value" up to the end of the line, for names
	// with a hyphen (X-Signature) and cookies. The name starts a line or
	// follows a space, quote or bracket: "/etc/x/chat-token: no such
	// file" is a path in an error, not a header.
	headerLine = regexp.MustCompile(`(?:^|[\s"'(\[{,;])((?:[A-Za-z0-9]+-)+[A-Za-z0-9]+|[Cc]ookie)[ \t]*:[ \t]*([^\s<][^\r\n]*)`)
	// bearer is a Bearer token anywhere.
	bearer = regexp.MustCompile(`(?i)\b(bearer[ \t]+)([A-Za-z0-9._~+/=\-]+)`)
	// basic is what may be a Basic credential anywhere.
	basic = regexp.MustCompile(`(?i)\b(basic[ \t]+)([A-Za-z0-9+/]+={0,2})`)
	// assignment is name=value: a query parameter, a form field, an
	// environment variable.
	assignment = regexp.MustCompile(`([A-Za-z0-9_.\-]+)=([^\s&"';<>#\\)\]},]+)`)
)

// authSchemes are the schemes an Authorization header names before its
// credentials.
var authSchemes = []string{"basic", "bearer", "token", "digest", "negotiate", "apikey"}

// maskUserinfo masks the password of a URL, except "xxxxx": the mask of
// url.URL.Redacted and of Prometheus' config.URL.
func maskUserinfo(m string) string {
	g := userinfo.FindStringSubmatch(m)
	if g[2] == "xxxxx" {
		return m
	}
	return g[1] + ":" + Shown + "@"
}

func maskAuthorization(m string) string {
	g := authorization.FindStringSubmatch(m)
	if slices.Contains(authSchemes, strings.ToLower(g[2])) {
		if g[4] == "" {
			return m
		}
		return g[1] + g[2] + g[3] + Shown
	}
	return g[1] + Shown + g[3] + g[4]
}

func maskHeaderLine(m string) string {
	g := headerLine.FindStringSubmatch(m)
	if !Name(g[1]) || strings.Contains(strings.ToLower(g[1]), "authorization") {
		return m
	}
	return m[:len(m)-len(g[2])] + Shown
}

// maskBearer masks a token: eight characters or more, not all letters (so
// that "Bearer authentication" stays).
func maskBearer(m string) string {
	g := bearer.FindStringSubmatch(m)
	if len(g[2]) < 8 || strings.IndexFunc(g[2], func(r rune) bool { return !('a' <= r && r <= 'z' || 'A' <= r && r <= 'Z') }) < 0 {
		return m
	}
	return g[1] + Shown
}

// maskBasic masks base64 that decodes to user:password.
func maskBasic(m string) string {
	g := basic.FindStringSubmatch(m)
	b, err := base64.StdEncoding.DecodeString(g[2])
	if err != nil || !strings.Contains(string(b), ":") {
		return m
	}
	return g[1] + Shown
}

func maskAssignment(m string) string {
	g := assignment.FindStringSubmatch(m)
	if !Name(g[1]) || g[2] == Shown {
		return m
	}
	// Punctuation ending a sentence ends the value too.
	v := strings.TrimRight(g[2], ":.")
	return g[1] + "=" + Shown + g[2][len(v):]
}
