package csrf

import (
	"errors"
	"net/netip"
	"strconv"
	"strings"
)

var errBadOrigin = errors.New("csrf: malformed origin")

// ParseOrigin parses a serialised origin "scheme://host[:port]" (RFC 6454
// §6.2) and returns it normalised: scheme and host lower-cased, default port
// removed, IPv6 literals in brackets in their canonical form. Only http and
// https origins are accepted; paths, user info, queries, fragments and
// percent-encoding are rejected, as browsers never send them in Origin.
func ParseOrigin(s string) (string, error) {
	scheme, rest, ok := strings.Cut(s, "://")
	if !ok {
		return "", errBadOrigin
	}
	scheme = strings.ToLower(scheme)
	var defaultPort string
	switch scheme {
	case "http":
		defaultPort = "80"
	case "https":
		defaultPort = "443"
	default:
		return "", errBadOrigin
	}
	if rest == "" {
		return "", errBadOrigin
	}
	var host, port string
	if rest[0] == '[' {
		end := strings.IndexByte(rest, ']')
		if end < 0 {
			return "", errBadOrigin
		}
		a, err := netip.ParseAddr(rest[1:end])
		if err != nil || !a.Is6() || a.Zone() != "" {
			return "", errBadOrigin
		}
		host = "[" + a.String() + "]"
		after := rest[end+1:]
		if after != "" {
			if after[0] != ':' {
				return "", errBadOrigin
			}
			port = after[1:]
			if port == "" {
				return "", errBadOrigin
			}
		}
	} else {
		host = rest
		if i := strings.LastIndexByte(rest, ':'); i >= 0 {
			host, port = rest[:i], rest[i+1:]
			if port == "" {
				return "", errBadOrigin
			}
		}
		if host == "" {
			return "", errBadOrigin
		}
		for i := 0; i < len(host); i++ {
			c := host[i]
			if !('a' <= c && c <= 'z' || 'A' <= c && c <= 'Z' || '0' <= c && c <= '9' || c == '.' || c == '-' || c == '_') {
				return "", errBadOrigin
			}
		}
		host = strings.ToLower(host)
	}
	if port != "" {
		for i := 0; i < len(port); i++ {
			if port[i] < '0' || port[i] > '9' {
				return "", errBadOrigin
			}
		}
		n, err := strconv.Atoi(port)
		if err != nil || n < 1 || n > 65535 {
			return "", errBadOrigin
		}
		port = strconv.Itoa(n)
		if port == defaultPort {
			port = ""
		}
	}
	if port == "" {
		return scheme + "://" + host, nil
	}
	return scheme + "://" + host + ":" + port, nil
}
