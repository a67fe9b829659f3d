// Files page (issue 13, point 7): send a file to ticked computers, collect a
// file back, per-computer results in the tables, the zip link; axe-clean and
// screenshotted at 1440 and 1024 px. The demo's simulated computers have no
// home folder, so each one reports that it cannot save files: the page must
// show that per computer (real transfers are tested in
// crates/server/tests/files.rs with real agents).
//
// Run: node tests/e2e/files.mjs (needs cargo build -p lectern-server).

import { checkAxeOn as checkAxe, screenshotsOf as screenshots } from './fileslib.mjs';
import { openBrowser, runTest, signIn, startServer, step, until, openConsolePage } from './lib.mjs';

const PASSWORD = 'files-e2e-password';

runTest('files', 180_000, async () => {
  const consoleUrl = await startServer({ agents: 3, password: PASSWORD });
  const { page, pageErrors } = await openBrowser();
  await signIn(page, consoleUrl, PASSWORD);
  await openConsolePage(page, 'lessons', '/files');
  await page.waitForURL((u) => u.pathname === '/files');
  await page.waitForSelector('#files-devices input[type=checkbox]', { timeout: 30_000 });
  await checkAxe(page, '/files (empty)');

  step('sending without a computer ticked says so');
  await page.click('#files-send');
  await until('the notice', async () => (await page.textContent('#notice'))?.includes('Tick at least one computer'));

  step('sending a file to two computers');
  const boxes = page.locator('#files-devices input[type=checkbox]');
  await boxes.nth(0).check();
  await boxes.nth(1).check();
  await page.setInputFiles('#files-file', { name: 'Worksheet 3.txt', mimeType: 'text/plain', buffer: Buffer.from('Question 1…') });
  await page.fill('#files-title', 'Week 3');
  await page.click('#files-send');
  await until('a result per computer', async () => {
    const cells = await page.$$eval('#files-sent tbody tr:first-child li', (lis) => lis.map((li) => li.textContent));
    return cells.length === 2 && cells.every((c) => c.includes('failed') || c.includes('saved'));
  }, 60_000);
  const sent = await page.textContent('#files-sent tbody tr:first-child');
  if (!sent.includes('Worksheet 3.txt') || !sent.includes('Week 3')) throw new Error(`sent row: ${sent}`);
  // The simulated computers have no home folder: each says why, in words.
  if (!sent.includes('not supported on this device')) throw new Error(`no per-computer reason: ${sent}`);

  step('collecting a path that leaves the folder is refused with the reason');
  await page.fill('#files-path', '../etc/passwd');
  await page.click('#files-collect');
  await until('the refusal', async () => (await page.textContent('#notice'))?.includes('..'));

  step('collecting a file');
  await page.fill('#files-path', 'Hand-in/Essay.docx');
  await page.click('#files-collect');
  await until('a hand-in result per computer', async () => {
    const cells = await page.$$eval('#files-collected tbody tr:first-child li', (lis) => lis.map((li) => li.textContent));
    return cells.length === 2 && cells.every((c) => c.includes('failed') || c.includes('files'));
  }, 60_000);
  const href = await page.getAttribute('#files-collected tbody tr:first-child a', 'href');
  if (!/^\/api\/v1\/collections\/\d+\/zip$/.test(href || '')) throw new Error(`zip link: ${href}`);
  const zip = await page.evaluate(async (h) => (await fetch(h)).status, href);
  if (zip !== 200) throw new Error(`zip download answered ${zip}`);

  await checkAxe(page, '/files (with results)');
  await screenshots(page, 'files');
  if (pageErrors.length) throw new Error(`page errors: ${pageErrors.join('; ')}`);
});
