package proxy

import (
	"net/http"
	"net/url"
	"strings"
	"testing"
	"time"
)

func FuzzMatch(f *testing.F) {
	for _, s := range []string{"/api/x", "/api/../x", "/api/%2e%2e/x", "/api//x", "/api", "/api/v1/..;/x", "/%61pi/x"} {
		f.Add(s)
	}
	up, _ := url.Parse("http://127.0.0.1:1/base/")
	p, err := New([]Route{
		{Prefix: "/api/", Upstream: up, StripPrefix: true, Timeout: time.Second},
		{Prefix: "/api/v1/", Upstream: up, Timeout: time.Second},
		{Prefix: "/", Upstream: up, Timeout: time.Second},
	}, Options{PublicURL: up, CookiePrefix: "g"})
	if err != nil {
		f.Fatal(err)
	}
	f.Fuzz(func(t *testing.T, target string) {
		u, err := url.ParseRequestURI(target)
		if err != nil {
			return
		}
		r := &http.Request{Method: "GET", URL: u, Header: http.Header{}}
		m, ok := p.Match(r)
		if !ok {
			return
		}
		path := u.Path
		if !underPrefix(path, m.Route.Prefix) || !underPrefix(m.path, m.Route.Prefix) {
			t.Fatalf("%q matched %q but is not under it", target, m.Route.Prefix)
		}
		for _, seg := range strings.Split(path, "/") {
			name, _, _ := strings.Cut(seg, ";")
			if name == "." || name == ".." {
				t.Fatalf("%q matched with a dot segment", target)
			}
		}
		if strings.Contains(strings.ToLower(u.EscapedPath()), "%2f") || strings.Contains(path, "//") || strings.Contains(path, "\\") {
			t.Fatalf("%q matched with an encoded or doubled separator", target)
		}
		for _, e := range p.entries {
			if underPrefix(path, e.Prefix) && len(e.Prefix) > len(m.Route.Prefix) {
				t.Fatalf("%q matched %q, but %q is longer", target, m.Route.Prefix, e.Prefix)
			}
		}
		// The stripped outbound path stays a clean absolute path.
		esc := stripSegments(u.EscapedPath(), strings.Count(m.Route.Prefix, "/")-1)
		if !strings.HasPrefix(esc, "/") {
			t.Fatalf("stripped path %q of %q is not absolute", esc, target)
		}
	})
}
