package login

import (
	"net/url"
	"strings"
)

// maxReturnURL bounds the length of a return URL.
const maxReturnURL = 2048

// LocalPath reports whether s is a safe local return URL: a path with one
// leading '/', not "//" or "/\" (which browsers treat as another host), no
// scheme or host, no control characters and no backslash, so that the
// login and logout endpoints are no open redirector (RFC 9700 §4.11).
func LocalPath(s string) bool {
	if len(s) == 0 || len(s) > maxReturnURL || s[0] != '/' {
		return false
	}
	if len(s) > 1 && (s[1] == '/' || s[1] == '\\') {
		return false
	}
	for i := 0; i < len(s); i++ {
		// Browsers drop tab and newline from URLs, so "/\t/evil" becomes
		// "//evil"; every control character and backslash is refused.
		if c := s[i]; c < 0x20 || c == 0x7f || c == '\\' {
			return false
		}
	}
	u, err := url.Parse(s)
	if err != nil || u.Scheme != "" || u.Host != "" || u.User != nil || u.Opaque != "" {
		return false
	}
	// Percent-encoded slashes or backslashes right after the first '/'
	// would read as another host to a server that decodes before routing.
	if p, err := url.PathUnescape(u.EscapedPath()); err != nil || strings.HasPrefix(p, "//") || strings.HasPrefix(p, "/\\") {
		return false
	}
	return true
}
