// End-to-end test of broadcasts on the browser client (the extension in
// standalone, Chromebook, mode), in real Chromium against a real server:
//
// - the extension enrolls from a managed-policy file and announces `broadcast`;
// - a student's screen (a simulated agent of `lectern-server demo`) is
//   broadcast to it: the extension opens its full-screen broadcast window,
//   which shows the relayed JPEG frames (decoded in the page) under the
//   broadcast's title, and the device reports `broadcast_shown`, so the
//   receiving list says "showing";
// - the student closing the window gets it back while the broadcast runs;
// - stopping closes it and clears `broadcast_shown`.
// Screenshot: out/chromebook-broadcast.png. Needs root (writes Chromium's
// managed policy under /etc).
//
// Env: LECTERN_SERVER_BIN, CHROMIUM.

import assert from 'node:assert/strict';
import { mkdtempSync, readFileSync, rmSync } from 'node:fs';
import https from 'node:https';
import { tmpdir } from 'node:os';
import { join } from 'node:path';
import {
  EXTENSION_ID as EXT_ID, OUT, launchWithExtension, onCleanup, runTest, setFailurePage, spkiHash, startServer, step,
  until, writeExtensionPolicy,
} from './lib.mjs';

const PASSWORD = 'e2e-cbb-4321';
const POLICY_NAME = 'lectern-chromebook-broadcast-test.json';
const BROADCAST_URL = `chrome-extension://${EXT_ID}/broadcast.html`;
const HOSTNAME = 'CB-BROADCAST-01';

const scratch = mkdtempSync(join(tmpdir(), 'lectern-cbb-e2e-'));
onCleanup(() => rmSync(scratch, { recursive: true, force: true }));
/** @type {string[]} */
const swLog = [];

/**
 * A REST client as the administrator, trusting exactly the server's certificate.
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
      let text = '';
      res.setEncoding('utf8');
      res.on('data', (c) => { text += c; });
      res.on('end', () => {
        if (res.statusCode >= 400) return fail(new Error(`${method} ${path} → ${res.statusCode}: ${text}`));
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
  return (method, path, body) => call(method, path, body, token);
}

/**
 * The extension's broadcast page, once open.
 * @param {import('playwright-core').BrowserContext} ctx
 */
const broadcastPage = (ctx) => ctx.pages().find((p) => p.url().startsWith(BROADCAST_URL)) || null;

async function run() {
  if (!(process.getuid && process.getuid() === 0)) {
    step(`SKIPPED: needs root to write ${POLICY_NAME} (Chromium's managed policy)`);
    return;
  }
  const dataDir = join(scratch, 'server');
  const consoleUrl = await startServer({ agents: 1, password: PASSWORD, dataDir });
  const base = new URL(consoleUrl).origin;
  const certPem = readFileSync(join(dataDir, 'cert.pem'), 'utf8');
  const api = await restClient(base, certPem);
  const tok = await api('POST', '/api/v1/enrollment-tokens', { label: 'chromebook broadcast e2e', uses: 1, expires_hours: 1 });
  writeExtensionPolicy(POLICY_NAME, { server: `127.0.0.1:${new URL(base).port}`, enrollment_token: tok.token, hostname: HOSTNAME });

  const { ctx } = await launchWithExtension(join(scratch, 'student'), { spki: spkiHash(certPem), log: swLog });
  onCleanup(() => ctx.close().catch(() => {}));
  const device = await until('the extension to enroll and connect',
    async () => (await api('GET', '/api/v1/devices')).find((d) => d.hostname === HOSTNAME && d.online), 60_000);
  assert.ok(device.capabilities.includes('broadcast'), JSON.stringify(device.capabilities));
  const source = (await api('GET', '/api/v1/devices')).find((d) => d.hostname !== HOSTNAME && d.online);
  assert.ok(source, 'the demo has a simulated student to show');
  step(`enrolled as device ${device.id}; showing ${source.hostname}'s screen on it`);

  const b = await api('POST', '/api/v1/broadcasts', { devices: [device.id], source: { type: 'device', id: source.id } });
  const page = await until('the broadcast window', () => broadcastPage(ctx), 20_000);
  setFailurePage(page);
  const shown = await until('a relayed frame decoded in the broadcast window', () => page.evaluate(() => {
    const img = /** @type {HTMLImageElement} */ (document.getElementById('broadcast-frame'));
    return !img.hidden && img.naturalWidth > 0 ? { w: img.naturalWidth, h: img.naturalHeight } : null;
  }), 30_000);
  assert.ok(shown.w > 0 && shown.w <= 1280, JSON.stringify(shown));
  assert.equal(await page.textContent('#broadcast-title'), `Broadcast: ${b.title}`);
  // Headless Chromium keeps windows "normal"; the full-screen request is
  // checked in extension/test/broadcast.test.mjs.
  const win = await page.evaluate(async () => (await chrome.windows.getCurrent()).type);
  assert.equal(win, 'popup');
  await until('broadcast_shown reported', async () => (await api('GET', '/api/v1/devices')).find((d) => d.id === device.id)?.state?.broadcast_shown);
  const receivers = (await api('GET', '/api/v1/broadcasts'))[0].receivers;
  assert.deepEqual(receivers.map((r) => [r.hostname, r.state]), [[HOSTNAME, 'showing']]);
  await page.screenshot({ path: join(OUT, 'chromebook-broadcast.png') });
  step(`broadcast window: ${shown.w}x${shown.h} frames, "${b.title}"; receiving list says showing`);

  // The student closes it: it comes back while the broadcast runs.
  await page.close();
  const again = await until('the broadcast window again', () => broadcastPage(ctx), 20_000);
  setFailurePage(again);
  await until('frames in the new window', () => again.evaluate(() => document.getElementById('broadcast-frame').naturalWidth > 0), 30_000);
  step('closed by the student → opened again with frames');

  await api('DELETE', `/api/v1/broadcasts/${b.id}`);
  await until('the broadcast window to close', () => broadcastPage(ctx) === null, 20_000);
  await until('broadcast_shown cleared', async () => (await api('GET', '/api/v1/devices')).find((d) => d.id === device.id)?.state?.broadcast_shown === false);
  step('stopped → window closed, broadcast_shown false');
}

runTest('chromebook-broadcast', 3 * 60 * 1000, run);
