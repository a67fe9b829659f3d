// End-to-end test of the live view of a Chromebook-mode device: real Chromium
// with the unpacked extension in standalone mode, configured by a real
// managed-policy file (/etc/chromium/policies/managed, so it needs root;
// skipped otherwise), a real lectern-server over WSS and the console in
// another browser.
//
// - the console's grid watches the device: thumbnails 320 px wide, about one
//   a second (measured from the server's lectern_thumbnails_received_total);
// - the teacher opens the live view: the console names the device `live`,
//   the server asks for 1280 px every 100 ms, and the extension sends frames
//   as large as the tab (1280 px here) as fast as its capture budget allows
//   (2 captureVisibleTab calls a second, capture.js): measured, checked to be
//   larger and faster than thumbnails and never over the budget, and no
//   capture refused by the browser's quota;
// - closing the live view brings thumbnails back (320 px, about 1/s).
// The measured figures are printed; the live view is saved as
// out/chromebook-live.png.
//
// Env: LECTERN_SERVER_BIN (default target/debug/lectern-server), CHROMIUM.

import assert from 'node:assert/strict';
import { X509Certificate, createHash } from 'node:crypto';
import { mkdirSync, mkdtempSync, readFileSync, rmSync, writeFileSync } from 'node:fs';
import http from 'node:http';
import https from 'node:https';
import { tmpdir } from 'node:os';
import { join, resolve } from 'node:path';
import { launchPersistent, onCleanup, openBrowser, OUT, REPO, runTest, setFailurePage, signIn, startServer, step, waitForThumbnails } from './lib.mjs';

const EXT = resolve(REPO, 'extension');
const EXT_ID = readFileSync(join(EXT, 'EXTENSION_ID'), 'utf8').trim();
const PASSWORD = 'e2e-cblive-321';
const POLICY_DIR = '/etc/chromium/policies/managed';
const POLICY_FILE = join(POLICY_DIR, 'lectern-live-test.json');
const HOSTNAME = 'CB-LIVE-01';
/** The student's browser: the live frames are as wide as its tab. */
const VIEWPORT = { width: 1280, height: 720 };
/** The extension's budget (capture.js CAPTURES_PER_SECOND). */
const BUDGET = 2;
/** How long each rate is measured, ms. */
const MEASURE_MS = 12_000;

const scratch = mkdtempSync(join(tmpdir(), 'lectern-cblive-e2e-'));
onCleanup(() => rmSync(scratch, { recursive: true, force: true }));
/** @type {string[]} */
const swLog = [];

const sleep = (ms) => new Promise((ok) => setTimeout(ok, ms));

/**
 * Polls `fn` until it returns a truthy value.
 * @template T
 * @param {string} what
 * @param {() => Promise<T> | T} fn
 * @param {number} [timeout]
 * @returns {Promise<T>}
 */
async function until(what, fn, timeout = 30_000) {
  const deadline = Date.now() + timeout;
  let last;
  for (;;) {
    try {
      const v = await fn();
      if (v) return v;
      last = v;
    } catch (err) {
      last = err;
    }
    if (Date.now() > deadline) throw new Error(`timed out waiting for ${what} (last: ${last instanceof Error ? last.message : JSON.stringify(last)})`);
    await sleep(250);
  }
}

/** A page with a clock that changes every 100 ms, so every frame differs. */
async function startSite() {
  const srv = http.createServer((req, res) => {
    res.setHeader('Content-Type', 'text/html; charset=utf-8');
    res.end(`<!doctype html><html><head><title>Lesson</title>
<style>html,body{margin:0;height:100%;background:#2a6fdb;color:#fff;font:48px sans-serif}</style></head>
<body><p id="t">Lesson</p><script>setInterval(()=>{t.textContent='Lesson '+Date.now()},100)</script></body></html>`);
  });
  await new Promise((ok) => srv.listen(0, '127.0.0.1', ok));
  onCleanup(() => new Promise((ok) => srv.close(() => ok())));
  return `http://lesson.test:${/** @type {import('node:net').AddressInfo} */ (srv.address()).port}/`;
}

/**
 * GET on the server, trusting exactly its certificate (`token`: bearer).
 * @returns {Promise<string>}
 */
function get(base, certPem, path, token) {
  const u = new URL(base);
  return new Promise((ok, fail) => {
    https.get({
      host: u.hostname, port: u.port, path, ca: certPem, servername: 'localhost', checkServerIdentity: () => undefined,
      headers: { Authorization: `Bearer ${token}` },
    }, (res) => {
      const chunks = [];
      res.on('data', (c) => chunks.push(c));
      res.on('end', () => (res.statusCode >= 400 ? fail(new Error(`GET ${path} → ${res.statusCode}`)) : ok(Buffer.concat(chunks).toString('utf8'))));
    }).on('error', fail);
  });
}

/** @param {string} userDataDir @param {string[]} extraArgs */
async function launchStudent(userDataDir, extraArgs) {
  const ctx = await launchPersistent(userDataDir, {
    viewport: VIEWPORT,
    extensionDir: EXT,
    args: extraArgs,
  });
  const isOurs = (w) => w.url().startsWith(`chrome-extension://${EXT_ID}/`);
  let sw = ctx.serviceWorkers().find(isOurs);
  if (!sw) sw = await ctx.waitForEvent('serviceworker', { predicate: isOurs, timeout: 20_000 });
  sw.on('console', (m) => {
    swLog.push(m.text());
    if (swLog.length > 200) swLog.shift();
  });
  return { ctx, sw };
}

async function run() {
  const lesson = await startSite();
  const dir = join(scratch, 'server');
  const consoleUrl = await startServer({ agents: 0, password: PASSWORD, dataDir: dir });
  const base = new URL(consoleUrl).origin;
  const certPem = readFileSync(join(dir, 'cert.pem'), 'utf8');
  const metricsToken = /metrics_token\s*=\s*"([^"]+)"/.exec(readFileSync(join(dir, 'server.toml'), 'utf8'))[1];
  const metric = async (name) => Number(new RegExp(`^${name} (\\d+)$`, 'm').exec(await get(base, certPem, '/metrics', metricsToken))[1]);
  const spkiDer = new X509Certificate(certPem).publicKey.export({ type: 'spki', format: 'der' });
  const spki = createHash('sha256').update(spkiDer).digest('base64');

  // The teacher's console, signed in (its token also serves the REST calls).
  const { page: con } = await openBrowser();
  setFailurePage(con);
  await signIn(con, consoleUrl, PASSWORD);
  const api = async (method, path, body) => con.evaluate(async ([m, p, b]) => {
    const csrf = /** @type {HTMLMetaElement} */ (document.querySelector('meta[name="csrf-token"]')).content;
    const headers = m === 'GET' ? {} : { 'Content-Type': 'application/json', 'X-CSRF-Token': csrf };
    const r = await fetch(p, { method: m, headers, body: b ? JSON.stringify(b) : undefined });
    if (!r.ok) throw new Error(`${m} ${p} → ${r.status}`);
    return r.json();
  }, [method, path, body]);

  const tok = await api('POST', '/api/v1/enrollment-tokens', { label: 'chromebook live e2e', uses: 1, expires_hours: 1 });
  mkdirSync(POLICY_DIR, { recursive: true });
  writeFileSync(POLICY_FILE, JSON.stringify({
    '3rdparty': { extensions: { [EXT_ID]: { server: `127.0.0.1:${new URL(base).port}`, enrollment_token: tok.token, hostname: HOSTNAME } } },
  }, null, 2));
  onCleanup(() => rmSync(POLICY_FILE, { force: true }));

  const { ctx, sw } = await launchStudent(join(scratch, 'profile'), [`--ignore-certificate-errors-spki-list=${spki}`]);
  onCleanup(() => ctx.close().catch(() => {}));
  const device = await until('the extension to enroll with thumbnails', async () => (await api('GET', '/api/v1/devices'))
    .find((d) => d.hostname === HOSTNAME && d.online && d.capabilities.includes('thumbnails')), 40_000);
  const student = await ctx.newPage();
  await student.goto(lesson);
  await student.bringToFront();
  step(`device ${device.id} enrolled; the student has ${lesson} open`);

  // Thumbnails in the grid; the console's frames are logged (time, bytes).
  await con.addInitScript(() => {
    globalThis.frameLog = [];
    const Native = WebSocket;
    globalThis.WebSocket = class extends Native {
      constructor(...args) {
        super(...args);
        this.addEventListener('message', (e) => {
          if (typeof e.data !== 'string') globalThis.frameLog.push(e.data.byteLength);
        });
      }
    };
  });
  await con.reload();
  await waitForThumbnails(con, 1);
  const tile = con.locator(`.tile[data-device-id="${device.id}"]`);
  const tileWidth = () => tile.locator('img.thumb').evaluate((img) => /** @type {HTMLImageElement} */ (img).naturalWidth);
  await until('a 320 px thumbnail', async () => (await tileWidth()) === 320);
  const thumbs = await measure(metric, con);
  step(`thumbnails: ${thumbs.frames} frames in ${thumbs.secs.toFixed(1)} s = ${thumbs.rate.toFixed(2)}/s, 320 px wide, ${thumbs.bytes} bytes each on average`);

  // The live view.
  await tile.locator('.live-view').click();
  await con.waitForSelector('#live-view-decision[data-decision="allowed"]', { timeout: 30_000 });
  const liveWidth = () => con.$eval('#live-view-image', (img) => /** @type {HTMLImageElement} */ (img).naturalWidth);
  await until('a live frame as wide as the tab', async () => (await liveWidth()) === VIEWPORT.width);
  assert.equal(await metric('lectern_live_views'), 1);
  assert.equal(await metric('lectern_live_streams'), 1);
  const before = await sw.evaluate(() => globalThis.lectern.captures);
  const live = await measure(metric, con);
  const after = await sw.evaluate(() => globalThis.lectern.captures);
  await con.screenshot({ path: join(OUT, 'chromebook-live.png') });
  step(`live view: ${live.frames} frames in ${live.secs.toFixed(1)} s = ${live.rate.toFixed(2)}/s, ${VIEWPORT.width} px wide, ${live.bytes} bytes each on average (the console got ${live.shown}); captures ${JSON.stringify(after)}`);

  assert.ok(live.bytes > thumbs.bytes * 2, `live frames are larger (${live.bytes} vs ${thumbs.bytes} bytes)`);
  assert.ok(live.rate > thumbs.rate * 1.3, `live frames come faster than thumbnails (${live.rate} vs ${thumbs.rate}/s)`);
  assert.ok(live.rate >= 1.2, `about the budget of ${BUDGET}/s: ${live.rate}/s`);
  assert.ok(live.frames <= BUDGET * (live.secs + 1), `never over the budget: ${live.frames} in ${live.secs} s`);
  assert.equal(after.quota, 0, 'no MAX_CAPTURE_VISIBLE_TAB_CALLS_PER_SECOND errors');
  assert.equal(after.failed - before.failed, 0, 'no capture failed');

  // Closing the live view: thumbnails again.
  await con.click('#live-view-close');
  await until('thumbnails again', async () => (await tileWidth()) === 320 && (await metric('lectern_live_streams')) === 0);
  assert.equal(await metric('lectern_live_views'), 0);
  const again = await measure(metric, con);
  step(`after the live view: ${again.rate.toFixed(2)} thumbnails/s, 320 px wide`);
  assert.ok(again.rate < live.rate, 'the rate falls back');
}

/**
 * Frames the server receives from devices over MEASURE_MS, and the frames the
 * console gets meanwhile (count, mean bytes).
 * @param {(name: string) => Promise<number>} metric
 * @param {import('playwright-core').Page} con
 */
async function measure(metric, con) {
  const seen = await con.evaluate(() => globalThis.frameLog.length);
  const n0 = await metric('lectern_thumbnails_received_total');
  const t0 = Date.now();
  await sleep(MEASURE_MS);
  const frames = (await metric('lectern_thumbnails_received_total')) - n0;
  const secs = (Date.now() - t0) / 1000;
  const got = await con.evaluate((from) => globalThis.frameLog.slice(from), seen);
  const bytes = got.length ? Math.round(got.reduce((a, b) => a + b, 0) / got.length) : 0;
  return { frames, secs, rate: frames / secs, shown: got.length, bytes };
}

await runTest('chromebook-live', 4 * 60 * 1000, async () => {
  if (!(process.getuid && process.getuid() === 0)) {
    step(`chromebook-live: SKIPPED (needs root to write ${POLICY_FILE}, Chromium's managed policy)`);
    return;
  }
  try {
    await run();
  } catch (err) {
    if (swLog.length) console.error(`--- extension service worker (last 40 lines) ---\n${swLog.slice(-40).join('\n')}`);
    throw err;
  }
});
