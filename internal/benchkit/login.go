package benchkit

import (
	"context"
	"encoding/json"
	"errors"
	"fmt"
	"io"
	"net/http"
	"net/http/cookiejar"
	"net/url"
	"time"
)

// secureJar keeps cookies for http URLs as if they were https, so the
// gateway's Secure __Host- cookies travel over the plain-http loopback.
type secureJar struct{ http.CookieJar }

func asHTTPS(u *url.URL) *url.URL {
	c := *u
	c.Scheme = "https"
	return &c
}

func (j secureJar) SetCookies(u *url.URL, cs []*http.Cookie) { j.CookieJar.SetCookies(asHTTPS(u), cs) }
func (j secureJar) Cookies(u *url.URL) []*http.Cookie        { return j.CookieJar.Cookies(asHTTPS(u)) }

// Browser is one signed-in browser: a cookie jar and the gateway it talks to.
type Browser struct {
	Client *http.Client
	gw     *url.URL
	cookie string // session cookie name
}

// NewBrowser returns a browser for the gateway at gwURL whose session
// cookie is cookieName. Its requests use transport (nil: a private one).
func NewBrowser(gwURL, cookieName string, transport http.RoundTripper) (*Browser, error) {
	u, err := url.Parse(gwURL)
	if err != nil {
		return nil, err
	}
	jar, _ := cookiejar.New(nil)
	return &Browser{Client: &http.Client{Jar: secureJar{jar}, Transport: transport, Timeout: 30 * time.Second}, gw: u, cookie: cookieName}, nil
}

// Login runs the real login flow (gateway, provider with auto-login,
// callback) and returns "name=value" for the session cookie.
func (b *Browser) Login(ctx context.Context) (string, error) {
	req, _ := http.NewRequestWithContext(ctx, "GET", b.gw.String()+"/bff/login?returnUrl=%2F", nil)
	resp, err := b.Client.Do(req)
	if err != nil {
		return "", fmt.Errorf("benchkit: login: %w", err)
	}
	io.Copy(io.Discard, resp.Body)
	resp.Body.Close()
	if c := b.Cookie(); c != "" {
		return c, nil
	}
	return "", fmt.Errorf("benchkit: login set no session cookie (ended at %s with %d)", resp.Request.URL.Path, resp.StatusCode)
}

// Cookie returns "name=value" of the session cookie, or "".
func (b *Browser) Cookie() string {
	for _, ck := range b.Client.Jar.Cookies(b.gw) {
		if ck.Name == b.cookie {
			return ck.Name + "=" + ck.Value
		}
	}
	return ""
}

// Logout ends the session through the BFF logout URL /bff/user names,
// following the provider's end-session redirect back.
func (b *Browser) Logout(ctx context.Context) error {
	req, _ := http.NewRequestWithContext(ctx, "GET", b.gw.String()+"/bff/user", nil)
	req.Header.Set("X-CSRF", "1")
	resp, err := b.Client.Do(req)
	if err != nil {
		return fmt.Errorf("benchkit: user: %w", err)
	}
	var claims []struct {
		Type  string `json:"type"`
		Value any    `json:"value"`
	}
	err = json.NewDecoder(resp.Body).Decode(&claims)
	resp.Body.Close()
	if resp.StatusCode != http.StatusOK || err != nil {
		return fmt.Errorf("benchkit: user: status %d (%v)", resp.StatusCode, err)
	}
	var logout string
	for _, c := range claims {
		if c.Type == "bff:logout_url" {
			logout, _ = c.Value.(string)
		}
	}
	if logout == "" {
		return errors.New("benchkit: /bff/user names no bff:logout_url")
	}
	u, err := b.gw.Parse(logout)
	if err != nil {
		return err
	}
	req, _ = http.NewRequestWithContext(ctx, "GET", u.String(), nil)
	resp, err = b.Client.Do(req)
	if err != nil {
		return fmt.Errorf("benchkit: logout: %w", err)
	}
	io.Copy(io.Discard, resp.Body)
	resp.Body.Close()
	return nil
}

// APIRequest is the SPA's authenticated API call to base+path: the session
// cookie and the anti-forgery header, as a browser's fetch sends them.
func APIRequest(base, path, cookie string) *http.Request {
	req, err := http.NewRequest("GET", base+path, nil)
	if err != nil {
		panic(err) // base and path are the program's own constants
	}
	req.Header.Set("Cookie", cookie)
	req.Header.Set("X-CSRF", "1")
	req.Header.Set("Accept", "application/json")
	return req
}
