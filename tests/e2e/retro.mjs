// Browser end-to-end test of retrospective keyword scans (issue 15, point 3).
//
// Starts `lectern-server demo` with 2 simulated agents, signs in, and puts
// 20,000 past web visits of LAB1-PC01 into the database (as if stored over
// the last day: every 500th titled "Nebulon facts"; seeded with the sqlite3
// command, since a day of history cannot be browsed in a test). The school's
// rescan share is set to 5 % of a core so the job runs long enough to watch.
// Then:
// - the term "nebulon" is added: the Keywords page offers a rescan for it;
// - "Rescan for the changed terms" starts it: the progress bar and "N of
//   20,000 events" rise (screenshots at 1440 and 1024 px, axe-clean), and
//   the card ends with "finished … 20,000 events scanned, 40 new matches";
// - the logs, filtered "Found: By a rescan", list exactly those 40, each
//   with the "Retrospective" badge; a violation's detail says it was found
//   later and why it has no screenshots (screenshots, axe-clean).
// Screenshots go to tests/e2e/out/retro-*.png.
//
// Env: see lib.mjs; needs the sqlite3 command.

import assert from 'node:assert/strict';
import { execFileSync } from 'node:child_process';
import { mkdtempSync } from 'node:fs';
import { tmpdir } from 'node:os';
import { join } from 'node:path';
import { OUT, checkAxe, onCleanup, openBrowser, runTest, setFailurePage, signIn, startServer, step, until } from './lib.mjs';

const PASSWORD = 'e2e-retro-321';
const OVERALL_TIMEOUT_MS = 3 * 60 * 1000;
const ROWS = 20_000;
const HITS = ROWS / 500;

/** @type {import('playwright-core').Page} */
let page;

/**
 * Calls the API with the page's session.
 * @param {string} method
 * @param {string} path
 * @param {unknown} [body]
 */
async function api(method, path, body) {
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
 * Screenshots the page at 1440 and 1024 px wide (axe-clean at both).
 * @param {string} name
 */
async function shots(name) {
  for (const width of [1440, 1024]) {
    await page.setViewportSize({ width, height: 900 });
    await checkAxe(page, `${name} at ${width} px`);
    await page.screenshot({ path: join(OUT, `retro-${name}-${width}.png`) });
  }
  await page.setViewportSize({ width: 1440, height: 900 });
}

/**
 * Puts `ROWS` past visits of the first computer into the database.
 * @param {string} db
 */
function seedHistory(db) {
  const sql = `.timeout 10000
WITH RECURSIVE n(i) AS (SELECT 1 UNION ALL SELECT i + 1 FROM n WHERE i < ${ROWS})
INSERT INTO activity (school_id, device_id, seq, user, kind, url, title, app, at, received_at)
SELECT d.school_id, d.id, NULL, 'amara', 'web', 'https://example.org/reading',
       CASE WHEN i % 500 = 0 THEN 'Nebulon facts' ELSE 'Reading' END, 'Web Browser',
       CAST(strftime('%s', 'now') AS INTEGER) * 1000 - 86400000 + i,
       CAST(strftime('%s', 'now') AS INTEGER) * 1000
FROM n, (SELECT id, school_id FROM devices WHERE hostname = 'LAB1-PC01') AS d;`;
  execFileSync('sqlite3', [db], { input: sql });
}

await runTest('retro', OVERALL_TIMEOUT_MS, async () => {
  const dataDir = mkdtempSync(join(tmpdir(), 'lectern-e2e-retro-'));
  onCleanup(() => execFileSync('rm', ['-rf', dataDir]));
  const consoleUrl = await startServer({ agents: 2, password: PASSWORD, dataDir });
  ({ page } = await openBrowser());
  setFailurePage(page);
  await signIn(page, consoleUrl, PASSWORD);

  seedHistory(join(dataDir, 'lectern.db'));
  step(`seeded ${ROWS} visits`);
  await api('PUT', '/api/v1/school/settings', { values: { retro_cpu_percent: 5 } });
  const lib = await api('GET', '/api/v1/keywords');
  lib.terms.push({ term: 'nebulon', category: 'test', severity: 4, match_type: 'whole_word' });
  await api('PUT', '/api/v1/keywords', lib);

  step('keywords page offers the rescan');
  await page.goto(new URL('/keywords', consoleUrl).href);
  await page.waitForSelector('#rescan-offer:not([hidden])', { timeout: 15_000 });
  const offer = await page.textContent('#rescan-offer-text');
  assert.match(offer, /1 term changed since the last rescan \(“nebulon”\)/);
  assert.equal(await page.textContent('#rescan-cpu'), '5');

  step('rescan: progress rises');
  await page.click('#rescan-changed');
  await page.waitForSelector('#rescan-job:not([hidden])', { timeout: 15_000 });
  await until('some rows scanned', async () => {
    const label = await page.textContent('#rescan-label');
    const m = /: ([\d,]+) of 20,000 events/.exec(label || '');
    return m && Number(m[1].replace(/,/g, '')) > 0;
  }, 30_000);
  assert.equal(await page.getAttribute('#rescan-progress', 'max'), String(ROWS));
  assert.ok(await page.isDisabled('#rescan-all'), 'no second rescan while one runs');
  await shots('progress');

  await page.waitForSelector('#rescan-job[hidden]', { state: 'attached', timeout: 90_000 });
  const last = await page.textContent('#rescan-last');
  assert.match(last, new RegExp(`finished .*: 20,000 events scanned, ${HITS} new matches`), last);
  assert.ok(await page.isHidden('#rescan-offer'), 'the offer is taken');

  step('logs: the retrospective violations');
  await page.goto(new URL('/logs?retrospective=true', consoleUrl).href);
  await until('the rescan hits listed', async () => (await page.locator('#violations-table tbody tr').count()) === HITS, 20_000);
  assert.equal(await page.locator('#violations-table .retro-badge').count(), HITS);
  assert.equal(await page.inputValue('#filter-found'), 'true');
  await shots('logs');
  await page.click('#violations-table tbody tr:first-child .open-violation');
  await page.waitForSelector('#violation-dialog[open]');
  const facts = await page.textContent('#violation-facts');
  assert.match(facts, /FoundLater, by a rescan of stored activity/);
  assert.match(await page.textContent('#violation-shots-empty'), /found later, by a rescan of stored activity/);
  await shots('violation');
});
