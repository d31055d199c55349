// Package chart renders the Gatehouse Helm chart (../gatehouse) with
// Helm's own Go packages, decodes every rendered object strictly into the
// Kubernetes API types, and checks the rules the chart promises: the
// security settings, the probes, the Service ports, the mounted Secrets,
// the replicas/store rule, and that the rendered gatehouse.yaml is accepted
// by the gateway's configuration loader. It also lints the repository's
// Dockerfile.
//
// It is a Go module of its own so that Helm and the Kubernetes API types
// stay out of the gateway's dependency graph. Run it with
//
//	cd deploy/helm/test && go test ./...
package chart
