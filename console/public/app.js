import { diffLines } from './diff.js';

// Plain DOM, no framework: the console is served as these files, with no build step.
const main = document.getElementById('main');
let cleanup = () => {};

function h(tag, attrs = {}, ...children) {
  const el = document.createElement(tag);
  for (const [k, v] of Object.entries(attrs)) {
    if (k.startsWith('on')) el.addEventListener(k.slice(2), v);
    else if (v !== undefined && v !== null && v !== false) el.setAttribute(k, v === true ? '' : String(v));
  }
  for (const c of children.flat()) if (c !== null && c !== undefined) el.append(c instanceof Node ? c : document.createTextNode(String(c)));
  return el;
}

// The signed-in session ({principal, csrf, operator}), or {open: true} when the console has no access file.
let session;

class SignedOut extends Error {}

async function api(path, options = {}) {
  // Anything but a GET carries the session's CSRF token, which only this page can read.
  const headers = { ...(options.headers ?? {}), ...(session?.csrf ? { 'x-sluice-csrf': session.csrf } : {}) };
  const response = await fetch(path, { ...options, headers });
  const body = await response.json();
  if (response.status === 401 && path !== '/api/login') {
    loginPage('Your session has ended; sign in again.');
    throw new SignedOut();
  }
  if (!response.ok) throw new Error(body.message ?? response.statusText);
  return body;
}

function showSession() {
  const box = document.getElementById('session');
  if (session?.open || !session) return box.replaceChildren();
  box.replaceChildren(h('span', { 'data-testid': 'principal' }, session.principal), h('button', { class: 'secondary', type: 'button', onclick: () => void logout() }, 'Sign out'));
}

async function logout() {
  await api('/api/logout', { method: 'POST' }).catch(() => undefined);
  session = undefined;
  loginPage();
}

function loginPage(message) {
  session = undefined;
  showSession();
  const name = h('input', { name: 'name', autocomplete: 'username', required: true, 'aria-label': 'Name' });
  const password = h('input', { name: 'password', type: 'password', autocomplete: 'current-password', required: true, 'aria-label': 'Password or API key' });
  const error = h('div', { class: 'error', role: 'alert', hidden: !message }, message ?? '');
  const form = h(
    'form',
    {
      class: 'panel login',
      onsubmit: async (event) => {
        event.preventDefault();
        try {
          session = await api('/api/login', { method: 'POST', headers: { 'content-type': 'application/json' }, body: JSON.stringify({ name: name.value, password: password.value }) });
          showSession();
          await route();
        } catch (e) {
          error.textContent = e.message;
          error.hidden = false;
        }
      },
    },
    h('h1', {}, 'Sign in'),
    h('label', {}, 'Name', name),
    h('label', {}, 'Password or API key', password),
    h('button', { type: 'submit' }, 'Sign in'),
    error,
  );
  render(form);
  name.focus();
}

// Avro longs beyond 2^53 arrive exact in the JSON text; keep them exact when shown.
function parseExact(text) {
  return JSON.parse(text, (_k, v, ctx) => (typeof v === 'number' && !Number.isSafeInteger(v) && ctx && /^-?\d+$/.test(ctx.source) ? BigInt(ctx.source) : v));
}
function showJson(value) {
  return JSON.stringify(value, (_k, v) => (typeof v === 'bigint' ? JSON.rawJSON(v.toString()) : v), 2);
}

function table(headers, rows, onClick) {
  return h(
    'table',
    {},
    h(
      'thead',
      {},
      h(
        'tr',
        {},
        headers.map(([label, cls]) => h('th', { class: cls }, label)),
      ),
    ),
    h(
      'tbody',
      {},
      rows.map((cells) =>
        h(
          'tr',
          onClick ? { class: 'clickable', onclick: () => onClick(cells) } : {},
          cells.slice(0, headers.length).map((c, i) => h('td', { class: headers[i][1] }, c)),
        ),
      ),
    ),
  );
}

function render(...nodes) {
  main.replaceChildren(...nodes);
}

function failure(error) {
  render(h('div', { class: 'error' }, String(error.message ?? error)));
}

async function topicsPage() {
  const topics = await api('/api/topics');
  render(
    h('h1', {}, 'Topics'),
    table(
      // End minus begin offsets: transaction markers take offsets and compaction leaves gaps, so this is not a record count.
      [['Topic'], ['Partitions', 'num'], ['Offset span', 'num']],
      topics.map((t) => [
        h(
          'span',
          {},
          h('a', { href: `#/topics/${encodeURIComponent(t.name)}` }, t.name),
          t.deadLetters ? [' ', h('a', { class: 'badge err', href: `#/dlq/${encodeURIComponent(t.name)}` }, 'dead letters')] : null,
        ),
        t.partitions,
        t.offsetSpan.toLocaleString(),
      ]),
    ),
  );
}

async function topicPage(name) {
  const t = await api(`/api/topics/${encodeURIComponent(name)}`);
  const total = t.partitions.reduce((s, p) => s + p.offsetSpan, 0);
  render(
    h('h1', {}, t.name, ' ', h('span', { class: 'badge' }, `${t.partitions.length} partitions · ${total.toLocaleString()} offsets`)),
    h(
      'div',
      { class: 'toolbar' },
      h('a', { href: `#/tail/${encodeURIComponent(name)}` }, 'Live tail →'),
      t.deadLetters ? h('a', { href: `#/dlq/${encodeURIComponent(name)}` }, 'Dead letters →') : h('a', { href: `#/schemas/${encodeURIComponent(`${name}-value`)}` }, 'Value schema →'),
    ),
    h('h2', {}, 'Partitions'),
    table(
      [['Partition', 'num'], ['Leader', 'num'], ['Replicas'], ['Begin offset', 'num'], ['End offset', 'num'], ['Offset span', 'num']],
      t.partitions.map((p) => [p.partition, p.leader, p.replicas.join(', '), p.low, p.high, p.offsetSpan.toLocaleString()]),
    ),
    h('h2', {}, 'Configs'),
    table(
      [['Name'], ['Value'], ['Source']],
      t.configs.map((c) => [
        h('span', { class: 'mono' }, c.name),
        h('span', { class: 'mono' }, c.value ?? ''),
        c.isDefault ? h('span', { class: 'muted' }, 'default') : h('span', { class: 'badge ok' }, 'set on topic'),
      ]),
    ),
  );
}

// Operators replay dead letters; without an access file everyone may.
const isOperator = () => Boolean(session?.open || session?.operator);

// One page of letters at a time (the server bounds it); `from` is the previous page's `next`.
async function dlqPage(topic, outcome = '', from = null) {
  const { letters, next } = await api(`/api/dlq/${encodeURIComponent(topic)}${from ? `?from=${encodeURIComponent(from)}` : ''}`);
  const waiting = letters.filter((l) => !l.replayed);
  const status = h('span', { class: `status ${outcome ? 'badge ok' : 'muted'}`, 'data-testid': 'replay-status' }, outcome);
  // The POST carries the session's CSRF token (api() adds it); the server replays each letter once at most.
  const replay = async (offsets) => {
    const here = location.hash;
    status.textContent = 'replaying…';
    status.className = 'status muted';
    try {
      const r = await api(`/api/dlq/${encodeURIComponent(topic)}/replay`, { method: 'POST', headers: { 'content-type': 'application/json' }, body: JSON.stringify(offsets ? { offsets } : {}) });
      if (location.hash === here) await dlqPage(topic, `replayed ${r.replayed}, ${r.alreadyReplayed} already replayed`, from);
    } catch (e) {
      if (e instanceof SignedOut) return;
      status.textContent = e.message;
      status.className = 'status badge err';
    }
  };
  const button = (label, offsets) => h('button', { type: 'button', onclick: () => void replay(offsets) }, label);
  const origin = (o) => (o.topic === null ? '—' : `${o.topic} / ${o.partition ?? '?'} / ${o.offset ?? '?'}`);
  render(
    h(
      'h1',
      {},
      topic,
      ' ',
      h(
        'span',
        { class: 'badge', 'data-testid': 'dlq-count' },
        `${letters.length} dead letter${letters.length === 1 ? '' : 's'}${next || from ? ' on this page' : ''} · ${waiting.length} not replayed`,
      ),
    ),
    h(
      'div',
      { class: 'toolbar' },
      h('a', { href: `#/topics/${encodeURIComponent(topic)}` }, '← Topic'),
      from ? h('button', { type: 'button', onclick: () => void dlqPage(topic) }, '« First page') : null,
      next ? h('button', { type: 'button', 'data-testid': 'dlq-next', onclick: () => void dlqPage(topic, '', next) }, 'Next page →') : null,
      // Replays every letter not replayed yet, on every page (the server's replay is not paged).
      isOperator() && waiting.length > 0 ? button(next || from ? 'Replay all (every page)' : `Replay all ${waiting.length}`) : null,
      status,
    ),
    letters.length === 0
      ? h('p', { class: 'muted' }, 'No dead letters.')
      : table(
          [['Part', 'num'], ['Offset', 'num'], ['Key'], ['Failed at'], ['Error'], ['Message'], ['From (topic / partition / offset)'], ['Replayed'], ['']],
          letters.map((l) => [
            l.partition,
            l.offset,
            h('span', { class: 'mono' }, l.key ?? '(null)'),
            l.failedAt ?? '',
            `${l.errorClass ?? '?'}${l.errorCode ? ` [${l.errorCode}]` : ''}`,
            l.errorMessage ?? '',
            h('span', { class: 'mono' }, origin(l.original)),
            l.replayed ? h('span', { class: 'badge ok', title: `to ${l.replayed.to} at ${l.replayed.at}` }, 'replayed') : h('span', { class: 'muted' }, 'no'),
            isOperator() && !l.replayed ? button('Replay', [`${l.partition}:${l.offset}`]) : '',
          ]),
        ),
  );
}

async function schemasPage() {
  const subjects = await api('/api/schemas');
  render(
    h('h1', {}, 'Schemas'),
    table(
      [['Subject'], ['Versions', 'num'], ['Latest', 'num'], ['Compatibility']],
      subjects.map((s) => [h('a', { href: `#/schemas/${encodeURIComponent(s.subject)}` }, s.subject), s.versions.length, Math.max(...s.versions), h('span', { class: 'badge' }, s.compatibility)]),
    ),
  );
}

/** Avro and JSON Schema texts are JSON, shown indented; a Protobuf schema is shown as written. */
function pretty(schemaText) {
  try {
    return JSON.stringify(JSON.parse(schemaText), null, 2).split('\n');
  } catch {
    return schemaText.split('\n');
  }
}

function diffView(a, b) {
  const rows = diffLines(pretty(a.schema), pretty(b.schema));
  const side = (which, title) =>
    h(
      'div',
      { class: 'side' },
      h('div', { class: 'head' }, title),
      rows.map((r) => {
        const line = r[which];
        const kind = line ? (r.kind === 'same' ? '' : r.kind) : 'blank';
        return h('div', { class: `line ${kind}` }, h('span', { class: 'no' }, line ? line.no : ''), line ? line.text : '');
      }),
    );
  const changed = rows.filter((r) => r.kind !== 'same').length;
  return h(
    'div',
    {},
    h('p', { class: 'muted', 'data-testid': 'diff-summary' }, changed === 0 ? 'The versions are identical.' : `${changed} changed line${changed === 1 ? '' : 's'}`),
    h('div', { class: 'diff', 'data-testid': 'diff' }, side('left', `Version ${a.version} (id ${a.id})`), side('right', `Version ${b.version} (id ${b.id})`)),
  );
}

/** A version's data contract (Confluent's ruleSet and metadata): what the ingress and workers enforce. */
function contractView(v) {
  const rules = [...(v.ruleSet?.domainRules ?? []).map((r) => ['domain', r]), ...(v.ruleSet?.migrationRules ?? []).map((r) => ['migration', r])];
  const tags = Object.entries(v.metadata?.tags ?? {});
  const properties = Object.entries(v.metadata?.properties ?? {});
  if (rules.length === 0 && tags.length === 0 && properties.length === 0) {
    return h('p', { class: 'muted', 'data-testid': 'contract' }, `Version ${v.version} has no rules or metadata.`);
  }
  return h(
    'div',
    { 'data-testid': 'contract' },
    h('h2', {}, `Data contract of version ${v.version}`),
    rules.length === 0
      ? h('p', { class: 'muted' }, 'No rules.')
      : table(
          [['Rule'], ['List'], ['Kind'], ['Mode'], ['Type'], ['Tags'], ['Expression'], ['On failure'], ['Disabled']],
          rules.map(([list, r]) => [r.name, list, r.kind, r.mode, r.type, (r.tags ?? []).join(', '), h('code', {}, r.expr ?? ''), r.onFailure ?? 'ERROR', r.disabled ? 'yes' : '']),
        ),
    tags.length + properties.length === 0
      ? ''
      : h(
          'dl',
          { class: 'kv' },
          tags.flatMap(([path, list]) => [h('dt', {}, `tags ${path}`), h('dd', {}, list.join(', '))]),
          properties.flatMap(([key, value]) => [h('dt', {}, key), h('dd', {}, value)]),
        ),
  );
}

async function subjectPage(subject) {
  const all = await api('/api/schemas');
  const info = all.find((s) => s.subject === subject);
  if (!info) throw new Error(`no subject ${subject}`);
  const versions = info.versions;
  const pick = (id, selected) =>
    h(
      'select',
      { id },
      versions.map((v) => h('option', { value: v, selected: v === selected }, `version ${v}`)),
    );
  const left = pick('left', versions[Math.max(0, versions.length - 2)]);
  const right = pick('right', versions[versions.length - 1]);
  const out = h('div', {});
  const show = async () => {
    const [a, b] = await Promise.all([left.value, right.value].map((v) => api(`/api/schemas/${encodeURIComponent(subject)}/versions/${v}`)));
    out.replaceChildren(diffView(a, b), contractView(b));
  };
  left.addEventListener('change', () => void show().catch(failure));
  right.addEventListener('change', () => void show().catch(failure));
  render(
    h('h1', {}, subject),
    h(
      'dl',
      { class: 'kv' },
      h('dt', {}, 'Versions'),
      h('dd', {}, versions.join(', ')),
      h('dt', {}, 'Compatibility'),
      h('dd', {}, h('span', { class: 'badge', 'data-testid': 'compatibility' }, info.compatibility)),
    ),
    h('div', { class: 'toolbar' }, 'Compare', left, 'with', right),
    out,
  );
  await show();
}

async function groupsPage() {
  const groups = await api('/api/groups');
  render(
    h('h1', {}, 'Consumer groups'),
    groups.length === 0
      ? h('p', { class: 'muted' }, 'No consumer groups.')
      : table(
          [['Group'], ['Protocol']],
          groups.map((g) => [h('a', { href: `#/groups/${encodeURIComponent(g.groupId)}` }, g.groupId), g.protocolType || '—']),
        ),
  );
}

function lagChart(history) {
  const W = 900,
    H = 220,
    L = 56,
    B = 28,
    T = 14,
    R = 14;
  const svg = document.createElementNS('http://www.w3.org/2000/svg', 'svg');
  svg.setAttribute('viewBox', `0 0 ${W} ${H}`);
  svg.setAttribute('class', 'chart');
  svg.setAttribute('data-testid', 'lag-chart');
  const add = (tag, attrs, text) => {
    const el = document.createElementNS('http://www.w3.org/2000/svg', tag);
    for (const [k, v] of Object.entries(attrs)) el.setAttribute(k, String(v));
    if (text !== undefined) el.textContent = text;
    svg.append(el);
  };
  const max = Math.max(1, ...history.map((s) => s.totalLag));
  const t0 = history[0]?.at ?? Date.now();
  const t1 = Math.max(t0 + 1, history[history.length - 1]?.at ?? t0 + 1);
  const x = (at) => L + ((at - t0) / (t1 - t0)) * (W - L - R);
  const y = (lag) => H - B - (lag / max) * (H - B - T);
  add('line', { class: 'axis', x1: L, y1: H - B, x2: W - R, y2: H - B });
  add('line', { class: 'axis', x1: L, y1: T, x2: L, y2: H - B });
  add('text', { x: L - 8, y: y(max) + 4, 'text-anchor': 'end' }, max.toLocaleString());
  add('text', { x: L - 8, y: H - B + 4, 'text-anchor': 'end' }, '0');
  add('text', { x: L, y: H - 8 }, new Date(t0).toLocaleTimeString());
  add('text', { x: W - R, y: H - 8, 'text-anchor': 'end' }, new Date(t1).toLocaleTimeString());
  if (history.length > 0) {
    const points = history.map((s) => `${x(s.at).toFixed(1)},${y(s.totalLag).toFixed(1)}`);
    add('polygon', { class: 'area', points: `${L},${H - B} ${points.join(' ')} ${x(history[history.length - 1].at).toFixed(1)},${H - B}` });
    add('polyline', { class: 'line', points: points.join(' ') });
  }
  return svg;
}

async function groupPage(groupId) {
  const load = async () => {
    const g = await api(`/api/groups/${encodeURIComponent(groupId)}`);
    render(
      h(
        'h1',
        {},
        g.groupId,
        ' ',
        h('span', { class: `badge ${g.state === 'Stable' ? 'ok' : ''}` }, g.state),
        ' ',
        h('span', { class: 'badge', 'data-testid': 'total-lag' }, `lag ${g.totalLag.toLocaleString()}`),
      ),
      h('h2', {}, 'Lag over time'),
      lagChart(g.history),
      h('p', { class: 'muted' }, `${g.history.length} samples, refreshed every few seconds while this page is open.`),
      h('h2', {}, 'Members'),
      g.members.length === 0
        ? h('p', { class: 'muted' }, 'No active members.')
        : table(
            [['Member'], ['Client'], ['Host'], ['Assignment']],
            g.members.map((m) => [
              h('span', { class: 'mono' }, m.memberId),
              m.clientId,
              m.host,
              Object.entries(m.assignment)
                .map(([t, ps]) => `${t}: ${ps.join(', ')}`)
                .join('; '),
            ]),
          ),
      h('h2', {}, 'Lag per partition'),
      table(
        [['Topic'], ['Partition', 'num'], ['Committed', 'num'], ['End offset', 'num'], ['Lag', 'num']],
        g.lag.map((l) => [l.topic, l.partition, l.committed === '-1' ? '—' : l.committed, l.high, l.lag.toLocaleString()]),
      ),
    );
  };
  await load();
  const timer = setInterval(() => void load().catch(failure), 3000);
  cleanup = () => clearInterval(timer);
}

async function tailPage(topic) {
  const topics = await api('/api/topics');
  const select = h(
    'select',
    { id: 'tail-topic' },
    h('option', { value: '' }, 'choose a topic…'),
    topics.map((t) => h('option', { value: t.name, selected: t.name === topic }, t.name)),
  );
  const params = new URLSearchParams(location.hash.split('?')[1] ?? '');
  const where = h('input', { class: 'where', id: 'where', placeholder: 'filter, e.g. value.amount > 100 && value.currency == "EUR"', value: params.get('where') ?? '' });
  const from = h(
    'select',
    { id: 'from' },
    h('option', { value: 'end' }, 'new records'),
    h('option', { value: 'beginning', selected: params.get('from') === 'beginning' }, 'from the beginning'),
    h('option', { value: '15m' }, 'last 15 minutes'),
  );
  const status = h('span', { class: 'status muted', 'data-testid': 'tail-status' }, topic ? 'connecting…' : 'pick a topic');
  const rows = h('tbody', {});
  const detail = h('div', { class: 'panel', 'data-testid': 'record-detail' }, h('p', { class: 'muted' }, 'Click a record to see it whole.'));
  const go = () => {
    const q = new URLSearchParams();
    if (where.value.trim()) q.set('where', where.value.trim());
    if (from.value !== 'end') q.set('from', from.value);
    location.hash = `#/tail/${encodeURIComponent(select.value)}${q.size ? `?${q}` : ''}`;
  };
  select.addEventListener('change', go);
  where.addEventListener('keydown', (e) => e.key === 'Enter' && go());
  render(
    h('h1', {}, 'Live tail'),
    h('div', { class: 'toolbar' }, select, from, where, h('button', { id: 'apply', onclick: go }, 'Apply'), status),
    h(
      'div',
      { class: 'split' },
      h(
        'div',
        { class: 'stream' },
        h(
          'table',
          { 'data-testid': 'records' },
          h('thead', {}, h('tr', {}, h('th', { class: 'num' }, 'Part'), h('th', { class: 'num' }, 'Offset'), h('th', {}, 'Time'), h('th', {}, 'Key'), h('th', {}, 'Value'))),
          rows,
        ),
      ),
      detail,
    ),
  );
  if (!topic) return;
  const q = new URLSearchParams({ topic });
  if (params.get('where')) q.set('where', params.get('where'));
  if (params.get('from')) q.set('from', params.get('from'));
  const source = new EventSource(`/api/tail?${q}`);
  let count = 0;
  source.addEventListener('ready', () => {
    status.textContent = `live · ${count} records`;
    status.className = 'status badge ok';
  });
  source.addEventListener('failure', (e) => {
    status.textContent = JSON.parse(e.data).message;
    status.className = 'status badge err';
    source.close();
  });
  source.addEventListener('error', () => {
    if (source.readyState === EventSource.CLOSED) {
      status.textContent = 'disconnected';
      status.className = 'status badge err';
    }
  });
  source.addEventListener('record', (e) => {
    const r = parseExact(e.data);
    count++;
    status.textContent = `live · ${count} records`;
    const summary = r.error ? `UNDECODABLE: ${r.error.message}` : JSON.stringify(r.value, (_k, v) => (typeof v === 'bigint' ? JSON.rawJSON(v.toString()) : v));
    const tr = h(
      'tr',
      { class: 'clickable', 'data-key': typeof r.key === 'string' ? r.key : '' },
      h('td', { class: 'num' }, r.partition),
      h('td', { class: 'num' }, r.offset),
      h('td', {}, new Date(r.timestamp).toLocaleTimeString()),
      h('td', { class: 'mono' }, typeof r.key === 'string' ? r.key : JSON.stringify(r.key)),
      h('td', { class: 'mono' }, summary.length > 90 ? `${summary.slice(0, 89)}…` : summary),
    );
    tr.addEventListener('click', () => {
      for (const s of rows.querySelectorAll('tr.selected')) s.classList.remove('selected');
      tr.classList.add('selected');
      detail.replaceChildren(
        h('h2', { style: 'margin-top:0' }, `${r.topic} · partition ${r.partition} · offset ${r.offset}`),
        h(
          'dl',
          { class: 'kv' },
          h('dt', {}, 'Time'),
          h('dd', {}, r.timestamp),
          h('dt', {}, 'Key'),
          h('dd', { class: 'mono' }, JSON.stringify(r.key)),
          h('dt', {}, 'Headers'),
          h('dd', { class: 'mono' }, JSON.stringify(r.headers ?? {})),
        ),
        h('pre', { 'data-testid': 'record-json' }, r.error ? `${r.error.message}\n\nhex: ${r.valueHex}` : showJson(r.value)),
      );
    });
    rows.prepend(tr);
    while (rows.children.length > 500) rows.lastChild.remove();
  });
  cleanup = () => source.close();
}

async function route() {
  if (!session) return;
  cleanup();
  cleanup = () => {};
  const [path] = location.hash.replace(/^#\/?/, '').split('?');
  const [page, ...rest] = path.split('/');
  const arg = rest.length ? decodeURIComponent(rest.join('/')) : undefined;
  for (const a of document.querySelectorAll('nav a')) a.classList.toggle('active', a.dataset.nav === (page === 'dlq' ? 'topics' : page || 'topics'));
  try {
    if (page === 'schemas') await (arg ? subjectPage(arg) : schemasPage());
    else if (page === 'groups') await (arg ? groupPage(arg) : groupsPage());
    else if (page === 'tail') await tailPage(arg);
    else if (page === 'dlq' && arg) await dlqPage(arg);
    else await (arg ? topicPage(arg) : topicsPage());
  } catch (error) {
    if (!(error instanceof SignedOut)) failure(error);
  }
}

async function start() {
  const current = await (await fetch('/api/session')).json();
  if (!current.open && !current.principal) return loginPage();
  session = current;
  showSession();
  await route();
}

window.addEventListener('hashchange', () => void route());
void start();
