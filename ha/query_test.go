package ha

import (
	"context"
	"encoding/base64"
	"fmt"
	"slices"
	"strings"
	"testing"
	"time"

	"github.com/stretchr/testify/require"

	"github.com/selfheal/selfheal/alert"
)

var queryT0 = time.Date(2026, 11, 21, 19, 0, 0, 0, time.UTC)

// addRun stores a run of playbook for a fresh episode n, claimed at at, in
// state st, and returns its id.
func addRun(t *testing.T, l *Log, playbook string, n int, at time.Time, st State) string {
	t.Helper()
	a := testAlert(alert.Firing, queryT0.Add(time.Duration(n)*time.Second))
	rec := Record{ID: RunID(playbook, a.Episode()), Playbook: playbook, Episode: a.Episode(), Alert: a, ClaimedAt: at}
	if st == Skipped {
		rec.State = Skipped
	}
	got, won, err := l.Claim(context.Background(), rec)
	require.NoError(t, err)
	require.True(t, won)
	if st != Skipped && st != Claimed {
		got.State = st
		require.NoError(t, l.Update(got))
	}
	return rec.ID
}

func ids(recs []Record) []string {
	out := []string{}
	for _, r := range recs {
		out = append(out, r.ID)
	}
	return out
}

// queryAll follows Next from q until it runs out, and returns every run
// read and how many pages it took.
func queryAll(t *testing.T, l *Log, q Query) ([]string, int) {
	t.Helper()
	var out []string
	for pages := 1; ; pages++ {
		p, err := l.Query(q)
		require.NoError(t, err)
		require.LessOrEqual(t, len(p.Runs), q.Limit)
		out = append(out, ids(p.Runs)...)
		if p.Next == "" {
			return out, pages
		}
		require.Less(t, pages, 1000, "Next never ends")
		q.After = p.Next
	}
}

func TestQueryFilters(t *testing.T) {
	l := openLog(t, t.TempDir(), nil)
	defer l.Close()
	at := func(m int) time.Time { return queryT0.Add(time.Duration(m) * time.Minute) }
	cleanOK := addRun(t, l, "clean", 1, at(1), Succeeded)
	restartFailed := addRun(t, l, "restart", 2, at(2), Failed)
	cleanSkipped := addRun(t, l, "clean", 3, at(3), Skipped)
	cleanRunning := addRun(t, l, "clean", 4, at(4), Running)
	restartClaimed := addRun(t, l, "restart", 5, at(5), Claimed)

	tests := []struct {
		name string
		q    Query
		want []string
	}{
		{"everything, newest first", Query{}, []string{restartClaimed, cleanRunning, cleanSkipped, restartFailed, cleanOK}},
		{"one playbook", Query{Playbook: "clean"}, []string{cleanRunning, cleanSkipped, cleanOK}},
		{"an unknown playbook", Query{Playbook: "nope"}, []string{}},
		{"one final state", Query{States: []State{Failed}}, []string{restartFailed}},
		{"unfinished states", Query{States: []State{Claimed, Running}}, []string{restartClaimed, cleanRunning}},
		{"since, inclusive", Query{Since: at(3)}, []string{restartClaimed, cleanRunning, cleanSkipped}},
		{"since, after the newest", Query{Since: at(6)}, []string{}},
		{"all filters", Query{Playbook: "clean", States: []State{Succeeded, Skipped}, Since: at(2)}, []string{cleanSkipped}},
	}
	for _, tt := range tests {
		t.Run(tt.name, func(t *testing.T) {
			tt.q.Limit = 100
			p, err := l.Query(tt.q)
			require.NoError(t, err)
			require.Equal(t, tt.want, ids(p.Runs))
			require.Empty(t, p.Next, "one page holds them all")
		})
	}
}

// TestQueryPages: pages of a query, followed by Next, hold every run it
// selects once, in order, also across runs claimed at the same instant
// (ties break by id, as in the index); Next is empty after the last run,
// also when the last page is exactly full.
func TestQueryPages(t *testing.T) {
	l := openLog(t, t.TempDir(), nil)
	defer l.Close()
	type run struct {
		id, playbook string
		at           time.Time
	}
	var runs []run
	for i := range 23 {
		at := queryT0.Add(time.Duration(i/3) * time.Minute) // three runs per instant
		pb := []string{"a", "b"}[i%2]
		runs = append(runs, run{addRun(t, l, pb, i, at, Succeeded), pb, at})
	}
	// Newest first; within an instant the index orders by id.
	slices.SortFunc(runs, func(a, b run) int {
		if c := b.at.Compare(a.at); c != 0 {
			return c
		}
		return strings.Compare(b.id, a.id)
	})
	var want, wantA []string
	for _, r := range runs {
		want = append(want, r.id)
		if r.playbook == "a" {
			wantA = append(wantA, r.id)
		}
	}
	for _, limit := range []int{1, 2, 3, 7, 22, 23, 24} {
		t.Run(fmt.Sprint("limit ", limit), func(t *testing.T) {
			got, pages := queryAll(t, l, Query{Limit: limit})
			require.Equal(t, want, got)
			require.Equal(t, (23+limit-1)/limit, pages, "no empty last page")
		})
	}
	t.Run("filtered", func(t *testing.T) {
		got, _ := queryAll(t, l, Query{Playbook: "a", Limit: 4})
		require.Equal(t, wantA, got)
	})
}

// TestQueryPageBoundary: what happens between two pages does not move the
// boundary: a run claimed after the first page is not on the second, and
// the second goes on after the first page's last run even when that run was
// pruned in between.
func TestQueryPageBoundary(t *testing.T) {
	l := openLog(t, t.TempDir(), nil)
	defer l.Close()
	at := func(m int) time.Time { return queryT0.Add(time.Duration(m) * time.Minute) }
	r1 := addRun(t, l, "pb", 1, at(1), Claimed) // not final: never pruned
	r2 := addRun(t, l, "pb", 2, at(2), Claimed)
	r3 := addRun(t, l, "pb", 3, at(3), Skipped) // final, its episode unknown: pruned
	r4 := addRun(t, l, "pb", 4, at(4), Claimed)

	p1, err := l.Query(Query{Limit: 2})
	require.NoError(t, err)
	require.Equal(t, []string{r4, r3}, ids(p1.Runs))
	require.NotEmpty(t, p1.Next)

	addRun(t, l, "pb", 5, at(5), Claimed) // newer than everything
	n, err := l.Prune(at(3).Add(time.Nanosecond))
	require.NoError(t, err)
	require.Equal(t, 1, n, "r3, the last run of the first page, is gone")

	p2, err := l.Query(Query{Limit: 2, After: p1.Next})
	require.NoError(t, err)
	require.Equal(t, []string{r2, r1}, ids(p2.Runs))
	require.Empty(t, p2.Next)
}

// TestQueryScanIsBounded: a filter that matches little reads at most MaxScan
// entries per page, ends the page early with a Next, and still finds every
// run across pages.
func TestQueryScanIsBounded(t *testing.T) {
	l := openLog(t, t.TempDir(), nil)
	defer l.Close()
	rare := addRun(t, l, "rare", 0, queryT0, Failed)
	for i := 1; i <= 12; i++ {
		addRun(t, l, "common", i, queryT0.Add(time.Duration(i)*time.Second), Succeeded)
	}
	p, err := l.Query(Query{Playbook: "rare", Limit: 10, MaxScan: 5})
	require.NoError(t, err)
	require.Empty(t, p.Runs)
	require.NotEmpty(t, p.Next, "more to read")
	got, pages := queryAll(t, l, Query{Playbook: "rare", Limit: 10, MaxScan: 5})
	require.Equal(t, []string{rare}, got)
	require.Equal(t, 3, pages, "13 entries, 5 per page")
}

func TestQueryRefusesBadInput(t *testing.T) {
	l := openLog(t, t.TempDir(), nil)
	defer l.Close()
	enc := base64.RawURLEncoding.EncodeToString
	for _, after := range []string{"!!", enc([]byte("x")), enc([]byte("12")), enc([]byte("12/")), enc([]byte("x/pb/1"))} {
		_, err := l.Query(Query{Limit: 1, After: after})
		require.ErrorIs(t, err, ErrBadCursor, after)
	}
	_, err := l.Query(Query{})
	require.ErrorContains(t, err, "limit 0")
}

func TestParseState(t *testing.T) {
	for _, s := range States {
		got, ok := ParseState(string(s))
		require.True(t, ok, s)
		require.Equal(t, s, got)
	}
	_, ok := ParseState("success")
	require.False(t, ok)
	_, ok = ParseState("")
	require.False(t, ok)
}
