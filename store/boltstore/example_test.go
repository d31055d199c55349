package boltstore_test

import (
	"context"
	"fmt"
	"log"
	"os"
	"path/filepath"
	"time"

	"github.com/gatehouse-bff/gatehouse/store"
	"github.com/gatehouse-bff/gatehouse/store/boltstore"
)

func Example() {
	dir, err := os.MkdirTemp("", "gatehouse-example")
	if err != nil {
		log.Fatal(err)
	}
	defer os.RemoveAll(dir)
	path := filepath.Join(dir, "sessions.db")
	ctx := context.Background()

	s, err := boltstore.Open(path, boltstore.Options{})
	if err != nil {
		log.Fatal(err)
	}
	key := "sha256-of-the-cookie-value"
	s.Create(ctx, &store.Record{Key: key, Issuer: "https://idp.example", Subject: "alice", ExpiresAt: time.Now().Add(time.Hour)})
	s.Close()

	// Sessions survive a restart.
	s, err = boltstore.Open(path, boltstore.Options{})
	if err != nil {
		log.Fatal(err)
	}
	defer s.Close()
	rec, err := s.Get(ctx, key)
	fmt.Println(rec.Subject, err)
	// Output: alice <nil>
}
