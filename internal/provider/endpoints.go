package provider

import (
	"context"
	"errors"
	"fmt"
	"io"
	"net/http"
	"net/url"
	"strings"

	"golang.org/x/oauth2"
)

// UserInfo calls the UserInfo endpoint with the access token in the
// Authorization header, under its token type ("Bearer", or "DPoP" with the
// key in ctx), and returns its claims. Their sub must equal subject (OpenID
// Connect Core §5.3.2).
func (p *Provider) UserInfo(ctx context.Context, accessToken, tokenType, subject string) (map[string]any, error) {
	if tokenType == "" {
		tokenType = "Bearer"
	}
	ui, err := p.oidc.UserInfo(p.ctx(ctx), oauth2.StaticTokenSource(&oauth2.Token{AccessToken: accessToken, TokenType: tokenType}))
	if err != nil {
		return nil, fmt.Errorf("provider: userinfo: %w", err)
	}
	if ui.Subject != subject {
		return nil, &ValidationError{Err: ErrUserInfoSub}
	}
	var claims map[string]any
	if err := ui.Claims(&claims); err != nil {
		return nil, fmt.Errorf("provider: userinfo claims: %w", err)
	}
	return claims, nil
}

// ErrNoRevocation is returned by Revoke when the provider has no
// revocation endpoint.
var ErrNoRevocation = errors.New("provider: no revocation endpoint")

// Revoke revokes token at the provider's revocation endpoint (RFC 7009 §2.1)
// with the client's authentication. hint is "refresh_token" or
// "access_token". An unknown or already invalid token counts as revoked
// (§2.2).
func (p *Provider) Revoke(ctx context.Context, token, hint string) error {
	if p.meta.RevocationEndpoint == "" {
		return ErrNoRevocation
	}
	form := url.Values{"token": {token}}
	if hint != "" {
		form.Set("token_type_hint", hint)
	}
	auth, err := p.clientAuth(p.meta.TokenEndpoint)
	if err != nil {
		return err
	}
	switch {
	case auth != nil:
		form.Set("client_id", p.opts.ClientID)
		for k, v := range auth {
			form[k] = v
		}
	case p.oauth.Endpoint.AuthStyle == oauth2.AuthStyleInParams:
		form.Set("client_id", p.opts.ClientID)
		form.Set("client_secret", p.opts.ClientSecret)
	}
	req, err := http.NewRequestWithContext(ctx, http.MethodPost, p.meta.RevocationEndpoint, strings.NewReader(form.Encode()))
	if err != nil {
		return fmt.Errorf("provider: revoke: %w", err)
	}
	req.Header.Set("Content-Type", "application/x-www-form-urlencoded")
	if p.oauth.Endpoint.AuthStyle != oauth2.AuthStyleInParams && auth == nil {
		// RFC 6749 §2.3.1: the credentials are form-urlencoded before Basic.
		req.SetBasicAuth(url.QueryEscape(p.opts.ClientID), url.QueryEscape(p.opts.ClientSecret))
	}
	resp, err := p.opts.HTTPClient.Do(req)
	if err != nil {
		return fmt.Errorf("provider: revoke: %w", err)
	}
	defer resp.Body.Close()
	io.Copy(io.Discard, io.LimitReader(resp.Body, 64<<10))
	if resp.StatusCode != http.StatusOK {
		return fmt.Errorf("provider: revoke: status %d", resp.StatusCode)
	}
	return nil
}

// EndSessionURL returns the provider's RP-initiated logout URL (OpenID
// Connect RP-Initiated Logout 1.0 §2), or "" when the provider has no
// end_session_endpoint.
func (p *Provider) EndSessionURL(idTokenHint, postLogoutRedirectURI, state string) string {
	if p.meta.EndSessionEndpoint == "" {
		return ""
	}
	u, err := url.Parse(p.meta.EndSessionEndpoint)
	if err != nil {
		return ""
	}
	q := u.Query()
	if idTokenHint != "" {
		q.Set("id_token_hint", idTokenHint)
	}
	q.Set("client_id", p.opts.ClientID)
	if postLogoutRedirectURI != "" {
		q.Set("post_logout_redirect_uri", postLogoutRedirectURI)
	}
	if state != "" {
		q.Set("state", state)
	}
	u.RawQuery = q.Encode()
	return u.String()
}
