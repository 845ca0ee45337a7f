package main

import (
	"errors"
	"fmt"
	"io"
	"slices"

	"github.com/alecthomas/kingpin/v2"
	"k8s.io/apimachinery/pkg/labels"

	"github.com/selfheal/selfheal/actions"
	"github.com/selfheal/selfheal/config"
	"github.com/selfheal/selfheal/playbooks"
	"github.com/selfheal/selfheal/playbooks/kube"
)

type checkCmd struct {
	configFile string
	files      []string
}

func newCheckCmd(app *kingpin.Application) *checkCmd {
	c := &checkCmd{}
	cmd := app.Command("check", "Validate the config file, playbook files and Kubernetes manifests of playbook ConfigMaps; exit 1 listing every error.")
	cmd.Flag("config.file", "Config file to check, with the playbook files it names; its playbooks.kubernetes.label_selector is the one manifests are checked against.").StringVar(&c.configFile)
	cmd.Arg("files", "Playbook files, or Kubernetes manifests (YAML streams or kubectl get -o yaml lists) of ConfigMaps holding playbooks.").StringsVar(&c.files)
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
		for _, i := range playbooks.Unmatched(globs) { // the daemon starts with it: a warning
			fmt.Fprintf(stderr, "WARNING: playbooks.files[%d] %q matches no file\n", i, globs[i])
		}
	}
	reg, err := newRegistry(cfg, nil)
	if err != nil {
		report("actions", err)
		return 1
	}
	if cfg != nil {
		if _, err := breakerFrom(cfg, c.configFile, reg); err != nil {
			report(c.configFile, err)
		}
	}
	sel, err := playbookSelector(cfg)
	if err != nil {
		report("label selector", err)
		return 1
	}
	for _, i := range playbooks.Unmatched(c.files) { // asked for by name: a failure
		report(c.files[i], errors.New("matches no file"))
	}
	files, err := playbooks.ExpandGlobs(append(slices.Clip(globs), c.files...))
	report("playbook globs", err)
	var all []*playbooks.Playbook
	for _, f := range files {
		data, err := playbooks.ReadFile(f) // at most playbooks.MaxFileSize, manifests too
		if err != nil {
			report(f, err)
			continue
		}
		if kube.IsManifest(data) {
			all = append(all, checkManifest(reg, f, data, sel, stdout, report)...)
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

// checkManifest reports on every playbook file of the ConfigMaps in a
// manifest and returns the playbooks the daemon would load from it, for the
// check across files: those of ConfigMaps whose labels do not match sel are
// validated but left out.
func checkManifest(reg *actions.Registry, file string, data []byte, sel labels.Selector, stdout io.Writer, report func(string, error)) []*playbooks.Playbook {
	m, err := kube.ParseManifest(reg, file, data, sel)
	var loaded []*playbooks.Playbook
	for _, f := range m.Files {
		name := fmt.Sprintf("%s:%d:%d: %s", file, f.Pos.Line, f.Pos.Column, f.Source)
		if f.Warning != "" {
			fmt.Fprintf(stdout, "WARNING: %s: %s\n", name, f.Warning)
		}
		report(name, f.Err)
		if f.Err != nil {
			continue
		}
		fmt.Fprintf(stdout, "SUCCESS: %s: %d playbooks\n", name, len(f.Playbooks))
		if f.Warning == "" {
			loaded = append(loaded, f.Playbooks...)
		}
	}
	for _, s := range m.Skipped {
		fmt.Fprintf(stdout, "SKIPPED: %s:%d:%d: %s: %s\n", file, s.Pos.Line, s.Pos.Column, s.Object, s.Reason)
	}
	report(file, err)
	return loaded
}

// playbookSelector returns the label selector of the ConfigMaps the daemon
// loads playbooks from: the config's, or the default.
func playbookSelector(cfg *config.Config) (labels.Selector, error) {
	if cfg != nil && cfg.Playbooks.Kubernetes != nil {
		return cfg.Playbooks.Kubernetes.Selector(), nil
	}
	return labels.Parse(config.DefaultPlaybookSelector)
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
