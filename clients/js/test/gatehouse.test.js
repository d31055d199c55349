import { test, describe, beforeEach } from 'node:test';
import assert from 'node:assert/strict';

import {
  guardBrowserStorage, fakeLocation, fakeFetch, json, status, userClaims,
} from '../testing/fakes.js';

// Any touch of browser storage fails the test: the helper keeps nothing
// there (tokens never reach the browser, and neither does anything else).
guardBrowserStorage();

const { createClient, isLocalUrl, GatehouseError, readStepUp } = await import('../gatehouse.js');

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

describe('base (path-based apps)', () => {
  test('every endpoint is under base + prefix', async () => {
    const f = fakeFetch({
      'GET /admin/bff/user': json(userClaims),
      'GET /admin/bff/user?slide=false': status(401),
      'GET /admin/bff/sessions': json([]),
      'DELETE /admin/bff/sessions': status(204),
      'DELETE /admin/bff/sessions/h1': status(204),
    });
    const location = fakeLocation('/admin/orders', '', '');
    const client = createClient({ fetch: f, location, base: '/admin' });
    assert.equal((await client.user()).sub, 'alice');
    assert.deepEqual(await client.sessions(), []);
    await client.endSession('h1');
    await client.endOtherSessions();
    client.login();
    await client.logout();
    assert.deepEqual(f.calls.map((c) => `${c.method} ${c.url}`), [
      'GET /admin/bff/user',
      'GET /admin/bff/sessions',
      'DELETE /admin/bff/sessions/h1',
      'DELETE /admin/bff/sessions',
      'GET /admin/bff/user?slide=false',
    ]);
    // Signed out, logout lands on the app's own root, not the origin's.
    assert.deepEqual(location.assigned, ['/admin/bff/login?returnUrl=%2Fadmin%2Forders', '/admin/']);
  });

  test('a 401 from an API call logs in at the app', async () => {
    const f = fakeFetch({ 'GET /admin/api/orders': status(401) });
    const location = fakeLocation('/admin/', '', '');
    await createClient({ fetch: f, location, base: '/admin/' }).fetch('/admin/api/orders');
    assert.deepEqual(location.assigned, ['/admin/bff/login?returnUrl=%2Fadmin%2F']);
  });

  test('API paths are sent as given', async () => {
    const f = fakeFetch({ 'GET /admin/api/a': status(200), 'GET /api/b': status(200), 'GET http://app.test/c': status(200) });
    const client = createClient({ fetch: f, location: fakeLocation(), base: '/admin' });
    await client.fetch('/admin/api/a');
    await client.fetch('/api/b');
    await client.fetch('http://app.test/c');
    assert.deepEqual(f.calls.map((c) => c.url), ['/admin/api/a', '/api/b', 'http://app.test/c']);
  });

  test('the logout URL fallback is under base', async () => {
    const f = fakeFetch({ 'GET /shop/auth/user?slide=false': json([{ type: 'sub', value: 'alice' }]) });
    const location = fakeLocation();
    await createClient({ fetch: f, location, base: '/shop', prefix: '/auth' }).logout();
    assert.deepEqual(location.assigned, ['/shop/auth/logout']);
  });

  test('"/" and "" are the origin root', async () => {
    for (const base of ['', '/']) {
      const f = fakeFetch({ 'GET /bff/user': json(userClaims) });
      assert.equal((await createClient({ fetch: f, location: fakeLocation(), base }).user()).sub, 'alice');
    }
  });

  for (const bad of ['admin', '//evil.example', '/\\x', 'https://evil.example/admin', '/a?b', '/a#b', '/a\nb', 42, null]) {
    test(`rejects base ${JSON.stringify(bad)}`, () => {
      assert.throws(() => createClient({ fetch: fakeFetch({}), location: fakeLocation(), base: bad }), TypeError);
    });
  }
});

describe('step-up', () => {
  const stepUp = (body) => json({ error: 'step_up_required', ...body }, 401);

  test('a step_up_required answer navigates to the step-up login', async () => {
    const f = fakeFetch({ 'POST /api/pay': stepUp({ acr_values: 'urn:example:mfa', max_age: 900 }) });
    const location = fakeLocation('/checkout', '?cart=7', '');
    const res = await createClient({ fetch: f, location }).fetch('/api/pay', { method: 'POST' });
    assert.equal(res.status, 401);
    assert.deepEqual(location.assigned, ['/bff/login?returnUrl=%2Fcheckout%3Fcart%3D7&acr_values=urn%3Aexample%3Amfa&max_age=900']);
    const u = new URL(location.assigned[0], 'https://app.test');
    assert.equal(u.searchParams.get('acr_values'), 'urn:example:mfa');
    assert.equal(u.searchParams.get('max_age'), '900');
    assert.equal(u.searchParams.get('returnUrl'), '/checkout?cart=7');
    // The caller can still read the answer.
    assert.equal((await res.json()).error, 'step_up_required');
  });

  test('under base', async () => {
    const f = fakeFetch({ 'GET /admin/api/x': stepUp({ acr_values: 'mfa' }) });
    const location = fakeLocation('/admin/x', '', '');
    await createClient({ fetch: f, location, base: '/admin' }).fetch('/admin/api/x');
    assert.deepEqual(location.assigned, ['/admin/bff/login?returnUrl=%2Fadmin%2Fx&acr_values=mfa']);
  });

  test('max_age 0 and a missing acr_values', async () => {
    const f = fakeFetch({ 'GET /api/x': stepUp({ max_age: 0 }) });
    const location = fakeLocation('/', '', '');
    await createClient({ fetch: f, location }).fetch('/api/x');
    assert.deepEqual(location.assigned, ['/bff/login?returnUrl=%2F&max_age=0']);
  });

  test('navigates even when loginOn401 is off', async () => {
    const f = fakeFetch({ 'GET /api/x': stepUp({ acr_values: 'mfa' }) });
    const location = fakeLocation('/', '', '');
    await createClient({ fetch: f, location, loginOn401: false }).fetch('/api/x');
    assert.deepEqual(location.assigned, ['/bff/login?returnUrl=%2F&acr_values=mfa']);
  });

  test('several step-ups navigate once', async () => {
    const f = fakeFetch({ 'GET /api/a': stepUp({ acr_values: 'mfa' }), 'GET /api/b': stepUp({ acr_values: 'mfa' }) });
    const location = fakeLocation('/', '', '');
    const client = createClient({ fetch: f, location });
    await Promise.all([client.fetch('/api/a'), client.fetch('/api/b')]);
    assert.equal(location.assigned.length, 1);
  });

  test('onStepUpRequired handles it instead of navigating', async () => {
    const f = fakeFetch({ 'GET /api/x': stepUp({ acr_values: 'urn:example:mfa', max_age: 60 }) });
    const location = fakeLocation('/here', '', '');
    const seen = [];
    const client = createClient({ fetch: f, location, onStepUpRequired: (req) => seen.push(req) });
    const res = await client.fetch('/api/x');
    assert.deepEqual(location.assigned, []);
    assert.equal(seen.length, 1);
    assert.equal(seen[0].acrValues, 'urn:example:mfa');
    assert.equal(seen[0].maxAge, 60);
    assert.equal(seen[0].response, res);
    assert.equal(seen[0].url, '/bff/login?returnUrl=%2Fhere&acr_values=urn%3Aexample%3Amfa&max_age=60');
    seen[0].login();
    assert.deepEqual(location.assigned, [seen[0].url]);
  });

  test('onStepUpRequired must be a function', () => {
    assert.throws(() => createClient({ fetch: fakeFetch({}), location: fakeLocation(), onStepUpRequired: 'yes' }), TypeError);
  });

  test('other 401 answers are a plain login', async () => {
    const cases = [
      json({ error: 'unauthorized' }, 401),
      () => new Response('{"error":"step_up_required"}', { status: 401, headers: { 'content-type': 'text/plain' } }),
      () => new Response('not json', { status: 401, headers: { 'content-type': 'application/json' } }),
      json(['step_up_required'], 401),
    ];
    for (const route of cases) {
      const location = fakeLocation('/', '', '');
      await createClient({ fetch: fakeFetch({ 'GET /api/x': route }), location }).fetch('/api/x');
      assert.deepEqual(location.assigned, ['/bff/login?returnUrl=%2F']);
    }
  });

  test('a 403 with a step-up body is not a step-up', async () => {
    const location = fakeLocation('/', '', '');
    await createClient({ fetch: fakeFetch({ 'GET /api/x': json({ error: 'step_up_required' }, 403) }), location }).fetch('/api/x');
    assert.deepEqual(location.assigned, []);
  });

  test('readStepUp', async () => {
    const cases = [
      [json({ error: 'step_up_required', acr_values: 'a b', max_age: 30 }, 401), { acrValues: 'a b', maxAge: 30 }],
      [json({ error: 'step_up_required', max_age: '30' }, 401), { acrValues: undefined, maxAge: 30 }],
      [json({ error: 'step_up_required', acr_values: 7, max_age: -1 }, 401), { acrValues: undefined, maxAge: undefined }],
      [json({ error: 'step_up_required', max_age: 1.5 }, 401), { acrValues: undefined, maxAge: undefined }],
      [() => new Response('{"error":"step_up_required"}', { status: 401, headers: { 'content-type': 'application/problem+json' } }), { acrValues: undefined, maxAge: undefined }],
      [json({ error: 'step_up_required' }, 200), null],
      [json({ error: 'invalid_token' }, 401), null],
      [json(null, 401), null],
      [status(401), null],
    ];
    for (const [route, want] of cases) {
      assert.deepEqual(await readStepUp(route()), want);
    }
    assert.equal(await readStepUp(undefined), null);
  });

  test('login takes acr_values and max_age', () => {
    const location = fakeLocation('/', '', '');
    createClient({ fetch: fakeFetch({}), location }).login({ returnUrl: '/pay', acrValues: 'mfa', maxAge: 0 });
    assert.deepEqual(location.assigned, ['/bff/login?returnUrl=%2Fpay&acr_values=mfa&max_age=0']);
  });
});
