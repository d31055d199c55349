package gatehouse

import (
	"context"
	"errors"

	"github.com/gatehouse-bff/gatehouse/internal/admin"
)

// SessionInfo describes one session to an operator. It never carries
// keys, tokens or claims.
type SessionInfo = admin.SessionInfo

// Sessions is the session administration service, for embedders that end
// a user's sessions from their own code (on account deletion, say). It
// acts on every app the gateway serves, or on one (see App). Every session
// it ends is ended as a logout is: on every replica at once, and counted
// in the metrics. It is safe for concurrent use.
type Sessions struct {
	g *Gateway
	// app, when one is set, names the only app acted on.
	app *string
}

// ErrUnknownApp is returned by Sessions scoped to an app the gateway does
// not serve.
var ErrUnknownApp = errors.New("gatehouse: no app has that name")

// Sessions returns the session administration service of every app.
func (g *Gateway) Sessions() *Sessions { return &Sessions{g: g} }

// App returns the service scoped to the app named name ("" is the app of
// the top-level configuration).
func (s *Sessions) App(name string) *Sessions { return &Sessions{g: s.g, app: &name} }

// each calls do for every app acted on whose provider is issuer.
func (s *Sessions) each(ctx context.Context, issuer string, do func(t admin.Target) error) error {
	found := false
	for _, t := range s.g.adminTargets() {
		if s.app != nil && t.App != *s.app {
			continue
		}
		found = true
		if iss, err := t.Issuer(ctx); err != nil || iss != issuer {
			// An app of another provider holds no session of this issuer.
			continue
		}
		if err := do(t); err != nil {
			return err
		}
	}
	if !found && s.app != nil {
		return ErrUnknownApp
	}
	return nil
}

// List returns the live sessions of issuer for subject, newest first
// within each app.
func (s *Sessions) List(ctx context.Context, issuer, subject string) ([]SessionInfo, error) {
	out := []SessionInfo{}
	err := s.each(ctx, issuer, func(t admin.Target) error {
		list, err := t.Service.List(ctx, issuer, subject)
		for _, si := range list {
			si.App = t.App
			out = append(out, si)
		}
		return err
	})
	return out, err
}

// EndSubject ends every session of issuer for subject and returns how
// many it ended.
func (s *Sessions) EndSubject(ctx context.Context, issuer, subject string) (int, error) {
	n := 0
	err := s.each(ctx, issuer, func(t admin.Target) error {
		ended, err := t.Service.EndSubject(ctx, issuer, subject)
		n += ended
		return err
	})
	return n, err
}

// EndSID ends every session of issuer with the provider session id sid
// and returns how many it ended.
func (s *Sessions) EndSID(ctx context.Context, issuer, sid string) (int, error) {
	n := 0
	err := s.each(ctx, issuer, func(t admin.Target) error {
		ended, err := t.Service.EndSID(ctx, issuer, sid)
		n += ended
		return err
	})
	return n, err
}

// EndHandle ends the session of issuer and subject named handle (as
// listed). It reports false, and no error, when there is none.
func (s *Sessions) EndHandle(ctx context.Context, issuer, subject, handle string) (bool, error) {
	ended := false
	err := s.each(ctx, issuer, func(t admin.Target) error {
		ok, err := t.Service.EndHandle(ctx, issuer, subject, handle)
		ended = ended || ok
		return err
	})
	return ended, err
}
