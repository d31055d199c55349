package boltstore

import (
	"bytes"
	"context"
	"errors"
	"fmt"
	"os"
	"path/filepath"
	"slices"
	"strings"
	"testing"
	"time"

	bolt "go.etcd.io/bbolt"

	"github.com/gatehouse-bff/gatehouse/internal/testkit"
	"github.com/gatehouse-bff/gatehouse/store"
	"github.com/gatehouse-bff/gatehouse/store/storetest"
)

func open(t testing.TB, path string, opts Options) *boltStore {
	t.Helper()
	s, err := openFile(path, opts)
	if err != nil {
		t.Fatalf("Open: %v", err)
	}
	t.Cleanup(func() { s.Close() })
	return s
}

func TestConformance(t *testing.T) {
	storetest.Run(t, func(t *testing.T) store.Store {
		return open(t, filepath.Join(t.TempDir(), "sessions.db"), Options{})
	})
}

func newClock() *testkit.Clock { return testkit.NewClock(time.Date(2030, 1, 2, 3, 4, 5, 6, time.UTC)) }

func TestRecordsSurviveRestart(t *testing.T) {
	ctx := t.Context()
	path := filepath.Join(t.TempDir(), "sessions.db")
	c := newClock()
	s, err := Open(path, Options{Now: c.Now, SweepInterval: -1})
	if err != nil {
		t.Fatal(err)
	}
	recs := []*store.Record{
		{Key: "a", Issuer: "https://idp", Subject: "alice", SID: "sid-1", LastSeen: c.Now(), ExpiresAt: c.Now().Add(time.Hour), Data: []byte("sealed a")},
		{Key: "b", Issuer: "https://idp", Subject: "alice", SID: "", LastSeen: c.Now(), ExpiresAt: c.Now().Add(2 * time.Hour), Data: []byte("sealed b")},
		{Key: "c", Issuer: "https://idp", Subject: "bob", SID: "sid-1", LastSeen: time.Time{}, ExpiresAt: c.Now().Add(3 * time.Hour), Data: nil},
	}
	for _, r := range recs {
		if err := s.Create(ctx, r); err != nil {
			t.Fatal(err)
		}
	}
	if ok, err := s.Once(ctx, "state-1", time.Hour); !ok || err != nil {
		t.Fatalf("Once = %v, %v", ok, err)
	}
	if err := s.Close(); err != nil {
		t.Fatalf("Close: %v", err)
	}

	s = open(t, path, Options{Now: c.Now, SweepInterval: -1})
	for _, want := range recs {
		got, err := s.Get(ctx, want.Key)
		if err != nil {
			t.Fatalf("Get(%q) after reopening: %v", want.Key, err)
		}
		if got.Issuer != want.Issuer || got.Subject != want.Subject || got.SID != want.SID ||
			!got.LastSeen.Equal(want.LastSeen) || !got.ExpiresAt.Equal(want.ExpiresAt) || !bytes.Equal(got.Data, want.Data) {
			t.Errorf("Get(%q) after reopening = %+v; want %+v", want.Key, got, want)
		}
	}
	if !recs[2].LastSeen.IsZero() {
		t.Fatal("test setup: record c should have a zero LastSeen")
	}
	if ok, err := s.Once(ctx, "state-1", time.Hour); ok || err != nil {
		t.Errorf("Once of a key used before the restart = %v, %v; want false", ok, err)
	}
	keys, err := s.DeleteMatching(ctx, store.Filter{Issuer: "https://idp", SID: "sid-1"})
	slices.Sort(keys)
	if err != nil || strings.Join(keys, ",") != "a,c" {
		t.Errorf("DeleteMatching by sid after reopening = %q, %v; want [a c]", keys, err)
	}
	list, err := s.List(ctx, store.Filter{Issuer: "https://idp", Subject: "alice"})
	if err != nil || len(list) != 1 || list[0].Key != "b" {
		t.Errorf("List after reopening = %v, %v; want [b]", list, err)
	}
}

func TestSecondOpenReportsLock(t *testing.T) {
	path := filepath.Join(t.TempDir(), "sessions.db")
	first := open(t, path, Options{SweepInterval: -1})

	second, err := Open(path, Options{OpenTimeout: 100 * time.Millisecond})
	if err == nil {
		second.Close()
		t.Fatal("a second Open of a locked file succeeded")
	}
	if !errors.Is(err, ErrLocked) {
		t.Fatalf("second Open error = %v; want ErrLocked", err)
	}
	if msg := err.Error(); !strings.Contains(msg, path) || !strings.Contains(msg, "locked by another process") {
		t.Fatalf("second Open error %q should name the path and the lock", msg)
	}

	if err := first.Close(); err != nil {
		t.Fatal(err)
	}
	third := open(t, path, Options{SweepInterval: -1})
	if err := third.Ping(t.Context()); err != nil {
		t.Fatalf("Ping after reopening a released file: %v", err)
	}
}

func TestNewFileIsPrivate(t *testing.T) {
	path := filepath.Join(t.TempDir(), "sessions.db")
	open(t, path, Options{SweepInterval: -1})
	fi, err := os.Stat(path)
	if err != nil {
		t.Fatal(err)
	}
	if perm := fi.Mode().Perm(); perm != 0o600 {
		t.Fatalf("new database file mode = %v; want 0600", perm)
	}
}

func TestOpenRejectsBadFiles(t *testing.T) {
	dir := t.TempDir()
	junk := filepath.Join(dir, "junk.db")
	if err := os.WriteFile(junk, bytes.Repeat([]byte("not a bolt file "), 1024), 0o600); err != nil {
		t.Fatal(err)
	}
	if s, err := Open(junk, Options{}); err == nil {
		s.Close()
		t.Error("Open of a file that is not a bbolt database succeeded")
	} else if !strings.Contains(err.Error(), junk) {
		t.Errorf("error %q does not name the file", err)
	}

	future := filepath.Join(dir, "future.db")
	db, err := bolt.Open(future, 0o600, nil)
	if err != nil {
		t.Fatal(err)
	}
	err = db.Update(func(tx *bolt.Tx) error {
		b, err := tx.CreateBucket(bucketMeta)
		if err != nil {
			return err
		}
		return b.Put(keyVersion, []byte{formatVersion + 1})
	})
	db.Close()
	if err != nil {
		t.Fatal(err)
	}
	if s, err := Open(future, Options{}); err == nil {
		s.Close()
		t.Error("Open of a file with a newer format version succeeded")
	} else if !strings.Contains(err.Error(), "format version") {
		t.Errorf("error %q does not mention the format version", err)
	}

	if _, err := Open(filepath.Join(dir, "missing-dir", "x.db"), Options{}); err == nil {
		t.Error("Open in a missing directory succeeded")
	}
}

func TestInjectedClockDecidesExpiry(t *testing.T) {
	ctx := t.Context()
	c := newClock()
	s := open(t, filepath.Join(t.TempDir(), "s.db"), Options{Now: c.Now, SweepInterval: -1})
	rec := &store.Record{Key: "k", Issuer: "iss", Subject: "sub", SID: "sid", LastSeen: c.Now(), ExpiresAt: c.Now().Add(10 * time.Minute), Data: []byte("d")}
	if err := s.Create(ctx, rec); err != nil {
		t.Fatal(err)
	}
	c.Advance(10*time.Minute - time.Nanosecond)
	if _, err := s.Get(ctx, "k"); err != nil {
		t.Fatalf("Get just before the deadline: %v", err)
	}
	c.Advance(time.Nanosecond)
	if _, err := s.Get(ctx, "k"); !errors.Is(err, store.ErrNotFound) {
		t.Fatalf("Get at the deadline = %v; want ErrNotFound", err)
	}
	if err := s.Update(ctx, rec); !errors.Is(err, store.ErrNotFound) {
		t.Fatalf("Update at the deadline = %v; want ErrNotFound", err)
	}

	for i, step := range []struct {
		advance time.Duration
		want    bool
	}{
		{0, true},
		{time.Minute - time.Nanosecond, false},
		{time.Nanosecond, true},
		{30 * time.Second, false},
	} {
		c.Advance(step.advance)
		got, err := s.Once(ctx, "jti", time.Minute)
		if err != nil || got != step.want {
			t.Fatalf("Once step %d = %v, %v; want %v", i, got, err, step.want)
		}
	}
	if _, err := s.Once(ctx, "x", 0); err == nil {
		t.Fatal("Once with a zero ttl succeeded; want an error")
	}
}

// count returns the number of entries in each bucket.
func count(t *testing.T, s *boltStore) map[string]int {
	t.Helper()
	n := map[string]int{}
	err := s.db.View(func(tx *bolt.Tx) error {
		return tx.ForEach(func(name []byte, b *bolt.Bucket) error {
			n[string(name)] = b.Stats().KeyN
			return nil
		})
	})
	if err != nil {
		t.Fatal(err)
	}
	return n
}

func TestSweepLeavesNoStaleEntries(t *testing.T) {
	ctx := t.Context()
	c := newClock()
	s := open(t, filepath.Join(t.TempDir(), "s.db"), Options{Now: c.Now, SweepInterval: -1})
	for i := range 4 {
		r := &store.Record{Key: fmt.Sprint(i), Issuer: "iss", Subject: "sub", SID: "sid", ExpiresAt: c.Now().Add(time.Duration(i+1) * time.Minute)}
		if err := s.Create(ctx, r); err != nil {
			t.Fatal(err)
		}
	}
	// A record whose deadline moved is swept by its new deadline, not its
	// old one.
	if err := s.Update(ctx, &store.Record{Key: "0", Issuer: "iss", Subject: "sub", SID: "sid", LastSeen: c.Now(), ExpiresAt: c.Now().Add(time.Hour)}); err != nil {
		t.Fatal(err)
	}
	s.Once(ctx, "a", time.Minute)
	s.Once(ctx, "b", time.Hour)

	n, err := s.sweep(c.Now().Add(3 * time.Minute))
	if err != nil || n != 2 {
		t.Fatalf("sweep = %d, %v; want 2, nil", n, err)
	}
	want := map[string]int{"meta": 1, "records": 2, "sid": 2, "sub": 2, "expiry": 2, "once": 1, "once-expiry": 1}
	if got := count(t, s); fmt.Sprint(got) != fmt.Sprint(want) {
		t.Fatalf("bucket sizes after Sweep = %v; want %v", got, want)
	}
	if _, err := s.Get(ctx, "0"); err != nil {
		t.Fatalf("the touched record was swept: %v", err)
	}
	if _, err := s.DeleteMatching(ctx, store.Filter{Issuer: "iss", Subject: "sub"}); err != nil {
		t.Fatal(err)
	}
	want = map[string]int{"meta": 1, "records": 0, "sid": 0, "sub": 0, "expiry": 0, "once": 1, "once-expiry": 1}
	if got := count(t, s); fmt.Sprint(got) != fmt.Sprint(want) {
		t.Fatalf("bucket sizes after DeleteBySubject = %v; want %v", got, want)
	}
}

func TestBackgroundSweeper(t *testing.T) {
	ctx := t.Context()
	c := newClock()
	s, err := openFile(filepath.Join(t.TempDir(), "s.db"), Options{Now: c.Now, SweepInterval: time.Millisecond})
	if err != nil {
		t.Fatal(err)
	}
	defer s.Close()
	if err := s.Create(ctx, &store.Record{Key: "k", Issuer: "iss", Subject: "sub", ExpiresAt: c.Now().Add(time.Minute)}); err != nil {
		t.Fatal(err)
	}
	c.Advance(time.Hour)
	deadline := time.Now().Add(10 * time.Second)
	for count(t, s)["records"] != 0 {
		if time.Now().After(deadline) {
			t.Fatal("the background sweeper did not remove the expired record")
		}
		time.Sleep(time.Millisecond)
	}
	if err := s.Close(); err != nil {
		t.Fatalf("Close: %v", err)
	}
	if err := s.Close(); err != nil {
		t.Fatalf("second Close: %v", err)
	}
	if err := s.Ping(ctx); err == nil {
		t.Fatal("Ping of a closed store succeeded")
	}
}

func TestRecordEncodingRoundTrip(t *testing.T) {
	for _, r := range []*store.Record{
		{},
		{Issuer: "i", Subject: "s", SID: "x", LastSeen: time.Unix(1, 999999999), ExpiresAt: time.Unix(-5, 1), Data: []byte{0, 1, 2}},
		{Issuer: strings.Repeat("i", 300), Subject: "ü\x00", LastSeen: time.Date(9999, 12, 31, 23, 59, 59, 0, time.UTC), ExpiresAt: time.Date(1, 1, 1, 0, 0, 0, 1, time.UTC)},
	} {
		got, err := decodeRecord(encodeRecord(r))
		if err != nil {
			t.Fatalf("decode(encode(%+v)): %v", r, err)
		}
		if got.Issuer != r.Issuer || got.Subject != r.Subject || got.SID != r.SID || !got.LastSeen.Equal(r.LastSeen) || !got.ExpiresAt.Equal(r.ExpiresAt) || !bytes.Equal(got.Data, r.Data) {
			t.Errorf("decode(encode(%+v)) = %+v", r, got)
		}
	}
	for _, bad := range [][]byte{nil, {0}, {recordVersion}, {recordVersion, 5, 'a'}, {recordVersion, 0, 0, 0, 0, 0, 0, 0xff, 0xff, 0xff, 0xff, 0xff}} {
		if _, err := decodeRecord(bad); err == nil {
			t.Errorf("decodeRecord(%x) succeeded", bad)
		}
	}
}

func FuzzDecodeRecord(f *testing.F) {
	f.Add(encodeRecord(&store.Record{Issuer: "i", Subject: "s", SID: "x", Data: []byte("d")}))
	f.Add([]byte{recordVersion, 0x80})
	f.Fuzz(func(t *testing.T, b []byte) {
		r, err := decodeRecord(b)
		if err != nil {
			return
		}
		again, err := decodeRecord(encodeRecord(r))
		if err != nil || again.Issuer != r.Issuer || again.Subject != r.Subject || again.SID != r.SID ||
			!again.LastSeen.Equal(r.LastSeen) || !again.ExpiresAt.Equal(r.ExpiresAt) || !bytes.Equal(again.Data, r.Data) {
			t.Fatalf("re-encoding %x does not round trip: %+v, %v", b, again, err)
		}
	})
}

func BenchmarkGet(b *testing.B) {
	ctx := context.Background()
	s := open(b, filepath.Join(b.TempDir(), "bench.db"), Options{SweepInterval: -1})
	keys := make([]string, 1024)
	for i := range keys {
		keys[i] = fmt.Sprintf("key-%d", i)
		if err := s.Create(ctx, &store.Record{Key: keys[i], Issuer: "iss", Subject: fmt.Sprint(i % 64), SID: fmt.Sprint(i), LastSeen: time.Now(), ExpiresAt: time.Now().Add(time.Hour), Data: make([]byte, 2048)}); err != nil {
			b.Fatal(err)
		}
	}
	b.ReportAllocs()
	b.ResetTimer()
	b.RunParallel(func(pb *testing.PB) {
		i := 0
		for pb.Next() {
			if _, err := s.Get(ctx, keys[i%len(keys)]); err != nil {
				b.Fatal(err)
			}
			i++
		}
	})
}

// TestSweepInBatches: more expired records than one sweep transaction takes
// are all removed, each transaction holding at most sweepBatch of them.
func TestSweepInBatches(t *testing.T) {
	ctx := t.Context()
	c := newClock()
	s := open(t, filepath.Join(t.TempDir(), "s.db"), Options{Now: c.Now, SweepInterval: -1})
	const n = 2*sweepBatch + 17
	err := s.db.Update(func(tx *bolt.Tx) error {
		for i := range n {
			if err := putRecord(tx, &store.Record{Key: fmt.Sprint(i), Issuer: "iss", Subject: "sub", ExpiresAt: c.Now().Add(time.Minute)}); err != nil {
				return err
			}
		}
		return nil
	})
	if err != nil {
		t.Fatal(err)
	}
	live := &store.Record{Key: "live", Issuer: "iss", Subject: "sub", ExpiresAt: c.Now().Add(time.Hour)}
	if err := s.Create(ctx, live); err != nil {
		t.Fatal(err)
	}
	removed, more, err := s.sweepOnce(c.Now().Add(2 * time.Minute))
	if err != nil || removed != sweepBatch || !more {
		t.Fatalf("sweepOnce = %d, %v, %v; want %d, true, nil", removed, more, err, sweepBatch)
	}
	got, err := s.sweep(c.Now().Add(2 * time.Minute))
	if err != nil || got != n-sweepBatch {
		t.Fatalf("sweep = %d, %v; want %d", got, err, n-sweepBatch)
	}
	if _, err := s.Get(ctx, "live"); err != nil {
		t.Fatalf("the live record was swept: %v", err)
	}
	if got := count(t, s); got["records"] != 1 || got["expiry"] != 1 || got["sub"] != 1 {
		t.Fatalf("bucket sizes after sweeping = %v; want one record left", got)
	}
}

// TestReadsVersion1Records: records written before App existed still open,
// with App "".
func TestReadsVersion1Records(t *testing.T) {
	r := &store.Record{Issuer: "iss", Subject: "sub", SID: "sid", App: "shop", LastSeen: time.Unix(10, 5), ExpiresAt: time.Unix(20, 6), Data: []byte("sealed")}
	b := []byte{recordVersionV1}
	b = appendString(b, r.Issuer)
	b = appendString(b, r.Subject)
	b = appendString(b, r.SID)
	b = appendTime(b, r.LastSeen)
	b = appendTime(b, r.ExpiresAt)
	b = append(b, r.Data...)
	got, err := decodeRecord(b)
	if err != nil {
		t.Fatal(err)
	}
	if got.App != "" || got.SID != "sid" || string(got.Data) != "sealed" || !got.ExpiresAt.Equal(r.ExpiresAt) {
		t.Fatalf("decoded v1 record = %+v", got)
	}
	v2, err := decodeRecord(encodeRecord(r))
	if err != nil || v2.App != "shop" {
		t.Fatalf("decoded v2 record = %+v, %v; want App shop", v2, err)
	}
}

// TestPageSize: a new file gets 2 KB pages; a file made with another page
// size (earlier versions used the operating system's, 4 KB) keeps it and
// works as before.
func TestPageSize(t *testing.T) {
	dir := t.TempDir()
	fresh := filepath.Join(dir, "fresh.db")
	s := open(t, fresh, Options{SweepInterval: -1})
	if got := s.db.Info().PageSize; got != pageSize {
		t.Errorf("new file page size %d; want %d", got, pageSize)
	}

	old := filepath.Join(dir, "old.db")
	db, err := bolt.Open(old, 0o600, &bolt.Options{PageSize: 4096})
	if err != nil {
		t.Fatal(err)
	}
	if err := db.Update(initBuckets); err != nil {
		t.Fatal(err)
	}
	db.Close()
	s = open(t, old, Options{SweepInterval: -1})
	if got := s.db.Info().PageSize; got != 4096 {
		t.Errorf("existing file page size %d; want its own 4096", got)
	}
	ctx := t.Context()
	rec := &store.Record{Key: "k", Issuer: "iss", Subject: "sub", SID: "sid", LastSeen: time.Now(), ExpiresAt: time.Now().Add(time.Hour), Data: bytes.Repeat([]byte("x"), 2600)}
	if err := s.Create(ctx, rec); err != nil {
		t.Fatal(err)
	}
	got, err := s.Get(ctx, "k")
	if err != nil || !bytes.Equal(got.Data, rec.Data) {
		t.Fatalf("Get from the 4 KB file = %v, %v", got, err)
	}
}

// TestBatchedWritesRunOnce: concurrent Once calls for one key share
// batched transactions, and still exactly one of them is first.
func TestBatchedWritesRunOnce(t *testing.T) {
	s := open(t, filepath.Join(t.TempDir(), "once.db"), Options{SweepInterval: -1})
	ctx := t.Context()
	const n = 64
	results := make(chan bool, n)
	for range n {
		go func() {
			ok, err := s.Once(ctx, "state", time.Minute)
			results <- ok && err == nil
		}()
	}
	first := 0
	for range n {
		if <-results {
			first++
		}
	}
	if first != 1 {
		t.Fatalf("%d concurrent Once calls for one key were first; want 1", first)
	}
}
