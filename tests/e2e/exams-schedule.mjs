// Timed exams (issue 13.7 gap): the Exams page plans an exam that starts
// and ends by itself; the server's exam timer runs both, and the list and
// log say so. A start already due is refused in the page. Axe-clean;
// screenshots at 1440 and 1024 px go to tests/e2e/out/exams-schedule-*.png.
//
// Run: node tests/e2e/exams-schedule.mjs (needs cargo build -p lectern-server).

import { checkAxeOn, screenshotsOf } from './fileslib.mjs';
import { openBrowser, runTest, signIn, startServer, step, until, openConsolePage } from './lib.mjs';

const PASSWORD = 'exams-schedule-e2e-password';

/**
 * A datetime-local value `ms` from now, in the browser's time zone.
 * @param {import('playwright-core').Page} page
 * @param {number} ms
 * @returns {Promise<string>}
 */
function localIn(page, ms) {
  return page.evaluate((ms) => {
    const d = new Date(Date.now() + ms);
    const p = (/** @type {number} */ n) => String(n).padStart(2, '0');
    return `${d.getFullYear()}-${p(d.getMonth() + 1)}-${p(d.getDate())}T${p(d.getHours())}:${p(d.getMinutes())}:${p(d.getSeconds())}`;
  }, ms);
}

runTest('exams-schedule', 180_000, async () => {
  const consoleUrl = await startServer({ agents: 2, password: PASSWORD });
  const { page, pageErrors } = await openBrowser();
  await signIn(page, consoleUrl, PASSWORD);
  await openConsolePage(page, 'lessons', '/exams');
  await page.waitForURL((u) => u.pathname === '/exams');
  await page.waitForSelector('#exam-devices input[type=checkbox]', { timeout: 30_000 });

  step('a start already due is refused');
  await page.fill('#exam-name', 'Timed mock');
  await page.locator('#exam-devices input[type=checkbox]').nth(0).check();
  await page.fill('#exam-start', await localIn(page, -60_000));
  await page.click('#exam-create');
  await until('the refusal', async () => (await page.textContent('#notice'))?.includes('must be in the future'));

  step('planning one that starts in 4 s and ends 20 s later');
  await page.fill('#exam-start', await localIn(page, 4_000));
  await page.fill('#exam-end', await localIn(page, 24_000));
  await page.click('#exam-create');
  await until('listed as timed', async () => (await page.textContent('#exam-list tbody tr:first-child'))?.includes('starts by itself at'));
  await checkAxeOn(page, '/exams (timed)');
  await screenshotsOf(page, 'exams-schedule-planned');

  step('it starts and ends by itself');
  await until('running', async () => (await page.textContent('#exam-list tbody tr:first-child'))?.includes('running since'), 60_000);
  await until('ended', async () => (await page.textContent('#exam-list tbody tr:first-child'))?.includes('ended'), 60_000);
  await page.click('#exam-list tbody tr:first-child button:has-text("Log")');
  await until('the log names the schedule', async () => {
    const log = await page.textContent('#exam-log tbody');
    return log?.includes('started by schedule') && log.includes('ended by schedule');
  });
  await checkAxeOn(page, '/exams (ended by the schedule)');
  await screenshotsOf(page, 'exams-schedule-ended');
  if (pageErrors.length) throw new Error(`page errors: ${pageErrors.join('; ')}`);
});
