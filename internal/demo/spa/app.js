import { createClient } from './gatehouse.js';

const gh = createClient();
const $ = (id) => document.getElementById(id);

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
}

$('login').addEventListener('click', () => gh.login({ returnUrl: '/' }));
$('logout').addEventListener('click', () => gh.logout({ returnUrl: '/' }));
$('call-api').addEventListener('click', async () => {
  const res = await gh.fetch('/api/whoami');
  const text = await res.text();
  $('api-result').textContent = `${res.status}\n${text}`;
  $('api-result').dataset.status = String(res.status);
  proof();
});

render();
