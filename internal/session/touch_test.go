package session_test

import (
	"bytes"
	"context"
	"errors"
	"log/slog"
	"strings"
	"sync"
	"testing"
	"time"

	"github.com/gatehouse-bff/gatehouse/internal/seal"
	"github.com/gatehouse-bff/gatehouse/internal/session"
	"github.com/gatehouse-bff/gatehouse/internal/testkit"
	"github.com/gatehouse-bff/gatehouse/store"
	"github.com/gatehouse-bff/gatehouse/store/memstore"
)

// heldUpdates holds every Update until release is closed, and counts the
// Updates that have started.
type heldUpdates struct {
	store.Store
	release chan struct{}
	fail    error

	mu      sync.Mutex
	started int
	entered chan struct{} // one send per Update started
}

func (h *heldUpdates) Update(ctx context.Context, rec *store.Record) error {
	h.mu.Lock()
	h.started++
	h.mu.Unlock()
	h.entered <- struct{}{}
	<-h.release
	if h.fail != nil {
		return h.fail
	}
	return h.Store.Update(ctx, rec)
}

func newTouchManager(t *testing.T, log *slog.Logger) (*session.Manager, *heldUpdates, *session.Toucher, *testkit.Clock) {
	t.Helper()
	c := testkit.NewClock(time.Unix(1_800_000_000, 0))
	mem := memstore.New(memstore.Options{Now: c.Now, SweepInterval: -1})
	t.Cleanup(func() { mem.Close() })
	st := &heldUpdates{Store: mem, release: make(chan struct{}), entered: make(chan struct{}, 1024)}
	touch := session.NewToucher(log)
	m, err := session.NewManager(session.Options{
		Store: st, Ring: seal.Ephemeral(), CookieName: "__Host-test",
		IdleTimeout: 10 * time.Minute, AbsoluteTimeout: time.Hour, Now: c.Now, Toucher: touch,
	})
	if err != nil {
		t.Fatal(err)
	}
	return m, st, touch, c
}

// TestSlideIsWrittenAfterTheLoad: a load due for a slide returns before the
// store has written it; SlideWritten and the next load of the session wait
// for the write, and the load sees the moved deadline.
func TestSlideIsWrittenAfterTheLoad(t *testing.T) {
	m, st, _, c := newTouchManager(t, nil)
	ctx := context.Background()
	id, err := m.Create(ctx, &session.Session{Issuer: "iss", Subject: "alice"})
	if err != nil {
		t.Fatal(err)
	}
	c.Advance(9 * time.Minute) // due for a slide, one minute before idle
	slid := c.Now()
	first, err := m.Load(ctx, request(id), true)
	if err != nil {
		t.Fatalf("load with the slide held: %v", err)
	}
	<-st.entered
	written := make(chan struct{})
	go func() {
		first.SlideWritten(ctx)
		close(written)
	}()

	c.Advance(30 * time.Second)
	second := make(chan error, 1)
	go func() {
		s, err := m.Load(ctx, request(id), false)
		if err == nil && !s.LastSeen.Equal(slid) {
			err = errors.New("LastSeen " + s.LastSeen.String() + ", want the slide's")
		}
		second <- err
	}()
	select {
	case err := <-second:
		t.Fatalf("a load finished while the session's slide was still being written: %v", err)
	default:
	}
	select {
	case <-written:
		t.Fatal("SlideWritten returned while the slide was still being written")
	default:
	}
	close(st.release)
	if err := <-second; err != nil {
		t.Fatalf("load after the slide: %v", err)
	}
	<-written
	rec, err := st.Store.Get(ctx, session.KeyOf(id))
	if err != nil || !rec.LastSeen.Equal(slid) {
		t.Fatalf("stored record after the slide: %+v, %v; want LastSeen %v", rec, err, slid)
	}
}

// TestSlideDoesNotBringBackAnEndedSession: a session ended while its slide
// waits to be written stays ended.
func TestSlideDoesNotBringBackAnEndedSession(t *testing.T) {
	m, st, touch, c := newTouchManager(t, nil)
	ctx := context.Background()
	id, err := m.Create(ctx, &session.Session{Issuer: "iss", Subject: "alice"})
	if err != nil {
		t.Fatal(err)
	}
	c.Advance(2 * time.Minute)
	s, err := m.Load(ctx, request(id), true)
	if err != nil {
		t.Fatal(err)
	}
	<-st.entered
	if err := m.End(ctx, s, "logout"); err != nil {
		t.Fatal(err)
	}
	close(st.release)
	touch.Wait()
	if _, err := st.Store.Get(ctx, session.KeyOf(id)); !errors.Is(err, store.ErrNotFound) {
		t.Fatalf("ended session after its slide was written: %v; want ErrNotFound", err)
	}
	if _, err := m.Load(ctx, request(id), true); !errors.Is(err, session.ErrNoSession) {
		t.Fatalf("load of the ended session: %v; want ErrNoSession", err)
	}
}

// TestSlidesPastTheBoundAreWrittenInline: once 256 slides are being
// written, the next load writes its own before it returns.
func TestSlidesPastTheBoundAreWrittenInline(t *testing.T) {
	m, st, touch, c := newTouchManager(t, nil)
	ctx := context.Background()
	const bound = 256
	ids := make([]string, bound+1)
	for i := range ids {
		id, err := m.Create(ctx, &session.Session{Issuer: "iss", Subject: "alice"})
		if err != nil {
			t.Fatal(err)
		}
		ids[i] = id
	}
	c.Advance(2 * time.Minute)
	for _, id := range ids[:bound] {
		if _, err := m.Load(ctx, request(id), true); err != nil {
			t.Fatal(err)
		}
	}
	for range bound {
		<-st.entered
	}
	last := make(chan error, 1)
	go func() {
		_, err := m.Load(ctx, request(ids[bound]), true)
		last <- err
	}()
	<-st.entered // the last load's own Update has started and is held
	select {
	case err := <-last:
		t.Fatalf("load past the bound returned before its slide was written: %v", err)
	default:
	}
	close(st.release)
	if err := <-last; err != nil {
		t.Fatal(err)
	}
	touch.Wait()
	if st.started != bound+1 {
		t.Errorf("%d slides written; want %d", st.started, bound+1)
	}
}

// TestFailedSlideIsLoggedAndRetried: a slide the store refuses is logged,
// without the record's contents, and the next load writes it again.
func TestFailedSlideIsLoggedAndRetried(t *testing.T) {
	var logs bytes.Buffer
	m, st, touch, c := newTouchManager(t, slog.New(slog.NewTextHandler(&logs, nil)))
	st.fail = errors.New("disk full")
	close(st.release)
	ctx := context.Background()
	id, err := m.Create(ctx, &session.Session{Issuer: "iss", Subject: "alice", Tokens: session.Tokens{AccessToken: "at-secret"}})
	if err != nil {
		t.Fatal(err)
	}
	c.Advance(2 * time.Minute)
	if _, err := m.Load(ctx, request(id), true); err != nil {
		t.Fatalf("load whose slide fails: %v", err)
	}
	touch.Wait()
	if !strings.Contains(logs.String(), "disk full") || strings.Contains(logs.String(), "at-secret") {
		t.Errorf("log after a failed slide: %q", logs.String())
	}
	st.fail = nil
	if _, err := m.Load(ctx, request(id), true); err != nil {
		t.Fatal(err)
	}
	touch.Wait()
	rec, err := st.Store.Get(ctx, session.KeyOf(id))
	if err != nil || !rec.LastSeen.Equal(c.Now()) {
		t.Fatalf("record after the retried slide: %+v, %v; want LastSeen %v", rec, err, c.Now())
	}
	if st.started != 2 {
		t.Errorf("%d slide writes; want 2", st.started)
	}
}
