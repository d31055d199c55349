package login

import (
	"cmp"
	"context"
	"crypto/sha256"
	"crypto/subtle"
	"encoding/base64"
	"encoding/json"
	"errors"
	"net/http"
	"slices"
	"strings"
	"time"

	"github.com/gatehouse-bff/gatehouse/internal/seal"
)

// txTTL is the lifetime of a login transaction.
const txTTL = 10 * time.Minute

// Bounds on what pending login transactions may hold in one browser for one
// app. Each transaction has a cookie of its own (so logins in several tabs
// do not overwrite each other); starting a login beyond these bounds drops
// the oldest pending ones, so that a page that keeps navigating the browser
// to the login endpoint cannot fill its cookie jar and lock it out of the
// app (an 8 KiB request header limit is common). With the session cookie,
// the app's cookies stay within 4 KiB.
const (
	// maxPending is the number of pending transactions kept.
	maxPending = 3
	// maxPendingBytes bounds the name=value bytes of the pending
	// transaction cookies together; one transaction with the longest
	// return URL fits on its own.
	maxPendingBytes = 3584
	// maxPendingRead is how many transaction cookies of a request are
	// opened; any beyond are dropped unread.
	maxPendingRead = 16
)

// transaction is one login's secrets, sealed into a cookie.
type transaction struct {
	State     string    `json:"s"`
	Nonce     string    `json:"n"`
	Verifier  string    `json:"v"`
	ReturnURL string    `json:"r"`
	Prompt    string    `json:"p,omitempty"`
	Expires   time.Time `json:"e"`
	// Seq orders the browser's pending transactions: one more than the
	// highest among those the login request carried. It does not depend on
	// a clock, so ties in time do not blur which is oldest.
	Seq uint64 `json:"q,omitempty"`
	// Silent marks a silent login (prompt=none in a hidden frame): its
	// callback answers the parent frame instead of redirecting.
	Silent bool `json:"f,omitempty"`
	// ACRValues and MaxAge are a step-up's acr_values and max_age
	// (seconds), checked against the ID token at the callback.
	ACRValues []string `json:"a,omitempty"`
	MaxAge    *int64   `json:"m,omitempty"`
}

// stepUp returns what the transaction asked for beyond a plain sign-in.
func (tx *transaction) stepUp() stepUp { return stepUp{ACRValues: tx.ACRValues, MaxAge: tx.MaxAge} }

var errBadTransaction = errors.New("login: no valid transaction for this state")

// stateID names the transaction with this state: in its cookie's name and
// in the one-time record that spends it. Several logins (in several tabs)
// can run at once without clobbering each other.
func stateID(state string) string {
	sum := sha256.Sum256([]byte("gatehouse state " + state))
	return base64.RawURLEncoding.EncodeToString(sum[:12])
}

// validStateID reports whether id has the form stateID gives: 16 base64url
// characters.
func validStateID(id string) bool {
	if len(id) != 16 {
		return false
	}
	for i := 0; i < len(id); i++ {
		c := id[i]
		if !('a' <= c && c <= 'z' || 'A' <= c && c <= 'Z' || '0' <= c && c <= '9' || c == '-' || c == '_') {
			return false
		}
	}
	return true
}

// onceKey is the one-time record of a spent (or dropped) state.
func onceKey(id string) string { return "state:" + id }

// txCookieName is the cookie of the transaction with this state, under an
// app's transaction cookie prefix (see Handler.txPrefix).
func txCookieName(prefix, state string) string { return prefix + stateID(state) }

func sealTx(ring *seal.Ring, prefix string, tx *transaction) (string, error) {
	plain, err := json.Marshal(tx)
	if err != nil {
		return "", err
	}
	// The cookie name is the associated data: a value moved under another
	// state's (or another app's) name does not open.
	return ring.SealString(plain, []byte(txCookieName(prefix, tx.State))), nil
}

// openTxValue opens the sealed value of the cookie called name.
func openTxValue(ring *seal.Ring, name, value string) (*transaction, error) {
	plain, err := ring.OpenString(value, []byte(name))
	if err != nil {
		return nil, errBadTransaction
	}
	var tx transaction
	if err := json.Unmarshal(plain, &tx); err != nil {
		return nil, errBadTransaction
	}
	return &tx, nil
}

// openTx finds and opens the transaction cookie for state, checking that it
// really belongs to that state and has not expired.
func openTx(ring *seal.Ring, prefix string, r *http.Request, state string, now time.Time) (*transaction, error) {
	name := txCookieName(prefix, state)
	c, err := r.Cookie(name)
	if err != nil {
		return nil, errBadTransaction
	}
	tx, err := openTxValue(ring, name, c.Value)
	if err != nil {
		return nil, err
	}
	if subtle.ConstantTimeCompare([]byte(tx.State), []byte(state)) != 1 || !now.Before(tx.Expires) {
		return nil, errBadTransaction
	}
	return tx, nil
}

// pendingTx is a transaction cookie the browser sent.
type pendingTx struct {
	name string
	// id is the stateID in the name.
	id string
	// size is the cookie's name=value length.
	size int
	// expires is zero for a cookie that does not open (or is expired):
	// such a cookie can finish no login.
	expires time.Time
	seq     uint64
}

func (p pendingTx) valid() int {
	if p.expires.IsZero() {
		return 0
	}
	return 1
}

// pending returns the app's transaction cookies in r, oldest first (those
// that cannot finish a login before all).
func (h *Handler) pending(r *http.Request, now time.Time) []pendingTx {
	var out []pendingTx
	for _, c := range r.Cookies() {
		id, ok := strings.CutPrefix(c.Name, h.txPrefix)
		if !ok || !validStateID(id) {
			// Not a transaction of this app: another app's cookie may
			// share the prefix (its name, say, starts with this app's).
			continue
		}
		p := pendingTx{name: c.Name, id: id, size: len(c.Name) + 1 + len(c.Value)}
		if len(out) < maxPendingRead {
			if tx, err := openTxValue(h.opts.Ring, c.Name, c.Value); err == nil && stateID(tx.State) == id && now.Before(tx.Expires) {
				p.expires, p.seq = tx.Expires, tx.Seq
			}
		}
		out = append(out, p)
	}
	slices.SortStableFunc(out, func(a, b pendingTx) int {
		return cmp.Or(cmp.Compare(a.valid(), b.valid()), cmp.Compare(a.seq, b.seq),
			a.expires.Compare(b.expires), strings.Compare(a.name, b.name))
	})
	return out
}

// nextSeq returns the Seq of a new transaction given the pending ones.
func nextSeq(pend []pendingTx) uint64 {
	var n uint64
	for _, p := range pend {
		n = max(n, p.seq)
	}
	return n + 1
}

// dropOldest drops the oldest of the pending transactions until, with one
// new cookie of newSize bytes, at most maxPending remain within
// maxPendingBytes.
func (h *Handler) dropOldest(ctx context.Context, w http.ResponseWriter, pend []pendingTx, newSize int) error {
	total := newSize
	for _, p := range pend {
		total += p.size
	}
	i := 0
	for ; i < len(pend) && (len(pend)-i+1 > maxPending || total > maxPendingBytes); i++ {
		total -= pend[i].size
	}
	return h.drop(ctx, w, pend[:i])
}

// drop ends pending transactions: their states are recorded as spent, so
// that a callback for one is refused even if the browser still sends its
// cookie (a response lost, or a request already in flight), and their
// cookies are deleted.
func (h *Handler) drop(ctx context.Context, w http.ResponseWriter, pend []pendingTx) error {
	for _, p := range pend {
		if !p.expires.IsZero() {
			if _, err := h.opts.Sessions.Once(ctx, onceKey(p.id), txTTL); err != nil {
				return err
			}
		}
		http.SetCookie(w, txCookie(p.name, "", -1))
	}
	return nil
}

// txCookie is the cookie carrying a transaction. SameSite=Lax lets it ride
// the provider's top-level redirect back to the callback.
func txCookie(name, value string, maxAge int) *http.Cookie {
	return &http.Cookie{
		Name:     name,
		Value:    value,
		Path:     "/",
		MaxAge:   maxAge,
		Secure:   true,
		HttpOnly: true,
		SameSite: http.SameSiteLaxMode,
	}
}
