package jenkins

import (
	"crypto/tls"
	"crypto/x509"
	"fmt"
	"log/slog"
	"net/http"
	"net/url"
	"os"
	"strings"
	"time"
)

// DefaultRequestTimeout bounds each HTTP request to Jenkins when a Server
// sets no Timeout. gojenkins v1.1.0 ignores contexts: the client's timeout
// is the only bound a request it sends has.
const DefaultRequestTimeout = 15 * time.Second

// secretShown replaces the API token wherever something is shown.
const secretShown = "<secret>"

// Server is how to reach one Jenkins.
type Server struct {
	// URL is the Jenkins root, with its context path if any
	// ("https://ci.example/jenkins"). Every URL the action requests is built
	// from it; the hosts in URLs Jenkins returns are never used.
	URL string
	// User and APIToken authenticate every request (basic auth). Use an API
	// token, not a password: with a password Jenkins wants a CSRF crumb
	// tied to a web session, which gojenkins cannot provide. APIToken is a
	// secret: it is never logged or shown.
	User     string
	APIToken string
	// CAFile, a PEM file, holds the CAs that sign Jenkins' certificate;
	// empty means the system's.
	CAFile string
	// InsecureSkipVerify turns TLS certificate verification off.
	InsecureSkipVerify bool
	// Timeout bounds each HTTP request; 0 means DefaultRequestTimeout.
	Timeout time.Duration
}

// Servers maps the names steps use (their `server` parameter) to servers.
type Servers map[string]Server

// String describes s without its token.
func (s Server) String() string {
	return fmt.Sprintf("jenkins server %s as %q", s.URL, s.User)
}

// GoString is String, so that %#v does not print the token either.
func (s Server) GoString() string { return s.String() }

// LogValue is what slog logs for s: no token.
func (s Server) LogValue() slog.Value {
	return slog.GroupValue(slog.String("url", s.URL), slog.String("user", s.User))
}

// Validate checks s. Every problem is reported, separated by "; ".
func (s Server) Validate() error {
	var probs []string
	if _, err := parseServerURL(s.URL); err != nil {
		probs = append(probs, err.Error())
	}
	if s.User == "" || s.APIToken == "" {
		probs = append(probs, "user and api_token: both must be set (anonymous access is not supported)")
	}
	if s.Timeout < 0 {
		probs = append(probs, "timeout: must not be negative")
	}
	if len(probs) > 0 {
		return fmt.Errorf("%s", strings.Join(probs, "; "))
	}
	return nil
}

// parseServerURL checks a server URL and returns it without a trailing
// slash.
func parseServerURL(s string) (string, error) {
	u, err := url.Parse(s)
	if err != nil {
		return "", fmt.Errorf("url: %w", err)
	}
	switch {
	case u.Scheme != "http" && u.Scheme != "https" || u.Host == "":
		return "", fmt.Errorf("url: %q is not an absolute http or https URL", u.Redacted())
	case u.User != nil:
		return "", fmt.Errorf("url: %q must not hold credentials: set user and api_token", u.Redacted())
	case u.RawQuery != "" || u.Fragment != "":
		return "", fmt.Errorf("url: %q must not have a query or fragment", u.Redacted())
	}
	return strings.TrimRight(s, "/"), nil
}

// newHTTPClient returns the client gojenkins sends with for s: a timeout on
// every request, s's TLS settings (gojenkins' own CACert and SslVerify do
// nothing in v1.1.0), and no redirects followed, so that credentials never
// go to a host Jenkins names.
func newHTTPClient(s Server) (*http.Client, error) {
	tlsConfig := &tls.Config{
		MinVersion:         tls.VersionTLS12,
		InsecureSkipVerify: s.InsecureSkipVerify, //nolint:gosec // the operator's explicit choice
	}
	if s.CAFile != "" {
		pem, err := os.ReadFile(s.CAFile)
		if err != nil {
			return nil, fmt.Errorf("ca_file: %w", err)
		}
		pool := x509.NewCertPool()
		if !pool.AppendCertsFromPEM(pem) {
			return nil, fmt.Errorf("ca_file: %s holds no PEM certificate", s.CAFile)
		}
		tlsConfig.RootCAs = pool
	}
	transport := http.DefaultTransport.(*http.Transport).Clone()
	transport.TLSClientConfig = tlsConfig
	timeout := s.Timeout
	if timeout == 0 {
		timeout = DefaultRequestTimeout
	}
	return &http.Client{
		Transport:     transport,
		Timeout:       timeout,
		CheckRedirect: func(*http.Request, []*http.Request) error { return http.ErrUseLastResponse },
	}, nil
}
