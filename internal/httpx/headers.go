package httpx

import (
	"net/http"
	"strings"
)

// IsUpgrade reports whether r asks for a protocol upgrade (RFC 9110 §7.8):
// an Upgrade header and "upgrade" among the Connection options.
func IsUpgrade(r *http.Request) bool {
	return r.Header.Get("Upgrade") != "" && HasToken(r.Header.Values("Connection"), "upgrade")
}

// IsWebSocket reports whether r is a WebSocket opening handshake
// (RFC 6455 §4.1).
func IsWebSocket(r *http.Request) bool {
	return HasToken(r.Header.Values("Connection"), "upgrade") &&
		HasToken(r.Header.Values("Upgrade"), "websocket")
}

// HasToken reports whether a comma-separated header list contains token,
// ignoring case.
func HasToken(values []string, token string) bool {
	for _, v := range values {
		for f := range strings.SplitSeq(v, ",") {
			if strings.EqualFold(strings.TrimSpace(f), token) {
				return true
			}
		}
	}
	return false
}

// ValidToken reports whether s is an HTTP token (RFC 9110 §5.6.2), the
// syntax of methods and header field names.
func ValidToken(s string) bool {
	if s == "" {
		return false
	}
	for i := 0; i < len(s); i++ {
		c := s[i]
		ok := 'a' <= c && c <= 'z' || 'A' <= c && c <= 'Z' || '0' <= c && c <= '9' ||
			strings.IndexByte("!#$%&'*+-.^_`|~", c) >= 0
		if !ok {
			return false
		}
	}
	return true
}
