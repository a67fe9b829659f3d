// Rosters page: uploads a OneRoster bundle (a dry run first, or straight
// away), shows the import report with every bad row and its line, the drop
// folder's last import, and the rostered classes.

import { apiRaw, api } from './api.js';
import { $, el, formatTime, hideNotice, initPage, showNotice } from './page.js';

/**
 * @typedef {{file: string, line: number, reason: string}} Problem
 * @typedef {{rows: number, imported: number, bad: number, deleted: number, ignored: number}} FileCount
 * @typedef {{files?: Record<string, FileCount>, problems?: Problem[], problems_total?: number, error?: string,
 *   classes?: {created: string[], updated: string[], retired: string[], unchanged: number},
 *   teachers?: {granted: string[], removed: string[]}}} Report
 * @typedef {{id: number, at: number, source: string, actor: string, dry_run: boolean, outcome: string, report: Report}} Import
 * @typedef {{sourced_id: string, title: string, group_id: number, teachers: string[], students: number, retired_at: number | null}} RosterClass
 * @typedef {{classes: RosterClass[], last_upload: Import | null, last_folder: Import | null, folder: string, folder_interval_secs: number,
 *   limits: {upload_bytes: number}}} Overview
 */

const fileInput = /** @type {HTMLInputElement} */ ($('roster-file'));
let uploadLimit = 16 * 1024 * 1024;

/**
 * "1 row", "2 rows".
 * @param {number} n
 * @param {string} noun
 * @returns {string}
 */
function plural(n, noun) {
  return `${n} ${noun}${n === 1 ? '' : 's'}`;
}

/**
 * "3 classes created, 1 retired …" for a report.
 * @param {Import} imp
 * @returns {string}
 */
function summary(imp) {
  const r = imp.report || {};
  const when = `${imp.dry_run ? 'Checked' : 'Imported'} ${formatTime(imp.at)} by ${imp.actor}`;
  if (r.error) return `${when}: refused, ${r.error}`;
  const c = r.classes || { created: [], updated: [], retired: [], unchanged: 0 };
  const verb = imp.dry_run ? 'would be ' : '';
  return `${when}: ${c.created.length} classes ${verb}created, ${c.updated.length} ${verb}updated, `
    + `${c.retired.length} ${verb}retired, ${c.unchanged} unchanged; ${plural(r.problems_total || 0, 'row')} not imported.`;
}

/**
 * Shows a report in the report card.
 * @param {Import} imp
 */
function showReport(imp) {
  const r = imp.report || {};
  $('roster-report-summary').textContent = summary(imp);
  const counts = /** @type {HTMLTableElement} */ ($('roster-counts'));
  const files = Object.entries(r.files || {});
  counts.tBodies[0].replaceChildren(...files.map(([name, c]) => {
    const tr = el('tr');
    tr.append(el('td', '', name), ...[c.rows, c.imported, c.bad, c.deleted, c.ignored].map((n) => el('td', 'num', String(n))));
    return tr;
  }));
  counts.hidden = files.length === 0;
  const lines = [];
  const c = r.classes;
  if (c && c.created.length) lines.push(`New classes: ${c.created.join(', ')}`);
  if (c && c.updated.length) lines.push(`Changed classes: ${c.updated.join(', ')}`);
  if (c && c.retired.length) lines.push(`Retired classes: ${c.retired.join(', ')}`);
  const would = imp.dry_run ? 'would be ' : '';
  if (r.teachers && r.teachers.granted.length) lines.push(`Teachers ${would}given their classes: ${r.teachers.granted.join(', ')}`);
  if (r.teachers && r.teachers.removed.length) lines.push(`Teachers who ${imp.dry_run ? 'would lose' : 'lose'} the roster's access: ${r.teachers.removed.join(', ')}`);
  $('roster-changes').replaceChildren(...lines.map((l) => el('li', '', l)));
  const problems = r.problems || [];
  const table = /** @type {HTMLTableElement} */ ($('roster-problems'));
  table.tBodies[0].replaceChildren(...problems.map((p) => {
    const tr = el('tr', 'problem');
    tr.append(el('td', '', p.file), el('td', 'num', String(p.line)), el('td', '', p.reason));
    return tr;
  }));
  table.hidden = problems.length === 0;
  $('roster-problems-heading').hidden = problems.length === 0;
  if ((r.problems_total || 0) > problems.length) {
    $('roster-problems-heading').textContent = `Rows not imported (first ${problems.length} of ${r.problems_total})`;
  } else {
    $('roster-problems-heading').textContent = 'Rows not imported';
  }
}

/**
 * Lists the classes.
 * @param {RosterClass[]} classes
 */
function showClasses(classes) {
  const table = /** @type {HTMLTableElement} */ ($('roster-classes'));
  table.tBodies[0].replaceChildren(...classes.map((c) => {
    const tr = el('tr');
    tr.dataset.sourcedId = c.sourced_id;
    const status = c.retired_at ? `Retired ${formatTime(c.retired_at)}` : 'Active';
    tr.append(el('td', '', c.title), el('td', '', c.teachers.join(', ') || '—'), el('td', 'num', String(c.students)), el('td', '', status));
    return tr;
  }));
  table.hidden = classes.length === 0;
  $('roster-classes-empty').hidden = classes.length > 0;
}

/** Loads the classes and the last imports. */
async function load() {
  try {
    /** @type {Overview} */
    const o = await api('GET', '/api/v1/roster');
    uploadLimit = o.limits.upload_bytes;
    showClasses(o.classes);
    if (o.last_upload) showReport(o.last_upload);
    $('roster-folder').textContent = `Files put in ${o.folder} under the server's data folder are imported within ${Math.round(o.folder_interval_secs / 60) || 1} min, when they change.`;
    $('roster-folder-last').textContent = o.last_folder ? summary(o.last_folder) : 'Nothing imported from the folder yet.';
  } catch (err) {
    showNotice(`Could not load the roster: ${err.message}`);
  }
}

/**
 * Uploads the chosen bundle.
 * @param {boolean} dryRun
 */
async function send(dryRun) {
  const file = fileInput.files && fileInput.files[0];
  if (!file) {
    showNotice('Choose the bundle (.zip) first');
    fileInput.focus();
    return;
  }
  if (file.size > uploadLimit) {
    showNotice(`The bundle is over ${Math.round(uploadLimit / 1048576)} MiB`);
    return;
  }
  hideNotice();
  const buttons = [$('roster-dry'), $('roster-import')].map((b) => /** @type {HTMLButtonElement} */ (b));
  for (const b of buttons) b.disabled = true;
  try {
    await apiRaw('POST', `/api/v1/roster/import?dry_run=${dryRun}`, {
      body: /** @type {string} */ (/** @type {unknown} */ (file)),
      contentType: 'application/zip',
    });
    await load();
    showNotice(dryRun ? 'Checked: nothing was imported' : 'Imported', 'info');
  } catch (err) {
    await load();
    showNotice(`The bundle was not imported: ${err.message}`);
  } finally {
    for (const b of buttons) b.disabled = false;
  }
}

/** Hooks up the page and starts loading. */
function main() {
  initPage('Rosters');
  $('roster-form').addEventListener('submit', (event) => {
    event.preventDefault();
    send(false);
  });
  $('roster-dry').addEventListener('click', () => send(true));
  load();
}

main();
