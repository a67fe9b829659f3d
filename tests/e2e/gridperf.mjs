// The console grid at 500 devices, paged (grid.js): the tiles sit in pages of
// whole rows whose column count the script computes, so this checks that the
// rows are whole at two tile sizes, ArrowDown moves by the real column count,
// End reaches (and scrolls to) the last tile with one tab stop kept, the
// thumbnails follow the view to the bottom, a search detaches the other tiles
// and Ctrl+A selects only the shown ones, and clearing it restores the order.
//   cargo build -p lectern-server && node tests/e2e/gridperf.mjs
import assert from 'node:assert/strict';
import { openBrowser, runTest, signIn, startServer, step } from './lib.mjs';
await runTest('gridperf', 5 * 60 * 1000, async () => {
  const url = await startServer({ agents: 500, password: 'bench-grid-4321' });
  const { page } = await openBrowser();
  await signIn(page, url, 'bench-grid-4321');
  await page.waitForFunction(() => document.querySelectorAll('.tile').length === 500, null, { timeout: 120_000 });
  const names = () => page.$$eval('.tile', (t) => t.map((x) => x.querySelector('.name').textContent));
  const all = await names();
  const cols = Number(await page.evaluate(() => getComputedStyle(document.getElementById('grid')).getPropertyValue('--grid-cols')));
  const visual = await page.$$eval('.tile', (t) => t.slice(0, 13).map((x) => { const r = x.getBoundingClientRect(); return [Math.round(r.top), Math.round(r.left)]; }));
  step(`cols ${cols}; first tiles at ${JSON.stringify(visual)}`);
  assert.equal(visual[cols][1], visual[0][1], 'tile cols starts the second row');
  assert.ok(visual[cols][0] > visual[0][0]);
  assert.equal(new Set(visual.slice(0, cols).map((v) => v[0])).size, 1, 'first row on one line');
  await page.locator('.tile').first().focus();
  await page.keyboard.press('ArrowDown');
  assert.equal(await page.evaluate(() => document.activeElement.querySelector('.name').textContent), all[cols]);
  await page.keyboard.press('End');
  assert.equal(await page.evaluate(() => document.activeElement.querySelector('.name').textContent), all[499]);
  const st = await page.evaluate(() => document.getElementById('grid-scroll').scrollTop);
  assert.ok(st > 1000, `End scrolled the grid (${st})`);
  assert.equal(await page.$$eval('[tabindex="0"]', (e) => e.filter((x) => x.classList.contains('tile')).length), 1);
  // Thumbnails arrive for tiles near the bottom after scrolling there.
  await page.waitForFunction(() => { const t = [...document.querySelectorAll('.tile')].slice(-6); return t.every((x) => x.querySelector('img.thumb').naturalWidth > 0); }, null, { timeout: 30_000 });
  step('thumbnails at the bottom after End');
  await page.fill('#grid-search', 'PC1');
  await page.waitForTimeout(400);
  const shown = await names();
  assert.ok(shown.length < 500 && shown.every((n) => n.includes('PC1')), `${shown.length} shown`);
  assert.equal(await page.$$eval('.tile', (e) => e.length), shown.length, 'the other tiles are detached');
  await page.locator('.tile').first().focus();
  await page.keyboard.press('Control+a');
  const sel = await page.$$eval('.tile.selected', (e) => e.length);
  assert.equal(sel, shown.length);
  step(`search PC1: ${shown.length} attached, ${sel} selected after Ctrl+A`);
  await page.fill('#grid-search', '');
  await page.waitForTimeout(400);
  assert.deepEqual(await names(), all);
  await page.selectOption('#grid-size', 'small');
  await page.waitForTimeout(400);
  const cols2 = Number(await page.evaluate(() => getComputedStyle(document.getElementById('grid')).getPropertyValue('--grid-cols')));
  const v2 = await page.$$eval('.tile', (t, n) => t.slice(0, n + 1).map((x) => Math.round(x.getBoundingClientRect().top)), cols2);
  assert.ok(cols2 > cols && v2[cols2] > v2[0] && v2[cols2 - 1] === v2[0], `small: ${cols2} cols ${JSON.stringify(v2)}`);
  step(`small tiles: ${cols2} columns, rows whole`);
  await page.selectOption('#grid-size', 'medium');
});
