// Type-checks the declarations of the helper (gatehouse.d.ts) and the
// bindings (gatehouse-react.d.ts) as an app would use them. tsc --noEmit
// -p test/types runs it; each @ts-expect-error line fails the check when
// the declarations stop refusing that misuse.
import {
  createClient, isLocalUrl, readStepUp, GatehouseError,
  type Client, type SessionChange, type StepUpRequest, type User,
} from '@gatehouse-bff/client';
import {
  GatehouseProvider, useApi, useGatehouse, useUser,
  type ApiFetch, type UserState,
} from '../../gatehouse-react.js';

const client: Client = createClient({
  base: '/admin',
  prefix: '/bff',
  onStepUpRequired: (req: StepUpRequest) => {
    const acr: string | undefined = req.acrValues;
    const maxAge: number | undefined = req.maxAge;
    void acr; void maxAge; void req.url; void req.response.status;
    req.login();
  },
  BroadcastChannel: null,
});

// The browser's own objects fit the injectable options.
export const browserClient: Client = createClient({
  window, document, storage: localStorage, location: window.location, fetch: window.fetch.bind(window),
  BroadcastChannel,
});

const off: () => void = client.onSessionChange((change: SessionChange) => {
  const signedIn: boolean = change.signedIn;
  const reason: 'login' | 'logout' | 'ended' | 'expired' = change.reason;
  void signedIn; void reason; void change.remote;
});
off();

async function helper(): Promise<void> {
  const ok: boolean = await client.silentLogin({ timeout: 1000 });
  void ok;
  client.login({ prompt: 'none', acrValues: 'mfa', maxAge: 0, returnUrl: '/' });
  await client.logout({ returnUrl: '/' });
  const user: User | null = await client.user({ slide: false });
  if (user) void user.expiresIn;
  const res = await client.fetch('/admin/api/x', { method: 'POST' });
  const challenge = await readStepUp(res);
  if (challenge) void challenge.acrValues;
  if (isLocalUrl('/x')) void new GatehouseError('x', res).status;
  // @ts-expect-error silentLogin takes a number of milliseconds
  await client.silentLogin({ timeout: '5s' });
  // @ts-expect-error the callback gets a SessionChange, whose reason is a fixed set
  client.onSessionChange((c: { reason: 'other' }) => c);
}
void helper;

function Page() {
  const state: UserState = useUser();
  const api: ApiFetch = useApi();
  const { login, logout, loginRequired, silentLogin, client: c } = useGatehouse();
  const name = state.user ? String(state.user.name) : 'nobody';
  const claims: { type: string; value: unknown }[] = state.claims;
  void claims; void c; void silentLogin;
  // @ts-expect-error signedIn is a boolean
  const wrong: string = state.signedIn;
  void wrong;
  return (
    <div>
      <p>{state.loading ? 'loading' : name}</p>
      {loginRequired && <button onClick={() => login()}>Sign in</button>}
      <button onClick={() => { void logout({ returnUrl: '/' }); }}>Sign out</button>
      <button onClick={() => { void api('/api/x').then((r) => r.ok); void state.refresh(); }}>Call</button>
    </div>
  );
}

export const app = (
  <GatehouseProvider base="/admin" onLoginRequired={(r: Response) => void r.status}>
    <Page />
  </GatehouseProvider>
);
export const withClient = <GatehouseProvider client={client}><Page /></GatehouseProvider>;
// @ts-expect-error client must be a Client
export const bad = <GatehouseProvider client={{}}><Page /></GatehouseProvider>;
