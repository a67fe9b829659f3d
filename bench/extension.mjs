// Extension vs desktop agent: CPU, memory and bytes per thumbnail, idle and
// while one console watches at the server's default rate (320 px, 1 per s).
//
// Starts a real `lectern-server demo` (target/debug, see tests/e2e/lib.mjs),
// then, one device at a time:
// - the extension in standalone (Chromebook) mode: Chromium (--headless=new)
//   with the unpacked extension configured through a real managed-policy file,
//   showing a test page; measured: its extension renderer process (the one
//   whose command line has --extension-process; the service worker runs
//   there), the browser process (captureVisibleTab's read-back and the
//   encoding requests go through it) and the whole Chromium process tree;
// - the desktop agent: `lectern-agent run --backend x11` on an Xvfb display
//   (1280x800) where a plain Chromium shows the same test page; measured: the
//   agent process.
// Each device gets RUNS pairs of windows of WINDOW_S seconds: idle (no
// console stream open) then watched (a console stream sends {"watch":[id]}
// from a signed-in console origin; the binary frames it receives are counted).
// CPU = (utime+stime) delta from /proc/<pid>/stat over the window; RSS = the
// mean of VmRSS samples from /proc/<pid>/status (one per second), and PSS
// from /proc/<pid>/smaps_rollup (sums over a process tree without counting
// shared pages twice).
// Writes bench/results/extension-<date>.json and prints a summary with medians.
//
//   cargo build -p lectern-server -p lectern-agent  (extension/keywords.wasm is built if missing)
//   sudo node bench/extension.mjs            # RUNS=3 WINDOW_S=30
// Needs root (writes /etc/chromium/policies/managed), Xvfb and Chromium, and
// tests/e2e/node_modules (cd tests/e2e && npm install).

import assert from 'node:assert/strict';
import { spawn, execFileSync } from 'node:child_process';
import { X509Certificate, createHash } from 'node:crypto';
import { existsSync, mkdirSync, mkdtempSync, readFileSync, readdirSync, rmSync, writeFileSync } from 'node:fs';
import http from 'node:http';
import https from 'node:https';
import { cpus, loadavg, tmpdir } from 'node:os';
import { dirname, join, resolve } from 'node:path';
import { fileURLToPath } from 'node:url';
import { chromium } from '../tests/e2e/node_modules/playwright-core/index.mjs';
import { REPO, onCleanup, openBrowser, runTest, signIn, startServer, step } from '../tests/e2e/lib.mjs';

const HERE = dirname(fileURLToPath(import.meta.url));
const EXT = resolve(REPO, 'extension');
const EXT_ID = readFileSync(join(EXT, 'EXTENSION_ID'), 'utf8').trim();
const AGENT_BIN = resolve(REPO, process.env.LECTERN_AGENT_BIN || 'target/debug/lectern-agent');
const PASSWORD = 'bench-ext-4321';
const POLICY_DIR = '/etc/chromium/policies/managed';
const POLICY_FILE = join(POLICY_DIR, 'lectern-bench-extension.json');
const RUNS = Number(process.env.RUNS || 3);
const WINDOW_S = Number(process.env.WINDOW_S || 30);
const CLK_TCK = Number(execFileSync('getconf', ['CLK_TCK'], { encoding: 'utf8' }).trim());
const W = 1280;
const H = 800;

const scratch = mkdtempSync(join(tmpdir(), 'lectern-bench-ext-'));
onCleanup(() => rmSync(scratch, { recursive: true, force: true }));
const sleep = (ms) => new Promise((ok) => setTimeout(ok, ms));

async function until(what, fn, timeout = 60_000) {
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
    await sleep(250);
  }
}

/** A page with text, colours and a gradient: what both devices show. */
function startSite() {
  const body = '<p>' + 'The quick brown fox jumps over the lazy dog. Photosynthesis converts light into chemical energy. '.repeat(6) + '</p>';
  const html = `<!doctype html><html><head><title>Lesson page</title></head><body style="margin:0;font:18px sans-serif">
<div style="height:160px;background:linear-gradient(90deg,#1d4ed8,#10b981,#f59e0b)"></div>
<h1 style="margin:24px">Lesson 4: Plants and light</h1><div style="margin:24px;columns:2">${body.repeat(4)}</div></body></html>`;
  const srv = http.createServer((req, res) => {
    res.setHeader('Content-Type', 'text/html; charset=utf-8');
    res.end(html);
  });
  return new Promise((ok) => srv.listen(0, '127.0.0.1', () => {
    onCleanup(() => new Promise((done) => srv.close(() => done())));
    ok(`http://lesson.test:${srv.address().port}/`);
  }));
}

/** Minimal REST client trusting exactly the server's certificate. */
async function restClient(base, certPem) {
  const u = new URL(base);
  const call = (method, path, body, token) => new Promise((ok, fail) => {
    const data = body === undefined ? null : Buffer.from(JSON.stringify(body));
    const req = https.request({
      host: u.hostname, port: u.port, path, method, ca: certPem, checkServerIdentity: () => undefined,
      headers: { Accept: 'application/json', ...(data ? { 'Content-Type': 'application/json', 'Content-Length': data.length } : {}), ...(token ? { Authorization: `Bearer ${token}` } : {}) },
    }, (res) => {
      let text = '';
      res.setEncoding('utf8');
      res.on('data', (c) => { text += c; });
      res.on('end', () => (res.statusCode >= 400 ? fail(new Error(`${method} ${path} → ${res.statusCode}: ${text}`)) : ok(text ? JSON.parse(text) : null)));
    });
    req.on('error', fail);
    if (data) req.write(data);
    req.end();
  });
  const { token } = await call('POST', '/api/v1/session', { username: 'admin', password: PASSWORD });
  return { api: (method, path, body) => call(method, path, body, token), devices: () => call('GET', '/api/v1/devices', undefined, token) };
}

// ---------------------------------------------------------------------------
// /proc

function procStat(pid) {
  const s = readFileSync(`/proc/${pid}/stat`, 'utf8');
  const f = s.slice(s.lastIndexOf(')') + 2).split(' ');
  return { ppid: Number(f[1]), ticks: Number(f[11]) + Number(f[12]) };
}
function rssKiB(pid) {
  const m = /VmRSS:\s+(\d+)/.exec(readFileSync(`/proc/${pid}/status`, 'utf8'));
  return m ? Number(m[1]) : 0;
}
/** Proportional set size: shared pages divided among their sharers. */
function pssKiB(pid) {
  const m = /^Pss:\s+(\d+)/m.exec(readFileSync(`/proc/${pid}/smaps_rollup`, 'utf8'));
  return m ? Number(m[1]) : 0;
}
function cmdline(pid) {
  // Chromium's child processes rewrite their title: one string, spaces between.
  try { return readFileSync(`/proc/${pid}/cmdline`, 'utf8').split(/[\0 ]/).filter(Boolean); } catch { return []; }
}
function allPids() {
  return readdirSync('/proc').filter((d) => /^\d+$/.test(d)).map(Number);
}
/** pid and every descendant. */
function tree(root) {
  const kids = new Map();
  for (const p of allPids()) {
    try {
      const { ppid } = procStat(p);
      if (!kids.has(ppid)) kids.set(ppid, []);
      kids.get(ppid).push(p);
    } catch { /* gone */ }
  }
  const out = [];
  const stack = [root];
  while (stack.length) {
    const p = stack.pop();
    out.push(p);
    stack.push(...(kids.get(p) || []));
  }
  return out;
}

/**
 * Measures groups of pids over `seconds`: CPU % of one core from the
 * utime+stime delta, and the mean RSS (MiB) of one-per-second samples.
 * @param {Record<string, () => number[]>} groups name → pids (re-read each sample)
 */
async function measure(groups, seconds) {
  const ticks = (pids) => pids.reduce((a, p) => { try { return a + procStat(p).ticks; } catch { return a; } }, 0);
  const rss = (pids) => pids.reduce((a, p) => { try { return a + rssKiB(p); } catch { return a; } }, 0);
  const pss = (pids) => pids.reduce((a, p) => { try { return a + pssKiB(p); } catch { return a; } }, 0);
  const start = Object.fromEntries(Object.entries(groups).map(([k, f]) => [k, ticks(f())]));
  const samples = Object.fromEntries(Object.keys(groups).map((k) => [k, []]));
  const pssSamples = Object.fromEntries(Object.keys(groups).map((k) => [k, []]));
  const t0 = Date.now();
  for (let i = 0; i < seconds; i++) {
    await sleep(1000);
    for (const [k, f] of Object.entries(groups)) {
      const pids = f();
      samples[k].push(rss(pids));
      pssSamples[k].push(pss(pids));
    }
  }
  const elapsed = (Date.now() - t0) / 1000;
  const mib = (xs) => +(xs.reduce((a, b) => a + b, 0) / xs.length / 1024).toFixed(1);
  const out = {};
  for (const [k, f] of Object.entries(groups)) {
    const d = ticks(f()) - start[k];
    out[k] = { cpu_pct: +(100 * d / CLK_TCK / elapsed).toFixed(2), rss_mib: mib(samples[k]), pss_mib: mib(pssSamples[k]) };
  }
  return out;
}

// ---------------------------------------------------------------------------
// The watching console: a stream opened from a signed-in console origin.

async function openWatch(page, deviceId) {
  await page.evaluate((id) => new Promise((ok, fail) => {
    const ws = new WebSocket(`wss://${location.host}/api/v1/stream`);
    ws.binaryType = 'arraybuffer';
    const st = { frames: 0, bytes: 0, jpegBytes: 0, counting: false };
    globalThis.benchWatch = { ws, st };
    ws.onopen = () => { ws.send(JSON.stringify({ watch: [id] })); ok(); };
    ws.onerror = () => fail(new Error('stream error'));
    ws.onmessage = (e) => {
      if (!(e.data instanceof ArrayBuffer) || !st.counting) return;
      const b = new Uint8Array(e.data);
      if (b[0] !== 1) return; // thumbnails only
      st.frames += 1;
      st.bytes += b.length;
      st.jpegBytes += b.length - 9; // kind (1) + device id (8)
    };
  }), deviceId);
}
const setCounting = (page, on) => page.evaluate((on) => { globalThis.benchWatch.st.counting = on; }, on);
const watchStats = (page) => page.evaluate(() => ({ ...globalThis.benchWatch.st }));
const closeWatch = (page) => page.evaluate(() => globalThis.benchWatch.ws.close());

/** RUNS × (idle window, watched window) for one device. */
async function measureDevice(name, deviceId, groups, consolePage) {
  const runs = [];
  for (let r = 1; r <= RUNS; r++) {
    const load0 = loadavg()[0];
    const idle = await measure(groups, WINDOW_S);
    await openWatch(consolePage, deviceId);
    await sleep(5000); // the device hears start_thumbnails and settles
    await setCounting(consolePage, true);
    const watched = await measure(groups, WINDOW_S);
    await setCounting(consolePage, false);
    const s = await watchStats(consolePage);
    await closeWatch(consolePage);
    await sleep(5000); // stop_thumbnails reaches the device
    const thumbs = { frames: s.frames, per_s: +(s.frames / WINDOW_S).toFixed(2), mean_jpeg_bytes: s.frames ? Math.round(s.jpegBytes / s.frames) : null };
    runs.push({ run: r, loadavg_1m: +load0.toFixed(2), idle, watched, thumbs });
    step(`${name} run ${r}: idle ${JSON.stringify(idle)}; watched ${JSON.stringify(watched)}; ${JSON.stringify(thumbs)}`);
  }
  return runs;
}

const median = (xs) => {
  const s = xs.filter((x) => x !== null).sort((a, b) => a - b);
  if (!s.length) return null;
  return s.length % 2 ? s[(s.length - 1) / 2] : +((s[s.length / 2 - 1] + s[s.length / 2]) / 2).toFixed(2);
};
function summarize(runs) {
  const out = {};
  for (const phase of ['idle', 'watched']) {
    for (const g of Object.keys(runs[0][phase])) {
      out[`${phase}.${g}.cpu_pct`] = median(runs.map((r) => r[phase][g].cpu_pct));
      out[`${phase}.${g}.rss_mib`] = median(runs.map((r) => r[phase][g].rss_mib));
      out[`${phase}.${g}.pss_mib`] = median(runs.map((r) => r[phase][g].pss_mib));
    }
  }
  out['thumbs.per_s'] = median(runs.map((r) => r.thumbs.per_s));
  out['thumbs.mean_jpeg_bytes'] = median(runs.map((r) => r.thumbs.mean_jpeg_bytes));
  return out;
}

// ---------------------------------------------------------------------------

/** Waits until no other test's lectern-*.json is in the shared policy folder. */
async function policyFolderAlone() {
  await until('the managed-policy folder to be free of other tests\' files', () => {
    const foreign = existsSync(POLICY_DIR) ? readdirSync(POLICY_DIR).filter((f) => /^lectern-.*\.json$/.test(f) && f !== 'lectern-bench-extension.json') : [];
    if (foreign.length) step(`waiting: ${foreign.join(' ')} in ${POLICY_DIR}`);
    return foreign.length === 0;
  }, 10 * 60_000);
}

async function benchExtension(ctx0) {
  const { base, spki, rest, page: consolePage, site } = ctx0;
  await policyFolderAlone();
  const tok = await rest.api('POST', '/api/v1/enrollment-tokens', { label: 'bench extension', uses: 1, expires_hours: 1 });
  mkdirSync(POLICY_DIR, { recursive: true });
  writeFileSync(POLICY_FILE, JSON.stringify({ '3rdparty': { extensions: { [EXT_ID]: { server: `127.0.0.1:${new URL(base).port}`, enrollment_token: tok.token, hostname: 'BENCH-EXT' } } } }));
  onCleanup(() => rmSync(POLICY_FILE, { force: true }));
  const profile = join(scratch, 'student');
  const ctx = await chromium.launchPersistentContext(profile, {
    executablePath: process.env.CHROMIUM || '/usr/bin/chromium',
    headless: false,
    viewport: { width: W, height: H },
    args: ['--headless=new', '--no-sandbox', `--disable-extensions-except=${EXT}`, `--load-extension=${EXT}`,
      '--host-resolver-rules=MAP *.test 127.0.0.1', '--disable-background-networking', '--disable-component-update',
      '--no-first-run', '--disable-sync', '--disable-gpu', '--disable-quic', `--ignore-certificate-errors-spki-list=${spki}`],
  });
  onCleanup(() => ctx.close().catch(() => {}));
  const isOurs = (w) => w.url().startsWith(`chrome-extension://${EXT_ID}/`);
  const sw = ctx.serviceWorkers().find(isOurs) || await ctx.waitForEvent('serviceworker', { predicate: isOurs, timeout: 20_000 });
  const swLog = [];
  sw.on('console', (m) => { swLog.push(m.text()); if (swLog.length > 40) swLog.shift(); });
  onCleanup(() => { if (process.exitCode || swLog.length) console.error(`--- extension service worker (last lines) ---\n${swLog.slice(-15).join('\n')}`); });
  const device = await until('the extension to enroll', async () => (await rest.devices()).find((d) => d.hostname === 'BENCH-EXT' && d.online));
  const student = ctx.pages()[0] || await ctx.newPage();
  for (const p of ctx.pages()) if (p !== student) await p.close().catch(() => {});
  await student.goto(site);
  await student.bringToFront();
  const browserPid = allPids().find((p) => { const c = cmdline(p); return c.some((a) => a === `--user-data-dir=${profile}`) && !c.some((a) => a.startsWith('--type=')); });
  assert.ok(browserPid, 'found the Chromium browser process');
  const extPid = () => tree(browserPid).filter((p) => cmdline(p).includes('--extension-process'));
  if (extPid().length !== 1) {
    for (const p of tree(browserPid)) step(`${p}: ${cmdline(p).filter((a) => /^--(type|extension-process|renderer-client-id|utility-sub-type)/.test(a)).join(' ')}`);
  }
  assert.equal(extPid().length, 1, 'one extension renderer process');
  step(`extension: device ${device.id}; browser pid ${browserPid}, extension process ${extPid()[0]}`);
  await sleep(10_000); // enrollment and first policy settle
  const runs = await measureDevice('extension', device.id, {
    extension_process: extPid,
    browser_process: () => [browserPid],
    chromium_total: () => tree(browserPid),
  }, consolePage);
  await ctx.close();
  rmSync(POLICY_FILE, { force: true });
  return runs;
}

async function startXvfb() {
  const dir = mkdtempSync(join(scratch, 'x-'));
  const fd = join(dir, 'display');
  const child = spawn('sh', ['-c', `exec Xvfb -displayfd 3 -screen 0 ${W}x${H}x24 -nolisten tcp -noreset 3>"${fd}"`], { stdio: 'ignore', detached: true });
  onCleanup(() => { try { process.kill(-child.pid, 'SIGTERM'); } catch { /* gone */ } });
  await until('Xvfb', () => existsSync(fd) && readFileSync(fd, 'utf8').trim(), 20_000);
  return `:${readFileSync(fd, 'utf8').trim()}`;
}

async function benchAgent(ctx0) {
  const { base, fingerprint, rest, page: consolePage, site } = ctx0;
  const display = await startXvfb();
  // The same page on the X display, in a plain Chromium (kiosk, no extension).
  const shown = await chromium.launch({
    executablePath: process.env.CHROMIUM || '/usr/bin/chromium', headless: false, env: { ...process.env, DISPLAY: display },
    args: ['--no-sandbox', '--disable-gpu', '--kiosk', `--window-size=${W},${H}`, '--window-position=0,0', '--host-resolver-rules=MAP *.test 127.0.0.1', '--no-first-run', '--disable-background-networking'],
  });
  onCleanup(() => shown.close().catch(() => {}));
  const p = await (await shown.newContext({ viewport: null })).newPage();
  await p.goto(site);
  const tok = await rest.api('POST', '/api/v1/enrollment-tokens', { label: 'bench agent', uses: 1, expires_hours: 1 });
  const stateDir = join(scratch, 'agent');
  execFileSync(AGENT_BIN, ['enroll', '--server', `127.0.0.1:${new URL(base).port}`, '--fingerprint', fingerprint, '--token', tok.token, '--state-dir', stateDir, '--hostname', 'BENCH-X11'], { stdio: 'inherit' });
  const agent = spawn(AGENT_BIN, ['run', '--state-dir', stateDir, '--backend', 'x11', '--hostname', 'BENCH-X11'], { env: { ...process.env, DISPLAY: display }, stdio: ['ignore', 'ignore', 'inherit'] });
  onCleanup(() => { agent.kill('SIGTERM'); });
  const device = await until('the agent to connect', async () => (await rest.devices()).find((d) => d.hostname === 'BENCH-X11' && d.online));
  step(`agent: device ${device.id}, pid ${agent.pid}, display ${display}`);
  await sleep(10_000);
  const runs = await measureDevice('agent', device.id, { agent_process: () => [agent.pid] }, consolePage);
  agent.kill('SIGTERM');
  return runs;
}

async function main() {
  if (!(process.getuid && process.getuid() === 0)) throw new Error(`needs root to write ${POLICY_FILE}`);
  // The extension's keyword engine is a build output (not committed).
  if (!existsSync(join(EXT, 'keywords.wasm'))) execFileSync(join(REPO, 'scripts/build-extension-wasm.sh'), { stdio: 'inherit' });
  const site = await startSite();
  const dataDir = join(scratch, 'server');
  const consoleUrl = await startServer({ agents: 0, password: PASSWORD, dataDir });
  const base = new URL(consoleUrl).origin;
  const certPem = readFileSync(join(dataDir, 'cert.pem'), 'utf8');
  const cert = new X509Certificate(certPem);
  const spki = createHash('sha256').update(cert.publicKey.export({ type: 'spki', format: 'der' })).digest('base64');
  const rest = await restClient(base, certPem);
  // The console: signed in, then off the grid page (whose own stream would
  // watch every device), so that only the bench's stream watches.
  const { page } = await openBrowser();
  await signIn(page, consoleUrl, PASSWORD);
  await page.goto(`${base}/api/v1/devices`);
  const ctx0 = { base, spki, fingerprint: cert.fingerprint256, rest, page, site };

  const started = new Date().toISOString();
  const machine = { nproc: cpus().length, cpu: cpus()[0].model, loadavg_start: loadavg().map((x) => +x.toFixed(2)) };
  const extension = await benchExtension(ctx0);
  const agent = await benchAgent(ctx0);
  const result = {
    started, finished: new Date().toISOString(), machine: { ...machine, loadavg_end: loadavg().map((x) => +x.toFixed(2)) },
    config: { runs: RUNS, window_s: WINDOW_S, thumbnail: '320 px every 1000 ms (server default)', screen: `${W}x${H}`, chromium: execFileSync(process.env.CHROMIUM || '/usr/bin/chromium', ['--version'], { encoding: 'utf8' }).trim(), chromium_mode: '--headless=new', agent: AGENT_BIN },
    extension: { runs: extension, median: summarize(extension) },
    agent: { runs: agent, median: summarize(agent) },
  };
  mkdirSync(join(HERE, 'results'), { recursive: true });
  const file = join(HERE, 'results', `extension-${started.slice(0, 10)}.json`);
  writeFileSync(file, `${JSON.stringify(result, null, 2)}\n`);
  step(`medians: extension ${JSON.stringify(result.extension.median)}`);
  step(`medians: agent ${JSON.stringify(result.agent.median)}`);
  step(`wrote ${file}`);
}

await runTest('bench-extension', 30 * 60 * 1000, main);
