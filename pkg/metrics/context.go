package metrics

import "context"

type contextKey struct{}

// NewContext returns ctx carrying r, for code deep in a call to record on
// the invocation's Recorder.
func NewContext(ctx context.Context, r *Recorder) context.Context {
	return context.WithValue(ctx, contextKey{}, r)
}

// FromContext returns the Recorder ctx carries, or nil. A nil Recorder
// records nothing, so callers need not check.
func FromContext(ctx context.Context) *Recorder {
	r, _ := ctx.Value(contextKey{}).(*Recorder)
	return r
}
