// Package tracing adds OpenTelemetry traces to Gatehouse: a server span for
// each inbound request, a client span for each call to the OpenID provider
// or an upstream API (with a W3C traceparent header, so the upstream joins
// the trace), and a span for each session store call.
//
// Tracing is off unless an OTLP/HTTP endpoint or an exporter is given; then
// New returns a Tracing whose wrappers hand back what they were given, so
// a disabled Tracing costs nothing per request. Everything is passed in
// explicitly: the package never sets OpenTelemetry's global providers.
//
// Spans never carry tokens, cookies, the Authorization header or query
// strings: the callback URL carries the authorization code and state
// (RFC 9700 §4.2.4, §4.3.2), and API query strings may carry anything.
// Before export, every span is scrubbed: url.query and header attributes are
// dropped, and URLs in attribute values, event attributes and status
// descriptions lose their query, fragment and user information. Browser-
// supplied trace context is not trusted by default (Options.TrustParent):
// a request from the internet starts a new trace that links to the one it
// claimed, so a browser can neither choose trace ids nor force sampling.
package tracing
