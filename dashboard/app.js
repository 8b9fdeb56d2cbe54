// steward's dashboard: hand-written, no framework, no build step (DESIGN §12).
//
// Data flow: one GET of the service list, then ONE event stream (GET /api/v1/events read with
// fetch streaming, so the bearer header can be sent: never a token in a URL). An event
// updates its card at once from what it says (kind → status, pid), and schedules one
// debounced re-read of the list (one request, whatever the size of the burst) for the
// fields events do not carry. CPU and memory come from the same list, re-read every 5 s;
// the sparklines start from the server's recent samples (GET /api/v1/usage) and go on
// with the page's own. Rendering is batched
// per animation frame and touches only cards whose content changed.
'use strict';

const TOKEN_KEY = 'steward.token';
const HISTORY = 30; // samples kept per service for the sparklines
const REFRESH_MS = 5000;
const MAX_EVENTS = 1000;
const MAX_LOG_LINES = 5000;

const $ = (sel, root = document) => root.querySelector(sel);
const esc = (s) => String(s ?? '').replace(/[&<>"']/g, (c) => ({
  '&': '&amp;', '<': '&lt;', '>': '&gt;', '"': '&quot;', "'": '&#39;',
}[c]));

// ---------------------------------------------------------------- HTTP, token, SSE

let token = localStorage.getItem(TOKEN_KEY);
let tokenPrompt = null; // one prompt shared by every request that met a 401

/** Error carrying the API's JSON error (`code`, `message`, and e.g. `dependents`). */
class ApiFailure extends Error {
  constructor(status, body) {
    const e = (body && body.error) || {};
    super(e.message || `HTTP ${status}`);
    this.status = status;
    this.code = e.code || 'http';
    this.body = e;
  }
}

function askToken(wrong) {
  if (!tokenPrompt) {
    tokenPrompt = new Promise((resolve) => {
      const dialog = $('#token-dialog');
      $('#token-error').textContent = wrong ? 'That token was refused. Try again.' : '';
      $('#token-input').value = '';
      dialog.addEventListener('close', () => {
        const value = $('#token-input').value.trim();
        tokenPrompt = null;
        if (value) {
          token = value;
          localStorage.setItem(TOKEN_KEY, value);
          $('#forget-token').hidden = false;
        }
        resolve();
      }, { once: true });
      dialog.showModal();
    });
  }
  return tokenPrompt;
}

/** fetch with the bearer header; a 401 asks for the token and tries again. */
async function authFetch(path, opts = {}) {
  for (let attempt = 0; ; attempt++) {
    const headers = Object.assign({}, opts.headers);
    if (token) headers.Authorization = `Bearer ${token}`;
    const res = await fetch(path, Object.assign({}, opts, { headers }));
    if (res.status !== 401) return res;
    await askToken(attempt > 0 || Boolean(token));
  }
}

async function api(method, path, body) {
  const opts = { method };
  if (body !== undefined) {
    opts.body = JSON.stringify(body);
    opts.headers = { 'Content-Type': 'application/json' };
  }
  const res = await authFetch(path, opts);
  const text = await res.text();
  let json = null;
  try { json = text ? JSON.parse(text) : null; } catch (_) { json = null; }
  if (!res.ok) throw new ApiFailure(res.status, json);
  return json;
}

/**
 * Reads a Server-Sent Events stream with fetch (so the Authorization header goes along).
 * Calls onData(object, id) per data event and onGap(n) per `gap` event; resolves when the
 * server ends the stream, rejects on error or abort.
 */
async function readSSE(path, { onData, onGap, signal }) {
  const res = await authFetch(path, { signal, headers: { Accept: 'text/event-stream' } });
  if (!res.ok) {
    let json = null;
    try { json = await res.json(); } catch (_) { json = null; }
    throw new ApiFailure(res.status, json);
  }
  const reader = res.body.pipeThrough(new TextDecoderStream()).getReader();
  let buf = '';
  let ev = { name: 'message', data: [], id: null };
  for (;;) {
    const { value, done } = await reader.read();
    if (done) return;
    buf += value;
    // Walk the chunk with an index and cut it once: slicing the rest after each line
    // would copy a burst's chunk once per line.
    let at = 0;
    let nl;
    while ((nl = buf.indexOf('\n', at)) >= 0) {
      let line = buf.slice(at, nl);
      at = nl + 1;
      if (line.endsWith('\r')) line = line.slice(0, -1);
      if (line === '') {
        if (ev.data.length) {
          let obj = null;
          try { obj = JSON.parse(ev.data.join('\n')); } catch (_) { obj = null; }
          if (obj && ev.name === 'gap') onGap && onGap(obj.gap);
          else if (obj) onData(obj, ev.id);
        }
        ev = { name: 'message', data: [], id: null };
        continue;
      }
      if (line[0] === ':') continue;
      const colon = line.indexOf(':');
      const field = colon < 0 ? line : line.slice(0, colon);
      let val = colon < 0 ? '' : line.slice(colon + 1);
      if (val[0] === ' ') val = val.slice(1);
      if (field === 'data') ev.data.push(val);
      else if (field === 'event') ev.name = val;
      else if (field === 'id') ev.id = val;
    }
    buf = buf.slice(at);
  }
}

// ---------------------------------------------------------------- model

const services = new Map(); // id → state object as the API gives it
let order = []; // ids in definition order
const history = new Map(); // id → {cpu: [], rss: []}
const cards = new Map(); // id → {el, sig}
const outcomes = new Map(); // id → {text, ok, pending}
let runtimeState = '…';
// Cards whose content may have changed since the last frame; the others are not rebuilt
// (what keeps a burst of 1000 events from freezing a page of 1000 cards).
const dirty = new Set();
let fullRender = true; // rebuild every card (the first render)
let samplesMoved = false; // a periodic re-read moved uptimes and sparklines: rebuild the
// cards on screen now, the others when they scroll into view
const onScreen = new Set();
const visibility = new IntersectionObserver((entries) => {
  for (const entry of entries) {
    const id = entry.target.dataset.id;
    if (!entry.isIntersecting) { onScreen.delete(id); continue; }
    onScreen.add(id);
    const c = cards.get(id);
    if (c && c.stale) { dirty.add(id); scheduleRender(); }
  }
});
let relayout = true; // re-sort and re-filter every card (a filter, the sort or the set changed)
let lastRender = 0;
let usageLoaded = false; // the server's samples are in `history` (tests read the mark)

function setState(id, s) {
  services.set(id, s);
  dirty.add(id);
}

function setOutcome(id, o) {
  outcomes.set(id, o);
  dirty.add(id);
  scheduleRender();
}
let lastSeenSeq = 0; // the newest event seq reflected in `services`

/** The colour class of a state: status and health together. */
function tone(s) {
  switch (s.status) {
    case 'running': return s.health === 'unhealthy' ? 'unhealthy' : 'ok';
    case 'pending': case 'installing': case 'starting': case 'stopping': return 'starting';
    case 'exited': return s.last_exit && s.last_exit.code === 0 ? 'done' : 'failed';
    default: return s.status; // backoff, paused, stopped, failed
  }
}

/** The status in words (never colour alone). */
function statusWords(s) {
  let words = s.status;
  if (s.status === 'running' && s.health !== 'unknown') words += ` · ${s.health}`;
  if (s.status === 'exited' && s.last_exit) words += ` · ${exitWords(s.last_exit)}`;
  return words;
}

function exitWords(e) {
  if (!e) return '—';
  return e.signal ? e.signal : `code ${e.code}`;
}

function uptime(s) {
  if (!s.started_at || !['running', 'paused', 'stopping'].includes(s.status)) return '—';
  let secs = Math.max(0, Math.floor((Date.now() - Date.parse(s.started_at)) / 1000));
  const d = Math.floor(secs / 86400); secs %= 86400;
  const h = Math.floor(secs / 3600); secs %= 3600;
  const m = Math.floor(secs / 60); secs %= 60;
  if (d) return `${d}d ${h}h`;
  if (h) return `${h}h ${m}m`;
  if (m) return `${m}m ${secs}s`;
  return `${secs}s`;
}

function bytes(n) {
  if (n == null) return '—';
  const units = ['B', 'KiB', 'MiB', 'GiB'];
  let i = 0;
  while (n >= 1024 && i < units.length - 1) { n /= 1024; i++; }
  return `${n.toFixed(i ? 1 : 0)} ${units[i]}`;
}

function sample(s) {
  let h = history.get(s.id);
  if (!h) { h = { cpu: [], rss: [] }; history.set(s.id, h); }
  h.cpu.push(s.cpu_percent ?? 0);
  h.rss.push(s.rss_bytes ?? 0);
  if (h.cpu.length > HISTORY) { h.cpu.shift(); h.rss.shift(); }
}

function sparkline(values, label) {
  if (!values || values.length < 2) return '';
  const max = Math.max(...values, 1e-9);
  const w = 60; const hgt = 14;
  const pts = values.map((v, i) => `${(i * w / (values.length - 1)).toFixed(1)},${(hgt - (v / max) * hgt).toFixed(1)}`);
  return `<svg class="spark" viewBox="0 0 ${w} ${hgt}" width="${w}" height="${hgt}" role="img" aria-label="${esc(label)}"><polyline points="${pts.join(' ')}"/></svg>`;
}

/**
 * Applies the list answer: the truth for every field. `withSample` adds the CPU and
 * memory sample to the sparklines (the periodic read does; reads after events do not).
 */
function applyList(list, withSample) {
  const seen = new Set();
  const ids = list.map((s) => s.id);
  if (ids.length !== order.length || ids.some((id, i) => id !== order[i])) relayout = true;
  order = ids;
  for (const s of list) {
    seen.add(s.id);
    const old = services.get(s.id);
    if (!old || JSON.stringify(old) !== JSON.stringify(s)) setState(s.id, s);
    if (withSample) sample(s);
  }
  if (withSample) samplesMoved = true;
  for (const id of [...services.keys()]) {
    if (!seen.has(id)) { services.delete(id); history.delete(id); relayout = true; }
  }
  refreshTagOptions();
  scheduleRender();
}

/** What an event says about a state, applied at once (the list re-read confirms it). */
const KIND_STATUS = {
  installing: 'installing', starting: 'starting', started: 'running', ready: 'running',
  paused: 'paused', resumed: 'running', stopping: 'stopping', stopped: 'stopped',
  exited: 'exited', backoff: 'backoff', failed: 'failed', restarting: 'starting',
};

function applyEvent(e) {
  const s = services.get(e.service);
  if (!s) return;
  const next = Object.assign({}, s);
  if (KIND_STATUS[e.kind]) next.status = KIND_STATUS[e.kind];
  if (e.kind === 'started') { next.pid = e.pid ?? next.pid; next.started_at = e.ts; next.notify_status = null; }
  if (e.kind === 'exited') {
    next.pid = null;
    next.notify_status = null;
    next.last_exit = { code: e.exit_code ?? null, signal: e.signal ?? null, at: e.ts };
  }
  if (e.kind === 'health_changed' && e.health) next.health = e.health;
  if (e.cause) next.reason = e.cause;
  setState(e.service, next);
}

// ---------------------------------------------------------------- rendering

const view = { search: '', status: '', tag: '', sort: 'definition' };
let renderQueued = false;

/** At most one render per 100 ms: a burst of events costs a few frames, not one each. */
function scheduleRender() {
  if (renderQueued) return;
  renderQueued = true;
  const wait = Math.max(0, 100 - (performance.now() - lastRender));
  setTimeout(() => requestAnimationFrame(() => { renderQueued = false; render(); }), wait);
}

function matches(s) {
  if (view.status && tone(s) !== view.status && s.status !== view.status) return false;
  if (view.tag && !(s.tags || []).includes(view.tag)) return false;
  if (view.search) {
    const hay = `${s.id} ${s.name} ${s.reason ?? ''} ${s.notify_status ?? ''} ${(s.tags || []).join(' ')} ${s.status}`.toLowerCase();
    if (!hay.includes(view.search)) return false;
  }
  return true;
}

const SORTS = {
  definition: null,
  id: (a, b) => a.id.localeCompare(b.id),
  status: (a, b) => a.status.localeCompare(b.status) || a.id.localeCompare(b.id),
  cpu: (a, b) => (b.cpu_percent ?? -1) - (a.cpu_percent ?? -1),
  rss: (a, b) => (b.rss_bytes ?? -1) - (a.rss_bytes ?? -1),
  restarts: (a, b) => b.restart_count - a.restart_count,
};

function actionsFor(s) {
  const live = ['running', 'starting', 'stopping', 'paused', 'installing'].includes(s.status);
  const list = [];
  if (!live) list.push('start');
  if (live) list.push('stop');
  list.push('restart');
  if (live) list.push('kill');
  if (s.status === 'running') list.push('pause');
  if (s.status === 'paused') list.push('resume');
  return list;
}

function cardHTML(s) {
  const h = history.get(s.id) || { cpu: [], rss: [] };
  const out = outcomes.get(s.id);
  const buttons = actionsFor(s).map((a) => {
    const pending = out && out.pending === a;
    return `<button type="button" data-act="${a}"${pending ? ' disabled class="pending"' : ''}>${pending ? `${a}…` : a}</button>`;
  }).join('');
  const name = s.name && s.name !== s.id ? `<span class="name">${esc(s.name)}</span>` : '';
  return `<div class="card-head"><h3>${esc(s.id)}</h3>${name}<span class="status">${esc(statusWords(s))}</span></div>
<dl>
<div><dt>pid</dt><dd class="pid">${s.pid ?? (s.kind === 'function' ? 'function' : '—')}</dd></div>
<div><dt>uptime</dt><dd>${uptime(s)}</dd></div>
<div><dt>restarts</dt><dd class="restarts">${s.restart_count}</dd></div>
<div><dt>last exit</dt><dd>${esc(exitWords(s.last_exit))}</dd></div>
<div><dt>CPU</dt><dd>${s.cpu_percent == null ? '—' : `${s.cpu_percent.toFixed(1)} %`} ${sparkline(h.cpu, 'CPU history')}</dd></div>
<div><dt>memory</dt><dd>${bytes(s.rss_bytes)} ${sparkline(h.rss, 'memory history')}</dd></div>
</dl>
<ul class="tags">${(s.tags || []).map((t) => `<li>${esc(t)}</li>`).join('')}</ul>
<p class="reason" title="the cause of the last transition">${esc(s.reason ?? '')}</p>
${s.notify_status ? `<p class="notify-status" title="what the service says about itself (STATUS= over its notify socket)">${esc(s.notify_status)}</p>` : ''}
<div class="actions" role="group" aria-label="control ${esc(s.id)}">${buttons}
<button type="button" data-open="logs">logs</button><button type="button" data-open="explain">explain</button><button type="button" data-open="definition">definition</button></div>
<p class="outcome ${out ? (out.ok ? 'ok' : 'bad') : ''}" role="status">${esc(out ? out.text : '')}</p>`;
}

/** Brings one card up to date (built when new; content rebuilt when `rebuild`). */
function updateCard(s, rebuild) {
  let c = cards.get(s.id);
  if (!c) {
    const el = document.createElement('article');
    el.className = 'card';
    el.dataset.id = s.id;
    c = { el, sig: '', stale: false };
    cards.set(s.id, c);
    visibility.observe(el);
    rebuild = true;
  }
  if (rebuild) {
    c.stale = false;
    const html = cardHTML(s);
    if (c.sig !== html) {
      c.el.innerHTML = html;
      c.sig = html;
    }
    if (c.el.dataset.status !== s.status) c.el.dataset.status = s.status;
    const cls = `card tone-${tone(s)}`;
    if (c.el.className !== cls) c.el.className = cls;
  }
  const show = matches(s);
  if (c.el.hidden === show) c.el.hidden = !show;
  return c;
}

function render() {
  lastRender = performance.now();
  const box = $('#services');
  const counts = {};
  let shown = 0;
  let total = 0;
  for (const id of order) {
    const s = services.get(id);
    if (!s) continue;
    total++;
    counts[s.status] = (counts[s.status] || 0) + 1;
    if (matches(s)) shown++;
  }
  if (samplesMoved) {
    samplesMoved = false;
    for (const [id, c] of cards) {
      if (onScreen.has(id)) dirty.add(id);
      else c.stale = true;
    }
  }
  // The fast path of a burst: only the cards events touched, in place.
  const orderFixed = view.sort === 'definition' || view.sort === 'id';
  if (!fullRender && !relayout && orderFixed && box.children.length === total) {
    for (const id of dirty) {
      const s = services.get(id);
      if (s) updateCard(s, true);
    }
    dirty.clear();
    renderHeader(counts, shown, total);
    return;
  }
  let list = order.map((id) => services.get(id)).filter(Boolean);
  const sorter = SORTS[view.sort];
  if (sorter) list = list.slice().sort(sorter);
  const wanted = list.map((s) => updateCard(s, fullRender || dirty.has(s.id)).el);
  dirty.clear();
  fullRender = false;
  relayout = false;
  for (const [id, c] of cards) {
    if (!services.has(id)) { visibility.unobserve(c.el); c.el.remove(); cards.delete(id); onScreen.delete(id); }
  }
  // Re-order only when the order changed (appending moves an element).
  const current = box.children;
  let same = current.length === wanted.length;
  for (let i = 0; same && i < wanted.length; i++) same = current[i] === wanted[i];
  if (!same) {
    const frag = document.createDocumentFragment();
    for (const el of wanted) frag.appendChild(el);
    box.appendChild(frag);
  }
  renderHeader(counts, shown, list.length);
}

let lastCounts = '';

function renderHeader(counts, shown, total) {
  const html = Object.keys(counts).sort()
    .map((k) => `<li class="count tone-${k}" data-count="${k}">${esc(k)} <b>${counts[k]}</b></li>`).join('');
  if (html !== lastCounts) { $('#counts').innerHTML = html; lastCounts = html; }
  $('#shown').textContent = `${shown} of ${total} shown`;
  $('#runtime').textContent = `runtime ${runtimeState}`;
  $('#runtime').dataset.state = runtimeState;
  if (graphOpen) renderGraphStatus();
  document.body.dataset.rendered = String(total);
  if (usageLoaded) document.body.dataset.usage = 'drawn';
  // bench/dashboard.py reads this mark: navigation start → every card on the page.
  if (total && !performance.getEntriesByName('steward:first-render').length) {
    performance.mark('steward:first-render');
  }
}

function refreshTagOptions() {
  const tags = new Set();
  for (const s of services.values()) for (const t of s.tags || []) tags.add(t);
  const sel = $('#tag-filter');
  const have = new Set([...sel.options].map((o) => o.value));
  for (const t of [...tags].sort()) {
    if (!have.has(t)) sel.add(new Option(t, t));
  }
}

function initStatusOptions() {
  const sel = $('#status-filter');
  for (const st of ['running', 'unhealthy', 'starting', 'backoff', 'paused', 'stopped', 'exited', 'failed']) {
    sel.add(new Option(st, st));
  }
}

// ---------------------------------------------------------------- confirm dialog

function confirmOnce(text, okLabel = 'OK') {
  return new Promise((resolve) => {
    const dialog = $('#confirm-dialog');
    $('#confirm-text').textContent = text;
    $('#confirm-ok').textContent = okLabel;
    dialog.returnValue = '';
    dialog.addEventListener('close', () => resolve(dialog.returnValue === 'ok'), { once: true });
    dialog.showModal();
  });
}

// ---------------------------------------------------------------- control

const DESTRUCTIVE = { stop: 'Stop', kill: 'Kill (SIGKILL)', restart: 'Restart' };

async function control(id, act) {
  if (DESTRUCTIVE[act] && !(await confirmOnce(`${DESTRUCTIVE[act]} ${id}?`, DESTRUCTIVE[act]))) return;
  setOutcome(id, { pending: act, text: `${act} pending…`, ok: true });
  const path = `/api/v1/services/${encodeURIComponent(id)}/${act}`;
  try {
    let state;
    try {
      state = await api('POST', path);
    } catch (err) {
      const deps = err.body && err.body.dependents;
      if (!(act === 'stop' && err.code === 'conflict' && deps && deps.length)) throw err;
      const ok = await confirmOnce(
        `${id} is needed by running ${deps.join(', ')}. Stop ${deps.length > 1 ? 'them' : 'it'} first, then ${id} (cascade)?`,
        'Stop all of them');
      if (!ok) { setOutcome(id, { text: 'not stopped: dependents still run', ok: false }); return; }
      state = await api('POST', `${path}?cascade=true`);
    }
    setState(id, Object.assign({}, services.get(id), state));
    const also = (state.also_stopped || []).map((x) => x.id);
    for (const x of state.also_stopped || []) setState(x.id, Object.assign({}, services.get(x.id), x));
    const pid = state.pid ? ` (pid ${state.pid})` : '';
    setOutcome(id, { text: `✓ ${act}: ${state.status}${pid}${also.length ? `; also stopped ${also.join(', ')}` : ''}`, ok: true });
  } catch (err) {
    setOutcome(id, { text: `✗ ${act} failed: ${err.message}`, ok: false });
  }
  scheduleRender();
  refreshSoon();
}

async function runtimeAction(verb) {
  if ((verb === 'stop' || verb === 'pause') && !(await confirmOnce(`${verb === 'stop' ? 'Stop' : 'Pause'} every service?`, `${verb} all`))) return;
  const out = $('#runtime-outcome');
  out.className = 'outcome';
  out.textContent = `${verb} all pending…`;
  try {
    const answer = await api('POST', `/api/v1/lifecycle/${verb}`);
    const failed = answer.results.filter((r) => !r.ok);
    runtimeState = answer.runtime;
    out.className = `outcome ${failed.length ? 'bad' : 'ok'}`;
    out.textContent = `✓ ${verb} all: ${answer.results.length - failed.length} ok` +
      (failed.length ? `; refused: ${failed.map((r) => `${r.id} (${r.error.message})`).join('; ')}` : '');
  } catch (err) {
    out.className = 'outcome bad';
    out.textContent = `✗ ${verb} all failed: ${err.message}`;
  }
  refreshSoon();
}

// ---------------------------------------------------------------- reload

async function reloadPlan() {
  const dialog = $('#reload-dialog');
  const plan = $('#reload-plan');
  const apply = $('#reload-apply');
  $('#reload-outcome').textContent = '';
  plan.innerHTML = '<p class="muted">asking for the plan…</p>';
  apply.disabled = true;
  dialog.showModal();
  try {
    const answer = await api('POST', '/api/v1/reload?dry_run=true');
    plan.innerHTML = planTable(answer.entries);
    apply.disabled = false;
  } catch (err) {
    plan.innerHTML = errorHTML(err);
  }
}

function planTable(entries) {
  if (!entries.length) return '<p>No service is in the files.</p>';
  return `<table class="plan"><thead><tr><th>service</th><th>action</th><th>why</th></tr></thead><tbody>${
    entries.map((e) => `<tr data-plan="${esc(e.id)}" class="act-${esc(e.action)}"><td>${esc(e.id)}</td><td>${esc(e.action)}</td><td>${esc(e.why)}</td></tr>`).join('')
  }</tbody></table>`;
}

function errorHTML(err) {
  const details = (err.body && err.body.details) || [];
  return `<p class="error">${esc(err.message)}</p>${details.length ? `<ul class="error">${details.map((d) =>
    `<li>${esc(d.file ? `${d.file}:${d.line}:${d.column}: ` : '')}${esc(d.message)}${d.hint ? ` (${esc(d.hint)})` : ''}</li>`).join('')}</ul>` : ''}`;
}

async function reloadApply() {
  const apply = $('#reload-apply');
  const out = $('#reload-outcome');
  apply.disabled = true;
  out.className = 'outcome';
  out.textContent = 'applying…';
  try {
    const answer = await api('POST', '/api/v1/reload');
    $('#reload-plan').innerHTML = planTable(answer.entries);
    out.className = 'outcome ok';
    out.textContent = '✓ applied';
  } catch (err) {
    out.className = 'outcome bad';
    out.innerHTML = errorHTML(err);
  }
  refreshSoon();
}

// ---------------------------------------------------------------- live updates

let refreshTimer = null;
function refreshSoon() {
  if (refreshTimer) return;
  refreshTimer = setTimeout(() => { refreshTimer = null; refresh(false); }, 400);
}

async function refresh(withSample) {
  try {
    const [status, list] = await Promise.all([api('GET', '/api/v1/status'), api('GET', '/api/v1/services')]);
    runtimeState = status.state;
    lastSeenSeq = Math.max(lastSeenSeq, status.last_event_seq);
    applyList(list.services, withSample);
  } catch (err) {
    $('#conn').textContent = `error: ${err.message}`;
  }
}

const timeline = []; // newest last
let timelineDirty = false;

function pushEvent(e) {
  timeline.push(e);
  if (timeline.length > MAX_EVENTS) timeline.shift();
  timelineDirty = true;
}

async function followEvents() {
  let since = 0;
  for (;;) {
    try {
      $('#conn').textContent = 'live';
      $('#conn').dataset.live = 'true';
      await readSSE(`/api/v1/events?since=${since}`, {
        onData: (e) => {
          since = e.seq;
          pushEvent(e);
          if (e.seq > lastSeenSeq) {
            applyEvent(e);
            refreshSoon(); // one list read per burst, for what events do not carry
            scheduleRender();
          }
          if (timelineDirty && !eventsFrame) eventsFrame = requestAnimationFrame(renderEvents);
        },
        onGap: (n) => { pushEvent({ gap: n }); refreshSoon(); },
      });
    } catch (err) {
      if (err.name === 'AbortError') return;
    }
    $('#conn').textContent = 'reconnecting';
    $('#conn').dataset.live = 'false';
    await new Promise((r) => setTimeout(r, 1000));
  }
}

let eventsFrame = 0;
function renderEvents() {
  eventsFrame = 0;
  if (!timelineDirty || $('#tab-events').hidden) return;
  timelineDirty = false;
  const want = $('#events-filter').value.trim().toLowerCase();
  const rows = [];
  for (let i = timeline.length - 1; i >= 0; i--) {
    const e = timeline[i];
    if (e.gap != null) { rows.push(`<li class="gap">— ${e.gap} event(s) lost —</li>`); continue; }
    if (want && !e.service.toLowerCase().includes(want)) continue;
    const extra = [];
    if (e.pid != null) extra.push(`pid ${e.pid}`);
    if (e.exit_code != null) extra.push(`exit code ${e.exit_code}`);
    if (e.signal) extra.push(e.signal);
    if (e.health) extra.push(e.health);
    if (e.delay_ms != null) extra.push(`in ${e.delay_ms} ms`);
    if (e.dropped != null) extra.push(`${e.dropped} dropped`);
    rows.push(`<li data-kind="${esc(e.kind)}"><time>${esc(e.ts.slice(11, 23))}</time> <b class="svc">${esc(e.service)}</b> <span class="kind">${esc(e.kind)}</span> ${esc(extra.join(', '))}${e.cause ? ` <span class="cause">← ${esc(e.cause)}</span>` : ''}</li>`);
  }
  $('#events').innerHTML = rows.join('');
}

// ---------------------------------------------------------------- detail: logs, explain, definition

const logs = { id: null, lines: [], lastSeq: 0, abort: null, paused: false, dirty: false };

function openDetail(id, which) {
  const panel = $('#detail');
  panel.hidden = false;
  panel.dataset.id = id;
  $('#detail-title').textContent = id;
  showDetail(which);
}

function showDetail(which) {
  const id = $('#detail').dataset.id;
  for (const k of ['logs', 'explain', 'definition']) {
    $(`#detail-${k}`).hidden = k !== which;
    $(`[data-detail="${k}"]`).setAttribute('aria-pressed', String(k === which));
  }
  if (which === 'logs') startLogs(id);
  else stopLogs();
  if (which === 'explain') loadExplain(id);
  if (which === 'definition') loadDefinition(id);
}

function closeDetail() {
  stopLogs();
  $('#detail').hidden = true;
}

function stopLogs() {
  if (logs.abort) logs.abort.abort();
  logs.abort = null;
}

function startLogs(id) {
  if (logs.id !== id) {
    stopLogs();
    Object.assign(logs, { id, lines: [], lastSeq: 0, paused: false });
    $('#log-lines').innerHTML = '';
  }
  if (logs.abort || logs.paused) return;
  followLogs();
}

async function followLogs() {
  const id = logs.id;
  const abort = new AbortController();
  logs.abort = abort;
  const query = logs.lastSeq ? `since=${logs.lastSeq}` : 'tail=200';
  $('#log-state').textContent = 'following';
  $('#log-pause').textContent = 'Pause';
  try {
    await readSSE(`/api/v1/services/${encodeURIComponent(id)}/logs?follow=true&${query}`, {
      signal: abort.signal,
      onData: (l) => { logs.lastSeq = Math.max(logs.lastSeq, l.seq); addLogLine(l); },
      onGap: (n) => addLogLine({ gap: n }),
    });
    if (logs.abort === abort) $('#log-state').textContent = 'stream ended';
  } catch (err) {
    if (err.name !== 'AbortError' && logs.abort === abort) $('#log-state').textContent = `error: ${err.message}`;
  }
  if (logs.abort === abort) logs.abort = null;
}

function addLogLine(l) {
  logs.lines.push(l);
  if (logs.lines.length > MAX_LOG_LINES) logs.lines.shift();
  if (!logs.dirty) { logs.dirty = true; requestAnimationFrame(renderLogs); }
}

function highlight(text, term) {
  if (!term) return esc(text);
  const lower = text.toLowerCase();
  let out = ''; let at = 0; let i;
  while ((i = lower.indexOf(term, at)) >= 0) {
    out += `${esc(text.slice(at, i))}<mark>${esc(text.slice(i, i + term.length))}</mark>`;
    at = i + term.length;
  }
  return out + esc(text.slice(at));
}

function renderLogs() {
  logs.dirty = false;
  const box = $('#log-lines');
  const term = $('#log-search').value.toLowerCase();
  const showOut = $('#log-stdout').checked; const showErr = $('#log-stderr').checked;
  const atBottom = box.scrollTop + box.clientHeight >= box.scrollHeight - 4;
  box.innerHTML = logs.lines.map((l) => {
    if (l.gap != null) return `<li class="gap">— ${l.gap} line(s) lost —</li>`;
    if ((l.stream === 'stdout' && !showOut) || (l.stream === 'stderr' && !showErr)) return '';
    const cut = l.truncated ? ' <span class="cut" title="line over 16 KiB, cut">[truncated]</span>' : '';
    return `<li class="${l.stream}${l.truncated ? ' truncated' : ''}" data-seq="${l.seq}"><span class="seq">${l.seq}</span><span class="stream">${l.stream === 'stderr' ? 'err' : 'out'}</span>${highlight(l.line, term)}${cut}</li>`;
  }).join('');
  if (atBottom) box.scrollTop = box.scrollHeight;
}

function toggleLogPause() {
  if (logs.paused) {
    logs.paused = false;
    followLogs(); // resumes with since=lastSeq: nothing is lost (or a gap says how much)
  } else {
    logs.paused = true;
    stopLogs();
    $('#log-state').textContent = `paused after line ${logs.lastSeq}`;
    $('#log-pause').textContent = 'Resume';
  }
}

function downloadLogs() {
  const text = logs.lines.map((l) => (l.gap != null ? `--- ${l.gap} line(s) lost ---`
    : `${l.ts} ${l.stream} ${l.line}`)).join('\n') + '\n';
  const a = document.createElement('a');
  a.href = URL.createObjectURL(new Blob([text], { type: 'text/plain' }));
  a.download = `${logs.id}.log`;
  document.body.appendChild(a);
  a.click();
  a.remove();
  setTimeout(() => URL.revokeObjectURL(a.href), 1000);
}

async function loadExplain(id) {
  const box = $('#detail-explain');
  box.innerHTML = '<p class="muted">loading…</p>';
  try {
    const x = await api('GET', `/api/v1/services/${encodeURIComponent(id)}/explain`);
    const probes = Object.entries(x.probes || {}).filter(([, v]) => v)
      .map(([k, v]) => `<li><b>${esc(k)}</b> ${esc(JSON.stringify(v))}</li>`).join('') || '<li class="muted">no probes</li>';
    box.innerHTML = `<p class="summary">${esc(x.summary)}</p>
<h3>Probes</h3><ul>${probes}</ul>
<h3>Recent events</h3><ol class="events">${(x.events || []).map((e) =>
  `<li><time>${esc(e.ts.slice(11, 23))}</time> <span class="kind">${esc(e.kind)}</span>${e.exit_code != null ? ` exit code ${e.exit_code}` : ''}${e.signal ? ` ${esc(e.signal)}` : ''}${e.cause ? ` <span class="cause">← ${esc(e.cause)}</span>` : ''}</li>`).join('')}</ol>
<h3>Last lines</h3><ol class="log-lines">${(x.logs || []).map((l) => `<li class="${esc(l.stream)}">${esc(l.line)}</li>`).join('')}</ol>`;
  } catch (err) {
    box.innerHTML = errorHTML(err);
  }
}

async function loadDefinition(id) {
  const box = $('#detail-definition');
  box.innerHTML = '<p class="muted">loading…</p>';
  try {
    const x = await api('GET', `/api/v1/services/${encodeURIComponent(id)}`);
    const d = x.definition || {};
    box.innerHTML = `<p>From <code class="source">${esc(d.source_file || 'the API (no file)')}</code>; secrets are shown as <code>***</code>.</p><pre class="definition">${esc(JSON.stringify(d, null, 2))}</pre>`;
  } catch (err) {
    box.innerHTML = errorHTML(err);
  }
}

// ---------------------------------------------------------------- dependency graph

let graphOpen = false;
const graphDeps = new Map(); // id → {dep: condition}

async function loadGraph() {
  const box = $('#graph');
  box.innerHTML = '<p class="muted">reading definitions…</p>';
  const ids = order.slice();
  let next = 0;
  const worker = async () => {
    while (next < ids.length) {
      const id = ids[next++];
      try {
        const x = await api('GET', `/api/v1/services/${encodeURIComponent(id)}`);
        graphDeps.set(id, (x.definition && x.definition.depends_on) || {});
      } catch (_) { graphDeps.set(id, {}); }
    }
  };
  await Promise.all(Array.from({ length: 6 }, worker));
  drawGraph();
}

function drawGraph() {
  const ids = order.filter((id) => services.has(id));
  const depth = new Map();
  const depthOf = (id, seen = new Set()) => {
    if (depth.has(id)) return depth.get(id);
    if (seen.has(id)) return 0;
    seen.add(id);
    const deps = Object.keys(graphDeps.get(id) || {}).filter((d) => services.has(d));
    const d = deps.length ? 1 + Math.max(...deps.map((x) => depthOf(x, seen))) : 0;
    depth.set(id, d);
    return d;
  };
  const layers = [];
  for (const id of ids) { const d = depthOf(id); (layers[d] = layers[d] || []).push(id); }
  const W = 150; const H = 40; const GX = 70; const GY = 16;
  const pos = new Map();
  layers.forEach((layer, x) => layer.forEach((id, y) => pos.set(id, { x: 10 + x * (W + GX), y: 10 + y * (H + GY) })));
  const width = 20 + layers.length * (W + GX);
  const height = 20 + Math.max(1, ...layers.map((l) => l.length)) * (H + GY);
  const edges = [];
  for (const id of ids) {
    for (const [dep, cond] of Object.entries(graphDeps.get(id) || {})) {
      const a = pos.get(id); const b = pos.get(dep);
      if (!a || !b) continue;
      const x1 = a.x; const y1 = a.y + H / 2; const x2 = b.x + W; const y2 = b.y + H / 2;
      edges.push(`<path class="edge" d="M${x1},${y1} C${x1 - GX / 2},${y1} ${x2 + GX / 2},${y2} ${x2},${y2}" marker-end="url(#arrow)"><title>${esc(id)} waits for ${esc(dep)} (${esc(cond)})</title></path>`);
    }
  }
  const nodes = ids.map((id) => {
    const p = pos.get(id);
    return `<g class="node" data-node="${esc(id)}" tabindex="0" role="button" transform="translate(${p.x},${p.y})"><rect width="${W}" height="${H}" rx="6"/><text x="8" y="16" class="nid">${esc(id)}</text><text x="8" y="32" class="nstatus"></text></g>`;
  }).join('');
  $('#graph').innerHTML = `<svg xmlns="http://www.w3.org/2000/svg" width="${width}" height="${height}" viewBox="0 0 ${width} ${height}" role="img" aria-label="dependency graph">
<defs><marker id="arrow" viewBox="0 0 10 10" refX="10" refY="5" markerWidth="7" markerHeight="7" orient="auto-start-reverse"><path d="M0,0 L10,5 L0,10 z"/></marker></defs>${edges.join('')}${nodes}</svg>`;
  renderGraphStatus();
}

function renderGraphStatus() {
  for (const g of document.querySelectorAll('#graph .node')) {
    const s = services.get(g.dataset.node);
    if (!s) continue;
    g.setAttribute('class', `node tone-${tone(s)}`);
    g.dataset.status = s.status;
    g.querySelector('.nstatus').textContent = statusWords(s);
  }
}

// ---------------------------------------------------------------- wiring

function showTab(name) {
  for (const b of document.querySelectorAll('[data-tab]')) b.setAttribute('aria-selected', String(b.dataset.tab === name));
  for (const t of ['services', 'events', 'graph']) $(`#tab-${t}`).hidden = t !== name;
  graphOpen = name === 'graph';
  if (graphOpen) loadGraph();
  if (name === 'events') { timelineDirty = true; renderEvents(); }
}

function wire() {
  initStatusOptions();
  $('#forget-token').hidden = !token;
  $('#forget-token').addEventListener('click', () => {
    localStorage.removeItem(TOKEN_KEY);
    token = null;
    location.reload();
  });
  $('#services').addEventListener('click', (ev) => {
    const btn = ev.target.closest('button');
    const card = ev.target.closest('.card');
    if (!btn || !card) return;
    if (btn.dataset.act) control(card.dataset.id, btn.dataset.act);
    if (btn.dataset.open) openDetail(card.dataset.id, btn.dataset.open);
  });
  for (const b of document.querySelectorAll('[data-runtime]')) b.addEventListener('click', () => runtimeAction(b.dataset.runtime));
  $('#reload-btn').addEventListener('click', reloadPlan);
  $('#reload-apply').addEventListener('click', reloadApply);
  $('#search').addEventListener('input', (e) => { view.search = e.target.value.trim().toLowerCase(); relayout = true; scheduleRender(); });
  $('#status-filter').addEventListener('change', (e) => { view.status = e.target.value; relayout = true; scheduleRender(); });
  $('#tag-filter').addEventListener('change', (e) => { view.tag = e.target.value; relayout = true; scheduleRender(); });
  $('#sort').addEventListener('change', (e) => { view.sort = e.target.value; relayout = true; scheduleRender(); });
  $('#rows-view').addEventListener('change', (e) => $('#services').classList.toggle('rows', e.target.checked));
  for (const b of document.querySelectorAll('[data-tab]')) b.addEventListener('click', () => showTab(b.dataset.tab));
  $('#events-filter').addEventListener('input', () => { timelineDirty = true; renderEvents(); });
  for (const b of document.querySelectorAll('[data-detail]')) b.addEventListener('click', () => showDetail(b.dataset.detail));
  $('#detail-close').addEventListener('click', closeDetail);
  $('#log-pause').addEventListener('click', toggleLogPause);
  $('#log-download').addEventListener('click', downloadLogs);
  for (const sel of ['#log-search', '#log-stdout', '#log-stderr']) $(sel).addEventListener('input', renderLogs);
  $('#graph').addEventListener('click', (ev) => {
    const g = ev.target.closest('.node');
    if (g) openDetail(g.dataset.node, 'explain');
  });
  $('#graph').addEventListener('keydown', (ev) => {
    const g = ev.target.closest('.node');
    if (g && (ev.key === 'Enter' || ev.key === ' ')) openDetail(g.dataset.node, 'explain');
  });
  document.addEventListener('keydown', (ev) => { if (ev.key === 'Escape' && !$('#detail').hidden) closeDetail(); });
}

/** Seeds the sparklines with the samples the server kept before the page opened. */
async function loadUsage() {
  try {
    const answer = await api('GET', '/api/v1/usage');
    for (const [id, samples] of Object.entries(answer.services)) {
      const recent = samples.slice(-HISTORY);
      history.set(id, { cpu: recent.map((x) => x.cpu_percent), rss: recent.map((x) => x.rss_bytes) });
    }
    fullRender = true; // once, at start: every card gets its past
    usageLoaded = true;
    scheduleRender();
  } catch (_) {
    // an older steward without the route: the sparklines start with the page
  }
}

async function main() {
  wire();
  // The cards first; the sparklines' past when it arrives.
  await Promise.all([refresh(true), loadUsage()]);
  followEvents();
  setInterval(() => refresh(true), REFRESH_MS);
}

main();
