// Browser end-to-end test of the safeguarding pages: keyword library, logs
// (violations with screenshots, activity), CSV exports, scheduled reports,
// and the alert on the class page.
//
// Starts `lectern-server demo` with 3 simulated agents (LAB1-PC01..03, signed
// in as amara, ben, chloe), signs in with headless Chromium, keeps the class
// page open in one tab and, in a second tab, through the pages:
// - refuses a bad keyword CSV with the server's "line N" message;
// - adds the term "volcano" (category "test", severity 5, whole word), saves
//   it, filters the library by category and exports it as CSV;
// - opens https://example.org/volcano-facts on LAB1-PC01 (POST /commands):
//   the agent records the visit, the server matches it and records a
//   violation, and the class page shows an alert for it;
// - finds the violation in the logs, filters by category and time, exports
//   the filtered violations as CSV, opens its detail with screenshots that
//   load (the trigger frame marked), and opens it again by its address;
// - finds the visit in the activity log and exports it;
// - creates a daily 00:05 "top violating users" report, runs it now, and
//   downloads the run's CSV with amara in it; deletes the report.
// Screenshots go to tests/e2e/out/safety-*.png.
//
// Env: see lib.mjs.

import assert from 'node:assert/strict';
import { join } from 'node:path';
import { OUT, openBrowser, runTest, setFailurePage, signIn, startServer, step, waitForThumbnails } from './lib.mjs';

const AGENTS = 3;
const PASSWORD = 'e2e-safety-321';
const OVERALL_TIMEOUT_MS = 4 * 60 * 1000;
const TERM = 'volcano';
const CATEGORY = 'test';
const URL_VISITED = 'https://example.org/volcano-facts';
const TARGET = 'LAB1-PC01';
/** How long the violation may take to appear (agent → activity → scan → store). */
const VIOLATION_TIMEOUT_MS = 45_000;

/** @type {import('playwright-core').Page} the safeguarding pages */
let page;

/**
 * Fetches a path with the page's session.
 * @param {string} path
 * @param {{method?: string, body?: unknown}} [opts]
 * @returns {Promise<{status: number, type: string, disposition: string, text: string}>}
 */
function request(path, opts = {}) {
  return page.evaluate(async ({ path, method, body }) => {
    /** @type {Record<string, string>} */
    const headers = { Accept: 'application/json, text/csv' };
    if (method && method !== 'GET') {
      headers['X-CSRF-Token'] = document.querySelector('meta[name="csrf-token"]').content;
    }
    if (body !== undefined) headers['Content-Type'] = 'application/json';
    const r = await fetch(path, {
      method: method || 'GET', headers, cache: 'no-store', body: body === undefined ? undefined : JSON.stringify(body),
    });
    return {
      status: r.status,
      type: r.headers.get('content-type') || '',
      disposition: r.headers.get('content-disposition') || '',
      text: await r.text(),
    };
  }, { path, method: opts.method, body: opts.body });
}

/**
 * GETs an API path and parses its JSON.
 * @param {string} path
 * @returns {Promise<any>}
 */
async function apiGet(path) {
  const res = await request(path);
  assert.equal(res.status, 200, `GET ${path} answered ${res.status}: ${res.text}`);
  return JSON.parse(res.text);
}

/**
 * Downloads what a link points at (same session) and checks it is CSV.
 * @param {string} selector the link
 * @returns {Promise<string>} the CSV
 */
async function downloadCsv(selector) {
  const href = await page.getAttribute(selector, 'href');
  assert.ok(href, `${selector} has an address`);
  const res = await request(href);
  assert.equal(res.status, 200, `GET ${href} answered ${res.status}: ${res.text}`);
  assert.match(res.type, /^text\/csv/, `${href} is CSV`);
  assert.match(res.disposition, /attachment/, `${href} is a download`);
  return res.text;
}

/**
 * Waits for the notice to show a message of a kind.
 * @param {'error' | 'info'} kind
 * @param {RegExp} pattern
 */
async function expectNotice(kind, pattern) {
  try {
    await page.waitForFunction(({ kind, source, flags }) => {
      const n = document.getElementById('notice');
      return !n.hidden && n.classList.contains(kind) && new RegExp(source, flags).test(n.textContent);
    }, { kind, source: pattern.source, flags: pattern.flags }, { timeout: 15_000 });
  } catch (err) {
    const now = await page.evaluate(() => {
      const n = document.getElementById('notice');
      return `${n.hidden ? 'hidden' : 'shown'} ${n.className}: ${n.textContent}`;
    });
    throw new Error(`expected a ${kind} notice matching ${pattern}; notice is ${now}`, { cause: err });
  }
}

/**
 * Goes to a safeguarding page through the section's navigation.
 * @param {'/logs' | '/keywords' | '/reports'} path
 */
async function goTo(path) {
  await page.click(`nav.subnav a[href="${path}"]`);
  await page.waitForURL((url) => url.pathname === path, { timeout: 15_000 });
  await page.waitForSelector(`nav.subnav a.current[aria-current="page"][href="${path}"]`, { timeout: 10_000 });
  await page.waitForSelector('nav.pagenav a.current[data-section="safeguarding"]', { timeout: 10_000 });
}

/**
 * The violation rows shown: id, computer, user, category, term, context.
 * @returns {Promise<{id: string, device: string, user: string, category: string, term: string, context: string}[]>}
 */
function violationRows() {
  return page.$$eval('#violations-table tbody tr.violation', (trs) => trs.map((tr) => ({
    id: tr.dataset.violationId,
    device: tr.querySelector('.device').textContent,
    user: tr.querySelector('.username').textContent,
    category: tr.querySelector('.category').textContent,
    term: tr.querySelector('.term').textContent,
    context: tr.querySelector('.context').textContent,
  })));
}

/** Applies the log filters and waits until the table has reloaded. */
async function applyFilters() {
  await page.click('#filter-apply');
  await page.waitForFunction(() => {
    const tab = document.getElementById('tab-violations').getAttribute('aria-selected') === 'true' ? 'violations' : 'activity';
    return !/Loading/.test(document.getElementById(`${tab}-summary`).textContent);
  }, null, { timeout: 15_000 });
}

/**
 * A `datetime-local` value for now plus `minutes`, in the browser's zone.
 * @param {number} minutes
 * @returns {Promise<string>}
 */
function localTime(minutes) {
  return page.evaluate((minutes) => {
    const d = new Date(Date.now() + minutes * 60_000);
    const p = (n) => String(n).padStart(2, '0');
    return `${d.getFullYear()}-${p(d.getMonth() + 1)}-${p(d.getDate())}T${p(d.getHours())}:${p(d.getMinutes())}`;
  }, minutes);
}

/**
 * Records uncaught errors and CSP violations of a page.
 * @param {import('playwright-core').Page} p
 * @param {string[]} errors
 */
function watchErrors(p, errors) {
  p.on('pageerror', (err) => errors.push(`uncaught: ${err.message}`));
  p.on('console', (msg) => {
    if (msg.type() === 'error' && /Content Security Policy/i.test(msg.text())) errors.push(`CSP: ${msg.text()}`);
  });
  p.on('dialog', (dialog) => dialog.accept());
}

async function run() {
  const consoleUrl = await startServer({ agents: AGENTS, password: PASSWORD });
  const opened = await openBrowser();
  const grid = opened.page;
  const { pageErrors } = opened;
  await signIn(grid, consoleUrl, PASSWORD);
  await waitForThumbnails(grid, AGENTS);
  step('class page shows the computers');

  // The safeguarding pages in a second tab; the class page stays open for alerts.
  page = await grid.context().newPage();
  watchErrors(page, pageErrors);
  setFailurePage(page);
  await page.goto(consoleUrl);
  await page.click('nav.pagenav a[data-section="safeguarding"]');
  // The section opens on its overview (the dashboard); the logs are next to it.
  await page.waitForURL((url) => url.pathname === '/safeguarding', { timeout: 15_000 });
  await goTo('/keywords');
  await page.waitForFunction(() => /^\d+ terms? in \d+ categor/.test(document.getElementById('kw-summary').textContent), null, { timeout: 15_000 });
  const libraryBefore = await apiGet('/api/v1/keywords');
  assert.ok(Array.isArray(libraryBefore.terms), 'GET /keywords has terms');
  assert.ok(!libraryBefore.terms.some((t) => t.term === TERM), `${TERM} is not in the library yet`);
  step(`keyword library: ${libraryBefore.terms.length} terms`);

  // A bad CSV is refused with the line the server names; nothing changes.
  await page.setInputFiles('#kw-import-file', {
    name: 'bad.csv',
    mimeType: 'text/csv',
    buffer: Buffer.from(`term,category,severity,match,exceptions\n${TERM},${CATEGORY},9,whole_word,\n`),
  });
  await page.waitForSelector('#kw-error:not([hidden])', { timeout: 15_000 });
  const importError = (await page.textContent('#kw-error')).trim();
  assert.match(importError, /bad\.csv/);
  assert.match(importError, /line 2/i, 'the error names the line');
  assert.equal((await apiGet('/api/v1/keywords')).terms.length, libraryBefore.terms.length, 'the library is unchanged');
  step(`bad CSV refused: ${importError}`);

  // Add the term in the table and save.
  await page.click('#kw-add');
  const row = page.locator('#kw-table tbody tr.kw-row.new').first();
  await row.locator('input.kw-term').fill(TERM);
  await row.locator('input.kw-category').fill(CATEGORY);
  await row.locator('select.kw-severity').selectOption('5');
  await row.locator('select.kw-match').selectOption('whole_word');
  await page.waitForSelector('#kw-dirty:not([hidden])', { timeout: 5_000 });
  await page.click('#kw-save');
  await expectNotice('info', /saved/i);
  await page.waitForSelector('#kw-dirty', { state: 'hidden', timeout: 5_000 });
  const saved = (await apiGet('/api/v1/keywords')).terms.find((t) => t.term === TERM);
  assert.deepEqual(
    { category: saved?.category, severity: saved?.severity, match_type: saved?.match_type },
    { category: CATEGORY, severity: 5, match_type: 'whole_word' },
    'the saved term',
  );

  // The category filter shows just that term.
  await page.selectOption('#kw-category', CATEGORY);
  const shown = await page.$$eval('#kw-table tbody tr.kw-row:not([hidden]) input.kw-term', (inputs) => inputs.map((i) => i.value));
  assert.deepEqual(shown, [TERM], `category ${CATEGORY} shows only ${TERM}`);
  await page.screenshot({ path: join(OUT, 'safety-keywords.png') });
  const keywordsCsv = await downloadCsv('#kw-export');
  assert.match(keywordsCsv.split('\n')[0], /^term,category,severity,match,exceptions/);
  assert.ok(keywordsCsv.split('\n').some((line) => line.startsWith(`${TERM},${CATEGORY},5,whole_word`)), 'the export has the term');
  step(`term "${TERM}" added, saved, filtered by category and exported`);

  // Visit a matching page on one computer.
  const devices = await apiGet('/api/v1/devices');
  const target = devices.find((d) => d.hostname === TARGET);
  assert.ok(target, `${TARGET} is listed`);
  const user = target.state?.user;
  assert.ok(user, `someone is signed in on ${TARGET}`);
  const sent = await request('/api/v1/commands', {
    method: 'POST',
    body: { devices: [target.id], command: { type: 'launch_url', url: URL_VISITED } },
  });
  assert.ok(sent.status >= 200 && sent.status < 300, `POST /commands answered ${sent.status}: ${sent.text}`);
  step(`opened ${URL_VISITED} on ${TARGET} (${user})`);

  // The class page shows an alert.
  try {
    await grid.waitForFunction(({ term, host }) => [...document.querySelectorAll('.safety-alerts .safety-toast')]
      .some((t) => t.textContent.includes(term) && t.textContent.includes(host)), { term: TERM, host: TARGET }, { timeout: VIOLATION_TIMEOUT_MS });
  } catch (err) {
    throw new Error('no safeguarding alert on the class page', { cause: err });
  }
  const alertLink = await grid.getAttribute('.safety-toast .toast-link', 'href');
  assert.match(alertLink, /^\/logs\?violation=\d+$/);
  await grid.screenshot({ path: join(OUT, 'safety-alert.png') });
  step('alert shown on the class page');

  // The violation in the logs (it may take a moment: poll with "Apply").
  await goTo('/logs');
  assert.equal(await page.getAttribute('#tab-violations', 'aria-selected'), 'true', 'violations first');
  const deadline = Date.now() + VIOLATION_TIMEOUT_MS;
  /** @type {Awaited<ReturnType<typeof violationRows>>[number] | undefined} */
  let found;
  for (;;) {
    await applyFilters();
    found = (await violationRows()).find((r) => r.term === TERM && r.device === TARGET && r.context.includes('volcano-facts'));
    if (found) break;
    if (Date.now() > deadline) throw new Error(`no "${TERM}" violation on ${TARGET} in the logs: ${JSON.stringify(await violationRows())}`);
    await page.waitForTimeout(1000);
  }
  assert.equal(found.user, user);
  assert.equal(found.category, CATEGORY);
  assert.equal(alertLink, `/logs?violation=${found.id}`, 'the alert links to this violation');
  const severity = await page.textContent(`#violations-table tr[data-violation-id="${found.id}"] .severity`);
  assert.match(severity, /5\s*Critical/);
  step(`violation ${found.id} listed: ${JSON.stringify(found)}`);

  // Filter by category: only that category; another category hides it.
  await page.selectOption('#filter-category', CATEGORY);
  await applyFilters();
  let rows = await violationRows();
  assert.ok(rows.length >= 1 && rows.every((r) => r.category === CATEGORY), `only ${CATEGORY}: ${JSON.stringify(rows)}`);
  assert.match(page.url(), new RegExp(`category=${CATEGORY}`), 'the filter is in the address');
  const other = (await page.$$eval('#filter-category option', (os) => os.map((o) => o.value))).find((c) => c && c !== CATEGORY);
  assert.ok(other, 'another category to choose');
  await page.selectOption('#filter-category', other);
  await applyFilters();
  rows = await violationRows();
  assert.ok(rows.every((r) => r.category === other) && !rows.some((r) => r.id === found.id), `category ${other} leaves it out`);
  await page.selectOption('#filter-category', CATEGORY);

  // Time range: from an hour ago shows it, up to an hour ago does not.
  await page.fill('#filter-since', await localTime(-60));
  await applyFilters();
  assert.ok((await violationRows()).some((r) => r.id === found.id), 'shown from an hour ago');
  await page.fill('#filter-since', '');
  await page.fill('#filter-until', await localTime(-60));
  await applyFilters();
  assert.ok(!(await violationRows()).some((r) => r.id === found.id), 'hidden up to an hour ago');
  await page.fill('#filter-until', '');
  await applyFilters();
  step('category and time filters work');

  // Export what the filters select.
  const exportHref = await page.getAttribute('#export-csv', 'href');
  assert.match(exportHref, /^\/api\/v1\/violations\?/);
  assert.match(exportHref, new RegExp(`category=${CATEGORY}`));
  assert.match(exportHref, /format=csv/);
  const violationsCsv = await downloadCsv('#export-csv');
  assert.ok(violationsCsv.includes(TERM), 'the export has the term');
  assert.ok(violationsCsv.includes(TARGET) || violationsCsv.includes(user), 'the export names the computer or user');
  await page.screenshot({ path: join(OUT, 'safety-violations.png') });
  step('violations exported as CSV');

  // The detail: context and screenshots that load, the trigger frame marked.
  // The computer sends its recent frames a moment after the match.
  let detail;
  for (const until = Date.now() + 30_000; ;) {
    detail = await apiGet(`/api/v1/violations/${found.id}`);
    if (detail.screenshots >= 1) break;
    if (Date.now() > until) throw new Error(`violation ${found.id} got no screenshots: ${JSON.stringify(detail)}`);
    await page.waitForTimeout(500);
  }
  await page.click(`#violations-table tr[data-violation-id="${found.id}"] button.open-violation`);
  await page.waitForSelector('#violation-dialog[open]', { timeout: 5_000 });
  assert.match(await page.textContent('#violation-context mark'), /volcano/i);
  try {
    await page.waitForFunction((count) => {
      const imgs = [...document.querySelectorAll('#violation-strip img.screenshot')];
      const large = /** @type {HTMLImageElement} */ (document.getElementById('violation-shot-large'));
      return imgs.length === count && imgs.every((i) => i.complete) && imgs.some((i) => i.naturalWidth > 0)
        && large.complete && large.naturalWidth > 0;
    }, detail.screenshots, { timeout: 15_000 });
  } catch (err) {
    const state = await page.$$eval('#violation-strip img.screenshot', (imgs) => imgs.map((i) => ({ src: i.src, w: i.naturalWidth })));
    throw new Error(`screenshots did not load: ${JSON.stringify(state)}`, { cause: err });
  }
  const strip = await page.$$eval('#violation-strip li.shot', (lis) => lis.map((li) => ({
    trigger: li.classList.contains('trigger'),
    current: li.classList.contains('current'),
    width: li.querySelector('img').naturalWidth,
  })));
  assert.equal(strip.filter((s) => s.trigger).length, 1, 'one trigger frame');
  assert.ok(strip[strip.length - 1].trigger && strip[strip.length - 1].current, 'the last frame is the trigger, shown large');
  await page.screenshot({ path: join(OUT, 'safety-violation-detail.png') });
  await page.click('#violation-close');
  await page.waitForFunction(() => !document.getElementById('violation-dialog').open, null, { timeout: 5_000 });
  step(`detail shows the context and ${strip.length} screenshot(s), ${strip.filter((s) => s.width > 0).length} loaded`);

  // The alert's link opens the same detail.
  await page.goto(new URL(alertLink, consoleUrl).href);
  await page.waitForSelector(`#violation-dialog[open][data-violation-id="${found.id}"]`, { timeout: 10_000 });
  await page.click('#violation-close');

  // The visit in the activity log, and its export.
  await page.click('#tab-activity');
  await page.waitForSelector('#panel-activity:not([hidden])', { timeout: 5_000 });
  await page.selectOption('#filter-device', String(target.id));
  await page.fill('#filter-q', 'volcano-facts');
  await applyFilters();
  const activity = await page.$$eval('#activity-table tbody tr.activity-row', (trs) => trs.map((tr) => ({
    device: tr.querySelector('.device').textContent,
    kind: tr.querySelector('.kind').textContent,
    what: tr.querySelector('.what').textContent,
  })));
  assert.ok(activity.some((a) => a.device === TARGET && a.kind === 'Website' && a.what.includes(URL_VISITED)),
    `the visit is in the activity log: ${JSON.stringify(activity)}`);
  const activityHref = await page.getAttribute('#export-csv', 'href');
  assert.match(activityHref, /^\/api\/v1\/activity\?/);
  assert.match(activityHref, new RegExp(`device=${target.id}`));
  assert.ok((await downloadCsv('#export-csv')).includes('volcano-facts'), 'the activity export has the visit');
  await page.screenshot({ path: join(OUT, 'safety-activity.png') });
  step('visit found in the activity log and exported');

  // A scheduled report, run now, downloaded.
  await goTo('/reports');
  await page.waitForFunction(() => !/Loading/.test(document.getElementById('reports-empty').textContent), null, { timeout: 15_000 });
  await page.fill('#report-name', 'Top users e2e');
  await page.selectOption('#report-kind', 'top_violating_users');
  await page.fill('#report-days', '7');
  await page.selectOption('#report-frequency', 'daily');
  await page.fill('#report-time', '00:05');
  await page.click('#report-create');
  await expectNotice('info', /created/i);
  const reportRow = page.locator('#reports-table tbody tr', { has: page.locator('.report-name', { hasText: 'Top users e2e' }) });
  assert.equal((await reportRow.locator('.schedule').textContent()).trim(), 'Every day at 00:05');
  assert.ok((await reportRow.locator('.next-run time').count()) === 1, 'the next run is shown');
  const report = (await apiGet('/api/v1/reports')).find((r) => r.name === 'Top users e2e');
  assert.deepEqual({ kind: report.kind, days: report.days, schedule: report.schedule, group_id: report.group_id ?? null },
    { kind: 'top_violating_users', days: 7, schedule: 'daily 00:05', group_id: null });

  await reportRow.locator('button.report-run').click();
  await expectNotice('info', /ran/);
  await page.waitForSelector(`#runs[data-report-id="${report.id}"]:not([hidden]) #runs-table tbody tr.run`, { timeout: 15_000 });
  const runCsv = await downloadCsv('#runs-table tbody tr.run a.run-download');
  assert.ok(runCsv.includes(user), `the report names ${user}: ${runCsv.slice(0, 300)}`);
  await page.waitForFunction((id) => document.querySelector(`#reports-table tr[data-report-id="${id}"] .last-run time`), report.id, { timeout: 10_000 });
  await page.screenshot({ path: join(OUT, 'safety-reports.png') });
  step(`report run and downloaded (${runCsv.trim().split('\n').length} lines)`);

  await reportRow.locator('button.report-delete').click();
  await expectNotice('info', /deleted/i);
  assert.equal(await reportRow.count(), 0, 'the report is gone');
  assert.ok(!(await apiGet('/api/v1/reports')).some((r) => r.id === report.id), 'the API agrees');
  step('report deleted');

  assert.deepEqual(pageErrors, [], 'page errors');
}

await runTest('safety', OVERALL_TIMEOUT_MS, run);
