package receiver

import (
	"bytes"
	"encoding/json"
	"os"
	"path/filepath"
	"testing"

	"github.com/selfheal/selfheal/alert"
)

// FuzzWebhook checks that no body makes the decoder panic, and that what it
// accepts is well formed: every alert has a valid status, labels, a start
// and the fingerprint of its labels, and the alerts can be stored (a batch
// that cannot be marshalled would be answered 503 for ever).
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
	f.Add([]byte(`{"version":"4","alerts":[{"status":"resolved","labels":{"a":"b"},"startsAt":"2026-01-01T00:00:00Z","endsAt":"9999-12-31T23:59:59-01:00"}]}`))
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
		if _, err := json.Marshal(n.Alerts); err != nil {
			t.Fatalf("accepted alerts that cannot be stored: %v", err)
		}
	})
}
