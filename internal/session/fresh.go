package session

import "context"

type freshKey struct{}

// WithFreshRead returns a context that asks stores with a local read cache
// to read from their backend: for the reload before a refresh, where a
// cached record could hold a refresh token another replica already spent.
func WithFreshRead(ctx context.Context) context.Context {
	return context.WithValue(ctx, freshKey{}, true)
}

// FreshRead reports whether ctx asks for a read from the backend.
func FreshRead(ctx context.Context) bool {
	v, _ := ctx.Value(freshKey{}).(bool)
	return v
}
