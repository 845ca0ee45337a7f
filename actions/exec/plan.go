package exec

import (
	"context"
	"fmt"
	"os"
	"strconv"
	"strings"

	"github.com/selfheal/selfheal/actions"
	"github.com/selfheal/selfheal/redact"
)

// Plan renders the command for t and says what Run would start: the argv,
// the resolved executable, the working directory, the timeout and the
// environment. It runs nothing; it only looks the executable and the
// working directory up. Env params whose names look secret show as
// "<secret>". An argv that does not render, an executable that
// is not found and a missing working directory are errors, as they would
// be for Run.
func (a *Action) Plan(_ context.Context, t actions.Target) (actions.Plan, error) {
	inv, err := a.prepare(t)
	if err != nil {
		return actions.Plan{}, fmt.Errorf("exec: %w", err)
	}
	dir := "(the daemon's working directory)"
	if inv.dir != "" {
		fi, err := os.Stat(inv.dir)
		if err != nil {
			return actions.Plan{}, fmt.Errorf("exec: dir: %w", err)
		}
		if !fi.IsDir() {
			return actions.Plan{}, fmt.Errorf("exec: dir: %s is not a directory", inv.dir)
		}
		dir = inv.dir
	}
	params := []actions.Param{
		{Name: "command", Value: quoteArgv(inv.argv)},
		{Name: "path", Value: inv.path},
		{Name: "dir", Value: dir},
		{Name: "timeout", Value: a.p.Timeout.String()},
	}
	if len(a.p.RetryableExitCodes) > 0 {
		params = append(params, actions.Param{Name: "retryable_exit_codes", Value: joinInts(a.p.RetryableExitCodes)})
	}
	for _, name := range inv.params {
		params = append(params, actions.Param{Name: "env." + name, Value: inv.paramValues[name]})
	}
	return actions.Plan{
		Summary: "run " + quoteArgv(inv.argv),
		Params:  params,
		Details: a.planDetails(inv),
	}.Redacted(inv.redactor()), nil
}

// redactor knows the values of the env params whose names look secret
// (FOO_PASSWORD, API_TOKEN; redact.Name): plans, results and errors show
// them as "<secret>", even when the command prints them.
func (inv invocation) redactor() *redact.Redactor {
	var secrets []string
	for _, name := range inv.params {
		if redact.Name(name) {
			secrets = append(secrets, inv.paramValues[name])
		}
	}
	return redact.New(secrets...)
}

// planDetails explains how the command runs and what it sees.
func (a *Action) planDetails(inv invocation) []string {
	var d []string
	if inv.path != inv.argv[0] {
		d = append(d, fmt.Sprintf("%s resolves to %s on PATH", inv.argv[0], inv.path))
	}
	d = append(d,
		fmt.Sprintf("no shell; runs in its own process group, killed (SIGKILL) as a whole after %s or when the run is cancelled", a.p.Timeout),
		"inherited from the daemon (nothing else is): "+listOrNone(inv.inherited),
		"alert variables: "+strings.Join(inv.alert, ", "),
	)
	if len(inv.params) > 0 {
		d = append(d, "set by params (override the above): "+strings.Join(inv.params, ", "))
	}
	if len(a.p.RetryableExitCodes) > 0 {
		d = append(d, fmt.Sprintf("exit 0 succeeds; exit %s is retryable; any other exit fails the step", joinInts(a.p.RetryableExitCodes)))
	} else {
		d = append(d, "exit 0 succeeds; any other exit fails the step")
	}
	return d
}

func listOrNone(s []string) string {
	if len(s) == 0 {
		return "none"
	}
	return strings.Join(s, ", ")
}

func joinInts(ns []int) string {
	s := make([]string, len(ns))
	for i, n := range ns {
		s[i] = strconv.Itoa(n)
	}
	return strings.Join(s, ", ")
}

// quoteArgv renders argv as a POSIX shell would need it typed. It is for
// display only: the command never goes through a shell.
func quoteArgv(argv []string) string {
	q := make([]string, len(argv))
	for i, a := range argv {
		q[i] = quote(a)
	}
	return strings.Join(q, " ")
}

// quote leaves a word of safe characters bare, single-quotes any other, and
// Go-quotes a word with control characters so a summary stays on one line.
func quote(s string) string {
	if s == "" {
		return "''"
	}
	if strings.IndexFunc(s, func(r rune) bool { return r < ' ' || r == 0x7f }) >= 0 {
		return strconv.Quote(s)
	}
	if strings.IndexFunc(s, unsafeRune) < 0 {
		return s
	}
	return "'" + strings.ReplaceAll(s, "'", `'"'"'`) + "'"
}

func unsafeRune(r rune) bool {
	switch {
	case r >= 'a' && r <= 'z', r >= 'A' && r <= 'Z', r >= '0' && r <= '9':
		return false
	case strings.ContainsRune("@%+=:,./-_", r):
		return false
	}
	return true
}
