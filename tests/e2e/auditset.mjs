// Browser end-to-end test of the audit log and school settings pages (issue
// 14 point 1): the audit page filters by user and outcome and exports the
// filtered set as formula-safe CSV; the settings page shows where each value
// comes from, refuses a bad value naming the field, saves a good one and
// resets it; an administrator sees the backups and downloads one. Both pages
// pass axe-core (WCAG 2.1 A/AA). Screenshots at 1440 and 1024 px go to
// tests/e2e/out/auditset-*.png.
//
// Run: node tests/e2e/auditset.mjs (needs cargo build -p lectern-server).

import assert from 'node:assert/strict';
import { createRequire } from 'node:module';
import { join } from 'node:path';
import { OUT, openBrowser, runTest, signIn, startServer, step, until, openConsolePage } from './lib.mjs';

const PASSWORD = 'e2e-auditset-314';
const TAGS = ['wcag2a', 'wcag2aa', 'wcag21a', 'wcag21aa'];
const WIDTHS = [1440, 1024];
const AXE_SOURCE = createRequire(import.meta.url)('axe-core').source;
/** A user name a spreadsheet would run as a formula. */
const FORMULA_USER = '=SUM(1+1)';

/** @type {import('playwright-core').Page} */
let page;

/** @param {string} what */
async function checkAxe(what) {
  if (!(await page.evaluate(() => 'axe' in window))) await page.evaluate(AXE_SOURCE);
  const violations = await page.evaluate(async (tags) => {
    // @ts-ignore axe is injected above
    const result = await window.axe.run(document, { runOnly: { type: 'tag', values: tags } });
    return result.violations.map((/** @type {any} */ v) => `${v.id}: ${v.nodes.map((/** @type {any} */ n) => n.target.join(' ')).join(', ')}`);
  }, TAGS);
  assert.deepEqual(violations, [], `axe on ${what}`);
  step(`axe: ${what} passes`);
}

/** @param {string} name */
async function screenshots(name) {
  for (const width of WIDTHS) {
    await page.setViewportSize({ width, height: 800 });
    await page.screenshot({ path: join(OUT, `auditset-${name}-${width}.png`), fullPage: true });
  }
  await page.setViewportSize({ width: WIDTHS[0], height: 800 });
}

/**
 * Fetches a path with the page's session: status, type and text (or the
 * first bytes' length for binary files).
 * @param {string} path
 */
async function fetchText(path) {
  return page.evaluate(async (path) => {
    const res = await fetch(path);
    const buf = new Uint8Array(await res.arrayBuffer());
    return {
      status: res.status,
      type: res.headers.get('content-type') || '',
      size: buf.length,
      text: new TextDecoder().decode(buf.slice(0, 200_000)),
    };
  }, path);
}

/** The user column of the audit table's rows. */
async function auditUsers() {
  return page.$$eval('#audit-table tbody tr', (rows) => rows.map((r) => r.children[1].textContent));
}

await runTest('auditset', 3 * 60 * 1000, async () => {
  const consoleUrl = await startServer({ agents: 1, password: PASSWORD, config: 'audit_days = 20' });
  ({ page } = await openBrowser());
  // A refused sign-in under a formula-like name, before signing in.
  await page.goto(new URL('/login', consoleUrl).href);
  const refused = await page.evaluate(async (username) => (await fetch('/api/v1/session', {
    method: 'POST',
    headers: { 'Content-Type': 'application/json' },
    body: JSON.stringify({ username, password: 'wrong' }),
  })).status, FORMULA_USER);
  assert.equal(refused, 401);
  await signIn(page, consoleUrl, PASSWORD);

  step('audit log: filter and export');
  await openConsolePage(page, 'admin', '/audit');
  await page.waitForURL((url) => url.pathname === '/audit', { timeout: 15_000 });
  await page.waitForSelector('#audit-table tbody tr');
  await checkAxe('/audit');
  await screenshots('audit');
  await page.fill('#audit-user', FORMULA_USER);
  await page.selectOption('#audit-outcome', 'denied');
  await page.click('#audit-apply');
  await until('only the refused sign-in is listed', async () => {
    const users = await auditUsers();
    return users.length === 1 && users[0] === FORMULA_USER;
  });
  assert.match(page.url(), /outcome=denied/);
  const href = await page.getAttribute('#audit-csv', 'href');
  assert.ok(href?.includes('format=csv') && href.includes('outcome=denied'), href ?? '');
  const csv = await fetchText(href ?? '');
  assert.equal(csv.status, 200);
  assert.match(csv.type, /^text\/csv/);
  const lines = csv.text.trim().split('\n');
  assert.equal(lines.length, 2, csv.text);
  assert.ok(lines[1].includes(`'${FORMULA_USER}`), `formula cell neutralised: ${lines[1]}`);
  await screenshots('audit-filtered');
  await page.selectOption('#audit-outcome', 'ok');
  await page.click('#audit-apply');
  await until('no successful entries under that name', async () => (await page.textContent('#audit-summary'))?.startsWith('No entries') ?? false);
  await page.click('#audit-clear');
  await until('everything again', async () => (await auditUsers()).includes('admin'));

  step('settings: provenance, a refused value, save, reset');
  await openConsolePage(page, 'admin', '/settings');
  await page.waitForURL((url) => url.pathname === '/settings', { timeout: 15_000 });
  await page.waitForSelector('#setting-thumbnail_width');
  assert.match(await page.textContent('#setting-audit_days-source') ?? '', /From server\.toml/);
  assert.match(await page.textContent('#setting-thumbnail_width-source') ?? '', /Built-in default/);
  await until('the backups are listed', async () => (await page.$$('#backups-table tbody tr')).length > 0);
  await checkAxe('/settings');
  await screenshots('settings');

  await page.fill('#setting-thumbnail_width', '5');
  await page.click('#settings-save');
  await until('the field is marked', async () => (await page.getAttribute('#setting-thumbnail_width', 'aria-invalid')) === 'true');
  assert.match(await page.textContent('#setting-thumbnail_width-error') ?? '', /from 80 to 1920/);
  assert.match(await page.textContent('#notice') ?? '', /Not saved: Thumbnail width \(pixels\) must be a whole number from 80 to 1920/);
  await checkAxe('/settings with an error');
  await screenshots('settings-error');

  await page.fill('#setting-thumbnail_width', '240');
  await page.selectOption('#setting-keyword_actions-1', 'alert');
  await page.click('#settings-save');
  await until('saved, set by admin', async () => /Set by admin/.test(await page.textContent('#setting-thumbnail_width-source') ?? ''));
  assert.equal(await page.getAttribute('#setting-thumbnail_width', 'aria-invalid'), null);
  assert.match(await page.textContent('#setting-keyword_actions-source') ?? '', /Set by admin/);
  await screenshots('settings-saved');
  const resetButton = page.locator('#setting-list li', { has: page.locator('#setting-thumbnail_width') }).locator('button.reset');
  assert.match(await resetButton.textContent() ?? '', /Reset to server value \(320\)/);
  await resetButton.click();
  await until('back to the default', async () => /Built-in default/.test(await page.textContent('#setting-thumbnail_width-source') ?? ''));
  assert.equal(await page.inputValue('#setting-thumbnail_width'), '320');

  step('backups: download one');
  const link = page.locator('#backups-table tbody a').first();
  const name = await link.textContent();
  const backup = await fetchText(await link.getAttribute('href') ?? '');
  assert.equal(backup.status, 200);
  assert.ok(backup.size > 4096, `a whole database: ${backup.size} bytes`);
  assert.ok(backup.text.startsWith('SQLite format 3'), 'a SQLite file');
  const hostile = await fetchText('/api/v1/backups/..%2Flectern.db');
  assert.equal(hostile.status, 404);
  step(`downloaded ${name}`);

  step("this school's data: its own copy");
  const exportLink = page.locator('#school-export');
  assert.equal(await exportLink.isVisible(), true);
  const own = await fetchText(await exportLink.getAttribute('href') ?? '');
  assert.equal(own.status, 200);
  assert.ok(own.text.startsWith('SQLite format 3'), 'a SQLite file');
  assert.ok(own.size > 4096, `the school's database: ${own.size} bytes`);

  step('the audit log shows the settings change and the download');
  await page.goto(new URL('/audit?action=settings.change', consoleUrl).href);
  await page.waitForSelector('#audit-table tbody tr');
  const detail = await page.textContent('#audit-table tbody') ?? '';
  assert.match(detail, /"thumbnail_width":\{[^}]*"after":240/);
  assert.match(detail, /"thumbnail_width":\{[^}]*"before":320/);
});
