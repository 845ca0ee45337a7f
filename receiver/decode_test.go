package receiver

import (
	"bytes"
	"os"
	"path/filepath"
	"strings"
	"testing"
	"time"

	"github.com/stretchr/testify/require"

	"github.com/selfheal/selfheal/alert"
)

// payload reads a payload captured from a real Alertmanager 0.25, byte for byte.
func payload(t testing.TB, name string) []byte {
	t.Helper()
	data, err := os.ReadFile(filepath.Join("testdata", "alertmanager", name+".json"))
	require.NoError(t, err)
	return data
}

type wantAlert struct {
	status      alert.Status
	fingerprint string
	startsAt    string
	instance    string
}

func TestDecodeRealPayloads(t *testing.T) {
	const (
		stuck1  = "ae801e89cbc3f5a2"
		w1, w2  = "0bf4a5d025b93db5", "6870dd27cea0fbaa"
		w3, w4  = "7e817d5371f3197b", "9a97c4916e81a780"
		w5      = "147a13fc7b01de89"
		t0      = "2026-11-21T19:08:21.8Z"
		firing  = alert.Firing
		resolvd = alert.Resolved
	)
	cases := []struct {
		name      string
		status    alert.Status
		truncated uint64
		alerts    []wantAlert
	}{
		{"single-firing", firing, 0, []wantAlert{{firing, stuck1, t0, "worker-01:9100"}}},
		{"repeat", firing, 0, []wantAlert{{firing, stuck1, t0, "worker-01:9100"}}},
		{"resolved", resolvd, 0, []wantAlert{{resolvd, stuck1, t0, "worker-01:9100"}}},
		{"refire-same-fingerprint", firing, 0, []wantAlert{{firing, stuck1, "2026-11-21T19:09:46.8Z", "worker-01:9100"}}},
		{"multi-firing", firing, 0, []wantAlert{
			{firing, w1, t0, "worker-01:9100"}, {firing, w2, t0, "worker-02:9100"}, {firing, w3, t0, "worker-03:9100"},
			{firing, w4, t0, "worker-04:9100"}, {firing, w5, t0, "worker-05:9100"}}},
		{"multi-partial-resolved", firing, 0, []wantAlert{
			{firing, w1, t0, "worker-01:9100"}, {firing, w2, t0, "worker-02:9100"}, {firing, w3, t0, "worker-03:9100"},
			{resolvd, w4, t0, "worker-04:9100"}, {resolvd, w5, t0, "worker-05:9100"}}},
		{"multi-after-partial-repeat", firing, 0, []wantAlert{
			{firing, w1, t0, "worker-01:9100"}, {firing, w2, t0, "worker-02:9100"}, {firing, w3, t0, "worker-03:9100"}}},
		{"multi-all-resolved", resolvd, 0, []wantAlert{
			{resolvd, w1, t0, "worker-01:9100"}, {resolvd, w2, t0, "worker-02:9100"}, {resolvd, w3, t0, "worker-03:9100"}}},
		{"truncated", firing, 3, []wantAlert{{firing, w1, t0, "worker-01:9100"}, {firing, w2, t0, "worker-02:9100"}}},
		{"ha-firing-b", firing, 0, []wantAlert{{firing, stuck1, "2026-11-21T19:15:19.266Z", "worker-01:9100"}}},
		{"ha-resolved-b", resolvd, 0, []wantAlert{{resolvd, stuck1, "2026-11-21T19:15:19.266Z", "worker-01:9100"}}},
		{"ha-dup-a", firing, 0, []wantAlert{{firing, stuck1, "2026-11-21T19:21:16.311Z", "worker-01:9100"}}},
		{"ha-dup-b", firing, 0, []wantAlert{{firing, stuck1, "2026-11-21T19:21:16.311Z", "worker-01:9100"}}},
	}
	files, err := filepath.Glob(filepath.Join("testdata", "alertmanager", "*.json"))
	require.NoError(t, err)
	covered := map[string]bool{}
	for _, c := range cases {
		covered[c.name] = true
		t.Run(c.name, func(t *testing.T) {
			n, err := Decode(bytes.NewReader(payload(t, c.name)))
			require.NoError(t, err)
			require.Equal(t, c.status, n.Status)
			require.Equal(t, c.truncated, n.TruncatedAlerts)
			require.Len(t, n.Alerts, len(c.alerts))
			for i, w := range c.alerts {
				a := n.Alerts[i]
				start, err := time.Parse(time.RFC3339Nano, w.startsAt)
				require.NoError(t, err)
				require.Equal(t, w.status, a.Status, "alert %d", i)
				require.Equal(t, w.instance, a.Labels["instance"], "alert %d", i)
				require.Equal(t, alert.Episode{Fingerprint: w.fingerprint, StartsAt: start}, a.Episode(), "alert %d", i)
				require.Equal(t, w.fingerprint, alert.Fingerprint(a.Labels), "fingerprint recomputed from labels")
				if a.Status == alert.Firing {
					require.True(t, a.EndsAt.IsZero(), "0001-01-01T00:00:00Z means no end")
				} else {
					require.False(t, a.EndsAt.IsZero())
				}
			}
		})
	}
	for _, f := range files {
		name := strings.TrimSuffix(filepath.Base(f), ".json")
		if !strings.HasSuffix(name, ".headers") {
			require.True(t, covered[name], "payload %s has no expectation", name)
		}
	}
}

func TestDecodeRecomputesMissingFingerprint(t *testing.T) {
	body := strings.Replace(string(payload(t, "single-firing")), `,"fingerprint":"ae801e89cbc3f5a2"`, "", 1)
	require.NotContains(t, body, "fingerprint")
	n, err := Decode(strings.NewReader(body))
	require.NoError(t, err)
	require.Equal(t, "ae801e89cbc3f5a2", n.Alerts[0].Fingerprint)
}

func TestDecodeIgnoresFieldsOfNewerAlertmanagers(t *testing.T) {
	body := strings.Replace(string(payload(t, "single-firing")), `"groupLabels"`,
		`"notification_reason":"first notification","routeLabels":{},"groupLabels"`, 1)
	n, err := Decode(strings.NewReader(body))
	require.NoError(t, err)
	require.Len(t, n.Alerts, 1)
}

func TestDecodeAcceptsTrailingWhitespace(t *testing.T) {
	n, err := Decode(strings.NewReader(string(payload(t, "single-firing")) + "\n \r\n\t"))
	require.NoError(t, err)
	require.Len(t, n.Alerts, 1)
}

func TestDecodeAcceptsUTF8LabelNames(t *testing.T) {
	// Prometheus 3 and Alertmanager 0.28+ allow any UTF-8 label name, such
	// as OpenTelemetry's service.name; refusing one would drop the alert for good.
	body := strings.Replace(string(payload(t, "single-firing")), `"instance":"worker-01:9100","jenkins_job"`, `"service.name":"wörker","jenkins_job"`, 1)
	body = strings.Replace(body, `,"fingerprint":"ae801e89cbc3f5a2"`, "", 1)
	n, err := Decode(strings.NewReader(body))
	require.NoError(t, err)
	require.Equal(t, "wörker", n.Alerts[0].Labels["service.name"])
}

func TestDecodeRejects(t *testing.T) {
	single := string(payload(t, "single-firing"))
	cases := []struct{ name, body, want string }{
		{"empty body", "", "invalid webhook payload: empty body"},
		{"malformed JSON", `{"version":"4",`, "invalid webhook payload: malformed JSON"},
		{"not an object", `[1,2]`, "invalid webhook payload: malformed JSON"},
		{"version 3", strings.Replace(single, `"version":"4"`, `"version":"3"`, 1), `version: "3" is not supported, want "4"`},
		{"no version", strings.Replace(single, `"version":"4",`, ``, 1), `version: missing`},
		{"no alerts", `{"version":"4","alerts":[]}`, "alerts: no alerts"},
		{"bad alert status", strings.Replace(single, `"status":"firing","labels"`, `"status":"burning","labels"`, 1), `alerts[0].status: must be "firing" or "resolved", got "burning"`},
		{"fingerprint mismatch", strings.Replace(single, `ae801e89cbc3f5a2`, `0000000000000000`, 1), `alerts[0].fingerprint: "0000000000000000" does not match the labels`},
		{"no startsAt", strings.Replace(single, `"startsAt":"2026-11-21T19:08:21.8Z",`, ``, 1), `alerts[0].startsAt: must be set`},
		{"a second document", single + single, "invalid webhook payload: data after the first JSON document at offset 1085"},
		{"trailing garbage", single + "\n}", "invalid webhook payload: data after the first JSON document at offset 1086"},
		{"NUL in a label value", strings.Replace(single, `"worker-01:9100","jenkins_job"`, `"worker-01\u00009100","jenkins_job"`, 1), `alerts[0].labels.instance: value contains a NUL byte`},
		{"NUL in a label name", strings.Replace(single, `"instance":"worker-01:9100","jenkins_job"`, `"inst\u0000ance":"worker-01:9100","jenkins_job"`, 1), `alerts[0].labels."inst\x00ance": name contains a NUL byte`},
		{"empty label name", strings.Replace(single, `"instance":"worker-01:9100","jenkins_job"`, `"":"worker-01:9100","jenkins_job"`, 1), `alerts[0].labels."": name is not a valid label name`},
		{"NUL in an annotation", strings.Replace(single, `"Queue not drained`, `"Queue\u0000not drained`, 1), `alerts[0].annotations.description: value contains a NUL byte`},
		{"non-UTF-8 label value", strings.Replace(single, `"worker-01:9100","jenkins_job"`, "\"worker-\xff01:9100\",\"jenkins_job\"", 1), `alerts[0].labels.instance: value is not valid UTF-8`},
		{"non-UTF-8 label name", strings.Replace(single, `"instance":"worker-01:9100","jenkins_job"`, "\"inst\xc3ance\":\"worker-01:9100\",\"jenkins_job\"", 1), "alerts[0].labels.\"inst\ufffdance\": name is not valid UTF-8"},
		{"non-UTF-8 annotation", strings.Replace(single, `"clean_data_worker is stuck`, "\"clean_data_worker \xe2\x82 stuck", 1), `alerts[0].annotations.summary: value is not valid UTF-8`},
		{"non-UTF-8 elsewhere", strings.Replace(single, `"receiver":"selfhealing"`, "\"receiver\":\"self\xffhealing\"", 1), `invalid webhook payload: body is not valid UTF-8 at offset 17`},
		{"startsAt before 1678", strings.Replace(single, `"startsAt":"2026-11-21T19:08:21.8Z"`, `"startsAt":"1677-09-21T00:00:00Z"`, 1), `alerts[0].startsAt: 1677-09-21T00:00:00Z is outside the range selfheal stores (1677-09-21T00:12:43.145224192Z to 2262-04-11T23:47:16.854775807Z)`},
		{"startsAt after 2262", strings.Replace(single, `"startsAt":"2026-11-21T19:08:21.8Z"`, `"startsAt":"9999-12-31T23:59:59-01:00"`, 1), `alerts[0].startsAt: 10000-01-01T00:59:59Z is outside the range selfheal stores`},
		{"endsAt after 9999", strings.Replace(single, `"endsAt":"0001-01-01T00:00:00Z"`, `"endsAt":"9999-12-31T23:59:59-01:00"`, 1), `alerts[0].endsAt: 10000-01-01T00:59:59Z is outside the range selfheal stores`},
	}
	for _, c := range cases {
		t.Run(c.name, func(t *testing.T) {
			_, err := Decode(strings.NewReader(c.body))
			require.ErrorIs(t, err, ErrInvalid)
			require.ErrorContains(t, err, c.want)
		})
	}
}
