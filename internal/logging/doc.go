// Package logging builds Gatehouse's structured logger and the access log.
//
// Every logger New returns is wrapped by Redact, which replaces the value of
// any attribute named like a credential (access_token, cookie,
// authorization, ...) with "[redacted]", at any depth of groups. Redaction
// goes by attribute key; it is a safety net, not a licence to log secrets
// under other names or inside messages. AccessLog writes one line per
// request and never logs the query string, which can carry an authorization
// code or state.
package logging
