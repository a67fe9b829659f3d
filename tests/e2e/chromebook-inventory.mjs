// End-to-end test of the Chromebook's inventory (issue 13 point 5 gap): the
// extension in standalone (Chromebook) mode, in real Chromium against a real
// server, offers the hash of what Chrome tells of the machine
// (chrome.system.cpu / memory / storage, getPlatformInfo, userAgentData);
// the server asks for the report and the console's inventory page shows the
// Chromebook's processor and memory. Screenshot:
// out/chromebook-inventory-1440.png. Needs root (writes Chromium's managed
// policy under /etc).
//
// Env: LECTERN_SERVER_BIN, CHROMIUM.

import assert from 'node:assert/strict';
import { mkdtempSync, readFileSync, rmSync } from 'node:fs';
import { tmpdir } from 'node:os';
import { join } from 'node:path';
import { launchWithExtension, onCleanup, openConsolePage, OUT, policyFolderAlone, restClient, runTest, setFailurePage, signIn, spkiHash, startServer, step, until, writeExtensionPolicy } from './lib.mjs';

const PASSWORD = 'e2e-cb-inventory-4321';
const POLICY_NAME = 'lectern-chromebook-inventory-test.json';
const HOSTNAME = 'CB-INV-01';

const scratch = mkdtempSync(join(tmpdir(), 'lectern-cb-inventory-e2e-'));
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
  const tok = await api('POST', '/api/v1/enrollment-tokens', { label: 'chromebook inventory e2e', uses: 1, expires_hours: 1 });
  writeExtensionPolicy(POLICY_NAME, { server: `127.0.0.1:${new URL(base).port}`, enrollment_token: tok.token, hostname: HOSTNAME });
  const { ctx } = await launchWithExtension(join(scratch, 'student'), { spki: spkiHash(certPem), log: swLog });
  onCleanup(() => ctx.close().catch(() => {}));
  const device = await until('the extension to enroll and connect',
    async () => (await api('GET', '/api/v1/devices')).find((d) => d.hostname === HOSTNAME && d.online), 60_000);
  step(`device ${device.id} connected`);

  // The report arrives through inventory_hash → inventory_request → parts.
  const inv = await until('the Chromebook\'s inventory', async () => {
    try {
      return await api('GET', `/api/v1/inventory/${device.id}`);
    } catch {
      return null; // 404 until it is stored
    }
  }, 60_000);
  const hw = inv.report.hardware;
  assert.ok(hw.cpu_model, 'a processor model');
  assert.ok(hw.cpu_count > 0, 'logical processors');
  assert.ok(hw.memory_bytes > 0, 'memory');
  assert.ok(inv.report.os.id, 'an OS');
  assert.deepEqual([inv.report.packages, inv.report.network], [[], []], 'Chrome gives neither');
  step(`reported: ${hw.cpu_model} × ${hw.cpu_count}, ${hw.memory_bytes} bytes, ${inv.report.os.name}`);

  // The console's inventory page shows them.
  const page = await ctx.newPage();
  setFailurePage(page);
  await page.setViewportSize({ width: 1440, height: 900 });
  await signIn(page, consoleUrl, PASSWORD);
  await openConsolePage(page, 'computers', '/inventory');
  await page.waitForURL((u) => u.pathname === '/inventory');
  const row = page.locator('#inventory-table tbody tr', { hasText: HOSTNAME });
  await row.waitFor();
  const cells = await row.locator('td').allTextContents();
  assert.equal(cells[3], `${hw.cpu_model} × ${hw.cpu_count}`, `${cells}`);
  assert.match(cells[4], /\d.*[GM]i?B/, `memory shown: ${cells}`);
  await page.screenshot({ path: join(OUT, 'chromebook-inventory-1440.png') });
  step('the inventory page shows the Chromebook\'s processor and memory');
}

await runTest('chromebook-inventory', 3 * 60 * 1000, async () => {
  try {
    await run();
  } catch (err) {
    if (swLog.length) console.error(`--- extension service worker (last 40 lines) ---\n${swLog.slice(-40).join('\n')}`);
    throw err;
  }
});
