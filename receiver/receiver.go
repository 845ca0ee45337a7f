package receiver

import (
	"bytes"
	"context"
	"crypto/subtle"
	"encoding/json"
	"errors"
	"fmt"
	"io"
	"log/slog"
	"net/http"
	"strconv"
	"time"

	"github.com/prometheus/client_golang/prometheus"
	"github.com/prometheus/client_golang/prometheus/promauto"

	"github.com/selfheal/selfheal/alert"
)

// Sink is where accepted alerts go (an *Inbox). Put must return only once
// the batch is durable, and ErrFull when there is no room.
type Sink interface {
	Put(ctx context.Context, b alert.Batch) (alert.Batch, error)
}

// Auth is how the webhook authenticates Alertmanager, and the management
// endpoints their callers: a bearer token, basic auth, or nothing when
// Insecure is set explicitly. The zero value lets no request in.
type Auth struct {
	BearerToken string
	Username    string
	Password    string
	Insecure    bool
}

// Authenticated reports whether r carries the credentials a asks for, in
// constant time; with none configured, whether a is Insecure.
func (a Auth) Authenticated(r *http.Request) bool {
	switch {
	case a.BearerToken != "":
		const prefix = "Bearer "
		h := r.Header.Get("Authorization")
		return len(h) > len(prefix) && equalFold(h[:len(prefix)], prefix) &&
			subtle.ConstantTimeCompare([]byte(h[len(prefix):]), []byte(a.BearerToken)) == 1
	case a.Username != "":
		u, p, ok := r.BasicAuth()
		userOK := subtle.ConstantTimeCompare([]byte(u), []byte(a.Username)) == 1
		passOK := subtle.ConstantTimeCompare([]byte(p), []byte(a.Password)) == 1
		return ok && userOK && passOK
	default:
		return a.Insecure
	}
}

// Protect returns h behind a: a request without the credentials gets 401
// with the challenge of a's scheme and never reaches h.
func (a Auth) Protect(h http.Handler) http.Handler {
	return http.HandlerFunc(func(w http.ResponseWriter, r *http.Request) {
		if !a.Authenticated(r) {
			a.unauthorized(w)
			return
		}
		h.ServeHTTP(w, r)
	})
}

// unauthorized answers 401 with the challenge of a's scheme.
func (a Auth) unauthorized(w http.ResponseWriter) {
	if a.Username != "" {
		w.Header().Set("WWW-Authenticate", `Basic realm="selfheal"`)
	} else {
		w.Header().Set("WWW-Authenticate", `Bearer realm="selfheal"`)
	}
	writeJSON(w, http.StatusUnauthorized, map[string]string{"status": "error", "error": "missing or invalid credentials"})
}

// DefaultMaxBodyBytes caps a webhook body when the config sets no limit.
const DefaultMaxBodyBytes = 4 << 20

// Options configure a Receiver.
type Options struct {
	Auth Auth
	// MaxBodyBytes caps the request body; 0 means DefaultMaxBodyBytes.
	MaxBodyBytes int64
	// MaxAlerts is the most alerts one notification may hold: the inbox's
	// capacity (receiver.inbox_size), as a bigger one can never be stored.
	// 0 means no limit.
	MaxAlerts int
	// Ready reports whether the daemon accepts alerts; nil means always.
	Ready func() bool
	// PutTimeout bounds storing a batch; 0 means 5s.
	PutTimeout time.Duration
	Logger     *slog.Logger
	Registerer prometheus.Registerer
	Now        func() time.Time
}

// Receiver is the http.Handler for POST /api/v1/alerts. It is safe for
// concurrent use.
type Receiver struct {
	inbox Sink
	opts  Options
	log   *slog.Logger

	received  prometheus.Counter
	accepted  prometheus.Counter
	rejected  *prometheus.CounterVec
	alerts    prometheus.Counter
	truncated prometheus.Counter
}

// Rejection reasons, the values of selfheal_receiver_notifications_rejected_total{reason}.
const (
	ReasonMethod        = "method"
	ReasonUnauthorized  = "unauthorized"
	ReasonNotReady      = "not_ready"
	ReasonTooLarge      = "too_large"
	ReasonTooManyAlerts = "too_many_alerts"
	ReasonInvalid       = "invalid"
	ReasonInboxFull     = "inbox_full"
	ReasonStorage       = "storage"
)

// New returns a receiver that stores into inbox.
func New(inbox Sink, opts Options) *Receiver {
	if opts.MaxBodyBytes <= 0 {
		opts.MaxBodyBytes = DefaultMaxBodyBytes
	}
	if opts.PutTimeout <= 0 {
		opts.PutTimeout = 5 * time.Second
	}
	if opts.Logger == nil {
		opts.Logger = slog.New(slog.DiscardHandler)
	}
	if opts.Now == nil {
		opts.Now = time.Now
	}
	f := promauto.With(opts.Registerer)
	rc := &Receiver{
		inbox: inbox,
		opts:  opts,
		log:   opts.Logger.With("component", "receiver"),
		received: f.NewCounter(prometheus.CounterOpts{
			Name: "selfheal_receiver_notifications_received_total",
			Help: "Webhook requests received.",
		}),
		accepted: f.NewCounter(prometheus.CounterOpts{
			Name: "selfheal_receiver_notifications_accepted_total",
			Help: "Webhook notifications stored in the inbox and answered 202.",
		}),
		rejected: f.NewCounterVec(prometheus.CounterOpts{
			Name: "selfheal_receiver_notifications_rejected_total",
			Help: "Webhook requests refused, by reason.",
		}, []string{"reason"}),
		alerts: f.NewCounter(prometheus.CounterOpts{
			Name: "selfheal_receiver_alerts_accepted_total",
			Help: "Alerts stored in the inbox.",
		}),
		truncated: f.NewCounter(prometheus.CounterOpts{
			Name: "selfheal_receiver_truncated_alerts_total",
			Help: "Alerts Alertmanager left out of notifications (truncatedAlerts); they never reach selfheal.",
		}),
	}
	for _, r := range []string{ReasonMethod, ReasonUnauthorized, ReasonNotReady, ReasonTooLarge, ReasonTooManyAlerts, ReasonInvalid, ReasonInboxFull, ReasonStorage} {
		rc.rejected.WithLabelValues(r)
	}
	return rc
}

// ServeHTTP handles one webhook request: authenticate, read the capped
// body, decode, store, answer. Nothing else happens on this goroutine.
func (rc *Receiver) ServeHTTP(w http.ResponseWriter, r *http.Request) {
	rc.received.Inc()
	if r.Method != http.MethodPost {
		w.Header().Set("Allow", http.MethodPost)
		rc.reject(w, http.StatusMethodNotAllowed, ReasonMethod, "use POST")
		return
	}
	if !rc.opts.Auth.Authenticated(r) {
		rc.rejected.WithLabelValues(ReasonUnauthorized).Inc()
		rc.opts.Auth.unauthorized(w)
		return
	}
	if rc.opts.Ready != nil && !rc.opts.Ready() {
		rc.reject(w, http.StatusServiceUnavailable, ReasonNotReady, "not ready")
		return
	}
	body, err := io.ReadAll(http.MaxBytesReader(w, r.Body, rc.opts.MaxBodyBytes))
	if err != nil {
		var tooLarge *http.MaxBytesError
		if errors.As(err, &tooLarge) {
			rc.reject(w, http.StatusRequestEntityTooLarge, ReasonTooLarge, "body exceeds "+formatBytes(tooLarge.Limit))
			return
		}
		rc.reject(w, http.StatusBadRequest, ReasonInvalid, "read body: "+err.Error())
		return
	}
	n, err := Decode(bytes.NewReader(body))
	if err != nil {
		rc.reject(w, http.StatusBadRequest, ReasonInvalid, err.Error())
		return
	}
	if max := rc.opts.MaxAlerts; max > 0 && len(n.Alerts) > max {
		rc.reject(w, http.StatusRequestEntityTooLarge, ReasonTooManyAlerts, fmt.Sprintf(
			"notification has %d alerts, over the limit of %d (receiver.inbox_size): it could never be stored", len(n.Alerts), max))
		return
	}
	if n.TruncatedAlerts > 0 {
		rc.truncated.Add(float64(n.TruncatedAlerts))
		rc.log.Warn("alertmanager truncated the notification; the missing alerts will not be remediated",
			"truncated_alerts", n.TruncatedAlerts, "receiver", n.Receiver, "group_key", n.GroupKey,
			"hint", "do not set max_alerts on a selfheal receiver")
	}
	ctx, cancel := context.WithTimeout(r.Context(), rc.opts.PutTimeout)
	defer cancel()
	b, err := rc.inbox.Put(ctx, alert.Batch{
		ReceivedAt: rc.opts.Now().UTC(),
		Receiver:   n.Receiver,
		GroupKey:   n.GroupKey,
		Alerts:     n.Alerts,
	})
	switch {
	case errors.Is(err, ErrFull):
		w.Header().Set("Retry-After", "5")
		rc.reject(w, http.StatusServiceUnavailable, ReasonInboxFull, "inbox full, retry later")
		return
	case err != nil:
		rc.log.Error("store notification", "err", err)
		rc.reject(w, http.StatusServiceUnavailable, ReasonStorage, "could not store the alerts, retry later")
		return
	}
	rc.accepted.Inc()
	rc.alerts.Add(float64(len(n.Alerts)))
	rc.log.Debug("notification accepted", "seq", b.Seq, "alerts", len(n.Alerts), "group_key", n.GroupKey)
	writeJSON(w, http.StatusAccepted, map[string]any{"status": "accepted", "alerts": len(n.Alerts)})
}

func (rc *Receiver) reject(w http.ResponseWriter, code int, reason, msg string) {
	rc.rejected.WithLabelValues(reason).Inc()
	if code != http.StatusUnauthorized {
		rc.log.Warn("notification rejected", "status", code, "reason", reason, "err", msg)
	}
	writeJSON(w, code, map[string]string{"status": "error", "error": msg})
}

func equalFold(a, b string) bool { return bytes.EqualFold([]byte(a), []byte(b)) }

func writeJSON(w http.ResponseWriter, code int, v any) {
	w.Header().Set("Content-Type", "application/json")
	w.WriteHeader(code)
	_ = json.NewEncoder(w).Encode(v)
}

func formatBytes(n int64) string {
	switch {
	case n >= 1<<20 && n%(1<<20) == 0:
		return strconv.FormatInt(n>>20, 10) + "MiB"
	case n >= 1<<10 && n%(1<<10) == 0:
		return strconv.FormatInt(n>>10, 10) + "KiB"
	default:
		return strconv.FormatInt(n, 10) + " bytes"
	}
}
