package e2e

import (
	"bytes"
	"encoding/json"
	"fmt"
	"net/http"
	"path/filepath"
	"testing"
	"time"

	"github.com/stretchr/testify/require"
)

// TestAlertmanagerHAPairRunsOnce: a real HA pair of Debian's
// prometheus-alertmanager, with a peer_timeout far below what a delivery
// and its gossip take, so that both members deliver every notification
// (as in testdata/alertmanager/ha-dup-*); member a delivers to selfheal
// replica n1, member b to n2, of a 3-replica cluster. Both copies arrive,
// at different replicas, and each episode runs once.
func TestAlertmanagerHAPairRunsOnce(t *testing.T) {
	requireE2E(t, "prometheus-alertmanager")
	ran := filepath.Join(t.TempDir(), "ran.log")
	rs := newReplicaSet(t, 3, ran, "")
	rs.start(t)

	base := t.TempDir()
	webA, webB, gossipA, gossipB := freePort(t), freePort(t), freePort(t), freePort(t)
	startAM := func(name string, web, gossip, peer, target int) string {
		dir := filepath.Join(base, name)
		writeFile(t, filepath.Join(dir, "alertmanager.yml"), fmt.Sprintf(`route:
  receiver: selfheal
  group_by: [instance]
  group_wait: 1s
  group_interval: 1s
  repeat_interval: 1h
receivers:
  - name: selfheal
    webhook_configs:
      - url: http://127.0.0.1:%d/api/v1/alerts
        http_config:
          authorization: {type: Bearer, credentials: %s}
`, target, token))
		url := fmt.Sprintf("http://127.0.0.1:%d", web)
		start(t, dir, "alertmanager-"+name, "prometheus-alertmanager",
			"--config.file="+filepath.Join(dir, "alertmanager.yml"),
			"--storage.path="+filepath.Join(dir, "data"),
			fmt.Sprintf("--web.listen-address=127.0.0.1:%d", web),
			fmt.Sprintf("--cluster.listen-address=127.0.0.1:%d", gossip),
			fmt.Sprintf("--cluster.advertise-address=127.0.0.1:%d", gossip),
			fmt.Sprintf("--cluster.peer=127.0.0.1:%d", peer),
			"--cluster.peer-timeout=1ms", "--cluster.settle-timeout=2s")
		return url
	}
	amA := startAM("a", webA, gossipA, gossipB, rs.ports[0])
	amB := startAM("b", webB, gossipB, gossipA, rs.ports[1])
	waitHTTP(t, amA+"/-/ready", 30*time.Second)
	waitHTTP(t, amB+"/-/ready", 30*time.Second)

	// As Prometheus does, every alert goes to both members.
	const n = 20
	startsAt := time.Now().UTC().Add(-time.Minute).Format(time.RFC3339)
	var alerts []map[string]any
	for i := range n {
		alerts = append(alerts, map[string]any{
			"labels":      map[string]string{"alertname": "CleanDataWorkerStuck", "jenkins_job": "clean_data_worker", "instance": fmt.Sprintf("worker-%02d:9100", i)},
			"annotations": map[string]string{"summary": "stuck"},
			"startsAt":    startsAt,
		})
	}
	body, err := json.Marshal(alerts)
	require.NoError(t, err)
	for _, am := range []string{amA, amB} {
		resp, err := http.Post(am+"/api/v2/alerts", "application/json", bytes.NewReader(body))
		require.NoError(t, err)
		resp.Body.Close()
		require.Equal(t, 200, resp.StatusCode)
	}

	received := func() (a, b float64) {
		return metric(t, rs.ds[0].url, "selfheal_receiver_notifications_accepted_total", nil),
			metric(t, rs.ds[1].url, "selfheal_receiver_notifications_accepted_total", nil)
	}
	eventually(t, 60*time.Second, "both members to deliver every notification", func() bool {
		a, b := received()
		return a >= n && b >= n
	})
	eventually(t, 30*time.Second, "a run per episode", func() bool { return len(lines(t, ran)) >= n })
	a, b := received()
	t.Logf("notifications: %v at n1 (from member a), %v at n2 (from member b)", a, b)
	// Give late copies and gossip time to show a second run, if any.
	eventually(t, 30*time.Second, "every run finished on every replica", func() bool {
		for _, d := range rs.ds {
			done := 0
			for _, v := range logIDs(t, d) {
				if v[len(v)-len(" succeeded"):] == " succeeded" {
					done++
				}
			}
			if done != n {
				return false
			}
		}
		return true
	})
	byEp := ranLines(t, ran)
	require.Len(t, byEp, n)
	for ep, nodes := range byEp {
		require.Len(t, nodes, 1, "episode %s ran on %v", ep, nodes)
	}
}
