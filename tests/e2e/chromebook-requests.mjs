// End-to-end test of the extension's toolbar popup (issue 13 point 3) in
// standalone (Chromebook) mode, in real Chromium against a real server: the
// student raises a hand with a note from popup.html, the queue lists it
// (REST), the teacher's answer shows in the popup, and chat goes both ways.
// The popup page is opened in a tab (a test cannot click the toolbar
// button); the worker answers it as it answers the toolbar's popup.
// Screenshot: out/chromebook-requests-popup.png. Axe-clean (WCAG 2.1 AA).
// Needs root (writes Chromium's managed policy under /etc).
//
// Env: LECTERN_SERVER_BIN, CHROMIUM.

import assert from 'node:assert/strict';
import { mkdtempSync, readFileSync, rmSync } from 'node:fs';
import { createRequire } from 'node:module';
import { tmpdir } from 'node:os';
import { join } from 'node:path';
import { EXTENSION_ID as EXT_ID, launchWithExtension, onCleanup, OUT, policyFolderAlone, restClient, runTest, setFailurePage, spkiHash, startServer, step, until, writeExtensionPolicy } from './lib.mjs';

const PASSWORD = 'e2e-cb-requests-4321';
const POLICY_NAME = 'lectern-chromebook-requests-test.json';
const POPUP_URL = `chrome-extension://${EXT_ID}/popup.html`;
const HOSTNAME = 'CB-HAND-01';
const NOTE = 'Zoë: stuck on 3b';
const AXE_SOURCE = createRequire(import.meta.url)('axe-core').source;

const scratch = mkdtempSync(join(tmpdir(), 'lectern-cb-requests-e2e-'));
onCleanup(() => rmSync(scratch, { recursive: true, force: true }));
/** @type {string[]} */
const swLog = [];

async function run() {
  if (!(process.getuid && process.getuid() === 0)) {
    step(`SKIPPED: needs root to write ${POLICY_NAME} (Chromium's managed policy)`);
    return;
  }
  const dataDir = join(scratch, 'server');
  const consoleUrl = await startServer({ agents: 0, password: PASSWORD, dataDir });
  const base = new URL(consoleUrl).origin;
  const certPem = readFileSync(join(dataDir, 'cert.pem'), 'utf8');
  const { api } = await restClient(base, certPem, PASSWORD);

  await policyFolderAlone(POLICY_NAME);
  const tok = await api('POST', '/api/v1/enrollment-tokens', { label: 'chromebook requests e2e', uses: 1, expires_hours: 1 });
  writeExtensionPolicy(POLICY_NAME, { server: `127.0.0.1:${new URL(base).port}`, enrollment_token: tok.token, hostname: HOSTNAME });
  const { ctx } = await launchWithExtension(join(scratch, 'student'), { spki: spkiHash(certPem), log: swLog });
  onCleanup(() => ctx.close().catch(() => {}));
  const device = await until('the extension to enroll and connect',
    async () => (await api('GET', '/api/v1/devices')).find((d) => d.hostname === HOSTNAME && d.online), 60_000);
  step(`device ${device.id} connected`);

  const popup = await ctx.newPage();
  setFailurePage(popup);
  await popup.setViewportSize({ width: 380, height: 640 });
  await popup.goto(POPUP_URL);
  await popup.locator('#hand-form').waitFor();
  await popup.fill('#hand-note', NOTE);
  await popup.click('#hand-send');
  await popup.locator('#hand-raised').waitFor();
  const open = await until('the raised hand in the queue', async () => (await api('GET', '/api/v1/requests'))
    .find((r) => r.device_id === device.id));
  assert.equal(open.note, NOTE);
  step('raised from the popup; the queue lists it with the note');

  await api('POST', `/api/v1/requests/${open.id}/answer`, { answer: 'Coming ✓' });
  await until('the answer in the popup', async () => /Coming ✓/.test(await popup.textContent('#hand-answer')));
  assert.equal(await popup.locator('#hand-form').isVisible(), true, 'the hand is down again');

  await api('POST', '/api/v1/chat', { devices: [device.id], text: 'Hello Zoë 👋' });
  await popup.locator('#chat-lines li.theirs').waitFor();
  await popup.fill('#chat-text', 'Thank you');
  await popup.click('#chat-send');
  await popup.locator('#chat-lines li.mine').waitFor();
  const history = await api('GET', `/api/v1/chat?device=${device.id}`);
  assert.deepEqual(history.messages.map((m) => m.text), ['Hello Zoë 👋', 'Thank you']);
  await popup.screenshot({ path: join(OUT, 'chromebook-requests-popup.png') });
  await popup.evaluate(AXE_SOURCE);
  const violations = await popup.evaluate(async () => {
    // @ts-ignore axe is injected above
    const r = await window.axe.run(document, { runOnly: { type: 'tag', values: ['wcag2a', 'wcag2aa', 'wcag21a', 'wcag21aa'] } });
    return r.violations.map((v) => `${v.id}: ${v.nodes.map((n) => n.target.join(' ')).join(', ')}`);
  });
  assert.deepEqual(violations, [], 'axe on the popup');
  step('answer and chat both ways in the popup; axe passes');
}

await runTest('chromebook-requests', 3 * 60 * 1000, async () => {
  try {
    await run();
  } catch (err) {
    if (swLog.length) console.error(`--- extension service worker (last 40 lines) ---\n${swLog.slice(-40).join('\n')}`);
    throw err;
  }
});
