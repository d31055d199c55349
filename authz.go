package gatehouse

import (
	"fmt"
	"maps"
	"net/url"
	"slices"
	"strings"

	"github.com/gatehouse-bff/gatehouse/config"
	"github.com/gatehouse-bff/gatehouse/internal/assertion"
	"github.com/gatehouse-bff/gatehouse/internal/policy"
)

// newAuthz builds the app's assertion signer (when a route sends
// assertions or a signing key file is set) and each route's policy, by
// prefix. Every app signs with the gateway's one key set (the file, or the
// generated keys in the shared store); iss is the app's own origin.
func (a *app) newAuthz(sh *shared) error {
	cfg := a.cfg
	publicURL := strings.TrimSuffix(cfg.Server.PublicURL, "/")
	if cfg.Identity.SigningKeyFile != "" || slices.ContainsFunc(cfg.Routes, func(r config.Route) bool { return r.Identity.Assertion }) {
		ring, err := sh.sessionRing.Derive("assertion signing key")
		if err != nil {
			return err
		}
		a.signer, err = assertion.New(assertion.Options{
			Issuer:  publicURL,
			KeyFile: cfg.Identity.SigningKeyFile,
			Store:   sh.store,
			Ring:    ring,
			Now:     sh.now,
			Logger:  sh.log,
		})
		if err != nil {
			return fmt.Errorf("gatehouse: %w", err)
		}
	}
	a.policies = make(map[string]*policy.Policy, len(cfg.Routes))
	for _, r := range cfg.Routes {
		opts := policy.Options{
			Route:           a.label + "api:" + r.Prefix,
			Require:         r.Require,
			Identity:        r.Identity,
			Audience:        r.Audience,
			RequestedScopes: cfg.OIDC.Scopes,
			Now:             sh.now,
			Logger:          sh.log,
			OnDeny:          sh.metrics.PolicyDenied,
		}
		if a.signer != nil {
			opts.Signer = a.signer
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
		a.policies[r.Prefix] = p
	}
	return nil
}

// identityHeaders are the identity header names of every route of cfg:
// each route's requests lose the browser's copies of all of them, so that
// an upstream behind several routes never gets a forged one through a
// route that does not set it.
func identityHeaders(cfg *config.Config) []string {
	var names []string
	for _, r := range cfg.Routes {
		names = slices.AppendSeq(names, maps.Keys(r.Identity.Headers))
	}
	slices.Sort(names)
	return slices.Compact(names)
}
