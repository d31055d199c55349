// Independent OpenID Provider for Gatehouse interop tests.
//
// Runs the certified npm `oidc-provider` on loopback with one confidential
// client, PKCE (S256) required, refresh-token rotation, token revocation
// (RFC 7009), RP-Initiated Logout and Back-Channel Logout. Logins complete
// without a browser when AUTO_LOGIN_SUB is set; otherwise a minimal HTML
// login form is served. Prints exactly one line `READY <issuer>` on stdout
// once it accepts connections; everything else goes to stderr.
//
// Settings come from the environment or from `--name=value` arguments
// (argument wins; `--port=0` is the same as PORT=0). See README.md.

import { createServer } from 'node:http';
import { generateKeyPairSync, randomBytes } from 'node:crypto';
import { parseArgs } from 'node:util';

// oidc-provider prints notices with console.info; keep stdout for READY.
console.info = (...args) => console.error(...args);

const { default: Provider, errors } = await import('oidc-provider');

const SETTINGS = {
  issuer: 'ISSUER',
  port: 'PORT',
  'client-id': 'CLIENT_ID',
  'client-secret': 'CLIENT_SECRET',
  'redirect-uri': 'REDIRECT_URI',
  'post-logout-redirect-uri': 'POST_LOGOUT_REDIRECT_URI',
  'backchannel-logout-uri': 'BACKCHANNEL_LOGOUT_URI',
  'auto-login-sub': 'AUTO_LOGIN_SUB',
  'access-token-ttl': 'ACCESS_TOKEN_TTL',
  'refresh-tokens': 'REFRESH_TOKENS',
  resources: 'RESOURCES',
};

function readSettings() {
  const { values } = parseArgs({
    options: Object.fromEntries(Object.keys(SETTINGS).map((k) => [k, { type: 'string' }])),
    strict: true,
  });
  const out = {};
  for (const [arg, env] of Object.entries(SETTINGS)) {
    out[env] = values[arg] ?? process.env[env] ?? '';
  }
  return out;
}

function list(value) {
  return value.split(',').map((s) => s.trim()).filter(Boolean);
}

function positiveInt(name, value, fallback) {
  if (value === '') return fallback;
  const n = Number(value);
  if (!Number.isInteger(n) || n <= 0) {
    throw new Error(`provider: ${name} must be a positive integer, got ${JSON.stringify(value)}`);
  }
  return n;
}

const cfg = readSettings();
const port = cfg.PORT === '' ? 0 : Number(cfg.PORT);
if (!Number.isInteger(port) || port < 0 || port > 65535) {
  throw new Error(`provider: PORT must be 0..65535, got ${JSON.stringify(cfg.PORT)}`);
}
const clientId = cfg.CLIENT_ID || 'gatehouse';
const clientSecret = cfg.CLIENT_SECRET || 'gatehouse-interop-secret';
const redirectURIs = list(cfg.REDIRECT_URI || 'http://127.0.0.1:8080/bff/callback');
const postLogoutURIs = list(cfg.POST_LOGOUT_REDIRECT_URI);
const backchannelURI = cfg.BACKCHANNEL_LOGOUT_URI;
const autoLoginSub = cfg.AUTO_LOGIN_SUB;
const accessTokenTTL = positiveInt('ACCESS_TOKEN_TTL', cfg.ACCESS_TOKEN_TTL, 300);
const refreshTokens = cfg.REFRESH_TOKENS || 'always';
if (!['always', 'offline_access'].includes(refreshTokens)) {
  throw new Error(`provider: REFRESH_TOKENS must be "always" or "offline_access", got ${JSON.stringify(refreshTokens)}`);
}
// Resource servers (RFC 8707 resource indicators) for which the provider
// issues JWT access tokens (RFC 9068). A request naming any other resource
// fails with invalid_target; one naming none gets an opaque token for
// UserInfo, as without this setting.
const resources = new Set(list(cfg.RESOURCES).map((r) => {
  const u = new URL(r);
  if (u.search || u.hash) throw new Error(`provider: RESOURCES entry ${JSON.stringify(r)} has a query or fragment`);
  return r;
}));
const RESOURCE_SCOPES = 'orders:read orders:write';

// Bind first so that PORT=0 yields a real port for the issuer URL.
const server = createServer();
await new Promise((resolve, reject) => {
  server.once('error', reject);
  server.listen(port, '127.0.0.1', resolve);
});
const issuer = (cfg.ISSUER || `http://127.0.0.1:${server.address().port}`).replace(/\/$/, '');

const stats = {
  grants: {},
  grantErrors: {},
  refreshes: 0,
  refreshErrors: 0,
  revocations: 0,
  revokedGrants: {},
  backchannel: { success: 0, error: 0, errors: [] },
  endSessions: 0,
};

// Sessions by id -> account, so the test logout route can find them.
const liveSessions = new Map();

const accounts = (sub) => ({
  accountId: sub,
  async claims() {
    return {
      sub,
      name: `Interop User ${sub}`,
      email: `${sub}@interop.test`,
      email_verified: true,
    };
  },
});

const client = {
  client_id: clientId,
  client_secret: clientSecret,
  token_endpoint_auth_method: 'client_secret_basic',
  grant_types: ['authorization_code', 'refresh_token'],
  response_types: ['code'],
  redirect_uris: redirectURIs,
  post_logout_redirect_uris: postLogoutURIs,
};
if (backchannelURI) {
  client.backchannel_logout_uri = backchannelURI;
  client.backchannel_logout_session_required = true;
}

const rsa = generateKeyPairSync('rsa', { modulusLength: 2048 }).privateKey.export({ format: 'jwk' });
const ec = generateKeyPairSync('ec', { namedCurve: 'P-256' }).privateKey.export({ format: 'jwk' });

const provider = new Provider(issuer, {
  clients: [client],
  jwks: {
    keys: [
      { ...rsa, kid: `rs-${randomBytes(6).toString('hex')}`, use: 'sig', alg: 'RS256' },
      { ...ec, kid: `es-${randomBytes(6).toString('hex')}`, use: 'sig', alg: 'ES256' },
    ],
  },
  cookies: { keys: [randomBytes(32).toString('base64url')] },
  scopes: ['openid', 'offline_access', 'profile', 'email'],
  claims: {
    openid: ['sub'],
    profile: ['name'],
    email: ['email', 'email_verified'],
    sid: null,
    auth_time: null,
    acr: null,
    iss: null,
  },
  // Put the profile claims into the ID token as well, as many providers do.
  conformIdTokenClaims: false,
  findAccount: async (_ctx, sub) => accounts(sub),
  pkce: { required: () => true },
  rotateRefreshToken: true,
  // "always": every code grant gets a refresh token (tied to the provider
  // session unless offline_access was granted), like most commercial
  // providers. "offline_access": only with offline_access, which
  // OpenID Connect Core §11 makes depend on prompt=consent.
  issueRefreshToken: async (_ctx, c, source) => c.grantTypeAllowed('refresh_token')
    && (refreshTokens === 'always' || source.scopes.has('offline_access')),
  features: {
    devInteractions: { enabled: false },
    revocation: { enabled: true },
    backchannelLogout: { enabled: true },
    rpInitiatedLogout: { enabled: true, logoutSource, postLogoutSuccessSource },
    userinfo: { enabled: true },
    resourceIndicators: {
      enabled: true,
      getResourceServerInfo: async (_ctx, indicator) => {
        if (!resources.has(indicator)) throw new errors.InvalidTarget();
        return {
          scope: RESOURCE_SCOPES,
          audience: indicator,
          accessTokenTTL: accessTokenTTL,
          accessTokenFormat: 'jwt',
          jwt: { sign: { alg: 'ES256' } },
        };
      },
    },
  },
  interactions: { url: (_ctx, interaction) => `/interaction/${interaction.uid}` },
  ttl: {
    AccessToken: accessTokenTTL,
    AuthorizationCode: 60,
    IdToken: 3600,
    RefreshToken: 14 * 24 * 3600,
    Interaction: 600,
    Session: 24 * 3600,
    Grant: 14 * 24 * 3600,
  },
  clientBasedCORS: () => false,
  fetch: loopbackFetch,
  discovery: { prompt_values_supported: ['none', 'login', 'consent'] },
  renderError: async (ctx, out) => {
    ctx.type = 'html';
    ctx.body = page('Error', Object.entries(out)
      .map(([k, v]) => `<p><b>${esc(k)}</b>: ${esc(String(v))}</p>`).join(''));
  },
});

provider.on('grant.success', (ctx) => {
  const type = ctx.oidc.params.grant_type;
  stats.grants[type] = (stats.grants[type] ?? 0) + 1;
  if (type === 'refresh_token') stats.refreshes += 1;
});
provider.on('grant.error', (ctx, err) => {
  const type = ctx.oidc?.params?.grant_type ?? 'unknown';
  stats.grantErrors[type] = (stats.grantErrors[type] ?? 0) + 1;
  if (type === 'refresh_token') stats.refreshErrors += 1;
  console.error(`provider: token endpoint error: ${err.error ?? err.message}`);
});
provider.on('grant.revoked', (ctx) => {
  const route = ctx?.oidc?.route ?? 'unknown';
  stats.revokedGrants[route] = (stats.revokedGrants[route] ?? 0) + 1;
});
provider.on('backchannel.success', () => { stats.backchannel.success += 1; });
provider.on('backchannel.error', (_ctx, err) => {
  stats.backchannel.error += 1;
  stats.backchannel.errors.push(err.message);
  console.error(`provider: back-channel logout failed: ${err.message}`);
});
provider.on('end_session.success', () => { stats.endSessions += 1; });
provider.on('session.saved', (session) => {
  if (session.accountId) liveSessions.set(session.jti, session.accountId);
});
provider.on('session.destroyed', (session) => { liveSessions.delete(session.jti); });
provider.on('server_error', (_ctx, err) => { console.error('provider: server error', err); });

// oidc-provider's own fetch refuses special-use addresses, loopback included,
// against SSRF. Interop clients listen on loopback, so this provider fetches
// (back-channel logout deliveries) only loopback URLs and nothing else.
const LOOPBACK = new Set(['127.0.0.1', 'localhost', '[::1]']);
async function loopbackFetch(url, options) {
  const target = new URL(url);
  if (!LOOPBACK.has(target.hostname)) {
    throw new Error(`provider: refusing to fetch non-loopback URL ${target.origin}`);
  }
  const { dispatcher, ...rest } = options;
  return globalThis.fetch(target, rest);
}

function esc(s) {
  return s.replace(/[&<>"']/g, (c) => `&#${c.charCodeAt(0)};`);
}

function page(title, body) {
  return `<!DOCTYPE html><html><head><meta charset="utf-8"><title>${esc(title)}</title></head>`
    + `<body><h1>${esc(title)}</h1>${body}</body></html>`;
}

// The logout confirmation submits itself with logout=yes, so RP-Initiated
// Logout ends the provider session (and sends back-channel logout) without
// a click. A client without JavaScript can post the same form.
async function logoutSource(ctx, form) {
  const autoForm = form.replace('</form>', '<input type="hidden" name="logout" value="yes"/><noscript><button type="submit">Sign out</button></noscript></form>');
  ctx.type = 'html';
  ctx.body = page('Signing out', `${autoForm}<script>document.forms[0].submit()</script>`);
}

async function postLogoutSuccessSource(ctx) {
  ctx.type = 'html';
  ctx.body = page('Signed out', '<p>You are signed out.</p>');
}

async function readForm(req) {
  const chunks = [];
  let size = 0;
  for await (const chunk of req) {
    size += chunk.length;
    if (size > 16 * 1024) throw new Error('provider: form body too large');
    chunks.push(chunk);
  }
  return new URLSearchParams(Buffer.concat(chunks).toString('utf8'));
}

// consentResult grants everything the request asked for.
async function consentResult(details) {
  const { prompt: { details: missing }, params, session, grantId } = details;
  const grant = grantId
    ? await provider.Grant.find(grantId)
    : new provider.Grant({ accountId: session.accountId, clientId: params.client_id });
  if (missing.missingOIDCScope) grant.addOIDCScope(missing.missingOIDCScope.join(' '));
  if (missing.missingOIDCClaims) grant.addOIDCClaims(missing.missingOIDCClaims);
  for (const [indicator, scopes] of Object.entries(missing.missingResourceScopes ?? {})) {
    grant.addResourceScope(indicator, scopes.join(' '));
  }
  return { consent: { grantId: await grant.save() } };
}

async function interaction(ctx, uid, action) {
  const details = await provider.interactionDetails(ctx.req, ctx.res);
  if (details.uid !== uid) ctx.throw(400, 'interaction mismatch');
  const { prompt, params } = details;

  if (prompt.name === 'consent') {
    await provider.interactionFinished(ctx.req, ctx.res, await consentResult(details));
    ctx.respond = false;
    return;
  }
  if (prompt.name !== 'login') ctx.throw(400, `unsupported prompt ${prompt.name}`);

  let sub = '';
  if (autoLoginSub) {
    // login_hint picks another subject in auto-login mode.
    sub = params.login_hint || autoLoginSub;
  } else if (action === 'login' && ctx.method === 'POST') {
    sub = ((await readForm(ctx.req)).get('login') ?? '').trim();
  }
  if (sub) {
    await provider.interactionFinished(ctx.req, ctx.res, { login: { accountId: sub } });
    ctx.respond = false;
    return;
  }
  ctx.type = 'html';
  ctx.set('cache-control', 'no-store');
  ctx.body = page('Sign in', `<form method="post" action="/interaction/${esc(uid)}/login">`
    + '<label>User <input name="login" autofocus required></label> '
    + '<button type="submit">Sign in</button></form>');
}

// Ends every provider session of sub the way the end_session confirmation
// does: back-channel logout to each client, then grant revocation.
async function logoutSubject(sub) {
  let sessions = 0;
  let notified = 0;
  let failed = 0;
  for (const [jti, accountId] of [...liveSessions]) {
    if (accountId !== sub) continue;
    const session = await provider.Session.find(jti);
    liveSessions.delete(jti);
    if (!session || session.accountId !== sub) continue;
    sessions += 1;
    for (const [cid, { sid, grantId }] of Object.entries(session.authorizations ?? {})) {
      const c = await provider.Client.find(cid);
      if (c?.backchannelLogoutUri) {
        try {
          await c.backchannelLogout(sub, sid);
          provider.emit('backchannel.success', undefined, c, sub, sid);
          notified += 1;
        } catch (err) {
          failed += 1;
          provider.emit('backchannel.error', undefined, err, c, sub, sid);
        }
      }
      if (grantId) {
        await Promise.all([
          provider.AccessToken.revokeByGrantId(grantId),
          provider.RefreshToken.revokeByGrantId(grantId),
          provider.AuthorizationCode.revokeByGrantId(grantId),
          provider.Grant.adapter.destroy(grantId),
        ]);
      }
    }
    await session.destroy();
  }
  return { sessions, notified, failed };
}

provider.use(async (ctx, next) => {
  const m = /^\/interaction\/([^/]+)(?:\/(login))?$/.exec(ctx.path);
  if (m && (ctx.method === 'GET' || ctx.method === 'POST')) {
    await interaction(ctx, m[1], m[2]);
    return;
  }
  if (ctx.path === '/test/stats' && ctx.method === 'GET') {
    ctx.set('cache-control', 'no-store');
    ctx.body = stats;
    return;
  }
  if (ctx.path === '/test/logout' && ctx.method === 'POST') {
    const sub = ctx.query.sub;
    if (typeof sub !== 'string' || sub === '') ctx.throw(400, 'sub is required');
    ctx.set('cache-control', 'no-store');
    ctx.body = await logoutSubject(sub);
    return;
  }
  await next();
  if (ctx.path === '/token/revocation' && ctx.method === 'POST' && ctx.status === 200) {
    stats.revocations += 1;
  }
});

server.on('request', provider.callback());
process.stdout.write(`READY ${issuer}\n`);

function shutdown() {
  server.close(() => process.exit(0));
  server.closeAllConnections();
}
process.on('SIGTERM', shutdown);
process.on('SIGINT', shutdown);
