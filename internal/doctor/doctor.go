package doctor

import (
	"context"
	"errors"
	"fmt"
	"net/http"
	"strings"
	"sync"
	"time"

	"github.com/gatehouse-bff/gatehouse/config"
	"github.com/gatehouse-bff/gatehouse/internal/oidcconf"
	"github.com/gatehouse-bff/gatehouse/internal/provider"
)

// Status is the outcome of one check.
type Status string

// Outcomes, from best to worst.
const (
	// Pass: the setting is right.
	Pass Status = "PASS"
	// Info: nothing is wrong; the line tells the operator something to do
	// or know, such as the exact redirect URI to register.
	Info Status = "INFO"
	// Warn: Gatehouse works, with weaker protection or a missing feature.
	Warn Status = "WARN"
	// Fail: Gatehouse will not work, or will work insecurely.
	Fail Status = "FAIL"
)

func (s Status) rank() int {
	switch s {
	case Fail:
		return 3
	case Warn:
		return 2
	case Info:
		return 1
	}
	return 0
}

// Check is one line of the report.
type Check struct {
	// ID names the check, such as "discovery" or "pkce"; stable across
	// versions so that scripts can select lines.
	ID string `json:"id"`
	// App names the app under apps: the check is about; empty for the
	// top-level app and for checks of the whole gateway.
	App    string `json:"app,omitempty"`
	Status Status `json:"status"`
	// Message says what was found and why it matters.
	Message string `json:"message"`
	// Fix says what to change; empty when nothing needs changing.
	Fix string `json:"fix,omitempty"`
}

// Summary counts the checks by status.
type Summary struct {
	Pass int `json:"pass"`
	Info int `json:"info"`
	Warn int `json:"warn"`
	Fail int `json:"fail"`
}

// Report is the outcome of Run.
type Report struct {
	Checks  []Check `json:"checks"`
	Summary Summary `json:"summary"`
}

// NewReport returns a report of checks with its summary filled in.
func NewReport(checks ...Check) Report {
	r := Report{Checks: checks}
	for _, c := range checks {
		switch c.Status {
		case Pass:
			r.Summary.Pass++
		case Info:
			r.Summary.Info++
		case Warn:
			r.Summary.Warn++
		case Fail:
			r.Summary.Fail++
		}
	}
	return r
}

// Worst returns the worst status in the report (Pass for an empty one).
func (r Report) Worst() Status {
	w := Pass
	for _, c := range r.Checks {
		if c.Status.rank() > w.rank() {
			w = c.Status
		}
	}
	return w
}

// ExitCode maps the report to a process exit code: 0 when every check
// passed or is informational, 1 with warnings only, 2 with any failure.
func (r Report) ExitCode() int {
	switch r.Worst() {
	case Fail:
		return 2
	case Warn:
		return 1
	}
	return 0
}

// Find returns the first check with the given id.
func (r Report) Find(id string) (Check, bool) {
	for _, c := range r.Checks {
		if c.ID == id {
			return c, true
		}
	}
	return Check{}, false
}

// FindApp returns the first check with the given id about app ("" for the
// top-level app and the gateway as a whole).
func (r Report) FindApp(app, id string) (Check, bool) {
	for _, c := range r.Checks {
		if c.ID == id && c.App == app {
			return c, true
		}
	}
	return Check{}, false
}

// Options configure Run. The zero value is ready to use.
type Options struct {
	// HTTPClient makes the calls to the provider. Nil means a client with
	// oidc.timeout. Its transport is wrapped to read the provider's Date
	// header; the client itself is not modified.
	HTTPClient *http.Client
	// Now is the local clock compared with the provider's; nil means
	// time.Now.
	Now func() time.Time
	// Store, when set, is pinged instead of a store Run builds from the
	// configuration (Run builds one for store: redis only).
	Store interface{ Ping(context.Context) error }
}

// Clock skew thresholds against the provider's Date header. ID token
// checks allow some leeway for iat and exp; beyond a few minutes fresh
// tokens look expired or not yet valid.
const (
	SkewWarn = 30 * time.Second
	SkewFail = 5 * time.Minute
)

// Run checks the deployment cfg describes and returns every finding. cfg
// should come from config.Load or config.Parse (defaults applied). When
// cfg does not validate, the report holds that one failure listing every
// problem, and nothing is contacted.
func Run(ctx context.Context, cfg *config.Config, opts Options) Report {
	if opts.Now == nil {
		opts.Now = time.Now
	}
	if err := cfg.Validate(); err != nil {
		return NewReport(ConfigProblem("the configuration has problems", err))
	}
	d := &doctor{cfg: cfg, opts: opts}
	d.add(Pass, "config", "the configuration is valid", "")
	// Each app (the top-level one, if it serves, and every app under
	// apps:) has its own URIs to register and its own cookie; the provider
	// checks run once per distinct issuer and client.
	type client struct{ issuer, id string }
	checked := map[client]bool{}
	for _, u := range appsOf(cfg) {
		ad := &doctor{cfg: u.cfg, opts: opts, app: u.name}
		if c := (client{u.cfg.OIDC.Issuer, u.cfg.OIDC.ClientID}); !checked[c] {
			checked[c] = true
			ad.provider(ctx)
		}
		ad.uris()
		ad.cookie()
		d.checks = append(d.checks, ad.checks...)
	}
	d.apps()
	d.local()
	d.store(ctx)
	return NewReport(d.checks...)
}

// unit is one app the gateway serves with its whole configuration; name
// is "" for the top-level app.
type unit struct {
	name, path string
	cfg        *config.Config
}

// appsOf returns the apps cfg serves, the top-level app first.
func appsOf(cfg *config.Config) []unit {
	var us []unit
	if cfg.ServesTopLevel() {
		us = append(us, unit{cfg: cfg})
	}
	for _, a := range cfg.Apps {
		us = append(us, unit{name: a.Name, path: a.Path, cfg: a.Resolve(cfg)})
	}
	return us
}

// ConfigProblem returns the failure for a configuration that cannot be
// read or validated, listing every problem of err (a joined error) in the
// message, one per line.
func ConfigProblem(what string, err error) Check {
	var lines []string
	var walk func(error)
	walk = func(e error) {
		if j, ok := e.(interface{ Unwrap() []error }); ok {
			for _, e := range j.Unwrap() {
				walk(e)
			}
			return
		}
		lines = append(lines, "  - "+e.Error())
	}
	walk(err)
	return Check{
		ID:      "config",
		Status:  Fail,
		Message: what + ":\n" + strings.Join(lines, "\n"),
		Fix:     "correct each problem listed, then run gatehouse check again",
	}
}

type doctor struct {
	cfg  *config.Config
	opts Options
	// app is the name of the app under apps: whose cfg this is; "" for the
	// top-level app. Its checks say so in their message.
	app    string
	checks []Check
}

func (d *doctor) add(s Status, id, msg, fix string) {
	if d.app != "" {
		msg = "app " + d.app + ": " + msg
	}
	d.checks = append(d.checks, Check{ID: id, App: d.app, Status: s, Message: msg, Fix: fix})
}

func (d *doctor) addf(s Status, id, fix, format string, args ...any) {
	d.add(s, id, fmt.Sprintf(format, args...), fix)
}

// dateRecorder is a RoundTripper that keeps the Date header of the
// discovery response, to compare the provider's clock with ours.
type dateRecorder struct {
	next http.RoundTripper
	url  string

	mu   sync.Mutex
	date time.Time
	seen bool
}

func (t *dateRecorder) RoundTrip(r *http.Request) (*http.Response, error) {
	resp, err := t.next.RoundTrip(r)
	if err != nil || r.URL.String() != t.url {
		return resp, err
	}
	if v := resp.Header.Get("Date"); v != "" {
		if when, perr := http.ParseTime(v); perr == nil {
			t.mu.Lock()
			t.date, t.seen = when, true
			t.mu.Unlock()
		}
	}
	return resp, err
}

func (t *dateRecorder) get() (time.Time, bool) {
	t.mu.Lock()
	defer t.mu.Unlock()
	return t.date, t.seen
}

// discoveryURL is where go-oidc fetches the document (OpenID Connect
// Discovery 1.0 §4).
func discoveryURL(issuer string) string {
	return strings.TrimSuffix(issuer, "/") + "/.well-known/openid-configuration"
}

// provider runs every check that needs the discovery document.
func (d *doctor) provider(ctx context.Context) {
	cfg := d.cfg
	base := d.opts.HTTPClient
	if base == nil {
		base = &http.Client{Timeout: cfg.OIDC.Timeout}
	}
	next := base.Transport
	if next == nil {
		next = http.DefaultTransport
	}
	rec := &dateRecorder{next: next, url: discoveryURL(cfg.OIDC.Issuer)}
	client := *base
	client.Transport = rec

	// The same options the gateway builds in New.
	po, err := oidcconf.Options(cfg, &client, d.opts.Now)
	if err != nil {
		d.add(Fail, "discovery", "fix the oidc settings", err.Error())
		return
	}
	p, err := provider.Discover(ctx, po)
	var mismatch *provider.IssuerMismatchError
	switch {
	case errors.As(err, &mismatch):
		d.addf(Fail, "discovery",
			fmt.Sprintf("set oidc.issuer to exactly %q if that is the provider you mean (the comparison is exact, trailing slash included)", mismatch.Discovered),
			"the discovery document at %s reports issuer %q, but oidc.issuer is %q: Gatehouse rejects it, as OpenID Connect Discovery §4.3 requires, so no one can sign in",
			rec.url, mismatch.Discovered, mismatch.Configured)
	case err != nil:
		d.addf(Fail, "discovery",
			"check oidc.issuer, that the provider is up, and that this host can reach it (DNS, firewall, proxy, TLS trust)",
			"cannot load the provider's discovery document from %s: %v", rec.url, err)
	default:
		d.addf(Pass, "discovery", "", "discovery at %s is reachable and reports issuer %q", rec.url, p.Issuer())
	}
	d.clock(rec)
	if err != nil {
		return
	}
	m := p.Metadata()
	d.pkce(m)
	d.prompt(m)
	d.issParam(m)
	d.backchannel(m)
	d.frontchannel(m)
	d.revocation(m)
	d.endSession(m)
	d.dpop(m)
	d.refresh(m)
	d.authMethod(m)
	d.signingAlgs(m)
	d.jwks(ctx, &client, m, p.SigningAlgs())
}

func (d *doctor) clock(rec *dateRecorder) {
	date, ok := rec.get()
	if !ok {
		d.add(Info, "clock", "the provider sent no usable Date header, so the clock offset against it was not measured",
			"keep this host's clock synchronised (NTP): token lifetimes are checked against it")
		return
	}
	now := d.opts.Now()
	// Date has one-second resolution: allow for it.
	skew := now.Sub(date).Truncate(time.Second)
	abs := skew.Abs()
	dir := "ahead of"
	if skew < 0 {
		dir = "behind"
	}
	fix := "synchronise this host's clock (NTP, chrony, systemd-timesyncd); if the provider's clock is the wrong one, tell its operator"
	switch {
	case abs > SkewFail:
		d.addf(Fail, "clock", fix, "this host's clock is %s %s the provider's (by its Date header): fresh ID tokens will be rejected as expired or issued in the future", abs, dir)
	case abs > SkewWarn:
		d.addf(Warn, "clock", fix, "this host's clock is %s %s the provider's (by its Date header): tokens near the ends of their lifetimes may be judged wrongly", abs, dir)
	default:
		d.addf(Pass, "clock", "", "this host's clock is within %s of the provider's", SkewWarn)
	}
}
