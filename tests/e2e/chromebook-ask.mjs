// End-to-end test of the student's Allow/Deny question in standalone
// (Chromebook) mode, in real Chromium against a real server:
//
// - the extension enrolls from a real managed-policy file; a computer group
//   holding it (made with the groups API) sets `remote_view = ask_then_deny`;
// - two teachers WITHOUT the bypass right (users + access rules giving view of
//   that group, made with the API) sign in to the real console;
// - the server gives the student 120 s to answer (server.toml
//   remote_view_ask_secs, carried to the device in the ViewRequest);
// - the first one's grid watches the device: the extension shows ask.html
//   (screenshot out/chromebook-ask.png), still open past the default 10 s;
//   nothing reaches that console before the answer; the student clicks Allow
//   → thumbnails arrive in its tile;
// - the second teacher's grid watches: the question again; the student clicks
//   Deny → no thumbnail frame reaches the second console's stream (counted on
//   its WebSocket), while the first console keeps receiving them.
// Needs root (writes Chromium's managed policy under /etc).
//
// Env: LECTERN_SERVER_BIN, CHROMIUM.

import assert from 'node:assert/strict';
import { mkdtempSync, readFileSync, rmSync } from 'node:fs';
import http from 'node:http';
import { tmpdir } from 'node:os';
import { join } from 'node:path';
import { EXTENSION_ID as EXT_ID, launchChromium, launchWithExtension, onCleanup, OUT, policyFolderAlone, restClient, runTest, setFailurePage, spkiHash, startServer, step, until, waitForThumbnails, writeExtensionPolicy } from './lib.mjs';

const PASSWORD = 'e2e-ask-4321';
const POLICY_NAME = 'lectern-chromebook-ask-test.json';
const ASK_URL = `chrome-extension://${EXT_ID}/ask.html`;
const HOSTNAME = 'CB-ASK-01';
/** Seconds the student has to answer (server.toml remote_view_ask_secs). */
const ASK_SECS = 120;
/** The server's default for it. */
const DEFAULT_ASK_SECS = 10;
/** The thumbnail kind byte of a binary stream frame (crates/server/assets/stream.js). */
const THUMBNAIL = 1;

const scratch = mkdtempSync(join(tmpdir(), 'lectern-ask-e2e-'));
onCleanup(() => rmSync(scratch, { recursive: true, force: true }));
const sleep = (ms) => new Promise((ok) => setTimeout(ok, ms));
/** @type {string[]} */
const swLog = [];

/** A page for the student to have open. */
async function startSite() {
  const srv = http.createServer((req, res) => {
    res.setHeader('Content-Type', 'text/html; charset=utf-8');
    res.end('<!doctype html><html><head><title>Green page</title></head><body style="margin:0;background:#00a000;height:100vh"></body></html>');
  });
  await new Promise((ok) => srv.listen(0, '127.0.0.1', ok));
  onCleanup(() => new Promise((ok) => srv.close(() => ok())));
  return `http://green.test:${/** @type {import('node:net').AddressInfo} */ (srv.address()).port}/`;
}

/**
 * A console browser signed in as `username`, counting the thumbnail frames
 * its stream WebSocket receives.
 * @param {string} consoleUrl
 * @param {string} username
 * @param {string} password
 */
async function teacherConsole(consoleUrl, username, password) {
  const browser = await launchChromium();
  onCleanup(() => browser.close().catch(() => {}));
  const page = await (await browser.newContext({ ignoreHTTPSErrors: true, viewport: { width: 1440, height: 900 } })).newPage();
  const frames = { thumbnails: 0 };
  page.on('websocket', (ws) => {
    if (!ws.url().endsWith('/api/v1/stream')) return;
    ws.on('framereceived', ({ payload }) => {
      if (typeof payload !== 'string' && payload[0] === THUMBNAIL) frames.thumbnails += 1;
    });
  });
  await page.goto(consoleUrl);
  await page.waitForURL((url) => url.pathname === '/login', { timeout: 15_000 });
  await page.fill('#username', username);
  await page.fill('#password', password);
  await page.click('#login-button');
  await page.waitForURL((url) => url.pathname === '/', { timeout: 15_000 });
  step(`${username} signed in to the console`);
  return { page, frames };
}

/** The student's question window, once the extension has opened it. */
async function askPage(ctx) {
  const page = await until('the ask page', () => ctx.pages().find((p) => p.url().startsWith(ASK_URL)), 20_000);
  await page.waitForLoadState('load');
  await until('the question text', async () => /would like to see your screen/.test(await page.textContent('#ask-text')));
  return page;
}

/**
 * Clicks an answer button. The page closes itself on the click, which may
 * end the click before Playwright sees it through: only a page still open
 * makes that a failure.
 * @param {import('playwright-core').Page} ask
 * @param {string} selector
 */
async function answer(ask, selector) {
  await ask.click(selector).catch((err) => {
    if (!ask.isClosed()) throw err;
  });
}

async function run() {
  if (!(process.getuid && process.getuid() === 0)) {
    step(`SKIPPED: needs root to write ${POLICY_NAME} (Chromium's managed policy)`);
    return;
  }
  const site = await startSite();
  const dataDir = join(scratch, 'server');
  // The student gets ASK_SECS to answer (server.toml's remote_view_ask_secs):
  // far longer than the default 10 s, so a slow machine never misses it, and
  // the question is seen to outlast the default.
  const consoleUrl = await startServer({ agents: 0, password: PASSWORD, dataDir, config: `remote_view_ask_secs = ${ASK_SECS}` });
  const base = new URL(consoleUrl).origin;
  const certPem = readFileSync(join(dataDir, 'cert.pem'), 'utf8');
  const spki = spkiHash(certPem);
  const { api } = await restClient(base, certPem, PASSWORD);

  // The room's group asks the student, and denies without an answer.
  const group = await api('POST', '/api/v1/groups', {
    name: 'Ask room', kind: 'computer', priority: 'high',
    members: [{ type: 'hostname', value: HOSTNAME }], settings: { remote_view: 'ask_then_deny' },
  });
  // Two teachers who may view the group but hold no bypass right.
  for (const name of ['ms.allow', 'mr.deny']) {
    await api('POST', '/api/v1/users', { username: name, password: `${name}-pw-4321`, role: 'teacher' });
    await api('POST', '/api/v1/access-rules', {
      principal: { type: 'user', value: name }, features: ['devices.view', 'live_view'],
      group_access: { [String(group.id)]: 'view' }, bypass_privacy: false,
    });
  }
  step(`group ${group.id} "Ask room": remote_view ask_then_deny; teachers ms.allow, mr.deny (view, no bypass)`);

  await policyFolderAlone(POLICY_NAME);
  const tok = await api('POST', '/api/v1/enrollment-tokens', { label: 'chromebook ask e2e', uses: 1, expires_hours: 1 });
  writeExtensionPolicy(POLICY_NAME, { server: `127.0.0.1:${new URL(base).port}`, enrollment_token: tok.token, hostname: HOSTNAME });

  const { ctx } = await launchWithExtension(join(scratch, 'student'), { spki, log: swLog });
  onCleanup(() => ctx.close().catch(() => {}));
  const device = await until('the extension to enroll and connect',
    async () => (await api('GET', '/api/v1/devices')).find((d) => d.hostname === HOSTNAME && d.online), 60_000);
  const student = ctx.pages()[0] || await ctx.newPage();
  await student.goto(site);
  // The group's setting has reached the device's resultant settings.
  await until('remote_view ask_then_deny in force', async () => {
    const r = await api('GET', `/api/v1/resultant?device=${device.id}`);
    const rv = r.settings && r.settings.remote_view;
    return rv && rv.value === 'ask_then_deny' && rv.source && rv.source.group_id === group.id;
  });
  step(`device ${device.id} enrolled; its resultant remote_view is ask_then_deny (from group ${group.id})`);

  // Ms Allow watches: the student is asked; nothing flows before the answer.
  const allow = await teacherConsole(consoleUrl, 'ms.allow', 'ms.allow-pw-4321');
  setFailurePage(allow.page);
  let ask = await askPage(ctx);
  const asked = Date.now();
  assert.match(await ask.textContent('#ask-text'), /ms\.allow/);
  await ask.screenshot({ path: join(OUT, 'chromebook-ask.png') });
  // Past the default 10 s, the question is still open: the configured time
  // reached the device.
  await sleep(DEFAULT_ASK_SECS * 1000 + 2000);
  assert.ok(!ask.isClosed(), `the question is still open after ${Date.now() - asked} ms`);
  assert.equal(allow.frames.thumbnails, 0, 'no picture before the student answers');
  await answer(ask, '#allow');
  step(`ask.html shown to the student; Allow clicked ${Date.now() - asked} ms after it appeared`);
  await waitForThumbnails(allow.page, 1, 30_000);
  await until('thumbnail frames on ms.allow\'s stream', () => allow.frames.thumbnails >= 2);
  step(`Allow: ms.allow's console receives thumbnails (${allow.frames.thumbnails} so far)`);

  // Mr Deny watches: asked again; the student refuses; no picture reaches him.
  const deny = await teacherConsole(consoleUrl, 'mr.deny', 'mr.deny-pw-4321');
  setFailurePage(deny.page);
  ask = await askPage(ctx);
  assert.match(await ask.textContent('#ask-text'), /mr\.deny/);
  await answer(ask, '#deny');
  await until('the question window to close', () => !ctx.pages().some((p) => p.url().startsWith(ASK_URL)), 10_000);
  const allowBefore = allow.frames.thumbnails;
  // At 1 thumbnail a second, long enough to see pictures flow to the other.
  await sleep(12_000);
  assert.equal(deny.frames.thumbnails, 0, 'no thumbnail reaches the console the student refused');
  assert.ok(allow.frames.thumbnails >= allowBefore + 5, `ms.allow keeps receiving (${allowBefore} → ${allow.frames.thumbnails})`);
  const shown = await deny.page.$$eval('.tile img.thumb', (imgs) => imgs.filter((i) => i.naturalWidth > 0).length);
  assert.equal(shown, 0, 'mr.deny\'s tile shows no picture');
  step(`Deny: mr.deny received 0 thumbnails in 12 s while ms.allow received ${allow.frames.thumbnails - allowBefore}`);
}

await runTest('chromebook-ask', 4 * 60 * 1000, async () => {
  try {
    await run();
  } catch (err) {
    if (swLog.length) console.error(`--- extension service worker (last 40 lines) ---\n${swLog.slice(-40).join('\n')}`);
    throw err;
  }
});
