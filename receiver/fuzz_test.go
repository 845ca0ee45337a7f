package receiver

import (
	"bytes"
	"os"
	"path/filepath"
	"testing"

	"github.com/selfheal/selfheal/alert"
)

// FuzzWebhook checks that no body makes the decoder panic, and that what it
// accepts is well formed: every alert has a valid status, labels, a start
// and the fingerprint of its labels.
func FuzzWebhook(f *testing.F) {
	files, _ := filepath.Glob(filepath.Join("testdata", "alertmanager", "*.json"))
	for _, file := range files {
		data, err := os.ReadFile(file)
		if err != nil {
			f.Fatal(err)
		}
		f.Add(data)
	}
	f.Add([]byte(`{"version":"4","alerts":[{"status":"firing","labels":{"a":"b"},"startsAt":"2026-01-01T00:00:00Z"}]}`))
	f.Fuzz(func(t *testing.T, body []byte) {
		n, err := Decode(bytes.NewReader(body))
		if err != nil {
			return
		}
		if len(n.Alerts) == 0 {
			t.Fatal("accepted a payload without alerts")
		}
		for _, a := range n.Alerts {
			if !a.Status.Valid() || len(a.Labels) == 0 || a.StartsAt.IsZero() || a.Fingerprint != alert.Fingerprint(a.Labels) {
				t.Fatalf("accepted a malformed alert: %+v", a)
			}
		}
	})
}
