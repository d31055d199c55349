package pgstore_test

import (
	"context"
	"crypto/rand"
	"crypto/sha256"
	"encoding/base64"
	"fmt"
	"testing"
	"time"

	"github.com/jackc/pgx/v5"

	"github.com/gatehouse-bff/gatehouse/internal/pgtest"
	"github.com/gatehouse-bff/gatehouse/store/pgstore"
)

// benchRecords and benchDataSize shape the benchmark table: 100k sessions
// of 2.5 KB sealed data each, as a busy deployment holds.
const (
	benchRecords  = 100_000
	benchDataSize = 2560
)

// BenchmarkGet measures one Get by key with benchRecords sessions in the
// table, and reports the table's size on disk per session (heap, TOAST and
// every index) as bytes/session.
func BenchmarkGet(b *testing.B) {
	dsn := pgtest.DSN(b)
	s, err := pgstore.Open(b.Context(), dsn, pgstore.Options{SweepInterval: -1})
	if err != nil {
		b.Fatal(err)
	}
	defer s.Close()
	keys, perSession := fillSessions(b, dsn, benchRecords)

	b.Run("serial", func(b *testing.B) {
		i := 0
		for b.Loop() {
			if _, err := s.Get(b.Context(), keys[i%len(keys)]); err != nil {
				b.Fatal(err)
			}
			i += 7919 // a prime: spread over the table
		}
		b.ReportMetric(perSession, "bytes/session")
	})
	b.Run("parallel", func(b *testing.B) {
		b.RunParallel(func(pb *testing.PB) {
			i := int(time.Now().UnixNano() % int64(len(keys)))
			for pb.Next() {
				if _, err := s.Get(context.Background(), keys[i%len(keys)]); err != nil {
					b.Error(err)
					return
				}
				i += 7919
			}
		})
		b.ReportMetric(perSession, "bytes/session")
	})
}

// fillSessions writes n sessions with COPY, the way the store lays them
// out, vacuums and analyses the table, and returns the keys and the
// table's size per session.
func fillSessions(b *testing.B, dsn string, n int) ([]string, float64) {
	b.Helper()
	ctx := b.Context()
	conn, err := pgx.Connect(ctx, dsn)
	if err != nil {
		b.Fatal(err)
	}
	defer conn.Close(context.Background())
	keys := make([]string, n)
	now := time.Now()
	rows := make([][]any, 0, n)
	for i := range n {
		cookie := make([]byte, 32)
		rand.Read(cookie)
		sum := sha256.Sum256(cookie)
		keys[i] = base64.RawURLEncoding.EncodeToString(sum[:])
		data := make([]byte, benchDataSize)
		rand.Read(data)
		rows = append(rows, []any{
			[]byte(keys[i]), []byte{}, []byte("https://idp.example.com/realms/main"),
			[]byte(fmt.Sprintf("user-%08d-0000-4000-8000-000000000000", i/3)),
			[]byte(fmt.Sprintf("sid-%032x", i)),
			now, now.Add(8 * time.Hour), data,
		})
	}
	if _, err := conn.CopyFrom(ctx, pgx.Identifier{"gatehouse_sessions"},
		[]string{"key", "app", "issuer", "subject", "sid", "last_seen", "expires_at", "data"},
		pgx.CopyFromRows(rows)); err != nil {
		b.Fatal(err)
	}
	if _, err := conn.Exec(ctx, "VACUUM ANALYZE gatehouse_sessions"); err != nil {
		b.Fatal(err)
	}
	var total, heap, toast, index int64
	if err := conn.QueryRow(ctx, `SELECT pg_total_relation_size(c.oid), pg_relation_size(c.oid),
		coalesce(pg_total_relation_size(nullif(c.reltoastrelid, 0)), 0), pg_indexes_size(c.oid)
		FROM pg_class c WHERE c.oid = 'gatehouse_sessions'::regclass`).Scan(&total, &heap, &toast, &index); err != nil {
		b.Fatal(err)
	}
	b.Logf("%d sessions of %d B data: total %d B (%.0f B/session): heap %d, toast %d, indexes %d",
		n, benchDataSize, total, float64(total)/float64(n), heap, toast, index)
	return keys, float64(total) / float64(n)
}
