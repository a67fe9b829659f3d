// The console's navigation: a few sections in the top bar, each section's
// pages in a sub-navigation under it. Checks, for the administrator, that
// both fit one row at 1440 and 1024 px, that the current section and page
// are marked for assistive technology, that the keyboard reaches and follows
// the links, and that the navigation passes axe-core (WCAG 2.1 A/AA).
// Screenshots of an administration page and a lessons page at both widths
// go to tests/e2e/out/nav-*.png.
//
// Run: node tests/e2e/nav.mjs (needs `cargo build -p lectern-server -p lectern-agent`).

import assert from 'node:assert/strict';
import { createRequire } from 'node:module';
import { join } from 'node:path';
import { OUT, openBrowser, openConsolePage, runTest, signIn, startServer, step } from './lib.mjs';

const PASSWORD = 'e2e-nav-admin-1';
const WIDTHS = [1440, 1024];
const TAGS = ['wcag2a', 'wcag2aa', 'wcag21a', 'wcag21aa'];
const AXE_SOURCE = createRequire(import.meta.url)('axe-core').source;

/** @type {import('playwright-core').Page} */
let page;

/** axe-core on the top bar and the sub-navigation only. @param {string} what */
async function checkAxe(what) {
  if (!(await page.evaluate(() => 'axe' in window))) await page.evaluate(AXE_SOURCE);
  const violations = await page.evaluate(async (tags) => {
    const include = [['header.topbar']];
    if (document.querySelector('nav.subnav')) include.push(['nav.subnav']);
    // @ts-ignore axe is injected above
    const result = await window.axe.run({ include }, { runOnly: { type: 'tag', values: tags } });
    return result.violations.map((/** @type {any} */ v) => `${v.id}: ${v.nodes.map((/** @type {any} */ n) => n.target.join(' ')).join(', ')}`);
  }, TAGS);
  assert.deepEqual(violations, [], `axe on ${what}`);
}

/**
 * How many rows the links of a navigation take (distinct top edges).
 * @param {string} selector
 */
async function rows(selector) {
  return page.$$eval(`${selector} a`, (as) => new Set(as.map((a) => Math.round(a.getBoundingClientRect().top))).size);
}

/** Whether the top bar's brand, sections and account share one row. */
async function topbarOneRow() {
  return page.$$eval('.topbar > *', (parts) => {
    const middles = parts.map((p) => { const r = p.getBoundingClientRect(); return (r.top + r.bottom) / 2; });
    return Math.max(...middles) - Math.min(...middles) < 12;
  });
}

/**
 * At each width: one row for the top bar and one for the section's pages,
 * axe, a screenshot.
 * @param {string} name
 */
async function checkWidths(name) {
  for (const width of WIDTHS) {
    await page.setViewportSize({ width, height: 800 });
    assert.equal(await rows('nav.pagenav'), 1, `${name}: sections on one row at ${width} px`);
    assert.ok(await topbarOneRow(), `${name}: the top bar on one row at ${width} px`);
    if (name !== 'classroom') assert.equal(await rows('nav.subnav'), 1, `${name}: section pages on one row at ${width} px`);
    await checkAxe(`${name} at ${width} px`);
    await page.screenshot({ path: join(OUT, `nav-${name}-${width}.png`) });
  }
  await page.setViewportSize({ width: WIDTHS[0], height: 800 });
  step(`${name}: one row each at ${WIDTHS.join(' and ')} px, axe passes`);
}

/** The text and path of each link of a navigation. @param {string} selector */
async function links(selector) {
  return page.$$eval(`${selector} a`, (as) => as.map((a) => `${a.textContent} ${new URL(/** @type {HTMLAnchorElement} */ (a).href).pathname}`));
}

await runTest('nav', 2 * 60 * 1000, async () => {
  const consoleUrl = await startServer({ agents: 1, password: PASSWORD });
  const opened = await openBrowser();
  page = opened.page;
  await signIn(page, consoleUrl, PASSWORD);

  step('the sections');
  assert.deepEqual(await links('nav.pagenav'), [
    'Classroom /', 'Lessons /lessons', 'Safeguarding /safeguarding', 'Computers /devices', 'Administration /groups',
  ]);
  assert.equal(await page.getAttribute('nav.pagenav', 'aria-label'), 'Console pages');
  assert.equal(await page.getAttribute('nav.pagenav a[data-section="classroom"]', 'aria-current'), 'page');
  assert.equal(await page.locator('nav.subnav').count(), 0, 'the classroom has no sub-navigation');
  await page.waitForSelector('#stream-status');
  await checkWidths('classroom');

  step('administration: by keyboard from the section link to the audit log');
  await page.focus('nav.pagenav a[data-section="admin"]');
  await page.keyboard.press('Enter');
  await page.waitForURL((u) => u.pathname === '/groups');
  assert.equal(await page.getAttribute('nav.subnav', 'aria-label'), 'Administration pages');
  const adminPages = await links('nav.subnav');
  assert.deepEqual(adminPages, [
    'Groups /groups', 'Resultant settings /resultant', 'Access rights /access', 'Users /users',
    'Directory /directory', 'School look /school', 'Settings /settings', 'Mail /mail', 'Audit log /audit',
    'Acceptable use /acceptable-use',
  ]);
  // Tab order: the top bar, then the section's pages.
  await page.focus('#logout-button');
  await page.keyboard.press('Tab');
  assert.equal(await page.evaluate(() => document.activeElement?.getAttribute('href')), '/groups', 'Tab from Log out reaches the first section page');
  await page.focus('nav.subnav a[href="/audit"]');
  await page.keyboard.press('Enter');
  await page.waitForURL((u) => u.pathname === '/audit');
  await page.waitForSelector('nav.subnav a[href="/audit"][aria-current="page"]');
  assert.equal(await page.getAttribute('nav.pagenav a[data-section="admin"]', 'aria-current'), 'true');
  assert.equal(await page.locator('nav a[aria-current="page"]').count(), 1);
  await checkWidths('admin');

  step('lessons: the timetable');
  await openConsolePage(page, 'lessons', '/timetable');
  assert.deepEqual(await links('nav.subnav'), [
    'Lessons /lessons', 'Timetable /timetable', 'Rosters /rosters',
    'Student sign-in /students', 'Files /files', 'Exams /exams',
  ]);
  assert.equal(await page.getAttribute('nav.pagenav a[data-section="lessons"]', 'aria-current'), 'true');
  await checkWidths('lessons');

  step('computers: devices');
  await openConsolePage(page, 'computers', '/devices');
  // The section's first page: marked once, in the sub-navigation.
  assert.equal(await page.getAttribute('nav.pagenav a[data-section="computers"]', 'aria-current'), 'true');
  assert.equal(await page.locator('nav a[aria-current="page"]').count(), 1);
  await checkWidths('computers');
  if (opened.pageErrors.length) throw new Error(`page errors: ${opened.pageErrors.join('; ')}`);
});
