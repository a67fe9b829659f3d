// End-to-end test of the extension as a complete classroom client in
// standalone (Chromebook) mode, in real Chromium against a real server:
//
// - the extension enrolls from a real managed-policy file (server, token,
//   home page) and announces `thumbnails` and `lock`;
// - while no console watches, no thumbnail reaches the server (metric
//   lectern_thumbnails_received_total, read with the metrics_token);
// - a console (a second, separate Chromium signed in to the real console)
//   watches: its tile shows thumbnails whose pixels are the student's solid
//   red page; a chrome:// page gives the grey "cannot capture" placeholder;
// - the school's look set by an admin (name, logo) reaches the extension;
// - lock covers every window with the lock page (the school's name and logo,
//   the teacher's Unicode message), survives the student closing the lock tab, opening a new
//   tab and opening a new window, and a browser restart (the lock page itself
//   shows again, not an error page under its URL), and is reported as `locked`
//   with what it cannot stop in `unsupported`; unlock restores browsing;
// - close_all_tabs leaves only the school's home page; logout fails with a
//   reason before it is sent;
// - once the console has gone, the thumbnails stop.
// Screenshots: out/chromebook-lock.png, out/chromebook-console.png.
// Needs root (writes Chromium's managed policy under /etc).
//
// Env: LECTERN_SERVER_BIN, CHROMIUM.

import assert from 'node:assert/strict';
import { mkdtempSync, readFileSync, rmSync } from 'node:fs';
import http from 'node:http';
import https from 'node:https';
import { tmpdir } from 'node:os';
import { join } from 'node:path';
import {
  EXTENSION_ID as EXT_ID, OUT, launchWithExtension, onCleanup, openBrowser, runTest, setFailurePage, signIn, spkiHash,
  startServer, step, until, waitForThumbnails, writeExtensionPolicy,
} from './lib.mjs';

const PASSWORD = 'e2e-cb-4321';
const POLICY_NAME = 'lectern-chromebook-test.json';
const LOCK_URL = `chrome-extension://${EXT_ID}/lock.html`;
const LOCK_TEXT = 'Pens down — 请看老师 · Écoutez ✏️';
const HOSTNAME = 'CB-SCREENS-01';
const SCHOOL_LOOK_NAME = 'Ysgol Gŵyr — 東京';
/** A 160 × 80 PNG, red with a white band. */
const LOGO_PNG = Buffer.from('iVBORw0KGgoAAAANSUhEUgAAAKAAAABQAQMAAACkk+x3AAAABGdBTUEAALGPC/xhBQAAACBjSFJNAAB6JgAAgIQAAPoAAACA6AAAdTAAAOpgAAA6mAAAF3CculE8AAAABlBMVEXIHh7///83dApLAAAAAWJLR0QB/wIt3gAAAAd0SU1FB+oMAgcFLrAcWMEAAAAeSURBVDjLY2AYBaMAFdj/B4N/o4KjggMsOApGGAAAliLfqhmPqoEAAAAldEVYdGRhdGU6Y3JlYXRlADIwMjYtMTItMDJUMDc6MDU6NDYrMDA6MDCU3tJ6AAAAJXRFWHRkYXRlOm1vZGlmeQAyMDI2LTEyLTAyVDA3OjA1OjQ2KzAwOjAw5YNqxgAAAABJRU5ErkJggg==', 'base64');

const scratch = mkdtempSync(join(tmpdir(), 'lectern-cb-e2e-'));
onCleanup(() => rmSync(scratch, { recursive: true, force: true }));
/** @type {string[]} */
const swLog = [];

const sleep = (ms) => new Promise((ok) => setTimeout(ok, ms));

/** Pages: a solid red one, the school home page, any other (all *.test). */
async function startSites() {
  const srv = http.createServer((req, res) => {
    const host = (req.headers.host || '').split(':')[0].toLowerCase();
    res.setHeader('Content-Type', 'text/html; charset=utf-8');
    res.setHeader('Cache-Control', 'no-store');
    if (host === 'red.test') {
      res.end('<!doctype html><html><head><title>Red page</title></head><body style="margin:0;background:#ff0000;height:100vh"></body></html>');
      return;
    }
    const title = host === 'school.test' ? 'School home' : `Page on ${host}`;
    res.end(`<!doctype html><html><head><title>${title}</title></head><body><h1>${title}</h1><p>${req.url}</p></body></html>`);
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
  const call = (method, path, body, token, raw = false) => new Promise((ok, fail) => {
    // A Buffer goes as it is (an image upload); anything else as JSON.
    const bytes = Buffer.isBuffer(body);
    const data = body === undefined ? null : bytes ? body : Buffer.from(JSON.stringify(body));
    const req = https.request({
      host: u.hostname, port: u.port, path, method, ca: certPem, servername: 'localhost', checkServerIdentity: () => undefined,
      headers: {
        Accept: 'application/json',
        ...(data ? { 'Content-Type': bytes ? 'image/png' : 'application/json', 'Content-Length': data.length } : {}),
        ...(token ? { Authorization: `Bearer ${token}` } : {}),
      },
    }, (res) => {
      let text = '';
      res.setEncoding('utf8');
      res.on('data', (c) => { text += c; });
      res.on('end', () => {
        if (res.statusCode >= 400) return fail(new Error(`${method} ${path} → ${res.statusCode}: ${text}`));
        if (raw) return ok(text);
        try {
          return ok(text ? JSON.parse(text) : null);
        } catch {
          return fail(new Error(`${method} ${path}: not JSON`));
        }
      });
    });
    req.on('error', fail);
    if (data) req.write(data);
    req.end();
  });
  const { token } = await call('POST', '/api/v1/session', { username: 'admin', password: PASSWORD });
  const api = (method, path, body) => call(method, path, body, token);
  return {
    api,
    devices: () => api('GET', '/api/v1/devices'),
    /** The counter `name` from /metrics, with the metrics bearer token. */
    async metric(name, metricsToken) {
      const text = /** @type {string} */ (await call('GET', '/metrics', undefined, metricsToken, true));
      const m = new RegExp(`^${name}(?:\\{[^}]*\\})?\\s+(\\d+)`, 'm').exec(text);
      if (!m) throw new Error(`no ${name} in /metrics`);
      return Number(m[1]);
    },
    /** Sends a command to one device and waits for its outcome. */
    async command(deviceId, command) {
      const res = await api('POST', '/api/v1/commands', { devices: [deviceId], command });
      return until(`the outcome of ${JSON.stringify(command)}`, async () => {
        const c = await api('GET', `/api/v1/commands/${res.id}`);
        const t = (c.targets || []).find((x) => x.device_id === deviceId);
        return t && t.status !== 'pending' ? { status: t.status, reason: t.reason ?? null } : null;
      });
    },
  };
}

/**
 * Chromium with the extension, in its own profile.
 * @param {string} userDataDir
 * @param {string} spki the server key's SPKI hash, trusted
 */
const launchStudent = (userDataDir, spki) => launchWithExtension(userDataDir, { spki, log: swLog });

/** Every normal window's tabs, from the extension's view. */
function windows(sw) {
  return sw.evaluate(async () => (await chrome.windows.getAll({ populate: true, windowTypes: ['normal'] }))
    .map((w) => ({ id: w.id, tabs: w.tabs.map((t) => ({ id: t.id, url: t.url || t.pendingUrl || '', active: t.active })) })));
}

/** Whether every normal window shows the lock page in front. */
async function allLocked(sw) {
  const ws = await windows(sw);
  return ws.length > 0 && ws.every((w) => w.tabs.some((t) => t.active && t.url.startsWith(LOCK_URL)));
}

/**
 * The colour at the middle of the console tile's thumbnail, and its size.
 * @param {import('playwright-core').Page} page
 */
function tilePixel(page, fx = 0.5, fy = 0.5) {
  return page.evaluate(([fx, fy]) => {
    const img = /** @type {HTMLImageElement | null} */ (document.querySelector('.tile img.thumb'));
    if (!img || !img.naturalWidth) return null;
    const c = document.createElement('canvas');
    c.width = img.naturalWidth;
    c.height = img.naturalHeight;
    const ctx = c.getContext('2d');
    ctx.drawImage(img, 0, 0);
    const [r, g, b] = ctx.getImageData(Math.floor(c.width * fx), Math.floor(c.height * fy), 1, 1).data;
    return { r, g, b, w: c.width, h: c.height, src: img.src };
  }, [fx, fy]);
}

const isRed = (p) => p && p.r > 200 && p.g < 50 && p.b < 50;
/** The placeholder's grey-blue (#3a4150), JPEG-tolerant. */
const isPlaceholder = (p) => p && Math.abs(p.r - 0x3a) < 25 && Math.abs(p.g - 0x41) < 25 && Math.abs(p.b - 0x50) < 25;

/** Progress of the stream, for the log. */
async function streamInfo(sw, thumbsReceived) {
  const s = await sw.evaluate(() => globalThis.lectern.thumbnails).catch(() => null);
  return `running ${s ? s.intervalMs : '?'} ms; extension frames ${s ? s.frames : '?'}, placeholders ${s ? s.placeholders : '?'}; server received ${await thumbsReceived()}`;
}

async function run() {
  if (!(process.getuid && process.getuid() === 0)) {
    step(`SKIPPED: needs root to write ${POLICY_NAME} (Chromium's managed policy)`);
    return;
  }
  const sites = await startSites();
  const dataDir = join(scratch, 'server');
  const consoleUrl = await startServer({ agents: 0, password: PASSWORD, dataDir });
  const base = new URL(consoleUrl).origin;
  const certPem = readFileSync(join(dataDir, 'cert.pem'), 'utf8');
  const spki = spkiHash(certPem);
  const metricsToken = /metrics_token\s*=\s*"([^"]+)"/.exec(readFileSync(join(dataDir, 'server.toml'), 'utf8'))?.[1];
  assert.ok(metricsToken, 'server.toml has a metrics_token');
  const rest = await restClient(base, certPem);
  const thumbsReceived = () => rest.metric('lectern_thumbnails_received_total', metricsToken);

  const tok = await rest.api('POST', '/api/v1/enrollment-tokens', { label: 'chromebook screens e2e', uses: 1, expires_hours: 1 });
  const home = sites.url('school.test', '/home');
  writeExtensionPolicy(POLICY_NAME, { server: `127.0.0.1:${new URL(base).port}`, enrollment_token: tok.token, hostname: HOSTNAME, home_page: home });

  const profile = join(scratch, 'student');
  let { ctx, sw } = await launchStudent(profile, spki);
  onCleanup(() => ctx.close().catch(() => {}));
  const student = ctx.pages()[0] || await ctx.newPage();
  setFailurePage(student);
  const device = await until('the extension to enroll and connect', async () => (await rest.devices()).find((d) => d.hostname === HOSTNAME && d.online), 60_000);
  assert.ok(device.capabilities.includes('thumbnails') && device.capabilities.includes('lock'), JSON.stringify(device.capabilities));
  assert.ok(!device.capabilities.includes('logout'));
  step(`enrolled as device ${device.id}; capabilities ${device.capabilities.join(' ')}`);
  for (const p of ctx.pages()) if (p !== student) await p.close().catch(() => {}); // the home page opened at enrollment
  await student.goto(sites.url('red.test'));
  await student.bringToFront();

  // Nobody watches: nothing is captured or sent.
  const before = await thumbsReceived();
  await sleep(4000);
  assert.equal(await thumbsReceived(), before, 'no thumbnails while no console watches');
  assert.equal((await sw.evaluate(() => globalThis.lectern.thumbnails)).frames, 0, 'the extension captured nothing');
  step(`no console: lectern_thumbnails_received_total stays at ${before}`);

  // A console watches: thumbnails of the red page.
  const { page: consolePage, pageErrors } = await openBrowser();
  setFailurePage(consolePage);
  await signIn(consolePage, consoleUrl, PASSWORD);
  await waitForThumbnails(consolePage, 1);
  const red = await until('a red thumbnail', async () => {
    const p = await tilePixel(consolePage);
    return isRed(p) ? p : null;
  });
  assert.ok(red.w > 0 && red.w <= 1920);
  assert.ok((await thumbsReceived()) > before, 'the server counted thumbnails');
  const caps = await consolePage.$eval('.tile .caps', (e) => e.textContent);
  assert.match(caps, /Cannot: log out/, 'the tile says what the device cannot do');
  await consolePage.screenshot({ path: join(OUT, 'chromebook-console.png') });
  step(`console watches: ${red.w}x${red.h} thumbnails, centre pixel rgb(${red.r},${red.g},${red.b}); tile says "${caps}"`);

  // A page the browser will not capture: a placeholder, never a stale picture.
  await student.goto('chrome://version').catch(() => {});
  await until('the placeholder thumbnail', async () => isPlaceholder(await tilePixel(consolePage)));
  step('chrome:// page → placeholder frame');
  step(await streamInfo(sw, thumbsReceived));
  await student.goto(sites.url('red.test'));

  // The school's look: a name and a logo set now reach the connected
  // extension (school_look, then the logo it asks for) and show on its lock
  // page.
  await rest.api('PUT', '/api/v1/school/look', { name: SCHOOL_LOOK_NAME });
  const logo = await rest.api('PUT', '/api/v1/school/look/logo', LOGO_PNG);
  await until('the logo kept by the extension', async () => {
    const got = await sw.evaluate(() => chrome.storage.local.get('schoolLogo'));
    return got.schoolLogo && got.schoolLogo.sha256 === logo.sha256;
  });
  step(`school look: name and logo (sha256 ${logo.sha256.slice(0, 12)}…) reached the extension`);

  // Lock: every window, the lock page in front.
  const second = await sw.evaluate(async (url) => (await chrome.windows.create({ url, focused: false })).id, sites.url('other.test', '/second'));
  assert.deepEqual(await rest.command(device.id, { type: 'lock', text: LOCK_TEXT }), { status: 'done', reason: null });
  await until('the lock page in every window', () => allLocked(sw));
  assert.equal((await windows(sw)).length, 2);
  const locked = await until('the locked state', async () => (await rest.devices()).find((d) => d.id === device.id && d.state.locked));
  assert.ok(locked.state.unsupported.some((u) => /ChromeOS shelf/.test(u)), JSON.stringify(locked.state.unsupported));
  const lockPage = await until('the lock page', () => ctx.pages().find((p) => p.url().startsWith(LOCK_URL)));
  await lockPage.waitForLoadState('load');
  await until('the lock text', async () => (await lockPage.textContent('#lock-text')) === LOCK_TEXT);
  await until('the school name on the lock page', async () => (await lockPage.textContent('#lock-school')) === SCHOOL_LOOK_NAME);
  await lockPage.waitForFunction(() => {
    const img = /** @type {HTMLImageElement} */ (document.getElementById('lock-logo'));
    return !img.hidden && img.naturalWidth === 160 && img.naturalHeight === 80;
  });
  await lockPage.bringToFront();
  await lockPage.screenshot({ path: join(OUT, 'chromebook-lock.png') });
  // What the teacher sees is the lock page too (#14213d), a fresh frame.
  await until('the lock page in the thumbnail', async () => {
    const p = await tilePixel(consolePage, 0.05, 0.1);
    return p && p.r < 50 && p.g < 60 && p.b > 40 && p.b < 90;
  });
  step('lock: lock page in both windows, with the school\'s name, its logo and the message');
  step(await streamInfo(sw, thumbsReceived));

  // A new tab becomes a lock page. (First, so that closing the lock tab below
  // never closes a window's last tab: the browser may then end with it.)
  // The extension turns the new tab into a lock page and closes duplicate lock
  // pages, so the tab may be gone before Playwright has finished attaching to
  // it: newPage() then rejects ("Target page … has been closed", seen in CI),
  // which is the lock working, not a failure.
  const extra = await ctx.newPage().catch(() => null);
  if (extra) await extra.goto(sites.url('other.test', '/sneaky')).catch(() => {});
  await until('the lock page in front after a new tab', () => allLocked(sw));
  // The student closes a lock tab: it comes back.
  const lockTabs = (await windows(sw)).flatMap((w) => w.tabs.filter((t) => t.url.startsWith(LOCK_URL)).map((t) => t.id));
  await sw.evaluate((id) => chrome.tabs.remove(id), lockTabs[0]);
  await sleep(500);
  await until('the lock page back after closing it', () => allLocked(sw));
  // A new window becomes a lock page.
  await sw.evaluate((url) => chrome.windows.create({ url }), sites.url('other.test', '/new-window'));
  await until('the lock page in the new window', async () => (await windows(sw)).length === 3 && allLocked(sw));
  const visible = await until('the focused tab', () => sw.evaluate(async () => {
    const w = await chrome.windows.getLastFocused({ populate: true });
    return w.tabs.find((t) => t.active)?.url;
  }));
  assert.ok(visible.startsWith(LOCK_URL), visible);
  step('lock survives closing the lock tab, a new tab and a new window');

  // A browser restart keeps the lock (chrome.storage.local), before the
  // server is even reached again.
  await ctx.close();
  ({ ctx, sw } = await launchStudent(profile, spki));
  onCleanup(() => ctx.close().catch(() => {}));
  await until('the lock page after a browser restart', () => allLocked(sw));
  // The lock page itself, not only its URL: a tab the browser reopens before
  // the extension is loaded shows an error page under that URL until reloaded.
  await until('the lock text after a browser restart', async () => {
    const p = ctx.pages().find((pg) => pg.url().startsWith(LOCK_URL));
    return p && (await p.textContent('#lock-text', { timeout: 1000 })) === LOCK_TEXT;
  });
  await until('the device back online, locked', async () => (await rest.devices()).find((d) => d.id === device.id && d.online && d.state.locked), 60_000);
  step('lock survives a browser restart');
  step(await streamInfo(sw, thumbsReceived));

  // Unlock: lock pages go, browsing works.
  assert.deepEqual(await rest.command(device.id, { type: 'unlock' }), { status: 'done', reason: null });
  await until('no lock page left', async () => (await windows(sw)).every((w) => w.tabs.every((t) => !t.url.startsWith(LOCK_URL))));
  await until('the unlocked state', async () => (await rest.devices()).find((d) => d.id === device.id && !d.state.locked));
  const browse = await ctx.newPage();
  await browse.goto(sites.url('other.test', '/after-unlock'));
  assert.equal(await browse.title(), 'Page on other.test');
  await sleep(500);
  assert.ok(!(await windows(sw)).some((w) => w.tabs.some((t) => t.url.startsWith(LOCK_URL))), 'browsing stays unlocked');
  step('unlock: lock pages removed, browsing works');
  step(await streamInfo(sw, thumbsReceived));

  // Eyes on me: every tab but the school home page closes.
  assert.deepEqual(await rest.command(device.id, { type: 'close_all_tabs' }), { status: 'done', reason: null });
  const left = await until('only the home page left', async () => {
    const tabs = (await windows(sw)).flatMap((w) => w.tabs);
    return tabs.length >= 1 && tabs.every((t) => t.url === home) ? tabs : null;
  });
  step(`close_all_tabs: ${left.length} tab(s) left, all ${home}`);

  const logout = await rest.command(device.id, { type: 'logout' });
  assert.equal(logout.status, 'failed');
  assert.match(logout.reason, /cannot end the user's session/);
  step(`logout fails before sending: ${logout.reason}`);

  // The console goes: the thumbnails stop.
  setFailurePage(student);
  await consolePage.context().browser().close();
  await until('thumbnails to stop', async () => !(await sw.evaluate(() => globalThis.lectern.thumbnails)).intervalMs, 20_000);
  const after = await thumbsReceived();
  await sleep(4000);
  assert.equal(await thumbsReceived(), after, 'no thumbnails once the console has gone');
  step(`console gone: thumbnails stopped at ${after}`);
  assert.deepEqual(pageErrors, []);
}

await runTest('chromebook', 6 * 60 * 1000, async () => {
  try {
    await run();
  } catch (err) {
    if (swLog.length) console.error(`--- extension service worker (last 40 lines) ---\n${swLog.slice(-40).join('\n')}`);
    throw err;
  }
});
