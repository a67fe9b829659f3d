// Power (issue 13.6), in real Chromium against `lectern-server demo`: the
// Power… menu shuts the selected computers down after a countdown (results
// per computer on the tiles), cancels, wakes them (per-computer results:
// the demo's agents relay for each other on their reported subnet), and
// adds and deletes a scheduled power-off of a room. The dialog passes
// axe-core (WCAG 2.1 A/AA); screenshots at 1440 and 1024 px go to
// tests/e2e/out/power-*.png.
//
// Run: node tests/e2e/power.mjs (needs cargo build -p lectern-server).

import { createRequire } from 'node:module';
import { join } from 'node:path';
import { OUT, openBrowser, runTest, signIn, startServer, step, until } from './lib.mjs';

const PASSWORD = 'power-e2e-password';
const AGENTS = 3;
const TAGS = ['wcag2a', 'wcag2aa', 'wcag21a', 'wcag21aa'];
const AXE_SOURCE = createRequire(import.meta.url)('axe-core').source;

/**
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
 * @param {import('playwright-core').Page} page
 * @param {string} name
 */
async function screenshots(page, name) {
  for (const width of [1440, 1024]) {
    await page.setViewportSize({ width, height: 900 });
    await page.screenshot({ path: join(OUT, `power-${name}-${width}.png`) });
  }
  await page.setViewportSize({ width: 1440, height: 900 });
}

/**
 * Calls the API with the page's session.
 * @param {import('playwright-core').Page} page
 * @param {string} method
 * @param {string} path
 * @param {unknown} [body]
 */
async function api(page, method, path, body) {
  return page.evaluate(async ({ method, path, body }) => {
    /** @type {Record<string, string>} */
    const headers = { Accept: 'application/json', 'Content-Type': 'application/json' };
    if (method !== 'GET') headers['X-CSRF-Token'] = document.querySelector('meta[name="csrf-token"]').content;
    const res = await fetch(path, { method, headers, body: body === undefined ? undefined : JSON.stringify(body) });
    return { status: res.status, body: await res.text() };
  }, { method, path, body });
}

runTest('power', 180_000, async () => {
  const consoleUrl = await startServer({ agents: AGENTS, password: PASSWORD });
  const { page, pageErrors } = await openBrowser();
  await signIn(page, consoleUrl, PASSWORD);
  await page.waitForSelector('.tile');
  const room = await api(page, 'POST', '/api/v1/groups',
    { name: 'Lab 1', kind: 'computer', priority: 'low', members: [{ type: 'hostname', value: 'LAB1-*' }] });
  if (room.status !== 201) throw new Error(`group: ${room.status} ${room.body}`);
  // The demo's agents report their inventory (MACs, subnets) at connect.
  await until('inventory of every computer', async () => {
    const r = await api(page, 'GET', '/api/v1/inventory');
    return JSON.parse(r.body).length === AGENTS;
  });

  await page.click('#select-all');
  await page.click('#power-button');
  await page.waitForSelector('#power-dialog[open]');
  await page.waitForSelector('#power-schedule-group option', { state: 'attached' });
  await checkAxe(page, 'power dialog', '#power-dialog');
  await screenshots(page, 'dialog');

  step('shut down with a 2 s countdown');
  await page.fill('#power-countdown', '2');
  await page.click('#power-go');
  await until('done on every tile', async () => (await page.textContent('#results-summary'))?.startsWith(`done ${AGENTS}`));
  const label = await page.textContent('#results-command');
  if (!label?.includes('3 computers')) throw new Error(`command line: ${label}`);

  step('a countdown over 600 s is refused in the dialog');
  await page.fill('#power-countdown', '601');
  await page.click('#power-go');
  await page.waitForSelector('#power-error:not([hidden])');

  step('cancel');
  await page.click('#power-cancel-countdown');
  await until('cancel done', async () => (await page.textContent('#results-summary'))?.startsWith(`done ${AGENTS}`)
    && (await page.getAttribute('#results', 'data-command-type')) === 'cancel_power');

  step('wake');
  await page.check('#power-wake');
  await page.fill('#power-countdown', '60');
  await page.click('#power-go');
  await until('a result per computer', async () => (await page.$$('#power-results li')).length === AGENTS);
  const results = await page.$$eval('#power-results li', (lis) => lis.map((li) => li.textContent));
  if (!results.every((r) => /woken by LAB1-PC0\d/.test(r ?? ''))) throw new Error(`wake results: ${results.join('; ')}`);
  await screenshots(page, 'wake');

  step('schedule a power-off of the room, then delete it');
  await page.selectOption('#power-schedule-group', { label: 'Lab 1' });
  await page.fill('#power-schedule-time', '16:45');
  await page.click('#power-schedule-add');
  await until('schedule listed', async () => (await page.textContent('#power-schedules tbody'))?.includes('16:45'));
  await checkAxe(page, 'power dialog with a schedule', '#power-dialog');
  await screenshots(page, 'schedule');
  await page.click('#power-schedules tbody button');
  await until('schedule gone', async () => (await page.textContent('#power-schedules tbody'))?.includes('No power-off'));
  await page.click('#power-close');

  if (pageErrors.length) throw new Error(`page errors:\n${pageErrors.join('\n')}`);
});
