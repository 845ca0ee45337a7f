package redact

import (
	"context"
	"fmt"
	"log/slog"
)

// Handler returns a slog.Handler that passes the message and every
// attribute (strings, errors, Stringers and any value whose text holds a
// secret) through r's String before next sees them. Wrapping a handler it
// returned gives one handler knowing the values of both Redactors.
func (r *Redactor) Handler(next slog.Handler) slog.Handler {
	if h, ok := next.(*handler); ok {
		var values []string
		if r != nil {
			values = r.values
		}
		return &handler{r: h.r.With(values...), next: h.next}
	}
	return &handler{r: r, next: next}
}

type handler struct {
	r    *Redactor
	next slog.Handler
}

func (h *handler) Enabled(ctx context.Context, l slog.Level) bool { return h.next.Enabled(ctx, l) }

func (h *handler) Handle(ctx context.Context, rec slog.Record) error {
	out := slog.NewRecord(rec.Time, rec.Level, h.r.String(rec.Message), rec.PC)
	rec.Attrs(func(a slog.Attr) bool {
		out.AddAttrs(h.attr(a))
		return true
	})
	return h.next.Handle(ctx, out)
}

func (h *handler) WithAttrs(as []slog.Attr) slog.Handler {
	shown := make([]slog.Attr, len(as))
	for i, a := range as {
		shown[i] = h.attr(a)
	}
	return &handler{r: h.r, next: h.next.WithAttrs(shown)}
}

func (h *handler) WithGroup(name string) slog.Handler {
	return &handler{r: h.r, next: h.next.WithGroup(name)}
}

// attr returns a with its value redacted; a value with nothing to hide is
// kept as it is, so handlers format it as usual.
func (h *handler) attr(a slog.Attr) slog.Attr {
	v := a.Value.Resolve()
	switch v.Kind() {
	case slog.KindString:
		return slog.String(a.Key, h.r.String(v.String()))
	case slog.KindGroup:
		as := v.Group()
		shown := make([]any, len(as))
		for i, g := range as {
			shown[i] = h.attr(g)
		}
		return slog.Group(a.Key, shown...)
	case slog.KindAny:
		var text string
		switch x := v.Any().(type) {
		case error:
			text = x.Error()
		case fmt.Stringer:
			text = x.String()
		default:
			text = fmt.Sprintf("%+v", x)
		}
		if shown := h.r.String(text); shown != text {
			return slog.String(a.Key, shown)
		}
	}
	return slog.Attr{Key: a.Key, Value: v}
}
