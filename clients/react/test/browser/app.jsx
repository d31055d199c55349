// A small React page for the Chromium test (e2e/react_test.go), bundled at
// test time with esbuild: it shows the session state from useUser, calls the
// API through useApi and signs in and out through useGatehouse.
import { StrictMode, useState } from 'react';
import { createRoot } from 'react-dom/client';
import { GatehouseProvider, useApi, useGatehouse, useUser } from '../../gatehouse-react.js';

function App() {
  const { user, loading, signedIn, error } = useUser();
  const { login, logout, loginRequired } = useGatehouse();
  const api = useApi();
  const [result, setResult] = useState(null);

  async function callApi(path) {
    const res = await api(path, { headers: { Accept: 'application/json' } });
    setResult({ status: res.status, body: await res.text() });
  }

  return (
    <main>
      {loading && <p id="loading">Loading…</p>}
      {!loading && !signedIn && (
        <section id="signed-out">
          <p>You are not signed in.</p>
          <button id="login" type="button" onClick={() => login({ returnUrl: '/' })}>Sign in</button>
        </section>
      )}
      {signedIn && (
        <section id="signed-in">
          <p>Signed in as <b id="who">{String(user.name)}</b></p>
          <button id="logout" type="button" onClick={() => logout({ returnUrl: '/' })}>Sign out</button>
        </section>
      )}
      {loginRequired && <p id="login-required">The API asked for a sign-in.</p>}
      {error && <p id="error">{String(error)}</p>}
      <button id="call-api" type="button" onClick={() => callApi('/api/hello')}>GET /api/hello</button>
      <button id="call-step-up" type="button" onClick={() => callApi('/api/step-up')}>GET /api/step-up</button>
      {result && <pre id="api-result" data-status={String(result.status)}>{result.body}</pre>}
    </main>
  );
}

createRoot(document.getElementById('root')).render(
  <StrictMode>
    <GatehouseProvider>
      <App />
    </GatehouseProvider>
  </StrictMode>,
);
