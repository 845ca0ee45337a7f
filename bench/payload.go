//go:build linux

package main

import (
	"strconv"
	"sync/atomic"
	"time"
)

// alertnames, namespaces, severities and teams give the generated alerts
// the shape of the perflab payloads (../shared/bench/amwh): 8 labels, 3
// annotations, a generator URL of about 110 bytes.
var (
	alertnames = []string{
		"InstanceDown", "HighCPU", "HighMemory", "DiskFull", "DiskWillFillIn4h",
		"PodCrashLooping", "PodNotReady", "DeploymentReplicasMismatch", "NodeNotReady",
		"KubeAPIErrors", "HighLatency", "HighErrorRate", "CertExpiringSoon",
		"TargetDown", "OOMKilled", "JobFailed", "QueueBacklog", "ReplicationLag",
		"ConnPoolExhausted", "NTPDrift",
	}
	namespaces = []string{"default", "payments", "search", "checkout", "monitoring", "ingress", "db", "batch"}
	severities = []string{"critical", "warning", "info"}
	teams      = []string{"sre", "platform", "data", "web"}
)

// Generator writes webhook v4 payloads in which every alert is a new
// episode: its instance (and so its fingerprint) comes from a counter
// shared by every connection. It is safe for concurrent use; each caller
// passes its own buffer.
type Generator struct {
	// Job is the value of the job label: it decides which playbooks match.
	Job  string
	next atomic.Uint64
}

// Payload appends to dst a notification of n firing alerts, each with 8
// labels and a fingerprint computed as Alertmanager does, and returns it
// with the instance label of its first alert.
func (g *Generator) Payload(dst []byte, n int) ([]byte, string) {
	first := g.next.Add(uint64(n)) - uint64(n)
	startsAt := time.Now().UTC()
	an := alertnames[first%uint64(len(alertnames))]
	dst = append(dst, `{"receiver":"selfheal","status":"firing","alerts":[`...)
	var scratch [8]string
	for k := range n {
		if k > 0 {
			dst = append(dst, ',')
		}
		dst = g.alert(dst, first+uint64(k), startsAt, &scratch)
	}
	dst = append(dst, `],"groupLabels":{"alertname":`...)
	dst = strconv.AppendQuote(dst, an)
	dst = append(dst, `},"commonLabels":{"job":`...)
	dst = strconv.AppendQuote(dst, g.Job)
	dst = append(dst, `},"commonAnnotations":{},"externalURL":"http://alertmanager.example.internal:9093","version":"4","groupKey":`...)
	dst = strconv.AppendQuote(dst, `{}/{severity=~"critical|warning"}:{alertname="`+an+`"}`)
	dst = append(dst, `,"truncatedAlerts":0}`+"\n"...)
	return dst, instance(first)
}

// instance is the instance label of alert i: an address, unique for every i.
func instance(i uint64) string {
	b := make([]byte, 0, 24)
	b = append(b, "10."...)
	b = strconv.AppendUint(b, (i>>16)&255, 10)
	b = append(b, '.')
	b = strconv.AppendUint(b, (i>>8)&255, 10)
	b = append(b, '.')
	b = strconv.AppendUint(b, i&255, 10)
	b = append(b, ':')
	b = strconv.AppendUint(b, 9100+(i>>24), 10)
	return string(b)
}

// alert appends alert i. Label values hold no character JSON escapes
// differently from Go, so strconv.AppendQuote writes valid JSON strings.
func (g *Generator) alert(dst []byte, i uint64, startsAt time.Time, v *[8]string) []byte {
	an := alertnames[i%uint64(len(alertnames))]
	ns := namespaces[(i/3)%uint64(len(namespaces))]
	inst := instance(i)
	// In sorted label name order, as the fingerprint hashes them.
	*v = [8]string{an, inst, g.Job, ns,
		ns + "-api-7d9f8c6b5-" + strconv.FormatUint(i, 10),
		"svc-" + strconv.FormatUint(i%37, 10),
		severities[i%uint64(len(severities))],
		teams[i%uint64(len(teams))]}
	dst = append(dst, `{"status":"firing","labels":{`...)
	for k, name := range labelNames {
		if k > 0 {
			dst = append(dst, ',')
		}
		dst = append(dst, '"')
		dst = append(dst, name...)
		dst = append(dst, `":`...)
		dst = strconv.AppendQuote(dst, v[k])
	}
	dst = append(dst, `},"annotations":{"summary":`...)
	dst = strconv.AppendQuote(dst, an+" on "+inst)
	dst = append(dst, `,"description":`...)
	dst = strconv.AppendQuote(dst, an+" has been firing for more than 5 minutes in namespace "+ns+" (value="+strconv.FormatUint(90+i%10, 10)+").")
	dst = append(dst, `,"runbook_url":"https://runbooks.example.internal/alerts/`...)
	dst = append(dst, an...)
	dst = append(dst, `"},"startsAt":"`...)
	dst = startsAt.AppendFormat(dst, time.RFC3339Nano)
	dst = append(dst, `","endsAt":"0001-01-01T00:00:00Z","generatorURL":"http://prometheus.example.internal:9090/graph?g0.expr=up%7Bjob%3D%22node%22%7D+%3D%3D+0\u0026g0.tab=1\u0026i=`...)
	dst = strconv.AppendUint(dst, i, 10)
	dst = append(dst, `","fingerprint":"`...)
	dst = appendHex16(dst, fingerprint(v))
	dst = append(dst, `"}`...)
	return dst
}

// labelNames are the 8 label names, sorted.
var labelNames = [8]string{"alertname", "instance", "job", "namespace", "pod", "service", "severity", "team"}

// fingerprint is Prometheus' model.LabelSet.Fingerprint for labelNames
// with the values v: FNV-1a 64 over name, 0xff, value, 0xff in name order.
func fingerprint(v *[8]string) uint64 {
	const offset64, prime64 = 14695981039346656037, 1099511628211
	h := uint64(offset64)
	add := func(s string) {
		for i := 0; i < len(s); i++ {
			h ^= uint64(s[i])
			h *= prime64
		}
		h ^= 0xff
		h *= prime64
	}
	for k, name := range labelNames {
		add(name)
		add(v[k])
	}
	return h
}

func appendHex16(dst []byte, x uint64) []byte {
	const digits = "0123456789abcdef"
	for shift := 60; shift >= 0; shift -= 4 {
		dst = append(dst, digits[(x>>uint(shift))&15])
	}
	return dst
}
