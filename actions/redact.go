package actions

import (
	"strings"

	"github.com/selfheal/selfheal/redact"
)

// Redacted returns res with its summary and details passed through r: what
// an action returns goes into the run record, which the API serves and
// the store keeps. Actions return redacted results, with a Redactor that
// knows their secrets.
func (res Result) Redacted(r *redact.Redactor) Result {
	return Result{Summary: r.String(res.Summary), Details: r.Strings(res.Details)}
}

// Redacted returns p with its summary, parameter values and details passed
// through r. A parameter naming a header, a variable or a job parameter
// whose name looks secret (redact.Name of the part after the dot, as in
// "headers.X-Auth" or "env.FOO_PASSWORD") shows as "<secret>", or keeps
// its own mask ("Bearer <secret>").
func (p Plan) Redacted(r *redact.Redactor) Plan {
	out := Plan{Summary: r.String(p.Summary)}
	for _, prm := range p.Params {
		v := r.String(prm.Value)
		if _, key, ok := strings.Cut(prm.Name, "."); ok && redact.Name(key) && !strings.Contains(v, redact.Shown) {
			v = redact.Shown
		}
		out.Params = append(out.Params, Param{Name: prm.Name, Value: v})
	}
	for _, d := range p.Details {
		out.Details = append(out.Details, r.String(d))
	}
	return out
}
