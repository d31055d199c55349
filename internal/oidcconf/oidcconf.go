// Package oidcconf turns Gatehouse's configuration into the OpenID
// provider client's options, so that the gateway and the deployment doctor
// talk to the provider alike.
package oidcconf

import (
	"fmt"
	"net/http"
	"os"
	"strings"
	"time"

	"github.com/gatehouse-bff/gatehouse/config"
	"github.com/gatehouse-bff/gatehouse/internal/provider"
)

// Options returns the provider options for cfg, reading the private_key_jwt
// key file when the configuration names one.
func Options(cfg *config.Config, client *http.Client, now func() time.Time) (provider.Options, error) {
	o := provider.Options{
		Issuer:       cfg.OIDC.Issuer,
		ClientID:     cfg.OIDC.ClientID,
		ClientSecret: cfg.OIDC.ClientSecret,
		AuthMethod:   cfg.OIDC.AuthMethod,
		Scopes:       cfg.OIDC.Scopes,
		RedirectURL:  strings.TrimSuffix(cfg.Server.PublicURL, "/") + cfg.OIDC.CallbackPath,
		SigningAlgs:  cfg.OIDC.SigningAlgs,
		HTTPClient:   client,
		Now:          now,
		ClientKeyID:  cfg.OIDC.PrivateKeyID,
	}
	if cfg.OIDC.AuthMethod == provider.AuthPrivateKeyJWT {
		pemBytes, err := os.ReadFile(cfg.OIDC.PrivateKeyFile)
		if err != nil {
			return o, fmt.Errorf("oidc.private_key_file: %w", err)
		}
		if o.ClientKey, err = provider.ParsePrivateKey(pemBytes); err != nil {
			return o, fmt.Errorf("oidc.private_key_file: %w", err)
		}
	}
	return o, nil
}
