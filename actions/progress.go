package actions

import "context"

type progressKey struct{}

// WithProgress returns ctx carrying report, which an action calls through
// Report to say something worth keeping while it still runs, such as the
// PID of a child it started. The engine writes each report into the step's
// record at once, so a crash mid-step leaves a record that says it.
func WithProgress(ctx context.Context, report func(key, value string)) context.Context {
	return context.WithValue(ctx, progressKey{}, report)
}

// Report hands key and value to the reporter of ctx, if any. It returns
// once the report is recorded. The value must not hold a secret.
func Report(ctx context.Context, key, value string) {
	if report, ok := ctx.Value(progressKey{}).(func(key, value string)); ok {
		report(key, value)
	}
}

// Interrupter is implemented by actions that can tell what an attempt cut
// short by a crash of the daemon may have left behind, from the details it
// reported with Report: "process group 4242 was still running". The engine
// asks when it closes such a step after a restart; "" means nothing known.
type Interrupter interface {
	Interrupted(details map[string]string) string
}
