// Browser end-to-end test of the teacher console.
//
// Starts `lectern-server demo` with 30 simulated agents, signs in with
// headless Chromium, waits for every live thumbnail, then locks, messages and
// unlocks the whole class, checking the results panel, the tile badges and the
// lock screen's colour in the thumbnails.
//
// Env: see lib.mjs.

import assert from 'node:assert/strict';
import { join } from 'node:path';
import { OUT, openBrowser, runTest, startServer, step, waitForThumbnails } from './lib.mjs';

const AGENTS = 30;
const PASSWORD = 'e2e-pass-123';
const LOCK_RGB = [24, 28, 64];
const COLOUR_TOLERANCE = 25;
const OVERALL_TIMEOUT_MS = 3 * 60 * 1000;
const summaryOf = (done, pending = 0) => `done ${done} · failed 0 · offline 0 · pending ${pending}`;

/** @type {import('playwright-core').Page} */
let page;

/**
 * Current value of the results panel: command id and summary text.
 * @returns {Promise<{id: string | null, summary: string}>}
 */
async function results() {
  return page.evaluate(() => ({
    id: document.getElementById('results').dataset.commandId ?? null,
    summary: document.getElementById('results-summary').textContent.trim(),
  }));
}

/**
 * Clicks a command button and waits until a new command is the current one
 * and every device reports done.
 * @param {string} button selector
 * @param {string} what for messages
 */
async function runAndAwaitDone(button, what) {
  const before = await results();
  await page.click(button);
  try {
    await page.waitForFunction(
      ({ oldId, want }) => {
        const panel = document.getElementById('results');
        return panel.dataset.commandId && panel.dataset.commandId !== oldId
          && document.getElementById('results-summary').textContent.trim() === want;
      },
      { oldId: before.id, want: summaryOf(AGENTS) },
      { timeout: 30_000 },
    );
  } catch (err) {
    const now = await results();
    const notice = await page.textContent('#notice');
    throw new Error(`${what}: expected "${summaryOf(AGENTS)}", got "${now.summary}" (command ${now.id}, notice "${notice}")`, { cause: err });
  }
  const tileResults = await page.$$eval('.tile .result', (els) => els.map((e) => e.textContent.trim()));
  assert.equal(tileResults.length, AGENTS);
  assert.ok(tileResults.every((r) => r === 'done'), `${what}: tile results ${JSON.stringify(tileResults)}`);
  step(`${what}: ${summaryOf(AGENTS)}`);
}

/**
 * Average colour of each tile's thumbnail, computed in the page.
 * @returns {Promise<{id: string, rgb: number[] | null}[]>}
 */
function thumbnailColours() {
  return page.$$eval('.tile', (tiles) => tiles.map((tile) => {
    const img = tile.querySelector('img.thumb');
    const id = tile.dataset.deviceId;
    if (!img || !img.complete || img.naturalWidth === 0) return { id, rgb: null };
    const canvas = document.createElement('canvas');
    canvas.width = img.naturalWidth;
    canvas.height = img.naturalHeight;
    const ctx = canvas.getContext('2d', { willReadFrequently: true });
    ctx.drawImage(img, 0, 0);
    const data = ctx.getImageData(0, 0, canvas.width, canvas.height).data;
    const sum = [0, 0, 0];
    for (let i = 0; i < data.length; i += 4) {
      sum[0] += data[i];
      sum[1] += data[i + 1];
      sum[2] += data[i + 2];
    }
    const n = data.length / 4;
    return { id, rgb: sum.map((s) => Math.round(s / n)) };
  }));
}

/**
 * Whether an average colour is the lock screen's.
 * @param {number[]} rgb
 */
function isLockColour(rgb) {
  return rgb.every((v, i) => Math.abs(v - LOCK_RGB[i]) <= COLOUR_TOLERANCE);
}

/**
 * Waits up to 15 s (fresh frames come once a second) until every thumbnail
 * shows the lock screen, or with `locked` false, until none does.
 * @param {boolean} locked
 */
async function expectLockedThumbnails(locked) {
  const deadline = Date.now() + 15_000;
  let bad = [];
  while (Date.now() < deadline) {
    const colours = await thumbnailColours();
    bad = colours.filter(({ rgb }) => !rgb || isLockColour(rgb) !== locked);
    if (colours.length === AGENTS && bad.length === 0) {
      step(`${locked ? 'all' : 'none'} of ${AGENTS} thumbnails show the lock screen (e.g. rgb ${colours[0].rgb.join(',')})`);
      return;
    }
    await page.waitForTimeout(500);
  }
  const more = bad.length > 5 ? ` and ${bad.length - 5} more` : '';
  throw new Error(`after 15 s, thumbnails ${locked ? 'not showing' : 'still showing'} the lock screen: ${JSON.stringify(bad.slice(0, 5))}${more}`);
}

/**
 * Waits until every tile has (or, with `present` false, lacks) a badge.
 * @param {string} text badge text, e.g. "Locked"
 * @param {boolean} present
 */
async function expectBadgeEverywhere(text, present) {
  try {
    await page.waitForFunction(({ text, present, count }) => {
      const tiles = [...document.querySelectorAll('.tile')];
      return tiles.length === count && tiles.every((t) =>
        [...t.querySelectorAll('.badge')].some((b) => b.textContent.trim() === text) === present);
    }, { text, present, count: AGENTS }, { timeout: 15_000 });
  } catch (err) {
    const badges = await page.$$eval('.tile', (tiles) => tiles.map((t) =>
      [...t.querySelectorAll('.badge')].map((b) => b.textContent.trim()).join('+')));
    throw new Error(`expected every tile ${present ? 'to have' : 'not to have'} a "${text}" badge; badges: ${JSON.stringify(badges)}`, { cause: err });
  }
}

/** The test itself. */
async function run() {
  const consoleUrl = await startServer({ agents: AGENTS, password: PASSWORD });
  step(`console at ${consoleUrl}`);

  const opened = await openBrowser();
  page = opened.page;
  const { pageErrors } = opened;

  // Not signed in: the console sends us to the login page.
  await page.goto(consoleUrl);
  await page.waitForURL((url) => url.pathname === '/login', { timeout: 15_000 });
  step('redirected to /login');

  // A wrong password is refused with a message.
  await page.fill('#username', 'admin');
  await page.fill('#password', 'not-the-password');
  await page.click('#login-button');
  await page.waitForSelector('#login-error:not([hidden])', { timeout: 10_000 });
  assert.equal((await page.textContent('#login-error')).trim(), 'Wrong user name or password');
  assert.equal(new URL(page.url()).pathname, '/login');
  await page.screenshot({ path: join(OUT, 'login-error.png') });
  step('wrong password refused');

  await page.fill('#password', PASSWORD);
  await page.click('#login-button');
  await page.waitForURL((url) => url.pathname === '/', { timeout: 15_000 });
  step('signed in');

  // Every device has a tile with a live thumbnail.
  await waitForThumbnails(page, AGENTS);
  const names = await page.$$eval('.tile .name', (els) => els.map((e) => e.textContent));
  assert.deepEqual(names, [...names].sort((a, b) => a.localeCompare(b, undefined, { numeric: true })), 'tiles sorted by hostname');
  step(`${AGENTS} tiles with thumbnails`);

  // Commands need a selection, and a message needs text.
  await page.click('#cmd-lock');
  await page.waitForSelector('#notice:not([hidden])', { timeout: 5_000 });
  assert.match(await page.textContent('#notice'), /select/i);
  await page.click('#select-all');
  assert.equal(await page.locator('.tile.selected').count(), AGENTS);
  assert.equal(await page.locator('.tile input.select:checked').count(), AGENTS);
  await page.fill('#command-text', '');
  await page.click('#cmd-message');
  await page.waitForFunction(() => /message/i.test(document.getElementById('notice').textContent), null, { timeout: 5_000 });
  step('selection and empty-message notices shown');

  // Lock everyone.
  await runAndAwaitDone('#cmd-lock', 'lock');
  await expectBadgeEverywhere('Locked', true);
  await expectLockedThumbnails(true);
  await page.screenshot({ path: join(OUT, 'console-locked.png') });

  // A message to everyone.
  await page.fill('#command-text', 'Eyes to the front');
  await runAndAwaitDone('#cmd-message', 'message');

  // Unlock everyone.
  await runAndAwaitDone('#cmd-unlock', 'unlock');
  await expectBadgeEverywhere('Locked', false);
  await expectLockedThumbnails(false);
  step('all unlocked');

  await page.screenshot({ path: join(OUT, 'console-final.png') });

  // Log out: back to the login page, and the console is closed to us.
  await page.click('#logout-button');
  await page.waitForURL((url) => url.pathname === '/login', { timeout: 10_000 });
  await page.goto(consoleUrl);
  await page.waitForURL((url) => url.pathname === '/login', { timeout: 10_000 });
  step('logged out');

  assert.deepEqual(pageErrors, [], 'page errors');
}

await runTest('console', OVERALL_TIMEOUT_MS, run);
