// End-to-end test of a violation's evidence (issue 15 point 6): a real
// lectern-server, a real agent (`lectern-agent run --backend headless`,
// which keeps a rolling buffer of screenshots and scans its own activity),
// the console in headless Chromium.
//
// - the school's library gets "volcano"; the agent visits a page whose
//   address has it: the agent reports the violation with its evidence, the
//   buffer (1280 px wide) and the moment of the match (1920 px: the
//   screen's own width, never the old 640 px);
// - the violation page shows the moment of the match large (at least
//   1000 px wide at 1440), its resolution, the match highlighted in its
//   context (a <mark> around exactly the matched text, no other element);
// - previous/next and the arrow keys step through the screenshots (wrapping);
//   "Full size" shows the picture at its own resolution, scrolling;
// - axe finds nothing in the dialog at 1440 and 1024 px.
// Screenshots: out/evidence-1440.png, out/evidence-full-1440.png,
// out/evidence-1024.png.
//
// Env: LECTERN_SERVER_BIN, LECTERN_AGENT_BIN (default target/debug/…), CHROMIUM.

import assert from 'node:assert/strict';
import { execFileSync, spawn } from 'node:child_process';
import { X509Certificate } from 'node:crypto';
import { mkdtempSync, readFileSync, rmSync } from 'node:fs';
import { tmpdir } from 'node:os';
import { isAbsolute, join, resolve } from 'node:path';
import { createInterface } from 'node:readline';
import { OUT, REPO, checkAxe, logLine, onCleanup, openBrowser, runTest, setFailurePage, signIn, startServer, step, until } from './lib.mjs';

const PASSWORD = 'e2e-evidence-321';
const HOSTNAME = 'EVID-PC01';

const scratch = mkdtempSync(join(tmpdir(), 'lectern-evidence-e2e-'));
onCleanup(() => rmSync(scratch, { recursive: true, force: true }));

const bin = (env, name) => {
  const p = process.env[env] || `target/debug/${name}`;
  return isAbsolute(p) ? p : resolve(REPO, p);
};

/**
 * Starts a process killed at cleanup; what it prints goes to the failure report.
 * @param {string} cmd
 * @param {string[]} args
 */
function start(cmd, args) {
  const child = spawn(cmd, args, { stdio: ['ignore', 'pipe', 'pipe'] });
  const name = cmd.split('/').pop();
  for (const out of [child.stdout, child.stderr]) {
    createInterface({ input: out }).on('line', (l) => logLine(`[${name}] ${l}`));
  }
  onCleanup(() => {
    if (child.exitCode === null) child.kill('SIGKILL');
  });
  return child;
}

/** What the viewer shows now. */
async function viewer(page) {
  return page.evaluate(() => {
    const large = /** @type {HTMLImageElement} */ (document.getElementById('violation-shot-large'));
    const box = large.getBoundingClientRect();
    const current = document.querySelector('#violation-strip li.current');
    return {
      src: large.getAttribute('src') || '',
      loaded: large.complete && large.naturalWidth > 0,
      naturalWidth: large.naturalWidth,
      naturalHeight: large.naturalHeight,
      shownWidth: Math.round(box.width),
      position: document.getElementById('evidence-position')?.textContent || '',
      size: document.getElementById('evidence-size')?.textContent || '',
      caption: document.getElementById('violation-shot-caption')?.textContent || '',
      current: current ? Number(/** @type {HTMLElement} */ (current).dataset.n) : -1,
    };
  });
}

/**
 * Waits until the large picture is screenshot `n` and has loaded.
 * @param {import('playwright-core').Page} page
 * @param {number} n
 */
async function shows(page, n) {
  await page.waitForFunction((n) => {
    const large = /** @type {HTMLImageElement} */ (document.getElementById('violation-shot-large'));
    return (large.getAttribute('src') || '').endsWith(`/screenshots/${n}`) && large.complete && large.naturalWidth > 0
      && document.getElementById('evidence-size')?.textContent !== '';
  }, n, { timeout: 15_000 });
  return viewer(page);
}

async function run() {
  const dataDir = join(scratch, 'server');
  const consoleUrl = await startServer({ agents: 0, password: PASSWORD, dataDir });
  const base = new URL(consoleUrl).origin;
  const fingerprint = new X509Certificate(readFileSync(join(dataDir, 'cert.pem'), 'utf8')).fingerprint256;

  const { page, pageErrors } = await openBrowser();
  setFailurePage(page);
  await signIn(page, consoleUrl, PASSWORD);
  /** Calls the API with the page's session; `csv` sends text/csv. */
  const api = async (method, path, body, csv = false) => page.evaluate(async ([m, p, b, csv]) => {
    const csrf = /** @type {HTMLMetaElement} */ (document.querySelector('meta[name="csrf-token"]')).content;
    const headers = m === 'GET' ? {} : { 'Content-Type': csv ? 'text/csv' : 'application/json', 'X-CSRF-Token': csrf };
    const r = await fetch(p, { method: m, headers, body: b === undefined ? undefined : csv ? b : JSON.stringify(b) });
    const text = await r.text();
    if (!r.ok) throw new Error(`${m} ${p} → ${r.status} ${text}`);
    return p.endsWith('/csv') && m === 'GET' ? text : text ? JSON.parse(text) : null;
  }, [method, path, body, csv]);

  // The school's library gets the term.
  const library = await api('GET', '/api/v1/keywords/csv');
  await api('PUT', '/api/v1/keywords/csv', `${library.trimEnd()}\nvolcano,evidence,3,whole_word,\n`, true);

  // The agent: enrolled with a token, run headless with amy signed in.
  const tok = await api('POST', '/api/v1/enrollment-tokens', { label: 'evidence e2e', uses: 1, expires_hours: 1 });
  const state = join(scratch, 'agent');
  execFileSync(bin('LECTERN_AGENT_BIN', 'lectern-agent'), ['enroll', '--server', `127.0.0.1:${new URL(base).port}`,
    '--token', tok.token, '--fingerprint', fingerprint, '--state-dir', state, '--hostname', HOSTNAME], { stdio: 'ignore' });
  start(bin('LECTERN_AGENT_BIN', 'lectern-agent'), ['run', '--state-dir', state, '--backend', 'headless',
    '--hostname', HOSTNAME, '--user', 'amy']);
  const device = await until('the agent to connect', async () => (await api('GET', '/api/v1/devices'))
    .find((d) => d.hostname === HOSTNAME && d.online), 60_000);
  step(`device ${device.id} online`);

  /**
   * Visits `url` on the agent; resolves with the violation it raises (its
   * context has `tag`) once `min` screenshots are in.
   */
  const visit = async (url, tag, min) => {
    await api('POST', '/api/v1/commands', { devices: [device.id], command: { type: 'launch_url', url } });
    return until(`a violation for ${url} with ${min}+ screenshots`, async () => (await api('GET', '/api/v1/violations?category=evidence'))
      .find((v) => v.context.includes(tag) && v.screenshots >= min), 60_000);
  };
  // The first visit's evidence takes the agent some seconds of polling: by
  // the second, its rolling buffer holds frames before the moment.
  await visit('https://example.org/first-volcano-visit', 'first-volcano', 1);
  const v = await visit('https://example.org/Volcano-facts?about=volcano', 'Volcano-facts', 2);
  const count = v.screenshots;
  step(`violation ${v.id}: “${v.matched}” with ${count} screenshots`);

  // The violation page at 1440: the moment of the match, large.
  await page.goto(new URL(`/logs?violation=${v.id}`, consoleUrl).href);
  await page.waitForSelector(`#violation-dialog[open][data-violation-id="${v.id}"]`, { timeout: 15_000 });
  let now = await shows(page, count - 1);
  assert.equal(now.naturalWidth, 1920, 'the moment of the match at the screen’s own width');
  assert.equal(now.size, `${now.naturalWidth} × ${now.naturalHeight} px`);
  assert.ok(now.shownWidth >= 1000, `shown large: ${now.shownWidth} px wide`);
  assert.equal(now.position, `${count} / ${count}`);
  assert.match(now.caption, /moment of the match/);
  assert.equal(now.current, count - 1);

  // The match, highlighted in its context as text.
  const context = await page.evaluate(() => {
    const p = /** @type {HTMLElement} */ (document.getElementById('violation-context'));
    return {
      text: p.textContent,
      marks: [...p.querySelectorAll('mark')].map((m) => m.textContent),
      elements: p.querySelectorAll('*').length,
    };
  });
  assert.equal(context.text, v.context, 'the context, whole');
  assert.deepEqual(context.marks, [v.matched], 'the matched text marked');
  assert.equal(context.elements, 1, 'no element but the mark');

  // Previous, next, arrow keys, wrapping.
  await page.click('#evidence-prev');
  now = await shows(page, count - 2);
  assert.equal(now.position, `${count - 1} / ${count}`);
  assert.equal(now.current, count - 2);
  assert.ok(now.naturalWidth >= 1280, `the buffer is readable too: ${now.naturalWidth} px`);
  await page.focus('#evidence-next');
  await page.keyboard.press('ArrowRight');
  await shows(page, count - 1);
  await page.click('#evidence-next');
  now = await shows(page, 0);
  assert.equal(now.position, `1 / ${count}`, 'next after the last wraps to the first');
  await page.keyboard.press('ArrowLeft');
  await shows(page, count - 1);
  await page.screenshot({ path: join(OUT, 'evidence-1440.png') });
  await checkAxe(page, 'the violation dialog at 1440', '#violation-dialog');

  // Full size: the picture at its own resolution, scrolling.
  await page.click('#evidence-full');
  const full = await page.evaluate(() => {
    const frame = /** @type {HTMLElement} */ (document.getElementById('evidence-frame'));
    const large = /** @type {HTMLImageElement} */ (document.getElementById('violation-shot-large'));
    return {
      pressed: document.getElementById('evidence-full')?.getAttribute('aria-pressed'),
      width: Math.round(large.getBoundingClientRect().width),
      natural: large.naturalWidth,
      scrolls: frame.scrollWidth > frame.clientWidth,
    };
  });
  assert.deepEqual(full, { pressed: 'true', width: full.natural, natural: 1920, scrolls: true });
  await page.screenshot({ path: join(OUT, 'evidence-full-1440.png') });
  await page.click('#evidence-full');
  assert.equal(await page.getAttribute('#evidence-full', 'aria-pressed'), 'false');

  // The picture on its own.
  const href = await page.getAttribute('#evidence-open', 'href');
  assert.ok(href?.endsWith(`/api/v1/violations/${v.id}/screenshots/${count - 1}`), href ?? '');

  // 1024 px.
  await page.setViewportSize({ width: 1024, height: 768 });
  now = await viewer(page);
  assert.ok(now.shownWidth >= 700, `still large at 1024: ${now.shownWidth} px`);
  await page.screenshot({ path: join(OUT, 'evidence-1024.png') });
  await checkAxe(page, 'the violation dialog at 1024', '#violation-dialog');

  assert.deepEqual(pageErrors, [], 'no errors on the page');
}

await runTest('evidence', 3 * 60 * 1000, run);
