package promwal

import (
	"context"
	"fmt"
	"path/filepath"
	"strings"
	"time"

	"github.com/selfheal/selfheal/actions"
)

// Summary says in one line what a quarantine would do now, or why it would
// refuse.
func (p *Preview) Summary() string {
	inv := p.Inventory
	if err := p.Err(); err != nil {
		return err.Error()
	}
	return fmt.Sprintf("quarantine %s of %s (%d files, %d bytes) into %s",
		strings.Join(entryNames(inv.Entries), ", "), inv.DataDir, len(inv.Files), inv.TotalBytes, p.Target)
}

// Lines describe the preview for people: the checks with their evidence,
// the loss window, the WAL and blocks, what stays, and every file that
// would move with its bytes.
func (p *Preview) Lines() []string {
	inv := p.Inventory
	var d []string
	for _, c := range p.Checks {
		d = append(d, fmt.Sprintf("check %s: %s: %s", c.Name, okFail(c.OK), c.Detail))
	}
	d = append(d,
		"loss window: "+inv.LossWindow.Description,
		"wal: "+describeWAL(inv.WAL),
		"blocks (kept): "+describeBlocks(inv.Blocks),
	)
	if kept := append(append([]string(nil), inv.Kept...), inv.Temporary...); len(kept) > 0 {
		d = append(d, "left alone: "+strings.Join(kept, ", "))
	}
	if len(inv.Unknown) > 0 {
		d = append(d, "unknown entries, left alone: "+strings.Join(inv.Unknown, ", "))
	}
	d = append(d, fmt.Sprintf("target: %s (<quarantine_dir>/<basename(data_dir)>-<UTC time %s>, created at run time)", p.Target, folderTimeFormat))
	for _, e := range inv.Entries {
		d = append(d, fmt.Sprintf("move %s/ -> %s (%d files, %d bytes)", e.Name, filepath.Join(p.Target, e.Name), e.Files, e.Bytes))
	}
	for _, f := range inv.Files {
		d = append(d, fmt.Sprintf("file %s %d", f.Path, f.Bytes))
	}
	d = append(d,
		fmt.Sprintf("total: %d files, %d bytes (%s); renames copy nothing, so the volume keeps %s free", len(inv.Files), inv.TotalBytes, human(inv.TotalBytes), human(int64(p.FreeBytes))),
		"restore (shown, never run; only before Prometheus starts again): "+p.RestoreCommand,
	)
	return d
}

func okFail(ok bool) string {
	if ok {
		return "ok"
	}
	return "FAIL"
}

func describeWAL(w WAL) string {
	if !w.Present {
		return "none"
	}
	s := fmt.Sprintf("%d bytes (%s), %d segments", w.Bytes, human(w.Bytes), w.Segments)
	if w.Segments > 0 {
		s += fmt.Sprintf(" %s..%s", w.FirstSegment, w.LastSegment)
	}
	if w.Checkpoint != "" {
		s += ", " + w.Checkpoint
	}
	if !w.LastWrite.IsZero() {
		s += ", last written " + w.LastWrite.Format(time.RFC3339)
	}
	return s
}

func describeBlocks(bs []Block) string {
	if len(bs) == 0 {
		return "none"
	}
	newest := bs[0]
	bad := 0
	for _, b := range bs {
		if b.Err != "" {
			bad++
		} else if b.MaxTime.After(newest.MaxTime) || newest.Err != "" {
			newest = b
		}
	}
	s := fmt.Sprintf("%d", len(bs))
	if newest.Err == "" {
		s += fmt.Sprintf(", newest %s up to %s", newest.ULID, newest.MaxTime.Format(time.RFC3339))
	}
	if bad > 0 {
		s += fmt.Sprintf(", %d with unreadable meta.json", bad)
	}
	return s
}

// Plan renders the parameters for t and says exactly what Run would do. In
// kubernetes mode it reads (get and list only) the StatefulSet, its pods,
// its owning Prometheus and the PVC, and shows the exact Job. In host mode:
// every check with its evidence, every file it would move with its bytes,
// the loss window and the unit and readiness steps. It changes nothing;
// the lock is probed with a non-blocking flock released at once. With a
// systemd unit, a lock or open file held now is expected (Run stops the
// unit first and checks again) and does not make the plan a refusal.
func (a *Action) Plan(ctx context.Context, t actions.Target) (actions.Plan, error) {
	if a.p.Mode == ModeKubernetes {
		return a.planKube(ctx, t)
	}
	r, err := a.render(t)
	if err != nil {
		return actions.Plan{}, fmt.Errorf("%s: %w", ID, err)
	}
	pv, err := PreviewQuarantine(a.options(r, t))
	if err != nil {
		return actions.Plan{}, fmt.Errorf("%s: %w", ID, err)
	}
	if r.unit != "" {
		for i, c := range pv.Checks {
			if !c.OK && (c.Name == "lock" || c.Name == "open_files") {
				pv.Checks[i] = pass(c.Name, "now: %s; Run stops %s first and checks again", c.Detail, r.unit)
			}
		}
	}
	sum := pv.Summary()
	if pv.Err() == nil && r.unit != "" {
		sum = fmt.Sprintf("stop %s, %s, start %s", r.unit, sum, r.unit)
	}
	return actions.Plan{
		Summary: sum,
		Params:  a.planParams(r),
		Details: append(a.steps(r), pv.Lines()...),
	}, nil
}

func (a *Action) planParams(r rendered) []actions.Param {
	ps := []actions.Param{
		{Name: "mode", Value: a.p.Mode},
		{Name: "data_dir", Value: r.dataDir},
		{Name: "quarantine_dir", Value: r.quarantineDir},
		{Name: "min_wal_bytes", Value: fmt.Sprintf("%d (%s)", int64(a.p.MinWALBytes), a.p.MinWALBytes)},
	}
	if r.unit != "" {
		ps = append(ps, actions.Param{Name: "systemd_unit", Value: r.unit})
	}
	if r.readyURL != "" {
		ps = append(ps, actions.Param{Name: "ready_url", Value: r.readyURL}, actions.Param{Name: "ready_timeout", Value: a.p.ReadyTimeout.String()})
	}
	return ps
}

// steps lists what Run does, in order.
func (a *Action) steps(r rendered) []string {
	var s []string
	add := func(format string, args ...any) {
		s = append(s, fmt.Sprintf("step %d: ", len(s)+1)+fmt.Sprintf(format, args...))
	}
	if r.unit != "" {
		add("%s stop %s", a.d.Systemctl, r.unit)
	}
	add("take flock(LOCK_EX|LOCK_NB) on %s and hold it; refuse if held; check again that no process uses the data dir (plan only probed the lock and released it at once)", filepath.Join(r.dataDir, lockFile))
	add("rename the entries below into the target, write %s there, release the lock; nothing is copied or deleted and nothing is recreated (Prometheus recreates wal/ itself)", ManifestName)
	if r.unit != "" {
		add("%s start %s, also when an earlier step failed", a.d.Systemctl, r.unit)
	}
	if r.readyURL != "" {
		add("GET %s every %s until 200, for up to %s", r.readyURL, a.d.ReadyInterval, a.p.ReadyTimeout)
	}
	return s
}
