// Package devprovidertest starts a devprovider.Provider on a loopback
// httptest server for Gatehouse's tests.
package devprovidertest

import (
	"net/http/httptest"
	"testing"

	"github.com/gatehouse-bff/gatehouse/internal/devprovider"
)

// NewTestServer starts a provider for opts on an httptest server bound to
// 127.0.0.1 and closes it when the test ends. opts.Issuer is replaced by the
// server's URL, which is only known once its listener exists.
func NewTestServer(tb testing.TB, opts devprovider.Options) (*devprovider.Provider, *httptest.Server) {
	tb.Helper()
	srv := httptest.NewUnstartedServer(nil)
	opts.Issuer = "http://" + srv.Listener.Addr().String()
	p, err := devprovider.New(opts)
	if err != nil {
		srv.Close()
		tb.Fatalf("devprovidertest: %v", err)
	}
	srv.Config.Handler = p
	srv.Start()
	tb.Cleanup(srv.Close)
	return p, srv
}
