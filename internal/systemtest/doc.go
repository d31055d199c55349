// Package systemtest holds Gatehouse's system tests: whole gateways built
// with gatehouse.New against real provider code (the in-process
// development provider, the hostile provider, npm oidc-provider), real
// stores and a scripted browser. The harness (harness.go) is ordinary code
// so that every test file shares one environment, one clock and one
// browser.
package systemtest
