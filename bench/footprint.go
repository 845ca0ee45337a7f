//go:build linux

package main

import (
	"context"
	"fmt"
	"path/filepath"
	"time"

	bolt "go.etcd.io/bbolt"
)

// footprintResult is one selfheal's memory and disk with N tracked episodes.
type footprintResult struct {
	Episodes  int     `json:"episodes"`
	PostS     float64 `json:"postS"` // posting and processing this step's episodes
	RSS       int64   `json:"rss"`
	RSSAnon   int64   `json:"rssAnon"`
	RSSFile   int64   `json:"rssFile"`
	RSSBase   int64   `json:"rssBase"` // right after start, empty store
	AnonBase  int64   `json:"rssAnonBase"`
	HeapInuse float64 `json:"heapInuse"`
	LogDB     int64   `json:"logDB"`
	InboxDB   int64   `json:"inboxDB"`
}

// restartResult is the start of selfheal on the biggest store.
type restartResult struct {
	Episodes  int     `json:"episodes"`
	ReadyS    float64 `json:"readyS"` // process start to /-/ready 200
	RSS       int64   `json:"rss"`    // right after ready
	HeapInuse float64 `json:"heapInuse"`
}

// footprint posts distinct episodes that no playbook matches to one
// selfheal, 100-alert payloads at full speed, until it tracks each count
// of o.episodes; at each it waits for the engine to have recorded every
// one and reads the process' memory and the store's size. Then it
// restarts selfheal on that store and times the start.
func footprint(o options, b binaries, r *report) error {
	// The default inbox (10000 alerts), and 503s retried as Alertmanager
	// does: its file is then the queue's bounded high-water mark, not a
	// backlog that grows with the episodes posted.
	nd := node{name: "n1", dir: o.dir("footprint"), inboxSize: -1}
	s, err := startSelfheal(b, nd, true)
	if err != nil {
		return err
	}
	defer s.stop()
	base, err := readMem(s.pid())
	if err != nil {
		return err
	}
	g := &Generator{Job: jobUnmatched}
	const perPayload = 100
	posted := 0
	for _, n := range o.episodes {
		t0 := time.Now()
		reqs := int64((n - posted) / perPayload)
		res, err := closedLoop(s.webhook, g, perPayload, 4, 0, 4*time.Minute, reqs, true)
		if err != nil {
			return err
		}
		if res.Failed > 0 || res.Rejected503 > 0 {
			return fmt.Errorf("%d requests failed, %d refused (503); first: %s", res.Failed, res.Rejected503, res.FirstErr)
		}
		posted += res.OK * perPayload
		if _, err := s.drained(float64(posted), 3*time.Minute); err != nil {
			return err
		}
		f, err := measureFootprint(s, posted, base)
		if err != nil {
			return err
		}
		f.PostS = time.Since(t0).Seconds()
		r.Footprint = append(r.Footprint, f)
		progress("%d episodes (%.1fs): RSS %s (anon %s, file %s), heap %s, log.db %s, inbox.db %s: RSS %.0f B/episode, disk %.0f B/episode",
			posted, f.PostS, mib(f.RSS), mib(f.RSSAnon), mib(f.RSSFile), mib(int64(f.HeapInuse)), mib(f.LogDB), mib(f.InboxDB),
			float64(f.RSS)/float64(posted), float64(f.LogDB+f.InboxDB)/float64(posted))
	}
	s.stop()
	if r.Buckets, err = bucketStats(s.storage); err != nil {
		return err
	}
	for _, u := range r.Buckets {
		progress("log.db bucket %s: %d keys, %s in use in %s of pages: %.0f B (%.0f B) per episode",
			u.Name, u.Keys, mib(int64(u.Bytes)), mib(int64(u.Alloc)), float64(u.Bytes)/float64(posted), float64(u.Alloc)/float64(posted))
	}
	r.Restart, err = restart(b, nd, posted)
	return err
}

// measureFootprint reads the memory of s and the size of its store.
func measureFootprint(s *server, episodes int, base memStatus) (footprintResult, error) {
	f := footprintResult{Episodes: episodes, RSSBase: base.RSS, AnonBase: base.Anon}
	m, err := readMem(s.pid())
	if err != nil {
		return f, err
	}
	f.RSS, f.RSSAnon, f.RSSFile = m.RSS, m.Anon, m.File
	ctx, cancel := context.WithTimeout(context.Background(), 5*time.Second)
	defer cancel()
	if f.HeapInuse, err = metric(ctx, s.base, "go_memstats_heap_inuse_bytes"); err != nil {
		return f, err
	}
	if f.LogDB, err = fileSizes(s.storage, "log.db"); err != nil {
		return f, err
	}
	f.InboxDB, err = fileSizes(s.storage, "inbox.db")
	return f, err
}

// restart starts selfheal again on the store of nd and times its start,
// from the process start to the first 200 of /-/ready.
func restart(b binaries, nd node, episodes int) (restartResult, error) {
	s, err := startSelfheal(b, nd, true)
	if err != nil {
		return restartResult{}, err
	}
	defer s.stop()
	rs := restartResult{Episodes: episodes, ReadyS: s.ready.Sub(s.started).Seconds()}
	m, err := readMem(s.pid())
	if err != nil {
		return rs, err
	}
	rs.RSS = m.RSS
	ctx, cancel := context.WithTimeout(context.Background(), 5*time.Second)
	defer cancel()
	if rs.HeapInuse, err = metric(ctx, s.base, "go_memstats_heap_inuse_bytes"); err != nil {
		return rs, err
	}
	if got, err := metric(ctx, s.base, `selfheal_engine_episodes_total{kind="new"}`); err != nil || got != 0 {
		return rs, fmt.Errorf("restarted selfheal reprocessed %v episodes (err %v): the inbox was not empty", got, err)
	}
	progress("restart with %d episodes: ready in %.3fs, RSS %s", episodes, rs.ReadyS, mib(rs.RSS))
	return rs, nil
}

func mib(n int64) string { return fmt.Sprintf("%.1f MiB", float64(n)/(1<<20)) }

// bucketUse is how much of log.db one bbolt bucket fills.
type bucketUse struct {
	Name  string `json:"name"`
	Keys  int    `json:"keys"`
	Bytes int    `json:"bytes"` // branch and leaf bytes in use
	Alloc int    `json:"alloc"` // bytes of the pages allocated to it
}

// bucketStats reads, with selfheal stopped, what each top-level bucket of
// dir/log.db holds: where the bytes per episode go.
func bucketStats(dir string) ([]bucketUse, error) {
	db, err := bolt.Open(filepath.Join(dir, "log.db"), 0o600, &bolt.Options{ReadOnly: true, Timeout: 5 * time.Second})
	if err != nil {
		return nil, fmt.Errorf("open log.db: %w", err)
	}
	defer db.Close()
	var out []bucketUse
	err = db.View(func(tx *bolt.Tx) error {
		return tx.ForEach(func(name []byte, b *bolt.Bucket) error {
			st := b.Stats()
			if st.KeyN == 0 {
				return nil
			}
			out = append(out, bucketUse{Name: string(name), Keys: st.KeyN,
				Bytes: st.BranchInuse + st.LeafInuse + st.InlineBucketInuse, Alloc: st.BranchAlloc + st.LeafAlloc})
			return nil
		})
	})
	return out, err
}
