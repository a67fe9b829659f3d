// End-to-end test of remote control (issue 12 point 3): a real X11 agent
// (`lectern-agent run --backend x11`) on its own Xvfb with a real xterm, a
// real lectern-server over WSS, the console in headless Chromium.
//
// - the administrator opens the live view: view only, with a "Take control"
//   toggle; taking control shows "You are controlling …";
// - the pointer moved over the picture moves the X pointer to the same point
//   of the device's screen (read back with `xdotool getmouselocation`);
// - keys typed in the console reach the xterm running `cat > FILE` (the
//   file is checked); Ctrl+Alt+Del is not sent (the console says so);
// - Esc twice stops control;
// - a teacher without `command.remote_control` sees no toggle, and the
//   server refuses their control request sent by hand on the stream.
// Screenshots: out/control-1440.png and out/control-1024.png (controlling),
// out/control-teacher-1440.png (no toggle).
//
// Needs Xvfb, xterm and xdotool. Env: LECTERN_SERVER_BIN, LECTERN_AGENT_BIN
// (default target/debug/…), CHROMIUM.

import assert from 'node:assert/strict';
import { execFileSync } from 'node:child_process';
import { X509Certificate } from 'node:crypto';
import { mkdtempSync, readFileSync, rmSync } from 'node:fs';
import { tmpdir } from 'node:os';
import { isAbsolute, join, resolve } from 'node:path';
import { OUT, REPO, onCleanup, openBrowser, runTest, setFailurePage, signIn, startChild, startServer, startXvfb, step, until } from './lib.mjs';

const PASSWORD = 'e2e-control-321';
const HOSTNAME = 'X11-PC-01';
const SCREEN = { width: 1280, height: 720 };

const scratch = mkdtempSync(join(tmpdir(), 'lectern-control-e2e-'));
onCleanup(() => rmSync(scratch, { recursive: true, force: true }));

const bin = (env, name) => {
  const p = process.env[env] || `target/debug/${name}`;
  return isAbsolute(p) ? p : resolve(REPO, p);
};

/** The X pointer's position, from xdotool. */
function pointer(display) {
  const out = execFileSync('xdotool', ['getmouselocation'], { env: { ...process.env, DISPLAY: display }, encoding: 'utf8' });
  const m = /x:(\d+) y:(\d+)/.exec(out);
  return { x: Number(m[1]), y: Number(m[2]) };
}

/**
 * Waits for the live view's picture at full size: H.264 on the canvas, or the
 * JPEG image where the browser cannot decode video.
 * @param {import('playwright-core').Page} p
 */
async function livePicture(p) {
  await p.waitForFunction(() => {
    const video = document.getElementById('live-view-screen')?.dataset.mode === 'video';
    return video ? /** @type {HTMLCanvasElement} */ (document.getElementById('live-view-canvas')).width >= 1000
      : /** @type {HTMLImageElement} */ (document.getElementById('live-view-image')).naturalWidth >= 1000;
  }, null, { timeout: 30_000 });
}

async function run() {
  const display = await startXvfb(SCREEN);
  step(`Xvfb on ${display}`);
  const typed = join(scratch, 'typed.txt');
  startChild('xterm', ['-geometry', '80x24+0+0', '-e', 'sh', '-c', `cat > '${typed}'`], { env: { ...process.env, DISPLAY: display } });

  const dataDir = join(scratch, 'server');
  const consoleUrl = await startServer({ agents: 0, password: PASSWORD, dataDir });
  const base = new URL(consoleUrl).origin;
  const fingerprint = new X509Certificate(readFileSync(join(dataDir, 'cert.pem'), 'utf8')).fingerprint256;

  const { page } = await openBrowser();
  setFailurePage(page);
  await signIn(page, consoleUrl, PASSWORD);
  const api = async (method, path, body) => page.evaluate(async ([m, p, b]) => {
    const csrf = /** @type {HTMLMetaElement} */ (document.querySelector('meta[name="csrf-token"]')).content;
    const headers = m === 'GET' ? {} : { 'Content-Type': 'application/json', 'X-CSRF-Token': csrf };
    const r = await fetch(p, { method: m, headers, body: b ? JSON.stringify(b) : undefined });
    if (!r.ok) throw new Error(`${m} ${p} → ${r.status} ${await r.text()}`);
    return r.json();
  }, [method, path, body]);

  // The agent: enrolled with a token, then run on the Xvfb display.
  const tok = await api('POST', '/api/v1/enrollment-tokens', { label: 'control e2e', uses: 1, expires_hours: 1 });
  const state = join(scratch, 'agent');
  execFileSync(bin('LECTERN_AGENT_BIN', 'lectern-agent'), ['enroll', '--server', `127.0.0.1:${new URL(base).port}`,
    '--token', tok.token, '--fingerprint', fingerprint, '--state-dir', state, '--hostname', HOSTNAME], { stdio: 'ignore' });
  startChild(bin('LECTERN_AGENT_BIN', 'lectern-agent'), ['run', '--state-dir', state, '--backend', 'x11', '--hostname', HOSTNAME],
    { env: { ...process.env, DISPLAY: display, LECTERN_URL_OPENER: 'true' } });
  const device = await until('the X11 agent to connect with remote control', async () => (await api('GET', '/api/v1/devices'))
    .find((d) => d.hostname === HOSTNAME && d.online && d.capabilities.includes('remote_control')), 60_000);
  step(`device ${device.id} online: ${device.capabilities.join(' ')}`);

  // A teacher who may view and command every computer, but not control them.
  const entire = (await api('GET', '/api/v1/groups')).find((g) => g.name === 'Entire Network');
  await api('POST', '/api/v1/users', { username: 'ms.view', password: 'ms-view-password', role: 'teacher' });
  await api('POST', '/api/v1/access-rules', {
    principal: { type: 'user', value: 'ms.view' }, features: ['devices.view', 'live_view', 'command.lock'],
    group_access: { [entire.id]: 'control' },
  });

  // The live view: view only, then take control.
  const tile = page.locator(`.tile[data-device-id="${device.id}"]`);
  await tile.locator('button.live-view').click();
  await livePicture(page);
  await until('the toggle', async () => page.locator('#control-toggle').isVisible());
  assert.equal(await page.locator('#control-toggle').getAttribute('aria-pressed'), 'false', 'view only by default');
  await page.click('#control-toggle');
  await page.waitForFunction(() => document.getElementById('control-state')?.textContent?.startsWith('You are controlling X11-PC-01'), null, { timeout: 15_000 });
  step('controlling');

  // The pointer: a point of the picture is the same point of the X screen.
  const target = { x: 200, y: 150 };
  const at = await page.evaluate(([tx, ty, w, h]) => {
    // The element on show: the canvas for H.264 video, else the JPEG image.
    const video = document.getElementById('live-view-screen')?.dataset.mode === 'video';
    const el = /** @type {any} */ (document.getElementById(video ? 'live-view-canvas' : 'live-view-image'));
    const nw = video ? el.width : el.naturalWidth;
    const nh = video ? el.height : el.naturalHeight;
    const box = el.getBoundingClientRect();
    const scale = Math.min(box.width / nw, box.height / nh);
    const left = box.left + (box.width - nw * scale) / 2;
    const top = box.top + (box.height - nh * scale) / 2;
    return { x: left + (tx / w) * nw * scale, y: top + (ty / h) * nh * scale };
  }, [target.x, target.y, SCREEN.width, SCREEN.height]);
  await page.mouse.move(at.x - 20, at.y - 20);
  await page.mouse.move(at.x, at.y, { steps: 4 });
  const moved = await until('the X pointer to move', () => {
    const p = pointer(display);
    return Math.abs(p.x - target.x) <= 1 && Math.abs(p.y - target.y) <= 1 ? p : null;
  }, 15_000);
  step(`X pointer at ${moved.x},${moved.y} (aimed at ${target.x},${target.y})`);

  // Keys, into the xterm under the pointer (no window manager: focus follows it).
  // Shift held explicitly (keyboard.type sends a capital without Shift).
  await page.keyboard.press('Shift+KeyH');
  await page.keyboard.type('ello 42');
  await page.keyboard.press('Enter');
  await until('xterm to write the typed line', () => {
    try {
      return readFileSync(typed, 'utf8') === 'Hello 42\n';
    } catch {
      return false;
    }
  }, 15_000);
  step('typed "Hello 42" into xterm');
  await page.keyboard.press('Control+Alt+Delete');
  await page.waitForFunction(() => document.getElementById('control-state')?.textContent?.includes('Ctrl+Alt+Del is never sent'), null, { timeout: 5_000 });
  await page.screenshot({ path: join(OUT, 'control-1440.png') });
  await page.setViewportSize({ width: 1024, height: 768 });
  await page.screenshot({ path: join(OUT, 'control-1024.png') });
  await page.setViewportSize({ width: 1440, height: 900 });

  // Esc twice stops; the dialog stays open, view only.
  await page.keyboard.press('Escape');
  await page.keyboard.press('Escape');
  await page.waitForFunction(() => document.getElementById('control-toggle')?.getAttribute('aria-pressed') === 'false', null, { timeout: 10_000 });
  assert.ok(await page.locator('#live-view').evaluate((d) => /** @type {HTMLDialogElement} */ (d).open), 'the live view stays open');
  const audit = await api('GET', '/api/v1/audit?limit=200');
  assert.ok(audit.some((e) => e.action === 'control.start' && e.outcome === 'ok'), 'control start audited');
  await until('control stop audited', async () => (await api('GET', '/api/v1/audit?limit=200'))
    .some((e) => e.action === 'control.stop' && e.detail === 'stopped by the teacher'));
  step('stopped with Esc Esc; audited');
  await page.click('#live-view-close');

  // The teacher without the right: no toggle, and the server refuses.
  const ctx = await page.context().browser().newContext({ ignoreHTTPSErrors: true, viewport: { width: 1440, height: 900 } });
  const teacher = await ctx.newPage();
  setFailurePage(teacher);
  await teacher.goto(consoleUrl);
  await teacher.waitForURL((url) => url.pathname === '/login');
  await teacher.fill('#username', 'ms.view');
  await teacher.fill('#password', 'ms-view-password');
  await teacher.click('#login-button');
  await teacher.waitForURL((url) => url.pathname === '/');
  await teacher.locator(`.tile[data-device-id="${device.id}"] button.live-view`).click();
  await livePicture(teacher);
  assert.equal(await teacher.locator('#control-toggle').isVisible(), false, 'no toggle without the right');
  await teacher.screenshot({ path: join(OUT, 'control-teacher-1440.png') });
  const refusal = await teacher.evaluate(async (id) => new Promise((ok, fail) => {
    const ws = new WebSocket(`wss://${location.host}/api/v1/stream`);
    setTimeout(() => fail(new Error('no answer')), 10_000);
    ws.onopen = () => {
      ws.send(JSON.stringify({ watch: [id], live: id }));
      ws.send(JSON.stringify({ type: 'control', device: id, on: true }));
    };
    ws.onmessage = (m) => {
      if (typeof m.data !== 'string') return;
      const msg = JSON.parse(m.data);
      if (msg.type === 'control') ok(msg);
    };
  }), device.id);
  assert.equal(refusal.on, false);
  assert.equal(refusal.error, "You can't take control of this computer. Ask your administrator.");
  step('a teacher without command.remote_control: no toggle, refused by the server');
}

runTest('control', 180_000, run);
