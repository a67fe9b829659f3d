// Browser end-to-end test of the Directory page (issue 14 points 2 and 3)
// against a real OpenLDAP slapd (Debian's package) that the test starts on
// free loopback ports with a throwaway config, database and certificate (a
// CA made with openssl signs it): an administrator fills in the connection
// (LDAPS, CA pinned), tests it, runs a dry run and a sync, and a directory
// user then signs in on the normal login page with their directory
// password. The page passes axe-core (WCAG 2.1 A/AA) empty and with a dry
// run shown. Screenshots at 1440 and 1024 px go to tests/e2e/out/directory-*.png.
//
// Run: node tests/e2e/directory.mjs (needs cargo build -p lectern-server,
// and the slapd and ldap-utils packages).

import assert from 'node:assert/strict';
import { createRequire } from 'node:module';
import { execFileSync, spawn } from 'node:child_process';
import { mkdirSync, mkdtempSync, readFileSync, writeFileSync } from 'node:fs';
import { connect } from 'node:net';
import { tmpdir } from 'node:os';
import { join } from 'node:path';
import { OUT, freePort, onCleanup, openBrowser, openConsolePage, runTest, signIn, startServer, step, until } from './lib.mjs';

const PASSWORD = 'e2e-directory-314';
const TAGS = ['wcag2a', 'wcag2aa', 'wcag21a', 'wcag21aa'];
const WIDTHS = [1440, 1024];
const AXE_SOURCE = createRequire(import.meta.url)('axe-core').source;
const SUFFIX = 'dc=school,dc=test';
const ROOT_DN = `cn=admin,${SUFFIX}`;
const ROOT_PW = 'bind-secret-pw';

/** @type {import('playwright-core').Page} */
let page;

/** @param {string} what */
async function checkAxe(what) {
  if (!(await page.evaluate(() => 'axe' in window))) await page.evaluate(AXE_SOURCE);
  const violations = await page.evaluate(async (tags) => {
    // @ts-ignore axe is injected above
    const result = await window.axe.run(document, { runOnly: { type: 'tag', values: tags } });
    return result.violations.map((/** @type {any} */ v) => `${v.id}: ${v.nodes.map((/** @type {any} */ n) => n.target.join(' ')).join(', ')}`);
  }, TAGS);
  assert.deepEqual(violations, [], `axe on ${what}`);
  step(`axe: ${what} passes`);
}

/** @param {string} name */
async function screenshots(name) {
  for (const width of WIDTHS) {
    await page.setViewportSize({ width, height: 800 });
    await page.screenshot({ path: join(OUT, `directory-${name}-${width}.png`), fullPage: true });
  }
  await page.setViewportSize({ width: WIDTHS[0], height: 800 });
}

/** @param {number} port */
function listening(port) {
  return new Promise((ok) => {
    const s = connect(port, '127.0.0.1', () => { s.destroy(); ok(true); });
    s.on('error', () => ok(false));
  });
}

/**
 * Starts slapd with users amy (Teachers, nested in Staff) and cat (Pupils).
 * @returns {Promise<{port: number, ca: string}>}
 */
async function startSlapd() {
  const dir = mkdtempSync(join(tmpdir(), 'lectern-e2e-slapd-'));
  mkdirSync(join(dir, 'db'));
  const ossl = (/** @type {string[]} */ args) => execFileSync('openssl', args, { stdio: 'ignore' });
  ossl(['req', '-x509', '-newkey', 'ec', '-pkeyopt', 'ec_paramgen_curve:P-256', '-nodes', '-keyout', join(dir, 'ca.key'),
    '-out', join(dir, 'ca.pem'), '-days', '2', '-subj', '/CN=Test school CA']);
  ossl(['req', '-newkey', 'ec', '-pkeyopt', 'ec_paramgen_curve:P-256', '-nodes', '-keyout', join(dir, 'key.pem'),
    '-out', join(dir, 'req.pem'), '-subj', '/CN=localhost']);
  writeFileSync(join(dir, 'ext.cnf'), 'subjectAltName=DNS:localhost,IP:127.0.0.1\n');
  ossl(['x509', '-req', '-in', join(dir, 'req.pem'), '-CA', join(dir, 'ca.pem'), '-CAkey', join(dir, 'ca.key'),
    '-CAcreateserial', '-out', join(dir, 'cert.pem'), '-days', '2', '-extfile', join(dir, 'ext.cnf')]);
  writeFileSync(join(dir, 'slapd.conf'), [
    ...['core', 'cosine', 'inetorgperson', 'nis'].map((s) => `include /etc/ldap/schema/${s}.schema`),
    'modulepath /usr/lib/ldap', 'moduleload back_mdb',
    `TLSCertificateFile ${dir}/cert.pem`, `TLSCertificateKeyFile ${dir}/key.pem`,
    'database mdb', 'maxsize 10485760', `suffix "${SUFFIX}"`, `rootdn "${ROOT_DN}"`, `rootpw ${ROOT_PW}`, `directory ${dir}/db`, '',
  ].join('\n'));
  const person = (/** @type {string} */ uid) => `dn: uid=${uid},ou=people,${SUFFIX}\nobjectClass: inetOrgPerson\nuid: ${uid}\ncn: ${uid}\nsn: ${uid}\nuserPassword: ${uid}-pass\n`;
  const group = (/** @type {string} */ cn, /** @type {string[]} */ members) => `dn: cn=${cn},ou=groups,${SUFFIX}\nobjectClass: groupOfNames\ncn: ${cn}\n${members.map((m) => `member: ${m}\n`).join('')}`;
  writeFileSync(join(dir, 'seed.ldif'), [
    `dn: ${SUFFIX}\nobjectClass: dcObject\nobjectClass: organization\no: School\ndc: school\n`,
    `dn: ou=people,${SUFFIX}\nobjectClass: organizationalUnit\nou: people\n`,
    `dn: ou=groups,${SUFFIX}\nobjectClass: organizationalUnit\nou: groups\n`,
    person('amy'), person('cat'),
    group('Teachers', [`uid=amy,ou=people,${SUFFIX}`]),
    group('Staff', [`cn=Teachers,ou=groups,${SUFFIX}`]),
    group('Pupils', [`uid=cat,ou=people,${SUFFIX}`]),
  ].join('\n'));
  execFileSync('slapadd', ['-f', join(dir, 'slapd.conf'), '-l', join(dir, 'seed.ldif')], { stdio: 'ignore' });
  const port = await freePort();
  const slapd = spawn('slapd', ['-f', join(dir, 'slapd.conf'), '-h', `ldaps://127.0.0.1:${port}/`, '-d', '0'], { stdio: 'ignore' });
  onCleanup(() => { slapd.kill('SIGTERM'); });
  await until('slapd listens', () => listening(port), 20_000);
  step(`slapd on ldaps://127.0.0.1:${port}`);
  return { port, ca: readFileSync(join(dir, 'ca.pem'), 'utf8') };
}

await runTest('directory', 3 * 60 * 1000, async () => {
  const ldap = await startSlapd();
  const consoleUrl = await startServer({ agents: 0, password: PASSWORD });
  ({ page } = await openBrowser());
  await signIn(page, consoleUrl, PASSWORD);

  await openConsolePage(page, 'admin', '/directory');
  await page.waitForSelector('#dir-runs tbody tr');
  await checkAxe('/directory, not configured');
  await screenshots('empty');

  step('the connection: plain LDAP refused, then LDAPS with the CA pinned');
  await page.fill('#dir-url', `ldap://127.0.0.1:${ldap.port}`);
  await page.selectOption('#dir-flavour', 'openldap');
  await page.fill('#dir-bind-dn', ROOT_DN);
  await page.fill('#dir-bind-pw', ROOT_PW);
  await page.fill('#dir-user-base', `ou=people,${SUFFIX}`);
  await page.fill('#dir-group-base', `ou=groups,${SUFFIX}`);
  await page.fill('#dir-signin', 'Staff, teacher');
  await page.click('#dir-save');
  await until('plain LDAP is refused', async () => (await page.textContent('#notice'))?.includes('in the clear') ?? false);
  await page.fill('#dir-url', `ldaps://127.0.0.1:${ldap.port}`);
  await page.fill('#dir-ca', ldap.ca);
  await page.click('#dir-save');
  await until('saved', async () => (await page.textContent('#notice'))?.includes('saved') ?? false);
  assert.equal(await page.inputValue('#dir-bind-pw'), '');
  await until('the form says a password is stored', async () => /^Set/.test(await page.getAttribute('#dir-bind-pw', 'placeholder') ?? ''));
  await page.click('#dir-test');
  await until('the test connects', async () => (await page.textContent('#dir-test-result'))?.includes('2 users') ?? false);

  step('dry run, then sync');
  await page.click('#dir-dry-run');
  await until('the dry run lists the new accounts', async () => (await page.textContent('#dir-plan'))?.includes('New accounts: amy, cat') ?? false);
  assert.match(await page.textContent('#dir-plan') ?? '', /Staff/);
  await checkAxe('/directory with a dry run');
  await screenshots('dry-run');
  await page.click('#dir-sync');
  await until('synced', async () => (await page.textContent('#dir-plan'))?.startsWith('Synced') ?? false);
  await until('two runs listed', async () => (await page.$$('#dir-runs tbody tr')).length === 2);
  await screenshots('synced');

  step('amy signs in with her directory password');
  await page.click('#logout-button');
  await page.waitForURL((url) => url.pathname === '/login', { timeout: 15_000 });
  await page.fill('#username', 'cat');
  await page.fill('#password', 'cat-pass');
  await page.click('#login-button');
  await until('a pupil is refused', async () => (await page.textContent('body'))?.includes('may not sign in') ?? false);
  await page.fill('#username', 'amy');
  await page.fill('#password', 'amy-pass');
  await page.click('#login-button');
  await page.waitForURL((url) => url.pathname === '/', { timeout: 15_000 });
  const me = await page.evaluate(async () => (await fetch('/api/v1/session')).json());
  assert.deepEqual(me.user, { username: 'amy', role: 'teacher' });
  await page.screenshot({ path: join(OUT, 'directory-amy-signed-in-1440.png') });
});
