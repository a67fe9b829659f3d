// Accessibility (issue 12, point 9, the axe-core half): every console page,
// and each dialog that opens without side effects, passes axe-core's WCAG 2.1
// A and AA rules, for an administrator and for a limited teacher (whose pages
// lack buttons and navigation entries, and who meets the "no access" page).
// Screenshots of each page at 1440 and 1024 px go to tests/e2e/out/.
//
// Run: node tests/e2e/accessibility.mjs (needs cargo build -p lectern-server).

import { createRequire } from 'node:module';
import { join } from 'node:path';
import { launchChromium, onCleanup, openBrowser, OUT, runTest, setFailurePage, signIn, startServer, step, until } from './lib.mjs';

const PASSWORD = 'accessibility-e2e-password';
const TEACHER = 'ms.khan';
const TEACHER_PASSWORD = 'ms.khan-pw-4321';
/** The rules axe runs: WCAG 2.0 and 2.1, levels A and AA. */
const TAGS = ['wcag2a', 'wcag2aa', 'wcag21a', 'wcag21aa'];
const WIDTHS = [1440, 1024];

const AXE_SOURCE = createRequire(import.meta.url)('axe-core').source;

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
 * Runs axe on the page (or inside `include`) and fails on any violation.
 * @param {import('playwright-core').Page} page
 * @param {string} what for the failure message
 * @param {string} [include] a CSS selector to limit the check to (a dialog)
 */
async function checkAxe(page, what, include) {
  if (!(await page.evaluate(() => 'axe' in window))) await page.evaluate(AXE_SOURCE);
  const violations = await page.evaluate(async ({ tags, include }) => {
    // @ts-ignore axe is injected above
    const result = await window.axe.run(include ? { include: [include] } : document, { runOnly: { type: 'tag', values: tags } });
    return result.violations.map((v) => ({
      id: v.id,
      help: v.help,
      nodes: v.nodes.map((n) => `${n.target.join(' ')}: ${n.failureSummary}`),
    }));
  }, { tags: TAGS, include });
  if (violations.length) {
    throw new Error(`axe on ${what}:\n${violations.map((v) => `- ${v.id} (${v.help}):\n    ${v.nodes.join('\n    ')}`).join('\n')}`);
  }
  step(`axe: ${what} passes`);
}

/**
 * Waits until a page's script has run (rights applied, loading done).
 * @param {import('playwright-core').Page} page
 */
async function settled(page) {
  await page.waitForFunction(() => document.body.dataset.rightsApplied !== undefined, null, { timeout: 15_000 });
  await page.waitForLoadState('networkidle', { timeout: 5_000 }).catch(() => { /* the console's stream stays open */ });
  await page.waitForFunction(() => ![...document.querySelectorAll('.hint, p')].some((p) => p.textContent?.trim() === 'Loading…' && !p.closest('[hidden]')), null, { timeout: 15_000 });
}

/**
 * Screenshots the page at each width.
 * @param {import('playwright-core').Page} page
 * @param {string} name
 */
async function screenshots(page, name) {
  for (const width of WIDTHS) {
    await page.setViewportSize({ width, height: 900 });
    await page.screenshot({ path: join(OUT, `accessibility-${name}-${width}.png`), fullPage: true });
  }
  await page.setViewportSize({ width: WIDTHS[0], height: 900 });
}

/**
 * Every page in the navigation (and each section's sub-navigation), as
 * the layout lists them for this user.
 * @param {import('playwright-core').Page} page
 * @returns {Promise<string[]>}
 */
async function navigationPages(page) {
  const paths = new Set(await page.$$eval('nav.pagenav a', (as) => as.map((a) => new URL(/** @type {HTMLAnchorElement} */ (a).href).pathname)));
  for (const p of [...paths]) {
    await page.goto(new URL(p, page.url()).href);
    for (const sub of await page.$$eval('nav.subnav a', (as) => as.map((a) => new URL(/** @type {HTMLAnchorElement} */ (a).href).pathname))) paths.add(sub);
  }
  return [...paths];
}

/**
 * Checks and photographs every page `page`'s user can reach.
 * @param {import('playwright-core').Page} page
 * @param {string} who for names
 */
async function everyPage(page, who) {
  const paths = await navigationPages(page);
  step(`${who}: pages ${paths.join(' ')}`);
  for (const path of paths) {
    await page.goto(new URL(path, page.url()).href);
    await settled(page);
    if (path === '/') await page.waitForSelector('.tile', { timeout: 30_000 });
    const name = `${who}-${path === '/' ? 'classroom' : path.slice(1)}`;
    await checkAxe(page, `${who} ${path}`);
    await screenshots(page, name);
  }
  return paths;
}

/**
 * The console's dialogs that open without changing anything: web lists
 * (opening sends nothing) and the live view of a tile.
 * @param {import('playwright-core').Page} page
 * @param {string} who
 */
async function consoleDialogs(page, who) {
  await page.goto(new URL('/', page.url()).href);
  await settled(page);
  await page.waitForSelector('.tile', { timeout: 30_000 });
  if (await page.isVisible('#web-lists-button')) {
    await page.click('.tile .select');
    await page.click('#web-lists-button');
    await page.waitForSelector('#web-lists[open]');
    await checkAxe(page, `${who} web lists dialog`, '#web-lists');
    await screenshots(page, `${who}-web-lists`);
    await page.click('#web-lists-cancel');
    await page.waitForFunction(() => !document.querySelector('#web-lists')?.hasAttribute('open'));
  }
  const live = page.locator('.tile button.live-view:visible').first();
  if (await live.count()) {
    await live.click();
    await page.waitForSelector('#live-view[open]');
    await until('the live view decision', async () => (await page.textContent('#live-view-decision'))?.trim());
    await checkAxe(page, `${who} live view dialog`, '#live-view');
    await screenshots(page, `${who}-live-view`);
    await page.click('#live-view-close');
    await page.waitForFunction(() => !document.querySelector('#live-view')?.hasAttribute('open'));
  }
}

/**
 * The groups page's editor panel, opened on the first group.
 * @param {import('playwright-core').Page} page
 * @param {string} who
 */
async function groupEditor(page, who) {
  await page.goto(new URL('/groups', page.url()).href);
  await settled(page);
  await page.click('#groups-table tbody tr:first-child button, #groups-table tbody tr:first-child a');
  await page.waitForSelector('#group-editor:not([hidden])');
  await checkAxe(page, `${who} group editor`);
  await screenshots(page, `${who}-group-editor`);
}

/**
 * Signs in as `username` in a browser of its own.
 * @param {string} consoleUrl
 * @param {string} username
 * @param {string} password
 */
async function signInAs(consoleUrl, username, password) {
  const browser = await launchChromium();
  onCleanup(() => browser.close().catch(() => {}));
  const page = await (await browser.newContext({ ignoreHTTPSErrors: true, viewport: { width: 1440, height: 900 } })).newPage();
  await page.goto(consoleUrl);
  await page.waitForURL((url) => url.pathname === '/login', { timeout: 15_000 });
  await page.fill('#username', username);
  await page.fill('#password', password);
  await page.click('#login-button');
  await page.waitForURL((url) => url.pathname === '/', { timeout: 15_000 });
  step(`${username} signed in`);
  return page;
}

runTest('accessibility', 600_000, async () => {
  const consoleUrl = await startServer({ agents: 4, password: PASSWORD });
  const { page, pageErrors } = await openBrowser();

  // The login page, before anyone signs in.
  await page.goto(new URL('/login', consoleUrl).href);
  await checkAxe(page, 'login page');
  await screenshots(page, 'login');

  await signIn(page, consoleUrl, PASSWORD);
  await page.waitForSelector('.tile', { timeout: 30_000 });

  // A limited teacher: the class of two computers, a few commands, reports.
  const devices = await until('four devices online', async () => {
    const list = await api(page, 'GET', '/api/v1/devices');
    return list.filter((d) => d.online).length === 4 && list;
  }, 60_000);
  const hostnames = devices.map((d) => d.hostname).sort().slice(0, 2);
  const group = await api(page, 'POST', '/api/v1/groups', {
    name: 'Room 1', kind: 'computer', priority: 'low',
    members: hostnames.map((value) => ({ type: 'hostname', value })),
  });
  await api(page, 'POST', '/api/v1/users', { username: TEACHER, password: TEACHER_PASSWORD, role: 'teacher' });
  await api(page, 'POST', '/api/v1/access-rules', {
    principal: { type: 'user', value: TEACHER },
    features: ['devices.view', 'command.lock', 'command.message', 'live_view', 'reports.manage', 'groups.view'],
    group_access: { [String(group.id)]: 'control' }, bypass_privacy: true,
  });
  step(`teacher ${TEACHER}: Room 1 (${hostnames.join(', ')})`);

  const adminPages = await everyPage(page, 'admin');
  if (adminPages.length < 8) throw new Error(`the administrator's navigation lists only ${adminPages.join(' ')}`);
  await consoleDialogs(page, 'admin');
  await groupEditor(page, 'admin');

  const teacher = await signInAs(consoleUrl, TEACHER, TEACHER_PASSWORD);
  setFailurePage(teacher);
  const teacherPages = await everyPage(teacher, 'teacher');
  if (teacherPages.join(' ') !== '/ /reports /devices /groups /availability /resultant') throw new Error(`the teacher's pages: ${teacherPages.join(' ')}`);
  await consoleDialogs(teacher, 'teacher');
  // A page the teacher may not use: the "no access" page.
  await teacher.goto(new URL('/access', consoleUrl).href);
  await settled(teacher);
  await checkAxe(teacher, 'teacher no-access page');
  await screenshots(teacher, 'teacher-no-access');

  if (pageErrors.length) throw new Error(`page errors: ${pageErrors.join('; ')}`);
});
