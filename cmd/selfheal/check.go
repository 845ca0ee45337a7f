package main

import (
	"errors"
	"fmt"
	"io"
	"os"

	"github.com/alecthomas/kingpin/v2"

	"github.com/selfheal/selfheal/config"
	"github.com/selfheal/selfheal/playbooks"
)

type checkCmd struct {
	configFile string
	files      []string
}

func newCheckCmd(app *kingpin.Application) *checkCmd {
	c := &checkCmd{}
	cmd := app.Command("check", "Validate the config file and playbook files; exit 1 listing every error.")
	cmd.Flag("config.file", "Config file to check, with the playbook files it names.").StringVar(&c.configFile)
	cmd.Arg("playbook-files", "Playbook files to check.").StringsVar(&c.files)
	return c
}

func (c *checkCmd) run(stdout, stderr io.Writer) int {
	if c.configFile == "" && len(c.files) == 0 {
		fmt.Fprintln(stderr, "selfheal check: give --config.file, playbook files, or both")
		return 2
	}
	failed := false
	report := func(name string, err error) {
		if err == nil {
			return
		}
		failed = true
		fmt.Fprintf(stderr, "FAILED: %s\n", name)
		for _, e := range flatten(err) {
			fmt.Fprintf(stderr, "  %v\n", e)
		}
	}
	var (
		globs []string
		cfg   *config.Config
	)
	if c.configFile != "" {
		var err error
		cfg, err = config.Load(c.configFile)
		report(c.configFile, err)
		if err != nil {
			return 1
		}
		fmt.Fprintf(stdout, "SUCCESS: %s is a valid config file\n", c.configFile)
		globs = cfg.Playbooks.Files
	}
	reg, err := newRegistry(cfg, nil)
	if err != nil {
		report("actions", err)
		return 1
	}
	files, err := playbooks.ExpandGlobs(append(globs, c.files...))
	report("playbook globs", err)
	var all []*playbooks.Playbook
	for _, f := range files {
		data, err := os.ReadFile(f)
		if err != nil {
			report(f, err)
			continue
		}
		pbs, err := playbooks.Parse(reg, f, data)
		report(f, err)
		if err == nil {
			fmt.Fprintf(stdout, "SUCCESS: %s: %d playbooks\n", f, len(pbs))
			all = append(all, pbs...)
		}
	}
	if _, err := playbooks.NewSet(all); err != nil {
		report("playbooks across files", err)
	}
	if failed {
		return 1
	}
	return 0
}

// flatten lists the leaves of a tree of joined errors, one per problem.
func flatten(err error) []error {
	if j, ok := err.(interface{ Unwrap() []error }); ok {
		var out []error
		for _, e := range j.Unwrap() {
			out = append(out, flatten(e)...)
		}
		return out
	}
	var single interface{ Unwrap() error }
	if errors.As(err, &single) {
		return []error{err}
	}
	return []error{err}
}
