package login

import (
	"crypto/sha256"
	"encoding/base64"
	"net/http"

	"github.com/gatehouse-bff/gatehouse/internal/httpx"
)

// silentScript tells the parent frame the outcome of a silent login, in
// Duende BFF's message format. The target origin is the page's own origin,
// which is the app's (the callback is served there), never "*": a parent
// on another origin gets nothing, and frame-ancestors 'self' keeps such a
// parent from framing the page at all. The outcome is read from the page,
// so the script is one constant that the page's CSP allows by hash.
const silentScript = `window.parent.postMessage({source:"bff-silent-login",isLoggedIn:document.documentElement.dataset.loggedIn==="true"},window.location.origin);`

// silentCSP allows only silentScript and framing by the app's own origin.
var silentCSP = func() string {
	sum := sha256.Sum256([]byte(silentScript))
	return "default-src 'none'; script-src 'sha256-" + base64.StdEncoding.EncodeToString(sum[:]) +
		"'; base-uri 'none'; form-action 'none'; frame-ancestors 'self'"
}()

const (
	silentPageTrue  = `<!doctype html><html lang="en" data-logged-in="true"><head><meta charset="utf-8"><meta name="referrer" content="no-referrer"><title>Silent login</title></head><body><script>` + silentScript + `</script></body></html>` + "\n"
	silentPageFalse = `<!doctype html><html lang="en" data-logged-in="false"><head><meta charset="utf-8"><meta name="referrer" content="no-referrer"><title>Silent login</title></head><body><script>` + silentScript + `</script></body></html>` + "\n"
)

// silentResult answers a silent login with the page that posts
// { source: "bff-silent-login", isLoggedIn } to the parent frame. It is the
// only Gatehouse response that may be framed, and only by the app's own
// origin.
func (h *Handler) silentResult(w http.ResponseWriter, r *http.Request, loggedIn bool) {
	hd := w.Header()
	httpx.NoStore(hd)
	hd.Set("Content-Security-Policy", silentCSP)
	hd.Set("Content-Type", "text/html; charset=utf-8")
	hd.Set("Referrer-Policy", "no-referrer")
	w.WriteHeader(http.StatusOK)
	if r.Method == http.MethodHead {
		return
	}
	if loggedIn {
		w.Write([]byte(silentPageTrue))
	} else {
		w.Write([]byte(silentPageFalse))
	}
}
