// End-to-end test of the live view as H.264: a real lectern-agent with its X11
// backend on a 1920x1080 Xvfb, a real lectern-server (demo mode, two
// simulated agents beside it) over WSS, and the console in headless Chromium.
//
// - the console decodes the agent's H.264 with WebCodecs onto a canvas at the
//   screen's full size, and the decoded pixels follow the X screen (a
//   full-screen window of crates/x11/examples/screen_painter.rs: red, then
//   blue; `xsetroot -solid` does not repaint Xvfb's root);
// - next/previous step through the grid's devices and come back;
// - the screenshot button keeps a full-size JPEG in the device's history and
//   its link downloads it (1920 px wide);
// - with VideoDecoder removed from the page, the same view falls back to the
//   server's 1280 px JPEG frames, whose pixels follow the screen too.
// Screenshots: out/liveview-h264-{1440,1024}.png, out/liveview-screenshot-saved.png,
// out/liveview-jpeg.png.
//
// Env: LECTERN_SERVER_BIN (default target/debug/lectern-server),
// LECTERN_AGENT_BIN (default beside the server), SCREEN_PAINTER (default
// target/debug/examples/screen_painter: cargo build -p lectern-x11 --example
// screen_painter), CHROMIUM.

import assert from 'node:assert/strict';
import { execFileSync, spawn } from 'node:child_process';
import { X509Certificate } from 'node:crypto';
import { existsSync, mkdtempSync, readFileSync, rmSync } from 'node:fs';
import { tmpdir } from 'node:os';
import { dirname, isAbsolute, join, resolve } from 'node:path';
import { createInterface } from 'node:readline';
import {
  OUT, REPO, logLine, onCleanup, openBrowser, runTest, signIn, startServer, step, until, waitForThumbnails,
} from './lib.mjs';

const PASSWORD = 'e2e-h264-live-1';
const HOSTNAME = 'X11-PC01';
const serverBin = process.env.LECTERN_SERVER_BIN || 'target/debug/lectern-server';
const SERVER_BIN = isAbsolute(serverBin) ? serverBin : resolve(REPO, serverBin);
const AGENT_BIN = process.env.LECTERN_AGENT_BIN || join(dirname(SERVER_BIN), 'lectern-agent');
const PAINTER = process.env.SCREEN_PAINTER || resolve(REPO, 'target/debug/examples/screen_painter');

const scratch = mkdtempSync(join(tmpdir(), 'lectern-h264-e2e-'));
onCleanup(() => rmSync(scratch, { recursive: true, force: true }));

/**
 * Runs a process until the test ends (its whole group is stopped then),
 * its output going to the failure report.
 * @param {string} name
 * @param {string} cmd
 * @param {string[]} args
 * @param {Record<string, string>} [env]
 */
function startProcess(name, cmd, args, env = {}) {
  const child = spawn(cmd, args, {
    detached: true,
    stdio: ['ignore', 'pipe', 'pipe'],
    env: { ...process.env, RUST_LOG: 'info', ...env },
  });
  for (const s of [child.stdout, child.stderr]) createInterface({ input: s }).on('line', (l) => logLine(`[${name}] ${l}`));
  onCleanup(async () => {
    if (child.exitCode !== null || child.signalCode !== null) return;
    const exited = new Promise((ok) => child.once('exit', ok));
    try { process.kill(-child.pid, 'SIGTERM'); } catch { /* gone */ }
    const t = setTimeout(() => { try { process.kill(-child.pid, 'SIGKILL'); } catch { /* gone */ } }, 5000);
    await exited;
    clearTimeout(t);
  });
  return child;
}

/**
 * Starts Xvfb on a free display (it prints the number it chose).
 * @returns {Promise<string>} the display, e.g. ":7"
 */
function startXvfb() {
  const x = spawn('Xvfb', ['-displayfd', '1', '-screen', '0', '1920x1080x24', '-nolisten', 'tcp'], {
    detached: true, stdio: ['ignore', 'pipe', 'ignore'],
  });
  onCleanup(() => { try { process.kill(-x.pid, 'SIGKILL'); } catch { /* gone */ } });
  return new Promise((ok, fail) => {
    const timer = setTimeout(() => fail(new Error('Xvfb printed no display within 20 s')), 20_000);
    createInterface({ input: x.stdout }).once('line', (l) => {
      clearTimeout(timer);
      ok(`:${l.trim()}`);
    });
  });
}

/**
 * A full-screen window on `display` whose colour each call sets.
 * @param {string} display
 * @returns {(colour: string) => Promise<void>} takes e.g. "ff0000", resolves once painted
 */
function painter(display) {
  const child = spawn(PAINTER, ['colour'], { detached: true, stdio: ['pipe', 'pipe', 'inherit'], env: { ...process.env, DISPLAY: display } });
  onCleanup(() => { try { process.kill(-child.pid, 'SIGKILL'); } catch { /* gone */ } });
  const lines = createInterface({ input: child.stdout });
  return (colour) => new Promise((ok) => {
    lines.once('line', () => ok());
    child.stdin.write(`${colour}\n`);
  });
}

/**
 * The console's API from the page (session cookie and CSRF token).
 * @param {import('playwright-core').Page} page
 * @param {string} method
 * @param {string} path
 * @param {unknown} [body]
 */
function api(page, method, path, body) {
  return page.evaluate(async ({ method, path, body }) => {
    const csrf = /** @type {HTMLMetaElement} */ (document.querySelector('meta[name="csrf-token"]')).content;
    const res = await fetch(path, {
      method,
      headers: { 'Content-Type': 'application/json', 'X-CSRF-Token': csrf },
      body: body === undefined ? undefined : JSON.stringify(body),
    });
    if (!res.ok) throw new Error(`${method} ${path}: ${res.status} ${await res.text()}`);
    return res.json();
  }, { method, path, body });
}

/**
 * The colour at the middle of what the live view shows (canvas or image).
 * @param {import('playwright-core').Page} page
 * @returns {Promise<{mode: string, rgb: number[], width: number}>}
 */
function centre(page) {
  return page.evaluate(() => {
    const screen = /** @type {HTMLElement} */ (document.getElementById('live-view-screen'));
    const mode = screen.dataset.mode || '';
    /** @type {HTMLCanvasElement | HTMLImageElement} */
    const src = mode === 'video'
      ? /** @type {HTMLCanvasElement} */ (document.getElementById('live-view-canvas'))
      : /** @type {HTMLImageElement} */ (document.getElementById('live-view-image'));
    const width = src instanceof HTMLImageElement ? src.naturalWidth : src.width;
    const height = src instanceof HTMLImageElement ? src.naturalHeight : src.height;
    if (!width || !height) return { mode, rgb: [], width: 0 };
    const c = document.createElement('canvas');
    c.width = 1;
    c.height = 1;
    const ctx = /** @type {CanvasRenderingContext2D} */ (c.getContext('2d'));
    ctx.drawImage(src, width / 2, height / 2, 1, 1, 0, 0, 1, 1);
    return { mode, rgb: [...ctx.getImageData(0, 0, 1, 1).data.slice(0, 3)], width };
  });
}

/** @param {number[]} rgb @param {number[]} want */
const near = (rgb, want) => rgb.length === 3 && rgb.every((v, i) => Math.abs(v - want[i]) <= 40);

/**
 * Waits until the live view shows `want` in `mode`, `width` px wide.
 * @param {import('playwright-core').Page} page
 * @param {string} mode
 * @param {number} width
 * @param {number[]} want
 * @param {string} what
 */
async function shows(page, mode, width, want, what) {
  let last = null;
  try {
    return await until(what, async () => {
      last = await centre(page);
      return last.mode === mode && last.width === width && near(last.rgb, want) ? last : null;
    }, 30_000);
  } catch (err) {
    throw new Error(`${what}: last seen ${JSON.stringify(last)}`, { cause: err });
  }
}

/**
 * Opens the live view of the X11 agent's tile and waits for the decision.
 * @param {import('playwright-core').Page} page
 */
async function openLive(page) {
  const tile = page.locator('.tile', { hasText: HOSTNAME });
  await tile.locator('.live-view').click();
  await page.waitForSelector('#live-view-decision[data-decision="allowed"]', { timeout: 20_000 });
}

runTest('liveview-h264', 240_000, async () => {
  if (!existsSync(AGENT_BIN)) throw new Error(`${AGENT_BIN} is missing: cargo build -p lectern-agent`);
  if (!existsSync(PAINTER)) throw new Error(`${PAINTER} is missing: cargo build -p lectern-x11 --example screen_painter`);
  const display = await startXvfb();
  const paint = painter(display);
  await paint('ff0000');
  step(`Xvfb on ${display}, 1920x1080, red`);

  const dataDir = join(scratch, 'server');
  const consoleUrl = await startServer({ agents: 2, password: PASSWORD, dataDir });
  const { page } = await openBrowser();
  await signIn(page, consoleUrl, PASSWORD);

  // A real agent on the X display, enrolled through the API.
  const tok = await api(page, 'POST', '/api/v1/enrollment-tokens', { label: 'h264 e2e', uses: 1, expires_hours: 1 });
  const fingerprint = new X509Certificate(readFileSync(join(dataDir, 'cert.pem'), 'utf8')).fingerprint256;
  const state = join(scratch, 'agent');
  execFileSync(AGENT_BIN, ['enroll', '--server', new URL(consoleUrl).host, '--token', tok.token,
    '--fingerprint', fingerprint, '--state-dir', state, '--hostname', HOSTNAME], { stdio: 'ignore' });
  const agent = startProcess('agent', AGENT_BIN, ['run', '--state-dir', state, '--backend', 'x11'], { DISPLAY: display });
  await waitForThumbnails(page, 3);
  step('the X11 agent and two simulated ones are in the grid with thumbnails');

  // H.264: decoded at full size, following the X screen.
  await openLive(page);
  await shows(page, 'video', 1920, [255, 0, 0], 'the decoded canvas is red, at the screen\'s full width');
  await paint('0000ff');
  await shows(page, 'video', 1920, [0, 0, 255], 'the decoded canvas turns blue');
  const frames = Number(await page.$eval('#live-view-screen', (e) => /** @type {HTMLElement} */ (e).dataset.frames));
  assert.ok(frames >= 2, `pictures decoded: ${frames}`);
  step(`H.264 decoded in the browser: ${frames} pictures, 1920 px, follows the X screen`);
  for (const width of [1440, 1024]) {
    await page.setViewportSize({ width, height: 900 });
    await page.screenshot({ path: join(OUT, `liveview-h264-${width}.png`) });
  }
  await page.setViewportSize({ width: 1440, height: 900 });

  // Screenshot: kept, listed and downloadable at full size.
  await page.click('#live-view-screenshot');
  const link = page.locator('#live-view-shot a');
  await link.waitFor({ timeout: 20_000 });
  await page.screenshot({ path: join(OUT, 'liveview-screenshot-saved.png') });
  const [download] = await Promise.all([page.waitForEvent('download'), link.click()]);
  const file = join(scratch, 'shot.jpg');
  await download.saveAs(file);
  const jpeg = readFileSync(file);
  assert.deepEqual([...jpeg.subarray(0, 2)], [0xff, 0xd8], 'a JPEG');
  const device = (await api(page, 'GET', '/api/v1/devices')).find((d) => (d.view ?? d).hostname === HOSTNAME);
  const id = (device.view ?? device).id;
  const kept = await api(page, 'GET', `/api/v1/devices/${id}/screenshots`);
  assert.equal(kept.length, 1);
  assert.equal(kept[0].width, 1920);
  step(`screenshot kept (${kept[0].bytes} bytes, ${kept[0].width}x${kept[0].height}) and downloaded`);

  // Next and previous go round the grid's devices and come back.
  const title = () => page.textContent('#live-view-title');
  await page.click('#live-view-next');
  await until('the next device', async () => !(await title())?.includes(HOSTNAME) || null, 10_000);
  const second = await title();
  await page.click('#live-view-previous');
  await until('back to the X11 device', async () => (await title())?.includes(HOSTNAME) || null, 10_000);
  step(`next went to "${second}", previous came back`);
  await page.click('#live-view-close');

  // JPEG fallback: a page without VideoDecoder.
  const jpegPage = await page.context().newPage();
  await jpegPage.addInitScript(() => {
    // @ts-ignore: as in a browser without WebCodecs
    delete window.VideoDecoder;
  });
  await jpegPage.goto(consoleUrl);
  await waitForThumbnails(jpegPage, 3);
  await openLive(jpegPage);
  await paint('00ff00');
  await shows(jpegPage, 'jpeg', 1280, [0, 255, 0], 'the JPEG live view turns green, 1280 px wide');
  await jpegPage.screenshot({ path: join(OUT, 'liveview-jpeg.png') });
  step('without VideoDecoder: 1280 px JPEG frames, following the screen');
  assert.equal(agent.exitCode, null, 'the agent is still running');
});
