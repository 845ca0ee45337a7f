package main

import (
	"context"
	"encoding/json"
	"fmt"
	"io"
	"os"
	"strings"
	"time"

	"github.com/alecthomas/kingpin/v2"
	"github.com/prometheus/common/model"

	"github.com/selfheal/selfheal/actions"
	"github.com/selfheal/selfheal/config"
	"github.com/selfheal/selfheal/engine"
	"github.com/selfheal/selfheal/ha"
	"github.com/selfheal/selfheal/playbooks"
	"github.com/selfheal/selfheal/receiver"
)

type dryRunCmd struct {
	configFile string
	playbooks  []string
	alerts     string
	output     string
}

func newDryRunCmd(app *kingpin.Application) *dryRunCmd {
	c := &dryRunCmd{}
	cmd := app.Command("dry-run", "Show what would run for an Alertmanager payload, and why; run nothing.")
	cmd.Flag("config.file", "Config file: its playbook files, and the Alertmanager and Jenkins the actions would use.").StringVar(&c.configFile)
	cmd.Flag("playbooks", "Playbook files (glob, repeatable); added to the config's.").StringsVar(&c.playbooks)
	cmd.Flag("alerts", "Alertmanager webhook payload file, or - for standard input.").Required().StringVar(&c.alerts)
	cmd.Flag("output", "Output format.").Default("text").EnumVar(&c.output, "text", "json")
	return c
}

// The dry-run report. Its JSON form is a stable interface for scripts.
type dryReport struct {
	Alerts []dryAlert `json:"alerts"`
	Notes  []string   `json:"notes"`
}

type dryAlert struct {
	Alertname string            `json:"alertname"`
	Status    string            `json:"status"`
	Episode   string            `json:"episode"`
	Labels    map[string]string `json:"labels"`
	Playbooks []dryPlaybook     `json:"playbooks"`
}

type dryPlaybook struct {
	Name    string `json:"name"`
	Source  string `json:"source"`
	Matches bool   `json:"matches"`
	Why     string `json:"why"`
	RunID   string `json:"runId,omitempty"`
	DryRun  bool   `json:"dryRun,omitempty"`
	// Limits describes the playbook's limits; Decision is what they say,
	// from engine.Decide, as the daemon would record it.
	Limits   string           `json:"limits,omitempty"`
	Decision *engine.Decision `json:"decision,omitempty"`
	Steps    []dryStep        `json:"steps,omitempty"`
	// Then says what happens after the steps: verification, on_failure,
	// repeats.
	Then []string `json:"then,omitempty"`
}

// then describes what pb does once its steps ran.
func then(pb *playbooks.Playbook) []string {
	var out []string
	if pb.Verify != nil {
		out = append(out, fmt.Sprintf("waits up to %s for the alert to resolve (verify.resolved_within); if it does not, the run is unhealed", model.Duration(pb.Verify.ResolvedWithin)))
	}
	if len(pb.OnFailure) > 0 {
		names := make([]string, len(pb.OnFailure))
		for i, st := range pb.OnFailure {
			names[i] = st.Name + " [" + st.ActionID + "]"
		}
		out = append(out, "if a step fails or the run is unhealed, on_failure runs: "+strings.Join(names, ", "))
	}
	if pb.RepeatAfter > 0 {
		out = append(out, fmt.Sprintf("runs again %s after it started, and so on, while the alert fires (repeat_after); each repeat is decided like this run: breaker, blackouts, limits, windows", model.Duration(pb.RepeatAfter)))
	}
	return out
}

// dryHistory is the History dry-run decides against: the runs this
// notification would start, claimed now and still in flight, so that a
// storm in one payload is limited as the daemon would limit it.
type dryHistory map[[2]string][]ha.Record

func (h dryHistory) KeyRuns(playbook, key string, _ time.Time) ([]ha.Record, error) {
	return h[[2]string{playbook, key}], nil
}

// Breaker is closed: dry-run has no log to find it open in.
func (dryHistory) Breaker() (ha.BreakerState, error) { return ha.BreakerState{}, nil }

type dryStep struct {
	Name    string        `json:"name"`
	Action  string        `json:"action"`
	Timeout string        `json:"timeout"`
	Retries int           `json:"retries"`
	Plan    *actions.Plan `json:"plan,omitempty"`
	Error   string        `json:"error,omitempty"`
}

func (c *dryRunCmd) run(stdin io.Reader, stdout, stderr io.Writer) int {
	var cfg *config.Config
	globs := c.playbooks
	if c.configFile != "" {
		var err error
		if cfg, err = config.Load(c.configFile); err != nil {
			fmt.Fprintf(stderr, "selfheal dry-run: load config:\n%v\n", err)
			return 1
		}
		globs = append(cfg.Playbooks.Files, globs...)
	}
	if len(globs) == 0 {
		fmt.Fprintln(stderr, "selfheal dry-run: give --playbooks, --config.file, or both")
		return 2
	}
	reg, err := newRegistry(cfg, nil)
	if err != nil {
		fmt.Fprintf(stderr, "selfheal dry-run: %v\n", err)
		return 1
	}
	set, err := playbooks.LoadFiles(reg, globs)
	if err != nil {
		fmt.Fprintf(stderr, "selfheal dry-run: load playbooks:\n")
		for _, e := range flatten(err) {
			fmt.Fprintf(stderr, "  %v\n", e)
		}
		return 1
	}
	in := stdin
	if c.alerts != "-" {
		f, err := os.Open(c.alerts)
		if err != nil {
			fmt.Fprintf(stderr, "selfheal dry-run: %v\n", err)
			return 1
		}
		defer f.Close()
		in = f
	}
	n, err := receiver.Decode(in)
	if err != nil {
		fmt.Fprintf(stderr, "selfheal dry-run: %s: %v\n", c.alerts, err)
		return 1
	}
	rep := report(context.Background(), set, n, time.Now().UTC())
	if cfg == nil {
		rep.Notes = append(rep.Notes, "No --config.file: the Alertmanager ("+placeholderAlertmanager+"), Jenkins servers and Kubernetes cluster in the plans are placeholders.")
	}
	if n.TruncatedAlerts > 0 {
		rep.Notes = append(rep.Notes, fmt.Sprintf("Alertmanager left %d alerts out of this notification (truncatedAlerts); they would never reach selfheal. Do not set max_alerts on a selfheal receiver.", n.TruncatedAlerts))
	}
	if c.output == "json" {
		enc := json.NewEncoder(stdout)
		enc.SetIndent("", "  ")
		if err := enc.Encode(rep); err != nil {
			fmt.Fprintln(stderr, err)
			return 1
		}
		return 0
	}
	printReport(stdout, rep)
	return 0
}

func report(ctx context.Context, set *playbooks.Set, n *receiver.Notification, now time.Time) dryReport {
	rep := dryReport{Notes: []string{
		"The execution log is not consulted: a daemon runs a playbook at most once per episode (and at its repeat_after, if it has one), so a re-delivery of an episode it already handled starts nothing.",
	}}
	history, limited := dryHistory{}, false
	for _, a := range n.Alerts {
		da := dryAlert{Alertname: a.Name(), Status: string(a.Status), Episode: a.Episode().String(), Labels: a.Labels, Playbooks: []dryPlaybook{}}
		for _, pb := range set.All() {
			ok, why := pb.Explain(a)
			dp := dryPlaybook{Name: pb.Name, Source: pb.Source, Matches: ok, Why: why}
			if ok {
				dp.RunID, dp.DryRun = ha.RunID(pb.Name, a.Episode()), pb.DryRun
				d, _ := engine.Decide(now, history, a, pb) // a dryHistory never fails
				dp.Decision = &d
				if pb.Limits != nil {
					limited = true
					dp.Limits = pb.Limits.String()
				}
				if d.Verdict == engine.Skip {
					da.Playbooks = append(da.Playbooks, dp)
					continue
				}
				if pb.Limits != nil {
					k := [2]string{pb.Name, d.Key}
					history[k] = append(history[k], ha.Record{State: ha.Claimed, ClaimedAt: now, LimitKey: d.Key})
				}
				for _, st := range pb.Steps {
					ds := dryStep{Name: st.Name, Action: st.ActionID, Timeout: st.Timeout.String(), Retries: st.Retries}
					plan, err := st.Action.Plan(ctx, actions.NewTarget(a, pb.Name, st.Name, dp.RunID))
					if err != nil {
						ds.Error = err.Error()
					} else {
						ds.Plan = &plan
					}
					dp.Steps = append(dp.Steps, ds)
				}
				dp.Then = then(pb)
			}
			da.Playbooks = append(da.Playbooks, dp)
		}
		rep.Alerts = append(rep.Alerts, da)
	}
	if limited {
		rep.Notes = append(rep.Notes, "Limits count only the runs this notification would start, as if all were still in flight; the daemon counts the runs in its execution log too.")
	}
	return rep
}

func printReport(w io.Writer, rep dryReport) {
	for i, a := range rep.Alerts {
		if i > 0 {
			fmt.Fprintln(w)
		}
		fmt.Fprintf(w, "alert %s (%s), episode %s\n", a.Alertname, a.Status, a.Episode)
		if len(a.Playbooks) == 0 {
			fmt.Fprintln(w, "  no playbooks loaded")
		}
		for _, p := range a.Playbooks {
			if !p.Matches {
				fmt.Fprintf(w, "  playbook %s: does not run: %s\n", p.Name, p.Why)
				continue
			}
			d := p.Decision
			if d != nil && d.Verdict == engine.Skip {
				fmt.Fprintf(w, "  playbook %s: would be recorded skipped (%s) as %s: %s\n", p.Name, d.Reason, p.RunID, d.Explain)
				if p.Limits != "" {
					fmt.Fprintf(w, "    limits: %s; key %q\n", p.Limits, d.Key)
				}
				continue
			}
			mode := "would run"
			if p.DryRun {
				mode = "would record a dry run (playbook has dry_run: true)"
			}
			fmt.Fprintf(w, "  playbook %s: %s as %s (%s)\n", p.Name, mode, p.RunID, p.Why)
			if d != nil && d.Verdict == engine.Defer {
				fmt.Fprintf(w, "    waits until %s (%s): %s\n", d.NotBefore.Format(time.RFC3339), d.Reason, d.Explain)
			}
			if p.Limits != "" {
				fmt.Fprintf(w, "    limits: %s; key %q\n", p.Limits, d.Key)
			}
			for j, s := range p.Steps {
				fmt.Fprintf(w, "    step %d %s [%s, timeout %s, retries %d]\n", j+1, s.Name, s.Action, s.Timeout, s.Retries)
				if s.Error != "" {
					fmt.Fprintf(w, "      would fail: %s\n", s.Error)
					continue
				}
				fmt.Fprintf(w, "      would %s\n", s.Plan.Summary)
				for _, prm := range s.Plan.Params {
					fmt.Fprintf(w, "      %s: %s\n", prm.Name, indent(prm.Value, "        "))
				}
				for _, d := range s.Plan.Details {
					fmt.Fprintf(w, "      - %s\n", d)
				}
			}
			for _, t := range p.Then {
				fmt.Fprintf(w, "    then: %s\n", t)
			}
		}
	}
	for _, n := range rep.Notes {
		fmt.Fprintf(w, "\nnote: %s\n", n)
	}
}

func indent(s, pad string) string { return strings.ReplaceAll(s, "\n", "\n"+pad) }
