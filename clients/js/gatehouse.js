// Browser helper for single-page apps behind the Gatehouse BFF.
//
// The SPA never sees a token: Gatehouse keeps them server-side and the
// browser holds only an HttpOnly session cookie. This module adds the
// anti-forgery header to API calls, reads the session from /bff/user and
// navigates to the login and logout endpoints. It keeps no state in any
// browser storage.

const CLAIM_LOGOUT_URL = 'bff:logout_url';
const CLAIM_EXPIRES_IN = 'bff:session_expires_in';
const CLAIM_SESSION_STATE = 'bff:session_state';

const CONTROL_CHARS = /[\u0000-\u001f\u007f]/;

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

function requireLocalUrl(url) {
  if (!isLocalUrl(url)) {
    throw new TypeError(`gatehouse: returnUrl must be a local path, got ${JSON.stringify(url)}`);
  }
  return url;
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

/**
 * Creates a client for the Gatehouse BFF mounted at prefix.
 */
export function createClient({
  prefix = '/bff',
  csrfHeader = 'X-CSRF',
  csrfValue = '1',
  fetch: fetchImpl = globalThis.fetch,
  location = globalThis.location,
  loginOn401 = true,
} = {}) {
  if (typeof fetchImpl !== 'function') {
    throw new TypeError('gatehouse: no fetch implementation');
  }
  const base = prefix.replace(/\/+$/, '');
  if (base !== '' && !isLocalUrl(base)) {
    throw new TypeError(`gatehouse: prefix must be a local path, got ${JSON.stringify(prefix)}`);
  }
  let navigating = false;

  function navigate(url) {
    navigating = true;
    location.assign(url);
  }

  function loginUrl({ returnUrl, prompt } = {}) {
    const target = returnUrl === undefined ? currentPath(location) : requireLocalUrl(returnUrl);
    return withQuery(`${base}/login`, { returnUrl: target, prompt });
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
    const response = await request(`${base}${path}`, { method });
    if (!okStatuses.includes(response.status)) {
      throw new GatehouseError(`gatehouse: ${method} ${base}${path} answered ${response.status}`, response);
    }
    return response;
  }

  async function user({ slide = true } = {}) {
    const path = slide ? `${base}/user` : `${base}/user?slide=false`;
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

  return {
    /**
     * fetch with the anti-forgery header. A 401 starts a login navigation
     * (once) when loginOn401 is set; the 401 response is still returned.
     */
    async fetch(input, init) {
      const response = await request(input, init);
      if (response.status === 401 && loginOn401 && !navigating) {
        navigate(loginUrl());
      }
      return response;
    },

    user,

    async logout({ returnUrl } = {}) {
      if (returnUrl !== undefined) requireLocalUrl(returnUrl);
      const current = await user({ slide: false });
      if (current === null) {
        navigate(returnUrl ?? '/');
        return;
      }
      const logoutUrl = isLocalUrl(current.logoutUrl) ? current.logoutUrl : `${base}/logout`;
      navigate(withQuery(logoutUrl, { returnUrl }));
    },

    login(options = {}) {
      navigate(loginUrl(options));
    },

    async sessions() {
      const response = await api('GET', '/sessions', [200]);
      const list = await response.json();
      if (!Array.isArray(list)) {
        throw new GatehouseError(`gatehouse: GET ${base}/sessions did not return an array`, response);
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
