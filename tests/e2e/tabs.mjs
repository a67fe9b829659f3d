// Browser end-to-end test of the console's browser-tab and web-list features.
//
// Starts `lectern-server demo` with 4 simulated agents (each signed in, with
// two synthetic browser tabs: "Lesson notes" active and "Volcano -
// Encyclopedia"), signs in with headless Chromium and, through the page:
// - sees each tile show its active tab (title · host) and a "Tabs 2" button;
// - opens LAB1-PC01's tabs, closes "Volcano - Encyclopedia", sees the result
//   and the row disappear live, and the API report one tab left;
// - refuses a web list with a malformed pattern in the dialog, then applies
//   an allow list to two computers and sees both acknowledge it;
// - blocks the internet of the selection with one click.
// Screenshots go to tests/e2e/out/.
//
// Env: see lib.mjs.

import assert from 'node:assert/strict';
import { join } from 'node:path';
import { OUT, openBrowser, runTest, signIn, startServer, step, waitForThumbnails } from './lib.mjs';

const AGENTS = 4;
const PASSWORD = 'e2e-tabs-789';
const OVERALL_TIMEOUT_MS = 3 * 60 * 1000;

/** @type {import('playwright-core').Page} */
let page;

/**
 * GETs an API path with the page's session.
 * @param {string} path
 * @returns {Promise<any>}
 */
async function apiGet(path) {
  const res = await page.evaluate(async (p) => {
    const r = await fetch(p, { headers: { Accept: 'application/json' }, cache: 'no-store' });
    return { status: r.status, text: await r.text() };
  }, path);
  assert.equal(res.status, 200, `GET ${path} answered ${res.status}: ${res.text}`);
  return JSON.parse(res.text);
}

/**
 * The tile of a device by hostname.
 * @param {string} hostname
 */
function tile(hostname) {
  return page.locator('.tile', { has: page.locator('.name', { hasText: hostname }) });
}

/**
 * Waits until the results panel shows a new command of `type` with `want`.
 * @param {string | null} oldId the panel's command id before
 * @param {string} type
 * @param {string} want summary text
 */
async function awaitResults(oldId, type, want) {
  try {
    await page.waitForFunction(({ oldId, type, want }) => {
      const panel = document.getElementById('results');
      return panel.dataset.commandId && panel.dataset.commandId !== oldId && panel.dataset.commandType === type
        && document.getElementById('results-summary').textContent.trim() === want;
    }, { oldId, type, want }, { timeout: 20_000 });
  } catch (err) {
    const now = await page.evaluate(() => ({
      type: document.getElementById('results').dataset.commandType,
      summary: document.getElementById('results-summary').textContent,
      notice: document.getElementById('notice').textContent,
    }));
    throw new Error(`expected ${type} "${want}", got ${JSON.stringify(now)}`, { cause: err });
  }
}

/** The results panel's current command id. */
function resultsId() {
  return page.evaluate(() => document.getElementById('results').dataset.commandId ?? null);
}

async function run() {
  const consoleUrl = await startServer({ agents: AGENTS, password: PASSWORD });
  const opened = await openBrowser();
  page = opened.page;
  const { pageErrors } = opened;
  await signIn(page, consoleUrl, PASSWORD);
  await waitForThumbnails(page, AGENTS);

  // Each tile shows the active tab and offers its tabs.
  await page.waitForFunction((count) => {
    const tiles = [...document.querySelectorAll('.tile')];
    return tiles.length === count && tiles.every((t) => t.querySelector('.activity').textContent === 'Lesson notes · notes.school.example'
      && t.querySelector('.tabs-button').textContent === 'Tabs 2' && !t.querySelector('.tabs-button').hidden);
  }, AGENTS, { timeout: 15_000 });
  assert.equal(await tile('LAB1-PC01').locator('.activity').getAttribute('title'), 'https://notes.school.example/year9/volcanoes');
  step('tiles show the active tab and "Tabs 2"');

  // The tabs of LAB1-PC01; clicking the button does not select the tile.
  const devices = await apiGet('/api/v1/devices');
  const pc01 = devices.find((d) => d.hostname === 'LAB1-PC01');
  assert.ok(pc01, 'LAB1-PC01 is listed');
  await tile('LAB1-PC01').locator('.tabs-button').click();
  await page.waitForSelector('#tabs-dialog[open]', { timeout: 5_000 });
  assert.equal(await page.locator('.tile.selected').count(), 0, 'opening tabs does not select');
  assert.equal((await page.textContent('#tabs-title')).trim(), 'Tabs · LAB1-PC01');
  const rows = await page.$$eval('#tabs-list .tab-row', (els) => els.map((e) => ({
    title: e.querySelector('.tab-title').textContent,
    url: e.querySelector('.tab-url').textContent,
    active: e.classList.contains('active'),
  })));
  assert.deepEqual(rows, [
    { title: 'Lesson notes', url: 'https://notes.school.example/year9/volcanoes', active: true },
    { title: 'Volcano - Encyclopedia', url: 'https://encyclopedia.example/wiki/Volcano', active: false },
  ]);
  await page.screenshot({ path: join(OUT, 'tabs-dialog.png') });

  // Close the second tab: the result shows and the row goes away live.
  await page.click('#tabs-list .tab-row:nth-child(2) button.close-tab');
  await page.waitForFunction(() => document.getElementById('tabs-status').dataset.status === 'done', null, { timeout: 15_000 });
  assert.equal((await page.textContent('#tabs-status')).trim(), 'Closed “Volcano - Encyclopedia”');
  await page.waitForFunction(() => document.querySelectorAll('#tabs-list .tab-row').length === 1, null, { timeout: 15_000 });
  assert.equal((await page.textContent('#tabs-list .tab-title')).trim(), 'Lesson notes');
  await page.waitForFunction(() => [...document.querySelectorAll('.tile')].some((t) =>
    t.querySelector('.name').textContent === 'LAB1-PC01' && t.querySelector('.tabs-button').textContent === 'Tabs 1'), null, { timeout: 10_000 });
  const after = (await apiGet('/api/v1/devices')).find((d) => d.id === pc01.id);
  assert.deepEqual(after.state.tabs.map((t) => t.title), ['Lesson notes']);
  step('closed a tab from the dialog: result shown, row gone, API agrees');

  await page.screenshot({ path: join(OUT, 'tabs-closed.png') });
  await page.click('#tabs-close');
  await page.waitForFunction(() => !document.getElementById('tabs-dialog').open, null, { timeout: 5_000 });

  // Web lists need a selection.
  await page.click('#web-lists-button');
  await page.waitForFunction(() => /select/i.test(document.getElementById('notice').textContent), null, { timeout: 5_000 });
  assert.equal(await page.locator('#web-lists[open]').count(), 0);

  await tile('LAB1-PC01').locator('.name').click();
  await tile('LAB1-PC02').locator('.name').click();
  assert.equal(await page.locator('.tile.selected').count(), 2);
  await page.click('#web-lists-button');
  await page.waitForSelector('#web-lists[open]', { timeout: 5_000 });
  assert.equal((await page.textContent('#web-lists-target')).trim(), '2 computers');

  // A malformed pattern is refused in the dialog.
  await page.selectOption('#web-lists-mode', 'allow_list');
  await page.fill('#web-lists-allow', 'wikipedia.org\nnot a/pattern!');
  await page.click('#web-lists-apply');
  await page.waitForSelector('#web-lists-error:not([hidden])', { timeout: 5_000 });
  // The whole line, with its number: a space does not split it into two entries.
  assert.match(await page.textContent('#web-lists-error'), /Not a site pattern: line 2: not a\/pattern!\./);
  assert.equal(await page.locator('#web-lists[open]').count(), 1, 'the dialog stays open');

  // A good allow list reaches both computers.
  await page.fill('#web-lists-allow', 'Wikipedia.org\n*.example.org   # the school sites\n\nhttps://www.bbc.co.uk/');
  await page.screenshot({ path: join(OUT, 'web-lists-dialog.png') });
  let before = await resultsId();
  await page.click('#web-lists-apply');
  await awaitResults(before, 'set_web_filter', 'done 2 · failed 0 · offline 0 · pending 0');
  assert.equal(await page.locator('#web-lists[open]').count(), 0, 'the dialog closed');
  assert.match(await page.textContent('#results-command'), /^Web lists → 2 computers$/);
  const cmd = await apiGet(`/api/v1/commands/${await resultsId()}`);
  assert.deepEqual(cmd.command, { type: 'set_web_filter', mode: 'allow_list', allow: ['wikipedia.org', '*.example.org', 'www.bbc.co.uk'], block: [] });
  step('web lists: bad pattern refused, allow list applied to 2 computers');

  // Block internet: one click for the selection.
  before = await resultsId();
  await page.click('#cmd-block-internet');
  await awaitResults(before, 'block_internet', 'done 2 · failed 0 · offline 0 · pending 0');
  await page.waitForFunction(() => [...document.querySelectorAll('.tile.selected')].every((t) =>
    [...t.querySelectorAll('.badge')].some((b) => b.textContent === 'Internet blocked')), null, { timeout: 15_000 });
  step('internet blocked for the selection with one click');
  await page.screenshot({ path: join(OUT, 'tabs-console.png') });

  assert.deepEqual(pageErrors, [], 'page errors');
}

await runTest('tabs', OVERALL_TIMEOUT_MS, run);
