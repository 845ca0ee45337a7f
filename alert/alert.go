// Package alert is the shared vocabulary of selfheal: an Alert as Alertmanager
// delivers it, the Episode that identifies one firing of it, and the Batch in
// which the receiver hands alerts to the engine.
package alert

import (
	"fmt"
	"math"
	"sort"
	"strconv"
	"strings"
	"time"
	"unicode/utf8"

	"github.com/prometheus/alertmanager/template"
	"github.com/prometheus/common/model"
)

// Status is the state an alert was in when Alertmanager sent it.
type Status string

// The two statuses Alertmanager sends for an alert.
const (
	Firing   Status = "firing"
	Resolved Status = "resolved"
)

// Valid reports whether s is one of the statuses Alertmanager sends.
func (s Status) Valid() bool { return s == Firing || s == Resolved }

// Alert is one alert of a notification, with its own status.
type Alert struct {
	Status       Status            `json:"status"`
	Labels       map[string]string `json:"labels"`
	Annotations  map[string]string `json:"annotations,omitempty"`
	StartsAt     time.Time         `json:"startsAt"`
	EndsAt       time.Time         `json:"endsAt,omitzero"`
	GeneratorURL string            `json:"generatorURL,omitempty"`
	Fingerprint  string            `json:"fingerprint"`
}

// Episode identifies one firing episode of an alert: the fingerprint of its
// labels and the time it started. Every repeat, retry and HA copy of a
// notification carries the same episode; a new firing gets a new StartsAt.
type Episode struct {
	Fingerprint string    `json:"fingerprint"`
	StartsAt    time.Time `json:"startsAt"`
}

// Episode returns the episode a is part of.
func (a Alert) Episode() Episode {
	return Episode{Fingerprint: a.Fingerprint, StartsAt: a.StartsAt.UTC()}
}

// String renders the episode as "fingerprint@startsAt" with startsAt in UTC
// RFC 3339 with nanoseconds, so equal episodes always print equally whatever
// fraction length Alertmanager used.
func (e Episode) String() string {
	return e.Fingerprint + "@" + e.StartsAt.UTC().Format(time.RFC3339Nano)
}

// Key is a byte-sortable form of the episode used as a storage key:
// the fingerprint, then startsAt as zero-padded Unix nanoseconds.
func (e Episode) Key() string {
	return fmt.Sprintf("%s/%020d", e.Fingerprint, e.StartsAt.UnixNano())
}

// Fingerprint computes the fingerprint Alertmanager gives a label set:
// FNV-1a 64 over the sorted label pairs, as 16 lowercase hex digits.
func Fingerprint(labels map[string]string) string {
	ls := make(model.LabelSet, len(labels))
	for k, v := range labels {
		ls[model.LabelName(k)] = model.LabelValue(v)
	}
	return ls.Fingerprint().String()
}

// FromTemplate converts an alert decoded from a webhook payload and checks
// it. A missing fingerprint is recomputed from the labels. The error names
// the offending field; the caller adds the alert's position.
func FromTemplate(t template.Alert) (Alert, error) {
	a := Alert{
		Status:       Status(t.Status),
		Labels:       map[string]string(t.Labels),
		Annotations:  map[string]string(t.Annotations),
		StartsAt:     t.StartsAt.UTC(),
		EndsAt:       t.EndsAt.UTC(),
		GeneratorURL: t.GeneratorURL,
		Fingerprint:  strings.ToLower(t.Fingerprint),
	}
	if !a.Status.Valid() {
		return Alert{}, fmt.Errorf("status: must be %q or %q, got %q", Firing, Resolved, t.Status)
	}
	if len(a.Labels) == 0 {
		return Alert{}, fmt.Errorf("labels: must not be empty")
	}
	if a.StartsAt.IsZero() {
		return Alert{}, fmt.Errorf("startsAt: must be set")
	}
	if err := checkTime("startsAt", a.StartsAt); err != nil {
		return Alert{}, err
	}
	if a.EndsAt.IsZero() {
		a.EndsAt = time.Time{}
	} else if err := checkTime("endsAt", a.EndsAt); err != nil {
		return Alert{}, err
	}
	if err := checkText("labels", a.Labels); err != nil {
		return Alert{}, err
	}
	if err := checkText("annotations", a.Annotations); err != nil {
		return Alert{}, err
	}
	want := Fingerprint(a.Labels)
	switch {
	case a.Fingerprint == "":
		a.Fingerprint = want
	case a.Fingerprint != want:
		return Alert{}, fmt.Errorf("fingerprint: %q does not match the labels (want %q)", t.Fingerprint, want)
	}
	return a, nil
}

// The times Episode.Key can represent: Unix nanoseconds in an int64, from
// 1677-09-21 to 2262-04-11. Set once, never changed.
var (
	minTime = time.Unix(0, math.MinInt64).UTC()
	maxTime = time.Unix(0, math.MaxInt64).UTC()
)

// checkTime refuses a time outside [minTime, maxTime]: its UnixNano, and so
// its episode key, would be wrong, and past year 9999 it cannot even be
// stored as JSON.
func checkTime(field string, t time.Time) error {
	if t.Before(minTime) || t.After(maxTime) {
		return fmt.Errorf("%s: %s is outside the range selfheal stores (%s to %s)", field,
			t.Format(time.RFC3339Nano), minTime.Format(time.RFC3339Nano), maxTime.Format(time.RFC3339Nano))
	}
	return nil
}

// TextError is a label or annotation, name or value, that is not text
// selfheal can carry to matchers, templates and commands.
type TextError struct {
	Field   string // "labels" or "annotations"
	Name    string // the label or annotation name
	InName  bool   // the name is at fault, not the value
	Problem string // "contains a NUL byte", "is not valid UTF-8", ...
}

// Error reads "labels.instance: value contains a NUL byte"; a name that is
// not a plain identifier is quoted.
func (e *TextError) Error() string {
	name := e.Name
	if !model.LegacyValidation.IsValidLabelName(name) {
		name = strconv.Quote(name)
	}
	what := "value"
	if e.InName {
		what = "name"
	}
	return fmt.Sprintf("%s.%s: %s %s", e.Field, name, what, e.Problem)
}

// checkText returns a *TextError for the first name or value of m, in name
// order, that holds a NUL byte or bytes that are not UTF-8, or a name that
// is not a valid label name. Label names follow Prometheus' UTF-8 rules
// (model.UTF8Validation: any non-empty UTF-8), not the legacy
// [a-zA-Z_][a-zA-Z0-9_]*: Prometheus 3 and Alertmanager 0.28+ send names
// like service.name, and a 400 would drop such an alert for good.
func checkText(field string, m map[string]string) error {
	names := make([]string, 0, len(m))
	for k := range m {
		names = append(names, k)
	}
	sort.Strings(names)
	for _, k := range names {
		if p := textProblem(k); p != "" {
			return &TextError{Field: field, Name: k, InName: true, Problem: p}
		}
		if !model.UTF8Validation.IsValidLabelName(k) {
			return &TextError{Field: field, Name: k, InName: true, Problem: "is not a valid label name"}
		}
		if p := textProblem(m[k]); p != "" {
			return &TextError{Field: field, Name: k, Problem: p}
		}
	}
	return nil
}

func textProblem(s string) string {
	switch {
	case strings.IndexByte(s, 0) >= 0:
		return "contains a NUL byte"
	case !utf8.ValidString(s):
		return "is not valid UTF-8"
	}
	return ""
}

// Name returns the alertname label, or "" when there is none.
func (a Alert) Name() string { return a.Labels[model.AlertNameLabel] }

// LabelSet returns the labels as a model.LabelSet, for matchers.
func (a Alert) LabelSet() model.LabelSet {
	ls := make(model.LabelSet, len(a.Labels))
	for k, v := range a.Labels {
		ls[model.LabelName(k)] = model.LabelValue(v)
	}
	return ls
}

// SortedLabelNames returns the label names in lexical order.
func (a Alert) SortedLabelNames() []string {
	names := make([]string, 0, len(a.Labels))
	for k := range a.Labels {
		names = append(names, k)
	}
	sort.Strings(names)
	return names
}

// Batch is the unit the receiver stores and the engine consumes: the alerts
// of one accepted notification, with where and when they came from.
type Batch struct {
	// Seq orders batches; it is assigned by the inbox when stored.
	Seq        uint64    `json:"seq"`
	ReceivedAt time.Time `json:"receivedAt"`
	Receiver   string    `json:"receiver,omitempty"`
	GroupKey   string    `json:"groupKey,omitempty"`
	Alerts     []Alert   `json:"alerts"`
}
