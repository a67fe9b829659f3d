// Browser end-to-end test of the Timetable page (issue 14): an administrator
// adds periods through the page (an overlapping one is refused with the
// server's sentence), books a room for a period, sees a second booking of
// the same room and period refused, schedules a lesson for the room's class,
// and the lesson starts by itself when the test moves the server's clock
// (PUT /api/v1/debug/clock, debug builds only) — no sleeping. The page
// passes axe-core (WCAG 2.1 A/AA) and is used with the keyboard (Tab and
// Enter submit the forms). Screenshots at 1440 and 1024 px go to
// tests/e2e/out/timetable-*.png.
//
// Run: node tests/e2e/timetable.mjs (needs cargo build -p lectern-server -p lectern-agent).

import assert from 'node:assert/strict';
import { createRequire } from 'node:module';
import { join } from 'node:path';
import { OUT, openBrowser, runTest, signIn, startServer, step, until, openConsolePage } from './lib.mjs';

const PASSWORD = 'e2e-timetable-314';
const TAGS = ['wcag2a', 'wcag2aa', 'wcag21a', 'wcag21aa'];
const WIDTHS = [1440, 1024];
const AXE_SOURCE = createRequire(import.meta.url)('axe-core').source;
/** A Monday far from the real date, so only the test's clock makes it "now". */
const MONDAY = '2030-01-07';

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
    await page.setViewportSize({ width, height: 900 });
    await page.screenshot({ path: join(OUT, `timetable-${name}-${width}.png`), fullPage: true });
  }
  await page.setViewportSize({ width: WIDTHS[0], height: 900 });
}

/**
 * Calls the API with the page's session.
 * @param {string} method
 * @param {string} path
 * @param {unknown} [body]
 * @returns {Promise<{status: number, body: any}>}
 */
async function api(method, path, body) {
  const r = await page.evaluate(async ({ method, path, body }) => {
    /** @type {Record<string, string>} */
    const headers = { Accept: 'application/json' };
    if (method !== 'GET') headers['X-CSRF-Token'] = /** @type {HTMLMetaElement} */ (document.querySelector('meta[name="csrf-token"]')).content;
    if (body !== undefined) headers['Content-Type'] = 'application/json';
    const res = await fetch(path, { method, headers, body: body === undefined ? undefined : JSON.stringify(body) });
    return { status: res.status, text: await res.text() };
  }, { method, path, body });
  return { status: r.status, body: r.text ? JSON.parse(r.text) : null };
}

/**
 * Sets the server's clock (local time) and waits for the answer, which
 * comes once the scheduler has acted at that time.
 * @param {string} local YYYY-MM-DDTHH:MM
 */
async function setClock(local) {
  const r = await api('PUT', '/api/v1/debug/clock', { local });
  assert.equal(r.status, 200, JSON.stringify(r.body));
  step(`clock set to ${local}`);
}

/**
 * Waits for a notice of `kind` matching `pattern`.
 * @param {'error' | 'info'} kind
 * @param {RegExp} pattern
 */
async function expectNotice(kind, pattern) {
  await until(`a ${kind} notice matching ${pattern}`, async () => {
    const n = await page.$eval('#notice', (e) => ({ text: e.textContent || '', cls: e.className, hidden: /** @type {HTMLElement} */ (e).hidden }));
    return !n.hidden && n.cls.includes(kind) && pattern.test(n.text);
  }, 15_000);
}

/**
 * Types into a field reached with the keyboard: focus by label, then type.
 * @param {string} selector
 * @param {string} value
 */
async function typeInto(selector, value) {
  await page.focus(selector);
  await page.keyboard.press('Control+A');
  await page.keyboard.type(value);
}

await runTest('timetable', 4 * 60 * 1000, async () => {
  const consoleUrl = await startServer({ agents: 2, password: PASSWORD });
  ({ page } = await openBrowser());
  await signIn(page, consoleUrl, PASSWORD);

  step('a room (a computer group of the demo lab) and the clock on a Monday morning');
  const g = await api('POST', '/api/v1/groups', { name: 'Lab 1', kind: 'computer', priority: 'low', members: [{ type: 'hostname', value: 'LAB1-*' }] });
  assert.equal(g.status, 201, JSON.stringify(g.body));
  const room = g.body.id;
  await setClock(`${MONDAY}T08:30`);

  await openConsolePage(page, 'lessons', '/timetable');
  await page.waitForURL((url) => url.pathname === '/timetable', { timeout: 15_000 });
  await page.waitForSelector('#week-empty:not([hidden])');
  assert.match(await page.textContent('#week-heading') ?? '', /Week of Mon 7 /);
  await checkAxe('/timetable without periods');
  await screenshots('empty');

  step('periods added with the keyboard; an overlapping one is refused');
  await typeInto('#period-name', 'Period 1');
  await page.fill('#period-start', '09:00');
  await page.fill('#period-end', '09:50');
  await page.focus('#period-submit');
  await page.keyboard.press('Enter');
  await expectNotice('info', /Period 1 is added/);
  await page.fill('#period-name', 'Period 2');
  await page.fill('#period-start', '09:50');
  await page.fill('#period-end', '10:40');
  await page.click('#period-submit');
  await expectNotice('info', /Period 2 is added/);
  await page.fill('#period-name', 'Assembly');
  await page.fill('#period-start', '09:30');
  await page.fill('#period-end', '10:00');
  await page.click('#period-submit');
  await expectNotice('error', /overlaps "Period 1"/);
  await page.waitForSelector('#week-grid tbody tr[data-period-id]');
  assert.equal(await page.locator('#week-grid tbody tr').count(), 2);
  const periods = (await api('GET', '/api/v1/timetable/periods')).body;
  assert.deepEqual(periods.map((/** @type {any} */ p) => [p.name, p.start, p.end]), [['Period 1', '09:00', '09:50'], ['Period 2', '09:50', '10:40']]);
  const p1 = periods[0].id;

  step('a booking, then the same room and period again: refused');
  await page.selectOption('#book-room', String(room));
  await page.fill('#book-day', MONDAY);
  await page.selectOption('#book-period', String(periods[1].id));
  await page.fill('#book-note', 'Year 9 coding club');
  await page.focus('#book-note');
  await page.keyboard.press('Enter');
  await expectNotice('info', /The room is booked/);
  const cell = `#week-grid tr[data-period-id="${periods[1].id}"] td[data-day="${MONDAY}"]`;
  await page.waitForSelector(`${cell} .entry.booking`);
  assert.match(await page.textContent(`${cell} .entry.booking`) ?? '', /Lab 1.*booked by admin.*Year 9 coding club/);
  await page.click('#book-submit');
  await expectNotice('error', /"Lab 1" is already booked by admin for "Period 2"/);
  assert.equal(await page.locator(`${cell} .entry.booking`).count(), 1, 'still one booking');

  step('a lesson scheduled for the class in Period 1 today');
  await page.selectOption('#schedule-class', String(room));
  await page.selectOption('#schedule-period', String(p1));
  await page.fill('#schedule-day', MONDAY);
  await page.check('#schedule-lock');
  await page.click('#schedule-submit');
  await expectNotice('info', /The lesson is scheduled/);
  const lessonCell = `#week-grid tr[data-period-id="${p1}"] td[data-day="${MONDAY}"] .entry.lesson`;
  await page.waitForSelector(`${lessonCell}[data-status="planned"]`);
  await checkAxe('/timetable with a booking and a planned lesson');
  await screenshots('planned');
  assert.equal((await api('GET', '/api/v1/lessons')).body.filter((/** @type {any} */ l) => l.active).length, 0);

  step('the clock reaches 09:00: the lesson starts by itself');
  await setClock(`${MONDAY}T09:00`);
  const running = (await api('GET', '/api/v1/lessons')).body.filter((/** @type {any} */ l) => l.active);
  assert.equal(running.length, 1, JSON.stringify(running));
  assert.equal(running[0].group_id, room);
  assert.deepEqual(running[0].restrictions, { screen_locked: true });
  await page.click('#week-this');
  await page.waitForSelector(`${lessonCell}[data-status="running"]`);
  assert.match(await page.textContent(lessonCell) ?? '', /Running now/);
  await checkAxe('/timetable with a running lesson');
  await screenshots('running');

  step('09:50: it ends by itself');
  await setClock(`${MONDAY}T09:50`);
  assert.equal((await api('GET', '/api/v1/lessons')).body.filter((/** @type {any} */ l) => l.active).length, 0);
  await page.click('#week-this');
  await page.waitForSelector(`${lessonCell}[data-status="ended"]`);
});
