package provider

import (
	"context"
	"errors"
	"fmt"
	"net/url"
	"sync"
	"time"

	"golang.org/x/oauth2"
	"golang.org/x/sync/singleflight"
)

// ErrDiscovery wraps the discovery failure that kept Source's Refresh or
// TokenRequest from reaching the token endpoint.
var ErrDiscovery = errors.New("provider: discovery failed")

// Source discovers the provider on first use and keeps the result, so that
// Gatehouse can start while its provider is still coming up. Failed
// discoveries are retried at most once per RetryInterval; meanwhile Get
// returns the last error. It is safe for concurrent use.
type Source struct {
	opts  Options
	retry time.Duration
	group singleflight.Group

	mu       sync.Mutex
	p        *Provider
	lastErr  error
	lastTry  time.Time
	discover func(context.Context, Options) (*Provider, error)
}

// NewSource returns a Source for opts that retries a failed discovery after
// retry (5s when zero).
func NewSource(opts Options, retry time.Duration) *Source {
	if retry <= 0 {
		retry = 5 * time.Second
	}
	return &Source{opts: opts, retry: retry, discover: Discover}
}

// Get returns the discovered provider, discovering it when needed.
func (s *Source) Get(ctx context.Context) (*Provider, error) {
	s.mu.Lock()
	p, lastErr, lastTry := s.p, s.lastErr, s.lastTry
	s.mu.Unlock()
	if p != nil {
		return p, nil
	}
	if lastErr != nil && time.Since(lastTry) < s.retry {
		return nil, lastErr
	}
	v, err, _ := s.group.Do("discover", func() (any, error) {
		// Discovery outlives the request that triggered it.
		ctx := context.WithoutCancel(ctx)
		ctx, cancel := context.WithTimeout(ctx, 15*time.Second)
		defer cancel()
		p, err := s.discover(ctx, s.opts)
		s.mu.Lock()
		defer s.mu.Unlock()
		s.p, s.lastErr, s.lastTry = p, err, time.Now()
		return p, err
	})
	if err != nil {
		return nil, err
	}
	return v.(*Provider), nil
}

// Loaded returns the provider if discovery has succeeded, else nil.
func (s *Source) Loaded() *Provider {
	s.mu.Lock()
	defer s.mu.Unlock()
	return s.p
}

// Refresh is the discovered provider's Refresh. When discovery fails, the
// error wraps ErrDiscovery.
func (s *Source) Refresh(ctx context.Context, refreshToken string, extra url.Values) (*oauth2.Token, *IDToken, error) {
	p, err := s.Get(ctx)
	if err != nil {
		return nil, nil, fmt.Errorf("%w: %w", ErrDiscovery, err)
	}
	return p.Refresh(ctx, refreshToken, extra)
}

// TokenRequest is the discovered provider's TokenRequest. When discovery
// fails, the error wraps ErrDiscovery.
func (s *Source) TokenRequest(ctx context.Context, params url.Values, scopes []string) (*oauth2.Token, error) {
	p, err := s.Get(ctx)
	if err != nil {
		return nil, fmt.Errorf("%w: %w", ErrDiscovery, err)
	}
	return p.TokenRequest(ctx, params, scopes)
}
