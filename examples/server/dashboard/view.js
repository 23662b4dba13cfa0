// DOM helpers and formats.  Everything that came from the API reaches the
// page as text (textContent, createTextNode) or through setAttribute on
// attributes that run nothing: the page never parses markup from data.

export const STATUSES = ['REQUEST_SENT', 'RUNNING', 'CANCELLED_REQUESTED',
  'COMPLETED', 'FAILED', 'CANCELLED'];
export const FINAL = ['COMPLETED', 'FAILED', 'CANCELLED'];
export const ACTIVE = ['REQUEST_SENT', 'RUNNING'];

// el('td', {class: 'x', text: 'y', attrs: {title: 'z'}, on: {click: f}}, child...)
export function el(tag, opts = {}, ...children) {
  const n = document.createElement(tag);
  if (opts.class) n.className = opts.class;
  if (opts.text !== undefined) n.textContent = String(opts.text);
  for (const [k, v] of Object.entries(opts.attrs || {})) n.setAttribute(k, String(v));
  for (const [k, f] of Object.entries(opts.on || {})) n.addEventListener(k, f);
  for (const c of children) n.append(c);
  return n;
}

export function clear(node) {
  node.replaceChildren();
}

export function $(id) {
  return document.getElementById(id);
}

export function show(node, yes) {
  node.hidden = !yes;
}

function pad(n) {
  return String(n).padStart(2, '0');
}

// Seconds since the epoch, in local time: 2026-11-02 14:03:07.
export function fmtTime(t) {
  if (typeof t !== 'number' || !isFinite(t)) return '';
  const d = new Date(t * 1000);
  return d.getFullYear() + '-' + pad(d.getMonth() + 1) + '-' + pad(d.getDate()) + ' ' +
    pad(d.getHours()) + ':' + pad(d.getMinutes()) + ':' + pad(d.getSeconds());
}

export function fmtDuration(s) {
  if (typeof s !== 'number' || !isFinite(s) || s < 0) return '';
  if (s < 1) return Math.round(s * 1000) + ' ms';
  if (s < 120) return (Math.round(s * 10) / 10) + ' s';
  if (s < 7200) return Math.floor(s / 60) + ' min ' + Math.round(s % 60) + ' s';
  return (Math.round(s / 360) / 10) + ' h';
}

function num(v) {
  return typeof v === 'number' && isFinite(v) ? v : null;
}

// How far a task got, 0..1, from what its job reports (step of steps, or
// n_processed of n_total); null when it says nothing measurable.
export function progressOf(task) {
  if (task.status === 'COMPLETED') return 1;
  const p = task.details && task.details.progress;
  if (!p || typeof p !== 'object') return null;
  const pairs = [['step', 'steps'], ['n_processed', 'n_total']];
  for (const [a, b] of pairs) {
    const x = num(p[a]), n = num(p[b]);
    if (x !== null && n !== null && n > 0) return Math.max(0, Math.min(1, x / n));
  }
  return null;
}

export function duration(task) {
  const end = task.details && num(task.details.end_time);
  const start = num(task.start_time);
  return end !== null && start !== null ? end - start : null;
}

export function statusBadge(status) {
  return el('span', { class: 'badge s-' + safeClass(status), text: status });
}

// A status as part of a class name: only the six known ones are styled.
export function safeClass(status) {
  return STATUSES.includes(status) ? status : 'other';
}

// A progress bar: its fill's width is set through the CSSOM (allowed by
// the CSP, unlike a style attribute).
export function progressBar() {
  const fill = el('div', { class: 'fill' });
  const bar = el('div', {
    class: 'bar',
    attrs: { role: 'progressbar', 'aria-valuemin': 0, 'aria-valuemax': 100 },
  }, fill);
  return bar;
}

export function setProgress(bar, task) {
  const f = progressOf(task);
  const fill = bar.firstChild;
  fill.className = 'fill s-' + safeClass(task.status);
  if (f === null) {
    bar.classList.toggle('unknown', !FINAL.includes(task.status));
    bar.removeAttribute('aria-valuenow');
    fill.style.width = '0%';
  } else {
    bar.classList.remove('unknown');
    bar.setAttribute('aria-valuenow', String(Math.round(f * 100)));
    fill.style.width = (f * 100).toFixed(1) + '%';
  }
}

export function pretty(v) {
  return JSON.stringify(v, null, 2);
}
