// Student sign-in on a shared Chromebook (issue 16 point 3), in real
// Chromium against a real server: a group of shared Chromebooks offers the
// school's student sign-in; a teacher set Amy's picture password through
// the API. The browser, with no user of its own, is held at the sign-in
// page: the picture grid (real emoji), wrong pictures refused with a
// sentence, the right ones sign Amy in (the console shows the device as
// hers) and browsing opens; a browser restart (the next student) does not
// inherit her sign-in; the toolbar popup signs her out and the gate closes
// again. Then a second school shares the Chromebook (the managed
// school_codes): where the first school allows it, its sign-in page offers
// the other, and a click takes the Chromebook there. Axe-clean;
// screenshots at 1024 px.
// Needs root (writes Chromium's managed policy under /etc).
//
// Env: LECTERN_SERVER_BIN, CHROMIUM.

import assert from 'node:assert/strict';
import { execFileSync } from 'node:child_process';
import { mkdtempSync, readFileSync, rmSync } from 'node:fs';
import { tmpdir } from 'node:os';
import { isAbsolute, join, resolve } from 'node:path';
import { checkAxeOn } from './fileslib.mjs';
import {
  EXTENSION_ID, OUT, REPO, goThroughRedirects, launchWithExtension, onCleanup, policyFolderAlone, restClient, runTest,
  setFailurePage, spkiHash, startPlainSites, startServer, step, until, writeExtensionPolicy,
} from './lib.mjs';

const PASSWORD = 'e2e-signin-4321';
const OTHER = 'Ysgol y Môr 🌊';
const POLICY_NAME = 'lectern-signin-test.json';
const SIGNIN = `chrome-extension://${EXTENSION_ID}/signin.html`;
const scratch = mkdtempSync(join(tmpdir(), 'lectern-signin-e2e-'));
onCleanup(() => rmSync(scratch, { recursive: true, force: true }));

/** Clicks the pictures with these names, in order. */
async function pick(page, names) {
  for (const name of names) await page.click(`#picture-grid button[aria-label="${name}"]`);
}

runTest('chromebook-signin', 240_000, async () => {
  if (process.getuid && process.getuid() !== 0) {
    step('skipped: needs root to write Chromium\'s managed policy');
    return;
  }
  await policyFolderAlone(POLICY_NAME);
  const sites = await startPlainSites();
  const dataDir = join(scratch, 'server');
  const consoleUrl = await startServer({ agents: 0, password: PASSWORD, dataDir });
  const base = new URL(consoleUrl).origin;
  const certPem = readFileSync(join(dataDir, 'cert.pem'), 'utf8');
  const { api } = await restClient(base, certPem, PASSWORD);

  const group = await api('POST', '/api/v1/groups', { name: 'Shared Chromebooks', kind: 'computer', priority: 'low',
    members: [{ type: 'hostname', value: 'CB-*' }], settings: { student_sign_in: true } });
  const amy = await api('POST', '/api/v1/people', { display_name: 'Amy Ng 吴', aliases: [{ kind: 'roster', value: 'amy.ng' }] });
  // Dog, banana, bear.
  await api('PUT', `/api/v1/people/${amy.id}/sign-in`, { kind: 'picture', picture: [0, 9, 4] });
  const tok = await api('POST', '/api/v1/enrollment-tokens', { label: 'sign-in e2e', uses: 1, expires_hours: 1 });
  step('a shared-Chromebook group offers student sign-in; Amy has a picture password');

  writeExtensionPolicy(POLICY_NAME, { server: `127.0.0.1:${new URL(base).port}`, enrollment_token: tok.token, hostname: 'CB-SIGNIN' });
  const swLog = [];
  const launch = async () => {
    const b = await launchWithExtension(join(scratch, 'profile'), { spki: spkiHash(certPem), log: swLog });
    onCleanup(() => b.ctx.close().catch(() => {}));
    return b;
  };
  let { ctx, sw } = await launch();
  const device = await until('the browser to enroll', async () => (await api('GET', '/api/v1/devices'))
    .find((d) => d.hostname === 'CB-SIGNIN' && d.online), 60_000);
  assert.equal(device.state.user, null);
  await until('the policy in the browser', () => sw.evaluate(() => chrome.storage.local.get('cbPolicy')
    .then((s) => s.cbPolicy?.student_sign_in === true)));

  const page = await ctx.newPage();
  setFailurePage(page);
  await page.setViewportSize({ width: 1024, height: 800 });
  const shown = await until('the sign-in page instead of the site', async () => {
    const url = await goThroughRedirects(page, sites.url('games.test', '/'));
    return url.startsWith(SIGNIN) ? url : null;
  });
  step(`redirected to ${shown}`);
  await page.waitForSelector('#student-form:not([hidden])', { timeout: 15_000 });
  assert.equal(await page.locator('#picture-grid button').count(), 16);
  await checkAxeOn(page, 'signin.html (student sign-in)');
  await page.screenshot({ path: join(OUT, 'chromebook-signin-1024.png'), fullPage: true });

  step('wrong pictures are refused with a sentence');
  await page.fill('#student-name', 'amy.ng');
  await pick(page, ['banana', 'dog', 'bear']);
  await page.click('#student-submit');
  await until('the refusal', async () => (await page.textContent('#student-error'))?.includes('do not match'));
  assert.equal(await page.textContent('#picture-chosen'), 'No pictures chosen yet.');
  await page.screenshot({ path: join(OUT, 'chromebook-signin-wrong-1024.png'), fullPage: true });

  step('the right pictures sign her in');
  await pick(page, ['dog', 'banana', 'bear']);
  assert.match(await page.textContent('#picture-chosen'), /dog, banana, bear/);
  await page.click('#student-submit');
  await until('the welcome', async () => (await page.textContent('#student-done'))?.includes('Welcome, Amy Ng 吴!'));
  await page.screenshot({ path: join(OUT, 'chromebook-signin-done-1024.png'), fullPage: true });
  await until('the console shows the device as Amy\'s', async () => (await api('GET', `/api/v1/devices/${device.id}`))
    .state.user === 'amy.ng');
  const site = sites.url('maths.test', '/fractions');
  assert.equal(await until('browsing open', async () => ((await goThroughRedirects(page, site)) === site ? site : null)), site);

  step('a browser restart (the next student) does not inherit her sign-in');
  await ctx.close();
  ({ ctx, sw } = await launch());
  await until('the server to hear she is signed out', async () => {
    const d = await api('GET', `/api/v1/devices/${device.id}`);
    return d.online && d.state.user === null;
  }, 60_000);
  const again = await ctx.newPage();
  setFailurePage(again);
  await again.setViewportSize({ width: 1024, height: 800 });
  await until('the sign-in page again', async () => ((await goThroughRedirects(again, sites.url('games.test', '/'))).startsWith(SIGNIN) ? true : null));
  await again.waitForSelector('#student-form:not([hidden])', { timeout: 15_000 });
  await again.fill('#student-name', 'amy.ng');
  await pick(again, ['dog', 'banana', 'bear']);
  await again.click('#student-submit');
  await until('signed in again', async () => (await again.textContent('#student-done'))?.includes('Welcome'));
  await until('the console shows her again', async () => (await api('GET', `/api/v1/devices/${device.id}`)).state.user === 'amy.ng');

  step('the popup signs her out, and the gate closes again');
  const popup = await ctx.newPage();
  await popup.goto(`chrome-extension://${EXTENSION_ID}/popup.html`);
  await popup.waitForSelector('#student:not([hidden])', { timeout: 15_000 });
  assert.equal(await popup.textContent('#student-name'), 'Amy Ng 吴');
  await checkAxeOn(popup, 'popup.html (signed in)');
  await popup.screenshot({ path: join(OUT, 'chromebook-signin-popup.png'), fullPage: true });
  await popup.click('#student-sign-out');
  await popup.waitForSelector('#student[hidden]', { state: 'attached', timeout: 15_000 });
  await until('the console shows no user', async () => (await api('GET', `/api/v1/devices/${device.id}`)).state.user === null);
  await until('the sign-in page once more', async () => ((await goThroughRedirects(again, sites.url('games.test', '/'))).startsWith(SIGNIN) ? true : null));
  const audit = JSON.stringify(await api('GET', '/api/v1/audit?limit=100'));
  assert.match(audit, /student\.sign_in/);
  assert.match(audit, /student\.sign_out/);

  step('a second school shares the Chromebook (school_codes), and the first lets students switch');
  const bin = process.env.LECTERN_SERVER_BIN || 'target/debug/lectern-server';
  const added = execFileSync(isAbsolute(bin) ? bin : resolve(REPO, bin),
    ['school', 'add', '--name', OTHER, '--password', 'mor-password-123', '--data-dir', dataDir], { encoding: 'utf8' });
  const other = Number(/Added school (\d+)/.exec(added)?.[1]);
  assert.ok(other, added);
  const { api: atOther } = await restClient(base, certPem, 'mor-password-123', other);
  await atOther('POST', '/api/v1/groups', { name: 'Shared Chromebooks', kind: 'computer', priority: 'low',
    members: [{ type: 'hostname', value: 'CB-*' }], settings: { student_sign_in: true } });
  const { code } = await atOther('POST', '/api/v1/school/code', {});
  await api('PUT', `/api/v1/groups/${group.id}`, { settings: { student_sign_in: true, school_switch: true } });
  writeExtensionPolicy(POLICY_NAME, { server: `127.0.0.1:${new URL(base).port}`, enrollment_token: tok.token, hostname: 'CB-SIGNIN', school_codes: [code] });
  await ctx.close();
  ({ ctx, sw } = await launch());
  const there = await until('the Chromebook registered with the second school', async () => (await atOther('GET', '/api/v1/devices'))
    .find((d) => d.hostname === 'CB-SIGNIN'), 60_000);
  await until('back with the first school', async () => (await api('GET', `/api/v1/devices/${device.id}`)).online, 60_000);
  const shared = await ctx.newPage();
  setFailurePage(shared);
  await shared.setViewportSize({ width: 1024, height: 800 });
  await until('the sign-in page offering the other school', async () => {
    await goThroughRedirects(shared, sites.url('games.test', '/'));
    return (await shared.locator('#other-schools-list button').count()) === 1 ? true : null;
  }, 30_000);
  assert.equal(await shared.textContent('#other-schools-list button'), OTHER);
  await checkAxeOn(shared, 'signin.html (another school)');
  await shared.screenshot({ path: join(OUT, 'chromebook-signin-schools-1024.png'), fullPage: true });

  step('a click takes the Chromebook to the other school, whose sign-in it shows');
  await shared.click('#other-schools-list button');
  await until('online at the other school', async () => (await atOther('GET', `/api/v1/devices/${there.id}`)).online, 30_000);
  await until('offline at the first', async () => !(await api('GET', `/api/v1/devices/${device.id}`)).online, 30_000);
  await until('the other school\'s name on the sign-in page', async () => {
    await goThroughRedirects(shared, sites.url('games.test', '/'));
    return (await shared.textContent('#student-form .school-name').catch(() => '')) === OTHER ? true : null;
  }, 30_000);
  // The other school keeps its Chromebooks: nothing offered there.
  assert.equal(await shared.locator('#other-schools').isHidden(), true);
  await shared.screenshot({ path: join(OUT, 'chromebook-signin-other-school-1024.png'), fullPage: true });

  step('the other school lets the Chromebook go (revoked): it goes back to the first on its own');
  await atOther('DELETE', `/api/v1/devices/${there.id}`);
  await until('online at the first school again', async () => (await api('GET', `/api/v1/devices/${device.id}`)).online, 60_000);
  await until('the first school\'s name on the sign-in page', async () => {
    await goThroughRedirects(shared, sites.url('games.test', '/'));
    return (await shared.textContent('#student-form .school-name').catch(() => '')) !== OTHER ? true : null;
  }, 30_000);
  // The school that let it go is not offered any more.
  assert.equal(await shared.locator('#other-schools-list button').count(), 0);
});
