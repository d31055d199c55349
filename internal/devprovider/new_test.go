package devprovider_test

import (
	"context"
	"net"
	"net/http"
	"strings"
	"testing"

	"github.com/gatehouse-bff/gatehouse/internal/devprovider"
)

func TestNewRejectsBadOptions(t *testing.T) {
	ok := devprovider.Client{ID: "c", Secret: "s", RedirectURIs: []string{"http://127.0.0.1:1/cb"}}
	cases := []struct {
		name string
		opts devprovider.Options
		want string
	}{
		{"empty issuer", devprovider.Options{}, "scheme"},
		{"non-loopback issuer", devprovider.Options{Issuer: "https://idp.example.com"}, "loopback"},
		{"issuer with path", devprovider.Options{Issuer: "http://127.0.0.1:9000/idp"}, "scheme://host"},
		{"unknown auto-login user", devprovider.Options{Issuer: "http://127.0.0.1:9000", AutoLogin: "mallory"}, "mallory"},
		{"client without secret", devprovider.Options{Issuer: "http://127.0.0.1:9000", Clients: []devprovider.Client{{ID: "c", RedirectURIs: ok.RedirectURIs}}}, "secret required"},
		{"unknown grant", devprovider.Options{Issuer: "http://127.0.0.1:9000", Clients: []devprovider.Client{{ID: "c", Secret: "s", GrantTypes: []string{"implicit"}}}}, "unknown grant"},
		{"code client without redirect", devprovider.Options{Issuer: "http://127.0.0.1:9000", Clients: []devprovider.Client{{ID: "c", Secret: "s"}}}, "redirect URI"},
		{"duplicate client", devprovider.Options{Issuer: "http://127.0.0.1:9000", Clients: []devprovider.Client{ok, ok}}, "duplicate client"},
		{"duplicate user", devprovider.Options{Issuer: "http://[::1]:9000", Users: []devprovider.User{{Username: "a"}, {Username: "a"}}}, "duplicate user"},
	}
	for _, tc := range cases {
		t.Run(tc.name, func(t *testing.T) {
			_, err := devprovider.New(tc.opts)
			if err == nil || !strings.Contains(err.Error(), tc.want) {
				t.Fatalf("New: err = %v, want one mentioning %q", err, tc.want)
			}
		})
	}
}

// fakeListener reports a non-loopback address and accepts nothing.
type fakeListener struct{ addr net.Addr }

func (l fakeListener) Accept() (net.Conn, error) { return nil, net.ErrClosed }
func (l fakeListener) Close() error              { return nil }
func (l fakeListener) Addr() net.Addr            { return l.addr }

func TestServeRejectsNonLoopbackListener(t *testing.T) {
	ln := fakeListener{&net.TCPAddr{IP: net.ParseIP("192.0.2.1"), Port: 9000}}
	err := devprovider.Serve(t.Context(), ln, devprovider.Options{Issuer: "http://127.0.0.1:9000"})
	if err == nil || !strings.Contains(err.Error(), "loopback") {
		t.Fatalf("Serve: err = %v, want a loopback error", err)
	}
}

func TestServe(t *testing.T) {
	ln, err := net.Listen("tcp", "127.0.0.1:0")
	if err != nil {
		t.Fatal(err)
	}
	ctx, cancel := context.WithCancel(t.Context())
	done := make(chan error, 1)
	go func() { done <- devprovider.Serve(ctx, ln, devprovider.Options{}) }()

	resp, err := http.Get("http://" + ln.Addr().String() + "/.well-known/openid-configuration")
	if err != nil {
		t.Fatal(err)
	}
	resp.Body.Close()
	if resp.StatusCode != http.StatusOK {
		t.Errorf("discovery: status %d", resp.StatusCode)
	}
	cancel()
	if err := <-done; err != nil {
		t.Errorf("Serve after cancel: %v", err)
	}
}
