package proxy

import (
	"crypto/tls"
	"net"
	"net/http"
	"time"
)

// NewTransport returns the HTTP transport Gatehouse uses for upstreams: a
// large idle connection pool (1024 idle connections, 256 per upstream, kept
// 90s), HTTP/2 where the upstream offers it, TLS 1.2 or later, bounded dial
// (10s) and TLS handshake (10s) times, and no proxy taken from the
// environment. It sets no response header timeout: each route's Timeout
// covers that.
func NewTransport() *http.Transport {
	d := &net.Dialer{Timeout: 10 * time.Second, KeepAlive: 30 * time.Second}
	return &http.Transport{
		Proxy:                  nil,
		DialContext:            d.DialContext,
		ForceAttemptHTTP2:      true,
		MaxIdleConns:           1024,
		MaxIdleConnsPerHost:    256,
		IdleConnTimeout:        90 * time.Second,
		TLSHandshakeTimeout:    10 * time.Second,
		ExpectContinueTimeout:  1 * time.Second,
		MaxResponseHeaderBytes: 1 << 20,
		TLSClientConfig:        &tls.Config{MinVersion: tls.VersionTLS12},
	}
}
