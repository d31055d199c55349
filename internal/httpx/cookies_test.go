package httpx

import (
	"net/http"
	"strings"
	"testing"
)

var cookieLines = [][]string{
	nil,
	{""},
	{"a=1"},
	{"  a=1 ;b=2;; c = 3 "},
	{`q="quoted"; e=; =v; bad name=1; x=a"b; y=a\b; z="unterminated`},
	{"a=1", "a=2; b=3"},
	{"\t__Host-gatehouse=abc\r", "other=1"},
	{"n=\x7f", "m=\x1f", "ok=é"},
	{`"=1; s="";t="x"`},
	{strings.Repeat("k=v;", maxCookies-1) + "k=v"},
	{strings.Repeat("k=v;", maxCookies) + "k=v"},
	{strings.Repeat("k=v;", 1500), strings.Repeat("k=v;", 1500)},
}

// TestCookiesReadsAsNetHTTP: every line set gives the cookies, in order,
// that http.Request.Cookies gives, and Cookie the one Request.Cookie finds.
func TestCookiesReadsAsNetHTTP(t *testing.T) {
	for _, lines := range cookieLines {
		h := http.Header{}
		if lines != nil {
			h["Cookie"] = lines
		}
		want := (&http.Request{Header: h}).Cookies()
		var got []*http.Cookie
		Cookies(h, func(name, value string, quoted bool) bool {
			got = append(got, &http.Cookie{Name: name, Value: value, Quoted: quoted})
			return true
		})
		if len(got) != len(want) {
			t.Errorf("%.60q: %d cookies, want %d", lines, len(got), len(want))
			continue
		}
		for i := range want {
			if got[i].Name != want[i].Name || got[i].Value != want[i].Value || got[i].Quoted != want[i].Quoted {
				t.Errorf("%.60q: cookie %d = %+v, want %+v", lines, i, got[i], want[i])
			}
		}
		for _, name := range []string{"a", "b", "q", "e", "x", "ok", "k", "__Host-gatehouse", "s", "t", "missing", ""} {
			c, err := (&http.Request{Header: h}).Cookie(name)
			v, ok := Cookie(h, name)
			if ok != (err == nil) || ok && v != c.Value {
				t.Errorf("%.60q: Cookie(%q) = %q, %v; net/http found %v, %v", lines, name, v, ok, c, err)
			}
		}
	}
}

func TestCookieDoesNotAllocate(t *testing.T) {
	h := http.Header{"Cookie": {"theme=dark; __Host-gatehouse=abcdefghijklmnopqrstuvwxyz0123456789ABCDEFG; lang=en"}}
	if n := testing.AllocsPerRun(100, func() { Cookie(h, "__Host-gatehouse") }); n != 0 {
		t.Errorf("Cookie allocates %v times, want 0", n)
	}
}

func FuzzCookies(f *testing.F) {
	for _, lines := range cookieLines[:9] {
		f.Add(strings.Join(lines, "\x00"))
	}
	f.Fuzz(func(t *testing.T, joined string) {
		h := http.Header{"Cookie": strings.Split(joined, "\x00")}
		want := (&http.Request{Header: h}).Cookies()
		i := 0
		Cookies(h, func(name, value string, quoted bool) bool {
			if i >= len(want) || want[i].Name != name || want[i].Value != value || want[i].Quoted != quoted {
				t.Fatalf("cookie %d = %q %q %v; net/http reads %v", i, name, value, quoted, want)
			}
			i++
			return true
		})
		if i != len(want) {
			t.Fatalf("%d cookies; net/http reads %d", i, len(want))
		}
	})
}
