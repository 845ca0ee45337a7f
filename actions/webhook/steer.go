package webhook

import (
	"maps"
	"net/http"
	"slices"
	"strings"

	"github.com/selfheal/selfheal/actions"
)

// carries says what credentials the request carries, for the URL rule of
// actions.CheckCredentialURL: the bearer token, headers whose values are
// secret. "" when it carries none (a user and password in the URL are
// found by the check itself).
func (p *Params) carries() string {
	var what []string
	if p.BearerTokenFile != "" {
		what = append(what, "a bearer token (bearer_token_file)")
	}
	var secret []string
	for _, name := range slices.Sorted(maps.Keys(p.Headers)) {
		if c := http.CanonicalHeaderKey(name); secretHeader(c) {
			secret = append(secret, c)
		}
	}
	switch len(secret) {
	case 0:
	case 1:
		what = append(what, "the header "+secret[0])
	default:
		what = append(what, "the headers "+strings.Join(secret, ", "))
	}
	return strings.Join(what, " and ")
}

// steerError is the load-time refusal of a URL a label could point
// elsewhere while the request carries credentials, or nil.
func (p *Params) steerError() error {
	if err := actions.CheckCredentialURL(p.URL, p.carries()); err != nil {
		return actions.ParamErrorf("url", "%v", err)
	}
	return nil
}
