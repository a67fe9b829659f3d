// Browser end-to-end test of the violation review workflow (issue 15,
// point 5, first half) on the safeguarding log.
//
// Starts `lectern-server demo` with 3 simulated agents (LAB1-PC01..03),
// adds the term "volcano" and opens a page about volcanoes on every
// computer, so three violations are raised for real. Then, in headless
// Chromium, signed in as admin:
// - opens one violation's detail, assigns it to ms.lee (a teacher who may
//   read violations) as "In review", adds a note, and sees the notes and
//   the history (who, from, to) in the case section; its row follows;
// - filters the log by status and by assignee (nobody);
// - ticks every row and escalates all three with a note in one request;
// - a second tab on the log updates live when a case changes elsewhere;
// - axe-core finds nothing on the log or the case, at 1440 and 1024 px.
// Screenshots: tests/e2e/out/review-*.png (1440 and 1024 px wide).
//
// Env: see lib.mjs.

import assert from 'node:assert/strict';
import { join } from 'node:path';
import { OUT, checkAxe, openBrowser, runTest, setFailurePage, signIn, startServer, step } from './lib.mjs';

const AGENTS = 3;
const PASSWORD = 'e2e-review-321';
const OVERALL_TIMEOUT_MS = 3 * 60 * 1000;
const TEACHER = 'ms.lee';

/** @type {import('playwright-core').Page} */
let page;

/**
 * Calls the API with the page's session; fails on an error status.
 * @param {string} method
 * @param {string} path
 * @param {unknown} [body] JSON, or a string sent as CSV
 * @returns {Promise<any>}
 */
async function api(method, path, body) {
  const r = await page.evaluate(async ({ method, path, body }) => {
    /** @type {Record<string, string>} */
    const headers = { Accept: 'application/json, text/csv' };
    if (method !== 'GET') headers['X-CSRF-Token'] = document.querySelector('meta[name="csrf-token"]').content;
    if (typeof body === 'string') headers['Content-Type'] = 'text/csv';
    else if (body !== undefined) headers['Content-Type'] = 'application/json';
    const res = await fetch(path, {
      method, headers, cache: 'no-store', body: body === undefined ? undefined : (typeof body === 'string' ? body : JSON.stringify(body)),
    });
    return { status: res.status, text: await res.text() };
  }, { method, path, body });
  if (r.status >= 300) throw new Error(`${method} ${path}: ${r.status} ${r.text}`);
  try {
    return JSON.parse(r.text);
  } catch {
    return r.text;
  }
}

/**
 * The rows of the log: id, status and assignee as shown.
 * @param {import('playwright-core').Page} [p]
 * @returns {Promise<{id: number, status: string, assignee: string}[]>}
 */
function rows(p = page) {
  return p.$$eval('#violations-table tbody tr.violation', (trs) => trs.map((tr) => ({
    id: Number(/** @type {HTMLElement} */ (tr).dataset.violationId),
    status: tr.querySelector('.status-cell').textContent,
    assignee: tr.querySelector('.assignee').textContent,
  })));
}

/** Applies the filters and waits for the table. */
async function applyFilters() {
  await page.click('#filter-apply');
  await page.waitForFunction(() => !/Loading/.test(document.getElementById('violations-summary').textContent), null, { timeout: 15_000 });
}

/**
 * Waits until the rows shown satisfy `want`.
 * @param {string} what
 * @param {(r: {id: number, status: string, assignee: string}[]) => boolean} want
 * @param {import('playwright-core').Page} [p]
 */
async function rowsBecome(what, want, p = page) {
  const deadline = Date.now() + 20_000;
  for (;;) {
    const now = await rows(p);
    if (want(now)) return now;
    if (Date.now() > deadline) throw new Error(`${what}: rows are ${JSON.stringify(now)}`);
    await p.waitForTimeout(200);
  }
}

/**
 * Screenshots the page (or the dialog) at a width.
 * @param {string} name
 * @param {number} width
 */
async function shoot(name, width) {
  await page.setViewportSize({ width, height: 900 });
  await page.screenshot({ path: join(OUT, `review-${name}-${width}.png`) });
}

/** Three violations, raised the way they are in school. */
async function raiseViolations() {
  const csv = await api('GET', '/api/v1/keywords/csv');
  await api('PUT', '/api/v1/keywords/csv', `${csv.trimEnd()}\nvolcano,test,3,whole_word,\n`);
  const devices = await api('GET', '/api/v1/devices');
  assert.equal(devices.length, AGENTS);
  await api('POST', '/api/v1/commands', {
    devices: devices.map((d) => d.id),
    command: { type: 'launch_url', url: 'https://example.org/volcano-facts' },
  });
  const deadline = Date.now() + 60_000;
  for (;;) {
    const found = await api('GET', '/api/v1/violations?category=test');
    if (found.length >= AGENTS) return found.map((v) => v.id);
    if (Date.now() > deadline) throw new Error(`only ${found.length} violations after 60 s`);
    await page.waitForTimeout(500);
  }
}

async function run() {
  const consoleUrl = await startServer({ agents: AGENTS, password: PASSWORD });
  const opened = await openBrowser();
  page = opened.page;
  setFailurePage(page);
  await signIn(page, consoleUrl, PASSWORD);
  const entire = (await api('GET', '/api/v1/groups')).find((g) => g.kind === 'entire_network');
  await api('POST', '/api/v1/users', { username: TEACHER, password: 'ms.lee-pw-4321', role: 'teacher' });
  await api('POST', '/api/v1/access-rules', {
    principal: { type: 'user', value: TEACHER }, features: ['activity.view'], group_access: { [entire.id]: 'view' }, bypass_privacy: false,
  });
  const ids = await raiseViolations();
  step(`${ids.length} violations raised`);

  await page.goto(new URL('/logs', consoleUrl).href);
  await rowsBecome('three new, unassigned', (r) => r.length === AGENTS && r.every((x) => x.status === 'New' && x.assignee === 'Nobody'));
  await page.waitForFunction((t) => [...document.querySelectorAll('#filter-assignee option')].some((o) => o.value === t), TEACHER, { timeout: 15_000 });
  await checkAxe(page, 'the log with review columns (1440)');
  await shoot('log', 1440);

  // One case: assign, status, note.
  const first = ids[0];
  await page.click(`tr[data-violation-id="${first}"] button.open-violation`);
  await page.waitForFunction(() => /not assigned/.test(document.getElementById('case-summary').textContent), null, { timeout: 15_000 });
  await page.selectOption('#case-status', 'in_review');
  await page.selectOption('#case-assignee', TEACHER);
  await page.click('#case-save');
  await page.waitForFunction((t) => document.getElementById('case-summary').textContent.includes(`assigned to ${t}`), TEACHER, { timeout: 15_000 });
  await page.fill('#case-note', 'Spoke to the student: a geography project.\nParents informed.');
  await page.click('#case-add-note');
  await page.waitForFunction(() => document.querySelectorAll('#case-notes .case-note').length === 1, null, { timeout: 15_000 });
  const note = await page.textContent('#case-notes .case-note');
  assert.match(note, /admin/);
  assert.match(note, /geography project/);
  const history = await page.$$eval('#case-history li', (lis) => lis.map((li) => li.textContent));
  assert.equal(history.length, 3, JSON.stringify(history));
  assert.match(history[0], /admin changed the status from New to In review/);
  assert.match(history[1], /admin assigned it to ms\.lee/);
  assert.match(history[2], /admin added a note/);
  await checkAxe(page, 'the case in the violation dialog (1440)', '#violation-dialog');
  await shoot('case', 1440);
  await page.click('#violation-close');
  await rowsBecome('the row follows', (r) => r.some((x) => x.id === first && x.status === 'In review' && x.assignee === TEACHER));
  step('assigned, in review, noted, with history');

  // Filters.
  await page.selectOption('#filter-status', 'in_review');
  await applyFilters();
  assert.deepEqual((await rows()).map((r) => r.id), [first]);
  assert.match(page.url(), /status=in_review/);
  await page.selectOption('#filter-status', '');
  await page.selectOption('#filter-assignee', 'unassigned');
  await applyFilters();
  assert.deepEqual((await rows()).map((r) => r.id).sort(), ids.slice(1).sort());
  await page.click('#filter-clear');
  await rowsBecome('all three again', (r) => r.length === AGENTS);
  step('filtered by status and assignee');

  // A second tab on the log hears of changes made elsewhere.
  const other = await page.context().newPage();
  await other.goto(new URL('/logs', consoleUrl).href);
  await rowsBecome('the second tab loads', (r) => r.length === AGENTS, other);

  // Bulk: all three escalated with one note.
  await page.check('#pick-all');
  assert.match(await page.textContent('#bulk-count'), /3 selected/);
  await page.selectOption('#bulk-status', 'escalated');
  await page.fill('#bulk-note', 'Passed to the designated safeguarding lead.');
  await page.click('#bulk-apply');
  await page.waitForFunction(() => /3 changed/.test(document.getElementById('notice').textContent), null, { timeout: 15_000 });
  await rowsBecome('all escalated', (r) => r.length === AGENTS && r.every((x) => x.status === 'Escalated'));
  await rowsBecome('the other tab follows live', (r) => r.length === AGENTS && r.every((x) => x.status === 'Escalated'), other);
  const cases = await Promise.all(ids.map((id) => api('GET', `/api/v1/violations/${id}/review`)));
  assert.ok(cases.every((c) => c.status === 'escalated' && c.notes_list.some((n) => /safeguarding lead/.test(n.body))));
  await other.close();
  step('bulk: three escalated with a note; the other tab updated live');

  await page.setViewportSize({ width: 1024, height: 900 });
  await checkAxe(page, 'the log with review columns (1024)');
  await shoot('log', 1024);
  await page.click(`tr[data-violation-id="${first}"] button.open-violation`);
  await page.waitForFunction(() => document.querySelectorAll('#case-notes .case-note').length === 2, null, { timeout: 15_000 });
  await checkAxe(page, 'the case in the violation dialog (1024)', '#violation-dialog');
  await shoot('case', 1024);
  assert.deepEqual(opened.pageErrors, [], 'no uncaught errors or CSP violations');
}

runTest('review', OVERALL_TIMEOUT_MS, run);
