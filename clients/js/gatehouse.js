// Browser helper for single-page apps behind the Gatehouse BFF.
//
// The SPA never sees a token: Gatehouse keeps them server-side and the
// browser holds only an HttpOnly session cookie. This module adds the
// anti-forgery header to API calls, reads the session from /bff/user,
// navigates to the login and logout endpoints (a step-up login included),
// tells the app's other tabs when the user signs in or out, and runs
// Duende BFF's silent-login iframe protocol. It keeps no state in any
// browser storage; only where BroadcastChannel is missing does it write and
// at once remove a short event record in localStorage to reach other tabs.

const CLAIM_LOGOUT_URL = 'bff:logout_url';
const CLAIM_EXPIRES_IN = 'bff:session_expires_in';
const CLAIM_SESSION_STATE = 'bff:session_state';

const CONTROL_CHARS = /[\u0000-\u001f\u007f]/;

// Duende BFF's silent-login protocol: the frame's id and the source field of
// the message its callback page posts to the parent window.
const SILENT_LOGIN_FRAME_ID = 'bff-silent-login';
const SILENT_LOGIN_SOURCE = 'bff-silent-login';
const SILENT_LOGIN_TIMEOUT_MS = 5000;

// The source field of the messages tabs exchange, and their events.
const TAB_MESSAGE_SOURCE = 'gatehouse';
const REMOTE_EVENTS = new Set(['login', 'logout', 'ended', 'expired']);

// The session check runs EXPIRY_LEAD_MS before bff:session_expires_in runs
// out (another tab may have extended a sliding session meanwhile), and,
// when less than twice that is left, EXPIRY_GRACE_MS after it ran out.
const EXPIRY_LEAD_MS = 10_000;
const EXPIRY_GRACE_MS = 1_000;
const EXPIRY_RETRY_MS = 30_000;
// setTimeout fires at once for delays above 2^31-1 ms; longer waits check
// early and reschedule.
const MAX_TIMER_MS = 2 ** 31 - 1;

/**
 * Error thrown when a Gatehouse endpoint answers with an unexpected status.
 */
export class GatehouseError extends Error {
  constructor(message, response) {
    super(message);
    this.name = 'GatehouseError';
    this.status = response ? response.status : 0;
    this.response = response;
  }
}

/**
 * Reports whether url is a local path that Gatehouse accepts as returnUrl:
 * one leading "/", not "//" or "/\", no control characters (RFC 9700 §4.11).
 */
export function isLocalUrl(url) {
  return typeof url === 'string'
    && url.startsWith('/')
    && !url.startsWith('//')
    && !url.startsWith('/\\')
    && !CONTROL_CHARS.test(url);
}

/**
 * Reads a step-up challenge from a response: a 401 whose JSON body is
 * {"error":"step_up_required","acr_values":"...","max_age":N}. Resolves to
 * { acrValues, maxAge } (either may be undefined) or null for any other
 * response. The response's body stays unread.
 */
export async function readStepUp(response) {
  if (!response || response.status !== 401 || !response.headers) return null;
  const type = response.headers.get('content-type') || '';
  if (!type.toLowerCase().includes('json')) return null;
  let body;
  try {
    body = await response.clone().json();
  } catch {
    return null;
  }
  if (body === null || typeof body !== 'object' || body.error !== 'step_up_required') return null;
  const acrValues = typeof body.acr_values === 'string' && body.acr_values !== '' ? body.acr_values : undefined;
  let maxAge;
  if (Number.isSafeInteger(body.max_age) && body.max_age >= 0) {
    maxAge = body.max_age;
  } else if (typeof body.max_age === 'string' && /^[0-9]{1,15}$/.test(body.max_age)) {
    maxAge = Number(body.max_age);
  }
  return { acrValues, maxAge };
}

function requireLocalUrl(url) {
  if (!isLocalUrl(url)) {
    throw new TypeError(`gatehouse: returnUrl must be a local path, got ${JSON.stringify(url)}`);
  }
  return url;
}

// localPath normalises a mount path ("/admin/", "/bff"): "" or a local path
// without a trailing slash, query or fragment.
function localPath(name, value) {
  if (typeof value !== 'string') {
    throw new TypeError(`gatehouse: ${name} must be a string, got ${JSON.stringify(value)}`);
  }
  const path = value.replace(/\/+$/, '');
  if (path !== '' && (!isLocalUrl(path) || /[?#]/.test(path))) {
    throw new TypeError(`gatehouse: ${name} must be a local path, got ${JSON.stringify(value)}`);
  }
  return path;
}

function currentPath(location) {
  const path = `${location.pathname || '/'}${location.search || ''}${location.hash || ''}`;
  return isLocalUrl(path) ? path : '/';
}

function withQuery(url, params) {
  const query = new URLSearchParams();
  for (const [key, value] of Object.entries(params)) {
    if (value !== undefined && value !== null && value !== '') query.set(key, String(value));
  }
  const qs = query.toString();
  if (qs === '') return url;
  return `${url}${url.includes('?') ? '&' : '?'}${qs}`;
}

function makeUser(claims) {
  const get = (type) => {
    const claim = claims.find((c) => c && c.type === type);
    return claim ? claim.value : undefined;
  };
  const expiresIn = get(CLAIM_EXPIRES_IN);
  return {
    claims,
    get,
    getAll: (type) => claims.filter((c) => c && c.type === type).map((c) => c.value),
    logoutUrl: get(CLAIM_LOGOUT_URL),
    expiresIn: typeof expiresIn === 'number' ? expiresIn : undefined,
    sessionState: get(CLAIM_SESSION_STATE),
    sub: get('sub'),
    name: get('name'),
  };
}

// report hands an exception thrown by an app callback to the host's error
// reporting without stopping the other callbacks.
function report(err) {
  if (typeof globalThis.reportError === 'function') {
    globalThis.reportError(err);
  } else {
    queueMicrotask(() => { throw err; });
  }
}

/**
 * Creates a client for the Gatehouse BFF of the app mounted at base, with
 * the endpoints at base + prefix.
 */
export function createClient({
  base = '',
  prefix = '/bff',
  csrfHeader = 'X-CSRF',
  csrfValue = '1',
  fetch: fetchImpl = globalThis.fetch,
  location = globalThis.location,
  loginOn401 = true,
  onStepUpRequired,
  window: win = globalThis,
  document: documentImpl,
  storage: storageImpl,
  BroadcastChannel: Channel = globalThis.BroadcastChannel,
} = {}) {
  if (typeof fetchImpl !== 'function') {
    throw new TypeError('gatehouse: no fetch implementation');
  }
  if (onStepUpRequired !== undefined && typeof onStepUpRequired !== 'function') {
    throw new TypeError('gatehouse: onStepUpRequired must be a function');
  }
  const appBase = localPath('base', base);
  const root = appBase + localPath('prefix', prefix);
  // BroadcastChannel is already limited to the origin; the name tells the
  // path-based apps of one origin apart.
  const channelName = `gatehouse:session:${appBase || '/'}`;

  let navigating = false;
  // signedIn is the session state last seen: undefined until known.
  let signedIn;
  let expiresAt; // ms since the epoch, from bff:session_expires_in
  let expiryTimer = null;
  const listeners = new Set();
  let channel = null; // open while someone listens
  let storageListener = null;
  let silentPending = null;

  function navigate(url) {
    navigating = true;
    location.assign(url);
  }

  function loginUrl({ returnUrl, prompt, acrValues, maxAge } = {}) {
    const target = returnUrl === undefined ? currentPath(location) : requireLocalUrl(returnUrl);
    return withQuery(`${root}/login`, { returnUrl: target, prompt, acr_values: acrValues, max_age: maxAge });
  }

  // request sends the anti-forgery header and same-origin cookies.
  function request(input, init = {}) {
    const isRequest = typeof Request !== 'undefined' && input instanceof Request;
    const headers = new Headers(init.headers ?? (isRequest ? input.headers : undefined));
    headers.set(csrfHeader, csrfValue);
    return fetchImpl(input, {
      ...init,
      headers,
      credentials: init.credentials ?? 'same-origin',
    });
  }

  async function api(method, path, okStatuses) {
    const response = await request(`${root}${path}`, { method });
    if (!okStatuses.includes(response.status)) {
      throw new GatehouseError(`gatehouse: ${method} ${root}${path} answered ${response.status}`, response);
    }
    return response;
  }

  async function fetchUser(slide) {
    const path = slide ? `${root}/user` : `${root}/user?slide=false`;
    const response = await request(path, { method: 'GET' });
    if (response.status === 401) return null;
    if (!response.ok) {
      throw new GatehouseError(`gatehouse: GET ${path} answered ${response.status}`, response);
    }
    const claims = await response.json();
    if (!Array.isArray(claims)) {
      throw new GatehouseError(`gatehouse: GET ${path} did not return a claim array`, response);
    }
    return makeUser(claims);
  }

  // --- Tabs: session change events ---------------------------------------

  function emit(event) {
    for (const entry of [...listeners]) {
      try {
        entry.callback({ ...event });
      } catch (err) {
        report(err);
      }
    }
  }

  function broadcast(event) {
    const message = { source: TAB_MESSAGE_SOURCE, event, at: Date.now() };
    try {
      if (typeof Channel === 'function') {
        if (channel) {
          channel.postMessage(message);
        } else {
          const once = new Channel(channelName);
          once.postMessage(message);
          once.close();
        }
        return;
      }
      // Fallback: other tabs of the origin get a storage event for the
      // write; the record is removed at once and holds no user data.
      const storage = storageImpl ?? globalThis.localStorage;
      if (!storage) return;
      storage.setItem(channelName, JSON.stringify({ ...message, nonce: Math.random() }));
      storage.removeItem(channelName);
    } catch {
      // Telling other tabs is best effort (storage can be full or blocked).
    }
  }

  function receive(message) {
    if (message === null || typeof message !== 'object' || message.source !== TAB_MESSAGE_SOURCE
      || !REMOTE_EVENTS.has(message.event)) {
      return;
    }
    if (message.event === 'login') {
      if (signedIn === true) return;
      signedIn = true;
      emit({ signedIn: true, reason: 'login', remote: true });
      return;
    }
    if (signedIn === false) return;
    signOutLocally();
    emit({ signedIn: false, reason: message.event, remote: true });
  }

  function listen() {
    if (typeof Channel === 'function') {
      channel = new Channel(channelName);
      channel.onmessage = (ev) => receive(ev.data);
      return;
    }
    if (win && typeof win.addEventListener === 'function') {
      storageListener = (ev) => {
        if (ev.key !== channelName || typeof ev.newValue !== 'string') return;
        let message;
        try {
          message = JSON.parse(ev.newValue);
        } catch {
          return;
        }
        receive(message);
      };
      win.addEventListener('storage', storageListener);
    }
  }

  function unlisten() {
    if (channel) {
      channel.close();
      channel = null;
    }
    if (storageListener) {
      win.removeEventListener('storage', storageListener);
      storageListener = null;
    }
  }

  function signOutLocally() {
    signedIn = false;
    expiresAt = undefined;
    clearExpiryTimer();
  }

  // observe records a session state seen by this tab. A sign-in is told to
  // the other tabs whenever this tab did not know it; a sign-out only when
  // this tab had seen the user signed in. Listeners hear of a change, not of
  // the first state a page learns.
  function observe(next, reason) {
    const prev = signedIn;
    if (next) {
      signedIn = true;
    } else {
      signOutLocally();
    }
    if (prev === next) return;
    if (next || prev === true) broadcast(reason);
    if (prev !== undefined) emit({ signedIn: next, reason, remote: false });
  }

  function observeUser(user, endReason) {
    if (user === null) {
      observe(false, endReason);
      return;
    }
    observe(true, 'login');
    expiresAt = user.expiresIn === undefined ? undefined : Date.now() + user.expiresIn * 1000;
    scheduleExpiryCheck();
  }

  function clearExpiryTimer() {
    if (expiryTimer !== null) {
      clearTimeout(expiryTimer);
      expiryTimer = null;
    }
  }

  function scheduleExpiryCheck(delay) {
    clearExpiryTimer();
    if (listeners.size === 0 || signedIn !== true) return;
    if (delay === undefined) {
      if (expiresAt === undefined) return;
      const left = expiresAt - Date.now();
      delay = left > 2 * EXPIRY_LEAD_MS ? left - EXPIRY_LEAD_MS : Math.max(left, 0) + EXPIRY_GRACE_MS;
    }
    expiryTimer = setTimeout(checkExpiry, Math.min(delay, MAX_TIMER_MS));
  }

  async function checkExpiry() {
    expiryTimer = null;
    let user;
    try {
      // slide=false: the check itself must not keep an idle session alive.
      user = await fetchUser(false);
    } catch {
      scheduleExpiryCheck(EXPIRY_RETRY_MS);
      return;
    }
    observeUser(user, 'expired');
  }

  // --- Step-up -------------------------------------------------------------

  function stepUp(challenge, response) {
    const url = loginUrl({ acrValues: challenge.acrValues, maxAge: challenge.maxAge });
    if (onStepUpRequired) {
      onStepUpRequired({ ...challenge, url, response, login: () => navigate(url) });
      return;
    }
    if (!navigating) navigate(url);
  }

  // --- Silent login --------------------------------------------------------

  function silentLogin({ timeout = SILENT_LOGIN_TIMEOUT_MS } = {}) {
    if (typeof timeout !== 'number' || !(timeout >= 0) || !Number.isFinite(timeout)) {
      return Promise.reject(new TypeError('gatehouse: silentLogin timeout must be a non-negative number of milliseconds'));
    }
    if (silentPending) return silentPending;
    const doc = documentImpl ?? globalThis.document;
    const origin = location && location.origin;
    if (!doc || typeof doc.createElement !== 'function' || !doc.body) {
      return Promise.reject(new TypeError('gatehouse: silentLogin needs a document with a body'));
    }
    if (typeof origin !== 'string' || !win || typeof win.addEventListener !== 'function') {
      return Promise.reject(new TypeError('gatehouse: silentLogin needs window message events and location.origin'));
    }
    silentPending = new Promise((resolve) => {
      const frame = doc.createElement('iframe');
      let timer = null;
      const finish = (isLoggedIn) => {
        clearTimeout(timer);
        win.removeEventListener('message', onMessage);
        frame.remove();
        silentPending = null;
        if (isLoggedIn) observe(true, 'login');
        resolve(isLoggedIn);
      };
      // Only the frame's own page, on the app's origin, can answer: a page
      // of another origin, or another window of this one, is ignored.
      const onMessage = (event) => {
        const data = event.data;
        if (event.origin !== origin || event.source !== frame.contentWindow
          || data === null || typeof data !== 'object' || data.source !== SILENT_LOGIN_SOURCE
          || typeof data.isLoggedIn !== 'boolean') {
          return;
        }
        finish(data.isLoggedIn);
      };
      win.addEventListener('message', onMessage);
      frame.id = SILENT_LOGIN_FRAME_ID;
      frame.hidden = true;
      frame.title = 'Gatehouse silent login';
      frame.src = `${root}/silent-login`;
      doc.body.append(frame);
      timer = setTimeout(() => finish(false), timeout);
    });
    return silentPending;
  }

  return {
    /**
     * fetch with the anti-forgery header. A 401 step_up_required answer
     * starts the step-up login (or calls onStepUpRequired); another 401
     * starts a login navigation (once) when loginOn401 is set. The response
     * is returned either way.
     */
    async fetch(input, init) {
      const response = await request(input, init);
      if (response.status !== 401) return response;
      const challenge = await readStepUp(response);
      if (challenge) {
        stepUp(challenge, response);
      } else if (loginOn401 && !navigating) {
        navigate(loginUrl());
      }
      return response;
    },

    async user({ slide = true } = {}) {
      const user = await fetchUser(slide);
      observeUser(user, 'ended');
      return user;
    },

    async logout({ returnUrl } = {}) {
      if (returnUrl !== undefined) requireLocalUrl(returnUrl);
      const current = await fetchUser(false);
      // Tell the other tabs first: this page is about to navigate away.
      const prev = signedIn;
      signOutLocally();
      broadcast('logout');
      if (prev !== false) emit({ signedIn: false, reason: 'logout', remote: false });
      if (current === null) {
        navigate(returnUrl ?? `${appBase}/`);
        return;
      }
      const logoutUrl = isLocalUrl(current.logoutUrl) ? current.logoutUrl : `${root}/logout`;
      navigate(withQuery(logoutUrl, { returnUrl }));
    },

    login(options = {}) {
      navigate(loginUrl(options));
    },

    silentLogin,

    onSessionChange(callback) {
      if (typeof callback !== 'function') {
        throw new TypeError('gatehouse: onSessionChange needs a function');
      }
      const entry = { callback };
      listeners.add(entry);
      if (listeners.size === 1) {
        listen();
        scheduleExpiryCheck();
      }
      return () => {
        if (!listeners.delete(entry) || listeners.size > 0) return;
        unlisten();
        clearExpiryTimer();
      };
    },

    async sessions() {
      const response = await api('GET', '/sessions', [200]);
      const list = await response.json();
      if (!Array.isArray(list)) {
        throw new GatehouseError(`gatehouse: GET ${root}/sessions did not return an array`, response);
      }
      return list;
    },

    async endSession(handle) {
      if (typeof handle !== 'string' || handle === '') {
        throw new TypeError('gatehouse: session handle must be a non-empty string');
      }
      await api('DELETE', `/sessions/${encodeURIComponent(handle)}`, [200, 204]);
    },

    async endOtherSessions() {
      await api('DELETE', '/sessions', [200, 204]);
    },
  };
}
