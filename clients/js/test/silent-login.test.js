import { test, describe, mock, afterEach } from 'node:test';
import assert from 'node:assert/strict';

import {
  guardBrowserStorage, fakeLocation, fakeFetch, status, fakeWindow, fakeDocument, flush,
} from '../testing/fakes.js';

guardBrowserStorage();

const { createClient } = await import('../gatehouse.js');

const ORIGIN = 'https://app.test';

afterEach(() => mock.timers.reset());

function setup(options = {}) {
  const win = fakeWindow();
  const doc = fakeDocument();
  const location = fakeLocation('/', '', '', ORIGIN);
  const f = fakeFetch(options.routes ?? {});
  const client = createClient({ fetch: f, location, window: win, document: doc, ...options.client });
  return { win, doc, location, client, fetch: f };
}

// answer posts what the silent-login callback page posts to its parent.
function answer(env, data, { origin = ORIGIN, source } = {}) {
  const frame = env.doc.created.at(-1);
  env.win.dispatch('message', { data, origin, source: source === undefined ? frame.contentWindow : source });
}

// state reports a promise's state without waiting for it.
async function state(promise) {
  let s = 'pending';
  promise.then((v) => { s = `resolved ${v}`; }, (e) => { s = `rejected ${e.name}`; });
  await flush();
  return s;
}

describe('silentLogin', { timeout: 60_000 }, () => {
  test('loads the silent-login endpoint in a hidden frame and resolves its answer', async () => {
    for (const isLoggedIn of [true, false]) {
      const env = setup();
      const p = env.client.silentLogin();
      assert.equal(env.doc.children.length, 1);
      const frame = env.doc.children[0];
      assert.equal(frame.tagName, 'IFRAME');
      assert.equal(frame.id, 'bff-silent-login');
      assert.equal(frame.src, '/bff/silent-login');
      assert.equal(frame.hidden, true);
      assert.equal(env.win.count('message'), 1);
      answer(env, { source: 'bff-silent-login', isLoggedIn });
      assert.equal(await p, isLoggedIn);
      assert.equal(env.doc.children.length, 0, 'the frame stayed');
      assert.equal(env.win.count('message'), 0, 'the listener stayed');
      assert.equal(env.fetch.calls.length, 0);
    }
  });

  test('uses base and prefix', async () => {
    const env = setup({ client: { base: '/admin', prefix: '/auth' } });
    const p = env.client.silentLogin();
    assert.equal(env.doc.children[0].src, '/admin/auth/silent-login');
    answer(env, { source: 'bff-silent-login', isLoggedIn: false });
    assert.equal(await p, false);
  });

  test('ignores messages from other origins, other windows and other senders', async () => {
    mock.timers.enable({ apis: ['setTimeout'] });
    const env = setup();
    const p = env.client.silentLogin();
    const good = { source: 'bff-silent-login', isLoggedIn: true };
    answer(env, good, { origin: 'https://evil.example' });
    answer(env, good, { origin: 'null' });
    answer(env, good, { origin: 'https://app.test:8443' });
    answer(env, good, { source: { name: 'another window of the origin' } });
    answer(env, good, { source: null });
    answer(env, { source: 'other-widget', isLoggedIn: true });
    answer(env, { source: 'bff-silent-login', isLoggedIn: 'true' });
    answer(env, { source: 'bff-silent-login' });
    answer(env, 'bff-silent-login');
    answer(env, null);
    assert.equal(await state(p), 'pending');
    // None of them counted: the timeout answers false.
    mock.timers.tick(5_000);
    assert.equal(await p, false);
    assert.equal(env.doc.children.length, 0);
    assert.equal(env.win.count('message'), 0);
  });

  test('resolves false after the timeout, 5 s by default', async () => {
    mock.timers.enable({ apis: ['setTimeout'] });
    const env = setup();
    const p = env.client.silentLogin();
    mock.timers.tick(4_999);
    assert.equal(await state(p), 'pending');
    mock.timers.tick(1);
    assert.equal(await state(p), 'resolved false');
    assert.equal(env.doc.children.length, 0);
    assert.equal(env.win.count('message'), 0);
    // A late answer changes nothing.
    answer(env, { source: 'bff-silent-login', isLoggedIn: true });
  });

  test('takes a timeout', async () => {
    mock.timers.enable({ apis: ['setTimeout'] });
    const env = setup();
    const p = env.client.silentLogin({ timeout: 800 });
    mock.timers.tick(799);
    assert.equal(await state(p), 'pending');
    mock.timers.tick(1);
    assert.equal(await p, false);
  });

  test('concurrent calls share one frame; a later call makes a new one', async () => {
    const env = setup();
    const a = env.client.silentLogin();
    const b = env.client.silentLogin();
    assert.equal(a, b);
    assert.equal(env.doc.created.length, 1);
    answer(env, { source: 'bff-silent-login', isLoggedIn: false });
    assert.equal(await a, false);
    const c = env.client.silentLogin();
    assert.notEqual(c, a);
    assert.equal(env.doc.created.length, 2);
    answer(env, { source: 'bff-silent-login', isLoggedIn: true });
    assert.equal(await c, true);
  });

  test('a silent sign-in is a session change for this tab and the others', async () => {
    const env = setup({ routes: { 'GET /bff/user': status(401) } });
    const other = createClient({ fetch: fakeFetch({ 'GET /bff/user': status(401) }), location: fakeLocation() });
    assert.equal(await other.user(), null);
    const heard = [];
    const offOther = other.onSessionChange((c) => heard.push(c));
    const mine = [];
    const off = env.client.onSessionChange((c) => mine.push(c));
    assert.equal(await env.client.user(), null);
    const p = env.client.silentLogin();
    answer(env, { source: 'bff-silent-login', isLoggedIn: true });
    assert.equal(await p, true);
    await flush();
    off();
    offOther();
    assert.deepEqual(mine, [{ signedIn: true, reason: 'login', remote: false }]);
    assert.deepEqual(heard, [{ signedIn: true, reason: 'login', remote: true }]);
  });

  test('refuses without a document, origin or timeout it can use', async () => {
    const bad = [
      [{ document: {} }, undefined],
      [{ document: { createElement() {} } }, undefined],
      [{ location: { ...fakeLocation(), origin: undefined } }, undefined],
      [{ window: {} }, undefined],
      [{}, { timeout: -1 }],
      [{}, { timeout: Number.NaN }],
      [{}, { timeout: Infinity }],
      [{}, { timeout: '5000' }],
    ];
    for (const [client, opts] of bad) {
      const env = setup({ client });
      await assert.rejects(env.client.silentLogin(opts), TypeError);
      assert.equal(env.doc.created.length, 0);
    }
  });
});

describe('top-level prompt=none', { timeout: 60_000 }, () => {
  test('login({ prompt: "none" }) navigates to the login endpoint', () => {
    const env = setup({ client: { base: '/admin' } });
    env.location.pathname = '/admin/page';
    env.client.login({ prompt: 'none' });
    assert.deepEqual(env.location.assigned, ['/admin/bff/login?returnUrl=%2Fadmin%2Fpage&prompt=none']);
  });
});
