package pgstore_test

import (
	"context"
	"log"
	"time"

	"github.com/gatehouse-bff/gatehouse/store"
	"github.com/gatehouse-bff/gatehouse/store/pgstore"
)

func ExampleOpen() {
	ctx, cancel := context.WithTimeout(context.Background(), 10*time.Second)
	defer cancel()
	// The DSN is libpq's: a URL or key=value pairs. Use sslmode=verify-full
	// beyond loopback; search_path picks the schema for the tables.
	s, err := pgstore.Open(ctx, "postgres://gatehouse@db.internal:5432/gatehouse?sslmode=verify-full", pgstore.Options{
		// One prefix per deployment sharing the database.
		TablePrefix: "gatehouse_prod_",
	})
	if err != nil {
		log.Fatal(err)
	}
	defer s.Close()

	// Gatehouse uses it as its store and as the refresh lock shared by
	// its replicas.
	var _ store.Store = s
	var _ = s.(store.Locker)
}
