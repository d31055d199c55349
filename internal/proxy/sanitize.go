package proxy

import (
	"net/http"
	"strings"
)

// droppedHeaders are request header names removed before forwarding, in
// lower case with "-" (see foldEqual). RFC 9700 §4.13.
var droppedHeaders = [...]string{
	"authorization",
	"proxy-authorization",
	"forwarded",
	"x-real-ip",
	"x-client-ip",
	"true-client-ip",
	"x-cluster-client-ip",
	"x-original-forwarded-for",
	"x-original-url",
	"x-original-uri",
	"x-rewrite-url",
	"x-http-method-override",
	"x-http-method",
	"x-method-override",
	"x-remote-user",
	"x-remote-email",
	"x-remote-groups",
	"x-remote-name",
	"remote-user",
	"x-user",
	"x-user-id",
	"x-email",
	"x-userinfo",
	"x-id-token",
	"x-access-token",
}

// droppedPrefixes are request header name prefixes removed before
// forwarding, in the same form as droppedHeaders.
var droppedPrefixes = [...]string{
	"x-forwarded-",
	"x-auth-request-",
	"x-gatehouse-",
	"x-amzn-oidc-",
	"x-ms-client-principal",
	"x-goog-authenticated-user-",
	"x-goog-iap-",
}

// SanitizeRequest removes from h, the header of a request about to be sent
// upstream, everything a browser must not be able to pass to an upstream:
// the browser's Authorization, forwarding and identity headers (the list is
// in the package documentation; names are matched ignoring case and with
// "_" equal to "-") and every cookie for which stripCookie reports true.
// Other cookies are kept. Hop-by-hop headers are left to the caller.
func SanitizeRequest(h http.Header, stripCookie func(name string) bool) {
	for k := range h {
		if dropRequestHeader(k) {
			delete(h, k)
		}
	}
	if stripCookie != nil {
		filterCookies(h, stripCookie)
	}
}

// SanitizeResponse removes from h, the header of an upstream response, every
// Set-Cookie line that sets a cookie for which stripCookie reports true or
// that does not parse, so that an upstream cannot overwrite Gatehouse's
// cookies.
func SanitizeResponse(h http.Header, stripCookie func(name string) bool) {
	lines := h["Set-Cookie"]
	if len(lines) == 0 || stripCookie == nil {
		return
	}
	kept := lines[:0:0]
	for _, l := range lines {
		c, err := http.ParseSetCookie(l)
		if err != nil || stripCookie(c.Name) {
			continue
		}
		kept = append(kept, l)
	}
	if len(kept) == len(lines) {
		return
	}
	if len(kept) == 0 {
		delete(h, "Set-Cookie")
		return
	}
	h["Set-Cookie"] = kept
}

// CookiePrefixFilter returns a cookie filter for [SanitizeRequest] that
// matches names starting with prefix, ignoring case (browsers treat the
// "__Host-" prefix case-insensitively, RFC 6265bis §4.1.3).
func CookiePrefixFilter(prefix string) func(name string) bool {
	return func(name string) bool {
		return len(name) >= len(prefix) && strings.EqualFold(name[:len(prefix)], prefix)
	}
}

// dropRequestHeader reports whether the header named k must not reach an
// upstream.
func dropRequestHeader(k string) bool {
	for _, d := range droppedHeaders {
		if len(k) == len(d) && foldEqual(k, d) {
			return true
		}
	}
	for _, d := range droppedPrefixes {
		if len(k) >= len(d) && foldEqual(k[:len(d)], d) {
			return true
		}
	}
	return false
}

// foldEqual reports whether header name s equals want, a lower-case name
// using "-", ignoring ASCII case and treating "_" as "-". Go canonicalises
// only "-" names, and many upstream frameworks fold "_" into "-" (CGI
// style), so both spellings name the same header (RFC 9700 §4.13).
func foldEqual(s, want string) bool {
	if len(s) != len(want) {
		return false
	}
	for i := 0; i < len(s); i++ {
		c := s[i]
		switch {
		case 'A' <= c && c <= 'Z':
			c += 'a' - 'A'
		case c == '_':
			c = '-'
		}
		if c != want[i] {
			return false
		}
	}
	return true
}

// filterCookies rewrites the Cookie header of h without the cookies
// stripCookie matches. Cookie pairs that do not parse are dropped too.
func filterCookies(h http.Header, stripCookie func(name string) bool) {
	for k := range h {
		// A Cookie header under a non-canonical name ("cookie" set by a
		// client bypassing canonicalisation) would escape the filter.
		if k != "Cookie" && foldEqual(k, "cookie") {
			h["Cookie"] = append(h["Cookie"], h[k]...)
			delete(h, k)
		}
	}
	lines := h["Cookie"]
	if len(lines) == 0 {
		return
	}
	cookies := (&http.Request{Header: http.Header{"Cookie": lines}}).Cookies()
	var b strings.Builder
	for _, c := range cookies {
		if stripCookie(c.Name) {
			continue
		}
		if b.Len() > 0 {
			b.WriteString("; ")
		}
		b.WriteString(c.Name)
		b.WriteByte('=')
		if c.Quoted {
			b.WriteByte('"')
			b.WriteString(c.Value)
			b.WriteByte('"')
		} else {
			b.WriteString(c.Value)
		}
	}
	if b.Len() == 0 {
		delete(h, "Cookie")
		return
	}
	h["Cookie"] = []string{b.String()}
}
