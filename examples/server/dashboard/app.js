// The dashboard: sign in with a bearer token, then every second the counts
// by status (GET /stats/), the selected name's recent tasks and the open
// task; every few seconds the charts.  Triggers and cancels go through the
// same REST API.  Refusals are shown with the API's error document.

import { api, ApiError, paths, token, setToken, clearToken } from './api.js';
import {
  $, el, clear, show, STATUSES, ACTIVE, fmtTime, fmtDuration, duration,
  statusBadge, progressBar, setProgress, pretty,
} from './view.js';
import { drawFinished, drawDurations } from './charts.js';

const AMT = 10;            // tasks a page
const POLL_MS = 1000;      // the live parts
const CHART_EVERY = 5;     // polls between two chart refreshes
const CHART_AMT = 64;      // recent tasks a name the charts look at

// What the private names' jobs want in context_task (doc/http.md, "Example
// jobs"), to start from; the ML names need none.
const TEMPLATES = {
  data_import: { connection: 'LOCAL', table_name: 'input-myfile.csv' },
  reco_export: {
    input_table: { connection: 'LOCAL', name: 'users-whitelist-test.csv' },
    reco_params: { amt: 3 },
    output_table: { connection: 'LOCAL', name: 'out-recos.csv' },
  },
  user_id_whitelist_export: { output_table: { connection: 'LOCAL', name: 'user-ids.csv' } },
  analytics_report_export: { output_table: { connection: 'LOCAL', name: 'analytics_report.json' } },
};

const FIGURES = [
  ['queue_depth', 'waiting', (v) => String(v)],
  ['oldest_waiting_age_s', 'oldest waiting', fmtDuration],
  ['workers', 'workers', (v) => String(v)],
  ['workers_idle', 'idle workers', (v) => String(v)],
  ['commits', 'commits', (v) => String(v)],
  ['store_bytes', 'store', bytes],
];

const state = {
  session: 0,        // bumped at sign-in and sign-out: late answers are dropped
  timer: null,
  inflight: false,
  again: false,
  ticks: 0,
  names: [],
  name: null,        // the selected name
  page: 1,
  hasNext: false,
  detail: null,      // {name, id} of the open task
};

function bytes(n) {
  if (typeof n !== 'number') return '';
  const u = ['B', 'KiB', 'MiB', 'GiB', 'TiB'];
  let i = 0;
  while (n >= 1024 && i < u.length - 1) { n /= 1024; i++; }
  return (i ? n.toFixed(1) : String(n)) + ' ' + u[i];
}

// ---- errors ---------------------------------------------------------------

// "HTTP 401 AuthError UNAUTHORIZED" and the API's message, as text.
function describe(e) {
  if (!(e instanceof ApiError)) return { head: 'error', msg: String(e && e.message || e) };
  const head = e.status ? 'HTTP ' + e.status + (e.kind ? ' ' + e.kind : '') : 'no answer';
  return { head, msg: e.message };
}

function showError(box, e, what) {
  const d = describe(e);
  clear(box);
  box.append(el('strong', { class: 'head', text: (what ? what + ': ' : '') + d.head }), ' ',
    el('span', { class: 'msg', text: d.msg }));
  if (box.id === 'error') {
    show($('notice'), false);
    box.append(' ', el('button', {
      class: 'link dismiss', text: 'dismiss', attrs: { type: 'button' },
      on: { click: () => show(box, false) },
    }));
  }
  show(box, true);
}

function notice(text) {
  const box = $('notice');
  box.textContent = text;
  show(box, true);
  show($('error'), false);
}

function refused(e) {
  return e instanceof ApiError && (e.status === 401 || e.status === 403);
}

// ---- session ----------------------------------------------------------------

function showLogin(e) {
  show($('app'), false);
  show($('logout'), false);
  show($('login'), true);
  if (e) showError($('login-error'), e, 'sign-in refused');
  else show($('login-error'), false);
  $('token').focus();
}

function resetView() {
  clearTimeout(state.timer);
  Object.assign(state, {
    timer: null, inflight: false, again: false, ticks: 0, names: [], name: null,
    page: 1, hasNext: false, detail: null,
  });
  for (const id of ['figures', 'names-body', 'tasks-body', 'chart-finished', 'chart-durations']) clear($(id));
  for (const id of ['error', 'notice', 'poll-error', 'name-panel', 'detail']) show($(id), false);
  $('refreshed').textContent = '';
}

function signOut(e) {
  state.session++;
  clearToken();
  resetView();
  showLogin(e);
}

async function signIn(t) {
  const session = ++state.session;
  resetView();
  setToken(t);
  let stats;
  try {
    stats = await api('GET', paths.stats());
  } catch (e) {
    if (session === state.session) signOut(e);
    return;
  }
  if (session !== state.session) return;
  show($('login'), false);
  show($('login-error'), false);
  show($('app'), true);
  show($('logout'), true);
  renderStats(stats);
  schedule(0);
}

// ---- the poll loop ------------------------------------------------------------

function schedule(delay) {
  clearTimeout(state.timer);
  const session = state.session;
  state.timer = setTimeout(() => tick(session), delay);
}

async function tick(session) {
  if (session !== state.session) return;
  if (state.inflight) {
    state.again = true;
    return;
  }
  state.inflight = true;
  state.again = false;
  try {
    const jobs = [refreshStats(session), refreshTasks(session), refreshDetail(session)];
    if (state.ticks % CHART_EVERY === 0) jobs.push(refreshCharts(session));
    state.ticks++;
    await Promise.all(jobs);
    if (session === state.session) {
      show($('poll-error'), false);
      $('refreshed').textContent = 'updated ' + fmtTime(Date.now() / 1000).slice(11);
    }
  } catch (e) {
    if (session === state.session) {
      if (refused(e)) {
        state.inflight = false;
        signOut(e);
        return;
      }
      showError($('poll-error'), e, 'refresh failed');
    }
  } finally {
    if (session === state.session) state.inflight = false;
  }
  if (session === state.session) schedule(state.again ? 0 : POLL_MS);
}

function refreshNow() {
  schedule(0);
}

// ---- names and counts ---------------------------------------------------------

async function refreshStats(session) {
  const stats = await api('GET', paths.stats());
  if (session === state.session) renderStats(stats);
}

function renderStats(stats) {
  const fig = $('figures');
  clear(fig);
  for (const [key, label, fmt] of FIGURES) {
    if (!(key in stats)) continue;
    fig.append(el('div', { class: 'figure', attrs: { 'data-key': key } },
      el('dt', { text: label }), el('dd', { text: fmt(stats[key]) })));
  }
  const names = stats.names && typeof stats.names === 'object' ? stats.names : {};
  state.names = Object.keys(names).sort();
  const body = $('names-body');
  const rows = state.names.map((n) => nameRow(body, n, names[n]));
  place(body, rows);
  if (state.name === null && state.names.length) selectName(state.names[0]);
}

function nameRow(body, name, counts) {
  let tr = findRow(body, 'name', name);
  if (!tr) {
    tr = el('tr', { attrs: { 'data-name': name } },
      el('td', {}, el('button', {
        class: 'link pick', text: name, attrs: { type: 'button' },
        on: { click: () => selectName(name) },
      })));
    for (const s of STATUSES) tr.append(el('td', { class: 'num c-' + s }));
    tr.append(el('td', { class: 'num c-total' }));
    tr.append(el('td', { class: 'c-paused' }));
  }
  // A paused name (tm_pause) takes triggers but starts nothing.
  const paused = !!(counts && counts.paused === true);
  tr.querySelector('.c-paused').textContent = paused ? 'paused' : '';
  tr.classList.toggle('paused', paused);
  for (const s of [...STATUSES, 'total']) {
    const v = counts && typeof counts[s] === 'number' ? counts[s] : 0;
    const td = tr.querySelector('.c-' + s);
    td.textContent = String(v);
    td.classList.toggle('zero', v === 0);
  }
  tr.classList.toggle('selected', name === state.name);
  return tr;
}

function findRow(body, key, value) {
  for (const tr of body.children) if (tr.dataset[key] === value) return tr;
  return null;
}

// Put rows in order in body, moving only what is out of place (a moved
// button would lose the focus), and drop the others.
function place(body, rows) {
  rows.forEach((row, i) => {
    if (body.children[i] !== row) body.insertBefore(row, body.children[i] || null);
  });
  while (body.children.length > rows.length) body.lastElementChild.remove();
}

function selectName(name) {
  if (name !== state.name) {
    state.name = name;
    state.page = 1;
    state.hasNext = false;
    clear($('tasks-body'));
    const t = TEMPLATES[name];
    $('context').value = t ? pretty(t) : '';
    checkContext();
  }
  $('sel-name').textContent = name;
  for (const tr of $('names-body').children) tr.classList.toggle('selected', tr.dataset.name === name);
  show($('name-panel'), true);
  refreshNow();
}

// ---- a name's recent tasks ---------------------------------------------------

async function refreshTasks(session) {
  const name = state.name, page = state.page;
  if (name === null) return;
  const doc = await api('GET', paths.recents(name, page, AMT));
  if (session !== state.session || name !== state.name || page !== state.page) return;
  const tasks = Array.isArray(doc.tasks) ? doc.tasks : [];
  state.hasNext = doc.has_next === true;
  const body = $('tasks-body');
  place(body, tasks.map((t) => taskRow(body, name, t)));
  show($('no-tasks'), tasks.length === 0);
  $('page').textContent = 'page ' + page;
  $('prev').disabled = page <= 1;
  $('next').disabled = !state.hasNext;
}

function taskRow(body, name, t) {
  const id = String(t.task_id);
  let tr = findRow(body, 'id', id);
  if (!tr) {
    tr = el('tr', { attrs: { 'data-id': id } },
      el('td', {}, el('button', {
        class: 'link open mono', text: id, attrs: { type: 'button', title: 'details' },
        on: { click: () => openDetail(name, id) },
      })),
      el('td', { class: 'status' }),
      el('td', { class: 'prog' }, progressBar(), el('div', { class: 'ptext' })),
      el('td', { class: 'start' }), el('td', { class: 'end' }), el('td', { class: 'dur num' }),
      el('td', {}, el('button', {
        class: 'cancel danger', text: 'Cancel', attrs: { type: 'button' },
        on: { click: () => cancelTask(name, id) },
      })));
  }
  tr.querySelector('.status').replaceChildren(statusBadge(t.status), ...scheduling(t));
  setProgress(tr.querySelector('.bar'), t);
  tr.querySelector('.ptext').textContent = typeof t.progress === 'string' ? t.progress : '';
  stamp(tr.querySelector('.start'), t.start_time);
  stamp(tr.querySelector('.end'), t.details && t.details.end_time);
  tr.querySelector('.dur').textContent = fmtDuration(duration(t));
  tr.querySelector('.cancel').hidden = !ACTIVE.includes(t.status);
  tr.classList.toggle('selected', !!state.detail && state.detail.id === id);
  return tr;
}

// Beside the status: a priority other than 0, and the time a waiting task
// scheduled for later may start.
function scheduling(t) {
  const det = t.details || {};
  const tags = [];
  if (typeof det.priority === 'number' && det.priority !== 0) {
    tags.push(el('span', { class: 'tag prio', text: 'prio ' + det.priority }));
  }
  if (t.status === 'REQUEST_SENT' && typeof det.not_before === 'number' &&
      det.not_before * 1000 > Date.now()) {
    tags.push(el('span', {
      class: 'tag later', text: 'at ' + fmtTime(det.not_before).slice(11),
      attrs: { title: 'not before ' + fmtTime(det.not_before) },
    }));
  }
  return tags;
}

// The time of day in a cell, the whole date in its tooltip.
function stamp(td, t) {
  const full = fmtTime(t);
  td.textContent = full.slice(11);
  if (full) td.setAttribute('title', full);
  else td.removeAttribute('title');
}

// ---- one task -----------------------------------------------------------------

function openDetail(name, id) {
  state.detail = { name, id };
  $('d-id').textContent = id;
  $('d-name').textContent = name;
  for (const n of ['d-fields', 'd-warnings', 'd-error', 'd-payload', 'd-progress', 'd-other']) clear($(n));
  // A new fill: the old task's width must not slide into the new one's.
  $('d-bar').replaceChildren(el('div', { class: 'fill' }));
  show($('detail'), true);
  for (const tr of $('tasks-body').children) tr.classList.toggle('selected', tr.dataset.id === id);
  refreshNow();
}

function closeDetail() {
  state.detail = null;
  show($('detail'), false);
  for (const tr of $('tasks-body').children) tr.classList.remove('selected');
}

async function refreshDetail(session) {
  const d = state.detail;
  if (d === null) return;
  let t;
  try {
    t = await api('GET', paths.task(d.name, d.id));
  } catch (e) {
    if (!(e instanceof ApiError) || e.status !== 404) throw e;
    if (session === state.session && state.detail === d) {
      showError($('error'), e, 'task ' + d.id);
      closeDetail();
    }
    return;
  }
  if (session === state.session && state.detail === d) renderDetail(t);
}

const OWN_KEYS = ['payload', 'progress', 'error', 'timeout_at', 'create_reason', 'attempts', 'end_time', 'priority', 'not_before'];

function renderDetail(t) {
  const det = t.details && typeof t.details === 'object' ? t.details : {};
  $('d-status').replaceChildren(statusBadge(t.status));
  setProgress($('d-bar'), t);
  $('d-ptext').textContent = typeof t.progress === 'string' ? t.progress : '';
  $('d-cancel').hidden = !ACTIVE.includes(t.status);
  const out = exportedTable(t);
  $('d-download').hidden = out === null;
  $('d-download').dataset.table = out || '';
  const fields = [
    ['created', fmtTime(t.start_time)],
    ['ended', fmtTime(det.end_time)],
    ['duration', fmtDuration(duration(t))],
    ['times out', fmtTime(det.timeout_at)],
    ['attempts', det.attempts === undefined ? '' : String(det.attempts)],
    ['reason', typeof det.create_reason === 'string' ? det.create_reason : ''],
    ['priority', typeof det.priority === 'number' ? String(det.priority) : '0'],
    ['not before', fmtTime(det.not_before)],
  ];
  const dl = $('d-fields');
  clear(dl);
  for (const [k, v] of fields) {
    dl.append(el('div', { class: 'field', attrs: { 'data-key': k } }, el('dt', { text: k }), el('dd', { text: v || '—' })));
  }
  const warnings = Array.isArray(t.warnings) ? t.warnings : [];
  const ul = $('d-warnings');
  clear(ul);
  for (const w of warnings) ul.append(el('li', { text: typeof w === 'string' ? w : pretty(w) }));
  show($('d-warnings-none'), warnings.length === 0);
  const err = det.error;
  $('d-error').textContent = err === undefined ? '' : (typeof err === 'string' ? err : pretty(err));
  show($('d-error-box'), err !== undefined);
  $('d-payload').textContent = pretty(det.payload === undefined ? {} : det.payload);
  $('d-progress').textContent = pretty(det.progress === undefined ? {} : det.progress);
  const other = {};
  for (const [k, v] of Object.entries(det)) if (!OWN_KEYS.includes(k)) other[k] = v;
  $('d-other').textContent = Object.keys(other).length ? pretty(other) : '';
  show($('d-other-box'), Object.keys(other).length > 0);
}

// The LOCAL table a COMPLETED export wrote (its context_task's
// output_table; without a connection, LOCAL, as the server reads it), or
// null: the document the details offer to download.
function exportedTable(t) {
  const p = t.details && t.details.payload;
  const o = p && typeof p === 'object' ? p.output_table : null;
  if (t.status !== 'COMPLETED' || !o || typeof o !== 'object') return null;
  const local = o.connection === undefined || o.connection === 'LOCAL';
  return local && typeof o.name === 'string' && o.name ? o.name : null;
}

// ---- actions ----------------------------------------------------------------------

// The editor's text as the trigger's context_task: {ok, value, message};
// empty text sends no body.
function checkContext() {
  const text = $('context').value.trim();
  let r;
  if (!text) {
    r = { ok: true, value: undefined, message: 'empty: the task is triggered without a body' };
  } else {
    try {
      const v = JSON.parse(text);
      r = v !== null && typeof v === 'object' && !Array.isArray(v)
        ? { ok: true, value: v, message: 'valid JSON object' }
        : { ok: false, message: 'context_task must be a JSON object' };
    } catch (e) {
      r = { ok: false, message: 'not JSON: ' + e.message };
    }
  }
  const st = $('context-status');
  st.textContent = r.message;
  st.classList.toggle('bad', !r.ok);
  $('context').setAttribute('aria-invalid', r.ok ? 'false' : 'true');
  $('trigger').disabled = !r.ok;
  return r;
}

async function trigger(ev) {
  ev.preventDefault();
  const name = state.name, session = state.session;
  const c = checkContext();
  if (name === null || !c.ok) return;
  $('trigger').disabled = true;
  try {
    const doc = await api('POST', paths.trigger(name), c.value === undefined ? undefined : { context_task: c.value });
    if (session !== state.session) return;
    notice('triggered ' + name + ': task ' + doc.task_id);
    state.page = 1;
    if (name === state.name) openDetail(name, String(doc.task_id));
  } catch (e) {
    if (session !== state.session) return;
    if (refused(e) && e.status === 401) signOut(e);
    else showError($('error'), e, 'trigger ' + name);
  } finally {
    if (session === state.session) checkContext();
  }
  refreshNow();
}

async function cancelTask(name, id) {
  const session = state.session;
  try {
    const t = await api('DELETE', paths.task(name, id));
    if (session !== state.session) return;
    notice('cancel of task ' + id + ': now ' + t.status);
  } catch (e) {
    if (session !== state.session) return;
    if (refused(e) && e.status === 401) signOut(e);
    else showError($('error'), e, 'cancel ' + id);
  }
  refreshNow();
}

// The export's output, through a signed URL: the token goes in the
// request that signs it, never in the link that fetches the file.  The
// server answers the file as an attachment, so the page stays.
async function download(table) {
  const session = state.session;
  try {
    const doc = await api('GET', paths.download(table));
    if (session !== state.session) return;
    const a = el('a', { attrs: { href: doc.url, download: table } });
    document.body.append(a);
    a.click();
    a.remove();
    notice('download of ' + table + ': a link valid 60 s');
  } catch (e) {
    if (session !== state.session) return;
    if (refused(e) && e.status === 401) signOut(e);
    else showError($('error'), e, 'download ' + table);
  }
}

// ---- charts -------------------------------------------------------------------------

async function refreshCharts(session) {
  const names = state.names.slice();
  const lists = await Promise.all(names.map((n) => api('GET', paths.recents(n, 1, CHART_AMT))));
  if (session !== state.session) return;
  const byName = new Map();
  let all = [], newest = 0;
  names.forEach((n, i) => {
    const ts = Array.isArray(lists[i].tasks) ? lists[i].tasks : [];
    byName.set(n, ts);
    all = all.concat(ts);
    for (const t of ts) {
      const e = t.details && t.details.end_time;
      if (typeof e === 'number' && e > newest) newest = e;
    }
  });
  // The browser's clock may lag the server's: the window ends at the later.
  drawFinished($('chart-finished'), all, Math.max(Date.now() / 1000, newest));
  drawDurations($('chart-durations'), byName);
}

// ---- wiring -------------------------------------------------------------------------

function init() {
  $('login-form').addEventListener('submit', (ev) => {
    ev.preventDefault();
    const input = $('token');
    const t = input.value.trim();
    input.value = '';        // the token is not left in the page
    // The server's tokens are printable ASCII; anything else could not
    // even be put in a header.
    if (!/^[\x21-\x7e]+$/.test(t)) {
      showError($('login-error'), new Error('a token is printable ASCII without spaces'), 'sign-in');
      return;
    }
    signIn(t);
  });
  $('logout').addEventListener('click', () => signOut(null));
  $('trigger-form').addEventListener('submit', trigger);
  $('context').addEventListener('input', checkContext);
  $('prev').addEventListener('click', () => {
    if (state.page > 1) { state.page--; clear($('tasks-body')); refreshNow(); }
  });
  $('next').addEventListener('click', () => {
    if (state.hasNext) { state.page++; clear($('tasks-body')); refreshNow(); }
  });
  $('d-cancel').addEventListener('click', () => {
    if (state.detail) cancelTask(state.detail.name, state.detail.id);
  });
  $('d-download').addEventListener('click', () => {
    const t = $('d-download').dataset.table;
    if (t) download(t);
  });
  $('d-close').addEventListener('click', closeDetail);
  checkContext();
  if (token()) signIn(token());
  else showLogin(null);
}

init();
