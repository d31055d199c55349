// Package metrics exposes Gatehouse's Prometheus metrics: HTTP requests per
// route, sessions, token refreshes, identity-provider and session-store
// calls, and the requests the gateway refused (forgery, token leaks, rate
// limits).
//
// Metrics are registered with the prometheus.Registerer given to New, never
// with the global default registry, so several gateways can live in one
// process and tests can use a fresh registry each. A nil *Metrics records
// nothing, so a component can take an optional *Metrics and call it
// unconditionally.
//
// Every label value is supplied by Gatehouse code (a route name, an
// operation, a reason), never copied from a request, so the number of time
// series stays small whatever clients send. The exposed names, help texts,
// types and label names are pinned by testdata/metrics.golden.
package metrics
