package gatehouse

import (
	"fmt"
	"maps"
	"net/url"
	"slices"
	"strings"
	"time"

	"github.com/gatehouse-bff/gatehouse/config"
	"github.com/gatehouse-bff/gatehouse/internal/assertion"
	"github.com/gatehouse-bff/gatehouse/internal/policy"
	"github.com/gatehouse-bff/gatehouse/internal/seal"
)

// newAuthz builds the assertion signer (when a route sends assertions or a
// signing key file is set) and each route's policy, by prefix.
func (g *Gateway) newAuthz(ring *seal.Ring, now func() time.Time) error {
	publicURL := strings.TrimSuffix(g.cfg.Server.PublicURL, "/")
	if g.cfg.Identity.SigningKeyFile != "" || slices.ContainsFunc(g.cfg.Routes, func(r config.Route) bool { return r.Identity.Assertion }) {
		keyRing, err := ring.Derive("assertion signing key")
		if err != nil {
			return err
		}
		g.signer, err = assertion.New(assertion.Options{
			Issuer:  publicURL,
			KeyFile: g.cfg.Identity.SigningKeyFile,
			Store:   g.store,
			Ring:    keyRing,
			Now:     now,
			Logger:  g.log,
		})
		if err != nil {
			return fmt.Errorf("gatehouse: %w", err)
		}
	}
	g.policies = make(map[string]*policy.Policy, len(g.cfg.Routes))
	for _, r := range g.cfg.Routes {
		opts := policy.Options{
			Route:           "api:" + r.Prefix,
			Require:         r.Require,
			Identity:        r.Identity,
			Audience:        r.Audience,
			RequestedScopes: g.cfg.OIDC.Scopes,
			Now:             now,
			Logger:          g.log,
			OnDeny:          g.metrics.PolicyDenied,
		}
		if g.signer != nil {
			opts.Signer = g.signer
		}
		if opts.Audience == "" {
			u, err := url.Parse(r.Upstream)
			if err != nil {
				return fmt.Errorf("gatehouse: route %s: upstream: %w", r.Prefix, err)
			}
			opts.Audience = u.Scheme + "://" + u.Host
		}
		p, err := policy.New(opts)
		if err != nil {
			return fmt.Errorf("gatehouse: %w", err)
		}
		g.policies[r.Prefix] = p
	}
	return nil
}

// identityHeaders are the identity header names of every route: each
// route's requests lose the browser's copies of all of them, so that an
// upstream behind several routes never gets a forged one through a route
// that does not set it.
func identityHeaders(cfg *config.Config) []string {
	var names []string
	for _, r := range cfg.Routes {
		names = slices.AppendSeq(names, maps.Keys(r.Identity.Headers))
	}
	slices.Sort(names)
	return slices.Compact(names)
}
