package receiver

import (
	"bytes"
	"encoding/json"
	"fmt"
	"os"
	"path/filepath"
	"testing"
)

// benchPayload is a real capture of one 8-label alert, repeated to n
// alerts with distinct instances.
func benchPayload(b *testing.B, n int) []byte {
	b.Helper()
	data, err := os.ReadFile(filepath.Join("testdata", "alertmanager", "single-firing.json"))
	if err != nil {
		b.Fatal(err)
	}
	var m map[string]any
	if err := json.Unmarshal(data, &m); err != nil {
		b.Fatal(err)
	}
	tmpl := m["alerts"].([]any)[0].(map[string]any)
	delete(tmpl, "fingerprint")
	var alerts []any
	for i := range n {
		a := map[string]any{}
		for k, v := range tmpl {
			a[k] = v
		}
		labels := map[string]any{}
		for k, v := range tmpl["labels"].(map[string]any) {
			labels[k] = v
		}
		labels["instance"] = fmt.Sprintf("worker-%04d:9100", i)
		labels["team"], labels["cluster"] = "data", "eu-1"
		a["labels"] = labels
		alerts = append(alerts, a)
	}
	m["alerts"] = alerts
	out, err := json.Marshal(m)
	if err != nil {
		b.Fatal(err)
	}
	return out
}

// BenchmarkDecode decodes and validates webhook payloads of 1 and 100
// alerts (fingerprints computed and checked).
func BenchmarkDecode(b *testing.B) {
	for _, n := range []int{1, 100} {
		b.Run(fmt.Sprintf("alerts=%d", n), func(b *testing.B) {
			body := benchPayload(b, n)
			b.SetBytes(int64(len(body)))
			b.ReportAllocs()
			for b.Loop() {
				if _, err := Decode(bytes.NewReader(body)); err != nil {
					b.Fatal(err)
				}
			}
			b.ReportMetric(float64(b.Elapsed().Nanoseconds())/float64(b.N*n), "ns/alert")
		})
	}
}
