// Browser end-to-end test of the safeguarding overview (issue 15, point 7),
// against a real `lectern-server demo` with simulated computers:
// - three computers search for words of the default keyword library, so the
//   server stores real violations and web activity;
// - the Safeguarding section opens on the overview, whose SVG charts show
//   those violations (by category, by severity, users, sites) and activity
//   by hour, each an image with a title and a table of its numbers;
// - a category bar leads to the log filtered to that category and day;
// - "Download PNG" gives a PNG, "Download CSV" the numbers;
// - the print view hides the navigation and controls;
// - screenshots at 1440 and 1024 px in tests/e2e/out/dashboard-*.png.
//
// Run: cargo build -p lectern-server -p lectern-agent && node tests/e2e/dashboard.mjs

import assert from 'node:assert/strict';
import { readFileSync } from 'node:fs';
import { join } from 'node:path';

import { OUT, checkAxe, openBrowser, openConsolePage, runTest, setFailurePage, signIn, startServer, step, until } from './lib.mjs';

const PASSWORD = 'dashboard-e2e-password';
/** Searches by computer: each is a violation of the default library. */
const SEARCHES = [
  ['LAB1-PC01', 'https://www.google.com/search?q=cocaine'],
  ['LAB1-PC02', 'https://www.bing.com/search?q=heroin'],
  ['LAB1-PC03', 'https://duckduckgo.com/?q=knife'],
];


/** @type {import('playwright-core').Page} */
let page;

/**
 * Calls the API with the page's session.
 * @param {string} method
 * @param {string} path
 * @param {unknown} [body]
 * @returns {Promise<any>}
 */
function api(method, path, body) {
  return page.evaluate(async ({ method, path, body }) => {
    /** @type {Record<string, string>} */
    const headers = { Accept: 'application/json' };
    if (method !== 'GET') {
      headers['X-CSRF-Token'] = /** @type {HTMLMetaElement} */ (document.querySelector('meta[name="csrf-token"]')).content;
      headers['Content-Type'] = 'application/json';
    }
    const r = await fetch(path, { method, headers, body: body === undefined ? undefined : JSON.stringify(body) });
    const text = await r.text();
    if (!r.ok) throw new Error(`${method} ${path}: ${r.status} ${text}`);
    return text ? JSON.parse(text) : null;
  }, { method, path, body });
}

/** Waits for the overview to have drawn (a load finished). */
async function drawn() {
  await page.waitForFunction(() => document.body.dataset.loaded && !document.body.hasAttribute('aria-busy'), null, { timeout: 15_000 });
}

/**
 * Screenshots of the page at 1440 and 1024 px.
 * @param {string} name
 * @param {boolean} [print] in print, charts drawn for the screen are scaled to the page
 */
async function screenshots(name, print = false) {
  for (const width of [1440, 1024]) {
    await page.setViewportSize({ width, height: 900 });
    // On screen the charts are redrawn at the width they are shown at.
    if (!print) await page.waitForFunction(() => [...document.querySelectorAll('svg.chart')].every((svg) => {
      const box = /** @type {HTMLElement} */ (svg.closest('.chart-body'));
      return box.clientWidth === 0 || Math.abs(Number(svg.getAttribute('width')) - Math.max(360, Math.min(1400, box.clientWidth))) < 2;
    }), null, { timeout: 10_000 });
    await page.screenshot({ path: join(OUT, `dashboard-${name}-${width}.png`), fullPage: true });
  }
  await page.setViewportSize({ width: 1440, height: 900 });
}

await runTest('dashboard', 3 * 60 * 1000, async () => {
  const consoleUrl = await startServer({ agents: SEARCHES.length, password: PASSWORD });
  const opened = await openBrowser();
  page = opened.page;
  setFailurePage(page);
  await signIn(page, consoleUrl, PASSWORD);

  const devices = await until('the computers online', async () => {
    const list = await api('GET', '/api/v1/devices');
    return list.filter((/** @type {any} */ d) => d.online && d.state?.user).length === SEARCHES.length && list;
  }, 60_000);
  for (const [host, url] of SEARCHES) {
    const d = devices.find((/** @type {any} */ x) => x.hostname === host);
    assert.ok(d, `${host} is listed`);
    await api('POST', '/api/v1/commands', { devices: [d.id], command: { type: 'launch_url', url } });
  }
  const violations = await until('three violations stored', async () => {
    const list = await api('GET', '/api/v1/violations');
    return list.length >= SEARCHES.length && list;
  }, 60_000);
  const categories = new Set(violations.map((/** @type {any} */ v) => v.category));
  step(`violations: ${violations.map((/** @type {any} */ v) => `${v.term} (${v.category}) on ${v.hostname}`).join(', ')}`);

  step('the Safeguarding section opens on its overview');
  await page.click('nav.pagenav a[data-section="safeguarding"]');
  await page.waitForURL((u) => u.pathname === '/safeguarding', { timeout: 15_000 });
  await openConsolePage(page, 'safeguarding', '/safeguarding');
  await drawn();
  const summary = await page.textContent('#dash-summary');
  assert.match(summary ?? '', new RegExp(`^${violations.length} violations and \\d+ activity events`), summary ?? '');

  step('the charts');
  const charts = await page.$$eval('svg.chart', (svgs) => svgs.map((s) => ({
    role: s.getAttribute('role'),
    title: s.querySelector('title')?.textContent,
    labelled: (s.getAttribute('aria-labelledby') || '').split(' ').every((id) => document.getElementById(id)),
    bars: s.querySelectorAll('.bar').length,
  })));
  // Five charts and the cases by review status (every case new so far).
  assert.equal(charts.length, 6, JSON.stringify(charts));
  assert.equal(charts[5].title, 'Cases by status', JSON.stringify(charts));
  for (const c of charts) {
    assert.equal(c.role, 'img');
    assert.ok(c.title && c.labelled, `${c.title}: titled`);
    assert.ok(c.bars > 0, `${c.title}: has bars`);
  }
  const legend = await page.$$eval('#chart-category .legend text', (ts) => ts.map((t) => t.textContent));
  assert.deepEqual(new Set(legend), categories, 'one legend entry per category');
  const users = await page.$$eval('#chart-users svg text', (ts) => ts.map((t) => t.textContent));
  for (const v of violations) assert.ok(users.includes(v.user), `${v.user} is among the most flagged`);
  const sites = await page.$$eval('#chart-sites svg text', (ts) => ts.map((t) => t.textContent));
  for (const host of ['www.google.com', 'www.bing.com', 'duckduckgo.com']) assert.ok(sites.includes(host), `${host} among the sites: ${sites}`);
  // The table alternative has the same numbers, and links.
  await page.click('#chart-users summary');
  const rows = await page.$$eval('#chart-users table tbody tr', (trs) => trs.map((tr) => tr.textContent));
  assert.equal(rows.length, new Set(violations.map((/** @type {any} */ v) => v.user)).size, rows.join(' | '));
  assert.ok(await page.locator('#chart-users table a[href^="/logs?user="]').count() > 0);
  // Cases by status: every case is new until someone reviews it, and the bar
  // opens the log of new cases.
  const statusHref = await page.locator('#chart-status svg .bar[data-href]').first().getAttribute('data-href');
  assert.equal(new URL(statusHref ?? '', consoleUrl).searchParams.get('status'), 'new', statusHref ?? '');
  await checkAxe(page, 'the overview with charts and a table open');
  await screenshots('overview');

  step('PNG and CSV of a chart');
  const [png] = await Promise.all([page.waitForEvent('download'), page.click('button[data-png="category"]')]);
  const pngBytes = readFileSync(/** @type {string} */ (await png.path()));
  assert.equal(pngBytes.subarray(1, 4).toString(), 'PNG', 'a PNG file');
  assert.ok(pngBytes.length > 2000, `PNG of ${pngBytes.length} bytes`);
  const [csv] = await Promise.all([page.waitForEvent('download'), page.click('button[data-csv="severity"]')]);
  const csvText = readFileSync(/** @type {string} */ (await csv.path()), 'utf8');
  assert.match(csvText.split('\r\n')[0], /^Day,/);
  const csvTotal = csvText.trim().split('\r\n').slice(1)
    .reduce((sum, line) => sum + line.split(',').slice(1).reduce((s, n) => s + Number(n), 0), 0);
  assert.equal(csvTotal, violations.length, csvText);

  step('a bar leads to the filtered log');
  const bar = page.locator('#chart-category svg .bar[data-href]').first();
  const href = /** @type {string} */ (await bar.getAttribute('data-href'));
  const target = new URL(href, consoleUrl);
  assert.equal(target.pathname, '/logs');
  const category = /** @type {string} */ (target.searchParams.get('category'));
  assert.ok(categories.has(category), href);
  assert.match(target.searchParams.get('from') ?? '', /^\d{4}-\d{2}-\d{2}$/);
  await bar.click();
  await page.waitForURL((u) => u.pathname === '/logs', { timeout: 15_000 });
  await page.waitForFunction((c) => /** @type {HTMLSelectElement} */ (document.getElementById('filter-category')).value === c, category, { timeout: 15_000 });
  assert.match(await page.inputValue('#filter-since'), /^\d{4}-\d{2}-\d{2}T00:00$/);
  await page.waitForFunction(() => document.querySelectorAll('#violations-table tbody tr.violation').length > 0, null, { timeout: 15_000 });
  const shown = await page.$$eval('#violations-table tbody tr.violation .category', (tds) => tds.map((td) => td.textContent));
  assert.deepEqual(shown, violations.filter((/** @type {any} */ v) => v.category === category).map(() => category), 'only that category');

  step('periods and groups');
  await page.goto(new URL('/safeguarding?period=7', consoleUrl).href);
  await drawn();
  assert.equal(await page.inputValue('#dash-period'), '7');
  await page.selectOption('#dash-period', 'custom');
  assert.equal(await page.isVisible('#dash-from'), true);
  await page.fill('#dash-from', '2020-01-01');
  await page.fill('#dash-to', '2020-01-05');
  await page.click('#dash-apply');
  await page.waitForFunction(() => /^0 violations/.test(document.getElementById('dash-summary')?.textContent ?? ''), null, { timeout: 15_000 });
  assert.match(page.url(), /period=custom&from=2020-01-01&to=2020-01-05/);
  assert.equal(await page.locator('#chart-category .chart-empty').count(), 1, 'an empty period says so');

  step('print view: charts only');
  await page.goto(new URL('/safeguarding?period=30', consoleUrl).href);
  await drawn();
  await page.emulateMedia({ media: 'print' });
  assert.equal(await page.isHidden('nav.pagenav'), true, 'no navigation in print');
  assert.equal(await page.isHidden('#dash-form'), true, 'no controls in print');
  assert.equal(await page.isHidden('.chart-actions >> nth=0'), true, 'no buttons in print');
  assert.equal(await page.isVisible('#chart-category svg'), true);
  await screenshots('print', true);
  await page.pdf({ path: join(OUT, 'dashboard-print.pdf'), format: 'A4' }).catch(() => { /* headless shells without PDF */ });
  await page.emulateMedia({ media: 'screen' });

  if (opened.pageErrors.length) throw new Error(`page errors: ${opened.pageErrors.join('; ')}`);
});
