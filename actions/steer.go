package actions

import (
	"fmt"
	"net/url"
	"path/filepath"
	"regexp"
	"strings"
	"text/template/parse"
)

// What alert labels may steer. Labels come from outside: from whatever
// Prometheus scraped or relabelled, and from anyone who can post to the
// webhook. A label may fill in a value where the playbook leaves room for
// one; it never decides where credentials go, which part of the filesystem
// is touched, or what a shell or a program takes as code or as an option.
// Every action enforces that with the helpers of this file, at load (on the
// template's source) and again at run time (on the rendered value):
//
//   - A URL that carries credentials keeps its scheme, host and port
//     literal (CheckCredentialURL); the rendered URL is checked against that
//     literal origin, and a template never adds a user and password
//     (CheckRenderedURL).
//   - A templated path starts with a literal absolute folder
//     (CheckPathTemplate); the rendered path is cleaned and must stay below
//     that folder, without NUL or other control characters (RenderPath).
//   - A value that becomes shell code goes through shellquote, outside
//     quotes (CheckShellCode).
//
// Names (Kubernetes objects, Jenkins jobs, systemd units) are checked by the
// action that knows their syntax.

// ParamError is a problem with one parameter of a step, named by its path
// under the step's `with`: "url", "command[2]", "env.LD_PRELOAD". A Params'
// Validate returns it (alone or in an errors.Join), and Registry.Build
// reports it at that parameter's position.
type ParamError struct {
	Param string
	Msg   string
}

func (e *ParamError) Error() string { return e.Param + ": " + e.Msg }

// ParamErrorf returns a *ParamError for param.
func ParamErrorf(param, format string, args ...any) *ParamError {
	return &ParamError{Param: param, Msg: fmt.Sprintf(format, args...)}
}

// ShellQuote quotes s as one word for a POSIX shell: in single quotes, where
// each single quote of s ends the quoting, follows as \' and starts it
// again. It is the template function shellquote.
func ShellQuote(s string) string {
	return "'" + strings.ReplaceAll(s, "'", `'\''`) + "'"
}

// Templated reports whether t has a template action: whether what it
// renders can depend on the alert.
func (t Template) Templated() bool { return t.t != nil }

// Literal returns the text t renders before its first action, whatever the
// alert: all of it when t has no action.
func (t Template) Literal() string {
	if t.t == nil {
		return t.src
	}
	if nodes := t.t.Root.Nodes; len(nodes) > 0 {
		if text, ok := nodes[0].(*parse.TextNode); ok {
			return string(text.Text)
		}
	}
	return ""
}

// StartsWithAction reports whether an action renders t's first character,
// so that a label can decide it (make an argument an option, say).
func (t Template) StartsWithAction() bool { return t.Templated() && t.Literal() == "" }

// pathFolder is the folder a templated path stays in: the literal text up
// to its last "/", cleaned. ok is false when that is not an absolute folder
// below the root.
func pathFolder(t Template) (string, bool) {
	lit := t.Literal()
	i := strings.LastIndex(lit, "/")
	if i < 0 || !filepath.IsAbs(lit) {
		return "", false
	}
	dir := filepath.Clean(lit[:i+1])
	return dir, dir != "/"
}

// CheckPathTemplate is the load-time half of the path rule: a templated
// path starts with a literal absolute folder other than "/". A path without
// a template is the action's to check.
func CheckPathTemplate(t Template) error {
	if !t.Templated() {
		return nil
	}
	if _, ok := pathFolder(t); !ok {
		return fmt.Errorf("%q: a templated path must start with a literal absolute folder, like /srv/{{ .Labels.name }}, so that a label cannot name any path", t.src)
	}
	return nil
}

// CheckPath is the run-time half: rendered, what t rendered, holds no NUL
// or other control character and, when t is templated, cleaned stays below
// t's literal folder. It returns the cleaned path.
func CheckPath(t Template, rendered string) (string, error) {
	if hasControl(rendered) {
		return "", fmt.Errorf("%q contains a NUL or another control character", rendered)
	}
	if !filepath.IsAbs(rendered) {
		return "", fmt.Errorf("%q is not an absolute path", rendered)
	}
	clean := filepath.Clean(rendered)
	if !t.Templated() {
		return clean, nil
	}
	dir, ok := pathFolder(t)
	if !ok || !strings.HasPrefix(clean, dir+"/") {
		return "", fmt.Errorf("%q leaves %s, the folder the playbook names", rendered, dir)
	}
	return clean, nil
}

// RenderPath renders t for target, trims spaces and checks the result with
// CheckPath.
func RenderPath(t Template, target Target) (string, error) {
	s, err := t.Render(target)
	if err != nil {
		return "", err
	}
	return CheckPath(t, strings.TrimSpace(s))
}

func hasControl(s string) bool {
	return strings.IndexFunc(s, func(r rune) bool { return r < ' ' || r == 0x7f }) >= 0
}

// literalOrigin returns the URL (scheme, user and host only) that t's
// literal text fixes: all of it up to the "/", "?" or "#" that ends the
// host and port. ok is false when a template could still change them.
func literalOrigin(t Template) (*url.URL, bool) {
	lit := t.Literal()
	if t.Templated() {
		i := strings.Index(lit, "://")
		if i < 0 {
			return nil, false
		}
		j := strings.IndexAny(lit[i+3:], "/?#")
		if j < 0 {
			return nil, false
		}
		lit = lit[:i+3+j]
	}
	u, err := url.Parse(lit)
	if err != nil || u.Scheme == "" || u.Host == "" {
		return nil, false
	}
	return &url.URL{Scheme: u.Scheme, User: u.User, Host: u.Host}, true
}

// actionRE matches a template action, for literalUser.
var actionRE = regexp.MustCompile(`(?s)\{\{.*?\}\}`)

// literalUser reports whether the literal text of t, its actions taken
// out, holds a user (and password) before the host: "https://user:pw@…",
// "https://user:{{ … }}@…".
func literalUser(t Template) bool {
	lit := actionRE.ReplaceAllString(t.src, "")
	i := strings.Index(lit, "://")
	if i < 0 {
		return false
	}
	auth := lit[i+3:]
	if j := strings.IndexAny(auth, "/?#"); j >= 0 {
		auth = auth[:j]
	}
	return strings.Contains(auth, "@")
}

// CheckCredentialURL is the load-time half of the URL rule. carries says
// what credentials the request carries ("a bearer token
// (bearer_token_file)"), "" for none; a user and password in the URL's
// literal text count too. A URL that carries credentials keeps its scheme,
// host and port literal: a template may only follow "scheme://host[:port]/".
func CheckCredentialURL(t Template, carries string) error {
	if carries == "" && literalUser(t) {
		carries = "a user and password in the URL"
	}
	if carries == "" {
		return nil
	}
	if _, ok := literalOrigin(t); ok {
		return nil
	}
	return fmt.Errorf(`the request carries %s, so the URL's scheme, host and port must be literal: a template may only follow "scheme://host[:port]/"`, carries)
}

// CheckRenderedURL is the run-time half, on u, what t rendered: when t's
// literal text fixes the scheme, host and port, u has exactly those; a user
// and password in u must come from that literal text.
func CheckRenderedURL(t Template, u *url.URL) error {
	origin, pinned := literalOrigin(t)
	if pinned && (u.Scheme != origin.Scheme || u.Host != origin.Host) {
		return fmt.Errorf("%q: its scheme, host and port are not the literal %s://%s of the playbook", u.Redacted(), origin.Scheme, origin.Host)
	}
	if u.User != nil && (!pinned || origin.User == nil || origin.User.String() != u.User.String()) {
		return fmt.Errorf("%q: a label may not add a user and password to the URL", u.Redacted())
	}
	return nil
}

// CheckShellCode checks a template whose output a shell runs as code. Every
// action that writes output must end its pipeline in shellquote, stand
// outside quotes and backquotes, and not follow a backslash or a "$" (which
// would change the quoting); quotes opened inside {{if}}, {{range}} or
// {{with}} must close there. {{template}} is refused: it cannot be checked.
// A template without actions is fine.
func CheckShellCode(t Template) error {
	if !t.Templated() {
		return nil
	}
	_, err := shellList(t.t.Root, shellState{})
	return err
}

// shellState is where a POSIX shell's tokenizer is in the literal text:
// inside which quote (0 outside), after a backslash, after a "$".
type shellState struct {
	quote  byte
	escape bool
	dollar bool
}

// text advances s over literal text.
func (s shellState) text(b []byte) shellState {
	for _, c := range b {
		s.dollar = false
		switch {
		case s.escape:
			s.escape = false
		case s.quote == '\'':
			if c == '\'' {
				s.quote = 0
			}
		case c == '\\':
			s.escape = true
		case s.quote != 0:
			if c == s.quote {
				s.quote = 0
			}
		case c == '\'', c == '"', c == '`':
			s.quote = c
		case c == '$':
			s.dollar = true
		}
	}
	return s
}

func shellList(l *parse.ListNode, s shellState) (shellState, error) {
	if l == nil {
		return s, nil
	}
	for _, n := range l.Nodes {
		var err error
		switch n := n.(type) {
		case *parse.TextNode:
			s = s.text(n.Text)
		case *parse.ActionNode:
			s, err = shellAction(n, s)
		case *parse.IfNode:
			s, err = shellBranch(n.String(), &n.BranchNode, s)
		case *parse.RangeNode:
			s, err = shellBranch(n.String(), &n.BranchNode, s)
		case *parse.WithNode:
			s, err = shellBranch(n.String(), &n.BranchNode, s)
		case *parse.TemplateNode:
			err = fmt.Errorf("%s cannot be checked: write the values into the script with shellquote", n)
		}
		if err != nil {
			return s, err
		}
	}
	return s, nil
}

// shellAction checks one action that may write output.
func shellAction(n *parse.ActionNode, s shellState) (shellState, error) {
	if len(n.Pipe.Decl) > 0 {
		return s, nil // an assignment writes nothing
	}
	last := n.Pipe.Cmds[len(n.Pipe.Cmds)-1]
	if id, ok := last.Args[0].(*parse.IdentifierNode); !ok || id.Ident != "shellquote" {
		return s, fmt.Errorf(`%s must end in "| shellquote", or pass the value after the script and use "$1"`, n)
	}
	switch {
	case s.quote != 0:
		return s, fmt.Errorf("%s is inside quotes or backquotes, where shellquote does not protect it", n)
	case s.escape || s.dollar:
		return s, fmt.Errorf("%s follows a backslash or a $, which would change its quoting", n)
	}
	return shellState{}, nil
}

// shellBranch checks the lists of an {{if}}, {{range}} or {{with}}: each
// must leave the quoting as it found it.
func shellBranch(name string, b *parse.BranchNode, s shellState) (shellState, error) {
	head, _, _ := strings.Cut(name, "}}")
	for _, l := range []*parse.ListNode{b.List, b.ElseList} {
		end, err := shellList(l, s)
		if err != nil {
			return s, err
		}
		if end.quote != s.quote || end.escape != s.escape {
			return s, fmt.Errorf("quotes opened inside %s}} must close there", head)
		}
		s.dollar = s.dollar || end.dollar
	}
	return s, nil
}
