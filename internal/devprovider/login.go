package devprovider

import (
	"crypto/subtle"
	"html/template"
	"net/http"
	"net/url"
	"slices"
	"strings"
	"time"

	"github.com/zitadel/oidc/v3/pkg/oidc"
	"github.com/zitadel/oidc/v3/pkg/op"
)

// loginStep is what the login page does next for one authorization request.
type loginStep struct {
	req           *authRequest // a copy
	done          bool         // signed in: continue to op's callback
	loginRequired bool         // prompt=none without a usable session
	cookie        string       // a new provider session cookie to set
}

// startLogin decides the login step for a pending request: reuse the
// browser's provider session, answer prompt=none with login_required, sign
// in the auto-login user, or show the form.
func (s *storage) startLogin(id, cookie string) (loginStep, error) {
	s.mu.Lock()
	defer s.mu.Unlock()
	a, err := s.authRequestLocked(id)
	if err != nil {
		return loginStep{}, err
	}
	if a.done {
		return loginStep{req: a.clone(), done: true}, nil
	}
	// OpenID Connect Core §3.1.2.1: prompt=login always re-authenticates.
	if !slices.Contains(a.prompt, oidc.PromptLogin) {
		if ls := s.usableSessionLocked(a, cookie); ls != nil {
			s.completeLocked(a, ls)
			return loginStep{req: a.clone(), done: true}, nil
		}
	}
	if slices.Contains(a.prompt, oidc.PromptNone) {
		req := a.clone()
		delete(s.authRequests, id)
		return loginStep{req: req, loginRequired: true}, nil
	}
	if s.autoLogin != "" {
		ls := s.newSessionLocked(s.byName[s.autoLogin])
		s.completeLocked(a, ls)
		return loginStep{req: a.clone(), done: true, cookie: ls.cookie}, nil
	}
	return loginStep{req: a.clone()}, nil
}

// usableSessionLocked returns the browser's provider session if it exists,
// satisfies max_age, and belongs to the id_token_hint's subject if any.
func (s *storage) usableSessionLocked(a *authRequest, cookie string) *loginSession {
	if cookie == "" {
		return nil
	}
	ls, ok := s.sessions[s.sessionCookies[cookie]]
	if !ok {
		return nil
	}
	now := s.now()
	if !now.Before(ls.expires) {
		return nil
	}
	if a.maxAge != nil && now.Sub(ls.authTime) > time.Duration(*a.maxAge)*time.Second {
		return nil
	}
	if a.hintSubject != "" && a.hintSubject != ls.userID {
		return nil
	}
	return ls
}

// passwordLogin checks a form submission. ok is false for wrong
// credentials; err is set when the request itself is unknown or expired.
func (s *storage) passwordLogin(id, username, password string) (step loginStep, ok bool, err error) {
	s.mu.Lock()
	defer s.mu.Unlock()
	a, err := s.authRequestLocked(id)
	if err != nil {
		return loginStep{}, false, err
	}
	if a.done {
		return loginStep{req: a.clone(), done: true}, true, nil
	}
	u := s.byName[username]
	want := ""
	if u != nil {
		want = u.Password
	}
	if u == nil || subtle.ConstantTimeCompare([]byte(password), []byte(want)) != 1 {
		s.stats.FailedLogins++
		return loginStep{req: a.clone()}, false, nil
	}
	ls := s.newSessionLocked(u)
	s.completeLocked(a, ls)
	return loginStep{req: a.clone(), done: true, cookie: ls.cookie}, true, nil
}

// newSessionLocked starts a provider login session with a fresh sid and a
// separate cookie value, so an ID token's sid cannot be replayed as the
// cookie.
func (s *storage) newSessionLocked(u *User) *loginSession {
	now := s.now()
	ls := &loginSession{
		sid:      newID(),
		cookie:   newID(),
		userID:   u.ID,
		authTime: now,
		expires:  now.Add(s.refreshTTL),
		clients:  make(map[string]bool),
	}
	s.sessions[ls.sid] = ls
	s.sessionCookies[ls.cookie] = ls.sid
	s.stats.Logins++
	return ls
}

func (s *storage) completeLocked(a *authRequest, ls *loginSession) {
	a.done = true
	a.subject = ls.userID
	a.authTime = ls.authTime
	a.sid = ls.sid
	a.amr = []string{"pwd"}
	ls.clients[a.clientID] = true
}

// serveLogin is the login step that op redirects to from /authorize.
func (p *Provider) serveLogin(w http.ResponseWriter, r *http.Request) {
	var cookie string
	if c, err := r.Cookie(sessionCookie); err == nil {
		cookie = c.Value
	}
	switch r.Method {
	case http.MethodGet, http.MethodHead:
		step, err := p.store.startLogin(r.URL.Query().Get("authRequestID"), cookie)
		if err != nil {
			p.unknownRequest(w)
			return
		}
		p.continueLogin(w, r, step, "", "")
	case http.MethodPost:
		r.Body = http.MaxBytesReader(w, r.Body, maxFormBodySize)
		if err := r.ParseForm(); err != nil {
			writePage(w, http.StatusBadRequest, pageData{Title: "Bad request", Message: "The sign-in form could not be read."})
			return
		}
		username := r.PostForm.Get("username")
		step, ok, err := p.store.passwordLogin(r.PostForm.Get("authRequestID"), username, r.PostForm.Get("password"))
		if err != nil {
			p.unknownRequest(w)
			return
		}
		if !ok {
			p.logger.Info("devprovider: sign-in failed", "client_id", step.req.clientID)
			p.continueLogin(w, r, step, "Wrong username or password.", username)
			return
		}
		p.continueLogin(w, r, step, "", "")
	default:
		w.Header().Set("Allow", "GET, HEAD, POST")
		http.Error(w, "method not allowed", http.StatusMethodNotAllowed)
	}
}

func (p *Provider) unknownRequest(w http.ResponseWriter) {
	writePage(w, http.StatusBadRequest, pageData{
		Title:   "Sign-in request not found",
		Message: "This sign-in request is unknown or has expired. Start again from the application.",
	})
}

func (p *Provider) continueLogin(w http.ResponseWriter, r *http.Request, step loginStep, formErr, username string) {
	if step.cookie != "" {
		http.SetCookie(w, &http.Cookie{
			Name:     sessionCookie,
			Value:    step.cookie,
			Path:     "/",
			HttpOnly: true,
			Secure:   p.secureCookie,
			SameSite: http.SameSiteLaxMode,
		})
	}
	switch {
	case step.loginRequired:
		// OpenID Connect Core §3.1.2.6: prompt=none and nobody signed in.
		op.AuthRequestError(w, r, step.req, oidc.ErrLoginRequired(), p.op)
	case step.done:
		if step.cookie != "" {
			p.logger.Info("devprovider: signed in", "client_id", step.req.clientID, "sub", step.req.subject)
		}
		ctx := op.ContextWithIssuer(r.Context(), p.issuer)
		http.Redirect(w, r, p.callbackURL(ctx, step.req.id), http.StatusSeeOther)
	default:
		status := http.StatusOK
		if formErr != "" {
			status = http.StatusUnauthorized
		}
		writePage(w, status, pageData{
			Title:         "Sign in",
			Form:          true,
			AuthRequestID: step.req.id,
			ClientID:      step.req.clientID,
			Username:      username,
			Error:         formErr,
			DemoUsers:     p.demoUsers(),
		})
	}
}

// demoUsers lists the default accounts when they are in effect.
func (p *Provider) demoUsers() []string {
	if !p.showUsers {
		return nil
	}
	var names []string
	for name := range p.store.byName {
		names = append(names, name)
	}
	slices.Sort(names)
	return names
}

// serveLoggedOut is where end_session_endpoint sends a browser that named
// no post_logout_redirect_uri.
func (p *Provider) serveLoggedOut(w http.ResponseWriter, r *http.Request) {
	if r.Method != http.MethodGet && r.Method != http.MethodHead {
		w.Header().Set("Allow", "GET, HEAD")
		http.Error(w, "method not allowed", http.StatusMethodNotAllowed)
		return
	}
	writePage(w, http.StatusOK, pageData{Title: "Signed out", Message: "You are signed out of the development provider."})
}

type pageData struct {
	Title, Message string
	Form           bool
	AuthRequestID  string
	ClientID       string
	Username       string
	Error          string
	DemoUsers      []string
}

// writePage renders a self-contained page: no scripts, no external assets.
func writePage(w http.ResponseWriter, status int, d pageData) {
	h := w.Header()
	h.Set("Content-Type", "text/html; charset=utf-8")
	h.Set("Cache-Control", "no-store")
	h.Set("X-Content-Type-Options", "nosniff")
	h.Set("X-Frame-Options", "DENY")
	h.Set("Referrer-Policy", "no-referrer")
	// No form-action: browsers apply it to the redirects after a form post,
	// which end at the relying party's origin.
	h.Set("Content-Security-Policy", "default-src 'none'; style-src 'unsafe-inline'; frame-ancestors 'none'")
	w.WriteHeader(status)
	pageTmpl.Execute(w, d)
}

var pageTmpl = template.Must(template.New("page").Parse(`<!doctype html>
<html lang="en">
<head>
<meta charset="utf-8">
<meta name="viewport" content="width=device-width, initial-scale=1">
<title>{{.Title}} · Gatehouse development provider</title>
<style>
body{font-family:system-ui,sans-serif;max-width:26rem;margin:2rem auto;padding:0 1rem;color:#222}
.banner{background:#fff3cd;border:1px solid #e0b400;padding:.6rem .8rem;border-radius:.3rem;font-size:.9rem}
.error{background:#fde2e1;border:1px solid #d33;padding:.5rem .8rem;border-radius:.3rem}
label{display:block;margin-top:.8rem}
input{width:100%;padding:.4rem;box-sizing:border-box;font-size:1rem}
button{margin-top:1rem;padding:.5rem 1.2rem;font-size:1rem}
.hint{color:#555;font-size:.9rem}
</style>
</head>
<body>
<p class="banner" id="dev-banner" role="note"><strong>Development provider.</strong> For local development and tests only &mdash; never use it in production.</p>
<h1>{{.Title}}</h1>
{{if .Form}}
<p>Sign in to continue to <strong>{{.ClientID}}</strong>.</p>
{{if .Error}}<p class="error" id="error" role="alert">{{.Error}}</p>{{end}}
<form method="post" action="` + loginPath + `">
<input type="hidden" name="authRequestID" value="{{.AuthRequestID}}">
<label for="username">Username</label>
<input id="username" name="username" autocomplete="username" autofocus required value="{{.Username}}">
<label for="password">Password</label>
<input id="password" name="password" type="password" autocomplete="current-password" required>
<button id="submit" type="submit">Sign in</button>
</form>
{{if .DemoUsers}}<p class="hint">Demo accounts (password = username):{{range .DemoUsers}} <code>{{.}}</code>{{end}}</p>{{end}}
{{else}}
<p>{{.Message}}</p>
{{end}}
</body>
</html>
`))

// issWriter adds the RFC 9207 iss parameter to authorization responses:
// redirects to a relying party that carry code or error.
type issWriter struct {
	http.ResponseWriter
	issuer      string
	wroteHeader bool
}

func (w *issWriter) WriteHeader(status int) {
	if !w.wroteHeader {
		w.wroteHeader = true
		if status >= 300 && status < 400 {
			w.addIss()
		}
	}
	w.ResponseWriter.WriteHeader(status)
}

func (w *issWriter) Write(b []byte) (int, error) {
	if !w.wroteHeader {
		w.WriteHeader(http.StatusOK)
	}
	return w.ResponseWriter.Write(b)
}

// Unwrap lets http.ResponseController reach the underlying writer.
func (w *issWriter) Unwrap() http.ResponseWriter { return w.ResponseWriter }

func (w *issWriter) addIss() {
	loc := w.Header().Get("Location")
	u, err := url.Parse(loc)
	if err != nil || !u.IsAbs() || strings.HasPrefix(loc, w.issuer+"/") {
		return
	}
	q := u.Query()
	if !q.Has("code") && !q.Has("error") {
		return
	}
	if u.RawQuery != "" {
		u.RawQuery += "&"
	}
	u.RawQuery += "iss=" + url.QueryEscape(w.issuer)
	w.Header().Set("Location", u.String())
}
