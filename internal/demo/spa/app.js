import { createClient } from './gatehouse.js';

// In the several-apps demo (gatehouse demo --apps 2) the page is one of
// several path-based apps: <html data-app data-base data-apps> say which.
const page = document.documentElement.dataset;
const base = page.base || '';
const gh = createClient({ base });
const $ = (id) => document.getElementById(id);
const api = `${base}/api/whoami`;

function proof() {
  const items = [];
  const cookies = document.cookie;
  items.push([!/gatehouse/i.test(cookies), `document.cookie holds no session cookie (it reads: ${JSON.stringify(cookies)})`]);
  const stores = [['localStorage', window.localStorage], ['sessionStorage', window.sessionStorage]];
  for (const [name, store] of stores) {
    const values = [];
    for (let i = 0; i < store.length; i++) values.push(store.getItem(store.key(i)) || '');
    const tokenLike = values.some((v) => /eyJ[\w-]+\.[\w-]+/.test(v) || /token/i.test(v));
    items.push([!tokenLike, `${name} holds no token (${store.length} entries)`]);
  }
  const ul = $('proof');
  ul.replaceChildren(...items.map(([ok, text]) => {
    const li = document.createElement('li');
    li.className = ok ? 'ok' : 'bad';
    li.dataset.ok = String(ok);
    li.textContent = (ok ? '✔ ' : '✘ ') + text;
    return li;
  }));
}

async function render() {
  const user = await gh.user();
  $('signed-in').hidden = !user;
  $('signed-out').hidden = !!user;
  if (user) {
    $('who').textContent = user.get('name') || user.get('preferred_username') || user.get('sub');
    const body = $('claims').querySelector('tbody');
    body.replaceChildren(...user.claims.map((c) => {
      const tr = document.createElement('tr');
      const t = document.createElement('td'); t.textContent = c.type;
      const v = document.createElement('td'); v.textContent = typeof c.value === 'string' ? c.value : JSON.stringify(c.value);
      tr.append(t, v);
      return tr;
    }));
  }
  proof();
  await otherApps();
}

// otherApps shows, for the several-apps demo, whether each other app has a
// session: signing in here does not sign in there. Reading it from this
// page works only because path-based apps share one origin.
async function otherApps() {
  if (!page.app) return;
  const apps = JSON.parse(page.apps);
  const me = apps.find((a) => a.name === page.app);
  $('apps').hidden = false;
  $('app-name').textContent = me.name;
  $('app-base').textContent = `${me.base}/`;
  $('app-client').textContent = me.client;
  $('app-cookie').textContent = me.cookie;
  const items = await Promise.all(apps.filter((a) => a !== me).map(async (a) => {
    let state;
    try {
      const other = await createClient({ base: a.base, loginOn401: false }).user({ slide: false });
      state = other ? `signed in as ${other.get('name') || other.sub}` : 'not signed in';
    } catch (e) {
      state = `unknown (${e.message})`;
    }
    const li = document.createElement('li');
    const link = document.createElement('a');
    link.href = `${a.base}/`;
    link.textContent = `app ${a.name}`;
    li.dataset.app = a.name;
    li.dataset.state = state.startsWith('signed in') ? 'signed-in' : 'signed-out';
    li.append(link, `: ${state} (client ${a.client}, cookie ${a.cookie})`);
    return li;
  }));
  $('other-apps').replaceChildren(...items);
}

$('login').addEventListener('click', () => gh.login({ returnUrl: `${base}/` }));
$('logout').addEventListener('click', () => gh.logout({ returnUrl: `${base}/` }));
$('call-api').addEventListener('click', async () => {
  const res = await gh.fetch(api);
  const text = await res.text();
  $('api-result').textContent = `${res.status}\n${text}`;
  $('api-result').dataset.status = String(res.status);
  proof();
});

$('call-api').textContent = `GET ${api}`;
render();
