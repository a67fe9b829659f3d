// Shared by files.mjs and exams.mjs: axe-core checks and screenshots.

import { createRequire } from 'node:module';
import { join } from 'node:path';
import { OUT, step } from './lib.mjs';

/** The rules axe runs: WCAG 2.0 and 2.1, levels A and AA. */
const TAGS = ['wcag2a', 'wcag2aa', 'wcag21a', 'wcag21aa'];
const AXE_SOURCE = createRequire(import.meta.url)('axe-core').source;

/**
 * Fails on any axe violation on the page.
 * @param {import('playwright-core').Page} page
 * @param {string} what
 */
export async function checkAxeOn(page, what) {
  if (!(await page.evaluate(() => 'axe' in window))) await page.evaluate(AXE_SOURCE);
  const violations = await page.evaluate(async (tags) => {
    // @ts-ignore axe is injected above
    const result = await window.axe.run(document, { runOnly: { type: 'tag', values: tags } });
    return result.violations.map((v) => `${v.id} (${v.help}): ${v.nodes.map((n) => n.target.join(' ')).join(', ')}`);
  }, TAGS);
  if (violations.length) throw new Error(`axe on ${what}:\n${violations.join('\n')}`);
  step(`axe: ${what} passes`);
}

/**
 * Full-page screenshots at 1440 and 1024 px into tests/e2e/out/.
 * @param {import('playwright-core').Page} page
 * @param {string} name
 */
export async function screenshotsOf(page, name) {
  for (const width of [1440, 1024]) {
    await page.setViewportSize({ width, height: 900 });
    await page.screenshot({ path: join(OUT, `${name}-${width}.png`), fullPage: true });
  }
  await page.setViewportSize({ width: 1440, height: 900 });
}
