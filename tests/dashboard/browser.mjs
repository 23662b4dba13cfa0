// The dashboard in headless Chromium, driven by playwright-core: run by
// test_dashboard.py against a real taskmgr-server it started.
//
// Environment: DASH_URL (http://127.0.0.1:PORT), DASH_TOKEN (root),
// DASH_FRONTEND_TOKEN, DASH_BAD_TOKEN (known to no one), DASH_NODE_CACHE
// (where node_modules/playwright-core is), DASH_CHROMIUM, DASH_SHOTS (the
// screenshots' directory).  Prints "RESULT {json}" and exits 0, or prints
// why and exits 1.  Every wait is for a condition, with a deadline.
import fs from 'node:fs';
import { createRequire } from 'node:module';
import path from 'node:path';

const env = (k) => {
  if (!process.env[k]) throw new Error(k + ' is not set');
  return process.env[k];
};
const URL_ = env('DASH_URL');
const TOKEN = env('DASH_TOKEN');
const FRONTEND = env('DASH_FRONTEND_TOKEN');
const BAD = env('DASH_BAD_TOKEN');
const SHOTS = env('DASH_SHOTS');
const require = createRequire(path.join(env('DASH_NODE_CACHE'), 'package.json'));
const { chromium } = require('playwright-core');

const CSP = "default-src 'none'; script-src 'self'; style-src 'self'; " +
  "img-src 'self' data:; connect-src 'self'; form-action 'self'; " +
  "base-uri 'none'; frame-ancestors 'none'";
const WAIT_MS = 60000;       // the deadline of one condition
const JOB_WAIT_MS = 180000;  // ... of a simulated job's whole run

const sleep = (ms) => new Promise((r) => setTimeout(r, ms));

function check(cond, what) {
  if (!cond) throw new Error('check failed: ' + what);
  console.log('ok - ' + what);
}

// Poll fn() until it returns something true; fail after ms.
async function until(what, fn, ms = WAIT_MS) {
  const end = Date.now() + ms;
  let last;
  for (;;) {
    last = await fn();
    if (last) return last;
    if (Date.now() > end) throw new Error('timed out waiting for ' + what);
    await sleep(50);
  }
}

fs.mkdirSync(SHOTS, { recursive: true });
// This run's screenshots only: an old failure.png would mislead.
for (const f of fs.readdirSync(SHOTS)) if (f.endsWith('.png')) fs.unlinkSync(path.join(SHOTS, f));

const browser = await chromium.launch({
  executablePath: env('DASH_CHROMIUM'),
  // Chromium's own connections to the outside are refused on a closed
  // network: it is told to make none.
  args: ['--disable-gpu', '--disable-quic', '--no-first-run', '--disable-sync',
    '--disable-background-networking', '--disable-component-update'],
});
let page;
const result = {};

async function shot(name) {
  const file = path.join(SHOTS, name + '.png');
  await page.screenshot({ path: file, fullPage: true });
  console.log('screenshot ' + file);
}

const text = async (sel) => ((await page.textContent(sel)) || '').trim();

try {
  const context = await browser.newContext({ viewport: { width: 1400, height: 1000 } });
  // Every CSP violation the page causes, as the page sees it.
  await context.addInitScript(() => {
    window.__csp = [];
    document.addEventListener('securitypolicyviolation',
      (e) => window.__csp.push(e.violatedDirective + ' ' + e.blockedURI));
  });
  page = await context.newPage();
  const consoleErrors = [], pageErrors = [], requests = [], headersOf = new Map();
  page.on('console', (m) => { if (m.type() === 'error') consoleErrors.push(m.text()); });
  page.on('pageerror', (e) => pageErrors.push(e.message));
  page.on('request', (r) => requests.push({
    url: r.url(), method: r.method(), auth: r.headers().authorization || null,
    body: r.postData() || '',
  }));
  page.on('response', (r) => headersOf.set(new URL(r.url()).pathname, r.headers()));

  // ---- the page, its headers, no token needed --------------------------------
  const resp = await page.goto(URL_ + '/dashboard');
  check(new URL(page.url()).pathname === '/dashboard/', '/dashboard leads to /dashboard/');
  const h = resp.headers();
  check(h['content-security-policy'] === CSP, 'the page has the CSP: ' + h['content-security-policy']);
  check(h['x-content-type-options'] === 'nosniff', 'the page has nosniff');
  check(h['content-type'] === 'text/html; charset=utf-8', 'the page is text/html');
  await page.locator('#login').waitFor({ state: 'visible', timeout: WAIT_MS });
  for (const [f, type] of [['app.js', 'text/javascript'], ['api.js', 'text/javascript'],
    ['view.js', 'text/javascript'], ['charts.js', 'text/javascript'], ['style.css', 'text/css']]) {
    const fh = await until('the headers of ' + f, () => headersOf.get('/dashboard/' + f));
    check(fh['content-type'] === type + '; charset=utf-8' && fh['x-content-type-options'] === 'nosniff' &&
      fh['content-security-policy'] === CSP, f + ' is ' + type + ', nosniff, with the CSP');
  }
  await shot('01-sign-in');

  // ---- refusals at sign-in: the API's own error, the token not kept --------
  async function signIn(tok) {
    await page.fill('input[name="token"]', tok);
    await page.click('#login-form button[type="submit"]');
  }
  await signIn(BAD);
  let refusal = await until('the 401 shown', async () => {
    const t = await text('#login-error');
    return t.includes('UNAUTHORIZED') ? t : null;
  });
  check(refusal.includes('HTTP 401') && refusal.includes('AuthError') &&
    refusal.includes("a valid 'Authorization: Bearer <token>' header is required"),
    'a bad token shows the API refusal: ' + refusal);
  check(await page.evaluate(() => sessionStorage.length) === 0, 'a refused token is not kept');
  check(await page.isHidden('#app'), 'nothing but the sign-in form after a refusal');
  check(await page.inputValue('input[name="token"]') === '', 'the typed token is not left in the form');
  await shot('02-bad-token');

  const sent = requests.length;
  await signIn('t\u00f6ken-not-ascii');
  await until('the token refused by the page', async () =>
    (await text('#login-error')).includes('printable ASCII'));
  check(requests.length === sent, 'a token no header can carry is not sent');

  await signIn(FRONTEND);
  refusal = await until('the 403 shown', async () => {
    const t = await text('#login-error');
    return t.includes('FORBIDDEN') ? t : null;
  });
  check(refusal.includes('HTTP 403') && refusal.includes('ForbiddenError'),
    'a role the API does not admit shows its refusal: ' + refusal);

  // ---- signed in -------------------------------------------------------------------
  await signIn(TOKEN);
  const nameRow = (n) => `#names-body tr[data-name="${n}"]`;
  await page.locator(nameRow('ml_model_retrain')).waitFor({ timeout: WAIT_MS });
  check(await page.isHidden('#login'), 'signed in');
  check(await page.evaluate(() => Object.values(sessionStorage)) + '' === TOKEN,
    'the token is in sessionStorage');
  check(await page.evaluate(() => localStorage.length) === 0, 'nothing in localStorage');
  const names = await page.$$eval('#names-body tr', (trs) => trs.map((t) => t.dataset.name));
  check(names.length === 8, 'the eight names are listed: ' + names.join(' '));

  // A name paused through the API (tm_pause) is marked, and unmarked.
  const pauseReq = async (what) => {
    const r = await fetch(URL_ + '/tasks/private/reco_export/' + what + '/',
      { method: 'POST', headers: { Authorization: 'Bearer ' + TOKEN } });
    check(r.status === 200, what + ' answers 200: ' + r.status);
  };
  await pauseReq('pause');
  await until('reco_export marked paused', async () =>
    (await text(nameRow('reco_export') + ' td.c-paused')) === 'paused');
  await pauseReq('resume');
  await until('reco_export no longer marked', async () =>
    (await text(nameRow('reco_export') + ' td.c-paused')) === '');

  async function pick(name) {
    await page.click(nameRow(name) + ' button.pick');
    await until(name + ' selected', async () => (await text('#sel-name')) === name);
  }
  const editor = 'textarea[name="context_task"]';

  // A task triggered through the API with a priority and a later start
  // shows both beside its status, and in its details.
  {
    const r = await fetch(URL_ + '/tasks/private/ml_new_users/', {
      method: 'POST', headers: { Authorization: 'Bearer ' + TOKEN },
      body: JSON.stringify({ priority: 3, not_before: Date.now() / 1000 + 3600 }),
    });
    check(r.status === 200, 'a scheduled trigger answers 200: ' + r.status);
    const id = (await r.json()).task_id;
    await pick('ml_new_users');
    const row = `#tasks-body tr[data-id="${id}"]`;
    await until('the scheduled task listed with its tags', async () =>
      (await text(row + ' td.status .tag.prio')) === 'prio 3' &&
      (await text(row + ' td.status .tag.later')).startsWith('at '));
    await page.click(row + ' button.open');
    await until('its details show priority and start', async () =>
      (await text('#d-fields [data-key="priority"] dd')) === '3' &&
      (await text('#d-fields [data-key="not before"] dd')) !== '—');
    await shot('03b-scheduled');
    const c = await fetch(URL_ + '/tasks/private/ml_new_users/' + id + '/',
      { method: 'DELETE', headers: { Authorization: 'Bearer ' + TOKEN } });
    check(c.status === 200, 'the scheduled task is cancelled: ' + c.status);
  }

  // Click "Trigger task"; the new task's id from the notice.
  async function triggerFromUI(name) {
    const before = await text('#notice');
    await page.click('#trigger');
    const t = await until('the notice of a trigger of ' + name, async () => {
      const n = await text('#notice');
      return n !== before && n.startsWith('triggered ' + name + ': task ') ? n : null;
    });
    const id = t.slice(t.lastIndexOf(' ') + 1);
    check(/^[A-Za-z0-9]{20}$/.test(id), 'triggered ' + name + ' from the page: ' + id);
    return id;
  }

  const row = (id) => `#tasks-body tr[data-id="${id}"]`;
  async function rowState(id) {
    return page.$eval(row(id), (tr) => ({
      status: tr.querySelector('.status').textContent,
      width: tr.querySelector('.bar .fill').getBoundingClientRect().width,
      full: tr.querySelector('.bar').getBoundingClientRect().width,
      cancel: !tr.querySelector('button.cancel').hidden,
      now: tr.querySelector('.bar').getAttribute('aria-valuenow'),
    })).catch(() => null);
  }

  // ---- the JSON editor ------------------------------------------------------------
  await pick('ml_model_retrain');
  await page.fill(editor, '{"model": ');
  check(await page.isDisabled('#trigger') && (await text('#context-status')).startsWith('not JSON'),
    'unparsable JSON disables the trigger');
  await page.fill(editor, '[1, 2]');
  check(await page.isDisabled('#trigger') &&
    (await text('#context-status')) === 'context_task must be a JSON object',
    'JSON that is not an object disables the trigger');
  await page.fill(editor, '{"note": "from the dashboard test"}');
  check(await page.isEnabled('#trigger'), 'an object enables the trigger');

  // ---- a task runs: its progress bar moves until COMPLETED ------------------------
  const id1 = await triggerFromUI('ml_model_retrain');
  await until('task 1 RUNNING', async () => (await rowState(id1))?.status === 'RUNNING', JOB_WAIT_MS);
  // The exclusive name refuses a second run: the API's answer is shown.
  await page.click('#trigger');
  const dup = await until('the duplicate refused', async () => {
    const t = await text('#error');
    return t.includes('TASK_ALREADY_RUNNING') ? t : null;
  });
  check(dup.includes('HTTP 400') && dup.includes('DuplicatedError') && dup.includes('already running'),
    'a refused trigger shows the API error: ' + dup);
  const widths = new Set();
  let midShot = false;
  const done = await until('task 1 COMPLETED', async () => {
    const s = await rowState(id1);
    if (s && s.status === 'RUNNING' && s.width > 0) {
      widths.add(Math.round(s.width));
      if (!midShot && widths.size >= 2) {
        midShot = true;
        await shot('03-running');
      }
    }
    return s && s.status === 'COMPLETED' ? s : null;
  }, JOB_WAIT_MS);
  check(widths.size >= 2, 'the progress bar moved while RUNNING: widths ' + [...widths].join(', '));
  // (its width slides there: a CSS transition)
  await until('a full bar for the COMPLETED task', async () => {
    const s = await rowState(id1);
    return s && Math.abs(s.width - s.full) < 1 && s.now === '100';
  });
  check(done.status === 'COMPLETED', 'a COMPLETED task has a full bar');
  // The detail panel follows the task it opened on.
  check((await text('#d-id')) === id1, 'the triggered task is open in the details');
  await until('the details COMPLETED', async () => (await text('#d-status')) === 'COMPLETED');
  const fields = await page.$$eval('#d-fields .field', (fs) =>
    Object.fromEntries(fs.map((f) => [f.dataset.key, f.querySelector('dd').textContent])));
  check(fields.attempts === '1' && fields.ended !== '—' && fields.created !== '—' &&
    fields.reason === 'manually triggered by endpoint', 'the details: ' + JSON.stringify(fields));
  check((await text('#d-payload')).includes('"note": "from the dashboard test"'),
    'the details show the payload');
  check((await text('#d-progress')).includes('"steps": 10'), 'the details show the progress');
  check(await page.isHidden('#d-cancel'), 'a final task has no cancel button');
  check(await page.isHidden('#d-download'), 'a task that exported nothing offers no download');
  await shot('04-completed');
  result.completed = id1;

  // ---- a running task cancelled through its button --------------------------------
  await pick('ml_new_users');
  const id2 = await triggerFromUI('ml_new_users');
  await until('task 2 RUNNING with its cancel button', async () => {
    const s = await rowState(id2);
    return s && s.status === 'RUNNING' && s.cancel;
  }, JOB_WAIT_MS);
  await page.click(row(id2) + ' button.cancel');
  const note = await until('the cancel notice', async () => {
    const t = await text('#notice');
    return t.startsWith('cancel of task ' + id2) ? t : null;
  });
  check(/now (CANCELLED_REQUESTED|CANCELLED)$/.test(note), 'the cancel answered: ' + note);
  await until('task 2 CANCELLED', async () => (await rowState(id2))?.status === 'CANCELLED', JOB_WAIT_MS);
  check(!(await rowState(id2)).cancel, 'a cancelled task has no cancel button');
  await shot('05-cancelled');
  result.cancelled = id2;

  // ---- data is text, never markup ---------------------------------------------------
  await pick('ml_new_items');
  await page.fill(editor, '{"note": "<img src=x id=xss1 onerror=alert(1)>"}');
  const id3 = await triggerFromUI('ml_new_items');
  await until('the payload shown', async () =>
    (await text('#d-payload')).includes('<img src=x id=xss1 onerror=alert(1)>'));
  check(await page.$('#xss1') === null, 'markup in a payload is shown as text');
  // ... and the details' own cancel button.
  await until('the details cancel button', () => page.isVisible('#d-cancel'), JOB_WAIT_MS);
  await page.click('#d-cancel');
  await until('task 3 CANCELLED', async () => (await text('#d-status')) === 'CANCELLED', JOB_WAIT_MS);
  result.cancelled_in_details = id3;

  await pick('data_import');
  check((await page.inputValue(editor)).includes('"table_name": "input-myfile.csv"'),
    'a private name starts from its context_task template');
  // A valid table name (no slash) that is markup, for a table that is not there.
  await page.fill(editor, '{"connection": "LOCAL", "table_name": "<img src=x id=xss2>.csv"}');
  await page.click('#trigger');
  const missing = await until('the missing table refused', async () => {
    const t = await text('#error');
    return t.includes('TABLE_NOT_FOUND') ? t : null;
  });
  check(missing.includes('HTTP 404') && missing.includes('<img src=x id=xss2>.csv'),
    'a refusal quoting markup shows it as text: ' + missing);
  check(await page.$('#xss2') === null, 'markup in an error message is shown as text');
  await shot('06-refused');

  // ---- warnings and errors in the details (tables test_dashboard.py wrote) ---------
  await page.fill(editor, '{"connection": "LOCAL", "table_name": "ragged.csv"}');
  const idW = await triggerFromUI('data_import');
  const warning = await until('the warning shown', async () => {
    const w = await page.$$eval('#d-warnings li', (li) => li.map((l) => l.textContent));
    return (await text('#d-status')) === 'COMPLETED' && w.length ? w : null;
  }, JOB_WAIT_MS);
  check(warning[0] === 'line 3 has 1 fields, the header 2', 'the details show a warning: ' + warning);
  await page.fill(editor, '{"connection": "LOCAL", "table_name": "broken.csv.gz"}');
  const idF = await triggerFromUI('data_import');
  const failure = await until('the failure shown', async () =>
    (await text('#d-status')) === 'FAILED' && await page.isVisible('#d-error') ? text('#d-error') : null,
  JOB_WAIT_MS);
  check(failure === 'data_import: table broken.csv.gz is not gzip-compressed',
    'the details of a FAILED task show its error: ' + failure);
  await shot('07-failed');
  result.warned = idW;
  result.failed = idF;

  // ---- pagination: 11 more imports, 10 a page ------------------------------------------
  await page.fill(editor, '{"connection": "LOCAL", "table_name": "input-myfile.csv"}');
  const imports = [];
  for (let i = 0; i < 11; i++) imports.push(await triggerFromUI('data_import'));
  const pageIds = () => page.$$eval('#tasks-body tr', (trs) => trs.map((t) => t.dataset.id));
  const first = await until('page 1 full, with a next page', async () => {
    const ids = await pageIds();
    return ids.length === 10 && ids[0] === imports[10] && await page.isEnabled('#next') ? ids : null;
  });
  check(first.join() === imports.slice(1).reverse().join(), 'page 1 holds the newest ten, newest first');
  check(await page.isDisabled('#prev'), 'page 1 has no newer page');
  await page.click('#next');
  const second = await until('page 2', async () => {
    const ids = await pageIds();
    return (await text('#page')) === 'page 2' && ids.length === 3 ? ids : null;
  });
  check(second.join() === [imports[0], idF, idW].join(),
    'page 2 holds the three oldest imports: ' + second.join(' '));
  check(await page.isDisabled('#next') && await page.isEnabled('#prev'), 'page 2 is the last');
  await shot('08-page-2');
  await page.click('#prev');
  await until('back on page 1', async () => (await text('#page')) === 'page 1' &&
    (await pageIds()).length === 10);

  // ---- an export's output, downloaded through a signed URL -----------------------
  await pick('analytics_report_export');
  check((await page.inputValue(editor)).includes('"name": "analytics_report.json"'),
    'the export starts from its template');
  await page.fill(editor, '{"output_table": {"connection": "LOCAL", "name": "dash-report.json"}}');
  const idX = await triggerFromUI('analytics_report_export');
  await until('the export COMPLETED, its download offered', async () =>
    (await text('#d-status')) === 'COMPLETED' && await page.isVisible('#d-download'), JOB_WAIT_MS);
  const [dl] = await Promise.all([page.waitForEvent('download', { timeout: WAIT_MS }),
    page.click('#d-download')]);
  check(dl.suggestedFilename() === 'dash-report.json', 'the download is named after the table: ' +
    dl.suggestedFilename());
  const fileUrl = new URL(dl.url());
  check(/^\/storage-signed-urls\/local-tables\/dash-report\.json\/file\/$/.test(fileUrl.pathname) &&
    /^[0-9a-f]{64}$/.test(fileUrl.searchParams.get('signature') || ''),
    'it is fetched through a signed URL: ' + fileUrl.pathname);
  // (a download is the browser's, not the page's: no request event, and
  // no header the page could add)
  check(!dl.url().includes(TOKEN), 'the signed URL holds no token');
  const report = JSON.parse(fs.readFileSync(await dl.path(), 'utf8'));
  check(report.report === 'analytics' && report.task_id === idX,
    'the file is the report the export wrote');
  await until('the download notice', async () => (await text('#notice')).startsWith('download of dash-report.json'));
  await shot('08b-download');
  result.exported = idX;
  // An output_table without a connection is LOCAL: offered too.
  await page.fill(editor, '{"output_table": {"name": "dash-report-2.json"}}');
  const idY = await triggerFromUI('analytics_report_export');
  await until('the export without a connection COMPLETED, its download offered', async () =>
    (await text('#d-id')) === idY && (await text('#d-status')) === 'COMPLETED' &&
    await page.isVisible('#d-download'), JOB_WAIT_MS);

  // ---- the charts -------------------------------------------------------------------
  const charts = await until('the charts to show the finished tasks', () => page.evaluate(() => {
    const sum = (s) => [...document.querySelectorAll(
      `#chart-finished rect[data-status="${s}"]`)].reduce((a, r) => a + Number(r.dataset.count), 0);
    const rows = [...document.querySelectorAll('#chart-durations g.row')].map((g) => g.dataset.name);
    const c = { COMPLETED: sum('COMPLETED'), FAILED: sum('FAILED'), CANCELLED: sum('CANCELLED'), rows };
    return c.COMPLETED >= 13 && c.FAILED >= 1 && c.CANCELLED >= 2 && rows.includes('ml_model_retrain') &&
      rows.includes('data_import') ? c : null;
  }), JOB_WAIT_MS);
  check(true, 'finished per minute and durations by name drawn: ' + JSON.stringify(charts));
  await shot('09-charts');

  // ---- what the page sent, and what it did not ---------------------------------------
  const api = requests.filter((r) => !new URL(r.url).pathname.startsWith('/dashboard'));
  check(api.length > 0, api.length + ' API requests made');
  for (const r of requests) {
    if (r.url.includes(TOKEN) || r.url.includes(BAD) || r.body.includes(TOKEN)) {
      throw new Error('a token in a request URL or body: ' + r.method + ' ' + r.url);
    }
    const origin = new URL(r.url).origin;
    if (origin !== new URL(URL_).origin && !r.url.startsWith('data:')) {
      throw new Error('a request to another origin: ' + r.url);
    }
  }
  check(true, 'no token in any URL or body, no request to another origin');
  check(api.every((r) => ['Bearer ' + TOKEN, 'Bearer ' + BAD, 'Bearer ' + FRONTEND].includes(r.auth)),
    'every API request carries the token as a Bearer header');
  check(requests.filter((r) => new URL(r.url).pathname.startsWith('/dashboard'))
    .every((r) => r.auth === null), 'the page\'s files are fetched without a token');
  const csp = await page.evaluate(() => window.__csp);
  check(csp.length === 0, 'no CSP violation: ' + JSON.stringify(csp));
  check(pageErrors.length === 0, 'no script error: ' + JSON.stringify(pageErrors));
  // Chromium logs every 4xx answer a fetch got; anything else is a fault.
  const odd = consoleErrors.filter((m) => !/^Failed to load resource: the server responded with a status of 4\d\d/.test(m));
  check(odd.length === 0, 'no console error but the refused requests: ' + JSON.stringify(odd));

  // ---- sign out -----------------------------------------------------------------------
  await page.click('#logout');
  await page.locator('#login').waitFor({ state: 'visible', timeout: WAIT_MS });
  check(await page.evaluate(() => sessionStorage.length) === 0, 'signing out forgets the token');
  check(await page.isHidden('#app') && (await page.$$('#names-body tr')).length === 0,
    'signing out clears what was shown');
  await page.reload();
  await page.locator('#login').waitFor({ state: 'visible', timeout: WAIT_MS });
  check(await page.isHidden('#app'), 'a reload after signing out asks for a token again');
  await shot('10-signed-out');
  console.log('RESULT ' + JSON.stringify(result));
} catch (e) {
  console.log('FAILED: ' + (e && e.stack || e));
  if (page) await shot('failure').catch(() => {});
  process.exitCode = 1;
} finally {
  await browser.close();
}
