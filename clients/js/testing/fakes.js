// Fakes shared by the helper's tests (test/). It holds no tests, and lives
// outside test/ so that node --test does not run it as a test file.
import { after } from 'node:test';
import assert from 'node:assert/strict';

// guardBrowserStorage makes any touch of browser storage (or of the global
// document) fail the test file: the helper keeps nothing there, and it reads
// document and localStorage only when a test injects its own.
export function guardBrowserStorage() {
  const touches = [];
  for (const name of ['localStorage', 'sessionStorage', 'indexedDB', 'caches', 'document']) {
    Object.defineProperty(globalThis, name, {
      configurable: true,
      get() {
        touches.push(name);
        throw new Error(`${name} must not be used`);
      },
    });
  }
  after(() => {
    assert.deepEqual(touches, [], 'the module touched browser storage or the global document');
  });
}

export function fakeLocation(path = '/orders', search = '?page=2', hash = '#top', origin = 'https://app.test') {
  return {
    pathname: path,
    search,
    hash,
    origin,
    assigned: [],
    assign(url) { this.assigned.push(url); },
  };
}

// fakeFetch answers each call from routes ("METHOD path" -> Response factory)
// and records what was sent. A route may also be an array of factories,
// used in turn (the last one repeats).
export function fakeFetch(routes) {
  const calls = [];
  const used = {};
  const fn = async (input, init = {}) => {
    const url = typeof input === 'string' ? input : input.url;
    const method = init.method ?? (typeof input === 'string' ? 'GET' : input.method);
    calls.push({ input, url, method, init, headers: new Headers(init.headers) });
    const key = `${method} ${url}`;
    let route = routes[key];
    if (Array.isArray(route)) {
      const i = used[key] ?? 0;
      used[key] = i + 1;
      route = route[Math.min(i, route.length - 1)];
    }
    if (!route) return new Response('not found', { status: 404 });
    return route();
  };
  fn.calls = calls;
  return fn;
}

export const json = (body, status = 200) => () => new Response(JSON.stringify(body), {
  status,
  headers: { 'content-type': 'application/json' },
});
export const status = (code) => () => new Response(null, { status: code });
export const failure = (message) => () => { throw new TypeError(message); };

export const userClaims = [
  { type: 'sub', value: 'alice' },
  { type: 'name', value: 'Alice' },
  { type: 'role', value: 'admin' },
  { type: 'role', value: 'ops' },
  { type: 'bff:logout_url', value: '/bff/logout?sid=abc' },
  { type: 'bff:session_expires_in', value: 1200 },
  { type: 'bff:session_state', value: 'st' },
];

export function claimsExpiringIn(seconds) {
  return [
    { type: 'sub', value: 'alice' },
    { type: 'bff:logout_url', value: '/bff/logout?sid=abc' },
    { type: 'bff:session_expires_in', value: seconds },
  ];
}

// fakeWindow records event listeners and delivers plain event objects.
export function fakeWindow() {
  const listeners = new Map();
  return {
    addEventListener(type, fn) {
      if (!listeners.has(type)) listeners.set(type, new Set());
      listeners.get(type).add(fn);
    },
    removeEventListener(type, fn) {
      listeners.get(type)?.delete(fn);
    },
    dispatch(type, event) {
      for (const fn of [...(listeners.get(type) ?? [])]) fn({ type, ...event });
    },
    count(type) {
      return listeners.get(type)?.size ?? 0;
    },
  };
}

// fakeDocument creates iframe stand-ins, each with its own contentWindow.
export function fakeDocument() {
  const children = [];
  return {
    created: [],
    children,
    createElement(tag) {
      const el = {
        tagName: tag.toUpperCase(),
        contentWindow: { name: `frame-window-${this.created.length}` },
        remove() {
          const i = children.indexOf(el);
          if (i >= 0) children.splice(i, 1);
        },
      };
      this.created.push(el);
      return el;
    },
    body: {
      append(el) { children.push(el); },
    },
  };
}

// storageBus simulates one origin's localStorage shared by several windows:
// a write fires a storage event in every other window, as browsers do.
export function storageBus() {
  const items = new Map();
  const windows = [];
  const writes = [];
  return {
    items,
    writes,
    attach(win) {
      windows.push(win);
      return {
        setItem(key, value) {
          const oldValue = items.has(key) ? items.get(key) : null;
          items.set(key, String(value));
          writes.push({ key, value: String(value) });
          for (const w of windows) if (w !== win) w.dispatch('storage', { key, oldValue, newValue: String(value) });
        },
        removeItem(key) {
          const oldValue = items.has(key) ? items.get(key) : null;
          items.delete(key);
          for (const w of windows) if (w !== win) w.dispatch('storage', { key, oldValue, newValue: null });
        },
      };
    },
  };
}

// realSetTimeout stays the real timer while node:test mocks the global one.
const realSetTimeout = globalThis.setTimeout;
const realClearTimeout = globalThis.clearTimeout;

// within fails a wait that does not end in ms (real time), so that a
// missing event fails its test instead of hanging the run. It is a guard,
// not a measurement: the bound is far above any expected delay.
export function within(promise, what, ms = 5_000) {
  let timer;
  const guard = new Promise((_, reject) => {
    timer = realSetTimeout(() => reject(new Error(`gave up waiting for ${what}`)), ms);
  });
  return Promise.race([promise, guard]).finally(() => realClearTimeout(timer));
}

// flush lets pending promise callbacks (fetch answers) run, also while the
// node:test mock timers replace setTimeout.
export function flush() {
  return new Promise((resolve) => setImmediate(resolve));
}

