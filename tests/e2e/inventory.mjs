// Inventory (issue 13.5), in real Chromium against `lectern-server demo`
// (its simulated agents report a made-up inventory through the real
// protocol): the Inventory page lists every computer, searches across
// fields (serial, package), exports CSV of what the search selects, opens a
// computer's whole report; the page and its dialog pass axe-core (WCAG 2.1
// A/AA). Screenshots at 1440 and 1024 px go to tests/e2e/out/inventory-*.png.
//
// Run: node tests/e2e/inventory.mjs (needs cargo build -p lectern-server).

import { createRequire } from 'node:module';
import { join } from 'node:path';
import { OUT, openBrowser, runTest, signIn, startServer, step, until, openConsolePage } from './lib.mjs';

const PASSWORD = 'inventory-e2e-password';
const AGENTS = 3;
const TAGS = ['wcag2a', 'wcag2aa', 'wcag21a', 'wcag21aa'];
const AXE_SOURCE = createRequire(import.meta.url)('axe-core').source;

/**
 * Runs axe on the page (or inside `include`) and fails on any violation.
 * @param {import('playwright-core').Page} page
 * @param {string} what
 * @param {string} [include]
 */
async function checkAxe(page, what, include) {
  if (!(await page.evaluate(() => 'axe' in window))) await page.evaluate(AXE_SOURCE);
  const violations = await page.evaluate(async ({ tags, include }) => {
    // @ts-ignore axe is injected above
    const result = await window.axe.run(include ? { include: [include] } : document, { runOnly: { type: 'tag', values: tags } });
    return result.violations.map((v) => `${v.id}: ${v.nodes.map((n) => n.target.join(' ')).join(', ')}`);
  }, { tags: TAGS, include });
  if (violations.length) throw new Error(`axe on ${what}:\n${violations.join('\n')}`);
  step(`axe: ${what} passes`);
}

/**
 * Screenshots at 1440 and 1024 px wide.
 * @param {import('playwright-core').Page} page
 * @param {string} name
 */
async function screenshots(page, name) {
  for (const width of [1440, 1024]) {
    await page.setViewportSize({ width, height: 900 });
    await page.screenshot({ path: join(OUT, `inventory-${name}-${width}.png`) });
  }
  await page.setViewportSize({ width: 1440, height: 900 });
}

/**
 * Rows in the inventory table.
 * @param {import('playwright-core').Page} page
 */
function rowCount(page) {
  return page.$$eval('#inventory-table tbody tr', (rows) => rows.length);
}

runTest('inventory', 180_000, async () => {
  const consoleUrl = await startServer({ agents: AGENTS, password: PASSWORD });
  const { page, pageErrors } = await openBrowser();
  await signIn(page, consoleUrl, PASSWORD);

  await openConsolePage(page, 'computers', '/inventory');
  await page.waitForURL((u) => u.pathname === '/inventory');
  await until(`${AGENTS} computers listed`, async () => {
    if ((await rowCount(page)) === AGENTS) return true;
    await page.reload();
    await page.waitForSelector('#inventory-summary:not(:text("Loading…"))');
    return false;
  }, 60_000);
  const first = await page.textContent('#inventory-table tbody tr td:nth-child(3)');
  if (!/^SIM-\d{5}$/.test(first ?? '')) throw new Error(`serial column shows ${first}`);
  await checkAxe(page, 'inventory page');
  await screenshots(page, 'list');

  step('search by serial');
  await page.fill('#inventory-q', 'SIM-00001');
  await page.click('#inventory-apply');
  await until('one row', async () => (await rowCount(page)) === 1);
  if (!page.url().includes('q=SIM-00001')) throw new Error(`search not in the address: ${page.url()}`);
  const href = await page.getAttribute('#inventory-csv', 'href');
  if (href !== '/api/v1/inventory.csv?q=SIM-00001') throw new Error(`CSV link is ${href}`);
  const csv = await page.evaluate(async (h) => (await fetch(h)).text(), href);
  const lines = csv.trim().split('\n');
  if (lines.length !== 2 || !lines[0].startsWith('device_id,hostname,') || !lines[1].includes('SIM-00001')) {
    throw new Error(`CSV:\n${csv}`);
  }

  step('search by package, and a miss');
  await page.fill('#inventory-q', 'scratch');
  await page.click('#inventory-apply');
  await until('all rows', async () => (await rowCount(page)) === AGENTS);
  await page.fill('#inventory-q', 'no-such-package');
  await page.click('#inventory-apply');
  await until('no rows', async () => (await rowCount(page)) === 0);
  const summary = await page.textContent('#inventory-summary');
  if (!summary?.includes('No computer matches')) throw new Error(`summary: ${summary}`);

  step('a computer’s report');
  await page.fill('#inventory-q', '');
  await page.click('#inventory-apply');
  await until('all rows again', async () => (await rowCount(page)) === AGENTS);
  await page.click('#inventory-table tbody tr:first-child button');
  await page.waitForSelector('#inventory-dialog[open]');
  const packages = await page.$$eval('#inventory-packages tbody tr', (r) => r.length);
  if (packages !== 4) throw new Error(`dialog lists ${packages} packages`);
  await checkAxe(page, 'inventory dialog', '#inventory-dialog');
  await screenshots(page, 'detail');
  await page.click('#inventory-dialog-close');

  if (pageErrors.length) throw new Error(`page errors:\n${pageErrors.join('\n')}`);
});
