package frontend

import (
	"errors"
	"fmt"
	"io"
	"io/fs"
	"log/slog"
	"net/http"
	"net/http/httputil"
	"net/url"
	"os"
	"path"
	"strings"
	"time"

	"github.com/gatehouse-bff/gatehouse/internal/httpx"
	"github.com/gatehouse-bff/gatehouse/internal/proxy"
)

// Options configures the frontend handler. Exactly one of Upstream and
// StaticDir must be set.
type Options struct {
	// Upstream is a dev server to proxy to, such as "http://localhost:5173".
	Upstream *url.URL
	// StaticDir is a directory of built files containing index.html.
	StaticDir string
	// Headers are added to static responses, overriding the defaults
	// listed in the package documentation; an empty value removes one.
	Headers map[string]string
	// Transport sends dev-server requests; nil means proxy.NewTransport().
	Transport http.RoundTripper
	// CookiePrefix names Gatehouse's cookies, which never reach the dev
	// server. With Upstream, CookiePrefix or StripCookie is required.
	CookiePrefix string
	// StripCookie, when set, also removes the cookies it reports true for.
	StripCookie func(name string) bool
	// Logger receives dev-server errors; nil discards.
	Logger *slog.Logger
}

// defaultHeaders are the security headers of static responses.
var defaultHeaders = map[string]string{
	"X-Content-Type-Options":  "nosniff",
	"Referrer-Policy":         "strict-origin-when-cross-origin",
	"X-Frame-Options":         "DENY",
	"Content-Security-Policy": "frame-ancestors 'none'",
}

// New returns the frontend handler configured by opts.
func New(opts Options) (http.Handler, error) {
	switch {
	case (opts.Upstream == nil) == (opts.StaticDir == ""):
		return nil, errors.New("frontend: exactly one of upstream and static dir is required")
	case opts.Upstream != nil:
		return newUpstream(opts)
	default:
		return newStatic(opts)
	}
}

type static struct {
	fsys    fs.FS
	headers http.Header
}

func newStatic(opts Options) (http.Handler, error) {
	root, err := os.OpenRoot(opts.StaticDir)
	if err != nil {
		return nil, fmt.Errorf("frontend: static dir: %w", err)
	}
	fsys := root.FS()
	if fi, err := fs.Stat(fsys, "index.html"); err != nil || !fi.Mode().IsRegular() {
		root.Close()
		return nil, fmt.Errorf("frontend: static dir %q has no index.html", opts.StaticDir)
	}
	h := make(http.Header)
	for k, v := range defaultHeaders {
		h.Set(k, v)
	}
	for k, v := range opts.Headers {
		if v == "" {
			h.Del(k)
			continue
		}
		h.Set(k, v)
	}
	return &static{fsys: fsys, headers: h}, nil
}

func (s *static) ServeHTTP(w http.ResponseWriter, r *http.Request) {
	for k, v := range s.headers {
		w.Header()[k] = v
	}
	if r.Method != http.MethodGet && r.Method != http.MethodHead {
		w.Header().Set("Allow", "GET, HEAD")
		http.Error(w, "405 method not allowed", http.StatusMethodNotAllowed)
		return
	}
	if !proxy.CleanPath(r.URL) {
		http.NotFound(w, r)
		return
	}
	name := r.URL.Path[1:]
	if name == "" || strings.HasSuffix(name, "/") {
		s.serveIndex(w, r)
		return
	}
	if !fs.ValidPath(name) || hidden(name) {
		http.NotFound(w, r)
		return
	}
	f, err := s.fsys.Open(name)
	if err != nil {
		s.fallback(w, r, name)
		return
	}
	defer f.Close()
	fi, err := f.Stat()
	if err != nil || !fi.Mode().IsRegular() {
		s.fallback(w, r, name)
		return
	}
	s.serveFile(w, r, f, fi)
}

// fallback answers a request for a file that does not exist.
func (s *static) fallback(w http.ResponseWriter, r *http.Request, name string) {
	if isNavigation(r, name) {
		s.serveIndex(w, r)
		return
	}
	http.NotFound(w, r)
}

func (s *static) serveIndex(w http.ResponseWriter, r *http.Request) {
	f, err := s.fsys.Open("index.html")
	if err != nil {
		http.NotFound(w, r)
		return
	}
	defer f.Close()
	fi, err := f.Stat()
	if err != nil {
		http.NotFound(w, r)
		return
	}
	s.serveFile(w, r, f, fi)
}

func (s *static) serveFile(w http.ResponseWriter, r *http.Request, f fs.File, fi fs.FileInfo) {
	rs, ok := f.(io.ReadSeeker)
	if !ok {
		http.NotFound(w, r)
		return
	}
	w.Header().Set("Cache-Control", cacheControl(fi.Name()))
	http.ServeContent(w, r, fi.Name(), fi.ModTime(), rs)
}

// hidden reports whether a segment of name starts with "." (other than
// ".well-known").
func hidden(name string) bool {
	for seg := range strings.SplitSeq(name, "/") {
		if strings.HasPrefix(seg, ".") && seg != ".well-known" {
			return true
		}
	}
	return false
}

// isNavigation reports whether a request for the missing file name is a
// page navigation the application's router handles.
func isNavigation(r *http.Request, name string) bool {
	if path.Ext(name) == "" || r.Header.Get("Sec-Fetch-Dest") == "document" {
		return true
	}
	for _, v := range r.Header.Values("Accept") {
		for f := range strings.SplitSeq(v, ",") {
			mt, _, _ := strings.Cut(f, ";")
			if strings.EqualFold(strings.TrimSpace(mt), "text/html") {
				return true
			}
		}
	}
	return false
}

// cacheControl returns the Cache-Control value for a file name.
func cacheControl(name string) string {
	ext := path.Ext(name)
	if ext == ".html" || ext == ".htm" {
		return "no-cache"
	}
	base := strings.TrimSuffix(name, ext)
	for seg := range strings.FieldsFuncSeq(base, func(r rune) bool { return r == '.' || r == '-' }) {
		if isHash(seg) {
			return "public, max-age=31536000, immutable"
		}
	}
	return "no-cache"
}

// isHash reports whether seg looks like a content hash.
func isHash(seg string) bool {
	if len(seg) < 8 {
		return false
	}
	digit, letter := false, false
	for i := 0; i < len(seg); i++ {
		switch c := seg[i]; {
		case '0' <= c && c <= '9':
			digit = true
		case 'a' <= c && c <= 'z', 'A' <= c && c <= 'Z':
			letter = true
		case c == '_':
		default:
			return false
		}
	}
	return digit && letter
}

func newUpstream(opts Options) (http.Handler, error) {
	u := opts.Upstream
	if (u.Scheme != "http" && u.Scheme != "https") || u.Host == "" || u.User != nil || u.RawQuery != "" || u.Fragment != "" {
		return nil, errors.New("frontend: upstream must be an absolute http(s) url without user info, query or fragment")
	}
	var strip func(string) bool
	switch {
	case opts.CookiePrefix != "" && opts.StripCookie != nil:
		byPrefix, custom := proxy.CookiePrefixFilter(opts.CookiePrefix), opts.StripCookie
		strip = func(n string) bool { return byPrefix(n) || custom(n) }
	case opts.CookiePrefix != "":
		strip = proxy.CookiePrefixFilter(opts.CookiePrefix)
	case opts.StripCookie != nil:
		strip = opts.StripCookie
	default:
		return nil, errors.New("frontend: cookie prefix or cookie filter is required with an upstream")
	}
	transport := opts.Transport
	if transport == nil {
		transport = proxy.NewTransport()
	}
	log := opts.Logger
	if log == nil {
		log = slog.New(slog.DiscardHandler)
	}
	target := *u
	rp := &httputil.ReverseProxy{
		Rewrite: func(pr *httputil.ProxyRequest) {
			proxy.SanitizeRequest(pr.Out.Header, strip)
			pr.SetURL(&target)
		},
		Transport: transport,
		ModifyResponse: func(res *http.Response) error {
			proxy.SanitizeResponse(res.Header, strip)
			return nil
		},
		ErrorLog: slog.NewLogLogger(log.Handler(), slog.LevelDebug),
		ErrorHandler: func(w http.ResponseWriter, r *http.Request, err error) {
			if r.Context().Err() != nil {
				w.WriteHeader(http.StatusBadGateway)
				return
			}
			log.LogAttrs(r.Context(), slog.LevelWarn, "frontend: dev server unreachable",
				slog.Any("err", err))
			httpx.Page(w, r, http.StatusBadGateway, "Bad gateway", "The frontend server could not be reached.", "")
		},
	}
	return http.HandlerFunc(func(w http.ResponseWriter, r *http.Request) {
		if !proxy.CleanPath(r.URL) {
			http.NotFound(w, r)
			return
		}
		if httpx.IsUpgrade(r) {
			// The HMR WebSocket stays open for the whole session.
			rc := http.NewResponseController(w)
			rc.SetReadDeadline(time.Time{})
			rc.SetWriteDeadline(time.Time{})
		}
		rp.ServeHTTP(w, r)
	}), nil
}
