// The console grid at 500 devices, windowed (grid.js): only the rows near
// the view are in the DOM, the grid's padding keeps the scroll height. This
// checks that fewer than 500 tiles are in the DOM while the grid announces
// all its rows (aria-rowcount, aria-rowindex), rows are whole at two tile
// sizes, ArrowDown moves by the real column count, End reaches (builds and
// scrolls to) the last tile with one tab stop kept, PageUp moves by a
// screen, a tile scrolled out of the window leaves focus on the grid and the
// next arrow brings it back, Space + Shift+End and Ctrl+A select tiles not in
// the DOM, thumbnails follow the view to the bottom, a search shows only its
// tiles and restores the order when cleared, and a lock of all 500 shows on
// tiles that were outside the window when their update came.
//   cargo build -p lectern-server -p lectern-agent && node tests/e2e/gridperf.mjs
import assert from 'node:assert/strict';
import { join } from 'node:path';
import { OUT, openBrowser, runTest, signIn, startServer, step, until } from './lib.mjs';

const N = 500;
const PASSWORD = 'bench-grid-4321';

await runTest('gridperf', 6 * 60 * 1000, async () => {
  const url = await startServer({ agents: N, password: PASSWORD });
  const { page } = await openBrowser();
  await signIn(page, url, PASSWORD);
  await page.waitForFunction((n) => document.getElementById('shown-count').textContent === `${n} computers`
    && document.querySelector('.tile .name:not(:empty)'), N, { timeout: 120_000 });
  const frames = () => page.evaluate(() => new Promise((ok) => {
    let n = 8;
    const tick = () => (n-- ? requestAnimationFrame(tick) : ok(undefined));
    requestAnimationFrame(tick);
  }));
  await frames();
  // The expected order: host names as the grid sorts them by default.
  const all = await page.evaluate(async () => {
    const devices = await (await fetch('/api/v1/devices')).json();
    const c = new Intl.Collator(undefined, { numeric: true, sensitivity: 'base' });
    return devices.map((d) => d.hostname).sort((a, b) => c.compare(a, b));
  });
  assert.equal(all.length, N);
  const active = () => page.evaluate(() => {
    const a = document.activeElement;
    return a?.classList.contains('tile') ? a.querySelector('.name').textContent : a?.id;
  });
  const selected = async () => Number((await page.textContent('#selection-count')).split(' ')[0]);
  const attached = () => page.$$eval('.tile', (e) => e.length);
  const cols = Number(await page.evaluate(() => getComputedStyle(document.getElementById('grid')).getPropertyValue('--grid-cols')));
  const inDom = await attached();
  const aria = await page.evaluate(() => {
    const g = document.getElementById('grid');
    return { rowcount: g.getAttribute('aria-rowcount'), first: g.querySelector('[role=row]').getAttribute('aria-rowindex') };
  });
  step(`cols ${cols}; ${inDom} tiles in the DOM; aria ${JSON.stringify(aria)}`);
  assert.ok(inDom < N / 2 && inDom >= cols, `windowed: ${inDom} tiles in the DOM`);
  assert.equal(aria.rowcount, String(Math.ceil(N / cols)));
  assert.equal(aria.first, '1');
  const visual = await page.$$eval('.tile', (t) => t.slice(0, 13).map((x) => { const r = x.getBoundingClientRect(); return [Math.round(r.top), Math.round(r.left)]; }));
  assert.equal(visual[cols][1], visual[0][1], 'tile cols starts the second row');
  assert.ok(visual[cols][0] > visual[0][0]);
  assert.equal(new Set(visual.slice(0, cols).map((v) => v[0])).size, 1, 'first row on one line');
  assert.deepEqual(await page.$$eval('.tile .name', (e) => e.slice(0, 20).map((x) => x.textContent)), all.slice(0, 20));
  const height0 = await page.evaluate(() => document.getElementById('grid-scroll').scrollHeight);

  await page.locator('.tile').first().focus();
  await page.keyboard.press('ArrowDown');
  assert.equal(await active(), all[cols]);
  await page.keyboard.press('End');
  assert.equal(await active(), all[N - 1]);
  const st = await page.evaluate(() => document.getElementById('grid-scroll').scrollTop);
  assert.ok(st > 1000, `End scrolled the grid (${st})`);
  await frames();
  const tabStops = () => page.$$eval('[tabindex="0"]', (e) => e.filter((x) => x.closest('#grid')).length);
  assert.equal(await tabStops(), 1, 'one tab stop in the grid');
  const lastRow = await page.evaluate(() => [...document.querySelectorAll('#grid [role=row]')].pop().getAttribute('aria-rowindex'));
  assert.equal(lastRow, String(Math.ceil(N / cols)), 'the last row is in the DOM');
  // The estimate for rows not in the DOM matches the real rows: the scroll
  // height barely moves once the bottom rows are laid out.
  const height1 = await page.evaluate(() => document.getElementById('grid-scroll').scrollHeight);
  assert.ok(Math.abs(height1 - height0) < 40, `scroll height ${height0} -> ${height1}`);
  step(`End: last tile focused, scrollTop ${st}, scroll height ${height0} -> ${height1}`);
  // Thumbnails arrive for tiles near the bottom after scrolling there.
  await page.waitForFunction(() => { const t = [...document.querySelectorAll('.tile')].slice(-6); return t.every((x) => x.querySelector('img.thumb').naturalWidth > 0); }, null, { timeout: 30_000 });
  step('thumbnails at the bottom after End');
  await page.keyboard.press('PageUp');
  const up = all.indexOf(await active());
  assert.ok(up < N - 1 - cols && (N - 1 - up) % cols === 0, `PageUp moved by whole rows to ${up}`);
  await page.keyboard.press('Home');
  assert.equal(await active(), all[0]);
  assert.ok(await page.evaluate(() => document.getElementById('grid-scroll').scrollTop) < 200);

  // The focused tile leaves the window: the grid keeps focus and the tab
  // stop, and the next arrow brings the tile after it back.
  await page.evaluate(() => { const b = document.getElementById('grid-scroll'); b.scrollTop = b.scrollHeight / 2; });
  await frames();
  assert.equal(await active(), 'grid', 'focus parked on the grid');
  assert.equal(await tabStops(), 1, 'one tab stop while the tile is out of the window');
  assert.ok(!(await page.$$eval('.tile .name', (e) => e.map((x) => x.textContent))).includes(all[0]), 'first tile detached');
  // Scrolled back by hand, the tile takes the focus back from the grid.
  await page.evaluate(() => { document.getElementById('grid-scroll').scrollTop = 0; });
  await frames();
  assert.equal(await active(), all[0], 'focus back on the tile in view');
  assert.equal(await tabStops(), 1, 'one tab stop again');
  await page.evaluate(() => { const b = document.getElementById('grid-scroll'); b.scrollTop = b.scrollHeight / 2; });
  await frames();
  assert.equal(await active(), 'grid');
  await page.keyboard.press('ArrowRight');
  assert.equal(await active(), all[1]);
  assert.ok(await page.evaluate(() => document.getElementById('grid-scroll').scrollTop) < 200);
  step('focus parked on the grid while its tile was away; ArrowRight brought it back');

  // Selection lives in the model: Space + Shift+End and Ctrl+A reach tiles
  // not in the DOM.
  await page.keyboard.press('Home');
  await page.keyboard.press(' ');
  await page.keyboard.press('Shift+End');
  assert.equal(await selected(), N);
  assert.ok(await attached() < N);
  await page.click('#select-none');
  assert.equal(await selected(), 0);
  await page.locator('.tile').first().focus();
  await page.keyboard.press('Control+a');
  assert.equal(await selected(), N);
  await page.click('#select-none');
  step('Shift+End and Ctrl+A selected all 500 with fewer in the DOM');

  await page.fill('#grid-search', 'PC1');
  await page.waitForTimeout(400);
  await frames();
  const want = all.filter((n) => n.toLowerCase().includes('pc1'));
  assert.equal(await page.textContent('#shown-count'), `${want.length} of ${N} computers`);
  const shown = await page.$$eval('.tile .name', (e) => e.map((x) => x.textContent));
  const at = want.indexOf(shown[0]);
  assert.ok(at >= 0, `${shown[0]} matches`);
  assert.deepEqual(shown, want.slice(at, at + shown.length), 'the window holds a run of the matches, in order');
  await page.locator('.tile').first().focus();
  await page.keyboard.press('Control+a');
  assert.equal(await selected(), want.length);
  step(`search PC1: ${want.length} shown, ${shown.length} in the DOM, ${want.length} selected after Ctrl+A`);
  await page.click('#select-none');
  await page.fill('#grid-search', '');
  await page.waitForTimeout(400);
  await page.evaluate(() => { document.getElementById('grid-scroll').scrollTop = 0; });
  await frames();
  assert.deepEqual(await page.$$eval('.tile .name', (e) => e.slice(0, 20).map((x) => x.textContent)), all.slice(0, 20));

  await page.selectOption('#grid-size', 'small');
  await page.waitForTimeout(400);
  const cols2 = Number(await page.evaluate(() => getComputedStyle(document.getElementById('grid')).getPropertyValue('--grid-cols')));
  const v2 = await page.$$eval('.tile', (t, n) => t.slice(0, n + 1).map((x) => Math.round(x.getBoundingClientRect().top)), cols2);
  assert.ok(cols2 > cols && v2[cols2] > v2[0] && v2[cols2 - 1] === v2[0], `small: ${cols2} cols ${JSON.stringify(v2)}`);
  assert.equal(await page.evaluate(() => document.getElementById('grid').getAttribute('aria-rowcount')), String(Math.ceil(N / cols2)));
  step(`small tiles: ${cols2} columns, rows whole`);
  await page.selectOption('#grid-size', 'medium');
  await page.waitForTimeout(400);

  // At 1440 and 1024 px: rows whole, names whole, the view bar on screen
  // while the grid scrolls.
  for (const width of [1440, 1024]) {
    await page.setViewportSize({ width, height: width === 1440 ? 900 : 768 });
    await page.evaluate(() => { document.getElementById('grid-scroll').scrollTop = 1500; });
    await frames();
    const c = Number(await page.evaluate(() => getComputedStyle(document.getElementById('grid')).getPropertyValue('--grid-cols')));
    const look = await page.evaluate((cols) => {
      const rows = [...document.querySelectorAll('#grid [role=row]')];
      const box = document.getElementById('grid-scroll').getBoundingClientRect();
      const seen = rows.filter((r) => { const b = r.getBoundingClientRect(); return b.bottom > box.top && b.top < box.bottom; });
      return {
        whole: seen.slice(0, -1).every((r) => r.children.length === cols
          && new Set([...r.children].map((t) => Math.round(t.getBoundingClientRect().top))).size === 1),
        cut: [...document.querySelectorAll('.tile .name')].filter((n) => n.scrollWidth > n.clientWidth + 1).length,
        bar: document.getElementById('grid-search').getBoundingClientRect().top,
      };
    }, c);
    assert.ok(look.whole, `${width}px: rows whole`);
    assert.equal(look.cut, 0, `${width}px: names cut`);
    assert.ok(look.bar >= 0 && look.bar < 300, `${width}px: the view bar stays on screen (${look.bar})`);
    // The tiles in view get their thumbnails.
    await page.waitForFunction(() => {
      const box = document.getElementById('grid-scroll').getBoundingClientRect();
      return [...document.querySelectorAll('.tile')].filter((t) => {
        const b = t.getBoundingClientRect();
        return b.bottom > box.top && b.top < box.bottom;
      }).every((t) => t.querySelector('img.thumb').classList.contains('loaded'));
    }, null, { timeout: 30_000 });
    await page.screenshot({ path: join(OUT, `gridperf-${width}.png`) });
    step(`${width}px: ${c} columns, rows and names whole, view bar at ${Math.round(look.bar)}px`);
  }
  await page.setViewportSize({ width: 1440, height: 900 });
  await page.evaluate(() => { document.getElementById('grid-scroll').scrollTop = 0; });
  await frames();

  // A lock of all 500 at the top of the grid: the tiles at the bottom, out
  // of the DOM when their updates came, show it once scrolled to.
  await page.click('#select-all');
  await page.click('#cmd-lock');
  await page.waitForFunction((n) => document.getElementById('results-summary').textContent.trim().startsWith(`done ${n} `), N, { timeout: 90_000 });
  await frames();
  assert.ok(!(await page.$$eval('.tile .name', (e) => e.map((x) => x.textContent))).includes(all[N - 1]), 'the last tile is away');
  await page.evaluate(() => { const b = document.getElementById('grid-scroll'); b.scrollTop = b.scrollHeight; });
  await until('the last tile locked', () => page.evaluate((name) => {
    const t = [...document.querySelectorAll('.tile')].find((x) => x.querySelector('.name').textContent === name);
    return t && t.querySelector('.badge.locked') && t.querySelector('.result').textContent === 'done';
  }, all[N - 1]), 30_000);
  await page.screenshot({ path: join(OUT, 'gridperf-bottom-locked.png') });
  step('lock of 500: the bottom tiles show Locked and done once in the window');
});
