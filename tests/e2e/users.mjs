// Browser end-to-end test of the Users page and the Password page (issue 14,
// point 1, console users).
//
// Starts `lectern-server demo` with 2 simulated agents and, through the
// pages only, as the administrator in one browser context:
// - creates an administrator (mr.deputy) and a teacher (ms.patel, who must
//   choose a new password at first sign-in), sees them listed;
// - disables mr.deputy while his console is open in a second context: his
//   live stream is closed and his console goes to the sign-in page, which
//   says he was signed out; he can no longer sign in; enables him again;
// - resets ms.patel's password (the dialog shows the made-up temporary one),
//   she signs in with it and must choose a new one before anything else;
// - deletes ms.patel; cannot disable or delete their own account;
// and as mr.deputy, changes his own password on the Password page.
// axe-core (WCAG 2.1 A/AA) on the Users page, the reset dialog, the Password
// page and the signed-out login page; screenshots at 1440 and 1024 px in
// tests/e2e/out/users-*.png.
//
// Run: node tests/e2e/users.mjs (needs cargo build -p lectern-server -p lectern-agent).

import assert from 'node:assert/strict';
import { createRequire } from 'node:module';
import { join } from 'node:path';
import { OUT, openBrowser, runTest, setFailurePage, signIn, startServer, step, until, openConsolePage } from './lib.mjs';

const AGENTS = 2;
const PASSWORD = 'users-e2e-admin-pw';
const DEPUTY = 'mr.deputy';
const DEPUTY_PASSWORD = 'deputy-first-pw';
const DEPUTY_NEW = 'deputy-second-pw';
const TEACHER = 'ms.patel';
const TEACHER_PASSWORD = 'patel-first-pw';
const TEACHER_NEW = 'patel-chosen-pw';
const TAGS = ['wcag2a', 'wcag2aa', 'wcag21a', 'wcag21aa'];
const WIDTHS = [1440, 1024];
const AXE_SOURCE = createRequire(import.meta.url)('axe-core').source;

/**
 * Runs axe on the page (or inside `include`) and fails on any violation.
 * @param {import('playwright-core').Page} page
 * @param {string} what
 * @param {string} [include]
 */
async function checkAxe(page, what, include) {
  if (!(await page.evaluate(() => 'axe' in window))) await page.evaluate(AXE_SOURCE);
  const violations = await page.evaluate(async ({ tags, include }) => {
    // @ts-ignore axe is injected above
    const result = await window.axe.run(include ? { include: [include] } : document, { runOnly: { type: 'tag', values: tags } });
    return result.violations.map((v) => `${v.id} (${v.help}): ${v.nodes.map((n) => n.target.join(' ')).join(', ')}`);
  }, { tags: TAGS, include });
  assert.deepEqual(violations, [], `axe on ${what}`);
  step(`axe: ${what} passes`);
}

/**
 * Screenshots the page at each width.
 * @param {import('playwright-core').Page} page
 * @param {string} name
 */
async function screenshots(page, name) {
  for (const width of WIDTHS) {
    await page.setViewportSize({ width, height: 900 });
    await page.screenshot({ path: join(OUT, `users-${name}-${width}.png`), fullPage: true });
  }
  await page.setViewportSize({ width: WIDTHS[0], height: 900 });
}

/**
 * The Users table's row for `name`, as text per column.
 * @param {import('playwright-core').Page} page
 * @param {string} name
 */
async function rowOf(page, name) {
  return page.$$eval(`#users-table tbody tr`, (rows, name) => {
    const tr = rows.find((r) => /** @type {HTMLElement} */ (r).dataset.username === name);
    if (!tr) return null;
    const cells = [...tr.querySelectorAll('td')];
    return {
      role: /** @type {HTMLSelectElement} */ (tr.querySelector('select')).value,
      status: cells[2].textContent,
      seen: cells[3].textContent,
    };
  }, name);
}

/**
 * Waits until `name`'s row says `status` (or is gone when `status` is null).
 * @param {import('playwright-core').Page} page
 * @param {string} name
 * @param {string | null} status
 */
async function waitRow(page, name, status) {
  await until(`${name} listed as ${status}`, async () => {
    const row = await rowOf(page, name);
    return status === null ? row === null : row?.status === status;
  }, 15_000);
}

/**
 * Creates an account with the New user form.
 * @param {import('playwright-core').Page} page
 * @param {string} name
 * @param {string} password
 * @param {'admin' | 'teacher'} role
 * @param {boolean} mustChange
 */
async function createUser(page, name, password, role, mustChange) {
  await page.fill('#users-name', name);
  await page.fill('#users-password', password);
  await page.selectOption('#users-role', role);
  await page.setChecked('#users-must-change', mustChange);
  await page.click('#users-create');
  await waitRow(page, name, mustChange ? 'Must change password' : 'Active');
}

/**
 * Signs in on the login page.
 * @param {import('playwright-core').Page} page
 * @param {string} user
 * @param {string} password
 */
async function signInAs(page, user, password) {
  await page.fill('#username', user);
  await page.fill('#password', password);
  await page.click('#login-button');
}

/**
 * Fills and sends the Password page's form.
 * @param {import('playwright-core').Page} page
 * @param {string} current
 * @param {string} fresh
 */
async function changePassword(page, current, fresh) {
  await page.fill('#current-password', current);
  await page.fill('#new-password', fresh);
  await page.fill('#repeat-password', fresh);
  await page.click('#password-button');
}

await runTest('users', 4 * 60 * 1000, async () => {
  const consoleUrl = await startServer({ agents: AGENTS, password: PASSWORD });
  const { page: admin, pageErrors } = await openBrowser();
  await signIn(admin, consoleUrl, PASSWORD);
  const base = new URL(consoleUrl);
  const at = (/** @type {string} */ p) => new URL(p, base).href;

  step('the Users page');
  await openConsolePage(admin, 'admin', '/users');
  await admin.waitForURL((u) => u.pathname === '/users');
  await waitRow(admin, 'admin', 'Active');
  // Nobody disables or deletes their own account: those buttons are off.
  const own = admin.locator('#users-table tr[data-username="admin"]');
  assert.ok(await own.locator('.user-disable').isDisabled(), 'own Disable is off');
  assert.ok(await own.locator('.user-delete').isDisabled(), 'own Delete is off');
  // A weak password is refused with the server's sentence.
  await admin.fill('#users-name', 'weak.one');
  await admin.fill('#users-password', 'short');
  await admin.click('#users-create');
  await admin.waitForFunction(() => /at least 10 characters/.test(document.getElementById('notice')?.textContent || ''));
  await createUser(admin, DEPUTY, DEPUTY_PASSWORD, 'admin', false);
  await createUser(admin, TEACHER, TEACHER_PASSWORD, 'teacher', true);
  assert.equal((await rowOf(admin, DEPUTY))?.role, 'admin');
  assert.equal((await rowOf(admin, TEACHER))?.seen, 'Never');
  await checkAxe(admin, 'Users page');
  await screenshots(admin, 'page');

  step('mr.deputy signs in elsewhere and changes his own password');
  const other = await admin.context().browser().newContext({ ignoreHTTPSErrors: true, viewport: { width: 1440, height: 900 } });
  const deputy = await other.newPage();
  deputy.on('pageerror', (err) => pageErrors.push(`deputy uncaught: ${err.message}`));
  await deputy.goto(at('/login'));
  await signInAs(deputy, DEPUTY, DEPUTY_PASSWORD);
  await deputy.waitForURL((u) => u.pathname === '/');
  await deputy.click('a.account-link');
  await deputy.waitForURL((u) => u.pathname === '/password');
  await deputy.waitForFunction(() => document.getElementById('password-user')?.textContent === 'mr.deputy');
  await checkAxe(deputy, 'Password page');
  await screenshots(deputy, 'password');
  await changePassword(deputy, 'not-my-password', DEPUTY_NEW);
  await deputy.waitForFunction(() => !document.getElementById('password-error')?.hidden);
  assert.match(await deputy.textContent('#password-error'), /current password is not right/);
  await changePassword(deputy, DEPUTY_PASSWORD, DEPUTY_NEW);
  await deputy.waitForURL((u) => u.pathname === '/');
  // His console: tiles from the live stream.
  await deputy.waitForSelector('.tile', { timeout: 30_000 });
  await deputy.waitForSelector('#stream-status.live', { timeout: 30_000 });

  step('disabling mr.deputy signs his open console out');
  setFailurePage(deputy);
  await admin.click(`#users-table tr[data-username="${DEPUTY}"] .user-disable`);
  await waitRow(admin, DEPUTY, 'Disabled');
  await deputy.waitForURL((u) => u.pathname === '/login', { timeout: 20_000 });
  await deputy.waitForSelector('#login-notice:not([hidden])');
  assert.match(await deputy.textContent('#login-notice'), /signed out/);
  await checkAxe(deputy, 'signed-out login page');
  await screenshots(deputy, 'signed-out');
  await signInAs(deputy, DEPUTY, DEPUTY_NEW);
  await deputy.waitForSelector('#login-error:not([hidden])');
  assert.equal(new URL(deputy.url()).pathname, '/login');
  setFailurePage(admin);
  await admin.click(`#users-table tr[data-username="${DEPUTY}"] .user-enable`);
  await waitRow(admin, DEPUTY, 'Active');

  step('resetting ms.patel\'s password');
  await admin.click(`#users-table tr[data-username="${TEACHER}"] .user-reset`);
  await admin.waitForSelector('#reset-dialog[open]');
  await checkAxe(admin, 'reset dialog', '#reset-dialog');
  await admin.click('#reset-submit');
  await admin.waitForSelector('#reset-done:not([hidden])');
  const temporary = (await admin.textContent('#reset-result'))?.trim() || '';
  assert.ok(temporary.length >= 10, `temporary password shown: ${temporary}`);
  await screenshots(admin, 'reset');
  await admin.click('#reset-close');
  await waitRow(admin, TEACHER, 'Must change password');

  step('ms.patel must choose a new password first');
  setFailurePage(deputy);
  await deputy.goto(at('/login'));
  await signInAs(deputy, TEACHER, temporary);
  await deputy.waitForURL((u) => u.pathname === '/password');
  await deputy.waitForFunction(() => document.getElementById('password-title')?.textContent === 'Choose a new password');
  // Any other page sends her back here.
  await deputy.goto(at('/'));
  await deputy.waitForURL((u) => u.pathname === '/password');
  await deputy.waitForFunction(() => document.getElementById('password-title')?.textContent === 'Choose a new password');
  await checkAxe(deputy, 'Password page, forced change');
  await screenshots(deputy, 'forced');
  await changePassword(deputy, temporary, TEACHER_NEW);
  await deputy.waitForURL((u) => u.pathname === '/');
  setFailurePage(admin);
  await admin.reload();
  await waitRow(admin, TEACHER, 'Active');

  step('deleting ms.patel');
  await admin.click(`#users-table tr[data-username="${TEACHER}"] .user-delete`);
  await waitRow(admin, TEACHER, null);
  assert.deepEqual(pageErrors, []);
});
