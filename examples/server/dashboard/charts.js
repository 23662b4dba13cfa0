// The two charts, drawn as SVG elements (createElementNS and setAttribute:
// no markup is parsed, no library is loaded).  Colours come from classes
// in style.css, so the CSP needs no inline style.

import { FINAL, duration, fmtDuration } from './view.js';

const NS = 'http://www.w3.org/2000/svg';

function svg(tag, attrs = {}, text) {
  const n = document.createElementNS(NS, tag);
  for (const [k, v] of Object.entries(attrs)) n.setAttribute(k, String(v));
  if (text !== undefined) n.textContent = String(text);
  return n;
}

function tip(node, text) {
  node.append(svg('title', {}, text));
  return node;
}

function empty(root, width, height, message) {
  root.setAttribute('viewBox', '0 0 ' + width + ' ' + height);
  root.append(svg('text', { x: width / 2, y: height / 2, class: 'empty', 'text-anchor': 'middle' },
    message));
}

function pad2(n) {
  return String(n).padStart(2, '0');
}

// A round number at or above x for an axis: 1, 2, 5, 10, 20, 50, ...
function niceCeil(x) {
  if (!(x > 0)) return 1;
  const p = Math.pow(10, Math.floor(Math.log10(x)));
  for (const m of [1, 2, 5, 10]) if (m * p >= x) return m * p;
  return 10 * p;
}

// Tasks that ended in each of the last `minutes` minutes, stacked by final
// status.  `now` is in seconds since the epoch.
export function drawFinished(root, tasks, now, minutes = 15) {
  root.replaceChildren();
  const W = 600, H = 190, L = 34, R = 8, T = 10, B = 34;
  const end = Math.floor(now / 60) + 1;      // minute after the current one
  const start = end - minutes;
  const counts = Array.from({ length: minutes }, () => ({ COMPLETED: 0, FAILED: 0, CANCELLED: 0 }));
  let any = 0;
  for (const t of tasks) {
    const e = t.details && t.details.end_time;
    if (typeof e !== 'number' || !FINAL.includes(t.status)) continue;
    const m = Math.floor(e / 60);
    if (m < start || m >= end) continue;
    counts[m - start][t.status]++;
    any++;
  }
  if (!any) {
    empty(root, W, H, 'no task finished in the last ' + minutes + ' minutes');
    return;
  }
  root.setAttribute('viewBox', '0 0 ' + W + ' ' + H);
  const max = niceCeil(Math.max(...counts.map((c) => c.COMPLETED + c.FAILED + c.CANCELLED)));
  const pw = W - L - R, ph = H - T - B, bw = pw / minutes;
  const y = (v) => T + ph - (v / max) * ph;
  root.append(svg('line', { x1: L, y1: T + ph, x2: W - R, y2: T + ph, class: 'axis' }));
  for (const v of [0, max / 2, max]) {
    if (v !== Math.round(v)) continue;
    root.append(svg('line', { x1: L, y1: y(v), x2: W - R, y2: y(v), class: 'grid' }));
    root.append(svg('text', { x: L - 4, y: y(v) + 4, 'text-anchor': 'end', class: 'label' }, v));
  }
  counts.forEach((c, i) => {
    let base = 0;
    const x = L + i * bw + 2;
    for (const s of FINAL) {
      if (!c[s]) continue;
      const r = svg('rect', {
        x, y: y(base + c[s]), width: Math.max(1, bw - 4), height: y(base) - y(base + c[s]),
        class: 'bar-' + s, 'data-status': s, 'data-count': c[s],
      });
      const d = new Date((start + i) * 60000);
      root.append(tip(r, c[s] + ' ' + s + ' at ' + pad2(d.getHours()) + ':' + pad2(d.getMinutes())));
      base += c[s];
    }
    if (i % 5 === 0 || i === minutes - 1) {
      const d = new Date((start + i) * 60000);
      root.append(svg('text', { x: L + i * bw + bw / 2, y: H - B + 16, 'text-anchor': 'middle', class: 'label' },
        pad2(d.getHours()) + ':' + pad2(d.getMinutes())));
    }
  });
  let lx = L;
  for (const s of FINAL) {
    root.append(svg('rect', { x: lx, y: H - 12, width: 10, height: 10, class: 'bar-' + s }));
    const label = svg('text', { x: lx + 14, y: H - 3, class: 'label' }, s);
    root.append(label);
    lx += 14 + s.length * 7 + 16;
  }
}

// Each name's finished tasks on one row: a dot per task at its duration
// (start to end), the range as a line, the mean as a tick.
export function drawDurations(root, byName) {
  root.replaceChildren();
  const rows = [];
  for (const [name, tasks] of byName) {
    const ds = tasks.map(duration).filter((d) => d !== null && d >= 0);
    if (ds.length) rows.push({ name, ds });
  }
  const W = 600, L = 190, R = 130, T = 8, RH = 24, B = 24;
  if (!rows.length) {
    empty(root, W, 60, 'no finished task yet');
    return;
  }
  const H = T + rows.length * RH + B;
  root.setAttribute('viewBox', '0 0 ' + W + ' ' + H);
  const max = niceCeil(Math.max(...rows.flatMap((r) => r.ds)));
  const pw = W - L - R;
  const x = (v) => L + (v / max) * pw;
  const bottom = T + rows.length * RH;
  root.append(svg('line', { x1: L, y1: bottom, x2: L + pw, y2: bottom, class: 'axis' }));
  for (const v of [0, max / 2, max]) {
    root.append(svg('line', { x1: x(v), y1: T, x2: x(v), y2: bottom, class: 'grid' }));
    root.append(svg('text', { x: x(v), y: bottom + 16, 'text-anchor': 'middle', class: 'label' },
      fmtDuration(v)));
  }
  rows.forEach((r, i) => {
    const cy = T + i * RH + RH / 2;
    const mean = r.ds.reduce((a, b) => a + b, 0) / r.ds.length;
    const g = svg('g', { class: 'row', 'data-name': r.name });
    g.append(svg('text', { x: L - 8, y: cy + 4, 'text-anchor': 'end', class: 'label' }, r.name));
    g.append(svg('line', { x1: x(Math.min(...r.ds)), y1: cy, x2: x(Math.max(...r.ds)), y2: cy, class: 'range' }));
    for (const d of r.ds) g.append(tip(svg('circle', { cx: x(d), cy, r: 3.5, class: 'dot' }), fmtDuration(d)));
    g.append(tip(svg('line', { x1: x(mean), y1: cy - 8, x2: x(mean), y2: cy + 8, class: 'mean' }),
      'mean ' + fmtDuration(mean)));
    g.append(svg('text', { x: L + pw + 8, y: cy + 4, class: 'label' },
      'mean ' + fmtDuration(mean) + ' (n=' + r.ds.length + ')'));
    root.append(g);
  });
}
