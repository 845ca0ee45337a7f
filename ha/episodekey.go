package ha

import (
	"bytes"
	"encoding/binary"
	"encoding/hex"
	"encoding/json"
	"fmt"
	"strconv"
	"strings"
	"time"

	bolt "go.etcd.io/bbolt"

	"github.com/selfheal/selfheal/alert"
)

// The episode table is the one part of the log that grows with every alert
// seen, whether a playbook wants it or not, so it is stored compactly:
//
//   - the key is startsAt in Unix nanoseconds, big-endian, then the
//     fingerprint's 8 bytes: 16 bytes (alert.Episode.Key, the form gossip
//     carries, is 37). Time first, because new episodes start about now:
//     their inserts land on the few pages at the end of the table instead
//     of one page each anywhere in it, and a write of 100 new episodes
//     dirties a few pages, not a hundred;
//     a fingerprint that is not 16 hex digits, which Alertmanager never
//     sends, keeps that textual form;
//   - the value is a version byte, the status, and three times in Unix
//     nanoseconds: 26 bytes (its JSON was about 110).
//
// A log written before this encoding is converted when it is opened.

const episodeKeyLen = 16

// episodeKey is ep's key in the episode tables.
func episodeKey(ep alert.Episode) []byte {
	if len(ep.Fingerprint) == 16 {
		var k [episodeKeyLen]byte
		if _, err := hex.Decode(k[8:], []byte(ep.Fingerprint)); err == nil && strings.ToLower(ep.Fingerprint) == ep.Fingerprint {
			binary.BigEndian.PutUint64(k[:8], uint64(ep.StartsAt.UnixNano()))
			return k[:]
		}
	}
	return []byte(ep.Key())
}

// storeKey is the table key of an episode gossiped as key (alert.Episode.Key).
func storeKey(key string) []byte {
	if ep, ok := parseEpisodeKey(key); ok {
		return episodeKey(ep)
	}
	return []byte(key)
}

// parseEpisodeKey reads alert.Episode.Key's form back.
func parseEpisodeKey(key string) (alert.Episode, bool) {
	fp, nanos, ok := strings.Cut(key, "/")
	if !ok || len(nanos) != 20 {
		return alert.Episode{}, false
	}
	n, err := strconv.ParseInt(nanos, 10, 64)
	if err != nil {
		return alert.Episode{}, false
	}
	return alert.Episode{Fingerprint: fp, StartsAt: time.Unix(0, n).UTC()}, true
}

// episodeOfKey is the episode a table key names.
func episodeOfKey(k []byte) alert.Episode {
	if len(k) == episodeKeyLen {
		return alert.Episode{
			Fingerprint: hex.EncodeToString(k[8:]),
			StartsAt:    time.Unix(0, int64(binary.BigEndian.Uint64(k[:8]))).UTC(),
		}
	}
	ep, _ := parseEpisodeKey(string(k))
	return ep
}

const episodeEncoding = 1

var statusCodes = []alert.Status{alert.Firing, alert.Resolved}

func (st episodeState) encode() []byte {
	v := make([]byte, 2, 26)
	v[0] = episodeEncoding
	for i, s := range statusCodes {
		if s == st.Status {
			v[1] = byte(i)
		}
	}
	for _, t := range []time.Time{st.FirstSeen, st.LastSeen, st.ResolvedAt} {
		var n int64
		if !t.IsZero() {
			n = t.UnixNano()
		}
		v = binary.BigEndian.AppendUint64(v, uint64(n))
	}
	return v
}

func decodeEpisode(v []byte) (episodeState, error) {
	var st episodeState
	if len(v) > 0 && v[0] == '{' { // written before the compact encoding
		return st, json.Unmarshal(v, &st)
	}
	if len(v) != 26 || v[0] != episodeEncoding || int(v[1]) >= len(statusCodes) {
		return st, fmt.Errorf("episode record of %d bytes in an unknown encoding", len(v))
	}
	st.Status = statusCodes[v[1]]
	ts := make([]time.Time, 3)
	for i := range ts {
		if n := int64(binary.BigEndian.Uint64(v[2+8*i:])); n != 0 {
			ts[i] = time.Unix(0, n).UTC()
		}
	}
	st.FirstSeen, st.LastSeen, st.ResolvedAt = ts[0], ts[1], ts[2]
	return st, nil
}

func getEpisode(b *bolt.Bucket, key []byte) (episodeState, bool, error) {
	v := b.Get(key)
	if v == nil {
		return episodeState{}, false, nil
	}
	st, err := decodeEpisode(v)
	return st, true, err
}

var (
	bucketMeta       = []byte("meta")
	metaEpisodeCodec = []byte("episode_encoding")
)

// convertEpisodes rewrites the episode tables of a log written before the
// compact encoding, in transactions of at most 10000 episodes, and marks
// the log converted. It is idempotent: a crash part way leaves keys of
// both forms, and the next open converts the rest.
func convertEpisodes(db *bolt.DB) error {
	done := false
	if err := db.View(func(tx *bolt.Tx) error {
		done = tx.Bucket(bucketMeta).Get(metaEpisodeCodec) != nil
		return nil
	}); err != nil || done {
		return err
	}
	for _, name := range [][]byte{bucketEpisodes, bucketFiring} {
		// Converted keys land all over the table; each round goes on from
		// the last textual key converted, so none is visited twice.
		var from []byte
		for more := true; more; {
			err := db.Update(func(tx *bolt.Tx) error {
				b := tx.Bucket(name)
				type kv struct{ k, v []byte }
				var batch []kv
				c := b.Cursor()
				k, v := c.First()
				if from != nil {
					k, v = c.Seek(from)
				}
				for ; k != nil && len(batch) < 10000; k, v = c.Next() {
					if len(k) == episodeKeyLen {
						continue
					}
					ep, ok := parseEpisodeKey(string(k))
					if !ok || len(episodeKey(ep)) != episodeKeyLen {
						continue
					}
					batch = append(batch, kv{bytes.Clone(k), bytes.Clone(v)})
				}
				more = len(batch) == 10000
				if more {
					from = batch[len(batch)-1].k
				}
				for _, e := range batch {
					v := e.v
					if bytes.Equal(name, bucketEpisodes) {
						st, err := decodeEpisode(v)
						if err != nil {
							return fmt.Errorf("episode %s: %w", e.k, err)
						}
						v = st.encode()
					}
					ep, _ := parseEpisodeKey(string(e.k))
					if err := b.Put(episodeKey(ep), v); err != nil {
						return err
					}
					if err := b.Delete(e.k); err != nil {
						return err
					}
				}
				return nil
			})
			if err != nil {
				return fmt.Errorf("convert %s to the compact encoding: %w", name, err)
			}
		}
	}
	return db.Update(func(tx *bolt.Tx) error {
		return tx.Bucket(bucketMeta).Put(metaEpisodeCodec, []byte{episodeEncoding})
	})
}
