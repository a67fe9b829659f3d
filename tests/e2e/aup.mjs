// End-to-end test of acceptable use policies (issue 14 point 1) in real
// Chromium against a real server: an administrator writes and publishes the
// policy on the console's Acceptable use page; the extension in standalone
// (Chromebook) mode, signed in as a student, covers its window with the
// policy page (Unicode text); the student presses "I accept"; the page goes
// and the acceptance appears on the console's report (and in its CSV).
// The console page is axe-clean (WCAG 2.1 AA) at 1440 and 1024 px, as is the
// policy page. Screenshots: out/aup-console-*.png, out/aup-extension.png.
// Needs root (writes Chromium's managed policy under /etc).
//
// Run: node tests/e2e/aup.mjs (needs cargo build -p lectern-server).
// Env: LECTERN_SERVER_BIN, CHROMIUM.

import assert from 'node:assert/strict';
import { mkdtempSync, readFileSync, rmSync } from 'node:fs';
import { createRequire } from 'node:module';
import { tmpdir } from 'node:os';
import { join } from 'node:path';
import { EXTENSION_ID as EXT_ID, launchWithExtension, onCleanup, openBrowser, openConsolePage, OUT, policyFolderAlone, runTest, setFailurePage, signIn, spkiHash, startServer, step, until, writeExtensionPolicy } from './lib.mjs';

const PASSWORD = 'e2e-aup-5150';
const POLICY_NAME = 'lectern-aup-test.json';
const AUP_URL = `chrome-extension://${EXT_ID}/aup.html`;
const HOSTNAME = 'CB-AUP-01';
const STUDENT = 'zoe@school.example';
const TITLE = 'Acceptable use — Ysgol Gŵyr';
const TEXT = 'Use school computers for school work. Zażółć gęślą jaźń ✓\n\nБудьте вежливы. 日本語のページも同じ規則です。';
const TAGS = ['wcag2a', 'wcag2aa', 'wcag21a', 'wcag21aa'];
const WIDTHS = [1440, 1024];
const AXE_SOURCE = createRequire(import.meta.url)('axe-core').source;

const scratch = mkdtempSync(join(tmpdir(), 'lectern-aup-e2e-'));
onCleanup(() => rmSync(scratch, { recursive: true, force: true }));
/** @type {string[]} */
const swLog = [];

/**
 * Runs axe on a page and fails on any violation.
 * @param {import('playwright-core').Page} page
 * @param {string} what
 */
async function checkAxe(page, what) {
  if (!(await page.evaluate(() => 'axe' in window))) await page.evaluate(AXE_SOURCE);
  const violations = await page.evaluate(async (tags) => {
    // @ts-ignore axe is injected above
    const result = await window.axe.run(document, { runOnly: { type: 'tag', values: tags } });
    return result.violations.map((/** @type {any} */ v) => `${v.id}: ${v.nodes.map((/** @type {any} */ n) => n.target.join(' ')).join(', ')}`);
  }, TAGS);
  assert.deepEqual(violations, [], `axe on ${what}`);
  step(`axe: ${what} passes`);
}

/**
 * Screenshots at both widths, axe at each.
 * @param {import('playwright-core').Page} page
 * @param {string} name
 */
async function screenshots(page, name) {
  for (const width of WIDTHS) {
    await page.setViewportSize({ width, height: 900 });
    await checkAxe(page, `${name} at ${width} px`);
    await page.screenshot({ path: join(OUT, `aup-console-${name}-${width}.png`), fullPage: true });
  }
  await page.setViewportSize({ width: WIDTHS[0], height: 900 });
}

/**
 * Calls the API with the console page's session.
 * @param {import('playwright-core').Page} page
 * @param {string} path
 */
async function apiGet(page, path) {
  return page.evaluate(async (p) => {
    const res = await fetch(p, { headers: { Accept: 'application/json' } });
    return { status: res.status, text: await res.text() };
  }, path);
}

async function run() {
  if (!(process.getuid && process.getuid() === 0)) {
    step(`SKIPPED: needs root to write ${POLICY_NAME} (Chromium's managed policy)`);
    return;
  }
  const dataDir = join(scratch, 'server');
  const consoleUrl = await startServer({ agents: 0, password: PASSWORD, dataDir });
  const certPem = readFileSync(join(dataDir, 'cert.pem'), 'utf8');
  const { page } = await openBrowser();
  await signIn(page, consoleUrl, PASSWORD);

  step('the administrator writes the policy on the Acceptable use page');
  await openConsolePage(page, 'admin', '/acceptable-use');
  await page.locator('#aup-versions-summary', { hasText: '0 versions' }).waitFor();
  await screenshots(page, 'empty');
  const groups = await page.locator('#aup-group option').allTextContents();
  const everyone = groups.findIndex((g) => g.startsWith('Entire Network'));
  assert.ok(everyone >= 0, `Entire Network is offered: ${groups}`);
  await page.selectOption('#aup-group', { index: everyone });
  await page.fill('#aup-title', TITLE);
  await page.fill('#aup-text', TEXT);
  await page.click('#aup-publish');
  await page.locator('#notice.info', { hasText: 'Version 1 published.' }).waitFor();
  await page.locator('#aup-versions-summary', { hasText: '1 version' }).waitFor();

  step('the student\'s browser enrols and shows the policy');
  await policyFolderAlone(POLICY_NAME);
  const tok = await page.evaluate(async () => {
    const csrf = /** @type {HTMLMetaElement} */ (document.querySelector('meta[name="csrf-token"]')).content;
    const res = await fetch('/api/v1/enrollment-tokens', {
      method: 'POST',
      headers: { 'Content-Type': 'application/json', 'X-CSRF-Token': csrf },
      body: JSON.stringify({ label: 'aup e2e', uses: 1, expires_hours: 1 }),
    });
    return (await res.json()).token;
  });
  const port = new URL(consoleUrl).port;
  writeExtensionPolicy(POLICY_NAME, { server: `127.0.0.1:${port}`, enrollment_token: tok, hostname: HOSTNAME, user: STUDENT });
  const { ctx } = await launchWithExtension(join(scratch, 'student'), { spki: spkiHash(certPem), log: swLog });
  onCleanup(() => ctx.close().catch(() => {}));
  const aupPage = await until('the policy page in the student\'s browser',
    () => ctx.pages().find((p) => p.url().startsWith(AUP_URL)), 90_000);
  setFailurePage(aupPage);
  await aupPage.setViewportSize({ width: 1280, height: 800 });
  await aupPage.locator('#aup-title', { hasText: TITLE }).waitFor();
  const shown = await aupPage.textContent('#aup-text');
  assert.match(shown ?? '', /Zażółć gęślą jaźń ✓/);
  assert.match(shown ?? '', /日本語のページも同じ規則です。/);
  await checkAxe(aupPage, 'the policy page');
  await aupPage.screenshot({ path: join(OUT, 'aup-extension.png') });

  // Not accepted yet: the console lists the computer as waiting.
  await page.click('#aup-refresh');
  await page.locator('#aup-pending tbody tr', { hasText: HOSTNAME }).waitFor();
  await screenshots(page, 'waiting');

  step('the student accepts; the page goes and the report shows it');
  await aupPage.click('#aup-accept');
  await until('the policy page closes', () => !ctx.pages().some((p) => !p.isClosed() && p.url().startsWith(AUP_URL)), 30_000);
  await until('the acceptance on the console', async () => {
    await page.click('#aup-refresh');
    return (await page.locator('#aup-accepted tbody tr', { hasText: HOSTNAME }).count()) > 0;
  }, 30_000);
  const row = await page.textContent('#aup-accepted tbody tr');
  assert.match(row ?? '', new RegExp(STUDENT.replace('.', '\\.')));
  assert.match(row ?? '', /Entire Network — version 1/);
  await page.locator('#aup-pending-summary', { hasText: '0 computers waiting' }).waitFor();
  const csv = await apiGet(page, '/api/v1/aup/acceptances.csv');
  assert.equal(csv.status, 200);
  assert.match(csv.text, new RegExp(`,${STUDENT.replace('.', '\\.')},\\d+,${HOSTNAME},`));
  await screenshots(page, 'accepted');
  step('accepted in the browser, recorded for the device and its user, reported and exported');
}

await runTest('aup', 4 * 60 * 1000, async () => {
  try {
    await run();
  } catch (err) {
    if (swLog.length) console.error(`--- extension service worker (last 40 lines) ---\n${swLog.slice(-40).join('\n')}`);
    throw err;
  }
});
