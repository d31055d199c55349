package tokens

import (
	"context"
	"errors"
	"testing"
	"time"

	"golang.org/x/oauth2"

	"github.com/gatehouse-bff/gatehouse/internal/testkit"
)

func TestTokenCacheStartsOverPastItsBound(t *testing.T) {
	clock := testkit.NewClock(time.Date(2030, 1, 2, 3, 4, 5, 0, time.UTC))
	c := newTokenCache(clock.Now, time.Minute)
	c.max = 2
	fetches := 0
	fetch := func(context.Context) (*oauth2.Token, error) {
		fetches++
		return &oauth2.Token{AccessToken: "t", Expiry: clock.Now().Add(time.Hour)}, nil
	}
	steps := []struct {
		key         string
		wantFetches int
	}{
		{"a", 1}, {"b", 2}, {"a", 2}, {"b", 2},
		{"c", 3}, // past the bound: a and b are dropped
		{"c", 3}, {"a", 4},
	}
	for i, st := range steps {
		if _, err := c.get(context.Background(), st.key, fetch); err != nil {
			t.Fatal(err)
		}
		if fetches != st.wantFetches {
			t.Fatalf("step %d (%s): fetches = %d, want %d", i, st.key, fetches, st.wantFetches)
		}
	}
	if len(c.m) > c.max {
		t.Errorf("cache holds %d tokens, bound %d", len(c.m), c.max)
	}
}

func TestTokenCacheFetchRunsDetachedAndKeepsNoError(t *testing.T) {
	clock := testkit.NewClock(time.Time{})
	c := newTokenCache(clock.Now, time.Minute)
	ctx, cancel := context.WithCancel(context.Background())
	cancel()
	errFetch := errors.New("provider down")
	_, err := c.get(ctx, "k", func(ctx context.Context) (*oauth2.Token, error) {
		if ctx.Err() != nil {
			t.Error("fetch saw the caller's cancellation")
		}
		return nil, errFetch
	})
	if !errors.Is(err, errFetch) {
		t.Fatalf("get error = %v, want the fetch's", err)
	}
	if len(c.m) != 0 {
		t.Errorf("a failed fetch left %d cached tokens", len(c.m))
	}
}
