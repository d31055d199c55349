// The demo's second page: the same app as spa/app.js, written with the React
// bindings (clients/react). build.sh bundles it with React and the browser
// helper into ../spa/react.js, which the demo embeds, so running the demo
// needs no Node; TestReactBundleUpToDate fails when that bundle is stale.
import { StrictMode, useEffect, useState } from 'react';
import { createRoot } from 'react-dom/client';
import { GatehouseProvider, useApi, useGatehouse, useUser } from '@gatehouse-bff/react';

// The page is /react.html, or <base>/react.html in the several-apps demo
// (gatehouse demo --apps 2): the app's base is the page's directory.
const page = window.location.pathname;
const base = page.slice(0, page.lastIndexOf('/'));
const apiPath = `${base}/api/whoami`;

// proof reads what JavaScript on this page can reach: no session cookie in
// document.cookie and nothing token-like in web storage.
function proof() {
  const cookies = document.cookie;
  const items = [{
    ok: !/gatehouse/i.test(cookies),
    text: `document.cookie holds no session cookie (it reads: ${JSON.stringify(cookies)})`,
  }];
  for (const [name, store] of [['localStorage', window.localStorage], ['sessionStorage', window.sessionStorage]]) {
    const values = [];
    for (let i = 0; i < store.length; i++) values.push(store.getItem(store.key(i)) || '');
    const tokenLike = values.some((v) => /eyJ[\w-]+\.[\w-]+/.test(v) || /token/i.test(v));
    items.push({ ok: !tokenLike, text: `${name} holds no token (${store.length} entries)` });
  }
  return items;
}

function Claims({ claims }) {
  return (
    <table id="claims">
      <thead><tr><th>type</th><th>value</th></tr></thead>
      <tbody>
        {claims.map((c, i) => (
          <tr key={i}>
            <td>{c.type}</td>
            <td>{typeof c.value === 'string' ? c.value : JSON.stringify(c.value)}</td>
          </tr>
        ))}
      </tbody>
    </table>
  );
}

function App() {
  const { user, claims, loading, signedIn, error } = useUser();
  const { login, logout, loginRequired } = useGatehouse();
  const api = useApi();
  const [result, setResult] = useState(null);
  const [seen, setSeen] = useState(proof);

  // Read the page's reach again after each change of what it loaded.
  useEffect(() => setSeen(proof()), [user, result]);

  async function callApi() {
    const res = await api(apiPath);
    setResult({ status: res.status, body: await res.text() });
  }

  const name = user && (user.get('name') || user.get('preferred_username') || user.sub);
  return (
    <>
      {loading && <p id="loading">Loading…</p>}
      {!loading && !signedIn && (
        <section id="signed-out">
          <p>You are not signed in.</p>
          <button id="login" type="button" onClick={() => login({ returnUrl: page })}>Sign in</button>
        </section>
      )}
      {signedIn && (
        <section id="signed-in">
          <p>
            Signed in as <b id="who">{String(name)}</b>.{' '}
            <button id="logout" type="button" onClick={() => logout({ returnUrl: page })}>Sign out</button>
          </p>
          <h2>Your claims (from <code>useUser()</code>)</h2>
          <Claims claims={claims} />
          <h2>Call the API through Gatehouse (with <code>useApi()</code>)</h2>
          <button id="call-api" type="button" onClick={callApi}>GET {apiPath}</button>
          <pre id="api-result" data-status={result ? String(result.status) : undefined}>
            {result ? `${result.status}\n${result.body}` : '(not called yet)'}
          </pre>
        </section>
      )}
      {loginRequired && <p id="login-required" className="warn">The API asked for a sign-in: your session ended.</p>}
      {error && <p id="error" className="bad">{String(error)}</p>}
      <section>
        <h2>What the page can see</h2>
        <p>Gatehouse keeps every token on the server. This panel reads what JavaScript on this page can reach:</p>
        <ul id="proof">
          {seen.map((p, i) => (
            <li key={i} className={p.ok ? 'ok' : 'bad'} data-ok={String(p.ok)}>{(p.ok ? '✔ ' : '✘ ') + p.text}</li>
          ))}
        </ul>
      </section>
    </>
  );
}

createRoot(document.getElementById('root')).render(
  <StrictMode>
    <GatehouseProvider base={base}>
      <App />
    </GatehouseProvider>
  </StrictMode>,
);
