// Files from the classroom (issue 13.7 gap): the grid's "Send file…" and
// "Collect…" act on the selected computers, show each computer's progress
// or failure reason in the dialog, and offer the collection's zip; the
// buttons follow the command.files right. The demo's simulated computers
// have no home folder, so each reports why it cannot save or hand in (real
// transfers are tested in crates/server/tests/files.rs with real agents).
// The dialog passes axe-core (WCAG 2.1 A/AA); screenshots at 1440 and
// 1024 px go to tests/e2e/out/files-classroom-*.png.
//
// Run: node tests/e2e/files-classroom.mjs (needs cargo build -p lectern-server).

import { checkAxeOn as checkAxe, screenshotsOf as screenshots } from './fileslib.mjs';
import { openBrowser, runTest, signIn, startServer, step, until } from './lib.mjs';

const PASSWORD = 'files-classroom-e2e-password';
const AGENTS = 3;

/**
 * The dialog's per-computer lines.
 * @param {import('playwright-core').Page} page
 * @returns {Promise<string[]>}
 */
async function results(page) {
  return page.$$eval('#fd-results li', (lis) => lis.map((li) => li.textContent ?? ''));
}

runTest('files-classroom', 180_000, async () => {
  const consoleUrl = await startServer({ agents: AGENTS, password: PASSWORD });
  const { page, pageErrors } = await openBrowser();
  await signIn(page, consoleUrl, PASSWORD);
  await page.waitForSelector('.tile');
  await until('every computer online', async () => (await page.$$('.tile')).length === AGENTS);

  step('with nothing selected the dialog says so and cannot send');
  await page.click('#files-send-button');
  await page.waitForSelector('#files-dialog[open]');
  if (!(await page.textContent('#fd-target'))?.includes('Select computers first')) throw new Error('no "select first" hint');
  if (!(await page.isDisabled('#fd-send'))) throw new Error('Send enabled with nothing selected');
  await page.click('#fd-close');

  step('sending a file to two selected computers');
  const tiles = page.locator('.tile');
  await tiles.nth(0).click();
  await tiles.nth(1).click({ modifiers: ['Control'] });
  await until('two selected', async () => (await page.textContent('#selection-count'))?.startsWith('2'));
  await page.click('#files-send-button');
  await page.waitForSelector('#files-dialog[open]');
  if (!(await page.textContent('#fd-target'))?.includes('2 selected computers')) throw new Error('target not shown');
  step('sending without a file says so');
  await page.click('#fd-send');
  await page.waitForSelector('#fd-error:not([hidden])');
  await page.setInputFiles('#fd-file', { name: 'Worksheet 4.txt', mimeType: 'text/plain', buffer: Buffer.from('Question 1…') });
  await page.fill('#fd-title', 'Week 4');
  await page.click('#fd-send');
  await until('a result per selected computer', async () => {
    const lines = await results(page);
    return lines.length === 2 && lines.every((l) => l.includes('failed') || l.includes('saved'));
  }, 60_000);
  const sent = await results(page);
  // The simulated computers have no home folder: each says why, by name.
  if (!sent.every((l) => /^LAB1-PC0\d: failed: .*not supported on this device/.test(l))) throw new Error(`send results: ${sent.join('; ')}`);
  await checkAxe(page, 'send dialog with results');
  await screenshots(page, 'files-classroom-send');
  await page.click('#fd-close');

  step('collecting from every computer');
  await page.click('#select-all');
  await page.click('#files-collect-button');
  await page.waitForSelector('#files-dialog[open]');
  if (!(await page.textContent('#fd-title-heading'))?.includes('Collect')) throw new Error('collect heading');
  step('a path leaving the folder is refused with the reason');
  await page.fill('#fd-path', '../etc/passwd');
  await page.click('#fd-collect');
  await until('the refusal', async () => (await page.textContent('#fd-error'))?.includes('..'));
  await page.fill('#fd-path', 'Hand-in/Essay.docx');
  await page.click('#fd-collect');
  await until('a hand-in result per computer', async () => {
    const lines = await results(page);
    return lines.length === AGENTS && lines.every((l) => l.includes('failed') || l.includes('files'));
  }, 60_000);
  await page.waitForSelector('#fd-zip:not([hidden])');
  const href = await page.getAttribute('#fd-zip', 'href');
  if (!/^\/api\/v1\/collections\/\d+\/zip$/.test(href || '')) throw new Error(`zip link: ${href}`);
  const zip = await page.evaluate(async (h) => (await fetch(h)).status, href);
  if (zip !== 200) throw new Error(`zip download answered ${zip}`);
  await checkAxe(page, 'collect dialog with results');
  await screenshots(page, 'files-classroom-collect');
  await page.click('#fd-close');

  if (pageErrors.length) throw new Error(`page errors: ${pageErrors.join('; ')}`);
});
