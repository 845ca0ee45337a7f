package playbooks

import (
	"fmt"
	"sort"
	"testing"
	"time"

	"github.com/stretchr/testify/require"
)

func zone(t testing.TB, name string) *time.Location {
	t.Helper()
	loc, err := time.LoadLocation(name)
	require.NoError(t, err)
	return loc
}

func window(t testing.TB, spec string, d time.Duration, loc *time.Location) Window {
	t.Helper()
	w, err := NewWindow(spec, d, loc)
	require.NoError(t, err)
	return w
}

// rfc renders a time for comparison, "" for the zero time.
func rfc(t time.Time) string {
	if t.IsZero() {
		return ""
	}
	return t.Format(time.RFC3339)
}

// TestWindowContains probes windows at local times on both sides of their
// edges, on ordinary days and on the days clocks change.
func TestWindowContains(t *testing.T) {
	paris, ny := zone(t, "Europe/Paris"), zone(t, "America/New_York")
	type probe struct {
		at  time.Time
		in  bool
		end string // when in
	}
	for _, tc := range []struct {
		name   string
		w      Window
		probes []probe
	}{
		{
			name: "crossing midnight in Paris",
			w:    window(t, "0 22 * * *", 8*time.Hour, paris),
			probes: []probe{
				{at: time.Date(2026, 12, 6, 21, 59, 0, 0, paris)},
				{at: time.Date(2026, 12, 6, 22, 0, 0, 0, paris), in: true, end: "2026-12-07T06:00:00+01:00"},
				{at: time.Date(2026, 12, 7, 3, 0, 0, 0, paris), in: true, end: "2026-12-07T06:00:00+01:00"},
				{at: time.Date(2026, 12, 7, 5, 59, 59, 0, paris), in: true, end: "2026-12-07T06:00:00+01:00"},
				{at: time.Date(2026, 12, 7, 6, 0, 0, 0, paris)},
				// The instant, not the zone it is given in, counts.
				{at: time.Date(2026, 12, 7, 4, 59, 59, 0, time.UTC), in: true, end: "2026-12-07T06:00:00+01:00"},
				{at: time.Date(2026, 12, 7, 5, 0, 0, 0, time.UTC)},
			},
		},
		{
			name: "crossing midnight in New York",
			w:    window(t, "0 22 * * *", 8*time.Hour, ny),
			probes: []probe{
				{at: time.Date(2026, 12, 6, 21, 59, 0, 0, ny)},
				{at: time.Date(2026, 12, 6, 22, 0, 0, 0, ny), in: true, end: "2026-12-07T06:00:00-05:00"},
				{at: time.Date(2026, 12, 7, 3, 0, 0, 0, ny), in: true, end: "2026-12-07T06:00:00-05:00"},
				{at: time.Date(2026, 12, 7, 5, 59, 59, 0, ny), in: true, end: "2026-12-07T06:00:00-05:00"},
				{at: time.Date(2026, 12, 7, 6, 0, 0, 0, ny)},
				// 23:00 in Paris is 17:00 in New York.
				{at: time.Date(2026, 12, 6, 22, 0, 0, 0, time.UTC)},
			},
		},
		{
			// Clocks go forward at 02:00 on 29 March: 22:00 to 06:00 lasts 7h.
			name: "Paris, the night clocks go forward",
			w:    window(t, "0 22 * * *", 8*time.Hour, paris),
			probes: []probe{
				{at: time.Date(2026, 3, 28, 22, 0, 0, 0, paris), in: true, end: "2026-03-29T06:00:00+02:00"},
				{at: time.Date(2026, 3, 29, 0, 59, 59, 0, time.UTC), in: true, end: "2026-03-29T06:00:00+02:00"},
				{at: time.Date(2026, 3, 29, 3, 0, 0, 0, paris), in: true, end: "2026-03-29T06:00:00+02:00"},
				{at: time.Date(2026, 3, 29, 5, 59, 59, 0, paris), in: true, end: "2026-03-29T06:00:00+02:00"},
				{at: time.Date(2026, 3, 29, 6, 0, 0, 0, paris)},
			},
		},
		{
			// Clocks go back at 03:00 on 25 October: 22:00 to 06:00 lasts 9h.
			name: "Paris, the night clocks go back",
			w:    window(t, "0 22 * * *", 8*time.Hour, paris),
			probes: []probe{
				{at: time.Date(2026, 10, 24, 21, 59, 59, 0, paris)},
				{at: time.Date(2026, 10, 24, 22, 0, 0, 0, paris), in: true, end: "2026-10-25T06:00:00+01:00"},
				{at: time.Date(2026, 10, 25, 0, 30, 0, 0, time.UTC), in: true, end: "2026-10-25T06:00:00+01:00"}, // 02:30 CEST
				{at: time.Date(2026, 10, 25, 1, 30, 0, 0, time.UTC), in: true, end: "2026-10-25T06:00:00+01:00"}, // 02:30 CET
				{at: time.Date(2026, 10, 25, 5, 30, 0, 0, paris), in: true, end: "2026-10-25T06:00:00+01:00"},    // 8h30 after 22:00
				{at: time.Date(2026, 10, 25, 6, 0, 0, 0, paris)},
			},
		},
		{
			// Clocks go forward at 02:00 on 8 March, back at 02:00 on 1 November.
			name: "New York, both changes",
			w:    window(t, "0 22 * * *", 8*time.Hour, ny),
			probes: []probe{
				{at: time.Date(2026, 3, 8, 5, 59, 59, 0, ny), in: true, end: "2026-03-08T06:00:00-04:00"},
				{at: time.Date(2026, 3, 8, 6, 0, 0, 0, ny)},
				{at: time.Date(2026, 3, 8, 10, 0, 0, 0, time.UTC)}, // 06:00 EDT; 05:00 had there been no change
				{at: time.Date(2026, 11, 1, 5, 59, 59, 0, ny), in: true, end: "2026-11-01T06:00:00-05:00"},
				{at: time.Date(2026, 11, 1, 6, 0, 0, 0, ny)},
			},
		},
		{
			// 02:30 does not exist on 29 March: the window opens at 03:00
			// and still closes at 03:30.
			name: "start in the skipped hour",
			w:    window(t, "30 2 * * *", time.Hour, paris),
			probes: []probe{
				{at: time.Date(2026, 3, 29, 0, 59, 59, 0, time.UTC)}, // 01:59:59 CET
				{at: time.Date(2026, 3, 29, 3, 0, 0, 0, paris), in: true, end: "2026-03-29T03:30:00+02:00"},
				{at: time.Date(2026, 3, 29, 3, 29, 59, 0, paris), in: true, end: "2026-03-29T03:30:00+02:00"},
				{at: time.Date(2026, 3, 29, 3, 30, 0, 0, paris)},
				{at: time.Date(2026, 3, 30, 2, 30, 0, 0, paris), in: true, end: "2026-03-30T03:30:00+02:00"},
			},
		},
		{
			name: "span wholly in the skipped hour",
			w:    window(t, "15 2 * * *", 30*time.Minute, paris),
			probes: []probe{
				{at: time.Date(2026, 3, 29, 1, 0, 0, 0, time.UTC)}, // 03:00 CEST, when 02:15 to 02:45 would have been
				{at: time.Date(2026, 3, 28, 2, 15, 0, 0, paris), in: true, end: "2026-03-28T02:45:00+01:00"},
			},
		},
		{
			// 02:30 happens twice on 25 October: the window opens the
			// first time and closes at the only 03:30.
			name: "start in the repeated hour",
			w:    window(t, "30 2 * * *", time.Hour, paris),
			probes: []probe{
				{at: time.Date(2026, 10, 25, 0, 29, 59, 0, time.UTC)},
				{at: time.Date(2026, 10, 25, 0, 30, 0, 0, time.UTC), in: true, end: "2026-10-25T03:30:00+01:00"}, // 02:30 CEST
				{at: time.Date(2026, 10, 25, 1, 30, 0, 0, time.UTC), in: true, end: "2026-10-25T03:30:00+01:00"}, // 02:30 CET
				{at: time.Date(2026, 10, 25, 3, 30, 0, 0, paris)},
			},
		},
		{
			// 02:30 happens twice on 25 October: the window closes the first time.
			name: "end in the repeated hour",
			w:    window(t, "0 1 * * *", 90*time.Minute, paris),
			probes: []probe{
				{at: time.Date(2026, 10, 25, 0, 29, 59, 0, time.UTC), in: true, end: "2026-10-25T02:30:00+02:00"},
				{at: time.Date(2026, 10, 25, 0, 30, 0, 0, time.UTC)},
				{at: time.Date(2026, 10, 25, 1, 10, 0, 0, time.UTC)}, // 02:10 CET
			},
		},
		{
			name: "MON-FRI on a Saturday",
			w:    window(t, "0 8 * * MON-FRI", 10*time.Hour, paris),
			probes: []probe{
				{at: time.Date(2026, 12, 4, 17, 59, 59, 0, paris), in: true, end: "2026-12-04T18:00:00+01:00"}, // Friday
				{at: time.Date(2026, 12, 5, 10, 0, 0, 0, paris)},                                               // Saturday
				{at: time.Date(2026, 12, 6, 8, 0, 0, 0, paris)},                                                // Sunday
				{at: time.Date(2026, 12, 7, 8, 0, 0, 0, paris), in: true, end: "2026-12-07T18:00:00+01:00"},    // Monday
			},
		},
		{
			// The weekend the clocks go back lasts 49h: Monday 00:00 all the same.
			name: "a weekend, longer than the period between starts",
			w:    window(t, "0 0 * * SAT", 48*time.Hour, paris),
			probes: []probe{
				{at: time.Date(2026, 10, 23, 23, 59, 59, 0, paris)},
				{at: time.Date(2026, 10, 24, 0, 0, 0, 0, paris), in: true, end: "2026-10-26T00:00:00+01:00"},
				{at: time.Date(2026, 10, 25, 23, 59, 59, 0, paris), in: true, end: "2026-10-26T00:00:00+01:00"},
				{at: time.Date(2026, 10, 26, 0, 0, 0, 0, paris)},
			},
		},
		{
			name: "overlapping and touching spans are one",
			w:    window(t, "0 8,12,17 * * *", 5*time.Hour, time.UTC),
			probes: []probe{
				{at: time.Date(2026, 12, 7, 9, 0, 0, 0, time.UTC), in: true, end: "2026-12-07T22:00:00Z"},
				{at: time.Date(2026, 12, 7, 16, 59, 59, 0, time.UTC), in: true, end: "2026-12-07T22:00:00Z"},
				{at: time.Date(2026, 12, 7, 22, 0, 0, 0, time.UTC)},
				{at: time.Date(2026, 12, 7, 7, 59, 59, 0, time.UTC)},
			},
		},
		{
			// Open for ever: the end is a lower bound, maxMerge spans ahead.
			name: "spans without a gap",
			w:    window(t, "0 * * * *", 2*time.Hour, time.UTC),
			probes: []probe{
				{at: time.Date(2026, 12, 7, 9, 30, 0, 0, time.UTC), in: true, end: "2026-12-08T19:00:00Z"},
			},
		},
		{
			name: "descriptor, in its zone",
			w:    window(t, "@daily", time.Hour, ny),
			probes: []probe{
				{at: time.Date(2026, 12, 7, 0, 30, 0, 0, ny), in: true, end: "2026-12-07T01:00:00-05:00"},
				{at: time.Date(2026, 12, 7, 0, 30, 0, 0, time.UTC)},
			},
		},
	} {
		t.Run(tc.name, func(t *testing.T) {
			for _, p := range tc.probes {
				in, end := tc.w.Contains(p.at)
				require.Equal(t, p.in, in, "at %s", p.at)
				require.Equal(t, p.end, rfc(end), "at %s", p.at)
			}
		})
	}
}

func TestWindowNextOpen(t *testing.T) {
	paris := zone(t, "Europe/Paris")
	for _, tc := range []struct {
		name string
		w    Window
		at   time.Time
		want string
	}{
		{"open now", window(t, "0 22 * * *", 8*time.Hour, paris), time.Date(2026, 12, 7, 3, 0, 0, 0, time.UTC), "2026-12-07T04:00:00+01:00"},
		{"later today", window(t, "0 22 * * *", 8*time.Hour, paris), time.Date(2026, 12, 7, 6, 0, 0, 0, paris), "2026-12-07T22:00:00+01:00"},
		{"Saturday to Monday", window(t, "0 8 * * MON-FRI", 10*time.Hour, paris), time.Date(2026, 12, 5, 10, 0, 0, 0, paris), "2026-12-07T08:00:00+01:00"},
		{"Friday evening to Monday", window(t, "0 8 * * MON-FRI", 10*time.Hour, paris), time.Date(2026, 12, 4, 18, 0, 0, 0, paris), "2026-12-07T08:00:00+01:00"},
		{"start in the skipped hour", window(t, "30 2 * * *", time.Hour, paris), time.Date(2026, 3, 29, 1, 0, 0, 0, paris), "2026-03-29T03:00:00+02:00"},
		{"span in the skipped hour", window(t, "15 2 * * *", 30*time.Minute, paris), time.Date(2026, 3, 29, 1, 0, 0, 0, paris), "2026-03-30T02:15:00+02:00"},
		{"after the first of a repeated start", window(t, "30 2 * * *", 10*time.Minute, paris), time.Date(2026, 10, 25, 1, 30, 0, 0, time.UTC), "2026-10-26T02:30:00+01:00"},
		{"zero window", Window{}, time.Date(2026, 12, 7, 0, 0, 0, 0, time.UTC), ""},
	} {
		t.Run(tc.name, func(t *testing.T) {
			require.Equal(t, tc.want, rfc(tc.w.NextOpen(tc.at)))
		})
	}
}

// TestWindowAgainstScan compares Contains and NextOpen, every five minutes
// around clock changes, with what a plain scan of the clock says: a span
// [s, s+d) of readings is open from the first instant the clock has shown
// s or later to the first it has shown s+d or later.
func TestWindowAgainstScan(t *testing.T) {
	type spec struct {
		cron  string
		d     time.Duration
		match func(r time.Time) bool // the readings cron matches
	}
	specs := []spec{
		{"30 2 * * *", time.Hour, func(r time.Time) bool { return r.Hour() == 2 && r.Minute() == 30 }},
		{"0 22 * * *", 8 * time.Hour, func(r time.Time) bool { return r.Hour() == 22 && r.Minute() == 0 }},
		{"*/20 * * * *", 10 * time.Minute, func(r time.Time) bool { return r.Minute()%20 == 0 }},
		{"0 2 * * *", 30 * time.Minute, func(r time.Time) bool { return r.Hour() == 2 && r.Minute() == 0 }},
		{"15 1,2,3 * * *", 45 * time.Minute, func(r time.Time) bool { return r.Hour() >= 1 && r.Hour() <= 3 && r.Minute() == 15 }},
		{"0 20,23 * * *", 5 * time.Hour, func(r time.Time) bool { return (r.Hour() == 20 || r.Hour() == 23) && r.Minute() == 0 }},
	}
	days := []struct {
		zone string
		day  time.Time // UTC; the scan covers the day before to the day after
	}{
		{"Europe/Paris", time.Date(2026, 3, 29, 0, 0, 0, 0, time.UTC)},
		{"Europe/Paris", time.Date(2026, 10, 25, 0, 0, 0, 0, time.UTC)},
		{"America/New_York", time.Date(2026, 3, 8, 0, 0, 0, 0, time.UTC)},
		{"America/New_York", time.Date(2026, 11, 1, 0, 0, 0, 0, time.UTC)},
		{"Australia/Lord_Howe", time.Date(2026, 4, 5, 0, 0, 0, 0, time.UTC)}, // back 30 minutes
		{"Australia/Lord_Howe", time.Date(2026, 10, 4, 0, 0, 0, 0, time.UTC)},
		{"Pacific/Apia", time.Date(2011, 12, 30, 0, 0, 0, 0, time.UTC)}, // 30 December 2011 did not happen
		{"Asia/Kolkata", time.Date(2026, 3, 29, 0, 0, 0, 0, time.UTC)},
	}
	const step = 5 * time.Minute
	for _, dd := range days {
		loc := zone(t, dd.zone)
		for _, sp := range specs {
			t.Run(fmt.Sprintf("%s %s %s for %s", dd.zone, dd.day.Format(time.DateOnly), sp.cron, sp.d), func(t *testing.T) {
				t.Parallel()
				w := window(t, sp.cron, sp.d, loc)
				from, to := dd.day.Add(-48*time.Hour), dd.day.Add(48*time.Hour)
				// The scan: instants, and the latest reading shown by each.
				var at, shown []time.Time
				for x := from; x.Before(to); x = x.Add(step) {
					r := x.In(loc)
					y, mo, d := r.Date()
					h, mi, s := r.Clock()
					reading := time.Date(y, mo, d, h, mi, s, 0, time.UTC)
					if n := len(shown); n > 0 && shown[n-1].After(reading) {
						reading = shown[n-1]
					}
					at, shown = append(at, x), append(shown, reading)
				}
				first := func(r time.Time) int { // index of the first instant that has shown r
					return sort.Search(len(shown), func(i int) bool { return !shown[i].Before(r) })
				}
				open := make([]bool, len(at))
				for r := shown[0].Add(-sp.d); !r.After(shown[len(shown)-1]); r = r.Add(step) {
					if sp.match(r) {
						for i, end := first(r), first(r.Add(sp.d)); i < end; i++ {
							open[i] = true
						}
					}
				}
				// nextOpen[i] and nextClosed[i]: the first index >= i open, closed.
				nextOpen, nextClosed := make([]int, len(at)+1), make([]int, len(at)+1)
				nextOpen[len(at)], nextClosed[len(at)] = len(at), len(at)
				for i := len(at) - 1; i >= 0; i-- {
					nextOpen[i], nextClosed[i] = nextOpen[i+1], nextClosed[i+1]
					if open[i] {
						nextOpen[i] = i
					} else {
						nextClosed[i] = i
					}
				}
				for i := range at {
					in, end := w.Contains(at[i])
					require.Equal(t, open[i], in, "Contains(%s)", at[i])
					if in {
						if j := nextClosed[i]; j < len(at) {
							require.Equal(t, at[j], end.UTC(), "end of Contains(%s)", at[i])
						} else {
							require.False(t, end.Before(to), "end of Contains(%s)", at[i])
						}
					}
					if j := nextOpen[i]; j < len(at) {
						require.Equal(t, at[j], w.NextOpen(at[i]).UTC(), "NextOpen(%s)", at[i])
					}
				}
			})
		}
	}
}

func TestAllowed(t *testing.T) {
	paris := zone(t, "Europe/Paris")
	office := window(t, "0 8 * * MON-FRI", 10*time.Hour, paris)
	nights := window(t, "0 22 * * *", 8*time.Hour, paris)
	lunch := window(t, "0 12 * * *", 2*time.Hour, paris)
	early := window(t, "0 7 * * *", 2*time.Hour, paris)
	late := window(t, "0 16 * * *", 4*time.Hour, paris)
	for _, tc := range []struct {
		name      string
		windows   []Window
		blackouts []Window
		at        time.Time
		ok        bool
		reason    string
		next      string
	}{
		{name: "no windows, no blackouts", at: time.Date(2026, 12, 7, 3, 0, 0, 0, paris), ok: true},
		{name: "no windows, outside blackouts", blackouts: []Window{nights}, at: time.Date(2026, 12, 7, 12, 0, 0, 0, paris), ok: true},
		{
			name: "in a blackout", blackouts: []Window{nights}, at: time.Date(2026, 12, 7, 3, 0, 0, 0, paris),
			reason: `blackout "0 22 * * *" for 8h (Europe/Paris) until 2026-12-07T06:00:00+01:00`,
			next:   "2026-12-07T06:00:00+01:00",
		},
		{name: "in a window", windows: []Window{office}, at: time.Date(2026, 12, 7, 8, 0, 0, 0, paris), ok: true},
		{
			name: "after the window", windows: []Window{office}, at: time.Date(2026, 12, 7, 19, 0, 0, 0, paris),
			reason: "outside its windows; next opens 2026-12-08T08:00:00+01:00",
			next:   "2026-12-08T08:00:00+01:00",
		},
		{
			name: "Saturday", windows: []Window{office}, at: time.Date(2026, 12, 5, 10, 0, 0, 0, paris),
			reason: "outside its windows; next opens 2026-12-07T08:00:00+01:00",
			next:   "2026-12-07T08:00:00+01:00",
		},
		{
			name: "either window", windows: []Window{office, nights}, at: time.Date(2026, 12, 5, 10, 0, 0, 0, paris),
			reason: "outside its windows; next opens 2026-12-05T22:00:00+01:00",
			next:   "2026-12-05T22:00:00+01:00",
		},
		{name: "in a window, before a blackout", windows: []Window{office}, blackouts: []Window{lunch}, at: time.Date(2026, 12, 7, 11, 59, 59, 0, paris), ok: true},
		{
			name: "blackout inside a window", windows: []Window{office}, blackouts: []Window{lunch}, at: time.Date(2026, 12, 7, 12, 30, 0, 0, paris),
			reason: `blackout "0 12 * * *" for 2h (Europe/Paris) until 2026-12-07T14:00:00+01:00`,
			next:   "2026-12-07T14:00:00+01:00",
		},
		{name: "in a window, after a blackout", windows: []Window{office}, blackouts: []Window{lunch}, at: time.Date(2026, 12, 7, 14, 0, 0, 0, paris), ok: true},
		{
			name: "window opens in a blackout", windows: []Window{office}, blackouts: []Window{early}, at: time.Date(2026, 12, 7, 6, 0, 0, 0, paris),
			reason: "outside its windows; next opens 2026-12-07T09:00:00+01:00",
			next:   "2026-12-07T09:00:00+01:00",
		},
		{
			name: "blackout ends after the window", windows: []Window{office}, blackouts: []Window{late}, at: time.Date(2026, 12, 4, 17, 0, 0, 0, paris),
			reason: `blackout "0 16 * * *" for 4h (Europe/Paris) until 2026-12-04T20:00:00+01:00; next allowed 2026-12-07T08:00:00+01:00`,
			next:   "2026-12-07T08:00:00+01:00",
		},
		{
			name: "blackouts one after the other", blackouts: []Window{lunch, late, window(t, "0 13 * * *", 4*time.Hour, paris)}, at: time.Date(2026, 12, 7, 12, 30, 0, 0, paris),
			reason: `blackout "0 12 * * *" for 2h (Europe/Paris) until 2026-12-07T14:00:00+01:00; next allowed 2026-12-07T20:00:00+01:00`,
			next:   "2026-12-07T20:00:00+01:00",
		},
		{
			name: "blackouts at once", blackouts: []Window{lunch, late, window(t, "0 13 * * *", 4*time.Hour, paris)}, at: time.Date(2026, 12, 7, 13, 30, 0, 0, paris),
			reason: `blackout "0 13 * * *" for 4h (Europe/Paris) until 2026-12-07T17:00:00+01:00; next allowed 2026-12-07T20:00:00+01:00`,
			next:   "2026-12-07T20:00:00+01:00",
		},
		{
			name: "a window that never opens", windows: []Window{{}}, at: time.Date(2026, 12, 7, 3, 0, 0, 0, paris),
			reason: "outside its windows, which open no more",
		},
	} {
		t.Run(tc.name, func(t *testing.T) {
			ok, reason, next := Allowed(tc.windows, tc.blackouts, tc.at)
			require.Equal(t, tc.ok, ok)
			require.Equal(t, tc.reason, reason)
			require.Equal(t, tc.next, rfc(next))
		})
	}
}

func TestNewWindow(t *testing.T) {
	w, err := NewWindow("0 8 * * MON-FRI", 10*time.Hour, nil)
	require.NoError(t, err)
	require.Equal(t, time.UTC, w.Location)
	require.Equal(t, `"0 8 * * MON-FRI" for 10h (UTC)`, w.String())

	for spec, want := range map[string]string{
		"":                               "must not be empty",
		"61 * * * *":                     `invalid cron spec "61 * * * *": end of range (61) above maximum (59): 61`,
		"0 8 * *":                        `invalid cron spec "0 8 * *": expected exactly 5 fields, found 4: [0 8 * *]`,
		"0 0 8 * * *":                    `invalid cron spec "0 0 8 * * *": expected exactly 5 fields, found 6: [0 0 8 * * *]`,
		"CRON_TZ=Europe/Paris 0 8 * * *": "a time zone in the schedule (CRON_TZ=Europe/Paris) is not supported: write timezone: Europe/Paris next to schedule",
		"TZ=UTC":                         "a time zone in the schedule (TZ=UTC) is not supported: write timezone: UTC next to schedule",
		"@every 1h":                      `"@every 1h" is not supported: a window opens at fixed clock times; write them as five cron fields, like "0 */2 * * *"`,
		"@reboot":                        `invalid cron spec "@reboot": unrecognized descriptor: @reboot`,
		"0 0 31 4 *":                     `cron spec "0 0 31 4 *" matches no date`,
	} {
		_, err := NewWindow(spec, time.Hour, nil)
		require.EqualError(t, err, want, spec)
	}
	_, err = NewWindow("@weekly", 0, nil)
	require.EqualError(t, err, "duration must be greater than 0, got 0s")
	_, err = NewWindow("0 0 29 2 *", time.Hour, nil)
	require.NoError(t, err, "leap days come")
}

func TestParseWindows(t *testing.T) {
	in := lines(
		"playbooks:",
		"  - name: a",
		`    match: [x="y"]`,
		`    steps: [{name: s, action: exec, with: {command: ["true"]}}]`,
		"    windows:",
		`      - schedule: "0 8 * * MON-FRI"`,
		"        duration: 10h",
		"        timezone: Europe/Paris",
		"      - {schedule: '@daily', duration: 1h}",
		"    blackouts:",
		"      - schedule: 0 22 * * SUN",
		"        duration: 1d",
		"        timezone: America/New_York",
		"  - name: b",
		`    match: [x="y"]`,
		`    steps: [{name: s, action: exec, with: {command: ["true"]}}]`,
		"    windows: []",
		"    blackouts:",
	)
	pbs, err := Parse(testRegistry(t), "pb.yaml", []byte(in))
	require.NoError(t, err)
	require.Len(t, pbs, 2)
	a := pbs[0]
	require.Len(t, a.Windows, 2)
	require.Equal(t, `"0 8 * * MON-FRI" for 10h (Europe/Paris)`, a.Windows[0].String())
	require.Equal(t, Position{Line: 6, Column: 9}, a.Windows[0].Pos)
	require.Equal(t, `"@daily" for 1h (UTC)`, a.Windows[1].String())
	require.Equal(t, Position{Line: 9, Column: 9}, a.Windows[1].Pos)
	require.Len(t, a.Blackouts, 1)
	require.Equal(t, `"0 22 * * SUN" for 1d (America/New_York)`, a.Blackouts[0].String())
	require.Equal(t, 24*time.Hour, a.Blackouts[0].Duration)
	in2, end := a.Blackouts[0].Contains(time.Date(2026, 12, 8, 2, 0, 0, 0, time.UTC))
	require.True(t, in2, "the decoded window works")
	require.Equal(t, "2026-12-07T22:00:00-05:00", rfc(end))
	require.Empty(t, pbs[1].Windows)
	require.Empty(t, pbs[1].Blackouts)
}

// TestParseWindowErrors checks each error of windows and blackouts at its
// own position, and that all of a file's are reported together.
func TestParseWindowErrors(t *testing.T) {
	head := []string{
		"playbooks:",
		"  - name: a",
		`    match: [x="y"]`,
		`    steps: [{name: s, action: exec, with: {command: ["true"]}}]`,
	}
	for _, tc := range []struct {
		name string
		in   []string
		want []string
	}{
		{
			name: "invalid cron spec",
			in:   []string{"    windows:", `      - schedule: "61 * * * *"`, "        duration: 1h"},
			want: []string{`pb.yaml:6:19: playbooks[0].windows[0].schedule: invalid cron spec "61 * * * *": end of range (61) above maximum (59): 61`},
		},
		{
			name: "time zone in the spec",
			in:   []string{"    windows:", "      - {schedule: 'CRON_TZ=Europe/Paris 0 8 * * *', duration: 10h}"},
			want: []string{"pb.yaml:6:20: playbooks[0].windows[0].schedule: a time zone in the schedule (CRON_TZ=Europe/Paris) is not supported: write timezone: Europe/Paris next to schedule"},
		},
		{
			name: "unknown time zone",
			in:   []string{"    blackouts:", "      - schedule: 0 22 * * *", "        duration: 8h", "        timezone: Mars/Olympus"},
			want: []string{`pb.yaml:8:19: playbooks[0].blackouts[0].timezone: unknown time zone "Mars/Olympus": use an IANA name, like Europe/Paris or UTC`},
		},
		{
			name: "missing duration",
			in:   []string{"    windows:", "      - schedule: 0 8 * * *", "      - {schedule: 0 9 * * *, duration: }"},
			want: []string{
				`pb.yaml:6:9: playbooks[0].windows[0]: missing required field "duration"`,
				`pb.yaml:7:41: playbooks[0].windows[1].duration: must not be empty`,
			},
		},
		{
			name: "unknown field",
			in:   []string{"    windows:", "      - schedule: 0 8 * * *", "        duration: 10h", "        time_zone: Europe/Paris"},
			want: []string{`pb.yaml:8:9: playbooks[0].windows[0]: unknown field "time_zone"`},
		},
		{
			name: "every problem of a file",
			in: []string{
				"    windows:",
				"      - {duration: 0s, timezone: Local}",
				"      - {schedule: '@every 1h', duration: soon, timezone: ''}",
				"      - 0 8 * * *",
				"    blackouts: {schedule: 0 22 * * *, duration: 8h}",
				"  - name: b",
				`    match: [x="y"]`,
				`    steps: [{name: s, action: exec, with: {command: ["true"]}}]`,
				"    blackouts:",
				"      - {schedule: 0 0 31 4 *, duration: 1h, timezone: [Europe/Paris]}",
				"      -",
			},
			want: []string{
				`pb.yaml:6:9: playbooks[0].windows[0]: missing required field "schedule"`,
				`pb.yaml:6:20: playbooks[0].windows[0].duration: must be greater than 0`,
				`pb.yaml:6:34: playbooks[0].windows[0].timezone: "Local" is the daemon host's zone: name the zone, like Europe/Paris or UTC`,
				`pb.yaml:7:20: playbooks[0].windows[1].schedule: "@every 1h" is not supported: a window opens at fixed clock times; write them as five cron fields, like "0 */2 * * *"`,
				`pb.yaml:7:43: playbooks[0].windows[1].duration: not a valid duration string: "soon"`,
				`pb.yaml:7:59: playbooks[0].windows[1].timezone: must name a time zone, like Europe/Paris or UTC`,
				`pb.yaml:8:9: playbooks[0].windows[2]: expected a mapping, got "0 8 * * *"`,
				`pb.yaml:9:16: playbooks[0].blackouts: expected a list, got a mapping`,
				`pb.yaml:14:20: playbooks[1].blackouts[0].schedule: cron spec "0 0 31 4 *" matches no date`,
				`pb.yaml:14:56: playbooks[1].blackouts[0].timezone: cannot unmarshal !!seq into string`,
				`pb.yaml:15:8: playbooks[1].blackouts[1]: expected a mapping, got nothing`,
			},
		},
	} {
		t.Run(tc.name, func(t *testing.T) {
			pbs, err := Parse(testRegistry(t), "pb.yaml", []byte(lines(append(head, tc.in...)...)))
			require.Nil(t, pbs)
			require.Error(t, err)
			require.Equal(t, lines(tc.want...), err.Error()+"\n")
		})
	}
}
