package playbooks

import (
	"errors"
	"fmt"
	"strings"
	"time"
	_ "time/tzdata" // time zones load the same on hosts and images without /usr/share/zoneinfo

	"github.com/prometheus/common/model"
	"github.com/robfig/cron/v3"
	"go.yaml.in/yaml/v3"
)

// Window is one entry of a playbook's `windows` or `blackouts`: every start
// of Schedule opens a span that closes when the clock in Location shows the
// start plus Duration. So `0 22 * * *` for 8h in Europe/Paris is 22:00 to
// 06:00 Paris time every night, the nights the clocks change too (it then
// lasts 9h or 7h of elapsed time).
//
// Around a clock change: a start at a time the clock skips (forward) opens
// when the clock jumps, a start at a time the clock shows twice (back) opens
// the first time only, and likewise for the closing time; a span that lies
// wholly in skipped time does not happen. Spans that overlap or touch, as
// when Duration is longer than the schedule's period, are one span.
//
// A Window is immutable and safe for concurrent use; the zero Window is
// never open.
type Window struct {
	// Schedule is the cron spec as written: five fields (minute, hour, day
	// of month, month, day of week) or @yearly, @monthly, @weekly, @daily,
	// @hourly.
	Schedule string
	// Duration is how long each span lasts on Location's clock; > 0.
	Duration time.Duration
	// Location is the time zone Schedule and Duration are read in.
	Location *time.Location
	// Pos is where the entry is in its playbook's Source.
	Pos Position

	// sched matches clock readings, taken as UTC times: readings have no
	// clock changes, so cron's arithmetic on them is plain.
	sched *cron.SpecSchedule
}

// cronParser reads standard cron specs and the calendar descriptors.
var cronParser = cron.NewParser(cron.Minute | cron.Hour | cron.Dom | cron.Month | cron.Dow | cron.Descriptor)

// maxMerge bounds how many overlapping spans Contains merges to find where
// an open stretch ends; a schedule whose spans never leave a gap (`0 * * *
// *` for 2h) is open for ever, and Contains then returns an end that is
// that many spans ahead: a lower bound.
const maxMerge = 16

// NewWindow builds a window from a cron spec, a duration and a time zone
// (nil is UTC). The spec may not carry its own zone (CRON_TZ=), and @every
// is refused: a window opens at fixed clock times.
func NewWindow(schedule string, d time.Duration, loc *time.Location) (Window, error) {
	sched, err := parseSchedule(schedule)
	if err != nil {
		return Window{}, err
	}
	if d <= 0 {
		return Window{}, fmt.Errorf("duration must be greater than 0, got %s", d)
	}
	if loc == nil {
		loc = time.UTC
	}
	return Window{Schedule: schedule, Duration: d, Location: loc, sched: sched}, nil
}

// parseSchedule parses a cron spec into a schedule of clock readings.
func parseSchedule(spec string) (s *cron.SpecSchedule, err error) {
	fields := strings.Fields(spec)
	switch {
	case len(fields) == 0:
		return nil, errors.New("must not be empty")
	case strings.HasPrefix(fields[0], "CRON_TZ=") || strings.HasPrefix(fields[0], "TZ="):
		_, zone, _ := strings.Cut(fields[0], "=")
		return nil, fmt.Errorf("a time zone in the schedule (%s) is not supported: write timezone: %s next to schedule", fields[0], zone)
	case fields[0] == "@every":
		return nil, fmt.Errorf("%q is not supported: a window opens at fixed clock times; write them as five cron fields, like \"0 */2 * * *\"", spec)
	}
	defer func() {
		if recover() != nil { // robfig/cron panics on some malformed specs
			s, err = nil, fmt.Errorf("invalid cron spec %q", spec)
		}
	}()
	parsed, err := cronParser.Parse(spec)
	if err != nil {
		return nil, fmt.Errorf("invalid cron spec %q: %v", spec, err)
	}
	s, ok := parsed.(*cron.SpecSchedule)
	if !ok {
		return nil, fmt.Errorf("invalid cron spec %q: not a calendar schedule", spec)
	}
	s.Location = time.UTC
	// Every date a spec can match comes within five years (cron's search
	// limit) of 2000-01-01, leap days included.
	if s.Next(time.Date(2000, 1, 1, 0, 0, 0, 0, time.UTC)).IsZero() {
		return nil, fmt.Errorf("cron spec %q matches no date", spec)
	}
	return s, nil
}

// String renders w as `"0 22 * * *" for 8h (Europe/Paris)`.
func (w Window) String() string {
	return fmt.Sprintf("%q for %s (%s)", w.Schedule, model.Duration(w.Duration), w.Location)
}

// Contains reports whether w is open at t and, when it is, when it closes:
// the end of the span holding t, merged with the spans that overlap or touch
// it (at most maxMerge of them), in w.Location.
func (w Window) Contains(t time.Time) (bool, time.Time) {
	start, ok := w.opened(t)
	if !ok {
		return false, time.Time{}
	}
	end := w.instant(start.Add(w.Duration))
	for range maxMerge {
		// A span that opens by end continues the stretch. Compared as
		// instants: two readings the clock skips open and close at once.
		next, ok := w.latest(start, w.latestReading(end))
		if !ok {
			break
		}
		start, end = next, w.instant(next.Add(w.Duration))
	}
	return true, end
}

// opened returns the reading at which the latest span open at t started.
// A span is open at t exactly when it starts at a reading in (now-d, now],
// now being the latest reading shown by t.
func (w Window) opened(t time.Time) (time.Time, bool) {
	if w.sched == nil {
		return time.Time{}, false
	}
	now := w.latestReading(t)
	return w.latest(now.Add(-w.Duration), now)
}

// NextOpen returns the earliest instant at or after t at which w is open,
// in w.Location: t itself when it is open. It returns the zero time for the
// zero Window and when the schedule has no start within five years.
func (w Window) NextOpen(t time.Time) time.Time {
	if w.sched == nil {
		return time.Time{}
	}
	if _, in := w.opened(t); in {
		return t.In(w.Location)
	}
	r := w.latestReading(t)
	for range 4 {
		if r = w.sched.Next(r); r.IsZero() {
			return time.Time{}
		}
		open := w.instant(r)
		if open.Before(w.instant(r.Add(w.Duration))) {
			return open
		}
		// The span lies in time the clock skipped, and so do all that
		// close by the reading the clock jumped to.
		r = w.reading(open).Add(-w.Duration)
	}
	return time.Time{}
}

// reading returns the clock reading in w.Location at t, as a UTC time.
func (w Window) reading(t time.Time) time.Time {
	_, off := t.In(w.Location).Zone()
	return t.UTC().Add(time.Duration(off) * time.Second)
}

// latestReading returns the latest reading the clock has shown by t: the
// reading at t, except in time the clock shows a second time after going
// back, where it is the reading just before it went back.
func (w Window) latestReading(t time.Time) time.Time {
	t = t.In(w.Location)
	_, off := t.Zone()
	from, _ := t.ZoneBounds()
	if from.IsZero() {
		return w.reading(t)
	}
	_, before := from.Add(-time.Nanosecond).Zone()
	if back := time.Duration(before-off) * time.Second; back > 0 && t.Sub(from) < back {
		return w.reading(from.Add(-time.Nanosecond))
	}
	return w.reading(t)
}

// instant returns the first instant at which the clock in w.Location shows
// the reading r, or, when the clock skips r, the instant it jumps. It is
// the inverse of latestReading: instant(r) <= t exactly when r <=
// latestReading(t). The result is in w.Location.
func (w Window) instant(r time.Time) time.Time {
	y, mo, d := r.Date()
	h, mi, s := r.Clock()
	x := time.Date(y, mo, d, h, mi, s, r.Nanosecond(), w.Location)
	from, to := x.ZoneBounds()
	switch got := w.reading(x); {
	case got.After(r): // skipped; x is after the jump
		return from
	case got.Before(r): // skipped; x is before the jump
		return to
	}
	if !from.IsZero() {
		_, off := x.Zone()
		_, before := from.Add(-time.Nanosecond).Zone()
		if back := time.Duration(before-off) * time.Second; back > 0 && x.Sub(from) < back {
			return x.Add(-back) // the first time the clock showed r
		}
	}
	return x
}

// latest returns the latest start of w in (after, upto], both readings.
func (w Window) latest(after, upto time.Time) (time.Time, bool) {
	lo := w.sched.Next(after)
	if lo.IsZero() || lo.After(upto) {
		return time.Time{}, false
	}
	// lo is a start by upto, and none is in (hi, upto]; halve the gap.
	hi := upto
	for {
		n := w.sched.Next(lo)
		if n.IsZero() || n.After(upto) {
			return lo, true
		}
		lo = n
		mid := lo.Add(hi.Sub(lo) / 2)
		if m := w.sched.Next(mid); !m.IsZero() && !m.After(upto) {
			lo = m
		} else {
			hi = mid
		}
	}
}

// During returns the window of ws open at t that closes last, with its
// closing time (see Contains), or ok false when none is open.
func During(ws []Window, t time.Time) (w Window, end time.Time, ok bool) {
	for _, c := range ws {
		if in, e := c.Contains(t); in && (!ok || e.After(end)) {
			w, end, ok = c, e, true
		}
	}
	return w, end, ok
}

// maxAllowedSteps bounds how many blackouts and closed windows Allowed
// steps over looking for the next allowed instant.
const maxAllowedSteps = 32

// Allowed says whether a playbook with these windows and blackouts may act
// at t: not during any blackout, and, when it has windows, only while one is
// open; no windows means any time outside blackouts. When it may not,
// reason says why, for logs and run records, and next is the earliest
// instant it may: after the blackouts that hold then and in an open
// window. The search steps over at most maxAllowedSteps blackouts and
// closings; past that next is only a lower bound (asking again at next
// gives a later one). next is the zero time when its windows open no more.
// A caller that defers a run outside its windows but skips one in a
// blackout tells the two apart with During.
func Allowed(windows, blackouts []Window, t time.Time) (ok bool, reason string, next time.Time) {
	var until time.Time // the end of the blackout that holds at t
	next = t
	for i := range maxAllowedSteps {
		if b, end, in := During(blackouts, next); in {
			if i == 0 {
				reason, until = fmt.Sprintf("blackout %s until %s", b, end.Format(time.RFC3339)), end
			}
			next = end
			continue
		}
		if len(windows) == 0 {
			break
		}
		open, by := nextOpen(windows, next)
		if open.IsZero() {
			if i == 0 {
				return false, "outside its windows, which open no more", time.Time{}
			}
			return false, reason + "; then outside its windows, which open no more", time.Time{}
		}
		if open.Equal(next) {
			break
		}
		if i == 0 {
			reason = "outside its windows"
		}
		next = open.In(by.Location)
	}
	switch {
	case reason == "":
		return true, "", time.Time{}
	case until.IsZero():
		reason += "; next opens " + next.Format(time.RFC3339)
	case !next.Equal(until):
		reason += "; next allowed " + next.Format(time.RFC3339)
	}
	return false, reason, next
}

// nextOpen returns the earliest opening at or after t among ws, and the
// window that opens then; the zero time when none opens again.
func nextOpen(ws []Window, t time.Time) (time.Time, Window) {
	var first time.Time
	var by Window
	for _, w := range ws {
		if o := w.NextOpen(t); !o.IsZero() && (first.IsZero() || o.Before(first)) {
			first, by = o, w
		}
	}
	return first, by
}

// rawWindow is one entry of a playbook's `windows` or `blackouts`.
type rawWindow struct {
	Schedule *yaml.Node `yaml:"schedule"`
	Duration *yaml.Node `yaml:"duration"`
	Timezone *yaml.Node `yaml:"timezone"`
}

// windows decodes a playbook's `windows` or `blackouts`. Absent, null and
// [] all mean none.
func (p *parser) windows(n *yaml.Node, path string) []Window {
	if !present(n) {
		return nil
	}
	var items []*yaml.Node
	if !p.decode(n, path, &items) {
		return nil
	}
	var out []Window
	for i, item := range items {
		ipath := fmt.Sprintf("%s[%d]", path, i)
		if !p.mapping(item, ipath) {
			continue
		}
		if w, ok := p.window(item, ipath); ok {
			out = append(out, w)
		}
	}
	return out
}

// window decodes one entry of `windows` or `blackouts`, reporting every
// problem of it.
func (p *parser) window(n *yaml.Node, path string) (Window, bool) {
	before := len(p.errs)
	var raw rawWindow
	p.decode(n, path, &raw)
	w := Window{Location: time.UTC, Pos: Position{Line: n.Line, Column: n.Column}}
	if p.required(n, raw.Schedule, path, "schedule") && p.decode(raw.Schedule, path+".schedule", &w.Schedule) {
		sched, err := parseSchedule(w.Schedule)
		if err != nil {
			p.errorf(raw.Schedule, path+".schedule", "%v", err)
		}
		w.sched = sched
	}
	var d model.Duration
	if p.required(n, raw.Duration, path, "duration") && p.decode(raw.Duration, path+".duration", &d) {
		if d <= 0 {
			p.errorf(raw.Duration, path+".duration", "must be greater than 0")
		}
		w.Duration = time.Duration(d)
	}
	if present(raw.Timezone) {
		var name string
		if p.decode(raw.Timezone, path+".timezone", &name) {
			if loc, err := location(name); err != nil {
				p.errorf(raw.Timezone, path+".timezone", "%v", err)
			} else {
				w.Location = loc
			}
		}
	}
	return w, len(p.errs) == before
}

// location loads an IANA time zone by name. "Local" is refused: it would
// be whatever zone the daemon's host is set to.
func location(name string) (*time.Location, error) {
	switch name {
	case "":
		return nil, errors.New("must name a time zone, like Europe/Paris or UTC")
	case "Local":
		return nil, errors.New(`"Local" is the daemon host's zone: name the zone, like Europe/Paris or UTC`)
	}
	loc, err := time.LoadLocation(name)
	if err != nil {
		return nil, fmt.Errorf("unknown time zone %q: use an IANA name, like Europe/Paris or UTC", name)
	}
	return loc, nil
}
