//go:build linux

package main

import (
	"bytes"
	"testing"

	"github.com/selfheal/selfheal/alert"
	"github.com/selfheal/selfheal/receiver"
)

// TestPayloadIsAccepted checks that generated payloads pass selfheal's own
// decoder (a wrong fingerprint is a 400), that every alert is a distinct
// episode with 8 labels, and that consecutive payloads never share one.
func TestPayloadIsAccepted(t *testing.T) {
	g := &Generator{Job: "node-exporter"}
	seen := map[string]bool{}
	for _, n := range []int{1, 100, 1} {
		body, first := g.Payload(nil, n)
		got, err := receiver.Decode(bytes.NewReader(body))
		if err != nil {
			t.Fatalf("%d alerts: %v\n%s", n, err, body)
		}
		if len(got.Alerts) != n {
			t.Fatalf("decoded %d alerts, want %d", len(got.Alerts), n)
		}
		if got.Alerts[0].Labels["instance"] != first {
			t.Errorf("first instance %q, want %q", got.Alerts[0].Labels["instance"], first)
		}
		for _, a := range got.Alerts {
			if len(a.Labels) != 8 {
				t.Errorf("%d labels, want 8", len(a.Labels))
			}
			if want := alert.Fingerprint(a.Labels); a.Fingerprint != want {
				t.Errorf("fingerprint %s, want %s", a.Fingerprint, want)
			}
			if k := a.Episode().Key(); seen[k] {
				t.Errorf("episode %s generated twice", k)
			} else {
				seen[k] = true
			}
		}
	}
}
