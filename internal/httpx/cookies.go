package httpx

import (
	"net/http"
	"strings"
)

// maxCookies is net/http's default limit on the cookies of a request
// (GODEBUG httpcookiemaxnum): a request with more has none, for
// Request.Cookies as for Cookies here.
const maxCookies = 3000

// Cookies calls yield with each cookie of h's Cookie lines, in order, as
// http.Request.Cookies reads them: name, value without its quotes, and
// whether it was quoted; pairs that do not parse are skipped. It stops
// when yield returns false. Unlike Request.Cookies it allocates nothing,
// and it applies net/http's default cookie limit whatever GODEBUG says.
func Cookies(h http.Header, yield func(name, value string, quoted bool) bool) {
	lines := h["Cookie"]
	n := 0
	for _, line := range lines {
		n += strings.Count(line, ";") + 1
	}
	if n > maxCookies {
		return
	}
	for _, line := range lines {
		line = trimSpace(line)
		var part string
		for len(line) > 0 {
			part, line, _ = strings.Cut(line, ";")
			part = trimSpace(part)
			if part == "" {
				continue
			}
			name, val, _ := strings.Cut(part, "=")
			name = trimSpace(name)
			if !ValidToken(name) {
				continue
			}
			val, quoted, ok := cookieValue(val)
			if !ok {
				continue
			}
			if !yield(name, val, quoted) {
				return
			}
		}
	}
}

// Cookie returns the value of the first cookie named name in h, as
// http.Request.Cookie finds it, without an allocation.
func Cookie(h http.Header, name string) (string, bool) {
	var value string
	found := false
	if name == "" {
		return "", false
	}
	Cookies(h, func(n, v string, _ bool) bool {
		if n == name {
			value, found = v, true
		}
		return !found
	})
	return value, found
}

// cookieValue strips a cookie value's quotes and checks its bytes
// (RFC 6265 §4.1.1), as net/http does.
func cookieValue(raw string) (value string, quoted, ok bool) {
	if len(raw) > 1 && raw[0] == '"' && raw[len(raw)-1] == '"' {
		raw, quoted = raw[1:len(raw)-1], true
	}
	for i := 0; i < len(raw); i++ {
		if b := raw[i]; b < 0x20 || b >= 0x7f || b == '"' || b == ';' || b == '\\' {
			return "", quoted, false
		}
	}
	return raw, quoted, true
}

// trimSpace removes leading and trailing ASCII space, as
// textproto.TrimString does.
func trimSpace(s string) string {
	for len(s) > 0 && isSpace(s[0]) {
		s = s[1:]
	}
	for len(s) > 0 && isSpace(s[len(s)-1]) {
		s = s[:len(s)-1]
	}
	return s
}

func isSpace(b byte) bool { return b == ' ' || b == '\t' || b == '\n' || b == '\r' }
