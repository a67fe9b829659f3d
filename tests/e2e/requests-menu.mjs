// End-to-end test of the tile menu's chat items (issue 13 point 3 gap): a
// real X11 agent (`lectern-agent run --backend x11`) on its own Xvfb, a real
// lectern-server over WSS, the console in headless Chromium.
//
// - the student raises a hand (Ctrl+Alt+H, a note, Enter);
// - the tile's context menu (keyboard: Shift+F10) offers "Chat…" and
//   "Answer raised hand…" (axe-clean; screenshot); the latter moves focus to
//   the hand's answer field, and the answer closes the hand;
// - with the hand down the menu offers "Chat…" only, which opens the chat
//   with that computer; the student's chat opens with the teacher's line;
// - a safeguarding lead (activity.view, no chat right) opens the same chat
//   from the tile menu as a read-only "Chat history".
// Screenshots: out/requests-menu-{1440,1024}.png.
//
// Needs Xvfb, xdotool, xmodmap. Env: LECTERN_SERVER_BIN, LECTERN_AGENT_BIN
// (default target/debug/…), CHROMIUM.

import assert from 'node:assert/strict';
import { execFileSync } from 'node:child_process';
import { X509Certificate } from 'node:crypto';
import { mkdtempSync, readFileSync, rmSync } from 'node:fs';
import { tmpdir } from 'node:os';
import { isAbsolute, join, resolve } from 'node:path';
import { REPO, step, until, checkAxe, onCleanup, openBrowser, runTest, setFailurePage, shootWide, signIn, startChild, startServer, startXvfb, xRun, xWindowShown } from './lib.mjs';

const PASSWORD = 'e2e-requests-menu-321';
const HOSTNAME = 'X11-PC-08';
const SCREEN = { width: 1280, height: 720 };
const NOTE = 'Zoë: question 4';

const scratch = mkdtempSync(join(tmpdir(), 'lectern-requests-menu-e2e-'));
onCleanup(() => rmSync(scratch, { recursive: true, force: true }));

const bin = (env, name) => {
  const p = process.env[env] || `target/debug/${name}`;
  return isAbsolute(p) ? p : resolve(REPO, p);
};

/** The visible items of the open tile menu, by label. */
async function menuItems(page) {
  await page.locator('#tile-menu').waitFor();
  return page.locator('#tile-menu [role="menuitem"]:visible').allTextContents();
}

async function run() {
  const display = await startXvfb(SCREEN);
  step(`Xvfb on ${display}`);
  xRun(display, 'xmodmap', ['-e', 'keycode 254 = ediaeresis Ediaeresis']);

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

  const tok = await api('POST', '/api/v1/enrollment-tokens', { label: 'requests menu e2e', uses: 1, expires_hours: 1 });
  const state = join(scratch, 'agent');
  execFileSync(bin('LECTERN_AGENT_BIN', 'lectern-agent'), ['enroll', '--server', `127.0.0.1:${new URL(base).port}`,
    '--token', tok.token, '--fingerprint', fingerprint, '--state-dir', state, '--hostname', HOSTNAME], { stdio: 'ignore' });
  startChild(bin('LECTERN_AGENT_BIN', 'lectern-agent'), ['run', '--state-dir', state, '--backend', 'x11', '--hostname', HOSTNAME],
    { env: { ...process.env, DISPLAY: display, LECTERN_URL_OPENER: 'true' } });
  const device = await until('the X11 agent to connect', async () => (await api('GET', '/api/v1/devices'))
    .find((d) => d.hostname === HOSTNAME && d.online), 60_000);
  step(`device ${device.id} online`);
  const tile = page.locator(`.tile[data-device-id="${device.id}"]`);
  await tile.waitFor();

  // Before any hand: the menu has Chat… but no answer.
  await tile.click({ button: 'right' });
  let items = await menuItems(page);
  assert.ok(items.includes('Chat…'), `${items}`);
  assert.ok(!items.includes('Answer raised hand…'), `${items}`);
  await page.keyboard.press('Escape');

  // The student raises a hand.
  xRun(display, 'xdotool', ['key', 'ctrl+alt+h']);
  await until('the raise-hand form', () => xWindowShown(display, 'Raise your hand'), 20_000);
  await new Promise((r) => setTimeout(r, 300));
  xRun(display, 'xdotool', ['type', '--delay', '30', NOTE]);
  xRun(display, 'xdotool', ['key', 'Return']);
  await tile.locator('.badge.hand').waitFor({ timeout: 30_000 });
  step('the student raised a hand');

  // Keyboard: focus the tile, Shift+F10 opens its menu.
  await tile.focus();
  await page.keyboard.press('Shift+F10');
  items = await menuItems(page);
  assert.ok(items.includes('Chat…') && items.includes('Answer raised hand…'), `${items}`);
  await checkAxe(page, 'the tile menu', '#tile-menu');
  await shootWide(page, 'requests-menu');
  await page.locator('#tile-menu [data-action="answer_hand"]').focus();
  await page.keyboard.press('Enter');
  const answerField = page.locator('#hands-list .hand-item input[type="text"]');
  await until('focus in the answer field', () => answerField.evaluate((e) => e === document.activeElement));
  await page.keyboard.type('Coming ✓');
  await page.keyboard.press('Enter');
  await page.locator('#hands-panel').waitFor({ state: 'hidden' });
  await until('the answer on the student screen', () => xWindowShown(display, 'Message from your teacher'), 20_000);
  xRun(display, 'xdotool', ['key', 'Return']);
  step('answered from the tile menu');

  // The hand is down: Chat… only; it opens the chat with this computer.
  await tile.click({ button: 'right' });
  items = await menuItems(page);
  assert.ok(items.includes('Chat…') && !items.includes('Answer raised hand…'), `${items}`);
  await page.locator('#tile-menu [data-action="chat"]').click();
  await page.locator('#chat-dialog').waitFor();
  assert.match(await page.locator('#chat-title').textContent(), new RegExp(HOSTNAME));
  await page.fill('#chat-text', 'Hello from the menu');
  await page.keyboard.press('Enter');
  await page.locator('#chat-log .chat-line.teacher').waitFor();
  await until('the chat on the student screen', () => xWindowShown(display, 'Chat with your teacher'), 20_000);
  await checkAxe(page, 'the chat dialog opened from the menu', '#chat-dialog');
  step('chat from the tile menu');

  // A safeguarding lead (activity.view, no chat right) reads the chat from
  // the tile menu and the toolbar, read-only.
  const network = (await api('GET', '/api/v1/groups')).find((g) => g.name === 'Entire Network');
  await api('POST', '/api/v1/users', { username: 'dsl', password: 'dsl-password-1', role: 'teacher' });
  await api('POST', '/api/v1/access-rules', { principal: { type: 'user', value: 'dsl' },
    features: ['devices.view', 'activity.view'], group_access: { [network.id]: 'view' } });
  const lead = await page.context().browser().newContext({ ignoreHTTPSErrors: true, viewport: { width: 1440, height: 900 } });
  const dsl = await lead.newPage();
  setFailurePage(dsl);
  await dsl.goto(consoleUrl);
  await dsl.fill('#username', 'dsl');
  await dsl.fill('#password', 'dsl-password-1');
  await dsl.click('#login-button');
  const dslTile = dsl.locator(`.tile[data-device-id="${device.id}"]`);
  await dslTile.waitFor();
  assert.ok(await dsl.isVisible('#chat-open'), 'the toolbar offers the chat history');
  await dslTile.click({ button: 'right' });
  items = await menuItems(dsl);
  assert.ok(items.includes('Chat…') && !items.includes('Answer raised hand…'), `${items}`);
  await dsl.locator('#tile-menu [data-action="chat"]').click();
  await dsl.locator('#chat-dialog').waitFor();
  assert.match(await dsl.locator('#chat-title').textContent(), new RegExp(`Chat history with .*${HOSTNAME}`));
  await dsl.locator('#chat-log .chat-line.teacher', { hasText: 'Hello from the menu' }).waitFor();
  assert.ok(await dsl.isHidden('#chat-form'), 'no input for a reader');
  assert.ok(await dsl.isVisible('#chat-readonly'));
  await checkAxe(dsl, 'the read-only chat history', '#chat-dialog');
  await shootWide(dsl, 'requests-menu-chat-history');
  step('a safeguarding lead reads the chat history, read-only');
}

runTest('requests-menu', 180_000, run);
