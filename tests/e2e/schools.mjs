// Schools as tenants in the console (issue 16): on a server with several
// schools the sign-in page asks which; a trust administrator granted
// another school (`lectern-server trust grant`) switches to it from the top
// bar and sees that school's console, not their own. Axe-clean and
// screenshotted at 1440 and 1024 px, with a school name in Welsh and an
// emoji to show full Unicode.
//
// Run: node tests/e2e/schools.mjs (needs cargo build -p lectern-server).

import { execFileSync } from 'node:child_process';
import { mkdtempSync } from 'node:fs';
import { tmpdir } from 'node:os';
import { isAbsolute, join, resolve } from 'node:path';
import { checkAxeOn, screenshotsOf } from './fileslib.mjs';
import { REPO, openBrowser, runTest, startServer, step, until } from './lib.mjs';

const PASSWORD = 'schools-e2e-password';
const OTHER = 'Ysgol Gynradd Llanfair 🌳';

/** Runs the server binary's command line against the data directory. */
function cli(dataDir, args) {
  const bin = process.env.LECTERN_SERVER_BIN || 'target/debug/lectern-server';
  const path = isAbsolute(bin) ? bin : resolve(REPO, bin);
  return execFileSync(path, [...args, '--data-dir', dataDir], { encoding: 'utf8' });
}

runTest('schools', 180_000, async () => {
  const dataDir = join(mkdtempSync(join(tmpdir(), 'lectern-schools-')), 'data');
  const consoleUrl = await startServer({ agents: 2, password: PASSWORD, dataDir });

  step('the operator adds a school and grants the first school\'s admin');
  const added = cli(dataDir, ['school', 'add', '--name', OTHER, '--password', 'llanfair-password-1']);
  const other = Number(/Added school (\d+)/.exec(added)?.[1]);
  if (!other) throw new Error(`school add printed: ${added}`);
  cli(dataDir, ['trust', 'grant', '--home', '1', '--username', 'admin', '--school', String(other)]);

  const { page, pageErrors } = await openBrowser();
  await page.goto(consoleUrl);
  await page.waitForURL((u) => u.pathname === '/login', { timeout: 15_000 });
  step('the sign-in page asks which school');
  const options = await page.$$eval('#school option', (os) => os.map((o) => o.textContent));
  if (options.length !== 2 || options[1] !== OTHER) throw new Error(`school options: ${JSON.stringify(options)}`);
  await checkAxeOn(page, '/login (two schools)');
  await screenshotsOf(page, 'schools-login');

  step('a wrong school reads as a wrong password');
  await page.selectOption('#school', String(other));
  await page.fill('#username', 'admin');
  await page.fill('#password', PASSWORD);
  await page.click('#login-button');
  await until('the error', async () => (await page.textContent('#login-error'))?.includes('Wrong user name or password'));

  step('signing in to the first school');
  await page.selectOption('#school', '1');
  await page.click('#login-button');
  await page.waitForURL((u) => u.pathname === '/', { timeout: 15_000 });
  await page.waitForSelector('#school-switch', { timeout: 15_000 });
  await until('the demo\'s two computers', async () => (await page.$$('.tile')).length === 2);
  await checkAxeOn(page, '/ (school switcher)');
  await screenshotsOf(page, 'schools-switcher');

  step('switching to the granted school');
  // The switch reloads the page.
  const reloaded = page.waitForEvent('load', { timeout: 15_000 });
  await page.selectOption('#school-switch', String(other));
  await reloaded;
  await page.waitForFunction((name) => {
    const s = /** @type {HTMLSelectElement | null} */ (document.getElementById('school-switch'));
    return s && s.selectedOptions[0]?.textContent === name;
  }, OTHER, { timeout: 15_000 });
  const who = await page.evaluate(async () => (await fetch('/api/v1/session')).json());
  if (who.school !== OTHER || who.user.username !== 'admin (Hillside Demo School)') {
    throw new Error(`after the switch: ${JSON.stringify(who)}`);
  }
  // The other school has no computers: none of the first school's show.
  await page.waitForTimeout(1500);
  const tiles = (await page.$$('.tile')).length;
  if (tiles !== 0) throw new Error(`${tiles} tiles in the other school`);
  if (!(await page.textContent('#user-name'))?.includes('admin (Hillside Demo School)')) {
    throw new Error('the top bar does not name the trust user');
  }
  await checkAxeOn(page, '/ (granted school)');
  await screenshotsOf(page, 'schools-granted');

  step('and back');
  await page.selectOption('#school-switch', '1');
  await until('the first school\'s computers again', async () => (await page.$$('.tile')).length === 2);
  if (pageErrors.length) throw new Error(`page errors: ${pageErrors.join('; ')}`);
});
