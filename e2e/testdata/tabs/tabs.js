// The page of the two-tab Chromium test (e2e/tabs_test.go). It records every
// session change the helper reports, with the time it arrived, and shows the
// state from the change itself: it makes no request when told of a change.
// "?fallback" hides BroadcastChannel from the helper, so tabs talk through
// storage events.
import { createClient } from '/gatehouse.js';

const fallback = new URLSearchParams(location.search).has('fallback');
const bff = createClient(fallback ? { BroadcastChannel: null } : {});
const state = document.getElementById('state');
const test = { mode: fallback ? 'storage' : 'broadcast', changes: [], ready: false, signedIn: null, expiresIn: null };
window.gatehouseTest = test;

function show(signedIn) {
  state.textContent = signedIn ? 'signed in' : 'signed out';
  state.dataset.state = signedIn ? 'signed-in' : 'signed-out';
}

bff.onSessionChange((change) => {
  test.changes.push({ ...change, at: Date.now() });
  show(change.signedIn);
});
document.getElementById('login').addEventListener('click', () => bff.login({ returnUrl: `/${location.search}` }));
document.getElementById('logout').addEventListener('click', () => bff.logout({ returnUrl: '/' }));

const user = await bff.user();
test.signedIn = user !== null;
test.expiresIn = user === null ? null : user.expiresIn ?? null;
show(test.signedIn);
test.ready = true;
