// The Student sign-in page (issue 16 point 3): a teacher finds a student,
// sets a picture password from the grid (in order), sees what is set, by
// whom and when, changes it to a text password, and resets it. Axe-clean;
// screenshots at 1440 and 1024 px with names in several scripts.
//
// Run: node tests/e2e/students.mjs (needs cargo build -p lectern-server).

import { checkAxeOn, screenshotsOf } from './fileslib.mjs';
import { openBrowser, openConsolePage, runTest, signIn, startServer, step, until } from './lib.mjs';

const PASSWORD = 'students-e2e-password';

runTest('students', 180_000, async () => {
  const consoleUrl = await startServer({ agents: 0, password: PASSWORD });
  const { page, pageErrors } = await openBrowser();
  await signIn(page, consoleUrl, PASSWORD);
  // Three students, made through the API as the signed-in admin.
  await page.evaluate(async () => {
    const csrf = document.querySelector('meta[name="csrf-token"]')?.getAttribute('content') || '';
    for (const [name, alias] of [['Amy Ng 吴', 'amy.ng'], ['Zoë Ðorđević', 'zoe.d'], ['Mohammed Al-Farsi محمد', 'm.alfarsi']]) {
      const r = await fetch('/api/v1/people', {
        method: 'POST',
        headers: { 'Content-Type': 'application/json', 'X-CSRF-Token': csrf },
        body: JSON.stringify({ display_name: name, aliases: [{ kind: 'roster', value: alias }] }),
      });
      if (!r.ok) throw new Error(`person: ${r.status}`);
    }
  });
  await openConsolePage(page, 'lessons', '/students');
  await page.waitForURL((u) => u.pathname === '/students');
  await until('three students', async () => (await page.textContent('#students-summary'))?.includes('3 of 3'));

  step('a picture password, in order');
  await page.fill('#students-search', 'amy');
  await until('one shown', async () => (await page.textContent('#students-summary'))?.includes('1 of 3'));
  await page.click('#students-table tbody tr:first-child button:has-text("Set")');
  await page.waitForSelector('#secret-dialog[open]');
  for (const name of ['dog', 'banana', 'bear']) await page.click(`#secret-grid button[aria-label="${name}"]`);
  if (!(await page.textContent('#secret-chosen'))?.includes('dog, banana, bear')) throw new Error('chosen pictures not shown');
  await checkAxeOn(page, '/students (picture dialog)');
  await screenshotsOf(page, 'students-pictures');
  await page.click('#secret-save');
  await until('set', async () => (await page.textContent('#students-table tbody'))?.includes('Pictures, set by admin'));

  step('two pictures are not enough: the server says so in the dialog');
  await page.click('#students-table tbody tr:first-child button:has-text("Change")');
  await page.click('#secret-clear');
  for (const name of ['cat', 'pig']) await page.click(`#secret-grid button[aria-label="${name}"]`);
  await page.click('#secret-save');
  await until('the refusal', async () => (await page.textContent('#secret-error'))?.includes('3 or 4 pictures'));

  step('a text password instead');
  await page.check('input[name="kind"][value="text"]');
  await page.fill('#secret-password', 'sunflower-7');
  await page.click('#secret-save');
  await until('text set', async () => (await page.textContent('#students-table tbody'))?.includes('Text password, set by admin'));

  step('reset');
  await page.click('#students-table tbody tr:first-child button:has-text("Reset")');
  await until('none', async () => (await page.textContent('#students-table tbody tr:first-child'))?.includes('None'));
  await page.fill('#students-search', '');
  await until('all three again', async () => (await page.textContent('#students-summary'))?.includes('3 of 3'));
  await checkAxeOn(page, '/students');
  await screenshotsOf(page, 'students');
  if (pageErrors.length) throw new Error(`page errors: ${pageErrors.join('; ')}`);
});
