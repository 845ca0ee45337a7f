package playbooks

import (
	"crypto/sha256"
	"encoding/hex"
	"errors"
	"fmt"
	"log/slog"
	"maps"
	"slices"
	"sync"
	"time"

	"github.com/prometheus/client_golang/prometheus"

	"github.com/selfheal/selfheal/actions"
)

// File is the newest content of one playbook source, or why it could not be
// read.
type File struct {
	// Source names the file: a path, or configmap/<ns>/<name>/<key>.
	Source string
	Data   []byte
	// Err says the source could not be read; its last good version stays.
	Err error
}

// Catalog keeps every playbook source (each file, each ConfigMap key) with
// its last good version, and builds the active Set from them. A source
// whose newest content is broken, or defines a name another source already
// has, keeps its last good version active and reports why. It is safe for
// concurrent use, and a Collector of selfheal_config_last_reload_* metrics.
type Catalog struct {
	reg    *actions.Registry
	logger *slog.Logger
	swap   func(*Set)
	now    func() time.Time

	mu      sync.Mutex
	sources map[string]*source
	set     *Set
}

// source is the state of one playbook file.
type source struct {
	name  string
	owner string

	active    []*Playbook // last good version; nil with activeRev "" when none
	activeRev string

	latestRev string      // revision of the newest content seen ("" if unreadable)
	latest    []*Playbook // its playbooks when it parsed
	parseErr  error       // why the newest content is unusable (read or parse)

	lastErr     error // why the newest content is not active (parse or clash)
	lastReload  time.Time
	lastSuccess time.Time
}

// CatalogOptions configure a Catalog.
type CatalogOptions struct {
	// Logger receives a line per source that loads or fails; nil discards.
	Logger *slog.Logger
	// Swap is called with every new active set, in order, under the
	// catalog's lock (engine.Engine.SetPlaybooks).
	Swap func(*Set)
	// Now is the clock; nil means time.Now.
	Now func() time.Time
}

// NewCatalog returns an empty catalog whose playbooks are built with reg.
func NewCatalog(reg *actions.Registry, o CatalogOptions) *Catalog {
	if o.Logger == nil {
		o.Logger = slog.New(slog.DiscardHandler)
	}
	if o.Now == nil {
		o.Now = time.Now
	}
	if o.Swap == nil {
		o.Swap = func(*Set) {}
	}
	s, _ := NewSet(nil)
	return &Catalog{reg: reg, logger: o.Logger, swap: o.Swap, now: o.Now, sources: map[string]*source{}, set: s}
}

// Result says what one Replace did.
type Result struct {
	// Set is the active set after the call; it is always consistent.
	Set *Set
	// Changed says Set differs from the set before the call.
	Changed bool
	// Loaded are the sources whose newest content became active.
	Loaded []string
	// Removed are the sources that are gone, with their playbooks.
	Removed []string
	// Failed maps each source of the call whose newest content is not
	// active to why; its last good version, if any, stays active.
	Failed map[string]error
}

// Err joins the errors of Failed, in source order, or is nil.
func (r *Result) Err() error {
	var errs []error
	for _, s := range slices.Sorted(maps.Keys(r.Failed)) {
		errs = append(errs, r.Failed[s])
	}
	return errors.Join(errs...)
}

// Replace makes files the complete list of sources of owner: each file is
// parsed unless its content is unchanged, sources of owner not in files are
// removed, and the active set is rebuilt and swapped if it changed. An owner
// groups sources that come and go together: "files" for the playbook files
// of the config, configmap/<ns>/<name> for one ConfigMap. A source name
// belongs to one owner; the first owner to use it keeps it.
func (c *Catalog) Replace(owner string, files []File) *Result {
	c.mu.Lock()
	defer c.mu.Unlock()
	now := c.now()
	res := &Result{Failed: map[string]error{}}

	seen := map[string]bool{}
	for _, f := range files {
		if seen[f.Source] {
			continue
		}
		seen[f.Source] = true
		src := c.sources[f.Source]
		if src != nil && src.owner != owner {
			res.Failed[f.Source] = fmt.Errorf("%s: source is already loaded from %s", f.Source, src.owner)
			continue
		}
		if src == nil {
			src = &source{name: f.Source, owner: owner}
			c.sources[f.Source] = src
		}
		c.update(src, f, now)
	}
	for name, src := range c.sources {
		if src.owner == owner && !seen[name] {
			delete(c.sources, name)
			res.Removed = append(res.Removed, name)
		}
	}
	slices.Sort(res.Removed)

	set, loaded := c.resolve(now)
	res.Loaded = loaded
	for _, f := range files {
		if src := c.sources[f.Source]; src != nil && src.owner == owner && src.lastErr != nil {
			res.Failed[f.Source] = src.lastErr
		}
	}
	res.Changed = !sameSet(c.set, set)
	if res.Changed {
		c.set = set
		c.swap(set)
	}
	res.Set = c.set
	c.log(owner, res)
	return res
}

// update records the newest content of src, parsing it when it changed.
func (c *Catalog) update(src *source, f File, now time.Time) {
	if f.Err != nil {
		src.latestRev, src.latest, src.parseErr = "", nil, f.Err
		src.lastReload = now
		return
	}
	rev := Revision(f.Data)
	if rev == src.latestRev {
		return // unchanged: keep what was decided for it (a new source has no revision yet)
	}
	src.lastReload = now
	src.latestRev = rev
	src.latest, src.parseErr = Parse(c.reg, f.Source, f.Data)
	if src.parseErr == nil && src.latest == nil {
		src.latest = []*Playbook{} // an empty file is a good version without playbooks
	}
}

// resolve picks, for every source, its newest version when that parsed and
// its names are free, otherwise its last good one, and builds the set.
// Sources already active as they are claim their names first, then the
// others in name order; a source whose newest version clashes falls back to
// its last good version, and the pass starts over until nothing clashes.
// It ends because every restart pins one more source, and the last good
// versions were consistent with each other. It returns the new set and the
// sources whose newest version became active.
func (c *Catalog) resolve(now time.Time) (*Set, []string) {
	names := slices.Sorted(maps.Keys(c.sources))
	pinned := map[string]bool{} // use the last good version
	clash := map[string]error{}
	for {
		byName := map[string]*Playbook{}
		var conflict string
		claim := func(src *source, pbs []*Playbook) bool {
			for _, pb := range pbs {
				if first, ok := byName[pb.Name]; ok {
					clash[src.name] = fmt.Errorf("playbook %q is defined twice: in %s and in %s", pb.Name, first.where(), pb.where())
					return false
				}
			}
			for _, pb := range pbs {
				byName[pb.Name] = pb
			}
			return true
		}
		for _, n := range names { // fixed sources first
			src := c.sources[n]
			if pinned[n] || !src.wantsNewest() {
				claim(src, src.active)
			}
		}
		for _, n := range names {
			src := c.sources[n]
			if pinned[n] || !src.wantsNewest() {
				continue
			}
			if !claim(src, src.latest) {
				conflict = n
				break
			}
			delete(clash, n)
		}
		if conflict == "" {
			break
		}
		pinned[conflict] = true
	}

	var all []*Playbook
	var loadedSources []string
	for _, n := range names {
		src := c.sources[n]
		switch {
		case src.parseErr != nil:
			src.lastErr = src.parseErr
		case clash[n] != nil:
			src.lastErr = clash[n]
		default:
			if src.activeRev != src.latestRev || src.active == nil {
				loadedSources = append(loadedSources, n)
				src.lastSuccess = now
			}
			src.active, src.activeRev, src.lastErr = src.latest, src.latestRev, nil
		}
		all = append(all, src.active...)
	}
	set, err := NewSet(all)
	if err != nil { // cannot happen: resolve left no clash
		panic("playbooks: catalog resolved to a clash: " + err.Error())
	}
	return set, loadedSources
}

// wantsNewest says the source has a newest version that parsed and is not
// the active one yet.
func (s *source) wantsNewest() bool {
	return s.parseErr == nil && s.latest != nil && (s.active == nil || s.activeRev != s.latestRev)
}

func (c *Catalog) log(owner string, res *Result) {
	for _, n := range res.Loaded {
		src := c.sources[n]
		c.logger.Info("playbooks loaded", "source", n, "revision", src.activeRev, "playbooks", playbookNames(src.active))
	}
	for _, n := range res.Removed {
		c.logger.Info("playbook source removed", "source", n)
	}
	for _, n := range slices.Sorted(maps.Keys(res.Failed)) {
		src := c.sources[n]
		kept := "none"
		if src != nil && src.active != nil {
			kept = src.activeRev
		}
		c.logger.Error("playbook source not loaded; its last good version stays active", "source", n, "owner", owner, "active_revision", kept, "err", res.Failed[n])
	}
}

// Set returns the active set.
func (c *Catalog) Set() *Set {
	c.mu.Lock()
	defer c.mu.Unlock()
	return c.set
}

// SourceStatus is what /api/v1/playbooks shows for one source.
type SourceStatus struct {
	Source string `json:"source"`
	// Revision is the active version's; empty when none is active.
	Revision string `json:"revision"`
	// Playbooks are the names the active version defines.
	Playbooks []string `json:"playbooks"`
	// LatestRevision is the newest content seen, when it is not active.
	LatestRevision string `json:"latestRevision,omitempty"`
	// LastError says why the newest content is not active.
	LastError   string    `json:"lastError,omitempty"`
	LastReload  time.Time `json:"lastReload"`
	LastSuccess time.Time `json:"lastSuccess,omitzero"`
}

// Statuses returns every source, in name order.
func (c *Catalog) Statuses() []SourceStatus {
	c.mu.Lock()
	defer c.mu.Unlock()
	out := make([]SourceStatus, 0, len(c.sources))
	for _, n := range slices.Sorted(maps.Keys(c.sources)) {
		src := c.sources[n]
		st := SourceStatus{Source: n, Revision: src.activeRev, Playbooks: playbookNames(src.active), LastReload: src.lastReload, LastSuccess: src.lastSuccess}
		if src.lastErr != nil {
			st.LastError = src.lastErr.Error()
			if src.latestRev != src.activeRev {
				st.LatestRevision = src.latestRev
			}
		}
		out = append(out, st)
	}
	return out
}

var (
	reloadOKDesc = prometheus.NewDesc("selfheal_config_last_reload_successful",
		"Whether the newest content of the playbook source is active (1) or was refused (0).", []string{"source"}, nil)
	reloadTimeDesc = prometheus.NewDesc("selfheal_config_last_reload_success_timestamp_seconds",
		"When the playbook source's newest content last became active; 0 if never.", []string{"source"}, nil)
)

// Describe implements prometheus.Collector.
func (c *Catalog) Describe(ch chan<- *prometheus.Desc) {
	ch <- reloadOKDesc
	ch <- reloadTimeDesc
}

// Collect implements prometheus.Collector: one series per source, gone
// with the source.
func (c *Catalog) Collect(ch chan<- prometheus.Metric) {
	for _, st := range c.Statuses() {
		ok := 1.0
		if st.LastError != "" {
			ok = 0
		}
		ts := 0.0
		if !st.LastSuccess.IsZero() {
			ts = float64(st.LastSuccess.UnixNano()) / 1e9
		}
		ch <- prometheus.MustNewConstMetric(reloadOKDesc, prometheus.GaugeValue, ok, st.Source)
		ch <- prometheus.MustNewConstMetric(reloadTimeDesc, prometheus.GaugeValue, ts, st.Source)
	}
}

// Revision identifies content: the first 12 hex digits of its SHA-256.
func Revision(data []byte) string {
	sum := sha256.Sum256(data)
	return hex.EncodeToString(sum[:])[:12]
}

func playbookNames(pbs []*Playbook) []string {
	out := make([]string, 0, len(pbs))
	for _, pb := range pbs {
		out = append(out, pb.Name)
	}
	return out
}

// sameSet says a and b hold the very same playbook values.
func sameSet(a, b *Set) bool {
	if a.Len() != b.Len() {
		return false
	}
	for i, pb := range a.sorted {
		if b.sorted[i] != pb {
			return false
		}
	}
	return true
}
