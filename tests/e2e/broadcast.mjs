// Browser end-to-end test of broadcasting from the console (issue 12, point 4).
//
// Two real X11 agents (`lectern-agent run --backend x11`), each on its own
// Xvfb, enroll with `lectern-server demo`. In headless Chromium with a fake
// screen to share (--use-fake-device-for-media-stream: a green test pattern)
// the administrator:
// - clicks "Show my screen": the browser's capture is JPEG-encoded on a canvas
//   and uploaded; both X screens turn to the green pattern (read back from the
//   X server with ImageMagick's `import`), the receiving panel says
//   "Showing" for both, then "Stop broadcast" clears the screens;
// - clicks "Show a student's screen…" and picks the source agent, whose X
//   root is painted magenta: the server relays its frames and the other X
//   screen turns magenta; stopping the share in the browser is tested by
//   ending the track of a new "Show my screen".
// Screenshots of the console with the panel and the dialog at 1440 and 1024 px.
//
// Env: see lib.mjs; LECTERN_AGENT_BIN (default target/debug/lectern-agent).

import assert from 'node:assert/strict';
import { execFileSync, spawn } from 'node:child_process';
import { X509Certificate } from 'node:crypto';
import { mkdtempSync, readFileSync } from 'node:fs';
import { tmpdir } from 'node:os';
import { isAbsolute, join, resolve } from 'node:path';
import { createInterface } from 'node:readline';
import { launchChromium, logLine, onCleanup, OUT, REPO, runTest, setFailurePage, signIn, startServer, step, until } from './lib.mjs';

const PASSWORD = 'e2e-pass-123';
const OVERALL_TIMEOUT_MS = 4 * 60 * 1000;
const SCREEN = { w: 1280, h: 720 };
/** The source student's desktop colour. */
const MAGENTA = '#c800c8';
/** The other desktop's colour. */
const BLUE = '#2040c8';

const agentBin = (() => {
  const bin = process.env.LECTERN_AGENT_BIN || 'target/debug/lectern-agent';
  return isAbsolute(bin) ? bin : resolve(REPO, bin);
})();

/**
 * Starts an Xvfb on a free display and resolves with its name (":N").
 * @returns {Promise<string>}
 */
function startXvfb() {
  const x = spawn('Xvfb', ['-displayfd', '3', '-screen', '0', `${SCREEN.w}x${SCREEN.h}x24`, '-nolisten', 'tcp'],
    { stdio: ['ignore', 'ignore', 'pipe', 'pipe'] });
  onCleanup(() => { x.kill('SIGTERM'); });
  return new Promise((ok, fail) => {
    const timer = setTimeout(() => fail(new Error('Xvfb printed no display number within 20 s')), 20_000);
    x.once('error', (err) => fail(new Error(`cannot start Xvfb: ${err.message}`)));
    createInterface({ input: /** @type {import('node:stream').Readable} */ (x.stdio[3]) }).once('line', (line) => {
      clearTimeout(timer);
      ok(`:${line.trim()}`);
    });
  });
}

/**
 * The average colour of the middle of an X screen, from the X server itself.
 * @param {string} display
 * @returns {{r: number, g: number, b: number}}
 */
function screenColour(display) {
  const w = 400;
  const h = 240;
  const crop = `${w}x${h}+${(SCREEN.w - w) / 2}+${(SCREEN.h - h) / 2}`;
  const out = execFileSync('import', ['-display', display, '-window', 'root', '-crop', crop, '+repage',
    '-resize', '1x1!', '-depth', '8', 'txt:-'], { encoding: 'utf8' });
  const m = /#([0-9A-Fa-f]{2})([0-9A-Fa-f]{2})([0-9A-Fa-f]{2})/.exec(out);
  if (!m) throw new Error(`no colour in ${out}`);
  return { r: parseInt(m[1], 16), g: parseInt(m[2], 16), b: parseInt(m[3], 16) };
}

/**
 * Covers an X screen with one colour: an xterm (no window manager, so no
 * frame) larger than the screen, whose background the X server reads back and
 * which repaints itself when a broadcast window closes over it. Waits until
 * the X server shows it.
 * @param {string} display
 * @param {string} colour e.g. "#c800c8"
 * @param {(c: {r: number, g: number, b: number}) => boolean} looksRight
 */
async function showColour(display, colour, looksRight) {
  const p = spawn('xterm', ['-display', display, '-geometry', '400x120+0+0', '-bw', '0', '-bg', colour, '-fg', colour,
    '-e', 'sleep', '100000'], { stdio: 'ignore' });
  onCleanup(() => { p.kill('SIGTERM'); });
  await until(`${colour} on ${display}`, () => looksRight(screenColour(display)), 20_000);
}

/** The fake screen's bright green, not the broadcast's dark green waiting screen (10, 90, 40). */
const isGreen = (/** @type {{r: number, g: number, b: number}} */ c) => c.g > 140 && c.r < 100 && c.b < 60;
const isBlue = (/** @type {{r: number, g: number, b: number}} */ c) => c.b > 140 && c.r < 80 && c.g < 100;
const isMagenta = (/** @type {{r: number, g: number, b: number}} */ c) => c.r > 140 && c.b > 140 && c.g < 80;

/**
 * Enrolls and runs a real X11 agent on `display`.
 * @param {{host: string, display: string, server: string, fingerprint: string, token: string}} o
 */
function startX11Agent({ host, display, server, fingerprint, token }) {
  const stateDir = mkdtempSync(join(tmpdir(), `lectern-e2e-${host}-`));
  execFileSync(agentBin, ['enroll', '--server', server, '--token', token, '--fingerprint', fingerprint,
    '--state-dir', stateDir, '--hostname', host], { stdio: ['ignore', 'pipe', 'pipe'] });
  const agent = spawn(agentBin, ['run', '--state-dir', stateDir, '--backend', 'x11', '--hostname', host], {
    env: { ...process.env, DISPLAY: display, RUST_LOG: 'info' },
    stdio: ['ignore', 'pipe', 'pipe'],
  });
  for (const s of [agent.stdout, agent.stderr]) createInterface({ input: s }).on('line', (l) => logLine(`[${host}] ${l}`));
  onCleanup(() => { agent.kill('SIGTERM'); });
}

/**
 * Headless Chromium whose getDisplayMedia shares a fake screen without asking.
 * @returns {Promise<import('playwright-core').Page>}
 */
async function openBrowserSharing() {
  const browser = await launchChromium(['--use-fake-device-for-media-stream', '--use-fake-ui-for-media-stream',
    '--auto-select-desktop-capture-source=Entire screen']);
  onCleanup(() => browser.close().catch(() => {}));
  const context = await browser.newContext({ ignoreHTTPSErrors: true, viewport: { width: 1440, height: 900 } });
  // Keeps the last shared stream reachable, to end it as the browser would.
  await context.addInitScript(() => {
    const real = navigator.mediaDevices.getDisplayMedia.bind(navigator.mediaDevices);
    navigator.mediaDevices.getDisplayMedia = async (c) => {
      const s = await real(c);
      globalThis.__lecternShared = s;
      return s;
    };
  });
  const page = await context.newPage();
  setFailurePage(page);
  /** @type {string[]} */
  const errors = [];
  page.on('pageerror', (err) => errors.push(err.message));
  page.on('dialog', (d) => d.accept());
  onCleanup(() => { if (errors.length) console.error(`page errors: ${errors.join('; ')}`); });
  return page;
}

/**
 * The receiving panel's rows: hostname → state.
 * @param {import('playwright-core').Page} page
 * @returns {Promise<Record<string, string>>}
 */
function panelStates(page) {
  return page.$$eval('#bc-receivers li', (lis) => Object.fromEntries(lis.map((li) => [
    li.querySelector('.bc-host')?.textContent ?? '', /** @type {HTMLElement} */ (li).dataset.state ?? ''])));
}

/** Screenshots of the console at both widths. */
async function shots(page, name) {
  for (const width of [1440, 1024]) {
    await page.setViewportSize({ width, height: 900 });
    await page.screenshot({ path: join(OUT, `broadcast-${name}-${width}.png`) });
  }
  await page.setViewportSize({ width: 1440, height: 900 });
}

async function run() {
  const [displayA, displayB] = [await startXvfb(), await startXvfb()];
  await showColour(displayA, BLUE, isBlue);
  await showColour(displayB, MAGENTA, isMagenta);
  step(`Xvfb on ${displayA} (class, blue) and ${displayB} (the student shown, magenta)`);

  const dataDir = join(mkdtempSync(join(tmpdir(), 'lectern-e2e-bc-')), 'server');
  const consoleUrl = await startServer({ agents: 0, password: PASSWORD, dataDir });
  const base = new URL(consoleUrl);
  const fingerprint = new X509Certificate(readFileSync(join(dataDir, 'cert.pem'), 'utf8')).fingerprint256;

  const page = await openBrowserSharing();
  await signIn(page, consoleUrl, PASSWORD);
  const api = (method, path, body) => page.evaluate(async ({ method, path, body }) => {
    const csrf = document.querySelector('meta[name="csrf-token"]').getAttribute('content');
    const r = await fetch(path, { method, headers: { 'content-type': 'application/json', 'x-csrf-token': csrf }, body: body ? JSON.stringify(body) : undefined });
    return r.json();
  }, { method, path, body });
  const { token } = await api('POST', '/api/v1/enrollment-tokens', { label: 'broadcast e2e', uses: 2, expires_hours: 1 });
  const server = `127.0.0.1:${base.port}`;
  startX11Agent({ host: 'PC-CLASS', display: displayA, server, fingerprint, token });
  startX11Agent({ host: 'PC-STUDENT', display: displayB, server, fingerprint, token });
  await until('both X11 agents online in the grid', () => page.evaluate(() =>
    document.querySelectorAll('.tile').length === 2
    && [...document.querySelectorAll('.tile')].every((t) => (t.dataset.capabilities || '').includes('broadcast'))), 60_000);

  // 1. The teacher's screen on both computers.
  step('Show my screen → both X screens show the fake green pattern');
  await page.click('#select-all');
  await page.click('#bc-my-screen');
  await until('the class X screen to show the teacher\'s screen', () => isGreen(screenColour(displayA)), 30_000);
  await until('the student X screen to show it too', () => isGreen(screenColour(displayB)), 30_000);
  await until('the receiving panel to say both are showing', async () => {
    const s = await panelStates(page);
    return s['PC-CLASS'] === 'showing' && s['PC-STUDENT'] === 'showing';
  });
  assert.match(await page.textContent('#bc-indicator'), /2 of 2 showing/);
  assert.equal(await page.isVisible('#bc-indicator'), true);
  await shots(page, 'my-screen');
  await page.click('#bc-stop');
  await until('the X screens to be back', () => isBlue(screenColour(displayA)) && isMagenta(screenColour(displayB)), 30_000);
  await until('the panel to close', async () => !(await page.isVisible('#bc-panel')));
  assert.equal((await api('GET', '/api/v1/broadcasts')).length, 0);

  // 2. A student's screen, relayed by the server.
  step('Show a student\'s screen → the class X screen turns magenta');
  await page.click('#bc-student-screen');
  await page.waitForSelector('#bc-dialog[open]');
  const student = await page.$$eval('#bc-source option', (os) => os.find((o) => o.textContent.includes('PC-STUDENT'))?.value);
  assert.ok(student, 'PC-STUDENT is offered as the source');
  await page.selectOption('#bc-source', student);
  assert.match(await page.textContent('#bc-dialog-targets'), /1 other selected computer\b/);
  await shots(page, 'student-dialog');
  await page.click('#bc-start');
  await until('the class X screen to show the student\'s (magenta)', () => isMagenta(screenColour(displayA)), 30_000);
  await until('the panel to list only the receiver, showing', async () => {
    const s = await panelStates(page);
    return s['PC-CLASS'] === 'showing' && !('PC-STUDENT' in s);
  });
  assert.match(await page.textContent('#bc-title'), /screen/);
  await shots(page, 'student-screen');
  await page.click('#bc-stop');
  await until('the class X screen to be back', () => isBlue(screenColour(displayA)), 30_000);

  // 3. Ending the share in the browser stops the broadcast.
  step('Show my screen, then end the capture in the browser → stopped');
  await page.click('#bc-my-screen');
  await until('the class X screen to show the pattern again', () => isGreen(screenColour(displayA)), 30_000);
  // What the browser's own "Stop sharing" does: the track ends (stop()
  // alone fires no event, so the event is sent as the browser would).
  await page.evaluate(() => {
    const track = globalThis.__lecternShared.getVideoTracks()[0];
    track.stop();
    track.dispatchEvent(new Event('ended'));
  });
  await until('the broadcast to stop', async () => (await api('GET', '/api/v1/broadcasts')).length === 0, 20_000);
  await until('the class X screen to be back', () => isBlue(screenColour(displayA)), 30_000);
  step('broadcasts from the console reach real X screens and stop');
}

runTest('broadcast', OVERALL_TIMEOUT_MS, run);
