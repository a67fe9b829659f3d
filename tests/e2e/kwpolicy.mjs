// Browser end-to-end test of keyword policies per group (issue 15 point 4):
// the Keywords page lists the built-in library (read-only), creates a
// library, edits its terms, enables it for Entire Network with actions of
// its own, and the Resultant page shows it applying with the group that
// enabled it. Both pages pass axe-core (WCAG 2.1 A/AA). Screenshots at 1440
// and 1024 px go to tests/e2e/out/kwpolicy-*.png.
//
// Run: node tests/e2e/kwpolicy.mjs (needs cargo build -p lectern-server).

import assert from 'node:assert/strict';
import { join } from 'node:path';
import { OUT, checkAxe, openBrowser, openConsolePage, runTest, signIn, startServer, step, until } from './lib.mjs';

const PASSWORD = 'e2e-kwpolicy-271';
const WIDTHS = [1440, 1024];
const LIBRARY = 'Exam pack';

/** @type {import('playwright-core').Page} */
let page;

/** @param {string} name */
async function screenshots(name) {
  for (const width of WIDTHS) {
    await page.setViewportSize({ width, height: 900 });
    await page.screenshot({ path: join(OUT, `kwpolicy-${name}-${width}.png`), fullPage: true });
  }
  await page.setViewportSize({ width: WIDTHS[0], height: 900 });
}

/** The text of the libraries table. */
async function librariesText() {
  return (await page.textContent('#kwl-table tbody')) ?? '';
}

await runTest('kwpolicy', 2 * 60 * 1000, async () => {
  const consoleUrl = await startServer({ agents: 1, password: PASSWORD });
  ({ page } = await openBrowser());
  await signIn(page, consoleUrl, PASSWORD);

  step('keywords: the built-in library, read-only');
  await openConsolePage(page, 'safeguarding', '/keywords');
  await until('the libraries are listed', async () => /Lectern default/.test(await librariesText()));
  assert.match(await librariesText(), /Entire Network: on/);
  await checkAxe(page, '/keywords');
  await screenshots('keywords');

  step('create a library and give it a term');
  await page.fill('#kwl-name', LIBRARY);
  await page.click('#kwl-create button[type="submit"]');
  await until('the new library is listed', async () => (await librariesText()).includes(LIBRARY));
  const id = await page.getAttribute(`#kw-library option:text("${LIBRARY}")`, 'value');
  assert.ok(id && /^\d+$/.test(id), `an id: ${id}`);
  await page.selectOption('#kw-library', id);
  await until('an empty library is shown', async () => (await page.$$('#kw-table tbody tr')).length === 0);
  await page.click('#kw-add');
  await page.fill('#kw-table tbody tr:first-child input.kw-term', 'volcano');
  await page.fill('#kw-table tbody tr:first-child input.kw-category', 'exam');
  await page.click('#kw-save');
  await until('saved', async () => /saved: 1 term/.test((await page.textContent('#notice')) ?? ''));
  assert.equal(await page.getAttribute('#kw-export', 'href'), `/api/v1/keywords/libraries/${id}/csv`);

  step('enable it for Entire Network with actions of its own');
  await page.selectOption('#kwa-library', id);
  await page.selectOption('#kwa-group', { label: 'Entire Network' });
  await page.check('#kwa-own');
  await page.selectOption('#kwa-sev3', 'lock');
  await page.click('#kwa-form button[type="submit"]');
  await until('the assignment is listed', async () => {
    const row = await page.textContent(`#kwl-table tr[data-id="${id}"]`);
    return /Entire Network: on \(.*lock/.test(row ?? '');
  });
  await checkAxe(page, '/keywords with a new library');
  await screenshots('assigned');

  step('the built-in library cannot be edited');
  const defaultId = await page.getAttribute('#kw-library option:text("Lectern default (read-only)")', 'value');
  await page.selectOption('#kw-library', defaultId ?? '');
  await until('read-only', async () => !(await page.isHidden('#kw-readonly')));
  assert.ok(await page.isDisabled('#kw-add'), 'no adding to the built-in library');

  step('resultant: which libraries apply, and from where');
  await openConsolePage(page, 'admin', '/resultant');
  await page.fill('#resultant-user', 'amy');
  await page.click('#resultant-show');
  await until('the libraries are shown', async () => ((await page.textContent('#resultant-keywords tbody')) ?? '').includes(LIBRARY));
  const rows = await page.$$eval('#resultant-keywords tbody tr', (trs) => trs.map((tr) => tr.textContent));
  assert.ok(rows.some((r) => r?.includes(LIBRARY) && r.includes('lock') && r.includes('Entire Network')), rows.join(' | '));
  assert.ok(rows.some((r) => r?.includes('Lectern default') && r.includes('the school')), rows.join(' | '));
  await checkAxe(page, '/resultant');
  await screenshots('resultant');
});
