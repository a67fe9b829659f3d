// Live view benchmark, H.264 and JPEG side by side: a real lectern-agent
// (X11 backend) on a 1920x1080 Xvfb streams its screen to the console in
// headless Chromium over WSS on loopback.
//
// The X screen shows a clock (crates/x11/examples/screen_painter.rs `clock`):
// the time in ms as 24 black/white 64 px blocks, repainted every 4 ms, so
// every captured picture differs. In the console page the picture on view
// (the decoded canvas for H.264, the image for JPEG) is read every 5 ms;
// each new clock value read gives one glass-to-glass sample (the page's
// clock minus the painted one: capture, encoding, server, WebSocket,
// decoding and drawing, plus up to ~9 ms of paint and read cadence) and one
// picture for the rate. Bytes: the console's received binary frames for the
// device (the live picture and the grid's 320 px thumbnail of it).
// Agent CPU: (utime+stime) from /proc/<pid>/stat over the window, less the
// same measured with the grid alone (thumbnails only) just before.
//
// Each run measures H.264 then JPEG for WINDOW_S seconds each; RUNS runs;
// medians printed and written to bench/results/liveview.json.
//
//   bash bench/liveview.sh        # builds release binaries, then runs this
// Env: RUNS (3), WINDOW_S (10), LECTERN_SERVER_BIN, LECTERN_AGENT_BIN,
// SCREEN_PAINTER (release builds by default, see liveview.sh).

import { execFileSync, spawn } from 'node:child_process';
import { X509Certificate } from 'node:crypto';
import { mkdirSync, mkdtempSync, readFileSync, rmSync, writeFileSync } from 'node:fs';
import { cpus, tmpdir } from 'node:os';
import { join, resolve } from 'node:path';
import { createInterface } from 'node:readline';
import { REPO, onCleanup, openBrowser, runTest, signIn, startServer, step } from '../tests/e2e/lib.mjs';

const RUNS = Number(process.env.RUNS || 3);
const WINDOW_S = Number(process.env.WINDOW_S || 10);
const PASSWORD = 'bench-live-view-1';
const HOSTNAME = 'BENCH-X11';
const bin = (env, path) => resolve(REPO, process.env[env] || path);
const AGENT_BIN = bin('LECTERN_AGENT_BIN', 'target/release/lectern-agent');
const PAINTER = bin('SCREEN_PAINTER', 'target/release/examples/screen_painter');
const CLK_TCK = 100;

const scratch = mkdtempSync(join(tmpdir(), 'lectern-bench-live-'));
onCleanup(() => rmSync(scratch, { recursive: true, force: true }));
const sleep = (ms) => new Promise((ok) => setTimeout(ok, ms));

/** Starts a process in its own group, stopped at the end. */
function start(cmd, args, env = {}) {
  const child = spawn(cmd, args, { detached: true, stdio: ['ignore', 'pipe', 'pipe'], env: { ...process.env, ...env } });
  // Drained: a full pipe would block the child at its next log line.
  for (const s of [child.stdout, child.stderr]) s.on('data', () => {});
  onCleanup(() => { try { process.kill(-child.pid, 'SIGKILL'); } catch { /* gone */ } });
  return child;
}

/** Xvfb at 1920x1080 on a free display. @returns {Promise<string>} */
function startXvfb() {
  const x = start('Xvfb', ['-displayfd', '1', '-screen', '0', '1920x1080x24', '-nolisten', 'tcp']);
  return new Promise((ok) => createInterface({ input: x.stdout }).once('line', (l) => ok(`:${l.trim()}`)));
}

/** CPU seconds a process has used. @param {number} pid */
function cpuSeconds(pid) {
  const stat = readFileSync(`/proc/${pid}/stat`, 'utf8');
  const fields = stat.slice(stat.lastIndexOf(')') + 2).split(' ');
  return (Number(fields[11]) + Number(fields[12])) / CLK_TCK;
}

/** @param {number[]} xs */
function median(xs) {
  const s = [...xs].sort((a, b) => a - b);
  return s.length ? s[Math.floor(s.length / 2)] : NaN;
}

/** @param {number[]} xs @param {number} q */
function quantile(xs, q) {
  const s = [...xs].sort((a, b) => a - b);
  return s.length ? s[Math.min(s.length - 1, Math.floor(q * s.length))] : NaN;
}

/**
 * Counts the console stream's binary bytes per device id (kinds 1 and 4).
 * Runs in the page before its scripts.
 */
function countBytes() {
  const Native = window.WebSocket;
  // @ts-ignore: a page-global for the benchmark
  window.benchBytes = {};
  window.WebSocket = class extends Native {
    constructor(...args) {
      // @ts-ignore
      super(...args);
      this.addEventListener('message', (e) => {
        if (!(e.data instanceof ArrayBuffer) || e.data.byteLength < 9) return;
        const id = Number(new DataView(e.data).getBigInt64(1, false));
        // @ts-ignore
        window.benchBytes[id] = (window.benchBytes[id] || 0) + e.data.byteLength;
      });
    }
  };
}

/**
 * Reads the clock off the picture on view for `ms`; returns the latency of
 * each new value read and how many there were.
 * @param {import('playwright-core').Page} page
 * @param {number} ms
 */
function readClock(page, ms) {
  return page.evaluate((ms) => new Promise((done) => {
    const probe = document.createElement('canvas');
    probe.width = 24;
    probe.height = 1;
    const ctx = /** @type {CanvasRenderingContext2D} */ (probe.getContext('2d', { willReadFrequently: true }));
    /** @type {number[]} */
    const latencies = [];
    let last = -1;
    const end = performance.now() + ms;
    const timer = setInterval(() => {
      const screen = /** @type {HTMLElement} */ (document.getElementById('live-view-screen'));
      const video = screen.dataset.mode === 'video';
      const src = /** @type {HTMLCanvasElement | HTMLImageElement} */ (
        document.getElementById(video ? 'live-view-canvas' : 'live-view-image'));
      const w = src instanceof HTMLImageElement ? src.naturalWidth : src.width;
      if (w > 0) {
        // The blocks are 64 px on a 1920 px screen: scale for a smaller picture.
        const k = w / 1920;
        ctx.drawImage(src, 0, 0, 24 * 64 * k, 64 * k, 0, 0, 24, 1);
        const px = ctx.getImageData(0, 0, 24, 1).data;
        let v = 0;
        for (let i = 0; i < 24; i += 1) v = v * 2 + (px[i * 4] + px[i * 4 + 1] + px[i * 4 + 2] > 384 ? 1 : 0);
        if (v !== last) {
          last = v;
          const now = Date.now() % (1 << 24);
          const lat = (now - v + (1 << 24)) % (1 << 24);
          if (lat < 10_000) latencies.push(lat);
        }
      }
      if (performance.now() > end) {
        clearInterval(timer);
        done(latencies);
      }
    }, 5);
  }), ms);
}

/**
 * One window of one mode: opens the live view, waits for its first
 * picture, then measures.
 * @param {import('playwright-core').Page} page
 * @param {number} id device id
 * @param {number} agentPid
 * @param {'h264' | 'jpeg'} mode
 */
async function measure(page, id, agentPid, mode) {
  await page.evaluate(() => document.getElementById('live-view-close')?.click());
  await sleep(2000);
  // The grid alone: the agent's thumbnail work, to subtract.
  const idle0 = cpuSeconds(agentPid);
  await sleep(5000);
  const idleCpu = (cpuSeconds(agentPid) - idle0) / 5;

  await page.locator('.tile', { hasText: HOSTNAME }).locator('.live-view').click();
  await page.waitForSelector('#live-view-decision[data-decision="allowed"]', { timeout: 20_000 });
  const want = mode === 'h264' ? 'video' : 'jpeg';
  await page.waitForFunction((want) => {
    const s = document.getElementById('live-view-screen');
    return s && !s.hidden && s.dataset.mode === want;
  }, want, { timeout: 20_000 });
  await sleep(1500); // past the first keyframe and any rate change
  const bytes0 = await page.evaluate((id) => /** @type {any} */ (window).benchBytes[id] || 0, id);
  const cpu0 = cpuSeconds(agentPid);
  const t0 = Date.now();
  const lat = await readClock(page, WINDOW_S * 1000);
  const secs = (Date.now() - t0) / 1000;
  const cpu = (cpuSeconds(agentPid) - cpu0) / secs;
  const bytes = (await page.evaluate((id) => /** @type {any} */ (window).benchBytes[id] || 0, id)) - bytes0;
  return {
    mode,
    fps: lat.length / secs,
    latency_ms_median: median(lat),
    latency_ms_p95: quantile(lat, 0.95),
    bytes_per_s: Math.round(bytes / secs),
    agent_cpu_percent: Math.round((cpu - idleCpu) * 1000) / 10,
    agent_cpu_idle_percent: Math.round(idleCpu * 1000) / 10,
  };
}

runTest('bench-liveview', (RUNS * WINDOW_S * 2 + RUNS * 40 + 120) * 1000, async () => {
  const display = await startXvfb();
  start(PAINTER, ['clock', String(RUNS * (WINDOW_S * 2 + 30) + 120)], { DISPLAY: display });
  step(`Xvfb ${display} 1920x1080 with the clock`);
  const dataDir = join(scratch, 'server');
  const consoleUrl = await startServer({ agents: 0, password: PASSWORD, dataDir });
  const { page } = await openBrowser();
  await page.context().addInitScript(countBytes);
  await page.reload().catch(() => {});
  await signIn(page, consoleUrl, PASSWORD);
  const tok = await page.evaluate(async () => {
    const csrf = /** @type {HTMLMetaElement} */ (document.querySelector('meta[name="csrf-token"]')).content;
    const r = await fetch('/api/v1/enrollment-tokens', {
      method: 'POST', headers: { 'Content-Type': 'application/json', 'X-CSRF-Token': csrf },
      body: JSON.stringify({ label: 'bench', uses: 1, expires_hours: 1 }),
    });
    return r.json();
  });
  const fingerprint = new X509Certificate(readFileSync(join(dataDir, 'cert.pem'), 'utf8')).fingerprint256;
  const state = join(scratch, 'agent');
  execFileSync(AGENT_BIN, ['enroll', '--server', new URL(consoleUrl).host, '--token', tok.token,
    '--fingerprint', fingerprint, '--state-dir', state, '--hostname', HOSTNAME], { stdio: 'ignore' });
  const agent = start(AGENT_BIN, ['run', '--state-dir', state, '--backend', 'x11'], { DISPLAY: display, RUST_LOG: 'warn' });
  await page.waitForSelector(`.tile:has-text("${HOSTNAME}") img.thumb`, { timeout: 30_000 });
  const id = Number(await page.locator('.tile', { hasText: HOSTNAME }).getAttribute('data-device-id'));
  step(`agent pid ${agent.pid}, device ${id}`);

  // A second page of the same console without WebCodecs: the JPEG path.
  const jpegPage = await page.context().newPage();
  await jpegPage.addInitScript(() => {
    // @ts-ignore: as in a browser without WebCodecs
    delete window.VideoDecoder;
  });
  await jpegPage.goto(consoleUrl);
  await jpegPage.waitForSelector(`.tile:has-text("${HOSTNAME}") img.thumb`, { timeout: 30_000 });

  /** @type {any[]} */
  const runs = [];
  for (let run = 1; run <= RUNS; run += 1) {
    for (const [mode, p] of /** @type {const} */ ([['h264', page], ['jpeg', jpegPage]])) {
      const r = await measure(p, id, agent.pid, mode);
      await p.evaluate(() => document.getElementById('live-view-close')?.click());
      runs.push({ run, ...r });
      step(`run ${run} ${mode}: ${JSON.stringify(r)}`);
    }
  }
  const summary = Object.fromEntries(['h264', 'jpeg'].map((mode) => {
    const rs = runs.filter((r) => r.mode === mode);
    const keys = ['fps', 'latency_ms_median', 'latency_ms_p95', 'bytes_per_s', 'agent_cpu_percent'];
    return [mode, Object.fromEntries(keys.map((k) => [k, Math.round(median(rs.map((r) => r[k])) * 10) / 10]))];
  }));
  const result = {
    date: new Date().toISOString(),
    machine: `${cpus()[0]?.model ?? '?'}, ${cpus().length} cores`,
    screen: '1920x1080 Xvfb, clock repainted every 4 ms',
    window_s: WINDOW_S,
    runs,
    median: summary,
  };
  mkdirSync(join(REPO, 'bench/results'), { recursive: true });
  writeFileSync(join(REPO, 'bench/results/liveview.json'), `${JSON.stringify(result, null, 2)}\n`);
  console.log('\nmedians of', RUNS, 'runs:');
  console.table(summary);
});
