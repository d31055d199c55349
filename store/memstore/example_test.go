package memstore_test

import (
	"context"
	"fmt"
	"time"

	"github.com/gatehouse-bff/gatehouse/store"
	"github.com/gatehouse-bff/gatehouse/store/memstore"
)

func Example() {
	ctx := context.Background()
	s := memstore.New(memstore.Options{})
	defer s.Close()

	now := time.Now()
	s.Create(ctx, &store.Record{
		Key:       "sha256-of-the-cookie-value",
		Issuer:    "https://idp.example",
		Subject:   "alice",
		SID:       "idp-session-1",
		LastSeen:  now,
		ExpiresAt: now.Add(time.Hour),
		Data:      []byte("sealed session"),
	})

	// A back-channel logout for the provider session ends it.
	ended, _ := s.DeleteMatching(ctx, store.Filter{Issuer: "https://idp.example", SID: "idp-session-1"})
	fmt.Println(len(ended))

	// A one-time value is accepted once.
	first, _ := s.Once(ctx, "state-abc", 10*time.Minute)
	replay, _ := s.Once(ctx, "state-abc", 10*time.Minute)
	fmt.Println(first, replay)
	// Output:
	// 1
	// true false
}
