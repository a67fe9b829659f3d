// Browser end-to-end test of the classroom page's classes and conveniences.
//
// Starts `lectern-server demo` with 24 simulated agents (LAB1-PC01…24),
// makes two rooms and a limited teacher through the API, then in real
// Chromium: the class tree and its selection, search, sort, tile size kept
// after a reload and per user, a limited teacher who sees only her room in
// the tree and the grid, Shift-click and Ctrl+A selection, the "select
// first" hint, Enter in the text box (asks, never sends), the tile menu
// (right-click and Shift+F10) with the properties panel, clear message, a
// timed lock that a simulated device ends by itself, keyboard navigation of
// the grid (one tab stop, arrows, Space), and axe-core's WCAG 2.1 A/AA rules
// on the page and its dialogs. Screenshots at 1440 and 1024 px.
//
// Env: see lib.mjs.

import assert from 'node:assert/strict';
import { readFileSync } from 'node:fs';
import { join } from 'node:path';
import { HERE, OUT, openBrowser, runTest, setFailurePage, startServer, step } from './lib.mjs';

const AGENTS = 24;
const PASSWORD = 'e2e-pass-123';
const TEACHER = { username: 'ms.khan', password: 'khan-pass-123' };
const OVERALL_TIMEOUT_MS = 5 * 60 * 1000;

/** @type {import('playwright-core').Page} */
let page;

/**
 * Calls the API with the page's session (and CSRF token on writes).
 * @param {import('playwright-core').Page} p
 * @param {string} method
 * @param {string} path
 * @param {unknown} [body]
 * @returns {Promise<{status: number, json: any}>}
 */
async function call(p, method, path, body) {
  return p.evaluate(async ({ method, path, body }) => {
    const csrf = /** @type {HTMLMetaElement} */ (document.querySelector('meta[name="csrf-token"]')).content;
    /** @type {RequestInit} */
    const init = { method, headers: { Accept: 'application/json', 'X-CSRF-Token': csrf }, cache: 'no-store' };
    if (body !== undefined) {
      init.body = JSON.stringify(body);
      /** @type {Record<string, string>} */ (init.headers)['Content-Type'] = 'application/json';
    }
    const r = await fetch(path, init);
    const text = await r.text();
    let json = null;
    try { json = JSON.parse(text); } catch { json = text; }
    return { status: r.status, json };
  }, { method, path, body });
}

/**
 * Host names of the tiles shown, in order.
 * @param {import('playwright-core').Page} p
 * @returns {Promise<string[]>}
 */
function shownNames(p) {
  return p.$$eval('.tile:not([hidden]) .name', (els) => els.map((e) => e.textContent.trim()));
}

/**
 * Waits until the shown tiles are exactly `want` (in any order).
 * @param {import('playwright-core').Page} p
 * @param {string[]} want
 * @param {string} what
 */
async function expectShown(p, want, what) {
  try {
    await p.waitForFunction((want) => {
      const names = [...document.querySelectorAll('.tile:not([hidden]) .name')].map((e) => e.textContent.trim()).sort();
      return JSON.stringify(names) === JSON.stringify([...want].sort());
    }, want, { timeout: 20_000 });
  } catch (err) {
    throw new Error(`${what}: expected ${JSON.stringify(want)}, shown ${JSON.stringify(await shownNames(p))}`, { cause: err });
  }
  step(`${what}: ${want.length} tiles`);
}

/**
 * Signs in as a user in a fresh page of a new context.
 * @param {import('playwright-core').Browser} browser
 * @param {string} url
 * @param {string} user
 * @param {string} password
 * @param {number} width
 */
async function signInAs(browser, url, user, password, width = 1440) {
  const context = await browser.newContext({ ignoreHTTPSErrors: true, viewport: { width, height: 900 } });
  const p = await context.newPage();
  p.on('dialog', (d) => d.accept());
  await p.goto(url);
  await p.waitForURL((u) => u.pathname === '/login', { timeout: 15_000 });
  await p.fill('#username', user);
  await p.fill('#password', password);
  await p.click('#login-button');
  await p.waitForURL((u) => u.pathname === '/', { timeout: 15_000 });
  return p;
}

/**
 * Runs axe-core's WCAG 2.1 A and AA rules on the page (as it is now).
 * @param {import('playwright-core').Page} p
 * @param {string} what
 */
async function axe(p, what) {
  const source = readFileSync(join(HERE, 'node_modules/axe-core/axe.min.js'), 'utf8');
  // The page's CSP forbids inline scripts; evaluate runs outside it.
  await p.evaluate(source);
  const violations = await p.evaluate(async () => {
    // @ts-ignore axe is the global axe-core defines
    const r = await window.axe.run(document, { runOnly: { type: 'tag', values: ['wcag2a', 'wcag2aa', 'wcag21a', 'wcag21aa'] } });
    return r.violations.map((v) => `${v.id} (${v.nodes.length}): ${v.nodes.slice(0, 2).map((n) => n.target.join(' ')).join(', ')}`);
  });
  assert.deepEqual(violations, [], `axe on ${what}`);
  step(`axe-core: no WCAG 2.1 A/AA violations on ${what}`);
}

/**
 * Screenshots the page at 1440 and 1024 px wide.
 * @param {import('playwright-core').Page} p
 * @param {string} name
 */
async function shoot(p, name) {
  for (const width of [1440, 1024]) {
    await p.setViewportSize({ width, height: 900 });
    await p.waitForTimeout(150);
    await p.screenshot({ path: join(OUT, `classes-${name}-${width}.png`) });
  }
  await p.setViewportSize({ width: 1440, height: 900 });
}

/**
 * Waits for the notice to be shown (or hidden) with a text.
 * @param {import('playwright-core').Page} p
 * @param {RegExp | null} pattern null: hidden
 */
async function expectNotice(p, pattern) {
  await p.waitForFunction((src) => {
    const n = document.getElementById('notice');
    return src === null ? n.hidden : !n.hidden && new RegExp(src, 'i').test(n.textContent);
  }, pattern ? pattern.source : null, { timeout: 10_000 });
}

/**
 * The devices by host name, from the API.
 * @returns {Promise<Record<string, any>>}
 */
async function devicesByName() {
  const r = await call(page, 'GET', '/api/v1/devices');
  return Object.fromEntries(r.json.map((d) => [d.hostname, d]));
}

const hosts = (from, to) => Array.from({ length: to - from + 1 }, (_, i) => `LAB1-PC${String(from + i).padStart(2, '0')}`);

await runTest('classes', OVERALL_TIMEOUT_MS, async () => {
  const consoleUrl = await startServer({ agents: AGENTS, password: PASSWORD });
  const { page: adminPage, pageErrors } = await openBrowser();
  page = adminPage;
  await page.goto(consoleUrl);
  await page.waitForURL((url) => url.pathname === '/login', { timeout: 15_000 });
  await page.fill('#username', 'admin');
  await page.fill('#password', PASSWORD);
  await page.click('#login-button');
  await page.waitForURL((url) => url.pathname === '/', { timeout: 15_000 });
  await page.waitForFunction((n) => document.querySelectorAll('.tile').length === n, AGENTS, { timeout: 30_000 });
  step(`${AGENTS} tiles`);

  // Two rooms and a teacher who controls room A only.
  const roomA = await call(page, 'POST', '/api/v1/groups', { name: 'Room A', kind: 'computer', priority: 'low', members: [{ type: 'hostname', value: 'LAB1-PC0*' }] });
  assert.equal(roomA.status, 201, JSON.stringify(roomA.json));
  const roomB = await call(page, 'POST', '/api/v1/groups', { name: 'Room B', kind: 'computer', priority: 'low', members: [{ type: 'hostname', value: 'LAB1-PC1*' }] });
  assert.equal(roomB.status, 201);
  let r = await call(page, 'POST', '/api/v1/users', { ...TEACHER, role: 'teacher' });
  assert.equal(r.status, 201, JSON.stringify(r.json));
  r = await call(page, 'POST', '/api/v1/access-rules', {
    principal: { type: 'user', value: TEACHER.username },
    features: ['devices.view', 'command.lock', 'command.message'],
    group_access: { [roomA.json.id]: 'control' },
  });
  assert.equal(r.status, 201, JSON.stringify(r.json));
  // A lesson in room B: its tiles get the lesson and web-filter badges.
  r = await call(page, 'POST', '/api/v1/lessons', { group_id: roomB.json.id, minutes: 30, restrictions: { web_filter_mode: 'block_list', block_list: ['games.example'] } });
  assert.equal(r.status, 201, JSON.stringify(r.json));
  const roomAHosts = hosts(1, 9);
  const roomBHosts = hosts(10, 19);

  // ---- The tree: reload so it lists the new rooms and the lesson.
  await page.reload();
  await page.waitForSelector(`.tree-item[data-class="group:${roomA.json.id}"]`, { timeout: 15_000 });
  await page.waitForSelector('#tree-lessons .tree-item', { timeout: 15_000 });
  await page.click(`.tree-item[data-class="group:${roomA.json.id}"]`);
  await expectShown(page, roomAHosts, 'Room A chosen');
  assert.equal(await page.getAttribute(`.tree-item[data-class="group:${roomA.json.id}"]`, 'aria-current'), 'true');
  await page.click('#tree-lessons .tree-item');
  await expectShown(page, roomBHosts, 'the running lesson chosen');
  await page.waitForFunction(() => [...document.querySelectorAll('.tile:not([hidden])')].every((t) =>
    /Lesson/.test(t.querySelector('.badges').textContent) && /Sites blocked/.test(t.querySelector('.badges').textContent)), null, { timeout: 15_000 });
  step('lesson and web-filter badges on the lesson\'s tiles');
  await shoot(page, 'lesson');
  await page.click('.tree-item[data-class="all"]');
  await expectShown(page, hosts(1, AGENTS), 'All devices');

  // ---- Search (host name and user) and sort.
  await page.fill('#grid-search', 'pc2');
  await expectShown(page, hosts(20, 24), 'search "pc2"');
  const someUser = (await devicesByName())['LAB1-PC07'].state.user;
  assert.ok(someUser, 'the demo signs users in');
  await page.fill('#grid-search', someUser);
  await page.waitForFunction((u) => [...document.querySelectorAll('.tile:not([hidden]) .user')].length > 0
    && [...document.querySelectorAll('.tile:not([hidden]) .user')].every((e) => e.textContent.includes(u) || e.title.includes(u)), someUser, { timeout: 10_000 })
    .catch(async () => {
      // A person's display name may stand for the user: at least PC07 is shown.
      assert.ok((await shownNames(page)).includes('LAB1-PC07'), `search for user ${someUser}`);
    });
  assert.ok((await shownNames(page)).includes('LAB1-PC07'));
  step(`search by user "${someUser}"`);
  await page.fill('#grid-search', '');
  await expectShown(page, hosts(1, AGENTS), 'search cleared');
  await page.selectOption('#grid-sort', 'status');
  await page.selectOption('#grid-sort', 'name');
  const names = await shownNames(page);
  assert.deepEqual(names, hosts(1, AGENTS), 'name order');

  // ---- Tile size: kept after a reload, and per user.
  await page.selectOption('#grid-size', 'large');
  await page.waitForFunction(() => document.getElementById('grid').classList.contains('size-large'));
  await page.waitForFunction(async () => (await (await fetch('/api/v1/me/preferences')).json()).tile_size === 'large', null, { timeout: 10_000 });
  await page.reload();
  await page.waitForFunction(() => document.getElementById('grid').classList.contains('size-large')
    && /** @type {HTMLSelectElement} */ (document.getElementById('grid-size')).value === 'large', null, { timeout: 30_000 });
  step('tile size "large" kept after a reload');
  await shoot(page, 'large');

  // ---- The limited teacher: only room A in the tree and the grid; her own tile size.
  const teacherPage = await signInAs(page.context().browser(), consoleUrl, TEACHER.username, TEACHER.password);
  setFailurePage(teacherPage);
  await expectShown(teacherPage, roomAHosts, 'the limited teacher sees only room A');
  await teacherPage.waitForSelector(`.tree-item[data-class="group:${roomA.json.id}"]`, { timeout: 15_000 });
  const treeText = await teacherPage.textContent('#class-tree');
  assert.ok(!/Room B/.test(treeText), `her tree lists no room B: ${treeText}`);
  assert.equal(await teacherPage.locator('#tree-lessons .tree-item').count(), 0, 'no lesson of another room');
  assert.ok(await teacherPage.evaluate(() => document.getElementById('grid').classList.contains('size-medium')), 'her own (default) tile size');
  await teacherPage.selectOption('#grid-size', 'small');
  await teacherPage.waitForFunction(async () => (await (await fetch('/api/v1/me/preferences')).json()).tile_size === 'small', null, { timeout: 10_000 });
  await shoot(teacherPage, 'teacher');
  await teacherPage.context().close();
  setFailurePage(page);
  await page.reload();
  await page.waitForFunction(() => document.getElementById('grid').classList.contains('size-large'), null, { timeout: 15_000 });
  step('her choice did not change the administrator\'s');
  await page.selectOption('#grid-size', 'medium');
  await page.waitForFunction((n) => document.querySelectorAll('.tile').length === n, AGENTS, { timeout: 30_000 });

  // ---- Selection: the hint goes when something is selected; Shift-click; Ctrl+A.
  await page.click('#cmd-lock');
  await expectNotice(page, /select at least one/);
  const tile = (name) => page.locator('.tile', { has: page.locator('.name', { hasText: new RegExp(`^${name}$`) }) });
  await tile('LAB1-PC03').click();
  await expectNotice(page, null);
  step('the "select at least one" hint went away on selecting');
  await tile('LAB1-PC06').click({ modifiers: ['Shift'] });
  assert.deepEqual(await page.$$eval('.tile.selected .name', (e) => e.map((x) => x.textContent)), hosts(3, 6), 'Shift-click range');
  assert.equal(await page.textContent('#selection-count'), '4 selected');
  await page.click('#select-none');
  await page.click(`.tree-item[data-class="group:${roomA.json.id}"]`);
  await expectShown(page, roomAHosts, 'Room A again');
  await page.locator('#grid-scroll').click({ position: { x: 5, y: 5 } });
  await page.keyboard.press('Control+A');
  assert.equal(await page.textContent('#selection-count'), `${roomAHosts.length} selected`, 'Ctrl+A selects the shown tiles');
  step('Ctrl+A selects the shown tiles only');
  await page.click('#select-none');

  // ---- Enter in the text box asks; it never sends by itself.
  await tile('LAB1-PC01').click();
  await page.fill('#command-text', 'Eyes to the front');
  const before = await page.getAttribute('#results', 'data-command-id');
  await page.press('#command-text', 'Enter');
  await page.waitForSelector('#enter-dialog[open]');
  assert.equal(await page.getAttribute('#results', 'data-command-id'), before, 'nothing sent on Enter');
  assert.equal(await page.evaluate(() => document.activeElement.id), 'enter-message', 'a message is the likelier answer');
  await axe(page, 'the Enter dialog');
  await page.screenshot({ path: join(OUT, 'classes-enter-1440.png') });
  await page.keyboard.press('Escape');
  assert.equal(await page.getAttribute('#results', 'data-command-id'), before, 'nothing sent on Escape');
  await page.fill('#command-text', 'wikipedia.org');
  await page.press('#command-text', 'Enter');
  await page.waitForSelector('#enter-dialog[open]');
  assert.equal(await page.evaluate(() => document.activeElement.id), 'enter-website', 'an address: the website first');
  await page.click('#enter-cancel');
  step('Enter asks what to do, never sends silently');
  await page.fill('#command-text', '');

  // ---- The tile menu: right-click, message from its dialog, clear message.
  await tile('LAB1-PC02').click({ button: 'right' });
  await page.waitForSelector('#tile-menu:not([hidden])');
  assert.equal(await page.evaluate(() => document.activeElement.getAttribute('role')), 'menuitem');
  await page.screenshot({ path: join(OUT, 'classes-menu-1440.png') });
  await page.click('#tile-menu [data-action="message"]');
  await page.waitForSelector('#message-dialog[open]');
  await page.fill('#message-dialog-text', 'Please save your work');
  await page.press('#message-dialog-text', 'Enter');
  await page.waitForFunction(() => /Message → 1 computer/.test(document.getElementById('results-command').textContent)
    && /done 1/.test(document.getElementById('results-summary').textContent), null, { timeout: 20_000 });
  await tile('LAB1-PC02').locator('.badge.message').waitFor({ timeout: 20_000 });
  step('message sent from the menu\'s dialog with Enter');
  await tile('LAB1-PC02').click({ button: 'right' });
  await page.click('#tile-menu [data-action="clear_message"]');
  await page.waitForFunction(() => /Clear message/.test(document.getElementById('results-command').textContent)
    && /done 1/.test(document.getElementById('results-summary').textContent), null, { timeout: 20_000 });
  await tile('LAB1-PC02').locator('.badge.message').waitFor({ state: 'detached', timeout: 20_000 });
  step('clear message took the message off the screen');

  // ---- Properties: user, groups, settings in the catalogue's words, activity.
  await tile('LAB1-PC02').click({ button: 'right' });
  await page.click('#tile-menu [data-action="properties"]');
  await page.waitForSelector('#properties[open]');
  await page.waitForFunction(() => {
    const t = document.getElementById('properties-body').textContent;
    return /Room A/.test(t) && /Settings in force/.test(t) && !/Loading/.test(t) && /Recent activity/.test(t);
  }, null, { timeout: 15_000 });
  const props = await page.textContent('#properties-body');
  assert.ok(!/web_filter_mode|remote_view =/.test(props), 'human labels, not keys');
  await axe(page, 'the properties panel');
  await page.screenshot({ path: join(OUT, 'classes-properties-1440.png') });
  await page.click('#properties-close');
  step('properties panel');

  // ---- Keyboard: one tab stop, arrows, Space, Shift+F10.
  await page.click('#select-none');
  // The tree comes before the grid: from its last entry, one Tab reaches a tile.
  await page.locator('#class-tree .tree-item').last().focus();
  await page.keyboard.press('Tab');
  const focused = await page.evaluate(() => document.activeElement.classList.contains('tile'));
  assert.ok(focused, 'Tab reaches the grid');
  const tabStops = await page.$$eval('#grid [tabindex="0"]', (e) => e.length);
  assert.equal(tabStops, 1, 'one tab stop in the grid');
  const first = await page.evaluate(() => document.activeElement.querySelector('.name').textContent);
  await page.keyboard.press('ArrowRight');
  const second = await page.evaluate(() => document.activeElement.querySelector('.name').textContent);
  assert.notEqual(first, second, 'ArrowRight moves');
  await page.keyboard.press('Space');
  assert.equal(await page.textContent('#selection-count'), '1 selected', 'Space selects');
  await page.keyboard.press('End');
  assert.equal(await page.evaluate(() => document.activeElement.querySelector('.name').textContent), roomAHosts.at(-1));
  await page.keyboard.press('Home');
  assert.equal(await page.evaluate(() => document.activeElement.querySelector('.name').textContent), roomAHosts[0]);
  await page.keyboard.press('ArrowDown');
  assert.notEqual(await page.evaluate(() => document.activeElement.querySelector('.name').textContent), roomAHosts[0], 'ArrowDown moves a row');
  await page.keyboard.press('Shift+F10');
  await page.waitForSelector('#tile-menu:not([hidden])');
  await page.keyboard.press('Escape');
  assert.ok(await page.evaluate(() => document.activeElement.classList.contains('tile')), 'focus back on the tile');
  await page.keyboard.press('Tab');
  assert.ok(!(await page.evaluate(() => document.activeElement.closest('#grid'))), 'Tab leaves the grid at once');
  step('keyboard: one tab stop, arrows, Home/End, Space, Shift+F10');
  const skip = await page.getAttribute('.skip-link', 'href');
  assert.equal(skip, '#grid');
  await axe(page, 'the classroom page');

  // ---- A timed lock ends by itself on the device.
  await page.click('#select-none');
  const pc04 = (await devicesByName())['LAB1-PC04'].id;
  r = await call(page, 'POST', '/api/v1/commands', { devices: [pc04], command: { type: 'lock', minutes: 1 } });
  assert.equal(r.status, 201, JSON.stringify(r.json));
  await tile('LAB1-PC04').locator('.badge.locked', { hasText: /min left/ }).waitFor({ timeout: 20_000 });
  step('the tile shows "Locked · 1 min left"');
  await shoot(page, 'timed-lock');
  await tile('LAB1-PC04').locator('.badge.locked').waitFor({ state: 'detached', timeout: 120_000 });
  step('the device unlocked itself when the minute ended');
  // The toolbar's duration goes into the command.
  await tile('LAB1-PC05').click();
  await page.selectOption('#lock-minutes', '5');
  await page.click('#cmd-lock');
  await page.waitForFunction(() => /Lock for 5 min → 1 computer/.test(document.getElementById('results-command').textContent), null, { timeout: 20_000 });
  await tile('LAB1-PC05').locator('.badge.locked', { hasText: /[45] min left/ }).waitFor({ timeout: 20_000 });
  step('toolbar lock for 5 minutes');

  assert.deepEqual(pageErrors, [], 'no page errors or CSP violations');
});
