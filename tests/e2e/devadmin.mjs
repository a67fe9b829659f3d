// Device administration (issue 14), in real Chromium against
// `lectern-server demo`: the Enrollment tokens page makes a token for a room
// (shown once, with a copy button), lists and revokes it; the Devices page
// lists, searches, renames, revokes and deletes computers; the Computer
// availability page shows a room's computers free / in use / offline and
// lets the administrator turn on the corridor screen, which a signed-out
// browser then sees without user names (and not at all once turned off).
// Every page and dialog passes axe-core (WCAG 2.1 A/AA). Screenshots at 1440
// and 1024 px go to tests/e2e/out/devadmin-*.png.
//
// Run: node tests/e2e/devadmin.mjs (needs cargo build -p lectern-server -p lectern-agent).

import { createRequire } from 'node:module';
import { join } from 'node:path';
import { OUT, openBrowser, runTest, signIn, startServer, step, until, openConsolePage } from './lib.mjs';

const PASSWORD = 'devadmin-e2e-password';
const AGENTS = 4;
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
    await page.screenshot({ path: join(OUT, `devadmin-${name}-${width}.png`), fullPage: true });
  }
  await page.setViewportSize({ width: 1440, height: 900 });
}

/**
 * A JSON API call from the signed-in page (its cookie and CSRF token).
 * @param {import('playwright-core').Page} page
 * @param {string} method
 * @param {string} path
 * @param {unknown} [body]
 */
function call(page, method, path, body) {
  return page.evaluate(async ({ method, path, body }) => {
    const csrf = document.querySelector('meta[name="csrf-token"]')?.getAttribute('content') ?? '';
    const r = await fetch(path, {
      method,
      headers: { 'content-type': 'application/json', 'x-csrf-token': csrf },
      body: body === undefined ? undefined : JSON.stringify(body),
    });
    const text = await r.text();
    return { status: r.status, body: text ? JSON.parse(text) : null };
  }, { method, path, body });
}

/**
 * Rows in a table.
 * @param {import('playwright-core').Page} page
 * @param {string} table
 */
function rows(page, table) {
  return page.$$eval(`${table} tbody tr`, (r) => r.length);
}

runTest('devadmin', 240_000, async () => {
  const consoleUrl = await startServer({ agents: AGENTS, password: PASSWORD });
  const { page, pageErrors } = await openBrowser();
  await signIn(page, consoleUrl, PASSWORD);
  const made = await call(page, 'POST', '/api/v1/groups', {
    name: 'Room 5', kind: 'computer', priority: 'low', members: [{ type: 'hostname', value: 'LAB1-PC*' }],
  });
  if (made.status !== 201) throw new Error(`group: ${JSON.stringify(made)}`);
  await until(`${AGENTS} computers online`, async () => {
    const r = await call(page, 'GET', '/api/v1/devices');
    return r.body.filter((/** @type {{online: boolean}} */ d) => d.online).length === AGENTS;
  }, 60_000);

  step('enrollment tokens: make one for Room 5');
  await openConsolePage(page, 'computers', '/tokens');
  await page.waitForURL((u) => u.pathname === '/tokens');
  await page.waitForSelector('#token-room option:text("Room 5")', { state: 'attached' });
  await page.fill('#token-label', 'Room 5 rebuild');
  await page.selectOption('#token-room', { label: 'Room 5' });
  await page.fill('#token-uses', '12');
  await page.click('#token-create');
  await page.waitForSelector('#token-made:not([hidden])');
  const token = await page.inputValue('#token-value');
  if (!token || token.length < 20) throw new Error(`token shown: ${token}`);
  await until('the token listed', async () => (await page.textContent('#tokens-table tbody'))?.includes('Room 5 rebuild') ?? false);
  const first = await page.$$eval('#tokens-table tbody tr:first-child td', (c) => c.map((t) => t.textContent));
  if (first[1] !== 'Room 5' || first[2] !== '12' || first[4] !== 'admin' || first[6] !== 'Active') {
    throw new Error(`token row: ${JSON.stringify(first)}`);
  }
  await checkAxe(page, 'tokens page');

  step('school code: make one, make a new one, turn it off');
  const CODE = /^[0-9A-HJKMNP-TV-Z]{5}-[0-9A-HJKMNP-TV-Z]{5}$/;
  await until('no code yet', async () => (await page.textContent('#code-value'))?.startsWith('Off') ?? false);
  await page.click('#code-new');
  const code = await until('a code shown', async () => {
    const t = (await page.textContent('#code-value')) ?? '';
    return CODE.test(t) ? t : null;
  });
  if (!(await page.textContent('#code-info'))?.startsWith('Made by admin')) throw new Error('who made the code is not shown');
  await checkAxe(page, 'tokens page with a school code');
  await screenshots(page, 'tokens');
  await page.click('#code-new');
  const second = await until('a new code shown', async () => {
    const t = (await page.textContent('#code-value')) ?? '';
    return CODE.test(t) && t !== code ? t : null;
  });
  const fromApi = await call(page, 'GET', '/api/v1/school/code');
  if (fromApi.body.code !== second) throw new Error(`the page shows ${second}, the server has ${JSON.stringify(fromApi.body)}`);
  await page.click('#code-off');
  await until('code off', async () => (await page.textContent('#code-value'))?.startsWith('Off') ?? false);
  if (!(await page.isDisabled('#code-off'))) throw new Error('Turn off stays enabled with no code');
  step(`school code ${code}, then ${second}, then off`);
  step('revoke it');
  await page.click('#tokens-table tbody tr:first-child button:text("Revoke")');
  await until('revoked', async () => (await page.textContent('#tokens-table tbody tr:first-child td:nth-child(7)')) === 'Revoked');
  const listed = await call(page, 'GET', '/api/v1/enrollment-tokens');
  if (JSON.stringify(listed).includes(token)) throw new Error('the token value is listed');

  step('devices: list, search, rename, revoke, delete');
  await openConsolePage(page, 'computers', '/devices');
  await page.waitForURL((u) => u.pathname === '/devices');
  await until(`${AGENTS} rows`, async () => (await rows(page, '#devices-table')) === AGENTS);
  await page.fill('#devices-q', 'PC02');
  await until('one row', async () => (await rows(page, '#devices-table')) === 1);
  await page.fill('#devices-q', '');
  await until('all rows', async () => (await rows(page, '#devices-table')) === AGENTS);
  await checkAxe(page, 'devices page');
  await screenshots(page, 'devices');
  await page.click('#devices-table tbody tr:first-child button:text("Rename")');
  await page.waitForSelector('#rename-dialog[open]');
  await page.fill('#rename-name', 'LAB1-PC02');
  await page.click('#rename-save');
  await page.waitForSelector('#rename-error:not([hidden])');
  const error = await page.textContent('#rename-error');
  if (!/already exists/.test(error ?? '')) throw new Error(`duplicate name: ${error}`);
  await checkAxe(page, 'rename dialog', '#rename-dialog');
  await page.fill('#rename-name', 'LAB1-PC99');
  await page.click('#rename-save');
  await page.waitForSelector('#rename-dialog[open]', { state: 'detached' });
  await until('renamed', async () => (await page.textContent('#devices-table tbody'))?.includes('LAB1-PC99') ?? false);
  const revokeRow = '#devices-table tbody tr:has(td.dev-name:text-is("LAB1-PC02"))';
  await page.click(`${revokeRow} button:text("Revoke")`);
  await until('revoked', async () => (await page.textContent(`${revokeRow} td.dev-state`)) === 'Revoked');
  await page.click(`${revokeRow} button:text("Delete")`);
  await until('deleted', async () => (await rows(page, '#devices-table')) === AGENTS - 1);
  await page.selectOption('#devices-show', 'online');
  await until('online only', async () => (await rows(page, '#devices-table')) === AGENTS - 1);

  step('availability: the room, and the corridor screen turned on');
  await openConsolePage(page, 'computers', '/availability');
  await page.waitForURL((u) => u.pathname === '/availability');
  await page.waitForSelector('.av-room h3:text("Room 5")');
  await until('three computers in Room 5', async () => (await page.$$eval('.av-room .av-tile', (t) => t.length)) === AGENTS - 1);
  const users = await page.$$eval('.av-tile-user', (u) => u.map((x) => x.textContent ?? ''));
  await page.waitForSelector('#av-public:not([hidden])');
  if (await page.isChecked('#av-public-on')) throw new Error('the corridor screen is on by default');
  await checkAxe(page, 'availability page');
  await screenshots(page, 'availability');

  const outside = await page.context().browser()?.newContext({ ignoreHTTPSErrors: true, viewport: { width: 1440, height: 900 } });
  if (!outside) throw new Error('no second context');
  const screen = await outside.newPage();
  const screenErrors = [];
  screen.on('pageerror', (err) => screenErrors.push(err.message));
  await screen.goto(new URL('/availability/screen', consoleUrl).href);
  await screen.waitForSelector('#av-off:not([hidden])');
  step('signed out, off: the screen says it is turned off');

  await page.check('#av-public-on');
  await until('switch saved', async () => (await call(page, 'GET', '/api/v1/availability/settings')).body.public === true);
  await screen.reload();
  await screen.waitForSelector('.av-room h3:text("Room 5")');
  const text = (await screen.textContent('body')) ?? '';
  for (const u of users.filter(Boolean)) {
    if (text.includes(u)) throw new Error(`the public screen shows user ${u}`);
  }
  if (!text.includes('LAB1-PC99')) throw new Error('the public screen lacks computer names');
  if ((await screen.$$('.av-tile-user')).length) throw new Error('user elements on the public screen');
  await checkAxe(screen, 'corridor screen');
  await screenshots(screen, 'screen');

  await page.uncheck('#av-public-on');
  await until('switch off', async () => (await call(page, 'GET', '/api/v1/availability/settings')).body.public === false);
  await screen.reload();
  await screen.waitForSelector('#av-off:not([hidden])');
  if ((await screen.$$('.av-tile')).length) throw new Error('tiles shown while off');
  await outside.close();

  if (pageErrors.length || screenErrors.length) throw new Error(`page errors:\n${[...pageErrors, ...screenErrors].join('\n')}`);
});
