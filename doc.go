// Package gatehouse is a Backend-for-Frontend (BFF) security gateway for
// browser single-page apps.
//
// A Gateway stands on the SPA's origin. It is a confidential OpenID Connect
// client: it runs the authorization code flow with PKCE, validates the ID
// token and keeps every token in a server-side session. The browser only
// gets an HttpOnly, Secure, SameSite __Host- cookie holding an opaque id.
// API calls from the SPA go through the Gateway, which checks them for
// cross-site forgery, attaches the user's access token (refreshing it when
// needed) and forwards them to the configured upstream. This is the BFF
// pattern of OAuth 2.0 for Browser-Based Applications (§6.1).
//
// The endpoints follow Duende BFF's conventions, so existing frontends work
// unchanged:
//
//	GET    /bff/login?returnUrl=&prompt=   start a login (navigation)
//	GET    /bff/silent-login               silent login in a hidden iframe
//	GET    /bff/callback                   the redirect URI
//	GET    /bff/user                       the session's claims (needs X-CSRF: 1)
//	GET    /bff/logout?sid=&returnUrl=     end the session (navigation)
//	POST   /bff/backchannel                OpenID Connect Back-Channel Logout
//	GET    /bff/sessions                   the user's sessions (needs X-CSRF: 1)
//	DELETE /bff/sessions[/{handle}]        end one, or all others
//	GET    /bff/healthz, /bff/readyz       liveness and readiness
//
// A Gateway is an http.Handler; build one with New from a Config. Its
// AdminHandler serves the operator API and health for a separate listener,
// and Sessions ends a user's sessions from Go code.
package gatehouse
