package hostileop

import (
	"maps"
	"slices"
)

// BackchannelLogoutEvent is the `events` member that marks a logout token
// (OpenID Connect Back-Channel Logout 1.0 §2.4).
const BackchannelLogoutEvent = "http://schemas.openid.net/event/backchannel-logout"

// LogoutClaims chooses whom a logout token logs out.
type LogoutClaims struct {
	Subject   string // `sub`; "" omits it
	SessionID string // `sid`; "" omits it
	// Audience is the `aud`; "" means the default client's id.
	Audience string
	// ID is the `jti`; "" means a random one.
	ID string
	// Extra claims are added last and may replace any claim above; defects
	// are applied after them.
	Extra map[string]any
}

type logoutKind int

const (
	logoutBadSignature logoutKind = iota + 1
	logoutAlgNone
	logoutHS256
	logoutUnknownKey
	logoutWrongIssuer
	logoutWrongAudience
	logoutExpired
	logoutMissingExp
	logoutMissingEvents
	logoutWrongEvents
	logoutEventNotObject
	logoutNoncePresent
	logoutNoSubNoSID
	logoutMissingJTI
	logoutMissingIat
	logoutTyp
)

// LogoutDefect is one way a logout token is broken. Several can be combined;
// when more than one chooses the signature (bad signature, alg none, HS256,
// unknown key) or the typ, the last one wins.
type LogoutDefect struct {
	kind   logoutKind
	secret []byte
	typ    string
	name   string
}

// String returns the defect's name.
func (d LogoutDefect) String() string { return d.name }

// Logout token defects (Back-Channel Logout 1.0 §2.4 and §2.6 list what a
// relying party must check).
var (
	// LogoutBadSignature flips one bit of a valid RS256 signature.
	LogoutBadSignature = LogoutDefect{kind: logoutBadSignature, name: "BadSignature"}
	// LogoutAlgNone issues an Unsecured JWS (`alg: none`).
	LogoutAlgNone = LogoutDefect{kind: logoutAlgNone, name: "AlgNone"}
	// LogoutUnknownKey signs with a key whose `kid` is never published.
	LogoutUnknownKey = LogoutDefect{kind: logoutUnknownKey, name: "UnknownKey"}
	// LogoutWrongIssuer sets `iss` to OtherIssuer.
	LogoutWrongIssuer = LogoutDefect{kind: logoutWrongIssuer, name: "WrongIssuer"}
	// LogoutWrongAudience sets `aud` to OtherAudience.
	LogoutWrongAudience = LogoutDefect{kind: logoutWrongAudience, name: "WrongAudience"}
	// LogoutExpired sets `exp` one minute in the past and `iat` three.
	LogoutExpired = LogoutDefect{kind: logoutExpired, name: "Expired"}
	// LogoutMissingExp omits `exp`.
	LogoutMissingExp = LogoutDefect{kind: logoutMissingExp, name: "MissingExp"}
	// LogoutMissingEvents omits `events`.
	LogoutMissingEvents = LogoutDefect{kind: logoutMissingEvents, name: "MissingEvents"}
	// LogoutWrongEvents sets `events` to an object without the
	// back-channel logout member.
	LogoutWrongEvents = LogoutDefect{kind: logoutWrongEvents, name: "WrongEvents"}
	// LogoutEventNotObject sets the back-channel logout member of `events`
	// to a string instead of a JSON object.
	LogoutEventNotObject = LogoutDefect{kind: logoutEventNotObject, name: "EventNotObject"}
	// LogoutNoncePresent adds a `nonce`, which a logout token MUST NOT have.
	LogoutNoncePresent = LogoutDefect{kind: logoutNoncePresent, name: "NoncePresent"}
	// LogoutNoSubNoSID removes both `sub` and `sid`.
	LogoutNoSubNoSID = LogoutDefect{kind: logoutNoSubNoSID, name: "NoSubNoSID"}
	// LogoutMissingJTI omits `jti`.
	LogoutMissingJTI = LogoutDefect{kind: logoutMissingJTI, name: "MissingJTI"}
	// LogoutMissingIat omits `iat`.
	LogoutMissingIat = LogoutDefect{kind: logoutMissingIat, name: "MissingIat"}
)

// LogoutDefects lists every logout token defect that takes no parameter,
// for table tests; add LogoutHS256 and LogoutTyp variants as needed.
func LogoutDefects() []LogoutDefect {
	return []LogoutDefect{LogoutBadSignature, LogoutAlgNone, LogoutUnknownKey, LogoutWrongIssuer,
		LogoutWrongAudience, LogoutExpired, LogoutMissingExp, LogoutMissingEvents, LogoutWrongEvents,
		LogoutEventNotObject, LogoutNoncePresent, LogoutNoSubNoSID, LogoutMissingJTI, LogoutMissingIat}
}

// LogoutHS256 signs the logout token with HMAC-SHA256 keyed by secret (at
// least 32 bytes), keeping the RSA key's `kid`.
func LogoutHS256(secret []byte) LogoutDefect {
	return LogoutDefect{kind: logoutHS256, secret: slices.Clone(secret), name: "HS256"}
}

// LogoutTyp sets the JOSE `typ` header to typ ("" omits it). Valid tokens
// carry "logout+jwt"; "JWT" and no typ are acceptable variants (§2.4);
// anything else, such as "at+jwt", is not.
func LogoutTyp(typ string) LogoutDefect {
	return LogoutDefect{kind: logoutTyp, typ: typ, name: "Typ(" + typ + ")"}
}

// LogoutToken returns a signed back-channel logout token for lc with the
// given defects applied; with none it is valid: `iss`, `aud`, `iat`, `exp`
// (LogoutTokenTTL), `jti`, `events`, `sub`/`sid` as given, `typ` logout+jwt,
// signed RS256 with the current key. It fails the test if signing fails.
func (p *Provider) LogoutToken(lc LogoutClaims, defects ...LogoutDefect) string {
	p.mu.Lock()
	defer p.mu.Unlock()
	now := p.now()
	c := map[string]any{
		"iss":    p.URL,
		"aud":    lc.Audience,
		"iat":    now.Unix(),
		"exp":    now.Add(LogoutTokenTTL).Unix(),
		"jti":    lc.ID,
		"events": map[string]any{BackchannelLogoutEvent: map[string]any{}},
	}
	if lc.Audience == "" {
		c["aud"] = p.first
	}
	if lc.ID == "" {
		c["jti"] = randomString("jti-")
	}
	if lc.Subject != "" {
		c["sub"] = lc.Subject
	}
	if lc.SessionID != "" {
		c["sid"] = lc.SessionID
	}
	maps.Copy(c, lc.Extra)

	typ := "logout+jwt"
	var signWith logoutKind
	var secret []byte
	for _, d := range defects {
		switch d.kind {
		case logoutBadSignature, logoutAlgNone, logoutUnknownKey:
			signWith = d.kind
		case logoutHS256:
			signWith, secret = d.kind, d.secret
		case logoutWrongIssuer:
			c["iss"] = OtherIssuer
		case logoutWrongAudience:
			c["aud"] = OtherAudience
		case logoutExpired:
			c["iat"] = now.Add(-3 * LogoutTokenTTL / 2).Unix()
			c["exp"] = now.Add(-LogoutTokenTTL / 2).Unix()
		case logoutMissingExp:
			delete(c, "exp")
		case logoutMissingEvents:
			delete(c, "events")
		case logoutWrongEvents:
			c["events"] = map[string]any{"http://schemas.openid.net/event/some-other-event": map[string]any{}}
		case logoutEventNotObject:
			c["events"] = map[string]any{BackchannelLogoutEvent: "logout"}
		case logoutNoncePresent:
			c["nonce"] = randomString("nonce-")
		case logoutNoSubNoSID:
			delete(c, "sub")
			delete(c, "sid")
		case logoutMissingJTI:
			delete(c, "jti")
		case logoutMissingIat:
			delete(c, "iat")
		case logoutTyp:
			typ = d.typ
		}
	}

	raw, err := p.signLogoutLocked(signWith, secret, typ, c)
	if err != nil {
		p.tb.Fatalf("hostileop: logout token: %v", err)
	}
	return raw
}

func (p *Provider) signLogoutLocked(signWith logoutKind, secret []byte, typ string, c map[string]any) (string, error) {
	switch signWith {
	case logoutAlgNone:
		return unsecuredJWT(typ, c)
	case logoutHS256:
		return signHS256(secret, p.keys.current.kid, typ, c)
	case logoutUnknownKey:
		k, err := p.keys.unpublishedKey()
		if err != nil {
			return "", err
		}
		return signRS256(k, false, typ, c)
	case logoutBadSignature:
		raw, err := signRS256(p.keys.current, p.keys.noKid, typ, c)
		if err != nil {
			return "", err
		}
		return corruptSignature(raw)
	default:
		return signRS256(p.keys.current, p.keys.noKid, typ, c)
	}
}
