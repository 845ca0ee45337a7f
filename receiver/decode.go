// Package receiver owns the Alertmanager webhook: decoding and checking
// payloads, authenticating the sender, and the durable inbox the engine
// consumes. It answers 202 only once the alerts are on disk and never runs
// anything slow on the request goroutine.
package receiver

import (
	"encoding/json"
	"errors"
	"fmt"
	"io"

	"github.com/prometheus/alertmanager/template"

	"github.com/selfheal/selfheal/alert"
)

// SupportedVersion is the webhook payload version Alertmanager sends.
const SupportedVersion = "4"

// Notification is a decoded, checked webhook payload.
type Notification struct {
	Receiver        string
	Status          alert.Status
	GroupKey        string
	ExternalURL     string
	TruncatedAlerts uint64
	Alerts          []alert.Alert
}

// message is the wire form: Alertmanager's template.Data plus the webhook's
// own fields. Unknown fields (notification_reason, routeLabels, ...) are
// ignored on purpose: newer Alertmanagers add them.
type message struct {
	*template.Data
	Version         *string `json:"version"`
	GroupKey        string  `json:"groupKey"`
	TruncatedAlerts uint64  `json:"truncatedAlerts"`
}

// ErrInvalid wraps every reason a payload is refused.
var ErrInvalid = errors.New("invalid webhook payload")

// Decode reads a webhook payload and checks it: valid JSON, version "4",
// at least one alert, and every alert well formed (its own status, labels,
// startsAt, a fingerprint that matches its labels or none, which is then
// computed). Errors wrap ErrInvalid and name the offending alert.
func Decode(r io.Reader) (*Notification, error) {
	var m message
	if err := json.NewDecoder(r).Decode(&m); err != nil {
		if errors.Is(err, io.EOF) {
			return nil, fmt.Errorf("%w: empty body", ErrInvalid)
		}
		return nil, fmt.Errorf("%w: malformed JSON: %v", ErrInvalid, err)
	}
	switch {
	case m.Version == nil:
		return nil, fmt.Errorf("%w: version: missing, want %q", ErrInvalid, SupportedVersion)
	case *m.Version != SupportedVersion:
		return nil, fmt.Errorf("%w: version: %q is not supported, want %q", ErrInvalid, *m.Version, SupportedVersion)
	case m.Data == nil || len(m.Alerts) == 0:
		return nil, fmt.Errorf("%w: alerts: no alerts", ErrInvalid)
	}
	n := &Notification{
		Receiver:        m.Receiver,
		Status:          alert.Status(m.Status),
		GroupKey:        m.GroupKey,
		ExternalURL:     m.ExternalURL,
		TruncatedAlerts: m.TruncatedAlerts,
		Alerts:          make([]alert.Alert, 0, len(m.Alerts)),
	}
	var errs []error
	for i, ta := range m.Alerts {
		a, err := alert.FromTemplate(ta)
		if err != nil {
			errs = append(errs, fmt.Errorf("alerts[%d].%w", i, err))
			continue
		}
		n.Alerts = append(n.Alerts, a)
	}
	if len(errs) > 0 {
		return nil, fmt.Errorf("%w: %w", ErrInvalid, errors.Join(errs...))
	}
	return n, nil
}
