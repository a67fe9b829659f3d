// End-to-end test of registering a Chromebook with the school code typed on
// the extension's registration page, in real Chromium against a real server
// (issue 16 point 2):
//
// - the policy names the server but gives neither an enrollment token nor a
//   school code: the extension opens register.html;
// - a code of the wrong form is refused on the page, before the server;
// - a well-formed code the server does not know comes back as the server's
//   refusal, and the page asks again;
// - the admin's code, typed in lower case with a space, registers the
//   device: the server lists it online and the page says so.
// Screenshots: out/register-empty.png, out/register-refused.png,
// out/register-done.png. Needs root (writes Chromium's managed policy).
//
// Env: LECTERN_SERVER_BIN, CHROMIUM.

import assert from 'node:assert/strict';
import { mkdtempSync, readFileSync, rmSync } from 'node:fs';
import { tmpdir } from 'node:os';
import { join } from 'node:path';
import {
  EXTENSION_ID, OUT, launchWithExtension, onCleanup, policyFolderAlone, restClient, runTest, setFailurePage, spkiHash,
  startServer, step, until, writeExtensionPolicy,
} from './lib.mjs';

const PASSWORD = 'e2e-register-4321';
const POLICY_NAME = 'lectern-register-test.json';
const HOSTNAME = 'CB-REGISTER-01';
const REGISTER_URL = `chrome-extension://${EXTENSION_ID}/register.html`;

const scratch = mkdtempSync(join(tmpdir(), 'lectern-register-e2e-'));
onCleanup(() => rmSync(scratch, { recursive: true, force: true }));
/** @type {string[]} */
const swLog = [];

/**
 * Types `text` as the code and submits it.
 * @param {import('playwright-core').Page} page
 * @param {string} text
 */
async function submit(page, text) {
  await page.fill('#code', text);
  await page.click('#register');
}

async function run() {
  if (!(process.getuid && process.getuid() === 0)) {
    step(`SKIPPED: needs root to write ${POLICY_NAME} (Chromium's managed policy)`);
    return;
  }
  const dataDir = join(scratch, 'server');
  const consoleUrl = await startServer({ agents: 0, password: PASSWORD, dataDir });
  const base = new URL(consoleUrl).origin;
  const certPem = readFileSync(join(dataDir, 'cert.pem'), 'utf8');
  const rest = await restClient(base, certPem, PASSWORD);
  const made = await rest.api('POST', '/api/v1/school/code', {});
  step(`school code ${made.code}`);

  await policyFolderAlone(POLICY_NAME);
  writeExtensionPolicy(POLICY_NAME, { server: `127.0.0.1:${new URL(base).port}`, hostname: HOSTNAME });
  const { ctx } = await launchWithExtension(join(scratch, 'student'), { spki: spkiHash(certPem), log: swLog });
  onCleanup(() => ctx.close().catch(() => {}));

  const page = await until('the registration page', () => ctx.pages().find((p) => p.url().startsWith(REGISTER_URL)), 40_000);
  setFailurePage(page);
  await page.waitForLoadState('load');
  await page.bringToFront();
  assert.equal(await page.textContent('h1'), 'Register this device with your school');
  await page.screenshot({ path: join(OUT, 'register-empty.png') });
  step('no token and no code in the policy: the registration page opened');

  await submit(page, 'abc');
  await until('the form error', async () => (await page.textContent('#register-error')) === 'A school code has 10 letters and digits.');
  assert.equal(await page.getAttribute('#code', 'aria-invalid'), 'true');
  step('a code of the wrong form is refused on the page');

  const wrong = made.code === 'ZZZZZ-ZZZZZ' ? 'YYYYY-YYYYY' : 'ZZZZZ-ZZZZZ';
  await submit(page, wrong);
  const refused = await until('the server\'s refusal on the page', async () => {
    const t = (await page.textContent('#register-error')) ?? '';
    return t.startsWith('The server refused the school code') ? t : null;
  });
  assert.equal(await page.isEnabled('#register'), true, 'the student can try again');
  await page.screenshot({ path: join(OUT, 'register-refused.png') });
  step(`an unknown code: "${refused}"`);

  const typed = made.code.toLowerCase().replace('-', ' ');
  await submit(page, typed);
  const device = await until('the device registered and online', async () => (await rest.api('GET', '/api/v1/devices'))
    .find((/** @type {any} */ d) => d.hostname === HOSTNAME && d.online), 40_000);
  await until('the page says so', async () => (await page.textContent('#register-status'))?.startsWith('This device is registered with Hillside Demo School') ?? false);
  await page.screenshot({ path: join(OUT, 'register-done.png') });
  step(`"${typed}" registered device ${device.id} (${device.agent_version})`);
}

await runTest('register', 4 * 60 * 1000, async () => {
  try {
    await run();
  } catch (err) {
    console.error('--- extension service worker (last lines) ---');
    for (const line of swLog.slice(-30)) console.error(line);
    throw err;
  }
});
