package login

import (
	"net/http"
	"net/http/httptest"
	"slices"
	"strings"
	"testing"
	"time"

	"github.com/gatehouse-bff/gatehouse/internal/provider"
	"github.com/gatehouse-bff/gatehouse/internal/seal"
	"github.com/gatehouse-bff/gatehouse/internal/session"
	"github.com/gatehouse-bff/gatehouse/store/memstore"
)

func newTestHandler(t *testing.T) *Handler {
	t.Helper()
	store := memstore.New(memstore.Options{SweepInterval: -1})
	t.Cleanup(func() { store.Close() })
	mgr, err := session.NewManager(session.Options{Store: store, Ring: seal.Ephemeral(), CookieName: "__Host-gatehouse",
		IdleTimeout: time.Hour, AbsoluteTimeout: time.Hour})
	if err != nil {
		t.Fatal(err)
	}
	h, err := New(Options{Provider: provider.NewSource(provider.Options{Issuer: "http://127.0.0.1:1"}, time.Hour),
		Sessions: mgr, Ring: seal.Ephemeral()})
	if err != nil {
		t.Fatal(err)
	}
	return h
}

// TestDropOldestOrder: garbage and expired transaction cookies go first,
// then the lowest Seq; another app's cookies that share the prefix are
// never touched; dropped live states are spent.
func TestDropOldestOrder(t *testing.T) {
	h := newTestHandler(t)
	now := time.Unix(1_800_000_000, 0)
	r := httptest.NewRequest("GET", "/bff/login", nil)
	var names []string
	for i, st := range []string{"s-a", "s-b", "s-c"} {
		tx := &transaction{State: st, Nonce: "n", Verifier: "v", ReturnURL: "/", Expires: now.Add(time.Minute), Seq: uint64(3 - i)}
		v, err := sealTx(h.opts.Ring, h.txPrefix, tx)
		if err != nil {
			t.Fatal(err)
		}
		names = append(names, txCookieName(h.txPrefix, st))
		r.AddCookie(&http.Cookie{Name: names[i], Value: v})
	}
	garbage := txCookieName(h.txPrefix, "s-garbage")
	r.AddCookie(&http.Cookie{Name: garbage, Value: "not-sealed"})
	r.AddCookie(&http.Cookie{Name: h.txPrefix + "other-app", Value: "session-of-another-app"})
	r.AddCookie(&http.Cookie{Name: "__Host-gatehouse", Value: "the-session"})

	pend := h.pending(r, now)
	if got := len(pend); got != 4 {
		t.Fatalf("pending found %d transaction cookies, want 4", got)
	}
	w := httptest.NewRecorder()
	if err := h.dropOldest(t.Context(), w, pend, 400); err != nil {
		t.Fatal(err)
	}
	var deleted []string
	for _, c := range w.Result().Cookies() {
		if c.MaxAge >= 0 || !c.Secure || c.Path != "/" {
			t.Errorf("drop wrote %+v, want a deletion of a __Host- cookie", c)
		}
		deleted = append(deleted, c.Name)
	}
	// Three live ones and a new one is one too many: garbage first, then
	// s-c (Seq 1) and, to make room for the fourth, nothing more.
	if want := []string{garbage, names[2]}; !slices.Equal(deleted, want) {
		t.Errorf("deleted %v, want %v", deleted, want)
	}
	if first, _ := h.opts.Sessions.Once(t.Context(), onceKey(stateID("s-c")), txTTL); first {
		t.Error("the dropped transaction's state was not spent")
	}
	if first, _ := h.opts.Sessions.Once(t.Context(), onceKey(stateID("s-a")), txTTL); !first {
		t.Error("a kept transaction's state was spent")
	}
	for _, c := range w.Result().Cookies() {
		if strings.Contains(c.Name, "other-app") || c.Name == "__Host-gatehouse" {
			t.Errorf("deleted %s, which is not a transaction of this app", c.Name)
		}
	}
}
