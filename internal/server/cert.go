package server

import (
	"crypto/sha256"
	"crypto/tls"
	"crypto/x509"
	"fmt"
	"log/slog"
	"os"
	"sync"
	"sync/atomic"
	"time"
)

// certificate serves a TLS key pair read from PEM files and picks up new
// files without a restart. A replacement that cannot be used (unreadable,
// malformed, or a key that does not match the certificate, as happens
// between writing the two files) is logged and the current pair kept; the
// next check tries again.
type certificate struct {
	certFile, keyFile string
	interval          time.Duration
	now               func() time.Time
	logger            *slog.Logger

	cur atomic.Pointer[tls.Certificate]

	mu        sync.Mutex // guards the fields below and serialises reloads
	lastCheck time.Time
	loaded    [sha256.Size]byte // digest of the files behind cur
	failed    [sha256.Size]byte // digest of the last unusable files, logged once
	unread    bool              // the files could not be read at the last check
}

func newCertificate(certFile, keyFile string, interval time.Duration, now func() time.Time, logger *slog.Logger) (*certificate, error) {
	c := &certificate{certFile: certFile, keyFile: keyFile, interval: interval, now: now, logger: logger}
	c.mu.Lock()
	defer c.mu.Unlock()
	c.lastCheck = now()
	if _, err := c.reloadLocked(); err != nil {
		return nil, err
	}
	return c, nil
}

// GetCertificate returns the current key pair for a handshake, first
// checking the files when the reload interval has passed since the last
// check. It is the tls.Config.GetCertificate hook.
func (c *certificate) GetCertificate(*tls.ClientHelloInfo) (*tls.Certificate, error) {
	c.mu.Lock()
	if now := c.now(); now.Sub(c.lastCheck) >= c.interval {
		c.lastCheck = now
		c.reloadIfChanged()
	}
	c.mu.Unlock()
	return c.cur.Load(), nil
}

// reloadIfChanged loads the files when they differ from the served pair and
// logs the outcome. c.mu must be held.
func (c *certificate) reloadIfChanged() {
	changed, err := c.reloadLocked()
	switch {
	case err != nil:
		c.logger.Error("server: TLS certificate reload failed; keeping the current certificate", "cert_file", c.certFile, "key_file", c.keyFile, "err", err)
	case changed:
		leaf := c.cur.Load().Leaf
		c.logger.Info("server: TLS certificate reloaded", "cert_file", c.certFile, "subject", leaf.Subject.String(), "serial", leaf.SerialNumber.String(), "not_after", leaf.NotAfter)
	}
}

// reloadLocked reads both files and, when their contents differ from the
// served pair, parses them and swaps them in. It reports whether it swapped.
// An error for files that already failed at the last check is returned
// only the first time, so a broken or missing file is not logged at every
// interval. c.mu must be held.
func (c *certificate) reloadLocked() (bool, error) {
	certPEM, keyPEM, err := c.read()
	if err != nil {
		if c.unread {
			return false, nil
		}
		c.unread = c.cur.Load() != nil
		return false, err
	}
	c.unread = false
	h := sha256.New()
	fmt.Fprintf(h, "%d:", len(certPEM))
	h.Write(certPEM)
	h.Write(keyPEM)
	var sum [sha256.Size]byte
	h.Sum(sum[:0])
	if c.cur.Load() != nil && (sum == c.loaded || sum == c.failed) {
		clear(keyPEM)
		return false, nil
	}
	pair, err := tls.X509KeyPair(certPEM, keyPEM)
	clear(keyPEM)
	if err == nil && pair.Leaf == nil {
		// GODEBUG x509keypairleaf=0 leaves Leaf unset.
		pair.Leaf, err = x509.ParseCertificate(pair.Certificate[0])
	}
	if err != nil {
		c.failed = sum
		return false, fmt.Errorf("server: loading TLS key pair: %w", err)
	}
	c.loaded = sum
	c.cur.Store(&pair)
	return true, nil
}

func (c *certificate) read() (certPEM, keyPEM []byte, err error) {
	certPEM, err = os.ReadFile(c.certFile)
	if err != nil {
		return nil, nil, fmt.Errorf("server: reading TLS certificate: %w", err)
	}
	keyPEM, err = os.ReadFile(c.keyFile)
	if err != nil {
		return nil, nil, fmt.Errorf("server: reading TLS key: %w", err)
	}
	return certPEM, keyPEM, nil
}
