package server

import (
	"context"
	"crypto/ecdsa"
	"crypto/elliptic"
	"crypto/rand"
	"crypto/tls"
	"crypto/x509"
	"crypto/x509/pkix"
	"encoding/pem"
	"math/big"
	"net"
	"os"
	"path/filepath"
	"strings"
	"testing"
	"time"

	"github.com/gatehouse-bff/gatehouse/internal/testkit"
)

// testCert is a self-signed certificate for 127.0.0.1 as PEM.
type testCert struct {
	serial          int64
	certPEM, keyPEM []byte
	x509            *x509.Certificate
}

func newTestCert(t *testing.T, serial int64) testCert {
	t.Helper()
	key, err := ecdsa.GenerateKey(elliptic.P256(), rand.Reader)
	if err != nil {
		t.Fatal(err)
	}
	tmpl := &x509.Certificate{
		SerialNumber:          big.NewInt(serial),
		Subject:               pkix.Name{CommonName: "gatehouse test"},
		NotBefore:             time.Now().Add(-time.Hour),
		NotAfter:              time.Now().Add(time.Hour),
		KeyUsage:              x509.KeyUsageDigitalSignature,
		ExtKeyUsage:           []x509.ExtKeyUsage{x509.ExtKeyUsageServerAuth},
		BasicConstraintsValid: true,
		IPAddresses:           []net.IP{net.IPv4(127, 0, 0, 1)},
	}
	der, err := x509.CreateCertificate(rand.Reader, tmpl, tmpl, &key.PublicKey, key)
	if err != nil {
		t.Fatal(err)
	}
	parsed, err := x509.ParseCertificate(der)
	if err != nil {
		t.Fatal(err)
	}
	kder, err := x509.MarshalPKCS8PrivateKey(key)
	if err != nil {
		t.Fatal(err)
	}
	return testCert{
		serial:  serial,
		certPEM: pem.EncodeToMemory(&pem.Block{Type: "CERTIFICATE", Bytes: der}),
		keyPEM:  pem.EncodeToMemory(&pem.Block{Type: "PRIVATE KEY", Bytes: kder}),
		x509:    parsed,
	}
}

func writeFile(t *testing.T, path string, data []byte) {
	t.Helper()
	// Replace atomically, as certificate managers do.
	tmp := path + ".tmp"
	if err := os.WriteFile(tmp, data, 0o600); err != nil {
		t.Fatal(err)
	}
	if err := os.Rename(tmp, path); err != nil {
		t.Fatal(err)
	}
}

func (c testCert) write(t *testing.T, certFile, keyFile string) {
	t.Helper()
	writeFile(t, certFile, c.certPEM)
	writeFile(t, keyFile, c.keyPEM)
}

// handshake connects to addr, verifying against roots, and returns the
// served certificate's serial and the negotiated ALPN protocol.
func handshake(t *testing.T, addr string, roots *x509.CertPool, cfg *tls.Config) (int64, string) {
	t.Helper()
	if cfg == nil {
		cfg = &tls.Config{}
	}
	cfg.RootCAs = roots
	c, err := tls.Dial("tcp", addr, cfg)
	if err != nil {
		t.Fatalf("TLS handshake: %v", err)
	}
	defer c.Close()
	st := c.ConnectionState()
	return st.PeerCertificates[0].SerialNumber.Int64(), st.NegotiatedProtocol
}

func TestRunTLSReloadsCertificate(t *testing.T) {
	dir := t.TempDir()
	certFile, keyFile := filepath.Join(dir, "cert.pem"), filepath.Join(dir, "key.pem")
	first, second := newTestCert(t, 1001), newTestCert(t, 1002)
	first.write(t, certFile, keyFile)
	roots := x509.NewCertPool()
	roots.AddCert(first.x509)
	roots.AddCert(second.x509)

	clock := testkit.NewClock(time.Date(2026, 1, 1, 0, 0, 0, 0, time.UTC))
	logger, logs := testLogger()
	ln := listen(t)
	ctx, cancel := context.WithCancel(context.Background())
	done := startRun(ctx, ln, nil, Options{
		TLSCert: certFile, TLSKey: keyFile,
		ReloadInterval: time.Minute, Now: clock.Now, Logger: logger,
	})
	defer func() {
		cancel()
		if err := <-done; err != nil {
			t.Error(err)
		}
	}()
	addr := ln.Addr().String()

	serial, proto := handshake(t, addr, roots, &tls.Config{NextProtos: []string{"h2", "http/1.1"}})
	if serial != first.serial {
		t.Fatalf("served serial %d; want %d", serial, first.serial)
	}
	if proto != "h2" {
		t.Errorf("negotiated %q; want h2", proto)
	}
	if _, err := tls.Dial("tcp", addr, &tls.Config{RootCAs: roots, MaxVersion: tls.VersionTLS11}); err == nil {
		t.Error("a TLS 1.1 handshake succeeded; want TLS 1.2 at least")
	}

	second.write(t, certFile, keyFile)
	if serial, _ := handshake(t, addr, roots, nil); serial != first.serial {
		t.Errorf("before the reload interval: served serial %d; want the old %d", serial, first.serial)
	}
	clock.Advance(time.Minute)
	if serial, _ := handshake(t, addr, roots, nil); serial != second.serial {
		t.Errorf("after the reload interval: served serial %d; want the new %d", serial, second.serial)
	}
	if !strings.Contains(logs.String(), "serial=1002") {
		t.Errorf("the reload was not logged; log:\n%s", logs)
	}

	// A broken replacement keeps the current certificate and is logged.
	writeFile(t, certFile, []byte("-----BEGIN CERTIFICATE-----\nbroken\n-----END CERTIFICATE-----\n"))
	clock.Advance(time.Minute)
	if serial, _ := handshake(t, addr, roots, nil); serial != second.serial {
		t.Errorf("after a broken replacement: served serial %d; want the kept %d", serial, second.serial)
	}
	if !strings.Contains(logs.String(), "level=ERROR") || !strings.Contains(logs.String(), "reload failed") {
		t.Errorf("the failed reload was not logged as an error; log:\n%s", logs)
	}
}

func TestCertificateReload(t *testing.T) {
	dir := t.TempDir()
	certFile, keyFile := filepath.Join(dir, "cert.pem"), filepath.Join(dir, "key.pem")
	a, b := newTestCert(t, 1), newTestCert(t, 2)
	a.write(t, certFile, keyFile)
	clock := testkit.NewClock(time.Date(2026, 1, 1, 0, 0, 0, 0, time.UTC))
	logger, logs := testLogger()
	c, err := newCertificate(certFile, keyFile, time.Second, clock.Now, logger)
	if err != nil {
		t.Fatal(err)
	}
	serving := func() int64 {
		t.Helper()
		cert, err := c.GetCertificate(nil)
		if err != nil {
			t.Fatal(err)
		}
		return cert.Leaf.SerialNumber.Int64()
	}
	errorLines := func() int { return strings.Count(logs.String(), "level=ERROR") }

	steps := []struct {
		name       string
		change     func()
		want       int64
		wantErrors int // error lines logged so far
	}{
		{"unchanged files", func() {}, 1, 0},
		{"mismatched key (half-written pair)", func() { writeFile(t, certFile, b.certPEM) }, 1, 1},
		{"same broken pair is not logged again", func() {}, 1, 1},
		{"key completes the pair", func() { writeFile(t, keyFile, b.keyPEM) }, 2, 1},
		{"missing key file", func() { os.Remove(keyFile) }, 2, 2},
		{"still missing is not logged again", func() {}, 2, 2},
		{"restored to the first pair", func() { a.write(t, certFile, keyFile) }, 1, 2},
		{"broken again after a good read is logged", func() { writeFile(t, certFile, []byte("nope")) }, 1, 3},
	}
	for _, s := range steps {
		s.change()
		clock.Advance(time.Second)
		if got := serving(); got != s.want {
			t.Errorf("%s: serving serial %d; want %d", s.name, got, s.want)
		}
		if got := errorLines(); got != s.wantErrors {
			t.Errorf("%s: %d errors logged; want %d\n%s", s.name, got, s.wantErrors, logs)
		}
	}
}

func TestNewCertificateFailsOnBadFiles(t *testing.T) {
	dir := t.TempDir()
	certFile, keyFile := filepath.Join(dir, "cert.pem"), filepath.Join(dir, "key.pem")
	a, b := newTestCert(t, 1), newTestCert(t, 2)
	logger, _ := testLogger()
	tests := []struct {
		name       string
		cert, key  []byte
		certExists bool
	}{
		{"missing files", nil, nil, false},
		{"garbage", []byte("nope"), []byte("nope"), true},
		{"key of another certificate", a.certPEM, b.keyPEM, true},
	}
	for _, tt := range tests {
		t.Run(tt.name, func(t *testing.T) {
			os.Remove(certFile)
			os.Remove(keyFile)
			if tt.certExists {
				writeFile(t, certFile, tt.cert)
				writeFile(t, keyFile, tt.key)
			}
			if _, err := newCertificate(certFile, keyFile, time.Second, time.Now, logger); err == nil {
				t.Error("newCertificate = nil error; want one")
			}
			ln := listen(t)
			if err := Run(context.Background(), ln, nil, Options{TLSCert: certFile, TLSKey: keyFile, Logger: logger}); err == nil {
				t.Error("Run = nil; want an error for an unusable certificate")
			}
		})
	}
}
