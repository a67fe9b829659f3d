// End-to-end test of "who is using it" in real Chromium, standalone mode.
//
// A real lectern-server (demo, no simulated agents) knows Zoe as one person
// with two names (OS login `zoe`, e-mail `zoe@school.example`). Chromium
// runs the unpacked extension with a managed policy file (server, enrollment
// token, device name and `user`):
//
// 1. The extension enrolls and reports the managed `user`; the device list
//    shows the name as reported and the person's display name, the user
//    group set on Zoe's OS login applies to the browser (resultant), and the
//    activity log carries the person.
// 2. `require_sign_in` on Entire Network: a browser whose user is known
//    browses on; a second browser with no `user` (and not signed in) gets
//    the sign-in request page instead of web pages, while the Lectern
//    server stays reachable.
//
// Needs root (writes Chromium's managed policy under /etc/chromium); skipped
// otherwise. The policy directory is shared by every Chromium on the machine,
// so this test waits until no other Lectern test policy is there.
//
// Env: LECTERN_SERVER_BIN (default target/debug/lectern-server), CHROMIUM.

import assert from 'node:assert/strict';
import { X509Certificate, createHash } from 'node:crypto';
import { existsSync, mkdirSync, mkdtempSync, readFileSync, readdirSync, rmSync, writeFileSync } from 'node:fs';
import https from 'node:https';
import { tmpdir } from 'node:os';
import { join, resolve } from 'node:path';
import {
  goThroughRedirects, launchPersistent, onCleanup, OUT, REPO, runTest, setFailurePage, startPlainSites, startServer, step,
} from './lib.mjs';

const EXT = resolve(REPO, 'extension');
const EXT_ID = readFileSync(join(EXT, 'EXTENSION_ID'), 'utf8').trim();
const PASSWORD = 'e2e-identity-321';
const POLICY_DIR = '/etc/chromium/policies/managed';
const POLICY_FILE = join(POLICY_DIR, 'lectern-identity-test.json');
const scratch = mkdtempSync(join(tmpdir(), 'lectern-identity-e2e-'));
onCleanup(() => rmSync(scratch, { recursive: true, force: true }));

const sleep = (ms) => new Promise((ok) => setTimeout(ok, ms));

/** Polls `fn` until it returns a truthy value. */
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
    if (Date.now() > deadline) {
      throw new Error(`timed out waiting for ${what} (last: ${last instanceof Error ? last.message : JSON.stringify(last)})`);
    }
    await sleep(250);
  }
}

/** A REST client trusting exactly the server's certificate. */
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
        if (res.statusCode >= 400) fail(new Error(`${method} ${path} → ${res.statusCode}: ${text}`));
        else ok(text ? JSON.parse(text) : null);
      });
    });
    req.on('error', fail);
    if (data) req.write(data);
    req.end();
  });
  const { token } = await call('POST', '/api/v1/session', { username: 'admin', password: PASSWORD });
  return (method, path, body) => call(method, path, body, token);
}

/** Writes the managed policy for the extension (read by Chromium at start). */
function writePolicy(values) {
  mkdirSync(POLICY_DIR, { recursive: true });
  writeFileSync(POLICY_FILE, JSON.stringify({ '3rdparty': { extensions: { [EXT_ID]: values } } }, null, 2));
}

/** Launches Chromium with the extension; returns it with its service worker. */
async function launch(name, spki) {
  const ctx = await launchPersistent(join(scratch, name), {
    viewport: { width: 1024, height: 700 },
    extensionDir: EXT,
    args: [`--ignore-certificate-errors-spki-list=${spki}`],
  });
  onCleanup(() => ctx.close().catch(() => {}));
  const isOurs = (w) => w.url().startsWith(`chrome-extension://${EXT_ID}/`);
  const sw = ctx.serviceWorkers().find(isOurs) || await ctx.waitForEvent('serviceworker', { predicate: isOurs, timeout: 20_000 });
  return { ctx, sw };
}

async function run() {
  // Chromium merges every file in the policy directory: wait for other tests' files.
  await until('no other Lectern test policy in the managed directory', () => !existsSync(POLICY_DIR)
    || readdirSync(POLICY_DIR).filter((f) => f.startsWith('lectern') && f !== 'lectern-identity-test.json').length === 0, 300_000);
  onCleanup(() => rmSync(POLICY_FILE, { force: true }));

  const sites = await startPlainSites();
  const dataDir = join(scratch, 'server');
  const consoleUrl = await startServer({ agents: 0, password: PASSWORD, dataDir });
  const base = new URL(consoleUrl).origin;
  const port = new URL(base).port;
  const certPem = readFileSync(join(dataDir, 'cert.pem'), 'utf8');
  const spki = createHash('sha256').update(new X509Certificate(certPem).publicKey.export({ type: 'spki', format: 'der' })).digest('base64');
  const api = await restClient(base, certPem);

  const person = await api('POST', '/api/v1/people', { display_name: 'Zoe Ng', aliases: [
    { kind: 'os_login', value: 'zoe' }, { kind: 'email', value: 'zoe@school.example' }] });
  const group = await api('POST', '/api/v1/groups', { name: 'Zoe (by login)', kind: 'user', priority: 'high',
    members: [{ type: 'user', value: 'zoe' }], settings: { activity_logging: true, sound_muted: true } });
  const tok = await api('POST', '/api/v1/enrollment-tokens', { label: 'identity e2e', uses: 2, expires_hours: 1 });
  step(`server at ${base}; person ${person.id} with 2 aliases; user group ${group.id} on the login`);

  // 1. The managed user is reported and resolved to the person.
  writePolicy({ server: `127.0.0.1:${port}`, enrollment_token: tok.token, hostname: 'CB-ZOE', user: 'zoe@school.example' });
  const zoe = await launch('profile-zoe', spki);
  const page = await zoe.ctx.newPage();
  setFailurePage(page);
  const device = await until('the browser to enroll and report its user', async () => (await api('GET', '/api/v1/devices'))
    .find((d) => d.hostname === 'CB-ZOE' && d.online && d.state.user === 'zoe@school.example'), 60_000);
  assert.deepEqual(device.person, { id: person.id, display_name: 'Zoe Ng' });
  const res = await api('GET', `/api/v1/resultant?device=${device.id}`);
  assert.equal(res.settings.sound_muted.source.group_id, group.id, 'the group on the OS login applies in the browser');
  step('the managed user is reported, listed with the person, and gets the group set on the other alias');

  const visited = sites.url('zoe.test', '/work');
  assert.equal(await goThroughRedirects(page, visited), visited);
  const row = await until('the visit in the activity log', async () => (await api('GET', `/api/v1/activity?device=${device.id}&limit=50`))
    .find((e) => e.kind === 'web' && e.url === visited));
  assert.equal(row.user, 'zoe@school.example');
  assert.equal(row.person, 'Zoe Ng');
  step('activity keeps the reported name and the person');

  // 2. Require sign-in: Zoe's browser is known and browses on.
  const groups = await api('GET', '/api/v1/groups');
  const entire = groups.find((g) => g.name === 'Entire Network');
  await api('PUT', `/api/v1/groups/${entire.id}`, { settings: { require_sign_in: true } });
  await until('the policy in the browser', () => zoe.sw.evaluate(() => chrome.storage.local.get('cbPolicy').then((s) => s.cbPolicy?.require_sign_in === true)));
  const other = sites.url('other.test', '/');
  assert.equal(await goThroughRedirects(page, other), other, 'a known user browses on');
  await zoe.ctx.close();

  // A browser with no user is asked to sign in.
  writePolicy({ server: `127.0.0.1:${port}`, enrollment_token: tok.token, hostname: 'CB-NOBODY' });
  const nobody = await launch('profile-nobody', spki);
  const p2 = await nobody.ctx.newPage();
  setFailurePage(p2);
  const anon = await until('the second browser to connect', async () => (await api('GET', '/api/v1/devices'))
    .find((d) => d.hostname === 'CB-NOBODY' && d.online), 60_000);
  assert.equal(anon.state.user, null);
  assert.equal(anon.person, null);
  await until('the policy in the second browser', () => nobody.sw.evaluate(() => chrome.storage.local.get('cbPolicy').then((s) => s.cbPolicy?.require_sign_in === true)));
  const shown = await until('the sign-in page instead of the site', async () => {
    const url = await goThroughRedirects(p2, sites.url('games.test', '/'));
    return url.startsWith(`chrome-extension://${EXT_ID}/signin.html`) ? url : null;
  });
  assert.ok(shown);
  await p2.waitForSelector('#headline');
  assert.match(await p2.textContent('#headline'), /sign in with your school account/i);
  assert.match(await p2.textContent('#school'), /\S/);
  mkdirSync(OUT, { recursive: true });
  await p2.screenshot({ path: join(OUT, 'identity-signin-request.png') });
  const serverPage = await goThroughRedirects(p2, `${base}/login`);
  assert.ok(serverPage.startsWith(base), `the server stays reachable (${serverPage})`);
  step('require_sign_in: an unidentified browser shows the sign-in request; the server stays reachable');

  // Lifting the setting opens browsing again.
  await api('PUT', `/api/v1/groups/${entire.id}`, { settings: { require_sign_in: false } });
  const back = sites.url('games.test', '/again');
  await until('browsing to open again', async () => (await goThroughRedirects(p2, back)) === back);
  step('require_sign_in off: browsing again');
}

if (process.getuid && process.getuid() !== 0) {
  step(`identity: SKIPPED (needs root to write ${POLICY_FILE}, Chromium's managed policy)`);
} else {
  await runTest('identity', 6 * 60 * 1000, run);
}
