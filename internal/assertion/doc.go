// Package assertion signs the identity assertions Gatehouse sends to
// upstream APIs (X-Gatehouse-Assertion) and publishes their public keys as a
// JSON Web Key Set (RFC 7517) at <bff.prefix>/jwks.json.
//
// An assertion is a JWT (RFC 7519) signed with ES256, header typ "JWT" and
// kid the key's RFC 7638 thumbprint, with the claims iss (the gateway's
// public origin), aud (the route's audience, or its upstream origin), sub,
// iat, exp (60 seconds after iat), jti (random) and the claims the route
// names in identity.headers. An API verifies it as it would an access token
// (RFC 9068 style: signature with a key from jwks.json, iss, aud, exp).
//
// Keys come from a PEM file (identity.signing_key_file: the first key signs,
// any further keys are only published, for rotation), or are generated on
// first use and kept in the session store, sealed, under one record, so
// that every replica signs with the same key:
//
//   - Creation is elected with store.Once: of replicas that find no record
//     at once, one generates and stores it, the others read it back.
//   - Each key carries the time from which it signs; a replica signs with
//     the newest key whose time has come. A new key is added to the record
//     [PublishAhead] before it signs, so every replica (which re-reads the
//     record every [Reload]) and every API (jwks.json is cacheable for five
//     minutes) has it before the first assertion signed with it.
//   - Keys rotate every [RotateEvery]; the previous key stays published for
//     [RetainAfter] after its successor took over, far beyond the 60 second
//     life of what it signed.
package assertion
