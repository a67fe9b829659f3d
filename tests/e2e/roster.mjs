// Browser end-to-end test of rosters (issue 14 point 4): an administrator
// checks a OneRoster bundle (dry run: the report and its bad rows, nothing
// imported), imports it, and sees the classes; a rostered teacher then
// signs in, finds their class (and only theirs) under "My classes" in the
// classroom tree, and starts a lesson for it from there. The pages pass
// axe-core (WCAG 2.1 A/AA); screenshots at 1440 and 1024 px go to
// tests/e2e/out/roster-*.png.
//
// Run: node tests/e2e/roster.mjs (needs cargo build -p lectern-server).

import assert from 'node:assert/strict';
import { createRequire } from 'node:module';
import { writeFileSync } from 'node:fs';
import { join } from 'node:path';
import { crc32 } from 'node:zlib';
import { OUT, openBrowser, runTest, signIn, startServer, step, until, openConsolePage } from './lib.mjs';

const PASSWORD = 'e2e-roster-456';
const TEACHER_PASSWORD = 'khan-password-1';
const TAGS = ['wcag2a', 'wcag2aa', 'wcag21a', 'wcag21aa'];
const WIDTHS = [1440, 1024];
const AXE_SOURCE = createRequire(import.meta.url)('axe-core').source;

// The demo's first four computers are used by amara, ben, chloe and dev.
const FILES = {
  'academicSessions.csv': 'sourcedId,status,dateLastModified,title,type,startDate,endDate,parentSourcedId,schoolYear\n'
    + 'term1,active,,Autumn,term,2026-09-01,2026-12-20,,2027\n',
  'users.csv': 'sourcedId,status,dateLastModified,enabledUser,orgSourcedIds,role,username,userIds,givenName,familyName\n'
    + 't1,,,true,org1,teacher,ms.khan,,Amina,Khan\nt2,,,true,org1,teacher,mr.lee,,Tom,Lee\n'
    + 's1,,,true,org1,student,amara,,Amara,A\ns2,,,true,org1,student,ben,,Ben,B\n'
    + 's3,,,true,org1,student,chloe,,Chloe,C\ns4,,,true,org1,student,dev,,Dev,D\n',
  'classes.csv': 'sourcedId,status,dateLastModified,title,grades,courseSourcedId,classCode,classType,location,schoolSourcedId,termSourcedIds\n'
    + 'c1,,,7A Science,,course1,,scheduled,,org1,term1\nc2,,,8B History,,course1,,scheduled,,org1,term1\n',
  'enrollments.csv': 'sourcedId,status,dateLastModified,classSourcedId,schoolSourcedId,userSourcedId,role,primary,beginDate,endDate\n'
    + 'e1,,,c1,org1,t1,teacher,true,,\ne2,,,c1,org1,s1,student,false,,\ne3,,,c1,org1,s2,student,false,,\n'
    + 'e4,,,c2,org1,t2,teacher,true,,\ne5,,,c2,org1,s3,student,false,,\ne6,,,c2,org1,s4,student,false,,\n'
    + 'e7,,,c9,org1,s4,student,false,,\n',
};

/**
 * A zip (stored, no compression) of text files.
 * @param {Record<string, string>} files
 * @returns {Buffer}
 */
function zipOf(files) {
  const locals = [];
  const central = [];
  let offset = 0;
  for (const [name, text] of Object.entries(files)) {
    const data = Buffer.from(text);
    const fname = Buffer.from(name);
    const crc = crc32(data);
    const local = Buffer.alloc(30);
    local.writeUInt32LE(0x04034b50, 0);
    local.writeUInt16LE(20, 4);
    local.writeUInt32LE(crc, 14);
    local.writeUInt32LE(data.length, 18);
    local.writeUInt32LE(data.length, 22);
    local.writeUInt16LE(fname.length, 26);
    const dir = Buffer.alloc(46);
    dir.writeUInt32LE(0x02014b50, 0);
    dir.writeUInt16LE(20, 4);
    dir.writeUInt16LE(20, 6);
    dir.writeUInt32LE(crc, 16);
    dir.writeUInt32LE(data.length, 20);
    dir.writeUInt32LE(data.length, 24);
    dir.writeUInt16LE(fname.length, 28);
    dir.writeUInt32LE(offset, 42);
    locals.push(local, fname, data);
    central.push(dir, fname);
    offset += local.length + fname.length + data.length;
  }
  const dirSize = central.reduce((n, b) => n + b.length, 0);
  const end = Buffer.alloc(22);
  end.writeUInt32LE(0x06054b50, 0);
  end.writeUInt16LE(Object.keys(files).length, 8);
  end.writeUInt16LE(Object.keys(files).length, 10);
  end.writeUInt32LE(dirSize, 12);
  end.writeUInt32LE(offset, 16);
  return Buffer.concat([...locals, ...central, end]);
}

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
    await checkAxe(`${name} at ${width} px`);
    await page.screenshot({ path: join(OUT, `roster-${name}-${width}.png`), fullPage: true });
  }
  await page.setViewportSize({ width: WIDTHS[0], height: 800 });
}

/**
 * Calls the API with the page's session.
 * @param {string} method
 * @param {string} path
 * @param {unknown} [body]
 */
async function api(method, path, body) {
  return page.evaluate(async ({ method, path, body }) => {
    /** @type {Record<string, string>} */
    const headers = { Accept: 'application/json' };
    if (method !== 'GET') headers['X-CSRF-Token'] = /** @type {HTMLMetaElement} */ (document.querySelector('meta[name="csrf-token"]')).content;
    if (body !== undefined) headers['Content-Type'] = 'application/json';
    const res = await fetch(path, { method, headers, body: body === undefined ? undefined : JSON.stringify(body) });
    return { status: res.status, text: await res.text() };
  }, { method, path, body });
}

await runTest('roster', 4 * 60 * 1000, async () => {
  const consoleUrl = await startServer({ agents: 4, password: PASSWORD });
  ({ page } = await openBrowser());
  await signIn(page, consoleUrl, PASSWORD);

  await openConsolePage(page, 'lessons', '/rosters');
  await page.waitForURL((url) => url.pathname === '/rosters', { timeout: 15_000 });
  await page.waitForSelector('#roster-classes-empty:not([hidden])');
  await screenshots('empty');

  step('a dry run reports the bad row and imports nothing');
  const bundle = join(OUT, 'roster-bundle.zip');
  writeFileSync(bundle, zipOf(FILES));
  await page.setInputFiles('#roster-file', bundle);
  await page.click('#roster-dry');
  await until('the dry run is reported', async () => (await page.textContent('#roster-report-summary'))?.includes('would be created') ?? false);
  assert.match(await page.textContent('#roster-report-summary') ?? '', /2 classes would be created/);
  const problem = await page.$$eval('#roster-problems tbody tr', (rows) => rows.map((r) => r.textContent));
  assert.equal(problem.length, 1);
  assert.match(problem[0] ?? '', /enrollments\.csv8unknown class "c9"/);
  assert.equal(await page.isVisible('#roster-classes-empty'), true);
  await screenshots('dry-run');

  step('the import');
  await page.click('#roster-import');
  await page.waitForFunction(() => document.querySelectorAll('#roster-classes tbody tr').length === 2);
  const rows = await page.$$eval('#roster-classes tbody tr', (rs) => rs.map((r) => [...r.cells].map((c) => c.textContent)));
  assert.deepEqual(rows, [['7A Science', 'ms.khan', '2', 'Active'], ['8B History', 'mr.lee', '2', 'Active']]);
  await screenshots('imported');

  step('ms.khan signs in and starts a lesson for her class');
  const made = await api('POST', '/api/v1/users', { username: 'ms.khan', password: TEACHER_PASSWORD, role: 'teacher' });
  assert.equal(made.status, 201, made.text);
  await page.context().clearCookies();
  await page.goto(consoleUrl);
  await page.waitForURL((url) => url.pathname === '/login', { timeout: 15_000 });
  await page.fill('#username', 'ms.khan');
  await page.fill('#password', TEACHER_PASSWORD);
  await page.click('#login-button');
  await page.waitForURL((url) => url.pathname === '/', { timeout: 15_000 });
  await page.waitForSelector('#tree-mine:not([hidden])');
  await until('her class lists its two computers', async () => (await page.textContent('#tree-mine .count')) === '2');
  const mine = await page.$$eval('#tree-mine .tree-name', (names) => names.map((n) => n.textContent));
  assert.deepEqual(mine, ['7A Science']);
  const others = await page.$$eval('.tree-name', (names) => names.map((n) => n.textContent));
  assert.ok(!others.includes('8B History'), `she sees ${others}`);
  assert.equal(await page.isVisible('nav a[href="/rosters"]'), false);
  await screenshots('teacher-tree');

  await page.click('#tree-mine a.tree-action');
  await page.waitForURL((url) => url.pathname === '/lessons', { timeout: 15_000 });
  await until('her class is chosen', async () => (await page.$eval('#lesson-group', (s) => /** @type {HTMLSelectElement} */ (s).selectedOptions[0]?.textContent)) === '7A Science');
  await page.check('#lesson-lock');
  await page.click('#lesson-start');
  await until('the lesson starts', async () => (await page.textContent('#notice'))?.includes('Lesson started for 7A Science') ?? false);
  await screenshots('lesson');
  await page.click('nav.pagenav a[href="/"]');
  await until('the running lesson is in the tree', async () => (await page.textContent('#tree-lessons'))?.includes('7A Science') ?? false);
  await page.screenshot({ path: join(OUT, 'roster-teacher-lesson-1440.png') });
});
