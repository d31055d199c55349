// Package dpop implements the client and verifier building blocks of OAuth
// 2.0 Demonstrating Proof of Possession (DPoP, RFC 9449), with which
// Gatehouse sender-constrains the tokens it holds for a session
// (RFC 9700 §2.2.1).
//
// A [Key] is an ES256 key pair; the gateway creates one per session, stores
// it sealed in the session record ([Key.Marshal], [ParseKey]) and binds the
// session's tokens to its thumbprint ([Key.Thumbprint], the `jkt`).
// [Key.Proof] makes the DPoP proof JWT of RFC 9449 §4.2 for one request.
//
// [Transport] wraps the HTTP transport used for token endpoint requests: a
// request whose context carries a key ([WithKey]) gets a `DPoP` header, and
// a server-supplied nonce (RFC 9449 §8) is answered with one retry and
// remembered per origin. Requests without a key pass through untouched.
//
// [Verify] and [VerifyProof] check a proof as a server does (RFC 9449 §4.3);
// Gatehouse's test provider uses them.
//
// All JWS and JWK work is done by github.com/go-jose/go-jose/v4.
package dpop
