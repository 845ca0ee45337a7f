package playbooks

import (
	"errors"
	"fmt"
	"strings"
	"testing"
	"time"

	"github.com/prometheus/client_golang/prometheus/testutil"
	"github.com/stretchr/testify/require"
)

// book renders a playbook file defining the named playbooks.
func book(names ...string) []byte {
	var b strings.Builder
	b.WriteString("playbooks:\n")
	for _, n := range names {
		fmt.Fprintf(&b, "  - name: %s\n    match: ['alertname=\"X\"']\n    steps:\n      - name: s\n        action: exec\n        with: {command: [/bin/true]}\n", n)
	}
	return []byte(b.String())
}

type catalogRig struct {
	*Catalog
	swaps int
	clock time.Time
}

func newCatalogRig(t *testing.T) *catalogRig {
	r := &catalogRig{clock: time.Unix(1700000000, 0)}
	r.Catalog = NewCatalog(testRegistry(t), CatalogOptions{
		Swap: func(*Set) { r.swaps++ },
		Now:  func() time.Time { r.clock = r.clock.Add(time.Second); return r.clock },
	})
	return r
}

func (r *catalogRig) status(t *testing.T, source string) SourceStatus {
	t.Helper()
	for _, st := range r.Statuses() {
		if st.Source == source {
			return st
		}
	}
	t.Fatalf("no source %s in %+v", source, r.Statuses())
	return SourceStatus{}
}

func TestCatalogBrokenUpdateKeepsLastGoodVersion(t *testing.T) {
	r := newCatalogRig(t)
	res := r.Replace("configmap/ops/disk", []File{{Source: "configmap/ops/disk/a.yaml", Data: book("clean-disk")}})
	require.NoError(t, res.Err())
	require.True(t, res.Changed)
	require.Equal(t, []string{"configmap/ops/disk/a.yaml"}, res.Loaded)
	good := r.Set().Get("clean-disk")
	require.NotNil(t, good)
	require.Equal(t, "configmap/ops/disk/a.yaml", good.Source)

	broken := []byte("playbooks:\n  - name: clean-disk\n    match: ['a=\"b\"']\n    bogus: 1\n    steps:\n      - {name: s, action: exec, with: {command: [x]}}\n")
	res = r.Replace("configmap/ops/disk", []File{{Source: "configmap/ops/disk/a.yaml", Data: broken}})
	require.False(t, res.Changed)
	require.EqualError(t, res.Err(), `configmap/ops/disk/a.yaml:4:5: playbooks[0]: unknown field "bogus"`)
	require.Same(t, good, r.Set().Get("clean-disk"), "the last good version stays")
	st := r.status(t, "configmap/ops/disk/a.yaml")
	require.Equal(t, good.Revision, st.Revision)
	require.Equal(t, Revision(broken), st.LatestRevision)
	require.Contains(t, st.LastError, "4:5")

	syntax := []byte("playbooks:\n  - name: [\n")
	res = r.Replace("configmap/ops/disk", []File{{Source: "configmap/ops/disk/a.yaml", Data: syntax}})
	require.ErrorContains(t, res.Err(), "configmap/ops/disk/a.yaml:2:11: syntax error: sequence end token ']' not found")
	require.Same(t, good, r.Set().Get("clean-disk"))

	fixed := book("clean-disk", "clean-tmp")
	res = r.Replace("configmap/ops/disk", []File{{Source: "configmap/ops/disk/a.yaml", Data: fixed}})
	require.NoError(t, res.Err())
	require.Equal(t, []string{"clean-disk", "clean-tmp"}, names(r.Set().All()))
	require.Equal(t, Revision(fixed), r.Set().Get("clean-disk").Revision)
	st = r.status(t, "configmap/ops/disk/a.yaml")
	require.Empty(t, st.LastError)
	require.Empty(t, st.LatestRevision)
	require.Equal(t, 2, r.swaps, "only the two good versions swapped the set")
}

func TestCatalogUnchangedContentIsNotReparsed(t *testing.T) {
	r := newCatalogRig(t)
	files := []File{{Source: "a.yaml", Data: book("a")}, {Source: "b.yaml", Data: []byte("playbooks: [")}}
	r.Replace("files", files)
	first := r.status(t, "a.yaml").LastReload
	res := r.Replace("files", files)
	require.False(t, res.Changed)
	require.Empty(t, res.Loaded)
	require.Equal(t, first, r.status(t, "a.yaml").LastReload)
	require.Error(t, res.Failed["b.yaml"], "a source that is still broken still fails the reload")
	require.Equal(t, 1, r.swaps)
}

func TestCatalogRemovesSourcesAndOwners(t *testing.T) {
	r := newCatalogRig(t)
	r.Replace("files", []File{{Source: "a.yaml", Data: book("a")}, {Source: "b.yaml", Data: book("b")}})
	r.Replace("configmap/x/y", []File{{Source: "configmap/x/y/p.yaml", Data: book("c")}})
	require.Equal(t, []string{"a", "b", "c"}, names(r.Set().All()))

	res := r.Replace("files", []File{{Source: "b.yaml", Data: book("b")}})
	require.Equal(t, []string{"a.yaml"}, res.Removed)
	require.Equal(t, []string{"b", "c"}, names(r.Set().All()))

	res = r.Replace("configmap/x/y", nil) // deleted, or the label was removed
	require.Equal(t, []string{"configmap/x/y/p.yaml"}, res.Removed)
	require.Equal(t, []string{"b"}, names(r.Set().All()))
	require.Len(t, r.Statuses(), 1)
}

func TestCatalogUnreadableSourceKeepsLastGood(t *testing.T) {
	r := newCatalogRig(t)
	r.Replace("files", []File{{Source: "a.yaml", Data: book("a")}})
	res := r.Replace("files", []File{{Source: "a.yaml", Err: errors.New("read playbook file: permission denied")}})
	require.EqualError(t, res.Err(), "read playbook file: permission denied")
	require.NotNil(t, r.Set().Get("a"))
	res = r.Replace("files", []File{{Source: "a.yaml", Data: book("a")}})
	require.NoError(t, res.Err(), "the same content readable again is good again")
}

func TestCatalogNameClashNamesBothSources(t *testing.T) {
	r := newCatalogRig(t)
	r.Replace("configmap/a/one", []File{{Source: "configmap/a/one/p.yaml", Data: book("restart-pod")}})
	res := r.Replace("configmap/b/two", []File{{Source: "configmap/b/two/p.yaml", Data: book("other", "restart-pod")}})
	require.EqualError(t, res.Err(), `playbook "restart-pod" is defined twice: in configmap/a/one/p.yaml:2:11 and in configmap/b/two/p.yaml:8:11`)
	require.Equal(t, []string{"restart-pod"}, names(r.Set().All()), "the clashing source loads nothing: it had no good version")
	require.Equal(t, "configmap/a/one/p.yaml", r.Set().Get("restart-pod").Source)
	require.Contains(t, r.status(t, "configmap/b/two/p.yaml").LastError, "defined twice")

	// The first owner gives the name up: the waiting version activates.
	res = r.Replace("configmap/a/one", []File{{Source: "configmap/a/one/p.yaml", Data: book("renamed")}})
	require.NoError(t, res.Err())
	require.ElementsMatch(t, []string{"configmap/a/one/p.yaml", "configmap/b/two/p.yaml"}, res.Loaded)
	require.Equal(t, []string{"other", "renamed", "restart-pod"}, names(r.Set().All()))
	require.Equal(t, "configmap/b/two/p.yaml", r.Set().Get("restart-pod").Source)
	require.Empty(t, r.status(t, "configmap/b/two/p.yaml").LastError)
}

// TestCatalogClashFallsBackToLastGood covers a name moving between sources
// while a third update clashes: the result must still be consistent.
func TestCatalogClashFallsBackToLastGood(t *testing.T) {
	r := newCatalogRig(t)
	r.Replace("files", []File{{Source: "a.yaml", Data: book("a")}, {Source: "b.yaml", Data: book("x")}, {Source: "c.yaml", Data: book("y")}})
	// x moves from b to a, while b's new version also takes y from c.
	res := r.Replace("files", []File{{Source: "a.yaml", Data: book("a", "x")}, {Source: "b.yaml", Data: book("y")}, {Source: "c.yaml", Data: book("y")}})
	require.Error(t, res.Failed["b.yaml"])
	require.Error(t, res.Failed["a.yaml"], "b keeps x, so a cannot take it")
	require.Equal(t, []string{"a", "x", "y"}, names(r.Set().All()))
	require.Equal(t, "b.yaml", r.Set().Get("x").Source)
	require.Equal(t, "c.yaml", r.Set().Get("y").Source)
}

func TestCatalogSourceBelongsToOneOwner(t *testing.T) {
	r := newCatalogRig(t)
	r.Replace("files", []File{{Source: "a.yaml", Data: book("a")}})
	res := r.Replace("other", []File{{Source: "a.yaml", Data: book("b")}})
	require.EqualError(t, res.Err(), "a.yaml: source is already loaded from files")
	require.Equal(t, []string{"a"}, names(r.Set().All()))
}

func TestCatalogMetrics(t *testing.T) {
	r := newCatalogRig(t)
	r.Replace("files", []File{{Source: "a.yaml", Data: book("a")}, {Source: "b.yaml", Data: []byte("nope: 1\n")}})
	require.NoError(t, testutil.CollectAndCompare(r.Catalog, strings.NewReader(`
# HELP selfheal_config_last_reload_success_timestamp_seconds When the playbook source's newest content last became active; 0 if never.
# TYPE selfheal_config_last_reload_success_timestamp_seconds gauge
selfheal_config_last_reload_success_timestamp_seconds{source="a.yaml"} 1.700000001e+09
selfheal_config_last_reload_success_timestamp_seconds{source="b.yaml"} 0
# HELP selfheal_config_last_reload_successful Whether the newest content of the playbook source is active (1) or was refused (0).
# TYPE selfheal_config_last_reload_successful gauge
selfheal_config_last_reload_successful{source="a.yaml"} 1
selfheal_config_last_reload_successful{source="b.yaml"} 0
`)))
	r.Replace("files", nil)
	require.Equal(t, 0, testutil.CollectAndCount(r.Catalog), "series go with their source")
}
