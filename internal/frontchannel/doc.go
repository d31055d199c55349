// Package frontchannel is Gatehouse's OpenID Connect Front-Channel Logout
// 1.0 endpoint: the provider loads it in an iframe with its issuer (iss)
// and the session id (sid) it issued, and the sessions of that iss and sid
// end. Browsers block third-party cookies in the provider's iframe, so no
// cookie is needed or used: iss and sid are the request.
//
// It is the only endpoint whose Content-Security-Policy frame-ancestors
// lets the provider's origin frame it; every other response is framed by
// nobody.
package frontchannel
