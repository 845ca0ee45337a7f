package exec

import (
	"fmt"
	"path/filepath"
	"slices"
	"strings"

	"github.com/selfheal/selfheal/actions"
)

// What labels may steer in a command (see actions/steer.go for the rule
// every action follows). The argument vector never goes through a shell,
// but a playbook may call one, or an interpreter, itself:
//
//   - a template in the script of a shell (`sh -c SCRIPT`, `bash -ec`, also
//     behind env, sudo, nice, ...) must quote every value with shellquote,
//     outside quotes; a template in the inline code of an interpreter
//     (`python -c`, `perl -e`, ...) is refused: no quoting fits all of
//     them. Values after the script or the code are its arguments ("$1",
//     sys.argv): that is the safe way to pass them;
//   - a templated command[0] starts with a literal absolute folder, and a
//     templated argument that starts with "/" is a path: both stay below
//     their literal folder;
//   - an argument a template starts must not render to something starting
//     with "-": a label would choose an option. After a literal "--", and
//     after a script or inline code, arguments are operands and may;
//   - a template may not set a variable that decides which code runs.
//
// Other programs that hand their arguments to a shell (ssh, su -c, xargs,
// find -exec without sh) are not recognised: quote values for them with
// shellquote.

// shells are the programs whose -c argument is a shell script.
func shells() []string {
	return []string{"sh", "bash", "dash", "zsh", "ksh", "mksh", "ash", "yash", "fish", "csh", "tcsh"}
}

// codeFlags are, per interpreter, the flags whose argument is code.
func codeFlags(name string) []string {
	switch name {
	case "python":
		return []string{"-c"}
	case "lua":
		return []string{"-e"}
	case "perl":
		return []string{"-e", "-E"}
	case "ruby":
		return []string{"-e"}
	case "node", "nodejs":
		return []string{"-e", "--eval", "-p", "--print"}
	case "php":
		return []string{"-r"}
	}
	return nil
}

// code is an argument that a shell or an interpreter runs as code.
type code struct {
	idx   int
	prog  string // the program as written, "/bin/sh"
	shell bool
}

// findCode lists the arguments of cmd that a literal shell or interpreter
// in it runs as code, in order.
func findCode(cmd []actions.Template) []code {
	var out []code
	for i := 0; i < len(cmd); i++ {
		if cmd[i].Templated() {
			continue
		}
		prog := cmd[i].String()
		name := strings.TrimRight(filepath.Base(prog), "0123456789.")
		if slices.Contains(shells(), name) {
			if j := shellScript(cmd, i); j > 0 {
				out = append(out, code{idx: j, prog: prog, shell: true})
				i = j
			}
			continue
		}
		flags := codeFlags(name)
		for j := i + 1; j+1 < len(cmd) && len(flags) > 0; j++ {
			if !cmd[j].Templated() && slices.Contains(flags, cmd[j].String()) {
				out = append(out, code{idx: j + 1, prog: prog})
				j++
			}
		}
	}
	return out
}

// shellScript returns the index of the script of the shell at cmd[i]: the
// first operand after options that include -c. It is -1 when the shell
// runs no -c script.
func shellScript(cmd []actions.Template, i int) int {
	seenC := false
	for j := i + 1; j < len(cmd); j++ {
		src := cmd[j].String()
		switch {
		case cmd[j].Templated():
		case src == "--":
			if seenC && j+1 < len(cmd) {
				return j + 1
			}
			return -1
		case src == "-o" || src == "+o" || src == "-O" || src == "+O":
			j++
			continue
		case strings.HasPrefix(src, "--") || strings.HasPrefix(src, "+") && len(src) > 1:
			continue
		case strings.HasPrefix(src, "-") && len(src) > 1:
			seenC = seenC || strings.ContainsRune(src[1:], 'c')
			continue
		}
		if seenC {
			return j
		}
		return -1
	}
	return -1
}

// operandsFrom is the index from which cmd's arguments are operands that
// no program parses as options: after a literal "--", or after a script or
// inline code.
func operandsFrom(cmd []actions.Template, codes []code) int {
	from := len(cmd)
	if i := slices.IndexFunc(cmd, func(t actions.Template) bool { return !t.Templated() && t.String() == "--" }); i >= 0 {
		from = i + 1
	}
	if len(codes) > 0 {
		from = min(from, codes[0].idx+1)
	}
	return from
}

// codeVars are variables that decide which code a process runs.
func codeVars() []string {
	return []string{"PATH", "IFS", "ENV", "BASH_ENV", "PS4", "SHELLOPTS", "BASHOPTS", "PROMPT_COMMAND",
		"PYTHONPATH", "PYTHONHOME", "PYTHONSTARTUP", "PERL5LIB", "PERL5OPT", "PERLLIB", "RUBYLIB", "RUBYOPT",
		"NODE_OPTIONS", "NODE_PATH", "GCONV_PATH"}
}

func isCodeVar(name string) bool {
	return slices.Contains(codeVars(), name) ||
		strings.HasPrefix(name, "LD_") || strings.HasPrefix(name, "DYLD_") || strings.HasPrefix(name, "BASH_FUNC_")
}

// steerErrors are the load-time refusals of what labels could steer in p,
// each a *actions.ParamError.
func (p *Params) steerErrors() []error {
	var errs []error
	if len(p.Command) > 0 {
		if err := actions.CheckPathTemplate(p.Command[0]); err != nil {
			errs = append(errs, actions.ParamErrorf("command[0]", "%v", err))
		}
	}
	for _, c := range findCode(p.Command) {
		t, param := p.Command[c.idx], fmt.Sprintf("command[%d]", c.idx)
		switch {
		case c.shell:
			if err := actions.CheckShellCode(t); err != nil {
				errs = append(errs, actions.ParamErrorf(param, "%s runs this as shell code, so a label could become a command: %v", c.prog, err))
			}
		case t.Templated():
			errs = append(errs, actions.ParamErrorf(param, "%s runs this as code, so a label could become code: "+
				"pass values as arguments after it or in the environment (SELFHEAL_LABEL_*), never in the code", c.prog))
		}
	}
	for _, name := range sortedKeys(p.Env) {
		if p.Env[name].Templated() && isCodeVar(name) {
			errs = append(errs, actions.ParamErrorf("env."+name, "a template may not set a variable that decides which code runs (PATH, LD_*, BASH_ENV, ...); write its value literally"))
		}
	}
	return errs
}

// checkArgv is the run-time half on argv, what cmd rendered: templated
// paths stay below their literal folder, and an argument a template starts
// is not an option.
func checkArgv(cmd []actions.Template, argv []string) error {
	from := operandsFrom(cmd, findCode(cmd))
	for i, t := range cmd {
		switch {
		case !t.Templated():
		case i == 0 || strings.HasPrefix(t.Literal(), "/"):
			if _, err := actions.CheckPath(t, argv[i]); err != nil {
				return fmt.Errorf("command[%d]: %w", i, err)
			}
		case i < from && t.StartsWithAction() && strings.HasPrefix(argv[i], "-"):
			return fmt.Errorf("command[%d]: %q starts with \"-\", so the command would take it as an option; "+
				"write --name={{ ... }}, or put a literal -- before it", i, argv[i])
		}
	}
	return nil
}
