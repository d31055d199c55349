package admin

import (
	"context"
	"errors"
	"fmt"
	"slices"
	"time"

	"github.com/gatehouse-bff/gatehouse/internal/session"
	"github.com/gatehouse-bff/gatehouse/store"
)

// Reason is what sessions ended by an operator are recorded with.
const Reason = "revoked"

// ErrMissingArgument is returned when an issuer, subject, sid or handle
// argument is empty: an empty value would match sessions that lack one.
var ErrMissingArgument = errors.New("admin: a required argument is empty")

// SessionInfo describes one session to an operator. It never carries keys,
// tokens or claims.
type SessionInfo struct {
	// App names the app the session belongs to, in the operator API's
	// lists of several apps.
	App string `json:"app,omitempty"`
	// Handle is the session's random public name; it cannot be turned
	// into a cookie.
	Handle  string `json:"handle"`
	Subject string `json:"sub"`
	// SID is the provider's session id, when it sent one.
	SID       string    `json:"sid,omitempty"`
	CreatedAt time.Time `json:"created_at"`
	LastSeen  time.Time `json:"last_seen"`
	// ExpiresAt is when the session ends if it is not used again.
	ExpiresAt time.Time `json:"expires_at"`
	UserAgent string    `json:"user_agent,omitempty"`
}

// Service lists and ends sessions. It is safe for concurrent use.
type Service struct {
	sessions *session.Manager
}

// NewService returns a Service over the sessions of m, which must not be
// nil.
func NewService(m *session.Manager) *Service {
	return &Service{sessions: m}
}

// List returns the live sessions of issuer for subject, newest first.
// Records that cannot be unsealed with the current keys are left out: they
// cannot be loaded either.
func (s *Service) List(ctx context.Context, issuer, subject string) ([]SessionInfo, error) {
	all, err := s.open(ctx, issuer, subject)
	if err != nil {
		return nil, err
	}
	idle := s.sessions.IdleTimeout()
	out := make([]SessionInfo, 0, len(all))
	for _, ss := range all {
		out = append(out, SessionInfo{
			Handle:    ss.Handle,
			Subject:   ss.Subject,
			SID:       ss.SID,
			CreatedAt: ss.CreatedAt,
			LastSeen:  ss.LastSeen,
			ExpiresAt: ss.ExpiresAt(idle),
			UserAgent: ss.UserAgent,
		})
	}
	return out, nil
}

// EndSubject ends every session of issuer for subject and returns how many
// it ended. None is not an error.
func (s *Service) EndSubject(ctx context.Context, issuer, subject string) (int, error) {
	if issuer == "" || subject == "" {
		return 0, ErrMissingArgument
	}
	keys, err := s.sessions.EndMatching(ctx, store.Filter{Issuer: issuer, Subject: subject}, Reason)
	if err != nil {
		return 0, fmt.Errorf("admin: end sessions of subject: %w", err)
	}
	return len(keys), nil
}

// EndSID ends every session of issuer with the provider session id sid
// and returns how many it ended. None is not an error.
func (s *Service) EndSID(ctx context.Context, issuer, sid string) (int, error) {
	if issuer == "" || sid == "" {
		return 0, ErrMissingArgument
	}
	keys, err := s.sessions.EndMatching(ctx, store.Filter{Issuer: issuer, SID: sid}, Reason)
	if err != nil {
		return 0, fmt.Errorf("admin: end sessions of sid: %w", err)
	}
	return len(keys), nil
}

// EndHandle ends the session of issuer and subject named handle. It
// reports false, and no error, when the subject has no live session by
// that name.
func (s *Service) EndHandle(ctx context.Context, issuer, subject, handle string) (bool, error) {
	if handle == "" {
		return false, ErrMissingArgument
	}
	all, err := s.open(ctx, issuer, subject)
	if err != nil {
		return false, err
	}
	i := slices.IndexFunc(all, func(ss *session.Session) bool { return ss.Handle == handle })
	if i < 0 {
		return false, nil
	}
	if err := s.sessions.End(ctx, all[i], Reason); err != nil {
		return false, fmt.Errorf("admin: end session: %w", err)
	}
	return true, nil
}

// open returns the live, openable sessions of issuer and subject, newest
// first.
func (s *Service) open(ctx context.Context, issuer, subject string) ([]*session.Session, error) {
	if issuer == "" || subject == "" {
		return nil, ErrMissingArgument
	}
	all, err := s.sessions.List(ctx, store.Filter{Issuer: issuer, Subject: subject})
	if err != nil {
		return nil, fmt.Errorf("admin: list sessions: %w", err)
	}
	return all, nil
}
