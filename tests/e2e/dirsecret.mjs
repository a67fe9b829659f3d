// Browser end-to-end test of the Directory page when the stored bind
// password no longer decrypts (issue 14 point 2 follow-up): an administrator
// saves the connection, the server's secrets.key is then replaced (as when a
// backup is restored on another server), and the page says the bind password
// must be entered again; entering it clears the notice. No slapd is needed:
// nothing here connects. The page passes axe-core (WCAG 2.1 A/AA) with the
// notice shown. Screenshots at 1440 and 1024 px go to
// tests/e2e/out/dirsecret-*.png.
//
// Run: node tests/e2e/dirsecret.mjs (needs cargo build -p lectern-server).

import assert from 'node:assert/strict';
import { createRequire } from 'node:module';
import { mkdtempSync, readFileSync, rmSync, writeFileSync } from 'node:fs';
import { tmpdir } from 'node:os';
import { join } from 'node:path';
import { OUT, onCleanup, openBrowser, runTest, signIn, startServer, step, until } from './lib.mjs';

const PASSWORD = 'e2e-dirsecret-271';
const TAGS = ['wcag2a', 'wcag2aa', 'wcag21a', 'wcag21aa'];
const WIDTHS = [1440, 1024];
const AXE_SOURCE = createRequire(import.meta.url)('axe-core').source;
const SUFFIX = 'dc=school,dc=test';

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
    await page.screenshot({ path: join(OUT, `dirsecret-${name}-${width}.png`), fullPage: true });
  }
  await page.setViewportSize({ width: WIDTHS[0], height: 800 });
}

async function notice() {
  return (await page.textContent('#notice')) ?? '';
}

await runTest('dirsecret', 2 * 60 * 1000, async () => {
  const work = mkdtempSync(join(tmpdir(), 'lectern-dirsecret-'));
  onCleanup(() => rmSync(work, { recursive: true, force: true }));
  const dataDir = join(work, 'data');
  const consoleUrl = await startServer({ agents: 0, password: PASSWORD, dataDir });
  ({ page } = await openBrowser());
  await signIn(page, consoleUrl, PASSWORD);
  await page.goto(new URL("/directory", consoleUrl).href);
  await page.waitForSelector('#dir-runs tbody tr');

  step('an administrator saves the connection');
  await page.fill('#dir-url', 'ldaps://127.0.0.1:636');
  await page.selectOption('#dir-flavour', 'openldap');
  await page.fill('#dir-bind-dn', `cn=admin,${SUFFIX}`);
  await page.fill('#dir-bind-pw', 'bind-secret-pw');
  await page.fill('#dir-user-base', `ou=people,${SUFFIX}`);
  await page.fill('#dir-group-base', `ou=groups,${SUFFIX}`);
  await page.click('#dir-save');
  await until('saved', async () => (await notice()).includes('saved'));
  const key = join(dataDir, 'secrets.key');
  assert.equal(readFileSync(key).length, 32, 'the key file was made on first need');

  step('the key is replaced: the page asks for the password again');
  writeFileSync(key, Buffer.alloc(32, 7));
  await page.reload();
  await until('the notice', async () => (await notice()).includes('must be entered again'));
  assert.equal(await page.getAttribute('#dir-bind-pw', 'placeholder'), 'Must be entered again');
  await checkAxe('/directory, bind password lost');
  await screenshots('lost');

  step('entering it again mends it');
  await page.fill('#dir-bind-pw', 'bind-secret-pw');
  await page.click('#dir-save');
  await until('saved again', async () => (await notice()).includes('saved'));
  await page.reload();
  await page.waitForSelector('#dir-runs tbody tr');
  assert.ok(!(await notice()).includes('must be entered again'));
  assert.match(await page.getAttribute('#dir-bind-pw', 'placeholder') ?? '', /Set/);
});
