package session

import (
	"context"
	"time"
)

// Session is one signed-in browser session. It lives only on the server.
type Session struct {
	// Key is the store key: the one-way hash of the cookie value.
	Key string `json:"-"`
	// Handle is a random public name for the session (for session lists);
	// it cannot be turned into a cookie.
	Handle string `json:"handle"`

	Issuer  string `json:"iss"`
	Subject string `json:"sub"`
	// SID is the provider's OIDC session id, when it sent one.
	SID string `json:"sid,omitempty"`
	// SessionState is the provider's session_state, when it sent one.
	SessionState string `json:"session_state,omitempty"`
	// Claims are the ID token claims (merged with UserInfo, when enabled).
	Claims map[string]any `json:"claims"`
	// ACR is the authentication context class reference of the sign-in,
	// the ID token's acr (OpenID Connect Core §2); "" when it had none.
	ACR string `json:"acr,omitempty"`
	// AuthTime is when the user last authenticated, the ID token's
	// auth_time (OpenID Connect Core §2); zero when it had none.
	AuthTime time.Time `json:"auth_time,omitzero"`

	Tokens Tokens `json:"tokens"`
	// DPoPKey is the session's DPoP private key (PKCS #8), when its access
	// tokens are sender-constrained (RFC 9449); sealed with the session.
	DPoPKey []byte `json:"dpop_key,omitempty"`

	CreatedAt time.Time `json:"created_at"`
	// LastSeen is kept outside the sealed data; see Record.LastSeen.
	LastSeen time.Time `json:"-"`
	// AbsoluteExpiry is when the session ends whatever its use.
	AbsoluteExpiry time.Time `json:"absolute_expiry"`
	// UserAgent is a coarse description of the browser that signed in.
	UserAgent string `json:"user_agent,omitempty"`

	// slide is closed when the slide this load started in the background
	// has been written (see Toucher); nil when it started none.
	slide <-chan struct{}
}

// SlideWritten waits until the slide of the deadline that loading s started
// is in the store, or ctx ends. A handler that loaded s with slide set calls
// it before it returns: the response is complete only then, so the
// browser's next request, on any replica, finds the moved deadline. Until
// then the handler's own work (an upstream call) runs alongside the write.
func (s *Session) SlideWritten(ctx context.Context) {
	if s == nil || s.slide == nil {
		return
	}
	select {
	case <-s.slide:
	case <-ctx.Done():
	}
}

// Tokens are the provider's tokens for a session.
type Tokens struct {
	AccessToken  string    `json:"access_token"`
	TokenType    string    `json:"token_type,omitempty"`
	RefreshToken string    `json:"refresh_token,omitempty"`
	IDToken      string    `json:"id_token,omitempty"`
	Expiry       time.Time `json:"expiry,omitzero"`
	Scope        string    `json:"scope,omitempty"`
}

// ExpiresAt returns when the session ends if it is not used again: the
// earlier of its idle and absolute deadlines.
func (s *Session) ExpiresAt(idle time.Duration) time.Time {
	e := s.LastSeen.Add(idle)
	if !s.AbsoluteExpiry.IsZero() && s.AbsoluteExpiry.Before(e) {
		return s.AbsoluteExpiry
	}
	return e
}
