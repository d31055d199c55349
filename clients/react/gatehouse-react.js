// React bindings for the Gatehouse BFF browser helper (@gatehouse-bff/client).
//
// <GatehouseProvider> owns one helper client, loads the signed-in user from
// /bff/user and keeps it current when the session changes in this tab or in
// another tab of the app (the helper's onSessionChange). useUser() reads the
// user, useApi() gives a fetch for the app's API routes, useGatehouse()
// gives login and logout. No token ever reaches the page: Gatehouse keeps
// them on the server.
//
// The module is plain JavaScript (no JSX), so it runs unbuilt in a browser
// with an import map as well as through any bundler.

import {
  createContext, createElement, useCallback, useContext, useEffect, useMemo, useRef, useState,
} from 'react';
import { createClient, readStepUp } from '@gatehouse-bff/client';

const GatehouseContext = createContext(null);

function useGatehouseContext(hook) {
  const value = useContext(GatehouseContext);
  if (value === null) {
    throw new Error(`gatehouse: ${hook}() must be called inside <GatehouseProvider>`);
  }
  return value;
}

/**
 * Provides a Gatehouse client and the session state to its children.
 *
 * Props: client (a client from createClient; when absent the provider makes
 * one from base and prefix, with loginOn401 off), base, prefix,
 * onLoginRequired(response) (called when an API call through useApi answers
 * 401 without a step-up challenge), children. The client, base and prefix
 * of the first render are kept for the provider's lifetime.
 */
export function GatehouseProvider({ client, base, prefix, onLoginRequired, children }) {
  const [gatehouse] = useState(() => client ?? createClient({
    ...(base === undefined ? {} : { base }),
    ...(prefix === undefined ? {} : { prefix }),
    loginOn401: false,
  }));
  const [session, setSession] = useState({ user: null, loading: true, error: null });
  const [loginRequired, setLoginRequired] = useState(false);
  const onLoginRequiredRef = useRef(onLoginRequired);
  const reloadRef = useRef(async () => {});

  useEffect(() => {
    onLoginRequiredRef.current = onLoginRequired;
  }, [onLoginRequired]);

  useEffect(() => {
    let active = true;
    // Only the latest load may set the state: a sign-out told meanwhile,
    // or a newer load, wins over an older answer.
    let generation = 0;
    const load = async () => {
      const mine = ++generation;
      setSession((s) => (s.loading ? s : { ...s, loading: true }));
      try {
        const user = await gatehouse.user();
        if (!active || mine !== generation) return;
        setSession({ user, loading: false, error: null });
        if (user !== null) setLoginRequired(false);
      } catch (error) {
        if (!active || mine !== generation) return;
        setSession((s) => ({ user: s.user, loading: false, error }));
      }
    };
    reloadRef.current = load;
    load();
    const off = gatehouse.onSessionChange((change) => {
      if (!active) return;
      if (!change.signedIn) {
        // Signed out here or in another tab: no request needed.
        generation++;
        setSession({ user: null, loading: false, error: null });
        return;
      }
      load();
    });
    return () => {
      active = false;
      off();
    };
  }, [gatehouse]);

  const api = useCallback(async (input, init) => {
    // The client adds the anti-forgery header and starts the step-up login
    // on a step_up_required answer.
    const response = await gatehouse.fetch(input, init);
    if (response.status === 401 && (await readStepUp(response)) === null) {
      setLoginRequired(true);
      if (typeof onLoginRequiredRef.current === 'function') onLoginRequiredRef.current(response);
    }
    return response;
  }, [gatehouse]);

  const refresh = useCallback(() => reloadRef.current(), []);
  const login = useCallback((options) => gatehouse.login(options), [gatehouse]);
  const logout = useCallback((options) => gatehouse.logout(options), [gatehouse]);
  const silentLogin = useCallback((options) => gatehouse.silentLogin(options), [gatehouse]);

  const value = useMemo(() => ({
    client: gatehouse, session, loginRequired, api, refresh, login, logout, silentLogin,
  }), [gatehouse, session, loginRequired, api, refresh, login, logout, silentLogin]);

  return createElement(GatehouseContext.Provider, { value }, children);
}

/**
 * The signed-in user: { user, claims, loading, signedIn, error, refresh }.
 * user is the helper's User (or null), claims its claim array (empty when
 * signed out). It reloads when the session changes.
 */
export function useUser() {
  const { session, refresh } = useGatehouseContext('useUser');
  return useMemo(() => ({
    user: session.user,
    claims: session.user ? session.user.claims : [],
    loading: session.loading,
    signedIn: session.user !== null,
    error: session.error,
    refresh,
  }), [session, refresh]);
}

/**
 * A fetch for the app's API routes: it adds the anti-forgery header, sends
 * the session cookie, navigates to the step-up login on a step_up_required
 * answer, and on another 401 sets loginRequired (see useGatehouse) and calls
 * the provider's onLoginRequired. It resolves to the response in every case.
 */
export function useApi() {
  return useGatehouseContext('useApi').api;
}

/**
 * The client and the session actions: { client, loginRequired, login,
 * logout, silentLogin }.
 */
export function useGatehouse() {
  const { client, loginRequired, login, logout, silentLogin } = useGatehouseContext('useGatehouse');
  return useMemo(() => ({ client, loginRequired, login, logout, silentLogin }),
    [client, loginRequired, login, logout, silentLogin]);
}
