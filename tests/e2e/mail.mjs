// Browser end-to-end test of the Safeguarding mail page (issue 15 point 5)
// against a real SMTP server (Debian's python3-aiosmtpd, started by the test
// on a free loopback port with STARTTLS required, a certificate signed by a
// CA the test makes with openssl, and a user name and password): an
// administrator fills in the server with the CA pinned, a wrong password
// gives a clear "not sent", the right one delivers a test message, and an
// alert rule is added and removed. The page passes axe-core (WCAG 2.1 A/AA).
// Screenshots at 1440 and 1024 px go to tests/e2e/out/mail-*.png.
//
// Run: node tests/e2e/mail.mjs (needs cargo build -p lectern-server and the
// python3-aiosmtpd package).

import assert from 'node:assert/strict';
import { execFileSync, spawn } from 'node:child_process';
import { mkdirSync, mkdtempSync, readFileSync, readdirSync, writeFileSync } from 'node:fs';
import { tmpdir } from 'node:os';
import { join } from 'node:path';
import { OUT, REPO, checkAxe, onCleanup, openBrowser, openConsolePage, runTest, signIn, startServer, step, until } from './lib.mjs';

const PASSWORD = 'e2e-mail-2718';
const SMTP_USER = 'lectern';
const SMTP_PASSWORD = 'smtp-e2e-secret';
const WIDTHS = [1440, 1024];

/** @type {import('playwright-core').Page} */
let page;

/** @param {string} name */
async function screenshots(name) {
  for (const width of WIDTHS) {
    await page.setViewportSize({ width, height: 800 });
    await page.screenshot({ path: join(OUT, `mail-${name}-${width}.png`), fullPage: true });
  }
  await page.setViewportSize({ width: WIDTHS[0], height: 800 });
}

/**
 * Starts aiosmtpd (STARTTLS required, one account) with a fresh CA.
 * @returns {Promise<{port: number, ca: string, inbox: string}>}
 */
async function startSmtpd() {
  const dir = mkdtempSync(join(tmpdir(), 'lectern-e2e-smtpd-'));
  const inbox = join(dir, 'mail');
  mkdirSync(inbox);
  const ossl = (/** @type {string[]} */ args) => execFileSync('openssl', args, { stdio: 'ignore' });
  ossl(['req', '-x509', '-newkey', 'ec', '-pkeyopt', 'ec_paramgen_curve:P-256', '-nodes', '-keyout', join(dir, 'ca.key'),
    '-out', join(dir, 'ca.pem'), '-days', '2', '-subj', '/CN=Test school CA']);
  ossl(['req', '-newkey', 'ec', '-pkeyopt', 'ec_paramgen_curve:P-256', '-nodes', '-keyout', join(dir, 'key.pem'),
    '-out', join(dir, 'req.pem'), '-subj', '/CN=127.0.0.1']);
  writeFileSync(join(dir, 'ext.cnf'), 'subjectAltName=IP:127.0.0.1\n');
  ossl(['x509', '-req', '-in', join(dir, 'req.pem'), '-CA', join(dir, 'ca.pem'), '-CAkey', join(dir, 'ca.key'),
    '-CAcreateserial', '-out', join(dir, 'cert.pem'), '-days', '2', '-extfile', join(dir, 'ext.cnf')]);
  const script = join(REPO, 'crates/server/tests/mail/smtpd.py');
  const smtpd = spawn('/usr/bin/python3', [script, 'starttls', inbox, join(dir, 'cert.pem'), join(dir, 'key.pem'), SMTP_USER, SMTP_PASSWORD],
    { stdio: ['pipe', 'pipe', 'ignore'] });
  onCleanup(() => { smtpd.kill('SIGTERM'); });
  const port = await new Promise((ok, fail) => {
    let out = '';
    smtpd.stdout.on('data', (d) => {
      out += d;
      const m = /PORT (\d+)/.exec(out);
      if (m) ok(Number(m[1]));
    });
    smtpd.on('exit', (code) => fail(new Error(`smtpd exited (${code}); is python3-aiosmtpd installed?`)));
  });
  step(`aiosmtpd on 127.0.0.1:${port} (STARTTLS)`);
  return { port, ca: readFileSync(join(dir, 'ca.pem'), 'utf8'), inbox };
}

/** @param {string} text */
async function noticeSays(text) {
  await until(`the notice says “${text}”`, async () => (await page.textContent('#notice'))?.includes(text) ?? false);
}

await runTest('mail', 2 * 60 * 1000, async () => {
  const smtp = await startSmtpd();
  const consoleUrl = await startServer({ agents: 0, password: PASSWORD });
  ({ page } = await openBrowser());
  await signIn(page, consoleUrl, PASSWORD);

  await openConsolePage(page, 'admin', '/mail');
  await page.waitForSelector('#mail-rules tbody tr');
  assert.equal(await page.inputValue('#mail-console'), new URL(consoleUrl).origin, 'links default to this console');
  await checkAxe(page, '/mail, not configured');
  await screenshots('empty');

  step('the server: a bad address is refused, then saved with the CA pinned');
  await page.fill('#mail-host', '127.0.0.1');
  await page.fill('#mail-port', String(smtp.port));
  await page.selectOption('#mail-security', 'starttls');
  await page.fill('#mail-ca', smtp.ca);
  await page.fill('#mail-user', SMTP_USER);
  await page.fill('#mail-password', 'not-the-password');
  await page.fill('#mail-from', 'not an address');
  await page.fill('#mail-digest', '07:30');
  await page.click('#mail-save');
  await noticeSays('is not an e-mail address');
  await page.fill('#mail-from', 'lectern@school.test');
  await page.click('#mail-save');
  await noticeSays('Mail settings saved.');
  assert.equal(await page.inputValue('#mail-password'), '');
  await until('the form says a password is stored', async () => /^Set/.test(await page.getAttribute('#mail-password', 'placeholder') ?? ''));

  step('a test message: the wrong password is a clear "not sent"');
  await page.fill('#mail-test-to', 'dsl@school.test');
  await page.click('#mail-test');
  await until('not sent', async () => (await page.textContent('#mail-test-result'))?.includes('user name or password') ?? false);
  await page.fill('#mail-password', SMTP_PASSWORD);
  await page.click('#mail-save');
  await noticeSays('Mail settings saved.');
  await page.click('#mail-test');
  await until('sent', async () => (await page.textContent('#mail-test-result'))?.startsWith('Sent') ?? false);
  await until('the message arrived', async () => readdirSync(smtp.inbox).some((f) => f.endsWith('.eml')));

  step('rules: one added, shown, then removed');
  await page.fill('#rule-categories', 'self-harm, bullying');
  await page.fill('#rule-recipients', 'dsl@school.test, admin\nhead@school.test');
  await page.click('#rule-add');
  await noticeSays('Rule added.');
  await until('the rule is listed', async () => (await page.textContent('#mail-rules tbody'))?.includes('head@school.test') ?? false);
  assert.match(await page.textContent('#mail-rules tbody') ?? '', /4, 5.*self-harm, bullying.*counts what admin may see.*At once/s);
  await checkAxe(page, '/mail with a rule');
  await screenshots('configured');
  await page.click('#mail-rules button[aria-label="Remove rule 1"]');
  await noticeSays('Rule removed.');
  await until('no rules', async () => (await page.textContent('#mail-rules tbody'))?.includes('No rules yet') ?? false);
});
