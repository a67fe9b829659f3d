// Browser end-to-end test of issue 13 points 4 and 8 in the console: the
// group editor shows the application settings by their human labels, edits
// the lists one name a line, shows the server's refusal of a bad line (and
// saves nothing), saves good lists normalized, and passes axe-core with the
// new rows. Screenshots at 1440 and 1024 px go to tests/e2e/out/.
//
// Env: see lib.mjs.

import assert from 'node:assert/strict';
import { createRequire } from 'node:module';
import { join } from 'node:path';
import { OUT, openBrowser, runTest, signIn, startServer, step } from './lib.mjs';

const PASSWORD = 'e2e-admin-913';
const AXE_SOURCE = createRequire(import.meta.url)('axe-core').source;

/** @type {import('playwright-core').Page} */
let page;

/**
 * GETs an API path with the page's session.
 * @param {string} path
 */
async function apiGet(path) {
  const res = await page.evaluate(async (p) => {
    const r = await fetch(p, { headers: { Accept: 'application/json' }, cache: 'no-store' });
    return { status: r.status, text: await r.text() };
  }, path);
  assert.equal(res.status, 200, `GET ${path}: ${res.status} ${res.text}`);
  return JSON.parse(res.text);
}

/** Fails on any WCAG 2.0/2.1 A/AA violation on the page. */
async function checkAxe() {
  if (!(await page.evaluate(() => 'axe' in window))) await page.evaluate(AXE_SOURCE);
  const violations = await page.evaluate(async () => {
    // @ts-ignore axe is injected above
    const r = await window.axe.run(document, { runOnly: { type: 'tag', values: ['wcag2a', 'wcag2aa', 'wcag21a', 'wcag21aa'] } });
    return r.violations.map((v) => `${v.id}: ${v.nodes.map((n) => n.target.join(' ')).join(', ')}`);
  });
  assert.deepEqual(violations, [], 'axe violations');
  step('axe: the group editor with the application rows passes');
}

/**
 * Sets a setting row: ticks "set" and fills its control.
 * @param {string} key
 * @param {string} value an option value or the textarea's text
 */
async function setSetting(key, value) {
  const row = page.locator(`tr.setting-row[data-key="${key}"]`);
  await row.locator('.setting-set').check();
  const control = row.locator('.setting-value');
  if ((await control.evaluate((e) => e.tagName)) === 'SELECT') await control.selectOption(value);
  else await control.fill(value);
}

async function run() {
  const consoleUrl = await startServer({ agents: 2, password: PASSWORD });
  step(`console at ${consoleUrl}`);
  ({ page } = await openBrowser());
  await signIn(page, consoleUrl, PASSWORD);
  await page.goto(new URL('/groups', consoleUrl).href);
  await page.waitForSelector('#groups-table tbody tr[data-group-id]', { timeout: 15_000 });
  await page.locator('#groups-table .group-edit').filter({ hasText: /^Entire Network$/ }).click();
  await page.waitForFunction(() => !document.getElementById('group-editor').hidden, null, { timeout: 10_000 });

  const labels = await page.$$eval('tr.setting-row[data-key^="app_"] .setting-name strong', (els) => els.map((e) => e.textContent));
  assert.deepEqual(labels, ['Applications', 'Allowed applications', 'Blocked applications']);
  const options = await page.$$eval('tr.setting-row[data-key="app_mode"] option', (els) => els.map((e) => e.textContent));
  assert.deepEqual(options, ['Off', 'Only allowed applications', 'All but blocked applications']);
  step('application settings shown by their labels');

  // A path is refused, naming the line; nothing is saved.
  await setSetting('app_mode', 'block_list');
  await setSetting('app_block_list', 'steam\n/usr/bin/xterm');
  await page.click('#group-save');
  await page.waitForFunction(() => {
    const n = document.getElementById('notice');
    return !n.hidden && /line 2/.test(n.textContent);
  }, null, { timeout: 10_000 });
  step(`refused: ${await page.textContent('#notice')}`);
  let groups = await apiGet('/api/v1/groups');
  assert.equal(groups.find((g) => g.name === 'Entire Network').settings.app_mode, undefined, 'nothing saved');

  await setSetting('app_block_list', 'Steam\nXTerm\n');
  await page.click('#group-save');
  await page.waitForFunction(() => /Saved/.test(document.getElementById('notice').textContent), null, { timeout: 10_000 });
  groups = await apiGet('/api/v1/groups');
  const settings = groups.find((g) => g.name === 'Entire Network').settings;
  assert.equal(settings.app_mode, 'block_list');
  assert.deepEqual(settings.app_block_list, ['steam', 'xterm']);
  step('lists saved, lower-cased');

  await checkAxe();
  const row = page.locator('tr.setting-row[data-key="app_mode"]');
  for (const width of [1440, 1024]) {
    await page.setViewportSize({ width, height: 900 });
    await row.scrollIntoViewIfNeeded();
    await page.screenshot({ path: join(OUT, `enforce-app-settings-${width}.png`) });
  }
  step('screenshots in tests/e2e/out/enforce-app-settings-{1440,1024}.png');
}

await runTest('enforce', 3 * 60 * 1000, run);
