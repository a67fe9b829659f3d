// Firefox smoke test of the packed extension (issue 10.7): Debian's
// firefox-esr, driven over WebDriver BiDi with puppeteer-core, loads the
// Firefox build made by scripts/package-extension.sh and checks that
//   - the background starts and, with no agent installed and no server
//     configured, waits (Firefox's "no such native application" is read as
//     "no agent", see extension/native.js);
//   - the block page renders its reason;
//   - a web policy applied through the background's declarativeNetRequest
//     rules sends a real page load to the block page, and lifting it lets
//     the page load again.
//
// Usage: node firefox-smoke.mjs FIREFOX_BUILD_DIR GECKO_ID [FIREFOX_BINARY]
// Exit 0: passed; 1: failed; 77: Firefox or the driver is not available here.

import http from 'node:http';
import { randomUUID } from 'node:crypto';
import { mkdtempSync, rmSync } from 'node:fs';
import { tmpdir } from 'node:os';
import { join } from 'node:path';

const [dir, geckoId, binary = '/usr/lib/firefox-esr/firefox-esr'] = process.argv.slice(2);
if (!dir || !geckoId) {
  console.error('usage: node firefox-smoke.mjs FIREFOX_BUILD_DIR GECKO_ID [FIREFOX_BINARY]');
  process.exit(2);
}

let puppeteer;
try {
  puppeteer = (await import('puppeteer-core')).default;
} catch (err) {
  console.error(`SKIP: puppeteer-core is not installed (${err.message})`);
  process.exit(77);
}

const step = (s) => console.log(`firefox-smoke: ${s}`);
const deadline = (ms, what) => new Promise((_, reject) => setTimeout(() => reject(new Error(`timed out: ${what}`)), ms).unref());
// Firefox over BiDi does not always report the end of a navigation to an
// extension page; start it and wait for what it should show instead.
const visit = (page, url) => page.goto(url, { waitUntil: 'domcontentloaded', timeout: 5_000 }).catch(() => {});
const until = async (what, fn, ms = 20_000) => {
  const end = Date.now() + ms;
  for (;;) {
    const v = await fn().catch(() => undefined);
    if (v) return v;
    if (Date.now() > end) throw new Error(`timed out waiting for ${what}`);
    await new Promise((r) => setTimeout(r, 200));
  }
};

const site = http.createServer((_req, res) => {
  res.writeHead(200, { 'content-type': 'text/html' });
  res.end('<!doctype html><title>site</title><p id=ok>hello from the site</p>');
});
await new Promise((r) => site.listen(0, '127.0.0.1', r));
const siteUrl = `http://127.0.0.1:${site.address().port}/`;

// A fixed moz-extension UUID, so the test knows the extension's pages' address.
const uuid = randomUUID();
const profile = mkdtempSync(join(tmpdir(), 'lectern-ff-'));
let browser;
let failed = false;
try {
  try {
    browser = await Promise.race([
      puppeteer.launch({
        browser: 'firefox',
        executablePath: binary,
        headless: true,
        userDataDir: profile,
        extraPrefsFirefox: {
          'extensions.webextensions.uuids': JSON.stringify({ [geckoId]: uuid }),
        },
      }),
      deadline(60_000, 'starting Firefox'),
    ]);
  } catch (err) {
    console.error(`SKIP: cannot start ${binary} with WebDriver BiDi: ${err.message}`);
    process.exitCode = 77;
    throw null;
  }
  step(`started ${await browser.version()}`);
  const id = await browser.installExtension(dir);
  if (id !== geckoId) throw new Error(`installed as ${id}, expected ${geckoId}`);
  step(`installed ${id} (temporary add-on, unsigned)`);
  const base = `moz-extension://${uuid}/`;

  const page = await browser.newPage();
  // Firefox 153 refuses WebDriver navigation to moz-extension: URLs ("not
  // allowed in this context"); a web page may still go to the extension's
  // web-accessible block page, as the block itself does.
  await visit(page, siteUrl);
  await page.evaluate((u) => { location.href = u; }, `${base}blocked.html#reason=internet&by=your%20teacher&url=${encodeURIComponent(siteUrl)}`);
  // The page fills in its reason from the address after it loads.
  const said = () => page.evaluate(() => document.body.innerText);
  const shows = (t) => /internet is blocked/i.test(t) && /your teacher/.test(t);
  try {
    await until('the block page text', async () => shows(await said()));
  } catch {
    throw new Error(`block page says: ${await said().catch(() => '')}`);
  }
  step('block page renders its reason');

  // The background page (an event page in Firefox) exposes globalThis.lectern.
  const mode = await until('the background to settle', () => page.evaluate(async () => {
    const bg = await browser.runtime.getBackgroundPage();
    return bg && bg.lectern && bg.lectern.mode !== 'starting' && bg.lectern.mode;
  }));
  if (mode !== 'waiting') throw new Error(`background mode ${mode}, expected waiting (no agent, no server)`);
  step('background started; no agent and no server: waiting');

  const apply = (web) => page.evaluate(async (w) => {
    const bg = await browser.runtime.getBackgroundPage();
    return bg.lectern.applyWebPolicy(w);
  }, web);
  const blocked = await apply({ internet_blocked: true, mode: 'off', allow: [], block: [], always_allowed: [], set_by: 'the smoke test' });
  if (!blocked.ok) throw new Error(`applying a block: ${blocked.errors.join('; ')}`);
  const site1 = await browser.newPage();
  await visit(site1, siteUrl);
  const landed = await until('the redirect to the block page', async () => {
    // The page's own location: the driver's idea of the URL misses the rule's redirect.
    const href = await site1.evaluate(() => location.href);
    return href.startsWith(`${base}blocked.html`) ? href : '';
  });
  if (!landed.includes('reason=internet')) throw new Error(`redirected to ${landed}`);
  step(`internet block: ${siteUrl} went to the block page`);

  // Lifted from the tab the block itself redirected (an extension page that
  // has settled): Firefox 153 reloads the first control page when the block
  // lands, and for a while it has no extension API.
  const lift = { internet_blocked: false, mode: 'off', allow: [], block: [], always_allowed: [], set_by: 'the smoke test' };
  const open = await until('the background to lift the block', () => site1.evaluate(async (w) => {
    const bg = await browser.runtime.getBackgroundPage();
    return bg.lectern.applyWebPolicy(w);
  }, lift));
  if (!open.ok) throw new Error(`lifting the block: ${open.errors.join('; ')}`);
  const site2 = await browser.newPage();
  await visit(site2, siteUrl);
  await until('the site to load', () => site2.evaluate(() => document.getElementById('ok')?.textContent));
  step('block lifted: the site loads');
  step('PASS');
} catch (err) {
  if (err) {
    failed = true;
    console.error(`firefox-smoke: FAIL: ${err.stack || err}`);
  }
} finally {
  if (browser) await browser.close().catch(() => {});
  site.close();
  rmSync(profile, { recursive: true, force: true });
}
if (failed) process.exitCode = 1;
