// End-to-end test of safeguarding in Chromebook (standalone) mode: real
// Chromium with the unpacked extension, configured by a real managed-policy
// file (/etc/chromium/policies/managed, so it needs root; skipped otherwise),
// and a real lectern-server over WSS.
//
// - the extension enrolls and announces keyword_scan (its engine,
//   extension/keywords.wasm, is lectern-keywords compiled to WebAssembly:
//   run scripts/build-extension-wasm.sh first), and the server pushes it the
//   school's library;
// - a student types disguised text into a page with a known solid colour;
//   a violation appears on the server (REST) with screenshots: the rolling
//   buffer and the frame of the moment, which shows that page's colour;
// - a search in an address is found too (source "search");
// - the typed text is not in the activity log.
// The violation's detail in the console is saved as
// out/chromebook-safety-violation.png.
//
// Env: LECTERN_SERVER_BIN (default target/debug/lectern-server), CHROMIUM.

import assert from 'node:assert/strict';
import { X509Certificate, createHash } from 'node:crypto';
import { existsSync, mkdirSync, mkdtempSync, readFileSync, rmSync, writeFileSync } from 'node:fs';
import http from 'node:http';
import https from 'node:https';
import { tmpdir } from 'node:os';
import { join, resolve } from 'node:path';
import { launchPersistent, onCleanup, openBrowser, OUT, REPO, runTest, setFailurePage, signIn, startServer, step } from './lib.mjs';

const EXT = resolve(REPO, 'extension');
const EXT_ID = readFileSync(join(EXT, 'EXTENSION_ID'), 'utf8').trim();
const PASSWORD = 'e2e-cbsafety-321';
const POLICY_DIR = '/etc/chromium/policies/managed';
const POLICY_FILE = join(POLICY_DIR, 'lectern-safety-test.json');
/** The chat page's background: the screenshot of the moment must show it. */
const COLOUR = [0x22, 0x88, 0x44];
const HOSTNAME = 'CB-SAFETY-01';

const scratch = mkdtempSync(join(tmpdir(), 'lectern-cbsafety-e2e-'));
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

/** A chat page (solid colour, a text box) on chat.test, and a search page on search.test. */
async function startSites() {
  const [r, g, b] = COLOUR;
  const srv = http.createServer((req, res) => {
    res.setHeader('Content-Type', 'text/html; charset=utf-8');
    res.setHeader('Cache-Control', 'no-store');
    const host = (req.headers.host || '').split(':')[0];
    const title = host === 'search.test' ? 'Search results' : 'Class chat';
    res.end(`<!doctype html><html><head><title>${title}</title>
<style>html,body{margin:0;height:100%;background:rgb(${r},${g},${b})}textarea{position:fixed;left:8px;bottom:8px;width:200px;height:24px}</style>
</head><body><textarea id="chat" aria-label="Message"></textarea><button id="send">Send</button></body></html>`);
  });
  await new Promise((ok) => srv.listen(0, '127.0.0.1', ok));
  onCleanup(() => new Promise((ok) => srv.close(() => ok())));
  const port = /** @type {import('node:net').AddressInfo} */ (srv.address()).port;
  return { url: (host, path = '/') => `http://${host}:${port}${path}` };
}

/**
 * A REST client trusting exactly the server's certificate.
 * @param {string} base
 * @param {string} certPem
 */
async function restClient(base, certPem) {
  const u = new URL(base);
  const call = (method, path, body, token) => new Promise((ok, fail) => {
    const data = body === undefined ? null : Buffer.from(JSON.stringify(body));
    const req = https.request({
      host: u.hostname, port: u.port, path, method, ca: certPem, servername: 'localhost', checkServerIdentity: () => undefined,
      headers: {
        Accept: 'application/json',
        ...(data ? { 'Content-Type': 'application/json', 'Content-Length': data.length } : {}),
        ...(token ? { Authorization: `Bearer ${token}` } : {}),
      },
    }, (res) => {
      const chunks = [];
      res.on('data', (c) => chunks.push(c));
      res.on('end', () => {
        const raw = Buffer.concat(chunks);
        if (res.statusCode >= 400) return fail(new Error(`${method} ${path} → ${res.statusCode}: ${raw.toString('utf8')}`));
        if (!(res.headers['content-type'] || '').includes('json')) return ok(raw);
        return ok(raw.length ? JSON.parse(raw.toString('utf8')) : null);
      });
    });
    req.on('error', fail);
    if (data) req.write(data);
    req.end();
  });
  const { token } = await call('POST', '/api/v1/session', { username: 'admin', password: PASSWORD });
  return (method, path, body) => call(method, path, body, token);
}

/** @param {string} userDataDir @param {string[]} extraArgs */
async function launch(userDataDir, extraArgs) {
  const ctx = await launchPersistent(userDataDir, {
    viewport: { width: 1024, height: 640 },
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

/**
 * The violation of `term` on `device`, once it has at least `shots` screenshots.
 * @param {(method: string, path: string, body?: unknown) => Promise<any>} api
 */
async function violationWith(api, device, term, shots) {
  const v = await until(`a "${term}" violation`, async () => {
    const list = await api('GET', `/api/v1/violations?device=${device}`);
    const items = Array.isArray(list) ? list : list.violations || list.items || [];
    return items.find((x) => x.term === term) || null;
  });
  return until(`${shots} screenshot(s) on violation ${v.id}`, async () => {
    const d = await api('GET', `/api/v1/violations/${v.id}`);
    return d.screenshots >= shots ? d : null;
  });
}

async function run() {
  if (!existsSync(join(EXT, 'keywords.wasm'))) throw new Error('extension/keywords.wasm is missing: run scripts/build-extension-wasm.sh');
  const sites = await startSites();
  const dir = join(scratch, 'server');
  const consoleUrl = await startServer({ agents: 0, password: PASSWORD, dataDir: dir });
  const base = new URL(consoleUrl).origin;
  const certPem = readFileSync(join(dir, 'cert.pem'), 'utf8');
  const spkiDer = new X509Certificate(certPem).publicKey.export({ type: 'spki', format: 'der' });
  const spki = createHash('sha256').update(spkiDer).digest('base64');
  const api = await restClient(base, certPem);

  const tok = await api('POST', '/api/v1/enrollment-tokens', { label: 'chromebook safety e2e', uses: 1, expires_hours: 1 });
  mkdirSync(POLICY_DIR, { recursive: true });
  writeFileSync(POLICY_FILE, JSON.stringify({
    '3rdparty': { extensions: { [EXT_ID]: { server: `127.0.0.1:${new URL(base).port}`, enrollment_token: tok.token, hostname: HOSTNAME } } },
  }, null, 2));
  onCleanup(() => rmSync(POLICY_FILE, { force: true }));

  const { ctx, sw } = await launch(join(scratch, 'profile'), [`--ignore-certificate-errors-spki-list=${spki}`]);
  onCleanup(() => ctx.close().catch(() => {}));
  const device = await until('the extension to enroll with keyword_scan', async () => (await api('GET', '/api/v1/devices'))
    .find((d) => d.hostname === HOSTNAME && d.online && d.capabilities.includes('keyword_scan')), 40_000);
  const terms = await until('the school library in the extension', () => sw.evaluate(() => {
    const s = globalThis.lectern.safety;
    return s && s.engine ? s.engine.terms : 0;
  }));
  step(`device ${device.id} enrolled with ${JSON.stringify(device.capabilities)}; library of ${terms} terms installed in the wasm engine`);

  const page = await ctx.newPage();
  setFailurePage(page);
  await page.goto(sites.url('chat.test', '/room'));
  await page.bringToFront();
  await until('a frame in the rolling buffer', () => sw.evaluate(() => globalThis.lectern.safety.buffer.length >= 1), 20_000);

  const typed = 'honestly just k i l l  y0urs3lf';
  await page.fill('#chat', typed);
  await page.click('#send'); // the field loses focus: typed.js passes it on
  const v = await violationWith(api, device.id, 'kill yourself', 2);
  assert.equal(v.category, 'bullying');
  assert.equal(v.matched, 'k i l l  y0urs3lf');
  assert.equal(v.source, 'text');
  assert.ok(v.context.includes(`(typed on ${sites.url('chat.test', '/room')})`), v.context);
  step(`violation ${v.id}: ${v.term} (${v.category}, severity ${v.severity}) with ${v.screenshots} screenshots`);

  // Severity 5 locks the device (the school's keyword_actions), and a locked
  // browser shows the lock page instead of the next page: wait for the lock,
  // lift it, then go on, so the test does not race the lock.
  const deviceState = async () => (await api('GET', '/api/v1/devices')).find((d) => d.id === device.id)?.state || {};
  await until('the lock of a severity-5 match', async () => (await deviceState()).locked === true);
  await api('POST', '/api/v1/commands', { devices: [device.id], command: { type: 'unlock' } });
  await until('the device unlocked', async () => (await deviceState()).locked === false);
  step('the severity-5 lock came and was lifted');


  // The last screenshot is the moment of the match: the chat page, at the
  // tab's own width (up to 1920 px), not a thumbnail.
  const shot = await api('GET', `/api/v1/violations/${v.id}/screenshots/${v.screenshots - 1}`);
  assert.ok(Buffer.isBuffer(shot) && shot[0] === 0xff && shot[1] === 0xd8, 'a JPEG');
  writeFileSync(join(OUT, 'chromebook-safety-trigger.jpg'), shot);
  const probe = await ctx.newPage();
  const pixel = await probe.evaluate(async (b64) => {
    const bmp = await createImageBitmap(await (await fetch(`data:image/jpeg;base64,${b64}`)).blob());
    const c = new OffscreenCanvas(bmp.width, bmp.height);
    const g = c.getContext('2d');
    g.drawImage(bmp, 0, 0);
    return { w: bmp.width, h: bmp.height, rgb: [...g.getImageData(bmp.width >> 1, bmp.height >> 2, 1, 1).data.slice(0, 3)] };
  }, shot.toString('base64'));
  await probe.close();
  const tabWidth = await page.evaluate(() => Math.round(window.innerWidth * window.devicePixelRatio));
  assert.equal(pixel.w, Math.min(tabWidth, 1920), `the trigger frame at the tab's width (${tabWidth})`);
  for (let i = 0; i < 3; i += 1) assert.ok(Math.abs(pixel.rgb[i] - COLOUR[i]) <= 12, `the screenshot shows the page: ${JSON.stringify(pixel)}`);
  step(`the trigger frame is ${pixel.w}x${pixel.h} and shows the chat page (rgb ${pixel.rgb})`);

  // A search in an address.
  await page.goto(sites.url('search.test', '/search?q=how+to+k1ll+myself'));
  const s = await violationWith(api, device.id, 'kill myself', 1);
  assert.equal(s.source, 'search');
  step(`violation ${s.id}: ${s.term} found in a search`);

  // Typed text is scanned, never logged.
  const activity = await until('the visits in the activity log', async () => {
    const list = await api('GET', `/api/v1/activity?device=${device.id}&limit=100`);
    return list.some((e) => (e.url || '').includes('search.test')) ? list : null;
  });
  assert.ok(!JSON.stringify(activity).includes('y0urs3lf'), 'the typed text is not in the activity log');

  // The detail in the console, saved for a look.
  const { page: con } = await openBrowser();
  await signIn(con, consoleUrl, PASSWORD);
  await con.goto(new URL(`/logs?violation=${v.id}`, consoleUrl).href);
  await con.waitForSelector(`#violation-dialog[open][data-violation-id="${v.id}"]`, { timeout: 15_000 });
  await con.waitForFunction(() => {
    const large = /** @type {HTMLImageElement} */ (document.getElementById('violation-shot-large'));
    return large && large.complete && large.naturalWidth > 0;
  }, null, { timeout: 15_000 });
  await con.screenshot({ path: join(OUT, 'chromebook-safety-violation.png') });
  step('console detail saved as out/chromebook-safety-violation.png');
}

await runTest('chromebook-safety', 4 * 60 * 1000, async () => {
  if (!(process.getuid && process.getuid() === 0)) {
    step(`chromebook-safety: SKIPPED (needs root to write ${POLICY_FILE}, Chromium's managed policy)`);
    return;
  }
  try {
    await run();
  } catch (err) {
    if (swLog.length) console.error(`--- extension service worker (last 40 lines) ---\n${swLog.slice(-40).join('\n')}`);
    throw err;
  }
});
