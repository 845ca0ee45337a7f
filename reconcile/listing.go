package reconcile

import (
	"errors"
	"fmt"
	"sort"
	"strings"
	"time"

	"github.com/prometheus/alertmanager/api/v2/models"
	"github.com/prometheus/alertmanager/template"

	"github.com/selfheal/selfheal/alert"
)

// episodeKey identifies an episode as Alertmanager's API shows it: the
// API prints times to the millisecond (strfmt.DateTime), the webhook to
// the nanosecond. An alert sent with startsAt 09:34:40.123456789 is
// listed with 09:34:40.123, so episodes are compared at milliseconds.
type episodeKey struct {
	fingerprint string
	startsAt    int64 // Unix milliseconds, rounded down as the API prints it
}

func keyOf(a alert.Alert) episodeKey {
	return episodeKey{fingerprint: a.Fingerprint, startsAt: a.StartsAt.UnixMilli()}
}

// listed is one fingerprint as the Alertmanagers list it.
type listed struct {
	// alert is the alert with the earliest startsAt listed for it.
	alert alert.Alert
	// active: a member lists that episode as notified, neither silenced,
	// inhibited nor muted.
	active bool
	// diverged: members list different startsAt.
	diverged bool
}

// listing is what the members listed in one round, merged.
type listing struct {
	byFingerprint map[string]*listed
	// episodes holds every episode some member lists, whatever startsAt
	// was kept in byFingerprint.
	episodes map[episodeKey]struct{}
	// perMember holds the episodes each member listed, in member order.
	perMember []map[episodeKey]struct{}
	invalid   map[string]struct{}
}

// merge merges the alerts of every answer by fingerprint: an alert listed
// by both members of an HA pair is one alert. Alerts that cannot be taken
// are logged and left out.
func (r *Reconciler) merge(answers []answer) *listing {
	l := &listing{
		byFingerprint: map[string]*listed{},
		episodes:      map[episodeKey]struct{}{},
		perMember:     make([]map[episodeKey]struct{}, len(answers)),
		invalid:       map[string]struct{}{},
	}
	for i, ans := range answers {
		l.perMember[i] = make(map[episodeKey]struct{}, len(ans.alerts))
		for _, g := range ans.alerts {
			a, suppressed, err := convert(g)
			if err != nil {
				// Not put, but listed: what it may be in the log under is
				// not resolved.
				for _, k := range keysOf(g) {
					l.episodes[k] = struct{}{}
				}
				l.invalid[fingerprintOf(g)] = struct{}{}
				r.log.Warn("skipping an alert listed by alertmanager", "url", r.members[i].url,
					"fingerprint", fingerprintOf(g), "alertname", alertnameOf(g), "err", err)
				continue
			}
			k := keyOf(a)
			l.episodes[k] = struct{}{}
			l.perMember[i][k] = struct{}{}
			l.add(a, !suppressed)
		}
	}
	for fp, e := range l.byFingerprint {
		if e.diverged {
			r.log.Debug("alertmanagers list different startsAt for one alert; taking the earliest",
				"fingerprint", fp, "alertname", e.alert.Name(), "starts_at", e.alert.StartsAt)
		}
	}
	return l
}

func (l *listing) add(a alert.Alert, active bool) {
	e, ok := l.byFingerprint[a.Fingerprint]
	switch {
	case !ok:
		l.byFingerprint[a.Fingerprint] = &listed{alert: a, active: active}
	case keyOf(a) == keyOf(e.alert):
		e.active = e.active || active
	case a.StartsAt.Before(e.alert.StartsAt):
		e.alert, e.active, e.diverged = a, active, true
	default:
		e.diverged = true
	}
}

// firing returns the alerts to put as firing, by fingerprint, and counts
// the listing in res. An alert whose episode the log knows gets the
// log's startsAt, which the webhook gave to the nanosecond, so that the
// engine sees the same episode.
func (l *listing) firing(known map[episodeKey]alert.Alert, res *Result) []alert.Alert {
	res.Fetched, res.Invalid = len(l.byFingerprint), len(l.invalid)
	fps := make([]string, 0, len(l.byFingerprint))
	for fp := range l.byFingerprint {
		fps = append(fps, fp)
	}
	sort.Strings(fps)
	out := make([]alert.Alert, 0, len(fps))
	for _, fp := range fps {
		e := l.byFingerprint[fp]
		if e.diverged {
			res.Diverged++
		}
		if !e.active {
			res.Suppressed++
			continue
		}
		a := e.alert
		if k, ok := known[keyOf(a)]; ok {
			a.StartsAt = k.StartsAt
		}
		out = append(out, a)
	}
	return out
}

// observe records, for each member that answered in full, when it started
// and the episodes it listed. A new start time means it restarted and
// forgot its alerts: what it listed before says nothing any more.
func (r *Reconciler) observe(answers []answer, l *listing, now time.Time) {
	for i, ans := range answers {
		m := r.members[i]
		if ans.err != nil {
			continue
		}
		if !ans.started.Equal(m.started) {
			m.started, m.seen = ans.started, map[episodeKey]time.Time{}
		}
		for k := range l.perMember[i] {
			m.seen[k] = now
		}
	}
}

// resolves returns a resolved copy (endsAt now) of each known episode no
// member lists, when every member can be trusted to list it if it still
// fired: it listed the episode since it started, or it has been up for
// ResolveGrace. The others are counted as held.
func (r *Reconciler) resolves(known []alert.Alert, l *listing, now time.Time) (resolved []alert.Alert, held int) {
	for _, a := range known {
		k := keyOf(a)
		if _, ok := l.episodes[k]; ok || a.Status != alert.Firing {
			continue
		}
		trusted := true
		for _, m := range r.members {
			_, seen := m.seen[k]
			trusted = trusted && (seen || now.Sub(m.started) >= r.opts.ResolveGrace)
		}
		if !trusted {
			held++
			continue
		}
		a.Status, a.EndsAt = alert.Resolved, now
		resolved = append(resolved, a)
	}
	return resolved, held
}

// forget drops from each member's seen the episodes that no longer
// matter: resolved now, or neither listed for ResolveGrace nor firing in
// the log. Without a log to read (logRead false) only the resolved go.
func (r *Reconciler) forget(known map[episodeKey]alert.Alert, resolved []alert.Alert, logRead bool, now time.Time) {
	gone := make(map[episodeKey]struct{}, len(resolved))
	for _, a := range resolved {
		gone[keyOf(a)] = struct{}{}
	}
	for _, m := range r.members {
		for k, last := range m.seen {
			_, isGone := gone[k]
			_, isKnown := known[k]
			if isGone || logRead && !isKnown && now.Sub(last) > r.opts.ResolveGrace {
				delete(m.seen, k)
			}
		}
	}
}

// convert turns a listed alert into a firing alert as a webhook delivers
// it (endsAt zero), checked as the webhook checks one (alert.FromTemplate).
// suppressed reports that Alertmanager holds back its notifications.
func convert(g *models.GettableAlert) (a alert.Alert, suppressed bool, err error) {
	if g == nil {
		return alert.Alert{}, false, errors.New("null alert")
	}
	if g.StartsAt == nil {
		return alert.Alert{}, false, errors.New("startsAt: missing")
	}
	fp := strings.ToLower(fingerprintOf(g))
	if want := alert.Fingerprint(g.Labels); fp != "" && fp != want {
		return alert.Alert{}, false, fmt.Errorf("fingerprint: %q does not match the labels (want %q)", fp, want)
	}
	a, err = alert.FromTemplate(template.Alert{
		Status:       string(alert.Firing),
		Labels:       template.KV(g.Labels),
		Annotations:  template.KV(g.Annotations),
		StartsAt:     time.Time(*g.StartsAt),
		GeneratorURL: string(g.GeneratorURL),
		Fingerprint:  fp,
	})
	if err != nil {
		return alert.Alert{}, false, err
	}
	if s := g.Status; s != nil {
		suppressed = len(s.SilencedBy) > 0 || len(s.InhibitedBy) > 0 || len(s.MutedBy) > 0 ||
			s.State != nil && *s.State == models.AlertStatusStateSuppressed
	}
	return a, suppressed, nil
}

// keysOf returns the episodes an alert that cannot be taken may stand
// for: under its listed fingerprint and under the one of its labels.
func keysOf(g *models.GettableAlert) []episodeKey {
	if g == nil || g.StartsAt == nil {
		return nil
	}
	ms := time.Time(*g.StartsAt).UnixMilli()
	return []episodeKey{
		{fingerprint: strings.ToLower(fingerprintOf(g)), startsAt: ms},
		{fingerprint: alert.Fingerprint(g.Labels), startsAt: ms},
	}
}

func fingerprintOf(g *models.GettableAlert) string {
	if g == nil || g.Fingerprint == nil {
		return ""
	}
	return *g.Fingerprint
}

func alertnameOf(g *models.GettableAlert) string {
	if g == nil {
		return ""
	}
	return g.Labels["alertname"]
}
