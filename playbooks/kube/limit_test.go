package kube

import (
	"strings"
	"testing"

	"github.com/stretchr/testify/require"
	"k8s.io/client-go/kubernetes/fake"
	"k8s.io/client-go/tools/record"

	"github.com/selfheal/selfheal/playbooks"
)

// paddedBook is book(names...) padded with a comment to exactly size bytes.
func paddedBook(t *testing.T, size int, names ...string) string {
	t.Helper()
	s := book(names...)
	pad := size - len(s) - len("#\n")
	require.GreaterOrEqual(t, pad, 0)
	s += "#" + strings.Repeat("x", pad) + "\n"
	require.Len(t, s, size)
	return s
}

// TestConfigMapSizeLimit: a ConfigMap whose playbook keys hold more than
// 1 MiB in all is refused before any is parsed, each key keeps its last good
// version and gets a Warning Event; exactly 1 MiB loads. The informer is
// not run: apply is what it calls.
func TestConfigMapSizeLimit(t *testing.T) {
	const mib = 1 << 20
	rec := record.NewFakeRecorder(10)
	catalog := playbooks.NewCatalog(registry(t), playbooks.CatalogOptions{})
	w := New(fake.NewClientset(), catalog, Options{Recorder: rec})

	// Exactly 1 MiB of playbook keys; other keys do not count.
	w.apply(configMap("ops", "big", map[string]string{
		"a.yaml": paddedBook(t, mib/2, "a"), "b.yaml": paddedBook(t, mib/2, "b"), "notes.txt": strings.Repeat("n", mib),
	}))
	require.Equal(t, []string{"a", "b"}, names(catalog.Set().All()))
	good := catalog.Set().Get("a")
	<-rec.Events
	<-rec.Events

	w.apply(configMap("ops", "big", map[string]string{
		"a.yaml": paddedBook(t, mib/2, "a", "more"), "b.yaml": paddedBook(t, mib/2+1, "b"),
	}))
	require.Same(t, good, catalog.Set().Get("a"), "the last good version stays")
	require.Nil(t, catalog.Set().Get("more"))
	const want = "configmap/ops/big: 1048577 bytes is over the 1 MiB limit for the playbook keys of a ConfigMap"
	for _, key := range []string{"a.yaml", "b.yaml"} {
		source := Source("ops", "big", key)
		var st playbooks.SourceStatus
		for _, s := range catalog.Statuses() {
			if s.Source == source {
				st = s
			}
		}
		require.Equal(t, want, st.LastError, source)
		require.Equal(t, "Warning InvalidPlaybooks "+source+" not loaded; the last good version stays active:\n"+want, <-rec.Events)
	}
}
