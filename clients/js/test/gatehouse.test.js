import { test, describe, beforeEach, after } from 'node:test';
import assert from 'node:assert/strict';

// Any touch of browser storage fails the test: the helper keeps nothing
// there (tokens never reach the browser, and neither does anything else).
const storageTouches = [];
for (const name of ['localStorage', 'sessionStorage', 'indexedDB', 'caches', 'document']) {
  Object.defineProperty(globalThis, name, {
    configurable: true,
    get() {
      storageTouches.push(name);
      throw new Error(`${name} must not be used`);
    },
  });
}
after(() => {
  assert.deepEqual(storageTouches, [], 'the module touched browser storage');
});

const { createClient, isLocalUrl, GatehouseError } = await import('../gatehouse.js');

function fakeLocation(path = '/orders', search = '?page=2', hash = '#top') {
  return {
    pathname: path,
    search,
    hash,
    assigned: [],
    assign(url) { this.assigned.push(url); },
  };
}

// fakeFetch answers each call from routes ("METHOD path" -> Response factory)
// and records what was sent.
function fakeFetch(routes) {
  const calls = [];
  const fn = async (input, init = {}) => {
    const url = typeof input === 'string' ? input : input.url;
    const method = init.method ?? (typeof input === 'string' ? 'GET' : input.method);
    calls.push({ input, url, method, init, headers: new Headers(init.headers) });
    const route = routes[`${method} ${url}`];
    if (!route) return new Response('not found', { status: 404 });
    return route();
  };
  fn.calls = calls;
  return fn;
}

const json = (body, status = 200) => () => new Response(JSON.stringify(body), {
  status,
  headers: { 'content-type': 'application/json' },
});
const status = (code) => () => new Response(null, { status: code });

const userClaims = [
  { type: 'sub', value: 'alice' },
  { type: 'name', value: 'Alice' },
  { type: 'role', value: 'admin' },
  { type: 'role', value: 'ops' },
  { type: 'bff:logout_url', value: '/bff/logout?sid=abc' },
  { type: 'bff:session_expires_in', value: 1200 },
  { type: 'bff:session_state', value: 'st' },
];

describe('fetch', () => {
  let location;
  beforeEach(() => { location = fakeLocation(); });

  test('adds the anti-forgery header and same-origin credentials', async () => {
    const f = fakeFetch({ 'GET /api/orders': json([]) });
    const client = createClient({ fetch: f, location });
    const res = await client.fetch('/api/orders', { headers: { Accept: 'application/json' } });
    assert.equal(res.status, 200);
    assert.equal(f.calls.length, 1);
    assert.equal(f.calls[0].headers.get('x-csrf'), '1');
    assert.equal(f.calls[0].headers.get('accept'), 'application/json');
    assert.equal(f.calls[0].init.credentials, 'same-origin');
    assert.deepEqual(location.assigned, []);
  });

  test('uses a configured header name and value', async () => {
    const f = fakeFetch({ 'POST /api/x': status(204) });
    const client = createClient({ fetch: f, location, csrfHeader: 'X-Requested-With', csrfValue: 'gatehouse' });
    await client.fetch('/api/x', { method: 'POST', body: '{}' });
    assert.equal(f.calls[0].headers.get('x-requested-with'), 'gatehouse');
    assert.equal(f.calls[0].headers.get('x-csrf'), null);
    assert.equal(f.calls[0].init.body, '{}');
  });

  test('keeps the headers of a Request input', async () => {
    const f = fakeFetch({ 'PUT http://app.test/api/y': status(200) });
    const client = createClient({ fetch: f, location });
    await client.fetch(new Request('http://app.test/api/y', { method: 'PUT', headers: { 'X-Trace': 't1' } }));
    assert.equal(f.calls[0].headers.get('x-trace'), 't1');
    assert.equal(f.calls[0].headers.get('x-csrf'), '1');
  });

  test('respects explicit credentials', async () => {
    const f = fakeFetch({ 'GET /api/z': status(200) });
    await createClient({ fetch: f, location }).fetch('/api/z', { credentials: 'include' });
    assert.equal(f.calls[0].init.credentials, 'include');
  });

  test('401 navigates to login once and resolves to the 401 response', async () => {
    const f = fakeFetch({ 'GET /api/orders': status(401) });
    const client = createClient({ fetch: f, location });
    const res = await client.fetch('/api/orders');
    assert.equal(res.status, 401);
    assert.deepEqual(location.assigned, ['/bff/login?returnUrl=%2Forders%3Fpage%3D2%23top']);
  });

  test('401 login URL encodes the return path', async () => {
    const f = fakeFetch({ 'GET /api/orders': status(401) });
    location = fakeLocation('/orders/7', '?q=a b&x=1', '#frag');
    const client = createClient({ fetch: f, location });
    await client.fetch('/api/orders');
    assert.deepEqual(location.assigned, ['/bff/login?returnUrl=%2Forders%2F7%3Fq%3Da+b%26x%3D1%23frag']);
    const parsed = new URL(location.assigned[0], 'http://app.test');
    assert.equal(parsed.searchParams.get('returnUrl'), '/orders/7?q=a b&x=1#frag');
  });

  test('several 401s navigate once', async () => {
    const f = fakeFetch({ 'GET /api/a': status(401), 'GET /api/b': status(401) });
    const client = createClient({ fetch: f, location });
    await Promise.all([client.fetch('/api/a'), client.fetch('/api/b')]);
    assert.equal(location.assigned.length, 1);
  });

  test('401 without loginOn401 only returns the response', async () => {
    const f = fakeFetch({ 'GET /api/a': status(401) });
    const res = await createClient({ fetch: f, location, loginOn401: false }).fetch('/api/a');
    assert.equal(res.status, 401);
    assert.deepEqual(location.assigned, []);
  });

  test('403 does not navigate', async () => {
    const f = fakeFetch({ 'GET /api/a': status(403) });
    const res = await createClient({ fetch: f, location }).fetch('/api/a');
    assert.equal(res.status, 403);
    assert.deepEqual(location.assigned, []);
  });

  test('a current location that is not a local path returns to /', async () => {
    const f = fakeFetch({ 'GET /api/a': status(401) });
    location = fakeLocation('//evil.example/x', '', '');
    await createClient({ fetch: f, location }).fetch('/api/a');
    assert.deepEqual(location.assigned, ['/bff/login?returnUrl=%2F']);
  });

  test('uses the prefix', async () => {
    const f = fakeFetch({ 'GET /api/a': status(401) });
    await createClient({ fetch: f, location, prefix: '/auth/' }).fetch('/api/a');
    assert.match(location.assigned[0], /^\/auth\/login\?returnUrl=/);
  });
});

describe('user', () => {
  test('returns the claims and conveniences', async () => {
    const f = fakeFetch({ 'GET /bff/user': json(userClaims) });
    const location = fakeLocation();
    const u = await createClient({ fetch: f, location }).user();
    assert.deepEqual(u.claims, userClaims);
    assert.equal(u.sub, 'alice');
    assert.equal(u.name, 'Alice');
    assert.equal(u.get('role'), 'admin');
    assert.deepEqual(u.getAll('role'), ['admin', 'ops']);
    assert.equal(u.get('missing'), undefined);
    assert.equal(u.logoutUrl, '/bff/logout?sid=abc');
    assert.equal(u.expiresIn, 1200);
    assert.equal(u.sessionState, 'st');
    assert.equal(f.calls[0].headers.get('x-csrf'), '1');
    assert.equal(f.calls[0].init.credentials, 'same-origin');
    assert.deepEqual(location.assigned, []);
  });

  test('slide false asks not to extend the session', async () => {
    const f = fakeFetch({ 'GET /bff/user?slide=false': json(userClaims) });
    const u = await createClient({ fetch: f, location: fakeLocation() }).user({ slide: false });
    assert.equal(u.sub, 'alice');
  });

  test('401 is anonymous, not a navigation', async () => {
    const f = fakeFetch({ 'GET /bff/user': status(401) });
    const location = fakeLocation();
    assert.equal(await createClient({ fetch: f, location }).user(), null);
    assert.deepEqual(location.assigned, []);
  });

  test('other failures throw', async () => {
    const cases = [
      ['server error', status(500), 500],
      ['not an array', json({ sub: 'alice' }), 200],
    ];
    for (const [name, route, code] of cases) {
      const f = fakeFetch({ 'GET /bff/user': route });
      await assert.rejects(createClient({ fetch: f, location: fakeLocation() }).user(), (err) => {
        assert.ok(err instanceof GatehouseError, name);
        assert.equal(err.status, code, name);
        return true;
      });
    }
  });

  test('a missing or non-numeric expiry is undefined', async () => {
    const f = fakeFetch({ 'GET /bff/user': json([{ type: 'bff:session_expires_in', value: '5' }]) });
    const u = await createClient({ fetch: f, location: fakeLocation() }).user();
    assert.equal(u.expiresIn, undefined);
    assert.equal(u.logoutUrl, undefined);
  });
});

describe('login', () => {
  const cases = [
    { name: 'default returns to the current location', opts: undefined, want: '/bff/login?returnUrl=%2Forders%3Fpage%3D2%23top' },
    { name: 'explicit returnUrl', opts: { returnUrl: '/a b?c=d&e' }, want: '/bff/login?returnUrl=%2Fa+b%3Fc%3Dd%26e' },
    { name: 'prompt', opts: { returnUrl: '/', prompt: 'login' }, want: '/bff/login?returnUrl=%2F&prompt=login' },
  ];
  for (const c of cases) {
    test(c.name, () => {
      const location = fakeLocation();
      const f = fakeFetch({});
      createClient({ fetch: f, location }).login(c.opts);
      assert.deepEqual(location.assigned, [c.want]);
      assert.equal(f.calls.length, 0);
    });
  }

  for (const bad of ['https://evil.example/', '//evil.example', '/\\evil.example', 'relative', '/a\nb', '/a\u0000']) {
    test(`rejects returnUrl ${JSON.stringify(bad)}`, () => {
      const location = fakeLocation();
      assert.throws(() => createClient({ fetch: fakeFetch({}), location }).login({ returnUrl: bad }), TypeError);
      assert.deepEqual(location.assigned, []);
    });
  }
});

describe('logout', () => {
  test('navigates to the session logout URL', async () => {
    const f = fakeFetch({ 'GET /bff/user?slide=false': json(userClaims) });
    const location = fakeLocation();
    await createClient({ fetch: f, location }).logout();
    assert.deepEqual(location.assigned, ['/bff/logout?sid=abc']);
    assert.equal(f.calls[0].headers.get('x-csrf'), '1');
  });

  test('adds returnUrl', async () => {
    const f = fakeFetch({ 'GET /bff/user?slide=false': json(userClaims) });
    const location = fakeLocation();
    await createClient({ fetch: f, location }).logout({ returnUrl: '/bye?x=1' });
    assert.deepEqual(location.assigned, ['/bff/logout?sid=abc&returnUrl=%2Fbye%3Fx%3D1']);
  });

  test('without a session goes to / (or returnUrl)', async () => {
    for (const [opts, want] of [[undefined, '/'], [{ returnUrl: '/bye' }, '/bye']]) {
      const f = fakeFetch({ 'GET /bff/user?slide=false': status(401) });
      const location = fakeLocation();
      await createClient({ fetch: f, location }).logout(opts);
      assert.deepEqual(location.assigned, [want]);
    }
  });

  test('a logout URL that is not local falls back to the logout endpoint', async () => {
    const claims = [{ type: 'bff:logout_url', value: 'https://evil.example/logout' }];
    const f = fakeFetch({ 'GET /bff/user?slide=false': json(claims) });
    const location = fakeLocation();
    await createClient({ fetch: f, location }).logout();
    assert.deepEqual(location.assigned, ['/bff/logout']);
  });

  test('rejects a non-local returnUrl before any request', async () => {
    const f = fakeFetch({});
    const location = fakeLocation();
    await assert.rejects(createClient({ fetch: f, location }).logout({ returnUrl: '//evil.example' }), TypeError);
    assert.equal(f.calls.length, 0);
    assert.deepEqual(location.assigned, []);
  });
});

describe('sessions', () => {
  test('lists sessions', async () => {
    const list = [{ handle: 'h1', current: true }, { handle: 'h2', current: false }];
    const f = fakeFetch({ 'GET /bff/sessions': json(list) });
    assert.deepEqual(await createClient({ fetch: f, location: fakeLocation() }).sessions(), list);
    assert.equal(f.calls[0].headers.get('x-csrf'), '1');
  });

  test('ends one session with an encoded handle', async () => {
    const f = fakeFetch({ 'DELETE /bff/sessions/a%2Fb%3Fc': status(204) });
    await createClient({ fetch: f, location: fakeLocation() }).endSession('a/b?c');
    assert.equal(f.calls.length, 1);
    assert.equal(f.calls[0].headers.get('x-csrf'), '1');
    assert.equal(f.calls[0].init.credentials, 'same-origin');
  });

  test('ends other sessions', async () => {
    const f = fakeFetch({ 'DELETE /bff/sessions': status(204) });
    await createClient({ fetch: f, location: fakeLocation() }).endOtherSessions();
    assert.equal(f.calls[0].method, 'DELETE');
    assert.equal(f.calls[0].headers.get('x-csrf'), '1');
  });

  test('failures throw without navigating', async () => {
    const location = fakeLocation();
    const f = fakeFetch({ 'GET /bff/sessions': status(401), 'DELETE /bff/sessions': status(403) });
    const client = createClient({ fetch: f, location });
    await assert.rejects(client.sessions(), (err) => err instanceof GatehouseError && err.status === 401);
    await assert.rejects(client.endOtherSessions(), (err) => err instanceof GatehouseError && err.status === 403);
    await assert.rejects(client.endSession('missing'), (err) => err instanceof GatehouseError && err.status === 404);
    await assert.rejects(client.endSession(''), TypeError);
    assert.deepEqual(location.assigned, []);
  });
});

describe('createClient', () => {
  test('needs a fetch implementation', () => {
    assert.throws(() => createClient({ fetch: null, location: fakeLocation() }), TypeError);
  });

  test('rejects a prefix that is not a local path', () => {
    assert.throws(() => createClient({ fetch: fakeFetch({}), location: fakeLocation(), prefix: 'https://x/bff' }), TypeError);
  });
});

describe('isLocalUrl', () => {
  const cases = [
    ['/', true], ['/a/b?c#d', true], ['', false], ['a', false], ['//x', false], ['/\\x', false],
    ['https://x/', false], ['/a\tb', false], ['/a\u007f', false], [null, false], [42, false],
  ];
  for (const [url, want] of cases) {
    test(`${JSON.stringify(url)} is ${want ? '' : 'not '}local`, () => {
      assert.equal(isLocalUrl(url), want);
    });
  }
});
