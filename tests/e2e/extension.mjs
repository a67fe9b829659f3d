// End-to-end test of the Lectern browser extension in real Chromium.
//
// Chromium runs with the unpacked extension (extension/, fixed key, so a
// fixed ID) and `--host-resolver-rules` mapping *.test to a small local web
// server, so site rules are exercised without a network. Three parts:
//
// 1. rules: no agent, no server. Web policies are pushed straight into the
//    service worker; block list, allow list and internet block are checked
//    on real navigations (block page text, reason, setter, blocked address),
//    open tabs follow a policy change, and the policy is re-applied from
//    storage after a browser restart.
// 2. native: a real lectern-server (demo, no simulated agents) and a real
//    `lectern-agent service` (headless backend, one static session); this
//    Chromium gets a NativeMessagingHosts manifest for org.lectern.agent
//    whose wrapper runs `lectern-agent native-host`. Through the REST API:
//    block_internet, set_web_filter (allow list), close_tab, the activity
//    log, and "extension disconnected" once the browser closes (also shown
//    as the "Extension off" badge in the console).
// 3. chromebook: no native host; a managed policy file in
//    /etc/chromium/policies/managed gives the extension the server and an
//    enrollment token. The extension enrolls itself over WSS (the server's
//    self-signed key trusted with --ignore-certificate-errors-spki-list),
//    then block_internet / unblock_internet, a web list, close_tab, an
//    unsupported command and activity are checked. Needs root (writes under
//    /etc); skipped otherwise, with a message.
//
// Env: LECTERN_SERVER_BIN, LECTERN_AGENT_BIN (default target/debug/...),
// CHROMIUM (default /usr/bin/chromium), EXT_PARTS (comma list of parts to
// run; default all).

import assert from 'node:assert/strict';
import { spawn } from 'node:child_process';
import { X509Certificate, createHash } from 'node:crypto';
import { chmodSync, existsSync, mkdirSync, mkdtempSync, readFileSync, rmSync, writeFileSync } from 'node:fs';
import http from 'node:http';
import https from 'node:https';
import { tmpdir } from 'node:os';
import { isAbsolute, join, resolve } from 'node:path';
import { createInterface } from 'node:readline';
import {
  launchPersistent, logLine, onCleanup, openBrowser, OUT, REPO, runTest, setFailurePage, signIn, startServer, step,
} from './lib.mjs';

const EXT = resolve(REPO, 'extension');
const EXT_ID = readFileSync(join(EXT, 'EXTENSION_ID'), 'utf8').trim();
const PASSWORD = 'e2e-ext-321';
const OVERALL_TIMEOUT_MS = 8 * 60 * 1000;
const POLICY_DIR = '/etc/chromium/policies/managed';
const POLICY_FILE = join(POLICY_DIR, 'lectern-test.json');
const PARTS = (process.env.EXT_PARTS || 'rules,native,chromebook').split(',').map((s) => s.trim());

const bin = (env, name) => {
  const b = process.env[env] || `target/debug/${name}`;
  return isAbsolute(b) ? b : resolve(REPO, b);
};
const SERVER_BIN = bin('LECTERN_SERVER_BIN', 'lectern-server');
const AGENT_BIN = bin('LECTERN_AGENT_BIN', 'lectern-agent');

const scratch = mkdtempSync(join(tmpdir(), 'lectern-ext-e2e-'));
onCleanup(() => rmSync(scratch, { recursive: true, force: true }));

/** Lines the extension's service worker logged, for failure reports. @type {string[]} */
const swLog = [];

// ---------------------------------------------------------------------------
// Small helpers

const sleep = (ms) => new Promise((ok) => setTimeout(ok, ms));

/**
 * Polls `fn` until it returns a truthy value.
 * @template T
 * @param {string} what
 * @param {() => Promise<T> | T} fn
 * @param {number} [timeout]
 * @returns {Promise<T>}
 */
async function until(what, fn, timeout = 20_000) {
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

/** The test sites: one web server, many host names (all *.test → 127.0.0.1). */
async function startSites() {
  const names = { 'allowed.test': 'Allowed page', 'other.test': 'Other page', 'blocked.test': 'Blocked page', 'server.test': 'Server page' };
  const srv = http.createServer((req, res) => {
    const host = (req.headers.host || '').split(':')[0].toLowerCase();
    const base = names[host.replace(/^www\./, '')] || `Page on ${host}`;
    const title = req.url && req.url.startsWith('/closeme') ? 'Close me' : base;
    res.setHeader('Content-Type', 'text/html; charset=utf-8');
    res.setHeader('Cache-Control', 'no-store');
    res.end(`<!doctype html><html><head><title>${title}</title></head><body><h1 id="h">${title}</h1><p>${host}${req.url}</p><input id="q" type="text" aria-label="Search"></body></html>`);
  });
  await new Promise((ok) => srv.listen(0, '127.0.0.1', ok));
  onCleanup(() => new Promise((ok) => srv.close(() => ok())));
  const port = /** @type {import('node:net').AddressInfo} */ (srv.address()).port;
  return { port, url: (host, path = '/') => `http://${host}:${port}${path}` };
}

/**
 * Launches Chromium with the extension and returns it with its service worker.
 * @param {string} userDataDir
 * @param {string[]} [extraArgs]
 */
async function launch(userDataDir, extraArgs = []) {
  const ctx = await launchPersistent(userDataDir, {
    viewport: { width: 1280, height: 800 },
    extensionDir: EXT,
    args: extraArgs,
  });
  const isOurs = (w) => w.url().startsWith(`chrome-extension://${EXT_ID}/`);
  let sw = ctx.serviceWorkers().find(isOurs);
  if (!sw) sw = await ctx.waitForEvent('serviceworker', { predicate: isOurs, timeout: 20_000 });
  sw.on('console', (m) => {
    swLog.push(m.text());
    if (swLog.length > 200) swLog.shift();
  });
  return { ctx, sw };
}

/**
 * Navigates and returns what the tab shows: its URL, title and the block
 * page's facts when it is the block page.
 * @param {import('playwright-core').Page} page
 * @param {string} url
 */
async function visit(page, url) {
  let s;
  // After a policy change the extension reloads open tabs whose site it now
  // blocks (and sends block pages back to their site); such a reload can
  // overtake this navigation, so it is retried until the tab shows `url`
  // (or the block page for it).
  for (let attempt = 0; attempt < 4; attempt += 1) {
    try {
      await page.goto(url, { timeout: 15_000, waitUntil: 'load' });
    } catch (err) {
      // A redirect to the extension page, or a reload, can abort the navigation.
      if (!/ERR_ABORTED|ERR_BLOCKED|interrupted by another navigation|frame was detached/i.test(err.message)) throw err;
    }
    s = await shown(page);
    if ((s.blocked ? s.facts.address : s.url) === url) return s;
    await sleep(300);
  }
  return s;
}

/**
 * What a page shows now.
 * @param {import('playwright-core').Page} page
 */
async function shown(page) {
  for (let attempt = 0; ; attempt += 1) {
    try {
      await page.waitForLoadState('load').catch(() => {});
      const url = page.url();
      const isBlock = url.startsWith(`chrome-extension://${EXT_ID}/blocked.html`);
      const facts = isBlock
        ? await page.evaluate(() => ({
          headline: document.getElementById('headline').textContent,
          by: document.getElementById('set-by').textContent,
          address: document.getElementById('blocked-url').textContent,
          reason: document.body.dataset.reason,
        }))
        : null;
      return { url, title: await page.title(), blocked: isBlock, facts };
    } catch (err) {
      // The page navigated while we looked (the extension reloading it).
      if (attempt >= 5 || !/context was destroyed|navigat/i.test(err.message)) throw err;
      await sleep(200);
    }
  }
}

/**
 * Waits until an open tab, left alone, shows the block page (with
 * `headline`) or, with `headline` null, a normal page titled `title`.
 * @param {import('playwright-core').Page} page
 * @param {string | null} headline
 * @param {string} [title]
 */
async function follows(page, headline, title) {
  await until(headline ? `the open tab to show "${headline}"` : `the open tab to show "${title}"`, async () => {
    const s = await shown(page);
    return headline ? s.blocked && s.facts.headline === headline : !s.blocked && s.title === title;
  });
}

/**
 * Asserts that a page loads normally.
 * @param {import('playwright-core').Page} page
 * @param {string} url
 * @param {string} title
 */
async function expectLoads(page, url, title) {
  const s = await visit(page, url);
  assert.equal(s.blocked, false, `${url} should load, got the block page: ${JSON.stringify(s.facts)}`);
  assert.equal(s.title, title, `${url} title`);
}

/**
 * Asserts that a page is replaced by the block page with `headline`.
 * @param {import('playwright-core').Page} page
 * @param {string} url
 * @param {string} headline
 * @param {string} [by]
 */
async function expectBlocked(page, url, headline, by) {
  const s = await visit(page, url);
  assert.ok(s.blocked, `${url} should be blocked, got ${s.url} "${s.title}"`);
  assert.equal(s.facts.headline, headline);
  assert.equal(s.facts.address, url, 'the block page names the blocked address');
  if (by !== undefined) assert.equal(s.facts.by, by);
  return s;
}

/**
 * The extension's dynamic rules.
 * @param {import('playwright-core').Worker} sw
 */
function dynamicRules(sw) {
  return sw.evaluate(() => chrome.declarativeNetRequest.getDynamicRules());
}

// ---------------------------------------------------------------------------
// REST API of a real server

/**
 * A REST client for the server, trusting exactly its certificate.
 * @param {string} base e.g. https://127.0.0.1:PORT
 * @param {string} certPem
 */
async function restClient(base, certPem) {
  const u = new URL(base);
  /** @param {string} method @param {string} path @param {unknown} [body] @param {string} [token] */
  const call = (method, path, body, token) => new Promise((ok, fail) => {
    const data = body === undefined ? null : Buffer.from(JSON.stringify(body));
    const req = https.request({
      host: u.hostname,
      port: u.port,
      path,
      method,
      ca: certPem,
      servername: 'localhost',
      checkServerIdentity: () => undefined,
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
        let json = null;
        try {
          json = text ? JSON.parse(text) : null;
        } catch { /* not JSON */ }
        if (res.statusCode >= 400) fail(new Error(`${method} ${path} → ${res.statusCode}: ${text}`));
        else ok(json);
      });
    });
    req.on('error', fail);
    if (data) req.write(data);
    req.end();
  });
  const login = await call('POST', '/api/v1/session', { username: 'admin', password: PASSWORD });
  const token = login.token;
  const api = (method, path, body) => call(method, path, body, token);
  return {
    api,
    /** @returns {Promise<any[]>} */
    devices: () => api('GET', '/api/v1/devices'),
    /**
     * Sends a command to one device and waits for its outcome.
     * @param {number} deviceId
     * @param {object} command
     * @returns {Promise<{status: string, reason: string | null}>}
     */
    async command(deviceId, command) {
      const res = await api('POST', '/api/v1/commands', { devices: [deviceId], command });
      return until(`the outcome of ${JSON.stringify(command)}`, async () => {
        const c = await api('GET', `/api/v1/commands/${res.id}`);
        const t = (c.targets || []).find((x) => x.device_id === deviceId);
        return t && t.status !== 'pending' ? { status: t.status, reason: t.reason ?? null } : null;
      }, 20_000);
    },
  };
}

/**
 * Starts a demo server with no simulated agents, keeping its data in `dir`.
 * @returns {Promise<{base: string, certPem: string, fingerprint: string, spki: string, rest: Awaited<ReturnType<typeof restClient>>}>}
 */
async function startRealServer(dir) {
  const consoleUrl = await startServer({ agents: 0, password: PASSWORD, dataDir: dir });
  const base = new URL(consoleUrl).origin;
  const certPem = readFileSync(join(dir, 'cert.pem'), 'utf8');
  const cert = new X509Certificate(certPem);
  const spkiDer = cert.publicKey.export({ type: 'spki', format: 'der' });
  const spki = createHash('sha256').update(spkiDer).digest('base64');
  const rest = await restClient(base, certPem);
  return { base, certPem, fingerprint: cert.fingerprint256, spki, rest };
}

/**
 * Runs a process until the test ends, its output going to the failure report.
 * @param {string} name
 * @param {string} cmd
 * @param {string[]} args
 */
function startProcess(name, cmd, args) {
  const child = spawn(cmd, args, { detached: true, stdio: ['ignore', 'pipe', 'pipe'], env: { ...process.env, RUST_LOG: 'info', LECTERN_LOG: 'stderr' } });
  for (const stream of [child.stdout, child.stderr]) createInterface({ input: stream }).on('line', (l) => logLine(`[${name}] ${l}`));
  onCleanup(async () => {
    if (child.exitCode !== null || child.signalCode !== null) return;
    const exited = new Promise((ok) => child.once('exit', ok));
    try {
      process.kill(-child.pid, 'SIGTERM');
    } catch { /* gone */ }
    const t = setTimeout(() => { try { process.kill(-child.pid, 'SIGKILL'); } catch { /* gone */ } }, 5000);
    await exited;
    clearTimeout(t);
  });
  return child;
}

/**
 * The device with `hostname`, once it is listed and matches `ok`.
 * @param {Awaited<ReturnType<typeof restClient>>} rest
 * @param {(d: any) => boolean} match
 * @param {string} what
 * @param {number} [timeout]
 */
function waitDevice(rest, match, what, timeout = 30_000) {
  return until(what, async () => (await rest.devices()).find(match) || null, timeout);
}

// ---------------------------------------------------------------------------
// Part 1: the rules in the browser, no agent and no server

async function partRules(sites) {
  const userDataDir = join(scratch, 'profile-rules');
  let { ctx, sw } = await launch(userDataDir);
  const page = await ctx.newPage();
  setFailurePage(page);
  await until('the extension to give up on the native host (none installed)', () => sw.evaluate(() => globalThis.lectern && globalThis.lectern.mode === 'waiting'));
  step(`rules: extension ${EXT_ID} loaded, no native host, no server: waiting`);

  const push = async (web) => {
    const r = await sw.evaluate((w) => globalThis.lectern.applyWebPolicy(w), web);
    assert.deepEqual(r, { ok: true, errors: [] }, `applying ${JSON.stringify(web)}`);
  };

  // Block list: listed sites (and subdomains, and a glob) only.
  await push({ internet_blocked: false, mode: 'block_list', block: ['blocked.test', '*.games.test'], always_allowed: ['server.test'], set_by: 'Ms Khan' });
  assert.ok((await dynamicRules(sw)).length > 0, 'dynamic rules applied');
  const b = await expectBlocked(page, sites.url('blocked.test', '/play?level=2&x=1'), 'This site is blocked', 'Ms Khan');
  assert.equal(b.facts.reason, 'blocked');
  await page.screenshot({ path: join(OUT, 'extension-block-list.png') });
  await expectBlocked(page, sites.url('www.blocked.test'), 'This site is blocked');
  await expectBlocked(page, sites.url('a.games.test'), 'This site is blocked');
  await expectLoads(page, sites.url('other.test'), 'Other page');
  // Frames and requests to a blocked site are blocked too.
  const fetched = await page.evaluate(async (u) => {
    try {
      await fetch(u, { mode: 'no-cors' });
      return 'loaded';
    } catch {
      return 'blocked';
    }
  }, sites.url('blocked.test', '/api'));
  assert.equal(fetched, 'blocked', 'a request to a blocked site from another page');
  step('rules: block list (plain, subdomain, wildcard; pages and requests)');

  // Allow list.
  await push({ internet_blocked: false, mode: 'allow_list', allow: ['allowed.test'], always_allowed: ['server.test'], set_by: 'Ms Khan' });
  await expectLoads(page, sites.url('allowed.test'), 'Allowed page');
  await expectLoads(page, sites.url('server.test'), 'Server page');
  await expectBlocked(page, sites.url('other.test'), 'This site is not on the allowed list', 'Ms Khan');
  await page.screenshot({ path: join(OUT, 'extension-allow-list.png') });
  step('rules: allow list');

  // Internet blocked: an open page follows at once; the server stays reachable.
  await push({ internet_blocked: false, mode: 'off', always_allowed: ['server.test'], set_by: '' });
  const open = await ctx.newPage();
  await expectLoads(open, sites.url('other.test', '/reading'), 'Other page');
  await push({ internet_blocked: true, mode: 'allow_list', allow: ['allowed.test'], always_allowed: ['server.test'], set_by: 'your teacher' });
  await until('the open tab to show the block page', async () => (await shown(open)).blocked);
  const inet = await shown(open);
  assert.equal(inet.facts.headline, 'The internet is blocked by your teacher');
  assert.equal(inet.facts.address, sites.url('other.test', '/reading'));
  await expectBlocked(page, sites.url('allowed.test'), 'The internet is blocked by your teacher', 'your teacher');
  await expectLoads(page, sites.url('server.test'), 'Server page');
  await open.screenshot({ path: join(OUT, 'extension-internet-blocked.png') });
  await push({ internet_blocked: false, mode: 'off', always_allowed: ['server.test'], set_by: '' });
  await until('the blocked tab to go back to its page', async () => {
    const s = await shown(open);
    return !s.blocked && s.title === 'Other page';
  });
  await open.close();
  step('rules: internet block (open tabs follow, and come back when lifted)');

  // Enforcement survives a restart with nothing to talk to: the policy is
  // re-applied from storage (the rules are deleted first to prove it).
  await push({ internet_blocked: false, mode: 'block_list', block: ['blocked.test'], always_allowed: [], set_by: 'your school' });
  await sw.evaluate(async () => {
    const ids = (await chrome.declarativeNetRequest.getDynamicRules()).map((r) => r.id);
    await chrome.declarativeNetRequest.updateDynamicRules({ removeRuleIds: ids });
  });
  assert.equal((await dynamicRules(sw)).length, 0);
  await ctx.close();
  ({ ctx, sw } = await launch(userDataDir));
  await until('the stored policy to be re-applied', async () => (await dynamicRules(sw)).length > 0);
  const again = await ctx.newPage();
  setFailurePage(again);
  await expectBlocked(again, sites.url('blocked.test'), 'This site is blocked', 'your school');
  await expectLoads(again, sites.url('other.test'), 'Other page');
  await ctx.close();
  setFailurePage(null);
  step('rules: the stored policy is enforced again after a browser restart');
}

// ---------------------------------------------------------------------------
// Part 2: native mode with a real agent and server

async function partNative(sites, server) {
  if (!existsSync(AGENT_BIN)) throw new Error(`${AGENT_BIN} is missing: build it (cargo build -p lectern-agent) or set LECTERN_AGENT_BIN`);
  const { rest } = server;
  const dir = join(scratch, 'agent');
  mkdirSync(join(dir, 'run'), { recursive: true });
  // The session helper runs as `nobody` and must reach the socket.
  for (const d of [scratch, dir, join(dir, 'run')]) chmodSync(d, 0o755);
  const tok = await rest.api('POST', '/api/v1/enrollment-tokens', { label: 'extension e2e', uses: 1, expires_hours: 1 });
  writeFileSync(join(dir, 'enrollment-token'), `${tok.token}\n`);
  const port = new URL(server.base).port;
  const config = join(dir, 'agent.toml');
  writeFileSync(config, [
    `server = "127.0.0.1:${port}"`,
    `fingerprint = "${server.fingerprint}"`,
    `token_file = ${JSON.stringify(join(dir, 'enrollment-token'))}`,
    `state_dir = ${JSON.stringify(join(dir, 'state'))}`,
    `socket = ${JSON.stringify(join(dir, 'run/agent.sock'))}`,
    'hostname = "EXT-PC01"',
    'backend = "headless"',
    'sessions = "static"',
    'session_poll_secs = 1',
    '[[session]]',
    'display = ":99"',
    'user = "nobody"',
    '',
  ].join('\n'));
  startProcess('agent', AGENT_BIN, ['service', '--config', config]);
  const device = await waitDevice(rest, (d) => d.hostname === 'EXT-PC01' && d.online, 'the agent to enroll and connect');
  step(`native: agent enrolled as device ${device.id}`);

  // Register the native host for this browser profile.
  const userDataDir = join(scratch, 'profile-native');
  mkdirSync(join(userDataDir, 'NativeMessagingHosts'), { recursive: true });
  const wrapper = join(dir, 'native-host.sh');
  writeFileSync(wrapper, `#!/bin/sh\nexec ${JSON.stringify(AGENT_BIN)} native-host --config ${JSON.stringify(config)} "$@"\n`);
  chmodSync(wrapper, 0o755);
  writeFileSync(join(userDataDir, 'NativeMessagingHosts', 'org.lectern.agent.json'), JSON.stringify({
    name: 'org.lectern.agent',
    description: 'Lectern',
    path: wrapper,
    type: 'stdio',
    allowed_origins: [`chrome-extension://${EXT_ID}/`],
  }, null, 2));

  // The server's self-signed certificate is trusted by its key, as a school
  // would install its certificate on the machines.
  const { ctx, sw } = await launch(userDataDir, [`--ignore-certificate-errors-spki-list=${server.spki}`]);
  let closed = false;
  onCleanup(() => (closed ? undefined : ctx.close().catch(() => {})));
  const page = await ctx.newPage();
  setFailurePage(page);
  await until('the extension to reach the native host', () => sw.evaluate(() => globalThis.lectern.mode === 'native' && globalThis.lectern.connected), 20_000);
  await expectLoads(page, sites.url('allowed.test', '/start'), 'Allowed page');
  await waitDevice(rest, (d) => d.id === device.id && d.state && d.state.extension === 'connected'
    && (d.state.tabs || []).some((t) => t.url === sites.url('allowed.test', '/start') && t.title === 'Allowed page'), 'the device to report the extension and its tabs');
  step('native: extension connected through lectern-agent native-host; tabs reported');

  // Block the internet: the block page, but the server itself still loads.
  assert.deepEqual(await rest.command(device.id, { type: 'block_internet' }), { status: 'done', reason: null });
  await until('block rules', async () => (await dynamicRules(sw)).some((r) => r.action.type === 'redirect'));
  await follows(page, 'The internet is blocked by your teacher');
  const blocked = await expectBlocked(page, sites.url('blocked.test'), 'The internet is blocked by your teacher');
  assert.equal(blocked.facts.by, 'your teacher');
  await page.screenshot({ path: join(OUT, 'extension-native-blocked.png') });
  const consolePage = await visit(page, `${server.base}/login`);
  assert.equal(consolePage.blocked, false, 'the Lectern server stays reachable');
  assert.match(consolePage.title, /Lectern/);
  assert.deepEqual(await rest.command(device.id, { type: 'unblock_internet' }), { status: 'done', reason: null });
  await until('the block to lift', async () => !(await dynamicRules(sw)).some((r) => r.action.type === 'redirect'));
  await expectLoads(page, sites.url('blocked.test'), 'Blocked page');
  step('native: block_internet shows the block page (server still reachable); unblock lifts it');

  // A teacher's allow list.
  assert.deepEqual(await rest.command(device.id, { type: 'set_web_filter', mode: 'allow_list', allow: ['allowed.test'], block: [] }), { status: 'done', reason: null });
  await until('allow-list rules', async () => (await dynamicRules(sw)).some((r) => r.action.type === 'redirect'));
  await follows(page, 'This site is not on the allowed list');
  await expectLoads(page, sites.url('allowed.test', '/lesson'), 'Allowed page');
  await expectBlocked(page, sites.url('other.test'), 'This site is not on the allowed list', 'your teacher');
  await page.screenshot({ path: join(OUT, 'extension-native-allow-list.png') });
  assert.deepEqual(await rest.command(device.id, { type: 'set_web_filter', mode: 'off', allow: [], block: [] }), { status: 'done', reason: null });
  await until('the lists to clear', async () => (await dynamicRules(sw)).length === 0);
  await follows(page, null, 'Other page');
  await expectLoads(page, sites.url('other.test'), 'Other page');
  step('native: set_web_filter allow list enforced, then cleared');

  // The visit to allowed.test is in the activity log.
  const visited = sites.url('allowed.test', '/lesson');
  const events = await until('the visit in the activity log', async () => {
    const list = await rest.api('GET', `/api/v1/activity?device=${device.id}&limit=100`);
    return list.some((e) => e.kind === 'web' && e.url === visited) ? list : null;
  }, 30_000);
  const ev = events.find((e) => e.url === visited);
  assert.equal(ev.title, 'Allowed page');
  assert.equal(ev.device_id, device.id);
  assert.ok(Math.abs(ev.at - Date.now()) < 5 * 60_000, 'a recent time');
  step('native: visits reach GET /api/v1/activity with URL and title');

  // Text typed into a page is scanned on the agent and never logged.
  await page.fill('#q', 'honestly you are worthless');
  await page.press('#q', 'Enter');
  await page.press('#q', 'Tab'); // change fires when the field loses focus
  const typed = await until('the typed text as a violation', async () => {
    const list = await rest.api('GET', `/api/v1/violations?device=${device.id}&limit=50`);
    return list.find((x) => x.source === 'text' && x.term === 'you are worthless') || null;
  }, 30_000);
  assert.ok(typed.context.includes('worthless'), typed.context);
  const logged = await rest.api('GET', `/api/v1/activity?device=${device.id}&q=worthless`);
  assert.equal(logged.length, 0, 'typed text is not in the activity log');
  step('native: typed text becomes a violation (source "text") found on the agent, never logged');

  // Close a tab from the console's API.
  const victim = await ctx.newPage();
  await expectLoads(victim, sites.url('other.test', '/closeme'), 'Close me');
  const withTab = await waitDevice(rest, (d) => d.id === device.id && (d.state.tabs || []).some((t) => t.title === 'Close me'), 'the new tab in the device state');
  const tab = withTab.state.tabs.find((t) => t.title === 'Close me');
  assert.deepEqual(await rest.command(device.id, { type: 'close_tab', tab_id: tab.id }), { status: 'done', reason: null });
  await until('the tab to close in the browser', async () => !(await sw.evaluate(() => chrome.tabs.query({}))).some((t) => t.id === tab.id));
  await waitDevice(rest, (d) => d.id === device.id && !(d.state.tabs || []).some((t) => t.id === tab.id) && d.state.tabs.length > 0, 'the tab to leave the device state');
  step('native: close_tab closes the tab; it leaves state.tabs');

  // Closing the browser disconnects the extension.
  await ctx.close();
  closed = true;
  setFailurePage(null);
  await waitDevice(rest, (d) => d.id === device.id && d.state && d.state.extension === 'disconnected', 'state.extension to become disconnected', 45_000);
  step('native: browser closed → state.extension "disconnected"');

  // The console shows it.
  const { page: console_ } = await openBrowser();
  await signIn(console_, `${server.base}/`, PASSWORD);
  await console_.waitForFunction(() => [...document.querySelectorAll('.tile')].some((t) =>
    t.querySelector('.name').textContent === 'EXT-PC01'
    && [...t.querySelectorAll('.badge')].some((b) => b.textContent === 'Extension off')), null, { timeout: 15_000 });
  await console_.screenshot({ path: join(OUT, 'extension-off-badge.png') });
  step('native: the console tile shows "Extension off"');
}

// ---------------------------------------------------------------------------
// Part 3: Chromebook mode, the extension as the agent

async function partChromebook(sites, server) {
  const { rest } = server;
  // Registered with the school's code, as typed by whoever set the policy
  // (lower case, a space for the dash); chromebook.mjs enrolls with a token.
  const made = await rest.api('POST', '/api/v1/school/code', {});
  assert.match(made.code, /^[0-9A-HJKMNP-TV-Z]{5}-[0-9A-HJKMNP-TV-Z]{5}$/);
  const typed = made.code.toLowerCase().replace('-', ' ');
  const port = new URL(server.base).port;
  mkdirSync(POLICY_DIR, { recursive: true });
  writeFileSync(POLICY_FILE, JSON.stringify({
    '3rdparty': { extensions: { [EXT_ID]: { server: `127.0.0.1:${port}`, school_code: typed, hostname: 'CB-TEST-01' } } },
  }, null, 2));
  onCleanup(() => rmSync(POLICY_FILE, { force: true }));

  const userDataDir = join(scratch, 'profile-chromebook');
  const { ctx, sw } = await launch(userDataDir, [`--ignore-certificate-errors-spki-list=${server.spki}`]);
  onCleanup(() => ctx.close().catch(() => {}));
  const page = await ctx.newPage();
  setFailurePage(page);
  const managed = await sw.evaluate(() => chrome.storage.managed.get(null));
  assert.equal(managed.server, `127.0.0.1:${port}`, 'the managed policy reaches the extension');
  await until('Chromebook mode', () => sw.evaluate(() => globalThis.lectern.mode === 'chromebook'));
  const device = await waitDevice(rest, (d) => d.hostname === 'CB-TEST-01' && d.online, 'the extension to enroll and connect', 40_000);
  assert.match(device.os, /chromeos|browser/);
  assert.match(device.agent_version, /^extension /);
  assert.ok(['message', 'launch_url', 'internet_block', 'tabs', 'web_filter'].every((c) => device.capabilities.includes(c)), JSON.stringify(device.capabilities));
  const cred = await sw.evaluate(() => chrome.storage.local.get('cbCredential'));
  assert.equal(cred.cbCredential.device_id, device.id, 'the credential is stored');
  step(`chromebook: registered with the school code "${typed}" over WSS as device ${device.id} (${device.os}, ${device.agent_version})`);

  await expectLoads(page, sites.url('allowed.test', '/cb'), 'Allowed page');
  await waitDevice(rest, (d) => d.id === device.id && d.state.extension === 'connected'
    && d.state.url === sites.url('allowed.test', '/cb') && (d.state.tabs || []).some((t) => t.active && t.title === 'Allowed page'), 'the tabs in the state');

  assert.deepEqual(await rest.command(device.id, { type: 'block_internet' }), { status: 'done', reason: null });
  const after = (await rest.devices()).find((d) => d.id === device.id);
  assert.equal(after.state.internet_blocked, true);
  await follows(page, 'The internet is blocked by your teacher');
  await expectBlocked(page, sites.url('blocked.test'), 'The internet is blocked by your teacher', 'your teacher');
  await page.screenshot({ path: join(OUT, 'extension-chromebook-blocked.png') });
  const serverPage = await visit(page, `${server.base}/login`);
  assert.equal(serverPage.blocked, false, 'the server stays reachable');
  assert.deepEqual(await rest.command(device.id, { type: 'unblock_internet' }), { status: 'done', reason: null });
  await expectLoads(page, sites.url('blocked.test'), 'Blocked page');
  step('chromebook: block_internet acked done → block page; unblock_internet → page loads');

  assert.deepEqual(await rest.command(device.id, { type: 'set_web_filter', mode: 'block_list', allow: [], block: ['blocked.test'] }), { status: 'done', reason: null });
  await follows(page, 'This site is blocked');
  await expectBlocked(page, sites.url('blocked.test'), 'This site is blocked', 'your teacher');
  await expectLoads(page, sites.url('other.test'), 'Other page');
  assert.deepEqual(await rest.command(device.id, { type: 'set_web_filter', mode: 'off' }), { status: 'done', reason: null });
  await sleep(500); // the tab stays on other.test: nothing to follow
  await expectLoads(page, sites.url('blocked.test'), 'Blocked page');
  step('chromebook: set_web_filter block list, then off');

  // Logging out is beyond an extension: the server fails it with a reason
  // before sending, as the extension does not announce the capability.
  const logout = await rest.command(device.id, { type: 'logout' });
  assert.equal(logout.status, 'failed');
  assert.match(logout.reason, /cannot end the user's session/);

  // A message opens a small window with the text until it is closed.
  assert.deepEqual(await rest.command(device.id, { type: 'message', text: 'Eyes to the front, please' }), { status: 'done', reason: null });
  const messagePage = await until('the message window', () => ctx.pages().find((p) => p.url().startsWith(`chrome-extension://${EXT_ID}/message.html`)));
  await messagePage.waitForLoadState('load');
  assert.equal((await messagePage.textContent('#message-text')).trim(), 'Eyes to the front, please');
  await messagePage.screenshot({ path: join(OUT, 'extension-chromebook-message.png') });
  await waitDevice(rest, (d) => d.id === device.id && d.state.message_shown === true, 'message_shown');
  // OK closes the window, which can end it before Playwright hears that the
  // click was done: a closed page after the click is the expected outcome.
  await Promise.all([
    messagePage.waitForEvent('close'),
    messagePage.click('#ok', { noWaitAfter: true }).catch((err) => {
      if (!messagePage.isClosed()) throw err;
    }),
  ]);
  await waitDevice(rest, (d) => d.id === device.id && d.state.message_shown === false, 'message_shown to clear');

  // launch_url opens a tab; one the rules would block is refused.
  const launched = sites.url('allowed.test', '/launched');
  assert.deepEqual(await rest.command(device.id, { type: 'launch_url', url: launched }), { status: 'done', reason: null });
  await until('the launched tab', () => ctx.pages().some((p) => p.url() === launched));
  assert.deepEqual(await rest.command(device.id, { type: 'set_web_filter', mode: 'block_list', block: ['blocked.test'] }), { status: 'done', reason: null });
  const refused = await rest.command(device.id, { type: 'launch_url', url: sites.url('blocked.test') });
  assert.equal(refused.status, 'failed');
  assert.match(refused.reason, /blocked/);
  // A meeting invite opens its https link in a tab; a web list that leaves
  // the meeting's host out refuses it, saying why.
  const meeting = `https://meet.test:${sites.port}/abc-defg-hij`;
  assert.deepEqual(await rest.command(device.id, { type: 'set_web_filter', mode: 'off' }), { status: 'done', reason: null });
  assert.deepEqual(await rest.command(device.id, { type: 'meeting', url: meeting }), { status: 'done', reason: null });
  await until('the meeting tab', () => sw.evaluate(async (url) => (await chrome.tabs.query({})).some((t) => t.url === url || t.pendingUrl === url), meeting));
  assert.deepEqual(await rest.command(device.id, { type: 'set_web_filter', mode: 'allow_list', allow: ['allowed.test'] }), { status: 'done', reason: null });
  const noMeeting = await rest.command(device.id, { type: 'meeting', url: meeting });
  assert.equal(noMeeting.status, 'failed');
  assert.match(noMeeting.reason, /not on the allowed list/);
  assert.deepEqual(await rest.command(device.id, { type: 'set_web_filter', mode: 'off' }), { status: 'done', reason: null });
  step('chromebook: message window shown and dismissed; launch_url opens a tab, refused for a blocked site; a meeting invite opens its link, refused by a web list without it');

  const victim = await ctx.newPage();
  await expectLoads(victim, sites.url('other.test', '/closeme'), 'Close me');
  const withTab = await waitDevice(rest, (d) => d.id === device.id && (d.state.tabs || []).some((t) => t.title === 'Close me'), 'the new tab in the state');
  const tab = withTab.state.tabs.find((t) => t.title === 'Close me');
  assert.deepEqual(await rest.command(device.id, { type: 'close_tab', tab_id: tab.id }), { status: 'done', reason: null });
  await until('the tab to close', async () => !(await sw.evaluate(() => chrome.tabs.query({}))).some((t) => t.id === tab.id));
  step('chromebook: logout refused with a reason; close_tab closes the tab');

  const visited = sites.url('allowed.test', '/cb');
  await until('the visit in the activity log', async () => {
    const list = await rest.api('GET', `/api/v1/activity?device=${device.id}&limit=100`);
    return list.some((e) => e.kind === 'web' && e.url === visited && e.title === 'Allowed page');
  }, 30_000);
  step('chromebook: visits reach the activity log');
}

// ---------------------------------------------------------------------------

async function run() {
  const sites = await startSites();
  rmSync(POLICY_FILE, { force: true });
  if (PARTS.includes('rules')) await partRules(sites);

  const wantNative = PARTS.includes('native');
  const wantChromebook = PARTS.includes('chromebook');
  if (!wantNative && !wantChromebook) return;
  const server = await startRealServer(join(scratch, 'server'));
  step(`server at ${server.base} (SPKI sha256 ${server.spki})`);
  if (wantNative) await partNative(sites, server);
  if (wantChromebook) {
    if (process.getuid && process.getuid() === 0) await partChromebook(sites, server);
    else step(`chromebook: SKIPPED (needs root to write ${POLICY_FILE}, Chromium's managed policy)`);
  }
}

await runTest('extension', OVERALL_TIMEOUT_MS, async () => {
  try {
    await run();
  } catch (err) {
    if (swLog.length) console.error(`--- extension service worker (last 40 lines) ---\n${swLog.slice(-40).join('\n')}`);
    throw err;
  }
});
