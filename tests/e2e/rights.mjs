// A console that fits each user (issue 12, point 5), in real Chromium:
// - a limited teacher sees only the navigation entries and buttons their
//   rights give them (the server renders the navigation, page.js hides
//   data-right buttons), and a page they may not use shows a clear page;
// - a refused action (a right removed while the page is open) reads as a
//   sentence, never a right's internal name;
// - when the stream is refused for good (close code 4403: the rights went
//   while the page was open) the console says "No access" and stops
//   reconnecting;
// - a user with no rights at all signs in to a clear "no access" page with a
//   working "Log out", and no stream and no "Reconnecting…" loop.
// Screenshots (1440 and 1024 px) go to tests/e2e/out/rights-*.png.
//
// Run: node tests/e2e/rights.mjs (needs cargo build -p lectern-server).

import { join } from 'node:path';
import { launchChromium, onCleanup, openBrowser, OUT, runTest, setFailurePage, signIn, startServer, step, until } from './lib.mjs';

const PASSWORD = 'rights-e2e-password';
const TEACHER = 'ms.khan';
const NEWCOMER = 'new.teacher';
const CLOSE_NO_ACCESS = 4403;

/**
 * Calls the API with the page's session.
 * @param {import('playwright-core').Page} page
 * @param {string} method
 * @param {string} path
 * @param {unknown} [body]
 */
async function api(page, method, path, body) {
  const r = await page.evaluate(async ({ method, path, body }) => {
    /** @type {Record<string, string>} */
    const headers = { Accept: 'application/json' };
    if (method !== 'GET') headers['X-CSRF-Token'] = document.querySelector('meta[name="csrf-token"]').content;
    if (body !== undefined) headers['Content-Type'] = 'application/json';
    const res = await fetch(path, { method, headers, body: body === undefined ? undefined : JSON.stringify(body) });
    return { status: res.status, text: await res.text() };
  }, { method, path, body });
  if (r.status >= 300) throw new Error(`${method} ${path}: ${r.status} ${r.text}`);
  return r.text ? JSON.parse(r.text) : null;
}

/**
 * A browser of its own, its stream WebSockets routed through Playwright so
 * the test can count them and drop one.
 * @param {string} consoleUrl
 */
async function userBrowser(consoleUrl) {
  const browser = await launchChromium();
  onCleanup(() => browser.close().catch(() => {}));
  const page = await (await browser.newContext({ ignoreHTTPSErrors: true, viewport: { width: 1440, height: 900 } })).newPage();
  /** Stream connections opened, and the close codes the server sent. */
  const streams = { opened: 0, /** @type {number[]} */ serverCloses: [], /** @type {import('playwright-core').WebSocketRoute[]} */ routes: [] };
  await page.routeWebSocket(/\/api\/v1\/stream$/, (ws) => {
    streams.opened += 1;
    streams.routes.push(ws);
    const server = ws.connectToServer();
    server.onClose((code, reason) => {
      streams.serverCloses.push(code ?? 0);
      ws.close({ code, reason });
    });
  });
  await page.goto(consoleUrl);
  return { page, streams };
}

/**
 * Signs in on the login page.
 * @param {import('playwright-core').Page} page
 * @param {string} username
 * @param {string} password
 */
async function logIn(page, username, password) {
  await page.waitForURL((url) => url.pathname === '/login', { timeout: 15_000 });
  await page.fill('#username', username);
  await page.fill('#password', password);
  await page.click('#login-button');
  await page.waitForURL((url) => url.pathname === '/', { timeout: 15_000 });
  await page.waitForFunction(() => document.body.dataset.rightsApplied !== undefined, null, { timeout: 15_000 });
  step(`${username} signed in`);
}

/**
 * Screenshots at 1440 and 1024 px.
 * @param {import('playwright-core').Page} page
 * @param {string} name
 */
async function screenshots(page, name) {
  for (const width of [1440, 1024]) {
    await page.setViewportSize({ width, height: 900 });
    await page.screenshot({ path: join(OUT, `rights-${name}-${width}.png`), fullPage: true });
  }
  await page.setViewportSize({ width: 1440, height: 900 });
}

/**
 * The visible toolbar buttons' texts.
 * @param {import('playwright-core').Page} page
 */
function visibleButtons(page) {
  return page.$$eval('.toolbar button', (bs) => bs.filter((b) => /** @type {HTMLElement} */ (b).offsetParent !== null).map((b) => b.textContent?.trim()));
}

runTest('rights', 300_000, async () => {
  const consoleUrl = await startServer({ agents: 3, password: PASSWORD });
  const { page: admin } = await openBrowser();
  await signIn(admin, consoleUrl, PASSWORD);
  const devices = await until('three devices online', async () => {
    const list = await api(admin, 'GET', '/api/v1/devices');
    return list.filter((d) => d.online).length === 3 && list;
  }, 60_000);
  const mine = devices.map((d) => d.hostname).sort().slice(0, 2);
  const group = await api(admin, 'POST', '/api/v1/groups', {
    name: 'Room 1', kind: 'computer', priority: 'low', members: mine.map((value) => ({ type: 'hostname', value })),
  });
  await api(admin, 'POST', '/api/v1/users', { username: TEACHER, password: 'ms.khan-pw-4321', role: 'teacher' });
  const rule = await api(admin, 'POST', '/api/v1/access-rules', {
    principal: { type: 'user', value: TEACHER },
    features: ['devices.view', 'command.lock', 'command.message', 'reports.manage'],
    group_access: { [String(group.id)]: 'control' },
  });
  await api(admin, 'POST', '/api/v1/users', { username: NEWCOMER, password: 'new.teacher-pw-4321', role: 'teacher' });
  step(`${TEACHER}: Room 1 (${mine.join(', ')}), lock and message; ${NEWCOMER}: no rights`);

  // The limited teacher: their class, their buttons, their pages.
  const { page: teacher, streams } = await userBrowser(consoleUrl);
  setFailurePage(teacher);
  await logIn(teacher, TEACHER, 'ms.khan-pw-4321');
  await until('the class of two', async () => (await teacher.$$('.tile')).length === 2);
  const nav = await teacher.$$eval('nav.pagenav a', (as) => as.map((a) => `${a.textContent} ${new URL(/** @type {HTMLAnchorElement} */ (a).href).pathname}`));
  if (nav.join(', ') !== 'Classroom /, Safeguarding /reports, Computers /devices') throw new Error(`teacher's navigation: ${nav.join(', ')}`);
  const buttons = await visibleButtons(teacher);
  if (buttons.join(', ') !== 'Select all, Select none, Send message, Clear message, Lock, Unlock') throw new Error(`teacher's buttons: ${buttons.join(', ')}`);
  if (await teacher.isVisible('.tile button.live-view')) throw new Error('Live view offered without the live_view right');
  await screenshots(teacher, 'teacher-console');
  step(`teacher sees ${nav.join(', ')} and ${buttons.join(', ')}`);
  // Computers holds two pages she may use: its sub-navigation lists both.
  await teacher.click('nav.pagenav a[data-section="computers"]');
  await teacher.waitForURL((u) => u.pathname === '/devices');
  const sub = await teacher.$$eval('nav.subnav a', (as) => as.map((a) => `${a.textContent} ${new URL(/** @type {HTMLAnchorElement} */ (a).href).pathname}`));
  if (sub.join(', ') !== 'Devices /devices, Availability /availability') throw new Error(`teacher's Computers pages: ${sub.join(', ')}`);
  await teacher.goto(new URL('/', consoleUrl).href);
  await until('the class of two again', async () => (await teacher.$$('.tile')).length === 2);

  // A page not for them: a clear page with a way back.
  await teacher.goto(new URL('/access', consoleUrl).href);
  await teacher.waitForSelector('#no-access-message');
  const denied = await teacher.textContent('#no-access-message');
  if (!/no access to this page\. Ask your administrator\./.test(denied || '')) throw new Error(`no-access page says: ${denied}`);
  await screenshots(teacher, 'teacher-no-access');
  await teacher.goto(consoleUrl);
  await until('the class again', async () => (await teacher.$$('.tile')).length === 2);
  await until('the stream', async () => (await teacher.textContent('#stream-status'))?.trim() === 'Live');

  // The lock right goes while the page is open: the button is still there,
  // and the server's refusal reads as a sentence.
  await api(admin, 'PUT', `/api/v1/access-rules/${rule.id}`, { ...rule, features: ['devices.view', 'command.message', 'reports.manage'] });
  await teacher.click('#select-all');
  await teacher.click('#cmd-lock');
  await until('the refusal', async () => (await teacher.textContent('#notice'))?.trim());
  const notice = (await teacher.textContent('#notice'))?.trim();
  if (notice !== "You can't lock or unlock these computers. Ask your administrator.") throw new Error(`refusal reads: ${notice}`);
  await screenshots(teacher, 'teacher-refused');
  step(`refusal: ${notice}`);

  // All access goes: the next stream is refused for good.
  await api(admin, 'DELETE', `/api/v1/access-rules/${rule.id}`);
  const before = streams.opened;
  // Drop the open stream as a network would; the console reconnects once.
  streams.routes[streams.routes.length - 1].close({ code: 1011, reason: 'test: dropped' });
  await until('the stream refused', async () => (await teacher.textContent('#stream-status'))?.trim() === 'No access');
  if (!streams.serverCloses.includes(CLOSE_NO_ACCESS)) throw new Error(`server closes: ${streams.serverCloses}`);
  // Backoff would have retried at 0.5 s, 1 s and 2 s: nothing more comes.
  await teacher.waitForTimeout(4000);
  if (streams.opened !== before + 1) throw new Error(`${streams.opened - before} reconnects after the refusal`);
  const status = (await teacher.textContent('#stream-status'))?.trim();
  if (status !== 'No access') throw new Error(`stream status: ${status}`);
  const said = (await teacher.textContent('#grid-empty'))?.trim();
  if (said !== 'Your account has no access to any computers any more. Ask your administrator.') throw new Error(`the grid says: ${said}`);
  if ((await teacher.$$('.tile')).length !== 0) throw new Error('tiles left after access went');
  if (await teacher.isVisible('#notice')) throw new Error(`a notice: ${await teacher.textContent('#notice')}`);
  await screenshots(teacher, 'teacher-stream-refused');
  step('the refused stream stays closed');

  // A user with no rights at all: a clear page, no stream, a working Log out.
  const { page: newcomer, streams: newcomerStreams } = await userBrowser(consoleUrl);
  setFailurePage(newcomer);
  await logIn(newcomer, NEWCOMER, 'new.teacher-pw-4321');
  const message = (await newcomer.textContent('#no-access-message'))?.trim();
  if (message !== 'Your account has no access to any computers yet. Ask your administrator.') throw new Error(`newcomer sees: ${message}`);
  if ((await newcomer.$$('nav.pagenav a')).length !== 0) throw new Error('navigation links for a user with no rights');
  if (await newcomer.$('#stream-status')) throw new Error('a stream status on the no-access page');
  await newcomer.waitForTimeout(2000);
  if (newcomerStreams.opened !== 0) throw new Error(`${newcomerStreams.opened} stream connections from the no-access page`);
  await screenshots(newcomer, 'no-access');
  await newcomer.click('#no-access-logout');
  await newcomer.waitForURL((url) => url.pathname === '/login', { timeout: 15_000 });
  step('no-access page: clear, no stream, Log out works');
});
