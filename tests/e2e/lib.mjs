// Shared pieces of the browser end-to-end tests: the demo server, headless
// Chromium (and Chromium with the extension under managed policy), signing
// in, polling, and the run/cleanup/failure-report wrapper.
//
// Env: LECTERN_SERVER_BIN (default target/debug/lectern-server under the repo
// root), CHROMIUM (default /usr/bin/chromium).

import assert from 'node:assert/strict';
import { execFileSync, spawn } from 'node:child_process';
import { X509Certificate, createHash } from 'node:crypto';
import { existsSync, mkdirSync, mkdtempSync, readdirSync, readFileSync, rmSync, writeFileSync } from 'node:fs';
import { createRequire } from 'node:module';
import http from 'node:http';
import https from 'node:https';
import { createServer } from 'node:net';
import { tmpdir } from 'node:os';
import { dirname, isAbsolute, join, resolve } from 'node:path';
import { createInterface } from 'node:readline';
import { fileURLToPath } from 'node:url';
import { chromium } from 'playwright-core';

export const HERE = dirname(fileURLToPath(import.meta.url));
export const REPO = resolve(HERE, '../..');
export const OUT = join(HERE, 'out');

/** The extension's sources, loaded unpacked into Chromium. */
export const EXTENSION_DIR = join(REPO, 'extension');
/** The extension's ID (extension/EXTENSION_ID). */
export const EXTENSION_ID = readFileSync(join(EXTENSION_DIR, 'EXTENSION_ID'), 'utf8').trim();
/** Where Chromium reads machine-wide managed policy. */
export const POLICY_DIR = '/etc/chromium/policies/managed';

/** What is running, for cleanup and the failure report. */
const state = {
  /** Lines the server printed. @type {string[]} */
  serverLog: [],
  /** @type {import('node:child_process').ChildProcess | null} */
  server: null,
  /** @type {import('playwright-core').Browser | null} */
  browser: null,
  /** @type {import('playwright-core').Page | null} */
  page: null,
  workDir: '',
  /** Extra cleanup steps registered by a test, run first, newest first. @type {(() => Promise<void> | void)[]} */
  cleanups: [],
};

/**
 * Registers a cleanup step (stopping a process, removing a file) that runs
 * when the test ends, passes or fails.
 * @param {() => Promise<void> | void} fn
 */
export function onCleanup(fn) {
  state.cleanups.push(fn);
}

/**
 * Adds lines to the failure report's server log (e.g. another process's output).
 * @param {string} line
 */
export function logLine(line) {
  state.serverLog.push(line);
}

/** Prints a progress line. */
export function step(text) {
  console.log(`[e2e] ${text}`);
}

/**
 * Polls `fn` every 250 ms until it returns a truthy value, which it resolves
 * with; fails after `timeout` ms, with the last value or error.
 * @template T
 * @param {string} what
 * @param {() => Promise<T> | T} fn
 * @param {number} [timeout]
 * @returns {Promise<T>}
 */
export async function until(what, fn, timeout = 30_000) {
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
    if (Date.now() > deadline) throw new Error(`timed out waiting for ${what} (last: ${last instanceof Error ? last.message : JSON.stringify(last)})`);
    await new Promise((ok) => setTimeout(ok, 250));
  }
}

/**
 * The base64 SHA-256 of a certificate's public key, as Chromium's
 * --ignore-certificate-errors-spki-list takes it (to trust the server's
 * self-signed certificate and nothing else).
 * @param {string} certPem
 */
export function spkiHash(certPem) {
  const spki = new X509Certificate(certPem).publicKey.export({ type: 'spki', format: 'der' });
  return createHash('sha256').update(spki).digest('base64');
}

/** Switches every headless test browser takes: no sandbox (root in CI), no GPU, nothing fetched from outside. */
const QUIET_ARGS = ['--no-sandbox', '--disable-gpu', '--disable-quic', '--no-first-run', '--disable-background-networking',
  '--disable-component-update', '--disable-sync'];

/**
 * Runs `start` (a Chromium launch) up to three times. On a loaded 2-core CI
 * machine Chromium has now and then died while starting ("Target page,
 * context or browser has been closed" from launch, crashpad lines in its
 * log), failing a test that never reached the product. A launch holds no
 * test state, so trying again hides nothing; a failure after the launch is
 * not retried.
 * @template T
 * @param {string} what
 * @param {() => Promise<T>} start
 * @returns {Promise<T>}
 */
async function launchRetrying(what, start) {
  for (let attempt = 1; ; attempt++) {
    try {
      return await start();
    } catch (err) {
      if (attempt >= 3) throw err;
      const first = String(err instanceof Error ? err.message : err).split('\n')[0];
      step(`${what}: Chromium did not start (${first}); starting it again`);
      logLine(`[e2e] ${what}: Chromium launch ${attempt} failed: ${first}`);
      await new Promise((ok) => setTimeout(ok, 1000 * attempt));
    }
  }
}

/**
 * Headless Chromium (old headless: no extensions), started as
 * launchRetrying says.
 * @param {string[]} [extraArgs]
 * @returns {Promise<import('playwright-core').Browser>}
 */
export function launchChromium(extraArgs = []) {
  return launchRetrying('browser', () => chromium.launch({
    executablePath: process.env.CHROMIUM || '/usr/bin/chromium',
    headless: true,
    args: [...QUIET_ARGS, ...extraArgs],
  }));
}

/**
 * Chromium (new headless) with the unpacked extension in `extensionDir`
 * loaded, in the persistent profile `userDataDir`; *.test names resolve to
 * 127.0.0.1. Started as launchRetrying says.
 * @param {string} userDataDir
 * @param {{viewport: {width: number, height: number}, extensionDir?: string, args?: string[]}} opts
 * @returns {Promise<import('playwright-core').BrowserContext>}
 */
export function launchPersistent(userDataDir, { viewport, extensionDir = EXTENSION_DIR, args = [] }) {
  return launchRetrying('extension browser', () => chromium.launchPersistentContext(userDataDir, {
    executablePath: process.env.CHROMIUM || '/usr/bin/chromium',
    headless: false,
    viewport,
    args: ['--headless=new', `--disable-extensions-except=${extensionDir}`, `--load-extension=${extensionDir}`,
      '--host-resolver-rules=MAP *.test 127.0.0.1', ...QUIET_ARGS, ...args],
  }));
}

/**
 * Writes the extension's managed configuration (`server`, `enrollment_token`,
 * ...) as Chromium policy file `name` under POLICY_DIR, removed at cleanup.
 * Needs root.
 * @param {string} name e.g. "lectern-chromebook-test.json"
 * @param {Record<string, unknown>} config
 */
export function writeExtensionPolicy(name, config) {
  const file = join(POLICY_DIR, name);
  mkdirSync(POLICY_DIR, { recursive: true });
  writeFileSync(file, JSON.stringify({ '3rdparty': { extensions: { [EXTENSION_ID]: config } } }, null, 2));
  onCleanup(() => rmSync(file, { force: true }));
}

/**
 * Chromium (new headless) with the extension loaded unpacked, in the
 * persistent profile `userDataDir`; *.test names resolve to 127.0.0.1.
 * Resolves with the context and the extension's service worker, whose
 * console lines go to `log` (the last 200 kept).
 * @param {string} userDataDir
 * @param {{spki: string, log: string[]}} opts spki: the server key to trust (spkiHash)
 */
export async function launchWithExtension(userDataDir, { spki, log }) {
  const ctx = await launchPersistent(userDataDir, {
    viewport: { width: 1280, height: 800 },
    args: [`--ignore-certificate-errors-spki-list=${spki}`],
  });
  const isOurs = (w) => w.url().startsWith(`chrome-extension://${EXTENSION_ID}/`);
  const sw = ctx.serviceWorkers().find(isOurs) || await ctx.waitForEvent('serviceworker', { predicate: isOurs, timeout: 20_000 });
  sw.on('console', (m) => {
    log.push(m.text());
    if (log.length > 200) log.shift();
  });
  return { ctx, sw };
}

/**
 * Finds a free TCP port on 127.0.0.1.
 * @returns {Promise<number>}
 */
export function freePort() {
  return new Promise((ok, fail) => {
    const srv = createServer();
    srv.once('error', fail);
    srv.listen(0, '127.0.0.1', () => {
      const { port } = /** @type {import('node:net').AddressInfo} */ (srv.address());
      srv.close(() => ok(port));
    });
  });
}

/**
 * Starts `lectern-server demo` and resolves with the console URL it prints.
 * @param {{agents: number, password: string, dataDir?: string, config?: string}} opts
 *   dataDir: keep the server's data (certificate, database) there;
 *   config: top-level server.toml lines (e.g. "remote_view_ask_secs = 120"),
 *   written into a data directory made first with `lectern-server init`
 * @returns {Promise<string>}
 */
export async function startServer({ agents, password, dataDir, config }) {
  const bin = process.env.LECTERN_SERVER_BIN || 'target/debug/lectern-server';
  const binPath = isAbsolute(bin) ? bin : resolve(REPO, bin);
  const port = await freePort();
  state.workDir = mkdtempSync(join(tmpdir(), 'lectern-e2e-'));
  if (config) {
    dataDir ||= join(state.workDir, 'data');
    // The demo's own school, so the demo finds the directory ready.
    execFileSync(binPath, ['init', '--data-dir', dataDir, '--school', 'Hillside Demo School', '--password', password,
      '--listen', `127.0.0.1:${port}`], { stdio: 'ignore' });
    // Each key replaces the line init wrote for it, or goes first (before any
    // [table], where top-level keys must be).
    const file = join(dataDir, 'server.toml');
    let text = readFileSync(file, 'utf8');
    for (const line of config.trim().split('\n')) {
      const key = line.split('=')[0].trim();
      const re = new RegExp(`^${key}\\s*=.*$`, 'm');
      text = re.test(text) ? text.replace(re, line.trim()) : `${line.trim()}\n${text}`;
    }
    writeFileSync(file, text);
  }
  const args = ['demo', '--listen', `127.0.0.1:${port}`, '--agents', String(agents), '--password', password];
  if (dataDir) args.push('--data-dir', dataDir);
  step(`starting ${binPath} ${args.join(' ')}`);
  // Its own process group, so that everything it starts is stopped with it.
  const server = spawn(binPath, args, { cwd: state.workDir, detached: true, stdio: ['ignore', 'pipe', 'pipe'] });
  state.server = server;

  return new Promise((ok, fail) => {
    const timer = setTimeout(() => fail(new Error('the server printed no "Console:" line within 60 s')), 60_000);
    server.once('error', (err) => {
      clearTimeout(timer);
      fail(new Error(`cannot start ${binPath}: ${err.message}`));
    });
    server.once('exit', (code, signal) => {
      clearTimeout(timer);
      fail(new Error(`the server exited early (code ${code}, signal ${signal})`));
    });
    createInterface({ input: server.stderr }).on('line', (line) => state.serverLog.push(line));
    createInterface({ input: server.stdout }).on('line', (line) => {
      state.serverLog.push(line);
      const m = /Console:\s*(https:\/\/\S+)/.exec(line);
      if (m) {
        clearTimeout(timer);
        ok(m[1]);
      }
    });
  });
}

/** Stops the server (its whole process group), waiting up to 5 s. */
async function stopServer() {
  const child = state.server;
  state.server = null;
  if (!child || child.exitCode !== null || child.signalCode !== null) return;
  const exited = new Promise((ok) => child.once('exit', ok));
  const signal = (sig) => {
    try {
      process.kill(-child.pid, sig);
    } catch {
      try { child.kill(sig); } catch { /* already gone */ }
    }
  };
  signal('SIGTERM');
  const timer = setTimeout(() => signal('SIGKILL'), 5000);
  await exited;
  clearTimeout(timer);
}

/**
 * Launches headless Chromium and opens a page that records uncaught errors
 * and CSP violations, and accepts every confirm() dialog.
 * @returns {Promise<{page: import('playwright-core').Page, pageErrors: string[]}>}
 */
export async function openBrowser() {
  state.browser = await launchChromium();
  const context = await state.browser.newContext({ ignoreHTTPSErrors: true, viewport: { width: 1440, height: 900 } });
  const page = await context.newPage();
  state.page = page;
  /** @type {string[]} */
  const pageErrors = [];
  page.on('pageerror', (err) => pageErrors.push(`uncaught: ${err.message}`));
  page.on('console', (msg) => {
    if (msg.type() === 'error' && /Content Security Policy/i.test(msg.text())) pageErrors.push(`CSP: ${msg.text()}`);
  });
  page.on('dialog', (dialog) => dialog.accept());
  return { page, pageErrors };
}

/**
 * Opens the console, is sent to the login page, and signs in as admin.
 * @param {import('playwright-core').Page} page
 * @param {string} consoleUrl
 * @param {string} password
 */
export async function signIn(page, consoleUrl, password) {
  await page.goto(consoleUrl);
  await page.waitForURL((url) => url.pathname === '/login', { timeout: 15_000 });
  await page.fill('#username', 'admin');
  await page.fill('#password', password);
  await page.click('#login-button');
  await page.waitForURL((url) => url.pathname === '/', { timeout: 15_000 });
  step('signed in');
}

/**
 * Waits until the grid has `count` tiles, each with a live thumbnail.
 * @param {import('playwright-core').Page} page
 * @param {number} count
 * @param {number} [timeout]
 */
export async function waitForThumbnails(page, count, timeout = 60_000) {
  try {
    await page.waitForFunction((count) => {
      const imgs = [...document.querySelectorAll('.tile img.thumb')];
      return document.querySelectorAll('.tile').length === count && imgs.length === count
        && imgs.every((img) => img.naturalWidth > 0);
    }, count, { timeout });
  } catch (err) {
    const state = await page.$$eval('.tile', (tiles) => ({
      tiles: tiles.length,
      withThumbnail: tiles.filter((t) => t.querySelector('img.thumb')?.naturalWidth > 0).length,
      stream: document.getElementById('stream-status')?.textContent,
    }));
    throw new Error(`waiting for ${count} tiles with thumbnails: ${JSON.stringify(state)}`, { cause: err });
  }
}

/** Frees the browser, the server and the scratch folder. */
async function cleanup() {
  while (state.cleanups.length) {
    const fn = state.cleanups.pop();
    try {
      await fn();
    } catch (err) {
      console.error(`cleanup: ${err && err.message ? err.message : err}`);
    }
  }
  if (state.browser) await state.browser.close().catch(() => {});
  state.browser = null;
  state.page = null;
  await stopServer();
  if (state.workDir) rmSync(state.workDir, { recursive: true, force: true });
  state.workDir = '';
}

/**
 * Sets the page a failure screenshot is taken of.
 * @param {import('playwright-core').Page | null} page
 */
export function setFailurePage(page) {
  state.page = page;
}

/**
 * Reports a failure, with a screenshot and the server's last lines.
 * @param {string} name the test's name, for the screenshot's file name
 * @param {unknown} err
 */
async function fail(name, err) {
  console.error(`FAIL: ${err && err.stack ? err.stack : err}`);
  if (err && err.cause) console.error(`  cause: ${err.cause.message ?? err.cause}`);
  if (state.page) {
    const file = join(OUT, `${name}-failure.png`);
    try {
      mkdirSync(OUT, { recursive: true });
      await state.page.screenshot({ path: file, timeout: 5_000 });
      console.error(`screenshot: ${file}`);
    } catch { /* no screenshot */ }
  }
  if (state.serverLog.length) console.error(`--- server output (last 40 lines) ---\n${state.serverLog.slice(-40).join('\n')}`);
}

/**
 * Runs a test: a time limit, cleanup on Ctrl-C, a report on failure, and
 * the process's exit status (0 and "PASS" when it passed).
 * @param {string} name e.g. "console"
 * @param {number} timeoutMs
 * @param {() => Promise<void>} body
 */
export async function runTest(name, timeoutMs, body) {
  mkdirSync(OUT, { recursive: true });
  const guard = setTimeout(async () => {
    await fail(name, new Error(`the test took longer than ${timeoutMs / 1000} s`));
    await cleanup();
    process.exit(1);
  }, timeoutMs);

  for (const sig of ['SIGINT', 'SIGTERM']) {
    process.on(sig, async () => {
      await cleanup();
      process.exit(130);
    });
  }

  try {
    await body();
    await cleanup();
    clearTimeout(guard);
    console.log(`PASS (${name})`);
    process.exit(0);
  } catch (err) {
    clearTimeout(guard);
    await fail(name, err);
    await cleanup();
    process.exit(1);
  }
}

/**
 * Opens a console page the way a person does: its section's link in the top
 * navigation (unless already in that section), then the page's link in the
 * section's sub-navigation (unless the section's link led there). Waits
 * until the page is marked current.
 * @param {import('playwright-core').Page} page
 * @param {'classroom' | 'lessons' | 'safeguarding' | 'computers' | 'admin'} section
 * @param {string} path e.g. `/users`
 */
export async function openConsolePage(page, section, path) {
  const inSection = await page.locator(`nav.pagenav a.current[data-section="${section}"]`).count();
  if (!inSection) {
    const link = page.locator(`nav.pagenav a[data-section="${section}"]`);
    const target = new URL((await link.getAttribute('href')) ?? '/', page.url()).pathname;
    await link.click();
    await page.waitForURL((u) => u.pathname === target, { timeout: 15_000 });
  }
  if (new URL(page.url()).pathname !== path) {
    await page.click(`nav.subnav a[href="${path}"]`);
    await page.waitForURL((u) => u.pathname === path, { timeout: 15_000 });
  }
  await page.waitForSelector(`nav a[href="${path}"][aria-current="page"]`, { timeout: 10_000 });
}

/** The WCAG 2.0 and 2.1 A and AA rules every page is checked against. */
export const AXE_TAGS = ['wcag2a', 'wcag2aa', 'wcag21a', 'wcag21aa'];
let axeSource = '';

/**
 * Runs axe-core on the page (or only inside the `include` selector) and fails
 * on any violation of {@link AXE_TAGS}.
 * @param {import('playwright-core').Page} page
 * @param {string} what said in the failure and the log
 * @param {string} [include]
 */
export async function checkAxe(page, what, include) {
  axeSource ||= createRequire(import.meta.url)('axe-core').source;
  if (!(await page.evaluate(() => 'axe' in window))) await page.evaluate(axeSource);
  const found = await page.evaluate(async ({ tags, include }) => {
    // @ts-ignore axe is injected above
    const result = await window.axe.run(include ? { include: [include] } : document, { runOnly: { type: 'tag', values: tags } });
    return result.violations.map((/** @type {any} */ v) => `${v.id}: ${v.nodes.map((/** @type {any} */ n) => n.target.join(' ')).join(', ')}`);
  }, { tags: AXE_TAGS, include });
  assert.deepEqual(found, [], `axe on ${what}`);
  step(`axe: ${what} passes`);
}

/**
 * Starts a process that is killed at cleanup; its output goes to the failure
 * log (read line by line, so a chatty child never blocks on a full pipe).
 * @param {string} cmd
 * @param {string[]} args
 * @param {object} [opts] more `spawn` options
 */
export function startChild(cmd, args, opts = {}) {
  const child = spawn(cmd, args, { stdio: ['ignore', 'pipe', 'pipe'], ...opts });
  const name = cmd.split('/').pop();
  for (const out of [child.stdout, child.stderr]) {
    createInterface({ input: out }).on('line', (l) => logLine(`[${name}] ${l}`));
  }
  onCleanup(() => {
    if (child.exitCode === null) child.kill('SIGKILL');
  });
  return child;
}

/**
 * Starts Xvfb on a free display of this size; resolves with its name (":N").
 * @param {{ width: number, height: number }} screen
 */
export async function startXvfb(screen) {
  const x = startChild('Xvfb', ['-displayfd', '1', '-screen', '0', `${screen.width}x${screen.height}x24`, '-nolisten', 'tcp', '-noreset']);
  const line = await new Promise((ok, fail) => {
    const timer = setTimeout(() => fail(new Error('Xvfb reported no display within 20 s')), 20_000);
    createInterface({ input: x.stdout }).once('line', (l) => {
      clearTimeout(timer);
      ok(l);
    });
  });
  return `:${line.trim()}`;
}

/**
 * Runs an X client on `display` and returns what it printed.
 * @param {string} display
 * @param {string} cmd
 * @param {string[]} args
 */
export function xRun(display, cmd, args) {
  return execFileSync(cmd, args, { env: { ...process.env, DISPLAY: display }, encoding: 'utf8' });
}

/**
 * Whether a visible window on `display` has exactly this name.
 * @param {string} display
 * @param {string} name
 */
export function xWindowShown(display, name) {
  try {
    return xRun(display, 'xdotool', ['search', '--onlyvisible', '--name', `^${name}$`]).trim() !== '';
  } catch {
    return false; // xdotool exits 1 when nothing matches
  }
}

/**
 * Screenshots `OUT/<name>-1440.png` and `OUT/<name>-1024.png`, then puts the
 * 1440×900 viewport back.
 * @param {import('playwright-core').Page} page
 * @param {string} name
 */
export async function shootWide(page, name) {
  await page.screenshot({ path: join(OUT, `${name}-1440.png`) });
  await page.setViewportSize({ width: 1024, height: 768 });
  await page.screenshot({ path: join(OUT, `${name}-1024.png`) });
  await page.setViewportSize({ width: 1440, height: 900 });
}

/**
 * A REST client (as admin) trusting exactly the server's certificate.
 * @param {string} base
 * @param {string} certPem
 * @param {string} password the admin's password
 */
export async function restClient(base, certPem, password, school) {
  const u = new URL(base);
  const call = (method, path, body, token) => new Promise((ok, fail) => {
    const data = body === undefined ? null : Buffer.from(JSON.stringify(body));
    const req = https.request({
      host: u.hostname, port: u.port, path, method, ca: certPem, checkServerIdentity: () => undefined,
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
  const { token } = await call('POST', '/api/v1/session', { username: 'admin', password, ...(school ? { school } : {}) });
  return { api: (method, path, body) => call(method, path, body, token) };
}

/**
 * Waits until no other test's lectern-*.json is in the shared policy folder
 * (`policyName` is this test's own).
 * @param {string} policyName
 */
export async function policyFolderAlone(policyName) {
  await until(`${POLICY_DIR} free of other tests' policy files`, () => !existsSync(POLICY_DIR)
    || readdirSync(POLICY_DIR).every((f) => !/^lectern-.*\.json$/.test(f) || f === policyName), 10 * 60_000);
}

/**
 * One local web site for every *.test name (Chromium maps *.test to
 * 127.0.0.1 in launchWithExtension): each page says its host. Stopped at
 * cleanup.
 * @returns {Promise<{url: (host: string, path?: string) => string}>}
 */
export async function startPlainSites() {
  const srv = http.createServer((req, res) => {
    const host = (req.headers.host || '').split(':')[0];
    res.setHeader('Content-Type', 'text/html; charset=utf-8');
    res.end(`<!doctype html><title>Page on ${host}</title><h1>${host}</h1>`);
  });
  await new Promise((ok) => srv.listen(0, '127.0.0.1', ok));
  onCleanup(() => new Promise((ok) => srv.close(() => ok())));
  const port = /** @type {import('node:net').AddressInfo} */ (srv.address()).port;
  return { url: (host, path = '/') => `http://${host}:${port}${path}` };
}

/**
 * Navigates, tolerating the abort a redirect to an extension page causes;
 * resolves with where the page ended up.
 * @param {import('playwright-core').Page} page
 * @param {string} url
 */
export async function goThroughRedirects(page, url) {
  try {
    await page.goto(url, { timeout: 15_000, waitUntil: 'load' });
  } catch (err) {
    if (!/ERR_ABORTED|ERR_BLOCKED|interrupted by another navigation/i.test(err.message)) throw err;
  }
  await page.waitForLoadState('load').catch(() => {});
  return page.url();
}
