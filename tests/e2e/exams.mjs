// Exams page (issue 13, point 7): plan an exam with a paper, start it (the
// lock-down reaches the computers' resultant settings), read its log, end
// it; axe-clean and screenshotted at 1440 and 1024 px.
//
// Run: node tests/e2e/exams.mjs (needs cargo build -p lectern-server).

import { checkAxeOn, screenshotsOf } from './fileslib.mjs';
import { openBrowser, runTest, signIn, startServer, step, until, openConsolePage } from './lib.mjs';

const PASSWORD = 'exams-e2e-password';

runTest('exams', 180_000, async () => {
  const consoleUrl = await startServer({ agents: 3, password: PASSWORD });
  const { page, pageErrors } = await openBrowser();
  await signIn(page, consoleUrl, PASSWORD);
  await openConsolePage(page, 'lessons', '/exams');
  await page.waitForURL((u) => u.pathname === '/exams');
  await page.waitForSelector('#exam-devices input[type=checkbox]', { timeout: 30_000 });
  await checkAxeOn(page, '/exams (empty)');

  step('a bad site pattern is refused before anything is made');
  await page.fill('#exam-name', 'Maths mock');
  await page.locator('#exam-devices input[type=checkbox]').nth(0).check();
  await page.fill('#exam-sites', 'not a pattern!');
  await page.click('#exam-create');
  await until('the notice', async () => (await page.textContent('#notice'))?.includes('Not a site pattern'));

  step('planning an exam with a paper');
  await page.fill('#exam-sites', '*.bbc.co.uk');
  await page.fill('#exam-apps', 'libreoffice');
  await page.fill('#exam-collect', 'Exam/answers.docx');
  await page.setInputFiles('#exam-paper', { name: 'paper.pdf', mimeType: 'application/pdf', buffer: Buffer.from('%PDF-1.4') });
  await page.click('#exam-create');
  await until('the exam listed', async () => (await page.textContent('#exam-list tbody'))?.includes('Paper: paper.pdf'));

  step('starting it');
  await page.click('#exam-list tbody tr:first-child button:has-text("Start")');
  await until('running', async () => (await page.textContent('#exam-list tbody tr:first-child'))?.includes('running since'));
  await until('the log shows the start', async () => (await page.textContent('#exam-log tbody'))?.includes('started'));
  await checkAxeOn(page, '/exams (running)');
  await screenshotsOf(page, 'exams-running');

  step('the lock-down is in the computer\'s resultant settings');
  const device = await page.getAttribute('#exam-devices input[type=checkbox] >> nth=0', 'value');
  const res = await page.evaluate(async (id) => (await fetch(`/api/v1/resultant?device=${id}`)).json(), device);
  const text = JSON.stringify(res);
  if (!text.includes('*.bbc.co.uk') || !text.includes('Exam: Maths mock')) throw new Error(`resultant: ${text}`);

  step('ending it');
  await page.click('#exam-list tbody tr:first-child button:has-text("End")');
  await until('ended', async () => (await page.textContent('#exam-list tbody tr:first-child'))?.includes('ended'));
  await until('the answers link', async () => (await page.$('#exam-list tbody tr:first-child a')) !== null);
  await until('the log shows the end', async () => (await page.textContent('#exam-log tbody'))?.includes('ended'));
  await checkAxeOn(page, '/exams (ended)');
  await screenshotsOf(page, 'exams');
  if (pageErrors.length) throw new Error(`page errors: ${pageErrors.join('; ')}`);
});
