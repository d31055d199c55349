package login

import (
	"crypto/sha256"
	"crypto/subtle"
	"encoding/base64"
	"encoding/json"
	"errors"
	"net/http"
	"time"

	"github.com/gatehouse-bff/gatehouse/internal/seal"
	"github.com/gatehouse-bff/gatehouse/internal/session"
)

// txTTL is the lifetime of a login transaction.
const txTTL = 10 * time.Minute

// txCookiePrefix starts the name of every login transaction cookie.
const txCookiePrefix = session.CookiePrefix + "gatehouse-tx-"

// transaction is one login's secrets, sealed into a cookie.
type transaction struct {
	State     string    `json:"s"`
	Nonce     string    `json:"n"`
	Verifier  string    `json:"v"`
	ReturnURL string    `json:"r"`
	Prompt    string    `json:"p,omitempty"`
	Expires   time.Time `json:"e"`
}

var errBadTransaction = errors.New("login: no valid transaction for this state")

// stateID names the cookie of the transaction with this state. Several
// logins (in several tabs) can run at once without clobbering each other.
func stateID(state string) string {
	sum := sha256.Sum256([]byte("gatehouse state " + state))
	return base64.RawURLEncoding.EncodeToString(sum[:12])
}

func txCookieName(state string) string { return txCookiePrefix + stateID(state) }

func sealTx(ring *seal.Ring, tx *transaction) (string, error) {
	plain, err := json.Marshal(tx)
	if err != nil {
		return "", err
	}
	name := txCookieName(tx.State)
	return ring.SealString(plain, []byte(name)), nil
}

// openTx finds and opens the transaction cookie for state, checking that it
// really belongs to that state and has not expired.
func openTx(ring *seal.Ring, r *http.Request, state string, now time.Time) (*transaction, error) {
	name := txCookieName(state)
	c, err := r.Cookie(name)
	if err != nil {
		return nil, errBadTransaction
	}
	plain, err := ring.OpenString(c.Value, []byte(name))
	if err != nil {
		return nil, errBadTransaction
	}
	var tx transaction
	if err := json.Unmarshal(plain, &tx); err != nil {
		return nil, errBadTransaction
	}
	if subtle.ConstantTimeCompare([]byte(tx.State), []byte(state)) != 1 || !now.Before(tx.Expires) {
		return nil, errBadTransaction
	}
	return &tx, nil
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
