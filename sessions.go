package gatehouse

import (
	"context"

	"github.com/gatehouse-bff/gatehouse/internal/admin"
)

// SessionInfo describes one session to an operator. It never carries
// keys, tokens or claims.
type SessionInfo = admin.SessionInfo

// Sessions is the session administration service, for embedders that end
// a user's sessions from their own code (on account deletion, say). Every
// session it ends is ended as a logout is: on every replica at once, and
// counted in the metrics. It is safe for concurrent use.
type Sessions struct{ svc *admin.Service }

// Sessions returns the session administration service.
func (g *Gateway) Sessions() *Sessions { return &Sessions{svc: admin.NewService(g.sessions)} }

// List returns the live sessions of issuer for subject, newest first.
func (s *Sessions) List(ctx context.Context, issuer, subject string) ([]SessionInfo, error) {
	return s.svc.List(ctx, issuer, subject)
}

// EndSubject ends every session of issuer for subject and returns how
// many it ended.
func (s *Sessions) EndSubject(ctx context.Context, issuer, subject string) (int, error) {
	return s.svc.EndSubject(ctx, issuer, subject)
}

// EndSID ends every session of issuer with the provider session id sid
// and returns how many it ended.
func (s *Sessions) EndSID(ctx context.Context, issuer, sid string) (int, error) {
	return s.svc.EndSID(ctx, issuer, sid)
}

// EndHandle ends the session of issuer and subject named handle (as
// listed). It reports false, and no error, when there is none.
func (s *Sessions) EndHandle(ctx context.Context, issuer, subject, handle string) (bool, error) {
	return s.svc.EndHandle(ctx, issuer, subject, handle)
}
