package cluster_test

import (
	"fmt"
	"testing"
	"time"
)

// BenchmarkClaim measures a claim: on disk (fsync) here, then, in a
// cluster, confirmed by every other replica (their fsync and an answer over
// TCP) on loopback. replicas=1 is a cluster of one.
func BenchmarkClaim(b *testing.B) {
	for _, n := range []int{1, 3} {
		b.Run(fmt.Sprintf("replicas=%d", n), func(b *testing.B) {
			var r *replica
			if n == 1 {
				r = start(b, "solo", &partition{})
			} else {
				r = startThree(b, &partition{})[0]
			}
			t0 := time.Now().UTC()
			i := 0
			for b.Loop() {
				if _, won, err := claimOn(r, episode(i, t0), t0); err != nil || !won {
					b.Fatalf("claim %d: won %v, %v", i, won, err)
				}
				i++
			}
		})
	}
}
