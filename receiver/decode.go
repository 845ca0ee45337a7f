// Package receiver owns the Alertmanager webhook: decoding and checking
// payloads, authenticating the sender, and the durable inbox the engine
// consumes. It answers 202 only once the alerts are on disk and never runs
// anything slow on the request goroutine.
package receiver

import (
	"bytes"
	"encoding/json"
	"errors"
	"fmt"
	"io"
	"strings"
	"unicode/utf8"

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

// Decode reads a webhook payload and checks it: one JSON document and
// nothing after it but white space, valid UTF-8, version "4", at least one
// alert, and every alert well formed (its own status, labels, startsAt, a
// fingerprint that matches its labels or none, which is then computed; see
// alert.FromTemplate). Errors wrap ErrInvalid and name the offending alert.
func Decode(r io.Reader) (*Notification, error) {
	data, err := io.ReadAll(r)
	if err != nil {
		return nil, fmt.Errorf("read payload: %w", err)
	}
	var m message
	dec := json.NewDecoder(bytes.NewReader(data))
	if err := dec.Decode(&m); err != nil {
		if errors.Is(err, io.EOF) {
			return nil, fmt.Errorf("%w: empty body", ErrInvalid)
		}
		return nil, fmt.Errorf("%w: malformed JSON: %v", ErrInvalid, err)
	}
	rest := data[dec.InputOffset():]
	if trimmed := bytes.TrimLeft(rest, " \t\r\n"); len(trimmed) > 0 {
		at := len(data) - len(trimmed)
		return nil, fmt.Errorf("%w: data after the first JSON document at offset %d", ErrInvalid, at)
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
	validUTF8 := utf8.Valid(data)
	var errs []error
	for i, ta := range m.Alerts {
		err := replacedText(ta, validUTF8)
		a := alert.Alert{}
		if err == nil {
			a, err = alert.FromTemplate(ta)
		}
		if err != nil {
			errs = append(errs, fmt.Errorf("alerts[%d].%w", i, err))
			continue
		}
		n.Alerts = append(n.Alerts, a)
	}
	if len(errs) == 0 && !validUTF8 {
		errs = append(errs, fmt.Errorf("body is not valid UTF-8 at offset %d", invalidUTF8At(data)))
	}
	if len(errs) > 0 {
		return nil, fmt.Errorf("%w: %w", ErrInvalid, errors.Join(errs...))
	}
	return n, nil
}

// replacedText finds, in a body that is not valid UTF-8, the label or
// annotation the bad bytes were in: encoding/json replaces them with
// U+FFFD, which would otherwise surface as a fingerprint that does not
// match. A name or value that held U+FFFD itself in such a body is taken
// for the culprit too; either way the body is refused.
func replacedText(ta template.Alert, validUTF8 bool) error {
	if validUTF8 {
		return nil
	}
	for _, f := range []struct {
		name string
		kv   template.KV
	}{{"labels", ta.Labels}, {"annotations", ta.Annotations}} {
		for _, p := range f.kv.SortedPairs() {
			inName := strings.ContainsRune(p.Name, utf8.RuneError)
			if inName || strings.ContainsRune(p.Value, utf8.RuneError) {
				return &alert.TextError{Field: f.name, Name: p.Name, InName: inName, Problem: "is not valid UTF-8"}
			}
		}
	}
	return nil
}

// invalidUTF8At returns the offset of the first byte of data that is not
// part of a valid UTF-8 sequence.
func invalidUTF8At(data []byte) int {
	for i := 0; i < len(data); {
		r, size := utf8.DecodeRune(data[i:])
		if r == utf8.RuneError && size <= 1 {
			return i
		}
		i += size
	}
	return len(data)
}
