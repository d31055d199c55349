package storetest

import (
	"bytes"
	"context"
	"crypto/rand"
	"encoding/hex"
	"errors"
	"fmt"
	"runtime"
	"slices"
	"strings"
	"sync"
	"sync/atomic"
	"testing"
	"time"

	"github.com/gatehouse-bff/gatehouse/store"
)

// Run runs the conformance suite against the stores that newStore returns.
//
// newStore is called once per subtest. It may return a fresh store or a
// shared one: every subtest works on keys and issuers of its own, and
// subtests do not run in parallel. newStore registers any cleanup (Close, a
// temporary file) with t.Cleanup; Run never closes a store. The store must
// read the real clock, because a few subtests let short deadlines pass.
//
// Sweeping expired records is each store's own business, with its own
// interval, so Run checks only that expired records are never returned; a
// backend tests its sweeper in its own tests.
func Run(t *testing.T, newStore func(t *testing.T) store.Store) {
	t.Helper()
	tests := []struct {
		name string
		fn   func(f *fixture)
	}{
		{"CreateGet", testCreateGet},
		{"GetMissing", testGetMissing},
		{"RecordsAreCopied", testRecordsAreCopied},
		{"CreateExistingKey", testCreateExistingKey},
		{"ExpiredIsNotFound", testExpiredIsNotFound},
		{"ExpiresWithTime", testExpiresWithTime},
		{"Update", testUpdate},
		{"UpdateNeverResurrects", testUpdateNeverResurrects},
		{"UpdateMovesIndexes", testUpdateMovesIndexes},
		{"Touch", testTouch},
		{"TouchNeverResurrects", testTouchNeverResurrects},
		{"UpdateWithoutDataKeepsData", testUpdateWithoutDataKeepsData},
		{"FilterByApp", testFilterByApp},
		{"FilterBySubjectAndSID", testFilterBySubjectAndSID},
		{"InvalidFilter", testInvalidFilter},
		{"Delete", testDelete},
		{"DeleteBySID", testDeleteBySID},
		{"DeleteBySIDEmpty", testDeleteBySIDEmpty},
		{"DeleteBySubject", testDeleteBySubject},
		{"DeleteByIndexWithExpired", testDeleteByIndexWithExpired},
		{"IndexKeysUnambiguous", testIndexKeysUnambiguous},
		{"LargeData", testLargeData},
		{"EmptyData", testEmptyData},
		{"OddKeys", testOddKeys},
		{"ConcurrentMixed", testConcurrentMixed},
		{"ConcurrentUpdateDelete", testConcurrentUpdateDelete},
		{"ListBySubject", testListBySubject},
		{"Once", testOnce},
		{"OnceExpires", testOnceExpires},
		{"OnceConcurrent", testOnceConcurrent},
		{"Ping", testPing},
	}
	for _, tc := range tests {
		t.Run(tc.name, func(t *testing.T) {
			s := newStore(t)
			if s == nil {
				t.Fatal("storetest: newStore returned nil")
			}
			tc.fn(newFixture(t, s))
		})
	}
}

// fixture is one subtest's view of the store under test: a context, a
// namespace that makes its keys and issuers unique, and helpers.
type fixture struct {
	t   *testing.T
	s   store.Store
	ctx context.Context
	ns  string
	iss string
}

func newFixture(t *testing.T, s store.Store) *fixture {
	ns := randHex(8)
	return &fixture{t: t, s: s, ctx: t.Context(), ns: ns, iss: "https://idp.example/" + ns}
}

func randHex(n int) string {
	b := make([]byte, n)
	rand.Read(b)
	return hex.EncodeToString(b)
}

// key returns a store key unique to this subtest.
func (f *fixture) key(name string) string { return "k-" + f.ns + "-" + name }

// rec returns a record of f's issuer that expires ttl from now (in the past
// for a negative ttl) with unique data.
func (f *fixture) rec(name, subject, sid string, ttl time.Duration) *store.Record {
	now := time.Now()
	key := f.key(name)
	return &store.Record{
		Key:       key,
		Issuer:    f.iss,
		Subject:   subject,
		SID:       sid,
		LastSeen:  now,
		ExpiresAt: now.Add(ttl),
		Data:      []byte("sealed:" + key + ":" + randHex(6)),
	}
}

func clone(r *store.Record) *store.Record {
	c := *r
	c.Data = bytes.Clone(r.Data)
	return &c
}

func (f *fixture) create(r *store.Record) {
	f.t.Helper()
	if err := f.s.Create(f.ctx, r); err != nil {
		f.t.Fatalf("Create(%q): %v", r.Key, err)
	}
}

func (f *fixture) mustGet(key string) *store.Record {
	f.t.Helper()
	r, err := f.s.Get(f.ctx, key)
	if err != nil {
		f.t.Fatalf("Get(%q): %v", key, err)
	}
	if r == nil {
		f.t.Fatalf("Get(%q) returned a nil record and no error", key)
	}
	return r
}

func (f *fixture) wantGone(key string) {
	f.t.Helper()
	r, err := f.s.Get(f.ctx, key)
	if !errors.Is(err, store.ErrNotFound) {
		f.t.Fatalf("Get(%q) = %+v, %v; want store.ErrNotFound", key, r, err)
	}
}

// wantRecord checks that got holds want's fields. Stores keep times to at
// least millisecond precision.
func (f *fixture) wantRecord(got, want *store.Record) {
	f.t.Helper()
	if got.Key != want.Key || got.App != want.App || got.Issuer != want.Issuer || got.Subject != want.Subject || got.SID != want.SID {
		f.t.Errorf("record identity = (%q, %q, %q, %q, %q); want (%q, %q, %q, %q, %q)",
			got.Key, got.App, got.Issuer, got.Subject, got.SID, want.Key, want.App, want.Issuer, want.Subject, want.SID)
	}
	if !sameTime(got.LastSeen, want.LastSeen) {
		f.t.Errorf("record %q LastSeen = %v; want %v", want.Key, got.LastSeen, want.LastSeen)
	}
	if !sameTime(got.ExpiresAt, want.ExpiresAt) {
		f.t.Errorf("record %q ExpiresAt = %v; want %v", want.Key, got.ExpiresAt, want.ExpiresAt)
	}
	if !bytes.Equal(got.Data, want.Data) {
		f.t.Errorf("record %q Data = %s; want %s", want.Key, abbrev(got.Data), abbrev(want.Data))
	}
}

func sameTime(a, b time.Time) bool {
	return a.Truncate(time.Millisecond).Equal(b.Truncate(time.Millisecond))
}

func abbrev(b []byte) string {
	if len(b) > 64 {
		return fmt.Sprintf("%q... (%d bytes)", b[:64], len(b))
	}
	return fmt.Sprintf("%q", b)
}

// wantKeys checks that got and want hold the same keys in any order.
func (f *fixture) wantKeys(what string, got []string, want ...string) {
	f.t.Helper()
	g, w := slices.Clone(got), slices.Clone(want)
	slices.Sort(g)
	slices.Sort(w)
	if !slices.Equal(g, w) {
		f.t.Errorf("%s returned keys %q; want %q", what, g, w)
	}
}

// touch moves a record's deadlines the way the session manager does: read
// the live record, then Update it.
func (f *fixture) touch(key string, lastSeen, expiresAt time.Time) error {
	r, err := f.s.Get(f.ctx, key)
	if err != nil {
		return err
	}
	r.LastSeen, r.ExpiresAt = lastSeen, expiresAt
	return f.s.Update(f.ctx, r)
}

func (f *fixture) deleteMatching(flt store.Filter, want ...string) {
	f.t.Helper()
	got, err := f.s.DeleteMatching(f.ctx, flt)
	if err != nil {
		f.t.Fatalf("DeleteMatching(%+v): %v", flt, err)
	}
	if got == nil {
		f.t.Errorf("DeleteMatching(%+v) returned nil keys; want an empty slice", flt)
	}
	f.wantKeys(fmt.Sprintf("DeleteMatching(%+v)", flt), got, want...)
}

func (f *fixture) deleteBySID(iss, sid string, want ...string) {
	f.t.Helper()
	if sid == "" {
		f.wantInvalid(store.Filter{Issuer: iss})
		return
	}
	f.deleteMatching(store.Filter{Issuer: iss, SID: sid}, want...)
}

func (f *fixture) deleteBySubject(iss, sub string, want ...string) {
	f.t.Helper()
	f.deleteMatching(store.Filter{Issuer: iss, Subject: sub}, want...)
}

// wantInvalid checks that flt is refused by DeleteMatching and List.
func (f *fixture) wantInvalid(flt store.Filter) {
	f.t.Helper()
	if keys, err := f.s.DeleteMatching(f.ctx, flt); err == nil || len(keys) != 0 {
		f.t.Errorf("DeleteMatching(%+v) = %q, %v; want no keys and an error", flt, keys, err)
	}
	if recs, err := f.s.List(f.ctx, flt); err == nil || len(recs) != 0 {
		f.t.Errorf("List(%+v) = %d records, %v; want none and an error", flt, len(recs), err)
	}
}

// list checks List by subject.
func (f *fixture) list(iss, sub string, want ...string) {
	f.t.Helper()
	f.listMatching(store.Filter{Issuer: iss, Subject: sub}, want...)
}

func (f *fixture) listMatching(flt store.Filter, want ...string) {
	f.t.Helper()
	recs, err := f.s.List(f.ctx, flt)
	if err != nil {
		f.t.Fatalf("List(%+v): %v", flt, err)
	}
	if recs == nil {
		f.t.Errorf("List(%+v) returned a nil slice; want an empty one", flt)
	}
	keys := make([]string, 0, len(recs))
	for _, r := range recs {
		keys = append(keys, r.Key)
	}
	f.wantKeys(fmt.Sprintf("List(%+v)", flt), keys, want...)
}

func testCreateGet(f *fixture) {
	r := f.rec("a", "alice", "sid-1", time.Hour)
	r.LastSeen = r.LastSeen.Add(-time.Minute)
	f.create(clone(r))
	f.wantRecord(f.mustGet(r.Key), r)

	noSID := f.rec("b", "alice", "", time.Hour)
	f.create(clone(noSID))
	f.wantRecord(f.mustGet(noSID.Key), noSID)
}

func testGetMissing(f *fixture) {
	f.wantGone(f.key("never-created"))
}

// testRecordsAreCopied proves that a store does not share memory with its
// callers: changing a record after Create or after Get changes nothing stored.
func testRecordsAreCopied(f *fixture) {
	r := f.rec("a", "alice", "sid-1", time.Hour)
	want := clone(r)
	f.create(r)
	r.Data[0] ^= 0xff
	r.Subject = "mallory"
	f.wantRecord(f.mustGet(want.Key), want)

	got := f.mustGet(want.Key)
	got.Data[0] ^= 0xff
	got.SID = "changed"
	f.wantRecord(f.mustGet(want.Key), want)
}

// testCreateExistingKey: Create under a key that is already stored either
// fails and keeps the first record, or replaces it and moves its indexes.
func testCreateExistingKey(f *fixture) {
	first := f.rec("a", "alice", "sid-1", time.Hour)
	f.create(clone(first))
	second := clone(first)
	second.Subject, second.SID, second.Data = "bob", "sid-2", []byte("second")
	if err := f.s.Create(f.ctx, clone(second)); err != nil {
		f.wantRecord(f.mustGet(first.Key), first)
		f.list(f.iss, "alice", first.Key)
		return
	}
	f.wantRecord(f.mustGet(first.Key), second)
	f.list(f.iss, "alice")
	f.list(f.iss, "bob", first.Key)
	f.deleteBySID(f.iss, "sid-1")
	f.deleteBySubject(f.iss, "alice")
	f.wantRecord(f.mustGet(first.Key), second)
	f.deleteBySID(f.iss, "sid-2", first.Key)
	f.wantGone(first.Key)
}

func testExpiredIsNotFound(f *fixture) {
	past := f.rec("past", "alice", "sid-1", -time.Second)
	f.create(past)
	f.wantGone(past.Key)

	long := f.rec("long-ago", "alice", "sid-1", -240*time.Hour)
	f.create(long)
	f.wantGone(long.Key)

	zero := f.rec("zero", "alice", "sid-1", time.Hour)
	zero.ExpiresAt = time.Time{}
	f.create(zero)
	f.wantGone(zero.Key)

	f.list(f.iss, "alice")
}

// testExpiresWithTime lets a short deadline pass on the store's own clock.
func testExpiresWithTime(f *fixture) {
	r := f.rec("short", "alice", "sid-1", 300*time.Millisecond)
	f.create(r)
	if _, err := f.s.Get(f.ctx, r.Key); err != nil && time.Now().Before(r.ExpiresAt) {
		f.t.Fatalf("Get before the deadline: %v", err)
	}
	deadline := time.Now().Add(1500 * time.Millisecond)
	for {
		_, err := f.s.Get(f.ctx, r.Key)
		if errors.Is(err, store.ErrNotFound) {
			break
		}
		if err != nil {
			f.t.Fatalf("Get: %v", err)
		}
		if time.Now().After(deadline) {
			f.t.Fatalf("record %q still returned %v after its deadline", r.Key, time.Since(r.ExpiresAt))
		}
		time.Sleep(25 * time.Millisecond)
	}
	if err := f.touch(r.Key, time.Now(), time.Now().Add(time.Hour)); !errors.Is(err, store.ErrNotFound) {
		f.t.Fatalf("Touch after the deadline = %v; want store.ErrNotFound", err)
	}
	f.wantGone(r.Key)
}

func testUpdate(f *fixture) {
	r := f.rec("a", "alice", "sid-1", time.Hour)
	f.create(clone(r))
	u := clone(r)
	u.Data = []byte("rotated tokens")
	u.LastSeen = r.LastSeen.Add(time.Minute)
	u.ExpiresAt = r.ExpiresAt.Add(time.Hour)
	if err := f.s.Update(f.ctx, clone(u)); err != nil {
		f.t.Fatalf("Update: %v", err)
	}
	f.wantRecord(f.mustGet(r.Key), u)
	f.list(f.iss, "alice", r.Key)
	f.deleteBySID(f.iss, "sid-1", r.Key)
}

func testUpdateNeverResurrects(f *fixture) {
	missing := f.rec("missing", "alice", "sid-1", time.Hour)
	if err := f.s.Update(f.ctx, missing); !errors.Is(err, store.ErrNotFound) {
		f.t.Errorf("Update of a missing record = %v; want store.ErrNotFound", err)
	}
	f.wantGone(missing.Key)

	deleted := f.rec("deleted", "alice", "sid-1", time.Hour)
	f.create(clone(deleted))
	if err := f.s.Delete(f.ctx, deleted.Key); err != nil {
		f.t.Fatalf("Delete: %v", err)
	}
	if err := f.s.Update(f.ctx, deleted); !errors.Is(err, store.ErrNotFound) {
		f.t.Errorf("Update of a deleted record = %v; want store.ErrNotFound", err)
	}
	f.wantGone(deleted.Key)

	expired := f.rec("expired", "alice", "sid-1", -time.Minute)
	f.create(clone(expired))
	revived := clone(expired)
	revived.ExpiresAt = time.Now().Add(time.Hour)
	if err := f.s.Update(f.ctx, revived); !errors.Is(err, store.ErrNotFound) {
		f.t.Errorf("Update of an expired record = %v; want store.ErrNotFound", err)
	}
	f.wantGone(expired.Key)

	f.list(f.iss, "alice")
	got, err := f.s.DeleteMatching(f.ctx, store.Filter{Issuer: f.iss, Subject: "alice"})
	if err != nil {
		f.t.Fatalf("DeleteMatching: %v", err)
	}
	for _, k := range got {
		if k == missing.Key || k == deleted.Key {
			f.t.Errorf("DeleteBySubject found %q, which Update must not have stored", k)
		}
	}
}

func testUpdateMovesIndexes(f *fixture) {
	r := f.rec("a", "alice", "sid-1", time.Hour)
	f.create(clone(r))

	// New sid: the old sid no longer finds the record.
	u := clone(r)
	u.SID = "sid-2"
	if err := f.s.Update(f.ctx, clone(u)); err != nil {
		f.t.Fatalf("Update: %v", err)
	}
	f.deleteBySID(f.iss, "sid-1")
	f.wantRecord(f.mustGet(r.Key), u)

	// New subject.
	u.Subject = "alice-renamed"
	if err := f.s.Update(f.ctx, clone(u)); err != nil {
		f.t.Fatalf("Update: %v", err)
	}
	f.list(f.iss, "alice")
	f.list(f.iss, "alice-renamed", r.Key)
	f.deleteBySubject(f.iss, "alice")
	f.wantRecord(f.mustGet(r.Key), u)

	// New issuer.
	oldIss := u.Issuer
	u.Issuer = f.iss + "/other"
	if err := f.s.Update(f.ctx, clone(u)); err != nil {
		f.t.Fatalf("Update: %v", err)
	}
	f.deleteBySID(oldIss, "sid-2")
	f.deleteBySubject(oldIss, "alice-renamed")
	f.wantRecord(f.mustGet(r.Key), u)

	// Sid dropped: no sid finds it.
	u.SID = ""
	if err := f.s.Update(f.ctx, clone(u)); err != nil {
		f.t.Fatalf("Update: %v", err)
	}
	f.deleteBySID(u.Issuer, "sid-2")
	f.wantRecord(f.mustGet(r.Key), u)

	// Sid set again, then the new indexes find it.
	u.SID = "sid-3"
	if err := f.s.Update(f.ctx, clone(u)); err != nil {
		f.t.Fatalf("Update: %v", err)
	}
	f.deleteBySID(u.Issuer, "sid-3", r.Key)
	f.wantGone(r.Key)
	f.list(u.Issuer, "alice-renamed")
}

func testTouch(f *fixture) {
	r := f.rec("a", "alice", "sid-1", time.Hour)
	f.create(clone(r))
	ls := r.LastSeen.Add(90 * time.Second)
	exp := r.ExpiresAt.Add(2 * time.Hour)
	if err := f.touch(r.Key, ls, exp); err != nil {
		f.t.Fatalf("Touch: %v", err)
	}
	want := clone(r)
	want.LastSeen, want.ExpiresAt = ls, exp
	f.wantRecord(f.mustGet(r.Key), want)

	// A shorter deadline is allowed too.
	exp = r.ExpiresAt.Add(-30 * time.Minute)
	if err := f.touch(r.Key, ls, exp); err != nil {
		f.t.Fatalf("Touch: %v", err)
	}
	want.ExpiresAt = exp
	f.wantRecord(f.mustGet(r.Key), want)

	f.list(f.iss, "alice", r.Key)
	f.deleteBySID(f.iss, "sid-1", r.Key)

	if err := f.touch(f.key("missing"), ls, exp); !errors.Is(err, store.ErrNotFound) {
		f.t.Errorf("Touch of a missing record = %v; want store.ErrNotFound", err)
	}
	f.wantGone(f.key("missing"))
}

func testTouchNeverResurrects(f *fixture) {
	expired := f.rec("expired", "alice", "sid-1", -time.Minute)
	f.create(expired)
	if err := f.touch(expired.Key, time.Now(), time.Now().Add(time.Hour)); !errors.Is(err, store.ErrNotFound) {
		f.t.Errorf("Touch of an expired record = %v; want store.ErrNotFound", err)
	}
	f.wantGone(expired.Key)

	// A Touch into the past ends the session; a later Touch cannot undo it.
	r := f.rec("live", "alice", "sid-1", time.Hour)
	f.create(r)
	if err := f.touch(r.Key, time.Now(), time.Now().Add(-time.Second)); err != nil {
		f.t.Fatalf("Touch into the past: %v", err)
	}
	f.wantGone(r.Key)
	if err := f.touch(r.Key, time.Now(), time.Now().Add(time.Hour)); !errors.Is(err, store.ErrNotFound) {
		f.t.Errorf("Touch after an ending Touch = %v; want store.ErrNotFound", err)
	}
	f.wantGone(r.Key)

	deleted := f.rec("deleted", "alice", "sid-1", time.Hour)
	f.create(deleted)
	if err := f.s.Delete(f.ctx, deleted.Key); err != nil {
		f.t.Fatalf("Delete: %v", err)
	}
	if err := f.touch(deleted.Key, time.Now(), time.Now().Add(time.Hour)); !errors.Is(err, store.ErrNotFound) {
		f.t.Errorf("Touch of a deleted record = %v; want store.ErrNotFound", err)
	}
	f.wantGone(deleted.Key)
	f.list(f.iss, "alice")
}

func testDelete(f *fixture) {
	r := f.rec("a", "alice", "sid-1", time.Hour)
	keep := f.rec("b", "alice", "sid-2", time.Hour)
	f.create(clone(r))
	f.create(clone(keep))
	if err := f.s.Delete(f.ctx, r.Key); err != nil {
		f.t.Fatalf("Delete: %v", err)
	}
	f.wantGone(r.Key)
	if err := f.s.Delete(f.ctx, r.Key); err != nil {
		f.t.Errorf("second Delete = %v; want nil", err)
	}
	if err := f.s.Delete(f.ctx, f.key("never-created")); err != nil {
		f.t.Errorf("Delete of a missing key = %v; want nil", err)
	}
	f.wantRecord(f.mustGet(keep.Key), keep)
	f.list(f.iss, "alice", keep.Key)
	f.deleteBySID(f.iss, "sid-1")
	f.deleteBySubject(f.iss, "alice", keep.Key)
}

func testDeleteBySID(f *fixture) {
	other := f.iss + "/other"
	a1 := f.rec("a1", "alice", "sid-1", time.Hour)
	a2 := f.rec("a2", "alice", "sid-1", time.Hour) // a second device in the same IdP session
	b1 := f.rec("b1", "bob", "sid-1", time.Hour)   // sids are per issuer, not per subject
	a3 := f.rec("a3", "alice", "sid-2", time.Hour)
	a4 := f.rec("a4", "alice", "", time.Hour)
	o1 := f.rec("o1", "alice", "sid-1", time.Hour)
	o1.Issuer = other
	for _, r := range []*store.Record{a1, a2, b1, a3, a4, o1} {
		f.create(clone(r))
	}
	f.deleteBySID(f.iss, "sid-1", a1.Key, a2.Key, b1.Key)
	for _, k := range []string{a1.Key, a2.Key, b1.Key} {
		f.wantGone(k)
	}
	for _, r := range []*store.Record{a3, a4, o1} {
		f.wantRecord(f.mustGet(r.Key), r)
	}
	f.deleteBySID(f.iss, "sid-1")
	f.deleteBySID(f.iss, "SID-1")
	f.deleteBySID(f.iss, "sid-unknown")
	f.list(f.iss, "alice", a3.Key, a4.Key)
	f.list(other, "alice", o1.Key)
}

// testDeleteBySIDEmpty: records without a sid are not one group that an
// empty sid could end at once.
func testDeleteBySIDEmpty(f *fixture) {
	a := f.rec("a", "alice", "", time.Hour)
	b := f.rec("b", "bob", "", time.Hour)
	f.create(clone(a))
	f.create(clone(b))
	f.deleteBySID(f.iss, "")
	f.wantRecord(f.mustGet(a.Key), a)
	f.wantRecord(f.mustGet(b.Key), b)
}

func testDeleteBySubject(f *fixture) {
	other := f.iss + "/other"
	a1 := f.rec("a1", "alice", "sid-1", time.Hour)
	a2 := f.rec("a2", "alice", "sid-2", time.Hour)
	a3 := f.rec("a3", "alice", "", time.Hour)
	b1 := f.rec("b1", "bob", "sid-1", time.Hour)
	cased := f.rec("cased", "Alice", "sid-9", time.Hour)
	o1 := f.rec("o1", "alice", "sid-1", time.Hour)
	o1.Issuer = other
	for _, r := range []*store.Record{a1, a2, a3, b1, cased, o1} {
		f.create(clone(r))
	}
	f.deleteBySubject(f.iss, "alice", a1.Key, a2.Key, a3.Key)
	for _, k := range []string{a1.Key, a2.Key, a3.Key} {
		f.wantGone(k)
	}
	for _, r := range []*store.Record{b1, cased, o1} {
		f.wantRecord(f.mustGet(r.Key), r)
	}
	f.deleteBySubject(f.iss, "alice")
	f.deleteBySubject(f.iss, "nobody")
	// The sid index forgot the deleted records too.
	f.deleteBySID(f.iss, "sid-2")
	f.deleteBySID(f.iss, "sid-1", b1.Key)
	f.list(other, "alice", o1.Key)
}

// testDeleteByIndexWithExpired: expired records that match are removed (a
// store may or may not report them), live ones are always reported.
func testDeleteByIndexWithExpired(f *fixture) {
	live := f.rec("live", "alice", "sid-1", time.Hour)
	dead := f.rec("dead", "alice", "sid-1", -time.Minute)
	f.create(clone(live))
	f.create(clone(dead))
	got, err := f.s.DeleteMatching(f.ctx, store.Filter{Issuer: f.iss, SID: "sid-1"})
	if err != nil {
		f.t.Fatalf("DeleteMatching: %v", err)
	}
	got = slices.DeleteFunc(got, func(k string) bool { return k == dead.Key })
	f.wantKeys("DeleteBySID", got, live.Key)
	f.wantGone(live.Key)
	f.wantGone(dead.Key)

	live = f.rec("live2", "bob", "", time.Hour)
	dead = f.rec("dead2", "bob", "", -time.Minute)
	f.create(clone(live))
	f.create(clone(dead))
	got, err = f.s.DeleteMatching(f.ctx, store.Filter{Issuer: f.iss, Subject: "bob"})
	if err != nil {
		f.t.Fatalf("DeleteMatching: %v", err)
	}
	got = slices.DeleteFunc(got, func(k string) bool { return k == dead.Key })
	f.wantKeys("DeleteBySubject", got, live.Key)
	f.wantGone(live.Key)
}

// testIndexKeysUnambiguous: (issuer, subject) pairs that join to the same
// string must not share an index entry, whatever separator a store uses.
func testIndexKeysUnambiguous(f *fixture) {
	for i, sep := range []string{":", "|", "\x00", "/", " ", "\n", "}{", "%3A"} {
		r1 := f.rec(fmt.Sprintf("sep%d-1", i), "q", "q", time.Hour)
		r1.Issuer = f.iss + sep + "p"
		r2 := f.rec(fmt.Sprintf("sep%d-2", i), "p"+sep+"q", "p"+sep+"q", time.Hour)
		f.create(clone(r1))
		f.create(clone(r2))
		f.list(r2.Issuer, r2.Subject, r2.Key)
		f.list(r1.Issuer, r1.Subject, r1.Key)
		f.deleteBySID(r2.Issuer, r2.SID, r2.Key)
		f.wantRecord(f.mustGet(r1.Key), r1)
		f.create(clone(r2))
		f.deleteBySubject(r2.Issuer, r2.Subject, r2.Key)
		f.wantRecord(f.mustGet(r1.Key), r1)
		f.deleteBySubject(r1.Issuer, r1.Subject, r1.Key)
	}
	// Subject and sid are separate indexes even when the values match.
	r := f.rec("same", "x", "x", time.Hour)
	s := f.rec("sub-only", "y", "x-sid", time.Hour)
	f.create(clone(r))
	f.create(clone(s))
	f.deleteBySID(f.iss, "y")
	f.deleteBySubject(f.iss, "x-sid")
	f.wantRecord(f.mustGet(s.Key), s)
	f.wantRecord(f.mustGet(r.Key), r)
}

func testLargeData(f *fixture) {
	r := f.rec("big", "alice", "sid-1", time.Hour)
	r.Data = make([]byte, 64<<10)
	rand.Read(r.Data)
	f.create(clone(r))
	f.wantRecord(f.mustGet(r.Key), r)

	u := clone(r)
	u.Data = make([]byte, 64<<10+17)
	rand.Read(u.Data)
	if err := f.s.Update(f.ctx, clone(u)); err != nil {
		f.t.Fatalf("Update: %v", err)
	}
	f.wantRecord(f.mustGet(r.Key), u)
	if err := f.touch(r.Key, u.LastSeen, u.ExpiresAt); err != nil {
		f.t.Fatalf("Touch: %v", err)
	}
	f.wantRecord(f.mustGet(r.Key), u)
}

func testEmptyData(f *fixture) {
	r := f.rec("empty", "alice", "", time.Hour)
	r.Data = nil
	f.create(r)
	got := f.mustGet(r.Key)
	if len(got.Data) != 0 {
		f.t.Errorf("Data = %q; want empty", got.Data)
	}
}

func testOddKeys(f *fixture) {
	odd := []string{
		"with space",
		"slash/and:colon",
		"{hash-tag}",
		"*?[glob]\\",
		"unicode-ключ-🔑",
		"nul\x00byte",
		"newline\nand\ttab",
		"s:looks-like-a-prefix",
		"%2F%00",
		strings.Repeat("long", 256),
	}
	for i, o := range odd {
		r := f.rec(o, "sub "+o, "sid "+o, time.Hour)
		r.Issuer = f.iss + "/" + o
		f.create(clone(r))
		f.wantRecord(f.mustGet(r.Key), r)
		if err := f.touch(r.Key, r.LastSeen, r.ExpiresAt.Add(time.Minute)); err != nil {
			f.t.Fatalf("Touch(%q): %v", r.Key, err)
		}
		r.ExpiresAt = r.ExpiresAt.Add(time.Minute)
		r.Data = []byte(fmt.Sprintf("updated %d", i))
		if err := f.s.Update(f.ctx, clone(r)); err != nil {
			f.t.Fatalf("Update(%q): %v", r.Key, err)
		}
		f.wantRecord(f.mustGet(r.Key), r)
		f.list(r.Issuer, r.Subject, r.Key)
		f.deleteBySID(r.Issuer, r.SID, r.Key)
		f.wantGone(r.Key)
		f.create(clone(r))
		f.deleteBySubject(r.Issuer, r.Subject, r.Key)
		f.create(clone(r))
		if err := f.s.Delete(f.ctx, r.Key); err != nil {
			f.t.Fatalf("Delete(%q): %v", r.Key, err)
		}
		f.wantGone(r.Key)
	}
}

// testConcurrentMixed runs creates, updates, reads and deletes of many keys
// that share one subject and a few sids, then checks that the indexes hold
// exactly the records that survived.
func testConcurrentMixed(f *fixture) {
	const workers, perWorker = 8, 12
	var wg sync.WaitGroup
	want := make([][]*store.Record, workers)
	for w := range workers {
		wg.Go(func() {
			for i := range perWorker {
				r := f.rec(fmt.Sprintf("w%d-%d", w, i), "crowd", fmt.Sprintf("sid-%d", i%3), time.Hour)
				if err := f.s.Create(f.ctx, clone(r)); err != nil {
					f.t.Errorf("Create(%q): %v", r.Key, err)
					return
				}
				r.SID = "sid-moved"
				r.Data = []byte("final " + r.Key)
				if err := f.s.Update(f.ctx, clone(r)); err != nil {
					f.t.Errorf("Update(%q): %v", r.Key, err)
					return
				}
				if err := f.touch(r.Key, r.LastSeen, r.ExpiresAt); err != nil {
					f.t.Errorf("Touch(%q): %v", r.Key, err)
					return
				}
				got, err := f.s.Get(f.ctx, r.Key)
				if err != nil {
					f.t.Errorf("Get(%q): %v", r.Key, err)
					return
				}
				if !bytes.Equal(got.Data, r.Data) {
					f.t.Errorf("Get(%q).Data = %q; want %q", r.Key, got.Data, r.Data)
				}
				if i%2 == 0 {
					if err := f.s.Delete(f.ctx, r.Key); err != nil {
						f.t.Errorf("Delete(%q): %v", r.Key, err)
					}
					continue
				}
				want[w] = append(want[w], r)
			}
		})
	}
	wg.Wait()
	if f.t.Failed() {
		return
	}
	var keys []string
	for _, rs := range want {
		for _, r := range rs {
			f.wantRecord(f.mustGet(r.Key), r)
			keys = append(keys, r.Key)
		}
	}
	f.list(f.iss, "crowd", keys...)
	for i := range 3 {
		f.deleteBySID(f.iss, fmt.Sprintf("sid-%d", i))
	}
	f.deleteBySID(f.iss, "sid-moved", keys...)
	f.deleteBySubject(f.iss, "crowd")
}

// testConcurrentUpdateDelete races Updates and Touches of one key against
// its Delete: once everything settles, the record stays deleted and no index
// refers to it.
func testConcurrentUpdateDelete(f *fixture) {
	const rounds, updaters = 12, 4
	var stored atomic.Int64
	for round := range rounds {
		r := f.rec(fmt.Sprintf("race-%d", round), "racer", "race-sid", time.Hour)
		f.create(clone(r))
		start := make(chan struct{})
		var wg sync.WaitGroup
		for u := range updaters {
			wg.Go(func() {
				<-start
				for j := range 25 {
					c := clone(r)
					c.SID = fmt.Sprintf("race-sid-%d", u)
					c.Data = []byte(fmt.Sprintf("update %d/%d", u, j))
					var err error
					if j%3 == 2 {
						err = f.touch(c.Key, time.Now(), c.ExpiresAt)
					} else {
						err = f.s.Update(f.ctx, c)
					}
					if errors.Is(err, store.ErrNotFound) {
						return
					}
					if err != nil {
						f.t.Errorf("update %q: %v", c.Key, err)
						return
					}
					stored.Add(1)
				}
			})
		}
		wg.Go(func() {
			<-start
			runtime.Gosched()
			if err := f.s.Delete(f.ctx, r.Key); err != nil {
				f.t.Errorf("Delete(%q): %v", r.Key, err)
			}
		})
		close(start)
		wg.Wait()
		f.wantGone(r.Key)
	}
	f.list(f.iss, "racer")
	f.deleteBySID(f.iss, "race-sid")
	for u := range updaters {
		f.deleteBySID(f.iss, fmt.Sprintf("race-sid-%d", u))
	}
	f.deleteBySubject(f.iss, "racer")
	f.t.Logf("%d updates landed before their delete", stored.Load())
}

func testListBySubject(f *fixture) {
	empty, err := f.s.List(f.ctx, store.Filter{Issuer: f.iss, Subject: "nobody"})
	if err != nil || empty == nil || len(empty) != 0 {
		f.t.Fatalf("ListBySubject(nobody) = %v, %v; want an empty slice and nil", empty, err)
	}
	a1 := f.rec("a1", "alice", "sid-1", time.Hour)
	a2 := f.rec("a2", "alice", "", 2*time.Hour)
	dead := f.rec("dead", "alice", "sid-1", -time.Minute)
	b1 := f.rec("b1", "bob", "sid-1", time.Hour)
	o1 := f.rec("o1", "alice", "sid-1", time.Hour)
	o1.Issuer = f.iss + "/other"
	for _, r := range []*store.Record{a1, a2, dead, b1, o1} {
		f.create(clone(r))
	}
	recs, err := f.s.List(f.ctx, store.Filter{Issuer: f.iss, Subject: "alice"})
	if err != nil {
		f.t.Fatalf("ListBySubject: %v", err)
	}
	byKey := map[string]*store.Record{a1.Key: a1, a2.Key: a2}
	if len(recs) != len(byKey) {
		f.t.Errorf("ListBySubject returned %d records; want %d", len(recs), len(byKey))
	}
	for _, r := range recs {
		want, ok := byKey[r.Key]
		if !ok {
			f.t.Errorf("ListBySubject returned unexpected record %q", r.Key)
			continue
		}
		f.wantRecord(r, want)
		delete(byKey, r.Key)
	}
	// The records returned are copies.
	if len(recs) > 0 {
		recs[0].Data = append(recs[0].Data[:0], "changed"...)
		f.wantRecord(f.mustGet(a1.Key), a1)
		f.wantRecord(f.mustGet(a2.Key), a2)
	}
}

func (f *fixture) onceStore() store.Store { return f.s }

func (f *fixture) once(o store.Store, key string, ttl time.Duration, want bool) {
	f.t.Helper()
	got, err := o.Once(f.ctx, key, ttl)
	if err != nil {
		f.t.Fatalf("Once(%q): %v", key, err)
	}
	if got != want {
		f.t.Errorf("Once(%q) = %v; want %v", key, got, want)
	}
}

func testOnce(f *fixture) {
	o := f.onceStore()
	k := f.key("state")
	f.once(o, k, time.Hour, true)
	f.once(o, k, time.Hour, false)
	f.once(o, k, time.Minute, false)
	f.once(o, f.key("state-2"), time.Hour, true)
	f.once(o, f.key("STATE"), time.Hour, true)
	for _, odd := range []string{"nul\x00", "{tag}", "with space", strings.Repeat("j", 2048)} {
		f.once(o, f.key(odd), time.Hour, true)
		f.once(o, f.key(odd), time.Hour, false)
	}

	// One-time keys and session keys live apart.
	r := f.rec("shared-name", "alice", "", time.Hour)
	f.create(clone(r))
	f.once(o, r.Key, time.Hour, true)
	f.wantRecord(f.mustGet(r.Key), r)
	f.once(o, r.Key, time.Hour, false)
	if err := f.s.Delete(f.ctx, r.Key); err != nil {
		f.t.Fatalf("Delete: %v", err)
	}
	f.once(o, r.Key, time.Hour, false)
}

func testOnceExpires(f *fixture) {
	o := f.onceStore()
	k := f.key("jti")
	f.once(o, k, 250*time.Millisecond, true)
	f.once(o, k, 250*time.Millisecond, false)
	deadline := time.Now().Add(1500 * time.Millisecond)
	for {
		ok, err := o.Once(f.ctx, k, time.Hour)
		if err != nil {
			f.t.Fatalf("Once: %v", err)
		}
		if ok {
			break
		}
		if time.Now().After(deadline) {
			f.t.Fatal("Once still reports a replay long after the ttl passed")
		}
		time.Sleep(25 * time.Millisecond)
	}
	f.once(o, k, time.Hour, false)
}

// testOnceConcurrent: among many simultaneous callers of one key exactly one
// wins.
func testOnceConcurrent(f *fixture) {
	o := f.onceStore()
	const rounds, callers = 8, 24
	for round := range rounds {
		k := f.key(fmt.Sprintf("race-%d", round))
		var wins atomic.Int32
		start := make(chan struct{})
		var wg sync.WaitGroup
		for range callers {
			wg.Go(func() {
				<-start
				ok, err := o.Once(f.ctx, k, time.Minute)
				if err != nil {
					f.t.Errorf("Once(%q): %v", k, err)
					return
				}
				if ok {
					wins.Add(1)
				}
			})
		}
		close(start)
		wg.Wait()
		if n := wins.Load(); n != 1 {
			f.t.Errorf("round %d: %d of %d concurrent Once calls won; want exactly 1", round, n, callers)
		}
	}
}

func testPing(f *fixture) {
	if err := f.s.Ping(f.ctx); err != nil {
		f.t.Fatalf("Ping: %v", err)
	}
}

// testFilterByApp: a filter with an App selects only that application's
// records; an empty App selects every application's.
func testFilterByApp(f *fixture) {
	shop := f.rec("shop", "alice", "sid-1", time.Hour)
	shop.App = "shop"
	admin := f.rec("admin", "alice", "sid-1", time.Hour)
	admin.App = "admin"
	none := f.rec("none", "alice", "sid-1", time.Hour)
	for _, r := range []*store.Record{shop, admin, none} {
		f.create(clone(r))
	}
	f.wantRecord(f.mustGet(shop.Key), shop)
	f.listMatching(store.Filter{App: "shop", Issuer: f.iss, Subject: "alice"}, shop.Key)
	f.listMatching(store.Filter{App: "admin", Issuer: f.iss, SID: "sid-1"}, admin.Key)
	f.listMatching(store.Filter{Issuer: f.iss, Subject: "alice"}, shop.Key, admin.Key, none.Key)
	f.deleteMatching(store.Filter{App: "shop", Issuer: f.iss, SID: "sid-1"}, shop.Key)
	f.wantGone(shop.Key)
	f.wantRecord(f.mustGet(admin.Key), admin)
	f.deleteMatching(store.Filter{App: "other", Issuer: f.iss, Subject: "alice"})
	f.deleteMatching(store.Filter{Issuer: f.iss, Subject: "alice"}, admin.Key, none.Key)
}

// testFilterBySubjectAndSID: with both set, a record must match both.
func testFilterBySubjectAndSID(f *fixture) {
	a := f.rec("a", "alice", "sid-1", time.Hour)
	b := f.rec("b", "bob", "sid-1", time.Hour)
	c := f.rec("c", "alice", "sid-2", time.Hour)
	for _, r := range []*store.Record{a, b, c} {
		f.create(clone(r))
	}
	f.listMatching(store.Filter{Issuer: f.iss, Subject: "alice", SID: "sid-1"}, a.Key)
	f.deleteMatching(store.Filter{Issuer: f.iss, Subject: "alice", SID: "sid-1"}, a.Key)
	f.wantRecord(f.mustGet(b.Key), b)
	f.wantRecord(f.mustGet(c.Key), c)
}

// testInvalidFilter: a filter without an issuer, or with neither subject
// nor sid, is refused and deletes nothing.
func testInvalidFilter(f *fixture) {
	r := f.rec("r", "alice", "sid-1", time.Hour)
	f.create(clone(r))
	f.wantInvalid(store.Filter{})
	f.wantInvalid(store.Filter{Issuer: f.iss})
	f.wantInvalid(store.Filter{Issuer: f.iss, App: "shop"})
	f.wantInvalid(store.Filter{Subject: "alice", SID: "sid-1"})
	f.wantRecord(f.mustGet(r.Key), r)
}

// testUpdateWithoutDataKeepsData: an Update with nil Data moves LastSeen
// and ExpiresAt and keeps the stored Data, also when another Update wrote
// new Data since the caller read the record (a slide racing a refresh).
func testUpdateWithoutDataKeepsData(f *fixture) {
	r := f.rec("slide", "alice", "sid-1", time.Hour)
	f.create(clone(r))
	read := f.mustGet(r.Key)
	refreshed := clone(r)
	refreshed.Data = []byte("sealed:refreshed:" + randHex(6))
	if err := f.s.Update(f.ctx, clone(refreshed)); err != nil {
		f.t.Fatalf("Update with data: %v", err)
	}
	slid := clone(read)
	slid.Data = nil
	slid.LastSeen = time.Now().Add(time.Minute)
	slid.ExpiresAt = time.Now().Add(2 * time.Hour)
	if err := f.s.Update(f.ctx, slid); err != nil {
		f.t.Fatalf("Update without data: %v", err)
	}
	want := clone(refreshed)
	want.LastSeen, want.ExpiresAt = slid.LastSeen, slid.ExpiresAt
	f.wantRecord(f.mustGet(r.Key), want)
	// It never brings an ended record back either.
	if err := f.s.Delete(f.ctx, r.Key); err != nil {
		f.t.Fatal(err)
	}
	if err := f.s.Update(f.ctx, slid); !errors.Is(err, store.ErrNotFound) {
		f.t.Errorf("Update without data of a deleted record = %v; want store.ErrNotFound", err)
	}
	f.wantGone(r.Key)
}
