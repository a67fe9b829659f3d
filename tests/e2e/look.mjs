// Browser end-to-end test of the "School on student screens" page (issue 13
// point 1): an administrator sets the school's display name and uploads a
// logo through the page; the page passes axe-core (WCAG 2.1 A/AA) before and
// after, a wrong file gets a clear error, and a locked computer's thumbnail
// then shows the logo (the demo's agents draw the real lock screen).
// Screenshots at 1440 and 1024 px go to tests/e2e/out/look-*.png.
//
// Run: node tests/e2e/look.mjs (needs cargo build -p lectern-server).

import assert from 'node:assert/strict';
import { createRequire } from 'node:module';
import { writeFileSync } from 'node:fs';
import { join } from 'node:path';
import { OUT, openBrowser, runTest, signIn, startServer, step, until, openConsolePage } from './lib.mjs';

const PASSWORD = 'e2e-look-789';
const TAGS = ['wcag2a', 'wcag2aa', 'wcag21a', 'wcag21aa'];
const WIDTHS = [1440, 1024];
const AXE_SOURCE = createRequire(import.meta.url)('axe-core').source;
/** A 160×80 PNG: red with a white box. */
const LOGO_PNG = Buffer.from('iVBORw0KGgoAAAANSUhEUgAAAKAAAABQAQMAAACkk+x3AAAABGdBTUEAALGPC/xhBQAAACBjSFJNAAB6JgAAgIQAAPoAAACA6AAAdTAAAOpgAAA6mAAAF3CculE8AAAABlBMVEXIHh7///83dApLAAAAAWJLR0QB/wIt3gAAAAd0SU1FB+oMAgcFLrAcWMEAAAAeSURBVDjLY2AYBaMAFdj/B4N/o4KjggMsOApGGAAAliLfqhmPqoEAAAAldEVYdGRhdGU6Y3JlYXRlADIwMjYtMTItMDJUMDc6MDU6NDYrMDA6MDCU3tJ6AAAAJXRFWHRkYXRlOm1vZGlmeQAyMDI2LTEyLTAyVDA3OjA1OjQ2KzAwOjAw5YNqxgAAAABJRU5ErkJggg==', 'base64');

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
    await page.setViewportSize({ width, height: 800 });
    await page.screenshot({ path: join(OUT, `look-${name}-${width}.png`), fullPage: true });
  }
  await page.setViewportSize({ width: WIDTHS[0], height: 800 });
}

/**
 * Calls the API with the page's session.
 * @param {string} method
 * @param {string} path
 * @param {unknown} [body]
 */
async function api(method, path, body) {
  return page.evaluate(async ({ method, path, body }) => {
    /** @type {Record<string, string>} */
    const headers = { Accept: 'application/json' };
    if (method !== 'GET') headers['X-CSRF-Token'] = /** @type {HTMLMetaElement} */ (document.querySelector('meta[name="csrf-token"]')).content;
    if (body !== undefined) headers['Content-Type'] = 'application/json';
    const res = await fetch(path, { method, headers, body: body === undefined ? undefined : JSON.stringify(body) });
    return { status: res.status, text: await res.text() };
  }, { method, path, body });
}

await runTest('look', 3 * 60 * 1000, async () => {
  const consoleUrl = await startServer({ agents: 2, password: PASSWORD });
  ({ page } = await openBrowser());
  await signIn(page, consoleUrl, PASSWORD);

  await openConsolePage(page, 'admin', '/school');
  await page.waitForURL((url) => url.pathname === '/school', { timeout: 15_000 });
  await page.waitForSelector('#look-logo-none:not([hidden])');
  await checkAxe('/school without a logo');
  await screenshots('empty');

  step('a name and a wrong file, then the logo');
  await page.fill('#look-name', 'Ysgol Gŵyr — Zażółć 東京');
  await page.click('#look-name-save');
  await page.waitForSelector('#notice.info:not([hidden])');
  const bad = join(OUT, 'look-not-an-image.txt');
  writeFileSync(bad, 'not an image');
  await page.setInputFiles('#look-logo-file', bad);
  await page.click('#look-logo-upload');
  await until('the refusal is shown', async () => (await page.textContent('#notice'))?.includes('PNG or JPEG') ?? false);
  const logoFile = join(OUT, 'look-logo.png');
  writeFileSync(logoFile, LOGO_PNG);
  await page.setInputFiles('#look-logo-file', logoFile);
  await page.click('#look-logo-upload');
  await page.waitForSelector('#look-logo-image:not([hidden])');
  await page.waitForFunction(() => /** @type {HTMLImageElement} */ (document.getElementById('look-logo-image')).naturalWidth === 160);
  assert.match(await page.textContent('#look-logo-info') ?? '', /160 × 80 pixels/);
  await checkAxe('/school with a logo');
  await screenshots('logo');
  const look = JSON.parse((await api('GET', '/api/v1/school/look')).text);
  assert.equal(look.name, 'Ysgol Gŵyr — Zażółć 東京');

  step('a locked computer shows the logo');
  const devices = JSON.parse((await api('GET', '/api/v1/devices')).text);
  const list = Array.isArray(devices) ? devices : devices.devices;
  const id = list[0].id;
  const r = await api('POST', '/api/v1/commands', { devices: [id], command: { type: 'lock', text: 'Eyes to the front' } });
  assert.ok(r.status < 300, r.text);
  await page.click('nav.pagenav a[href="/"]');
  await until('a locked thumbnail shows the red logo', async () => page.evaluate(() => {
    for (const img of /** @type {HTMLImageElement[]} */ ([...document.querySelectorAll('.tile img.thumb')])) {
      if (!img.naturalWidth) continue;
      const c = document.createElement('canvas');
      c.width = img.naturalWidth;
      c.height = img.naturalHeight;
      const g = /** @type {CanvasRenderingContext2D} */ (c.getContext('2d'));
      g.drawImage(img, 0, 0);
      const px = g.getImageData(0, 0, c.width, c.height).data;
      let red = 0;
      for (let i = 0; i < px.length; i += 4) if (px[i] > 170 && px[i + 1] < 80 && px[i + 2] < 80) red++;
      if (red > 20) return true;
    }
    return false;
  }), 60_000);
  await page.screenshot({ path: join(OUT, 'look-locked-classroom-1440.png') });
});
