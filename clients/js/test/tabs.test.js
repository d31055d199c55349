import { test, describe, mock, afterEach } from 'node:test';
import assert from 'node:assert/strict';

import {
  guardBrowserStorage, fakeLocation, fakeFetch, json, status, failure, userClaims, claimsExpiringIn,
  fakeWindow, storageBus, flush, within,
} from '../testing/fakes.js';

// With BroadcastChannel present (Node has it, as browsers do) the helper
// never touches localStorage.
guardBrowserStorage();

const { createClient } = await import('../gatehouse.js');

// tab is one tab of the app: a client with its own fetch and a recorder of
// the session changes it reports.
function tab(routes, options = {}) {
  const f = fakeFetch(routes);
  const location = fakeLocation('/', '', '');
  const client = createClient({ fetch: f, location, ...options });
  const changes = [];
  const waiters = [];
  const off = client.onSessionChange((change) => {
    changes.push(change);
    for (const w of waiters.splice(0)) w();
  });
  return {
    client, fetch: f, location, changes, off,
    // changed resolves once the tab has reported n changes in all.
    async changed(n = 1) {
      while (changes.length < n) {
        await within(new Promise((resolve) => waiters.push(resolve)), `session change ${n}`);
      }
      return changes[n - 1];
    },
  };
}

const open = [];
function openTab(routes, options) {
  const t = tab(routes, options);
  open.push(t);
  return t;
}
afterEach(() => {
  for (const t of open.splice(0)) t.off();
  mock.timers.reset();
});

// settle lets the broadcasts of the tabs' page loads arrive, as they do in
// a browser long before the user clicks anything.
async function settle(...tabs) {
  for (const t of tabs) {
    await t.client.user();
    await flush();
  }
}

const signedInRoutes = () => ({
  'GET /bff/user': json(userClaims),
  'GET /bff/user?slide=false': json(userClaims),
});

describe('tabs', { timeout: 60_000 }, () => {
  test('logout in one tab reaches the other without a request', async () => {
    const one = openTab(signedInRoutes());
    const two = openTab(signedInRoutes());
    await settle(one, two);
    const requests = two.fetch.calls.length;

    await one.client.logout();
    assert.deepEqual(await two.changed(), { signedIn: false, reason: 'logout', remote: true });
    assert.equal(two.fetch.calls.length, requests, 'the other tab made a request');
    // The tab that logged out tells its own listeners too, and navigates
    // after broadcasting.
    assert.deepEqual(one.changes, [{ signedIn: false, reason: 'logout', remote: false }]);
    assert.deepEqual(one.location.assigned, ['/bff/logout?sid=abc']);
  });

  test('sign-in in one tab reaches a signed-out tab', async () => {
    const one = openTab({ 'GET /bff/user': json(userClaims) });
    const two = openTab({ 'GET /bff/user': status(401) });
    assert.equal(await two.client.user(), null);
    assert.deepEqual(two.changes, [], 'the first state a page learns is no change');
    // One comes back from the login: its first user() is a sign-in.
    await one.client.user();
    assert.deepEqual(await two.changed(), { signedIn: true, reason: 'login', remote: true });
    assert.deepEqual(one.changes, []);
  });

  test('a tab already signed in ignores a sign-in elsewhere', async () => {
    const one = openTab(signedInRoutes());
    const two = openTab(signedInRoutes());
    const three = openTab(signedInRoutes());
    await two.client.user();
    await one.client.user(); // a page load of a signed-in tab broadcasts login
    await three.client.logout();
    // Channels keep order: two's first change is the logout.
    assert.deepEqual(await two.changed(), { signedIn: false, reason: 'logout', remote: true });
    assert.equal(two.changes.length, 1);
  });

  test('a 401 from /bff/user after sign-in broadcasts the end', async () => {
    const one = openTab({ 'GET /bff/user': [json(userClaims), status(401)] });
    const two = openTab(signedInRoutes());
    await two.client.user();
    await one.client.user();
    assert.equal(await one.client.user(), null);
    assert.deepEqual(one.changes, [{ signedIn: false, reason: 'ended', remote: false }]);
    assert.deepEqual(await two.changed(), { signedIn: false, reason: 'ended', remote: true });
  });

  test('an anonymous page load tells nobody', async () => {
    const one = openTab({ 'GET /bff/user': status(401) });
    const two = openTab({}); // has not asked for the user: hears anything
    const three = openTab(signedInRoutes());
    await settle(one);
    await three.client.logout();
    // Channels keep order: had one said something, two would hear it first.
    assert.deepEqual(await two.changed(), { signedIn: false, reason: 'logout', remote: true });
    await flush();
    assert.equal(two.changes.length, 1);
    assert.deepEqual(one.changes, [], 'one knew it was signed out');
  });

  test('apps on other paths of the origin do not hear each other', async () => {
    const root = openTab(signedInRoutes());
    const admin = openTab({ 'GET /admin/bff/user': json(userClaims), 'GET /admin/bff/user?slide=false': json(userClaims) }, { base: '/admin' });
    const admin2 = openTab({ 'GET /admin/bff/user?slide=false': json(userClaims) }, { base: '/admin' });
    await root.client.user();
    await admin.client.user();
    await root.client.logout();
    await admin2.client.logout();
    assert.deepEqual(await admin.changed(), { signedIn: false, reason: 'logout', remote: true });
    await flush();
    assert.equal(admin.changes.length, 1, 'the admin app heard the root app');
  });

  test('malformed messages are ignored', async () => {
    const two = openTab(signedInRoutes());
    await two.client.user();
    const raw = new BroadcastChannel('gatehouse:session:/');
    for (const m of [null, 'logout', { event: 'logout' }, { source: 'other', event: 'logout' }, { source: 'gatehouse', event: 'nuke' }]) {
      raw.postMessage(m);
    }
    raw.postMessage({ source: 'gatehouse', event: 'expired' });
    raw.close();
    assert.deepEqual(await two.changed(), { signedIn: false, reason: 'expired', remote: true });
    await flush();
    assert.equal(two.changes.length, 1);
  });

  test('unsubscribe stops the events', async () => {
    const one = openTab(signedInRoutes());
    const two = openTab(signedInRoutes());
    const seen = [];
    const offExtra = two.client.onSessionChange((c) => seen.push(c));
    await two.client.user();
    offExtra();
    offExtra(); // twice is harmless
    await one.client.logout();
    await two.changed();
    assert.deepEqual(seen, []);
    two.off();
    // Nothing listens now, so the channel is closed; a message finds no one.
    const raw = new BroadcastChannel('gatehouse:session:/');
    raw.postMessage({ source: 'gatehouse', event: 'login' });
    raw.close();
    await flush();
    assert.equal(two.changes.length, 1);
  });

  test('the channel is open only while someone listens', async () => {
    const live = new Set();
    class CountingChannel extends BroadcastChannel {
      constructor(name) { super(name); live.add(this); }
      close() { live.delete(this); super.close(); }
    }
    const f = fakeFetch(signedInRoutes());
    const client = createClient({ fetch: f, location: fakeLocation(), BroadcastChannel: CountingChannel });
    await client.user(); // broadcasts on a channel of its own, closed at once
    assert.equal(live.size, 0);
    const offA = client.onSessionChange(() => {});
    const offB = client.onSessionChange(() => {});
    assert.equal(live.size, 1);
    offA();
    assert.equal(live.size, 1);
    await client.logout(); // broadcasts on the open channel
    assert.equal(live.size, 1);
    offB();
    assert.equal(live.size, 0, 'the channel outlived its last subscriber');
  });

  test('a throwing listener does not stop the others', async () => {
    const reported = [];
    const saved = globalThis.reportError;
    globalThis.reportError = (err) => reported.push(err);
    try {
      const one = openTab(signedInRoutes());
      const two = openTab(signedInRoutes());
      const offBad = two.client.onSessionChange(() => { throw new Error('app bug'); });
      await two.client.user();
      await one.client.logout();
      await two.changed();
      offBad();
      assert.equal(reported.length, 1);
      assert.equal(reported[0].message, 'app bug');
    } finally {
      globalThis.reportError = saved;
    }
  });

  test('onSessionChange needs a function', () => {
    assert.throws(() => createClient({ fetch: fakeFetch({}), location: fakeLocation() }).onSessionChange(null), TypeError);
  });
});

describe('tabs without BroadcastChannel', { timeout: 60_000 }, () => {
  function storageTab(bus, routes, options = {}) {
    const win = fakeWindow();
    const storage = bus.attach(win);
    const t = openTab(routes, { BroadcastChannel: null, window: win, storage, ...options });
    t.win = win;
    return t;
  }

  test('storage events carry the logout, and nothing stays stored', async () => {
    const bus = storageBus();
    const one = storageTab(bus, signedInRoutes());
    const two = storageTab(bus, signedInRoutes());
    await two.client.user();
    await one.client.user();
    const requests = two.fetch.calls.length;
    await one.client.logout();
    assert.deepEqual(await two.changed(), { signedIn: false, reason: 'logout', remote: true });
    assert.equal(two.fetch.calls.length, requests);
    assert.equal(bus.items.size, 0, 'the event record stayed in storage');
    for (const w of bus.writes) {
      assert.equal(w.key, 'gatehouse:session:/');
      assert.doesNotMatch(w.value, /alice|Alice|sid|abc/, 'the record holds user data');
    }
  });

  test('sign-in and base', async () => {
    const bus = storageBus();
    const one = storageTab(bus, { 'GET /admin/bff/user': json(userClaims) }, { base: '/admin' });
    const two = storageTab(bus, { 'GET /admin/bff/user': status(401) }, { base: '/admin' });
    const other = storageTab(bus, { 'GET /bff/user': status(401) });
    await two.client.user();
    await other.client.user();
    await one.client.user();
    assert.deepEqual(await two.changed(), { signedIn: true, reason: 'login', remote: true });
    assert.ok(bus.writes.every((w) => w.key === 'gatehouse:session:/admin'));
    assert.deepEqual(other.changes, []);
  });

  test('the storage listener goes with the last subscriber', async () => {
    const bus = storageBus();
    const one = storageTab(bus, signedInRoutes());
    assert.equal(one.win.count('storage'), 1);
    one.off();
    assert.equal(one.win.count('storage'), 0);
  });

  test('a full or blocked storage does not break logout', async () => {
    const win = fakeWindow();
    const storage = { setItem() { throw new Error('QuotaExceededError'); }, removeItem() {} };
    const one = openTab(signedInRoutes(), { BroadcastChannel: null, window: win, storage });
    await one.client.user();
    await one.client.logout();
    assert.deepEqual(one.location.assigned, ['/bff/logout?sid=abc']);
  });
});

describe('expiry check', { timeout: 60_000 }, () => {
  test('checks shortly before expiry, then reports expiry to every tab', async () => {
    mock.timers.enable({ apis: ['setTimeout', 'Date'], now: 1_000_000 });
    const one = openTab({
      'GET /bff/user': json(claimsExpiringIn(60)),
      'GET /bff/user?slide=false': [json(claimsExpiringIn(10)), status(401)],
    });
    const two = openTab(signedInRoutes());
    await two.client.user();
    await one.client.user();
    const checks = () => one.fetch.calls.filter((c) => c.url === '/bff/user?slide=false').length;

    mock.timers.tick(49_999);
    await flush();
    assert.equal(checks(), 0, 'checked too early');
    mock.timers.tick(1);
    await flush();
    assert.equal(checks(), 1, 'no check 10 s before expiry');
    assert.deepEqual(one.changes, []);

    // 10 s were left: the next check comes just after they run out.
    mock.timers.tick(10_999);
    await flush();
    assert.equal(checks(), 1);
    mock.timers.tick(1);
    await flush();
    assert.equal(checks(), 2);
    assert.deepEqual(one.changes, [{ signedIn: false, reason: 'expired', remote: false }]);
    assert.deepEqual(await two.changed(), { signedIn: false, reason: 'expired', remote: true });

    // Signed out: no more checks.
    mock.timers.tick(3_600_000);
    await flush();
    assert.equal(checks(), 2);
  });

  test('a session extended meanwhile is checked again later', async () => {
    mock.timers.enable({ apis: ['setTimeout', 'Date'], now: 0 });
    const one = openTab({
      'GET /bff/user': json(claimsExpiringIn(30)),
      'GET /bff/user?slide=false': json(claimsExpiringIn(600)),
    });
    await one.client.user();
    mock.timers.tick(20_000);
    await flush();
    mock.timers.tick(589_999);
    await flush();
    assert.equal(one.fetch.calls.length, 2);
    mock.timers.tick(1);
    await flush();
    assert.equal(one.fetch.calls.length, 3);
    assert.deepEqual(one.changes, []);
  });

  test('a failed check is retried, not reported', async () => {
    mock.timers.enable({ apis: ['setTimeout', 'Date'], now: 0 });
    const one = openTab({
      'GET /bff/user': json(claimsExpiringIn(5)),
      'GET /bff/user?slide=false': [failure('network down'), status(500), status(401)],
    });
    await one.client.user();
    mock.timers.tick(6_000);
    await flush();
    assert.equal(one.fetch.calls.length, 2);
    mock.timers.tick(30_000);
    await flush();
    assert.equal(one.fetch.calls.length, 3);
    assert.deepEqual(one.changes, []);
    mock.timers.tick(30_000);
    await flush();
    assert.deepEqual(one.changes, [{ signedIn: false, reason: 'expired', remote: false }]);
  });

  test('no check without a subscriber, and unsubscribing stops it', async () => {
    mock.timers.enable({ apis: ['setTimeout', 'Date'], now: 0 });
    const f = fakeFetch({ 'GET /bff/user': json(claimsExpiringIn(60)) });
    const client = createClient({ fetch: f, location: fakeLocation() });
    await client.user();
    mock.timers.tick(120_000);
    await flush();
    assert.equal(f.calls.length, 1, 'a client nobody listens to checked');

    // Subscribing later schedules from the expiry already known.
    const off = client.onSessionChange(() => {});
    mock.timers.tick(1_000);
    await flush();
    assert.equal(f.calls.length, 2, 'the session had expired: the check is due at once');
    off();
    await client.user();
    mock.timers.tick(120_000);
    await flush();
    assert.equal(f.calls.length, 3);
  });

  test('a session without bff:session_expires_in is not checked', async () => {
    mock.timers.enable({ apis: ['setTimeout', 'Date'], now: 0 });
    const one = openTab({ 'GET /bff/user': json([{ type: 'sub', value: 'alice' }]) });
    await one.client.user();
    mock.timers.tick(3_600_000 * 24 * 30);
    await flush();
    assert.equal(one.fetch.calls.length, 1);
  });
});
