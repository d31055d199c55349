package proxy

import (
	"context"
	"errors"
	"fmt"
	"log/slog"
	"net"
	"net/http"
	"net/http/httputil"
	"net/netip"
	"net/url"
	"slices"
	"strings"
	"sync"
	"sync/atomic"
	"time"

	"github.com/gatehouse-bff/gatehouse/internal/httpx"
)

// Route is one API prefix forwarded to one upstream.
type Route struct {
	// Prefix is the request path prefix, starting and ending with "/", such
	// as "/api/". The path equal to Prefix without its trailing slash
	// matches too.
	Prefix string
	// Upstream is the absolute http or https URL requests are sent to. Its
	// path is joined in front of the forwarded path.
	Upstream *url.URL
	// StripPrefix removes Prefix from the path before joining it to the
	// upstream's path.
	StripPrefix bool
	// Timeout bounds the wait for the upstream's response headers. Bodies
	// and upgraded connections are not limited. Required (routes[].timeout).
	Timeout time.Duration
	// Methods lists the allowed request methods; empty allows all. Allowing
	// GET allows HEAD.
	Methods []string
	// ForwardCookies names the browser cookies the upstream may see; every
	// other cookie is removed, and Gatehouse's own cookies always are.
	// Empty: no Cookie header reaches the upstream (Duende BFF's rule).
	ForwardCookies []string
	// IdentityHeaders names headers the upstream trusts to come from
	// Gatehouse only (Credential.Headers sets them): every inbound copy, in
	// any case and with "_" for "-", is removed.
	IdentityHeaders []string
}

// Options configures a [Proxy].
type Options struct {
	// Transport sends upstream requests; nil means NewTransport().
	Transport http.RoundTripper
	// TrustedProxies are the peers whose X-Forwarded-For chain is kept.
	TrustedProxies []netip.Prefix
	// PublicURL is Gatehouse's public URL; X-Forwarded-Proto and
	// X-Forwarded-Host come from it. Required.
	PublicURL *url.URL
	// CookiePrefix names Gatehouse's cookies, such as "__Host-gatehouse":
	// cookies whose name starts with it (ignoring case) are never forwarded.
	CookiePrefix string
	// StripCookie, when set, also removes the cookies it reports true for.
	// At least one of CookiePrefix and StripCookie is required.
	StripCookie func(name string) bool
	// RequestIDHeader carries the request id upstream. Default "X-Request-Id".
	RequestIDHeader string
	// Logger receives upstream errors and leak warnings; nil discards.
	Logger *slog.Logger
	// SkipLeakGuard turns off the token leak guard (see the package
	// documentation). It MUST NOT be set in production.
	SkipLeakGuard bool
	// OnLeak, when set, is called each time the leak guard blocks a
	// response, for metrics.
	OnLeak func()
}

// Proxy forwards requests along a fixed set of routes. It is safe for
// concurrent use.
type Proxy struct {
	entries        []*entry // longest prefix first
	byRoute        map[*Route]*entry
	trustedProxies []netip.Prefix
	publicURL      *url.URL
	// forwardedProto and forwardedHost are the X-Forwarded-Proto and
	// -Host values, the same for every request (len == cap: see rewrite).
	forwardedProto, forwardedHost []string
	stripCookie                   func(string) bool
	requestID                     string // canonical header name
	requestIDFold                 string // lower-case form for foldEqual
	log                           *slog.Logger
	leakGuard                     bool
	onLeak                        func()
	// timeouts holds idle *timeout timers for reuse.
	timeouts sync.Pool
}

type entry struct {
	Route
	stripCookie func(string) bool // cookies the upstream must not see
	identity    []string          // IdentityHeaders in foldEqual form
	segments    int               // path segments in Prefix
	methods     map[string]bool   // nil: all
	allow       string            // Allow header value
	rp          *httputil.ReverseProxy
}

// New validates routes and returns a Proxy for them.
func New(routes []Route, opts Options) (*Proxy, error) {
	p := &Proxy{
		byRoute:        make(map[*Route]*entry, len(routes)),
		trustedProxies: slices.Clone(opts.TrustedProxies),
		publicURL:      opts.PublicURL,
		requestID:      http.CanonicalHeaderKey(opts.RequestIDHeader),
		log:            opts.Logger,
		leakGuard:      !opts.SkipLeakGuard,
		onLeak:         opts.OnLeak,
	}
	if p.requestID == "" {
		p.requestID = "X-Request-Id"
	}
	p.requestIDFold = strings.ReplaceAll(strings.ToLower(p.requestID), "_", "-")
	if p.log == nil {
		p.log = slog.New(slog.DiscardHandler)
	}
	var errs []error
	if u := opts.PublicURL; u == nil || (u.Scheme != "http" && u.Scheme != "https") || u.Host == "" {
		errs = append(errs, errors.New("proxy: public url must be an absolute http(s) url"))
	} else {
		p.forwardedProto, p.forwardedHost = []string{u.Scheme}, []string{u.Host}
	}
	switch {
	case opts.CookiePrefix != "" && opts.StripCookie != nil:
		byPrefix, custom := CookiePrefixFilter(opts.CookiePrefix), opts.StripCookie
		p.stripCookie = func(n string) bool { return byPrefix(n) || custom(n) }
	case opts.CookiePrefix != "":
		p.stripCookie = CookiePrefixFilter(opts.CookiePrefix)
	case opts.StripCookie != nil:
		p.stripCookie = opts.StripCookie
	default:
		errs = append(errs, errors.New("proxy: cookie prefix or cookie filter is required"))
	}
	for i, pfx := range p.trustedProxies {
		if !pfx.IsValid() {
			errs = append(errs, fmt.Errorf("proxy: trusted proxy %d is not a valid prefix", i))
		}
		p.trustedProxies[i] = pfx.Masked()
	}
	transport := opts.Transport
	if transport == nil {
		transport = NewTransport()
	}
	errorLog := slog.NewLogLogger(p.log.Handler(), slog.LevelDebug)

	seen := make(map[string]bool, len(routes))
	for _, r := range routes {
		e, err := p.newEntry(r)
		if err != nil {
			errs = append(errs, err)
			continue
		}
		if seen[e.Prefix] {
			errs = append(errs, fmt.Errorf("proxy: duplicate route prefix %q", e.Prefix))
			continue
		}
		seen[e.Prefix] = true
		e.rp = &httputil.ReverseProxy{
			Rewrite:        func(pr *httputil.ProxyRequest) { p.rewrite(e, pr) },
			Transport:      transport,
			FlushInterval:  0, // event streams and bodies of unknown length flush on every write
			BufferPool:     buffers,
			ErrorLog:       errorLog,
			ModifyResponse: func(res *http.Response) error { return p.modifyResponse(e, res) },
			ErrorHandler:   func(w http.ResponseWriter, r *http.Request, err error) { p.errorHandler(e, w, r, err) },
		}
		p.entries = append(p.entries, e)
	}
	if len(errs) > 0 {
		return nil, errors.Join(errs...)
	}
	slices.SortStableFunc(p.entries, func(a, b *entry) int { return len(b.Prefix) - len(a.Prefix) })
	for _, e := range p.entries {
		p.byRoute[&e.Route] = e
	}
	return p, nil
}

func (p *Proxy) newEntry(r Route) (*entry, error) {
	bad := func(format string, args ...any) error {
		return fmt.Errorf("proxy: route %q: "+format, append([]any{r.Prefix}, args...)...)
	}
	if !strings.HasPrefix(r.Prefix, "/") || !strings.HasSuffix(r.Prefix, "/") {
		return nil, bad("prefix must start and end with /")
	}
	if _, _, ok := cleanPath(&url.URL{Path: r.Prefix}); !ok || strings.ContainsAny(r.Prefix, "%?#;") {
		return nil, bad("prefix is not a clean path")
	}
	u := r.Upstream
	switch {
	case u == nil:
		return nil, bad("upstream is required")
	case u.Scheme != "http" && u.Scheme != "https", u.Host == "", u.Opaque != "":
		return nil, bad("upstream must be an absolute http(s) url")
	case u.User != nil:
		return nil, bad("upstream must not contain user info")
	case u.RawQuery != "" || u.ForceQuery || u.Fragment != "":
		return nil, bad("upstream must not have a query or fragment")
	}
	if r.Timeout <= 0 {
		return nil, bad("timeout must be positive")
	}
	up := *u
	r.Upstream = &up
	e := &entry{Route: r, segments: strings.Count(r.Prefix, "/") - 1}
	forward := make(map[string]bool, len(r.ForwardCookies))
	for _, name := range r.ForwardCookies {
		forward[name] = true
	}
	e.stripCookie = func(name string) bool { return !forward[name] || p.stripCookie(name) }
	for _, h := range r.IdentityHeaders {
		if !httpx.ValidToken(h) {
			return nil, bad("invalid identity header %q", h)
		}
		e.identity = append(e.identity, strings.ReplaceAll(strings.ToLower(h), "_", "-"))
	}
	if len(r.Methods) > 0 {
		e.methods = make(map[string]bool)
		var allow []string
		add := func(m string) {
			if !e.methods[m] {
				e.methods[m] = true
				allow = append(allow, m)
			}
		}
		for _, m := range r.Methods {
			m = strings.ToUpper(m)
			if !httpx.ValidToken(m) {
				return nil, bad("invalid method %q", m)
			}
			add(m)
			if m == http.MethodGet {
				add(http.MethodHead)
			}
		}
		e.Methods = slices.Clone(allow)
		e.allow = strings.Join(allow, ", ")
	}
	return e, nil
}

// Match is a request matched to a route: the route and the request's path
// in clean form, decoded and escaped.
type Match struct {
	// Route belongs to the proxy that matched and must not be modified.
	Route        *Route
	path, escape string
}

// Match returns the route for r: the longest prefix under which r's path
// falls. Paths not in clean form (see the package documentation) match
// nothing.
func (p *Proxy) Match(r *http.Request) (Match, bool) {
	path, escaped, ok := cleanPath(r.URL)
	if !ok {
		return Match{}, false
	}
	for _, e := range p.entries {
		if underPrefix(path, e.Prefix) {
			return Match{Route: &e.Route, path: path, escape: escaped}, true
		}
	}
	return Match{}, false
}

// Routes returns the proxy's routes, longest prefix first; they are the
// values Match returns and must not be modified.
func (p *Proxy) Routes() []*Route {
	out := make([]*Route, len(p.entries))
	for i, e := range p.entries {
		out[i] = &e.Route
	}
	return out
}

// Credential is what a forwarded request carries upstream. The zero value
// carries nothing.
type Credential struct {
	// Token is the access token; "" sends none.
	Token string
	// Proof, when set, makes the token DPoP-bound: the upstream gets
	// `Authorization: DPoP <token>` and a `DPoP` header made by Proof for
	// the outgoing method and URL (RFC 9449 §7.1). Nil sends a bearer
	// token (RFC 6750 §2.1).
	Proof ProofFunc
	// Headers are identity headers set on the outgoing request after the
	// browser's copies were removed (see Route.IdentityHeaders), by
	// canonical name.
	Headers http.Header
}

// ProofFunc makes a DPoP proof (RFC 9449 §4) for a request with the given
// method and URL, bound to the request's access token.
type ProofFunc func(method, url string) (string, error)

// exchange is the state of one forwarded request, and the context the
// request is forwarded with (it answers exchangeKey with itself). One
// allocation holds it and the leak guard's writer and body scanner.
type exchange struct {
	context.Context
	w         http.ResponseWriter // the caller's writer
	guard     *guardWriter        // nil without the leak guard
	token     string
	proof     ProofFunc   // nil: a bearer token
	headers   http.Header // identity headers
	requestID string
	path, raw string // outbound path, decoded and escaped
	cancel    context.CancelCauseFunc
	timer     *timeout
	// stopped: the timer was stopped before it fired; fired: it fired.
	stopped, fired bool
	leakInBody     bool // the leak guard found the token in the body or trailers

	guardW guardWriter
	scan   leakScanner
	// vals backs the header values set per request; see rewrite.
	vals [3]string
}

type exchangeKey struct{}

func (x *exchange) Value(key any) any {
	if _, ok := key.(exchangeKey); ok {
		return x
	}
	return x.Context.Value(key)
}

// stopTimer stops the exchange's timer and reports whether it stopped it
// before it fired.
func (x *exchange) stopTimer() bool {
	if !x.stopped && !x.fired {
		x.stopped = x.timer.t.Stop()
		x.fired = !x.stopped
	}
	return x.stopped
}

// timeout is a reusable timer that cancels the exchange it is armed for
// when the upstream's answer is late. Idle ones wait in Proxy.timeouts; one
// goes back there only when it was stopped before it fired, so that its
// function can no longer run and nothing else refers to it.
type timeout struct {
	t *time.Timer
	x atomic.Pointer[exchange]
}

func (tm *timeout) fire() {
	if x := tm.x.Load(); x != nil {
		x.cancel(errUpstreamTimeout)
	}
}

// armTimeout starts a timer that cancels x after d.
func (p *Proxy) armTimeout(x *exchange, d time.Duration) {
	tm, _ := p.timeouts.Get().(*timeout)
	if tm == nil {
		tm = new(timeout)
		tm.t = time.AfterFunc(time.Hour, tm.fire)
		tm.t.Stop()
	}
	tm.x.Store(x)
	x.timer = tm
	tm.t.Reset(d)
}

// releaseTimeout stops x's timer and keeps it for another exchange unless
// it fired.
func (p *Proxy) releaseTimeout(x *exchange) {
	if x.stopTimer() {
		x.timer.x.Store(nil)
		p.timeouts.Put(x.timer)
	}
	x.timer = nil
}

var errUpstreamTimeout = errors.New("proxy: upstream response timeout")

// Forward sends r to m's upstream with cred. m must have come from p.Match
// for r, and r's context must carry the request id.
func (p *Proxy) Forward(w http.ResponseWriter, r *http.Request, m Match, cred Credential) {
	p.forward(nil, nil, w, r, m, cred)
}

// ForwardWithin is Forward with r sent within ctx instead of its own
// context: ctx derives from r's with context.WithCancelCause, and cancel
// is its cancel function, which the caller may call (to close a stream
// when its session ends, say). Forward then bounds the wait for the
// upstream's answer by canceling ctx, with a cause of its own, instead of
// deriving another context, and cancels it when it returns.
func (p *Proxy) ForwardWithin(ctx context.Context, cancel context.CancelCauseFunc, w http.ResponseWriter, r *http.Request, m Match, cred Credential) {
	p.forward(ctx, cancel, w, r, m, cred)
}

// forward is Forward within ctx, or within a context of its own when
// cancel is nil.
func (p *Proxy) forward(ctx context.Context, cancel context.CancelCauseFunc, w http.ResponseWriter, r *http.Request, m Match, cred Credential) {
	rid := httpx.RequestID(r.Context())
	e := p.byRoute[m.Route]
	if e == nil {
		p.log.LogAttrs(r.Context(), slog.LevelError, "proxy: route does not belong to this proxy")
		httpx.JSONError(w, r, http.StatusInternalServerError, "server_error", "The request could not be handled.")
		return
	}
	if e.methods != nil && !e.methods[r.Method] {
		w.Header().Set("Allow", e.allow)
		httpx.JSONError(w, r, http.StatusMethodNotAllowed, "method_not_allowed", "The route does not allow this method.")
		return
	}
	x := &exchange{w: w, token: cred.Token, proof: cred.Proof, headers: cred.Headers, requestID: rid, path: m.path, raw: m.escape}
	if e.StripPrefix {
		x.path = stripSegments(m.path, e.segments)
		x.raw = stripSegments(m.escape, e.segments)
	}
	if cancel == nil {
		ctx, cancel = context.WithCancelCause(r.Context())
	}
	x.Context, x.cancel = ctx, cancel
	defer x.cancel(nil)
	p.armTimeout(x, e.Timeout)
	defer p.releaseTimeout(x)
	r = r.WithContext(x)

	if httpx.IsUpgrade(r) {
		// An upgraded connection lives as long as both sides want; the
		// server's deadlines for ordinary requests must not cut it.
		rc := http.NewResponseController(w)
		rc.SetReadDeadline(time.Time{})
		rc.SetWriteDeadline(time.Time{})
	}
	if cred.Token == "" || !p.leakGuard {
		e.rp.ServeHTTP(w, r)
		return
	}
	p.serveGuarded(e, x, w, r)
}

// serveGuarded forwards with the leak guard's writer and turns a detected
// leak into a 502 (nothing sent yet) or an aborted connection.
func (p *Proxy) serveGuarded(e *entry, x *exchange, w http.ResponseWriter, r *http.Request) {
	x.guardW = guardWriter{w: w}
	g := &x.guardW
	x.guard = g
	defer func() {
		if !x.leakInBody {
			if !g.committed && g.status != 0 {
				g.commit()
			}
			return
		}
		if v := recover(); v != nil && v != http.ErrAbortHandler {
			panic(v)
		}
		p.leaked()
		p.log.LogAttrs(r.Context(), slog.LevelWarn, "proxy: blocked upstream response containing the access token",
			slog.String("route", e.Prefix), slog.String("upstream", e.Upstream.Host),
			slog.Bool("aborted", g.committed))
		if g.committed {
			panic(http.ErrAbortHandler)
		}
		clear(w.Header())
		httpx.JSONError(w, r, http.StatusBadGateway, "upstream_leak_blocked", "The upstream response was blocked.")
	}()
	e.rp.ServeHTTP(g, r)
}

func (p *Proxy) leaked() {
	if p.onLeak != nil {
		p.onLeak()
	}
}

func exchangeFrom(ctx context.Context) *exchange {
	return ctx.Value(exchangeKey{}).(*exchange)
}

func (p *Proxy) rewrite(e *entry, pr *httputil.ProxyRequest) {
	x := exchangeFrom(pr.In.Context())
	out := pr.Out
	SanitizeRequest(out.Header, e.stripCookie)
	for k := range out.Header {
		if foldEqual(k, p.requestIDFold) || slices.ContainsFunc(e.identity, func(h string) bool { return foldEqual(k, h) }) {
			delete(out.Header, k)
		}
	}
	out.URL.Path, out.URL.RawPath = x.path, x.raw
	pr.SetURL(e.Upstream)

	// One backing array for the values set per request; each header gets a
	// full slice of it, so an append elsewhere copies instead of writing
	// into a neighbour. The values fixed for the proxy are shared the same
	// way.
	vals := x.vals[:]
	if xff := p.forwardedFor(pr.In); xff != "" {
		vals[0] = xff
		out.Header["X-Forwarded-For"] = vals[0:1:1]
	}
	out.Header["X-Forwarded-Proto"] = p.forwardedProto
	out.Header["X-Forwarded-Host"] = p.forwardedHost
	vals[1] = x.requestID
	out.Header[p.requestID] = vals[1:2:2]
	delete(out.Header, "Dpop")
	switch {
	case x.token != "" && x.proof != nil:
		// A proof that cannot be made leaves the request without the token:
		// the upstream answers 401, nothing is sent half-authenticated.
		if proof, err := x.proof(out.Method, out.URL.String()); err == nil {
			out.Header["Authorization"] = []string{"DPoP " + x.token}
			out.Header["Dpop"] = []string{proof}
		}
	case x.token != "":
		vals[2] = "Bearer " + x.token
		out.Header["Authorization"] = vals[2:3:3]
	}
	for k, vs := range x.headers {
		out.Header[k] = vs
	}
	if x.token != "" {
		if p.leakGuard {
			// Let the transport negotiate and decode compression so the
			// guard sees the plain body.
			delete(out.Header, "Accept-Encoding")
		}
	}
}

func (p *Proxy) modifyResponse(e *entry, res *http.Response) error {
	x := exchangeFrom(res.Request.Context())
	if !x.stopTimer() {
		return errUpstreamTimeout
	}
	SanitizeResponse(res.Header, p.stripCookie)
	if x.token != "" && p.leakGuard {
		if headerContains(res.Header, x.token) || headerContains(res.Trailer, x.token) {
			return errLeak
		}
		if res.StatusCode != http.StatusSwitchingProtocols && res.Body != nil && res.Body != http.NoBody {
			x.scan.init(res, x.token, &x.leakInBody)
			res.Body = &x.scan
		}
	}
	if isEventStream(res.Header.Get("Content-Type")) {
		http.NewResponseController(x.w).SetWriteDeadline(time.Time{})
		if x.guard != nil {
			x.guard.eager = true
		}
	}
	return nil
}

func (p *Proxy) errorHandler(e *entry, w http.ResponseWriter, r *http.Request, err error) {
	ctx := r.Context()
	attrs := []slog.Attr{
		slog.String("route", e.Prefix),
		slog.String("upstream", e.Upstream.Host), slog.Any("err", err),
	}
	switch {
	case errors.Is(err, errLeak):
		p.leaked()
		p.log.LogAttrs(ctx, slog.LevelWarn, "proxy: blocked upstream response headers containing the access token", attrs[:2]...)
		httpx.JSONError(w, r, http.StatusBadGateway, "upstream_leak_blocked", "The upstream response was blocked.")
	case errors.Is(err, errUpstreamTimeout) || context.Cause(ctx) == errUpstreamTimeout:
		p.log.LogAttrs(ctx, slog.LevelWarn, "proxy: upstream timed out", attrs...)
		httpx.JSONError(w, r, http.StatusGatewayTimeout, "upstream_timeout", "The upstream did not answer in time.")
	case ctx.Err() != nil:
		// The browser went away; nobody reads the answer.
		p.log.LogAttrs(ctx, slog.LevelDebug, "proxy: request canceled", attrs...)
		w.WriteHeader(http.StatusBadGateway)
	case isTimeout(err):
		p.log.LogAttrs(ctx, slog.LevelWarn, "proxy: upstream timed out", attrs...)
		httpx.JSONError(w, r, http.StatusGatewayTimeout, "upstream_timeout", "The upstream did not answer in time.")
	default:
		p.log.LogAttrs(ctx, slog.LevelWarn, "proxy: upstream unreachable", attrs...)
		httpx.JSONError(w, r, http.StatusBadGateway, "bad_gateway", "The upstream could not be reached.")
	}
}

// isTimeout reports whether err is a timeout waiting for the upstream's
// answer, as opposed to a failure to connect.
func isTimeout(err error) bool {
	var op *net.OpError
	if errors.As(err, &op) && op.Op == "dial" {
		return false
	}
	var ne net.Error
	return errors.Is(err, context.DeadlineExceeded) || errors.As(err, &ne) && ne.Timeout()
}

// isEventStream reports whether a Content-Type names text/event-stream,
// with or without parameters, in any case (RFC 9110 §8.3.1).
func isEventStream(contentType string) bool {
	mt, _, _ := strings.Cut(contentType, ";")
	return strings.EqualFold(strings.TrimSpace(mt), "text/event-stream")
}
