package devprovider

import (
	"context"
	"encoding/json"
	"fmt"
	"log/slog"
	"net/http"
	"net/url"
	"strings"
	"time"

	jose "github.com/go-jose/go-jose/v4"
)

// backchannelLogoutEvent is the events member of a logout token
// (OpenID Connect Back-Channel Logout 1.0 §2.4).
const backchannelLogoutEvent = "http://schemas.openid.net/event/backchannel-logout"

// logoutTokenTTL is the lifetime of a logout token; the specification
// recommends a short one (§2.4).
const logoutTokenTTL = 2 * time.Minute

// logoutNotice is one back-channel logout owed to a relying party.
type logoutNotice struct {
	clientID, uri, sub, sid string
}

// deliverLogouts POSTs a logout token to each relying party in turn
// (Back-Channel Logout 1.0 §2.5), before the end_session response, so a test
// observes the relying party's state after logout without waiting.
func (s *storage) deliverLogouts(ctx context.Context, notices []logoutNotice) {
	for _, n := range notices {
		err := s.deliverLogout(ctx, n)
		s.mu.Lock()
		if err != nil {
			s.stats.BackchannelLogoutFailures++
		} else {
			s.stats.BackchannelLogouts++
		}
		s.mu.Unlock()
		if err != nil {
			s.logger.Warn("devprovider: back-channel logout failed", slog.String("client_id", n.clientID), slog.Any("error", err))
		}
	}
}

func (s *storage) deliverLogout(ctx context.Context, n logoutNotice) error {
	token, err := s.logoutToken(n)
	if err != nil {
		return err
	}
	ctx, cancel := context.WithTimeout(context.WithoutCancel(ctx), 5*time.Second)
	defer cancel()
	body := url.Values{"logout_token": {token}}.Encode()
	req, err := http.NewRequestWithContext(ctx, http.MethodPost, n.uri, strings.NewReader(body))
	if err != nil {
		return fmt.Errorf("devprovider: back-channel logout: %w", err)
	}
	req.Header.Set("Content-Type", "application/x-www-form-urlencoded")
	resp, err := s.httpClient.Do(req)
	if err != nil {
		return fmt.Errorf("devprovider: back-channel logout: %w", err)
	}
	resp.Body.Close()
	if resp.StatusCode != http.StatusOK && resp.StatusCode != http.StatusNoContent {
		return fmt.Errorf("devprovider: back-channel logout: status %d", resp.StatusCode)
	}
	return nil
}

// logoutToken signs a logout token for one relying party and session
// (Back-Channel Logout 1.0 §2.4): typ logout+jwt, sub and sid, the
// back-channel event, a jti, and no nonce.
func (s *storage) logoutToken(n logoutNotice) (string, error) {
	signer, err := jose.NewSigner(
		jose.SigningKey{Algorithm: jose.RS256, Key: &jose.JSONWebKey{Key: s.key.key, KeyID: s.key.id}},
		(&jose.SignerOptions{}).WithType("logout+jwt"),
	)
	if err != nil {
		return "", fmt.Errorf("devprovider: logout token signer: %w", err)
	}
	now := s.now()
	payload, err := json.Marshal(map[string]any{
		"iss":    s.issuer,
		"aud":    n.clientID,
		"iat":    now.Unix(),
		"exp":    now.Add(logoutTokenTTL).Unix(),
		"jti":    newID(),
		"sub":    n.sub,
		"sid":    n.sid,
		"events": map[string]any{backchannelLogoutEvent: map[string]any{}},
	})
	if err != nil {
		return "", fmt.Errorf("devprovider: logout token: %w", err)
	}
	jws, err := signer.Sign(payload)
	if err != nil {
		return "", fmt.Errorf("devprovider: sign logout token: %w", err)
	}
	return jws.CompactSerialize()
}
