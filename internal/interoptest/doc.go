// Package interoptest runs an independent, certified OpenID Provider (the npm
// package oidc-provider, configured by interop/provider.mjs) on loopback for
// Gatehouse interop tests.
//
// Start installs the provider's pinned npm dependencies once (npm ci into
// interop/node_modules), launches it on a free 127.0.0.1 port with one
// confidential client, and stops it when the test ends. The provider requires
// PKCE (S256), rotates refresh tokens, supports token revocation (RFC 7009),
// RP-Initiated Logout and Back-Channel Logout, issues JWT access tokens (RFC
// 9068, DPoP-bound on request) for the resource indicators in
// Options.Resources, and completes logins without a browser for
// Options.AutoLoginSub. Where Node.js or npm is missing, Start
// skips the test with a loud message; with CI=true in the environment it fails
// the test instead, so a CI machine without Node.js cannot pass silently.
package interoptest
