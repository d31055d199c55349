package proxy

import (
	"net/url"
	"strings"
)

// cleanPath returns the decoded and the escaped path of u when the path is
// in the clean form the package documentation describes, and false
// otherwise.
func cleanPath(u *url.URL) (path, escaped string, ok bool) {
	if u.Opaque != "" || u.Path == "" || u.Path[0] != '/' {
		return "", "", false
	}
	path = u.Path
	escaped = u.EscapedPath()
	if hasEncoded(escaped, "%2f") || hasEncoded(escaped, "%5c") || hasEncoded(escaped, "%00") {
		return "", "", false
	}
	// A decoded path still holding escapes was double-encoded; an upstream
	// that decodes once more would see the dots or slashes.
	if hasEncoded(path, "%2e") || hasEncoded(path, "%2f") || hasEncoded(path, "%5c") {
		return "", "", false
	}
	for i := 0; i < len(path); i++ {
		if c := path[i]; c < 0x20 || c == 0x7f || c == '\\' {
			return "", "", false
		}
	}
	rest := path[1:]
	for rest != "" {
		seg, after, more := strings.Cut(rest, "/")
		if seg == "" && more {
			return "", "", false // "//"
		}
		// Servlet containers drop ";params" from a segment, so "..;x" is
		// ".." to them.
		if name, _, _ := strings.Cut(seg, ";"); name == "." || name == ".." {
			return "", "", false
		}
		rest = after
	}
	return path, escaped, true
}

// hasEncoded reports whether s contains the percent-escape esc (lower-case
// hex), in either case.
func hasEncoded(s, esc string) bool {
	for {
		i := strings.IndexByte(s, '%')
		if i < 0 || len(s)-i < 3 {
			return false
		}
		if strings.EqualFold(s[i:i+3], esc) {
			return true
		}
		s = s[i+1:]
	}
}

// underPrefix reports whether path falls under route prefix, which ends in
// "/": it starts with prefix or equals prefix without its trailing slash.
func underPrefix(path, prefix string) bool {
	return strings.HasPrefix(path, prefix) || path == prefix[:len(prefix)-1]
}

// stripSegments removes the first n segments from p, which starts with "/".
// The result starts with "/".
func stripSegments(p string, n int) string {
	i := 0
	for ; n > 0; n-- {
		j := strings.IndexByte(p[i+1:], '/')
		if j < 0 {
			return "/"
		}
		i += j + 1
	}
	return p[i:]
}

// CleanPath reports whether u's path is in the clean form [Proxy.Match]
// requires (see the package documentation). Handlers that forward or serve
// files outside the proxy use it to refuse the same traversal tricks.
func CleanPath(u *url.URL) bool {
	_, _, ok := cleanPath(u)
	return ok
}
