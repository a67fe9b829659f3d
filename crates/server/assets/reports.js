// Reports page: scheduled safeguarding reports (who had the most violations,
// which sites each group visited, an activity summary). Lists them with
// their schedule and next and last run, creates and deletes them, runs one
// now, and lists a report's runs with links to download each CSV.

import { api } from './api.js';
import { $, el, hideNotice, showNotice } from './page.js';
import { fillGroupSelect, initSafetyPage, loadGroups, timeElement } from './safety.js';

/**
 * @typedef {object} Report
 * @property {number} id
 * @property {string} name
 * @property {string} kind top_violating_users | websites_by_group | activity_summary
 * @property {number | null} group_id
 * @property {number} days
 * @property {string} schedule "daily HH:MM" or "weekly mon HH:MM"
 * @property {number} next_run ms
 * @property {number | null} last_run ms
 */

/** @typedef {{file: string, at: number, rows: number}} Run */

const KIND_LABELS = {
  top_violating_users: 'Users with the most violations',
  websites_by_group: 'Websites visited, by group',
  activity_summary: 'Activity summary',
};
const DAY_NAMES = { mon: 'Monday', tue: 'Tuesday', wed: 'Wednesday', thu: 'Thursday', fri: 'Friday', sat: 'Saturday', sun: 'Sunday' };
const MAX_DAYS = 365;

/** @type {Report[]} */
let reports = [];
/** @type {{id: number, name: string}[]} */
let groups = [];
/** The report whose runs are shown. @type {number | null} */
let showingRuns = null;

const table = /** @type {HTMLTableElement} */ ($('reports-table'));
const runsTable = /** @type {HTMLTableElement} */ ($('runs-table'));
const frequency = /** @type {HTMLSelectElement} */ ($('report-frequency'));
const weekday = /** @type {HTMLSelectElement} */ ($('report-weekday'));
const formError = $('report-error');

/**
 * A schedule in words: "Every day at 00:05", "Every Monday at 07:00".
 * @param {string} schedule
 * @returns {string}
 */
function describeSchedule(schedule) {
  const parts = String(schedule || '').trim().split(/\s+/);
  if (parts[0] === 'daily' && parts.length === 2) return `Every day at ${parts[1]}`;
  if (parts[0] === 'weekly' && parts.length === 3) return `Every ${DAY_NAMES[parts[1]] || parts[1]} at ${parts[2]}`;
  return schedule;
}

/**
 * A group's name for a report.
 * @param {number | null} id
 * @returns {string}
 */
function groupName(id) {
  if (id === null || id === undefined) return 'Everyone';
  return groups.find((g) => g.id === id)?.name ?? `group ${id}`;
}

/**
 * A cell with a time, or a word when there is none.
 * @param {number | null} ms
 * @param {string} none
 * @param {string} cls
 * @returns {HTMLElement}
 */
function timeCell(ms, none, cls) {
  const td = el('td', cls);
  if (ms) td.append(timeElement(ms));
  else td.append(el('span', 'hint', none));
  return td;
}

/**
 * A button for a report's row.
 * @param {string} text
 * @param {string} cls
 * @param {string} label for screen readers
 * @param {(button: HTMLButtonElement) => void} onClick
 * @returns {HTMLButtonElement}
 */
function rowButton(text, cls, label, onClick) {
  const b = /** @type {HTMLButtonElement} */ (el('button', cls, text));
  b.type = 'button';
  b.setAttribute('aria-label', label);
  b.addEventListener('click', () => onClick(b));
  return b;
}

/**
 * A row of the reports table.
 * @param {Report} r
 * @returns {HTMLTableRowElement}
 */
function reportRow(r) {
  const tr = /** @type {HTMLTableRowElement} */ (el('tr'));
  tr.dataset.reportId = String(r.id);
  tr.classList.toggle('selected', showingRuns === r.id);
  const actions = el('td', 'row-actions');
  actions.append(
    rowButton('Run now', 'report-run', `Run ${r.name} now`, (b) => runNow(r, b)),
    ' ',
    rowButton('Runs', 'report-runs', `Show the runs of ${r.name}`, () => showRuns(r, true)),
    ' ',
    rowButton('Delete', 'report-delete danger', `Delete ${r.name}`, (b) => remove(r, b)),
  );
  const kind = el('td', 'kind', KIND_LABELS[r.kind] || r.kind);
  kind.append(el('span', 'hint block', `last ${r.days} day${r.days === 1 ? '' : 's'}`));
  tr.append(
    el('td', 'report-name', r.name),
    kind,
    el('td', 'group', groupName(r.group_id)),
    el('td', 'schedule', describeSchedule(r.schedule)),
    timeCell(r.next_run, '—', 'next-run'),
    timeCell(r.last_run, 'Never', 'last-run'),
    actions,
  );
  return tr;
}

/** Redraws the reports table. */
function render() {
  const sorted = [...reports].sort((a, b) => a.name.localeCompare(b.name) || a.id - b.id);
  table.tBodies[0].replaceChildren(...sorted.map(reportRow));
  table.hidden = sorted.length === 0;
  const empty = $('reports-empty');
  empty.hidden = sorted.length > 0;
  empty.textContent = 'No reports are scheduled yet.';
  if (showingRuns !== null && !reports.some((r) => r.id === showingRuns)) {
    showingRuns = null;
    $('runs').hidden = true;
  }
}

/**
 * Reloads the reports.
 * @param {boolean} [quiet]
 */
async function loadReports(quiet = false) {
  try {
    const list = await api('GET', '/api/v1/reports');
    reports = Array.isArray(list) ? list : [];
    render();
  } catch (err) {
    $('reports-empty').textContent = 'Could not load the reports.';
    if (!quiet) showNotice(`Could not load the reports: ${err.message}`);
  }
}

/**
 * A link that downloads a run's CSV.
 * @param {Report} r
 * @param {Run} run
 * @returns {HTMLAnchorElement}
 */
function runLink(r, run) {
  const a = /** @type {HTMLAnchorElement} */ (el('a', 'run-download', run.file));
  a.href = `/api/v1/reports/${encodeURIComponent(r.id)}/runs/${encodeURIComponent(run.file)}`;
  a.setAttribute('download', run.file);
  a.setAttribute('aria-label', `Download ${run.file} (${r.name})`);
  return a;
}

/**
 * Shows a report's runs, newest first.
 * @param {Report} r
 * @param {boolean} [focus] move the focus to the list
 */
async function showRuns(r, focus = false) {
  showingRuns = r.id;
  for (const tr of table.tBodies[0].rows) tr.classList.toggle('selected', tr.dataset.reportId === String(r.id));
  $('runs-heading').textContent = `Runs of ${r.name}`;
  $('runs').hidden = false;
  $('runs').dataset.reportId = String(r.id);
  try {
    const list = await api('GET', `/api/v1/reports/${encodeURIComponent(r.id)}/runs`);
    if (showingRuns !== r.id) return;
    /** @type {Run[]} */
    const runs = (Array.isArray(list) ? list : []).sort((a, b) => b.at - a.at);
    runsTable.tBodies[0].replaceChildren(...runs.map((run) => {
      const tr = /** @type {HTMLTableRowElement} */ (el('tr', 'run'));
      const at = el('td', 'at');
      at.append(timeElement(run.at));
      const file = el('td', 'file');
      file.append(runLink(r, run));
      tr.append(at, el('td', 'rows', String(run.rows)), file);
      return tr;
    }));
    runsTable.hidden = runs.length === 0;
    $('runs-empty').hidden = runs.length > 0;
    if (focus) $('runs-heading').focus();
  } catch (err) {
    showNotice(`Could not load the runs of ${r.name}: ${err.message}`);
  }
}

/**
 * Runs a report now and shows its runs.
 * @param {Report} r
 * @param {HTMLButtonElement} button
 */
async function runNow(r, button) {
  hideNotice();
  button.disabled = true;
  try {
    const run = await api('POST', `/api/v1/reports/${encodeURIComponent(r.id)}/run`);
    const rows = run && typeof run.rows === 'number' ? run.rows : null;
    showNotice(`${r.name} ran${rows === null ? '' : `: ${rows} row${rows === 1 ? '' : 's'}`}`, 'info');
    await loadReports(true);
    const fresh = reports.find((x) => x.id === r.id) || r;
    await showRuns(fresh);
  } catch (err) {
    showNotice(`Could not run ${r.name}: ${err.message}`);
  } finally {
    button.disabled = false;
  }
}

/**
 * Deletes a report (and its runs) after asking.
 * @param {Report} r
 * @param {HTMLButtonElement} button
 */
async function remove(r, button) {
  if (!confirm(`Delete the report “${r.name}” and its runs?`)) return;
  hideNotice();
  button.disabled = true;
  try {
    await api('DELETE', `/api/v1/reports/${encodeURIComponent(r.id)}`);
    reports = reports.filter((x) => x.id !== r.id);
    render();
    showNotice(`Report ${r.name} deleted`, 'info');
  } catch (err) {
    button.disabled = false;
    showNotice(`Could not delete ${r.name}: ${err.message}`);
  }
}

/**
 * Shows a problem with the form and focuses the field.
 * @param {string} text
 * @param {HTMLElement} [field]
 */
function formProblem(text, field) {
  formError.textContent = text;
  formError.hidden = false;
  field?.focus();
}

/**
 * Creates a report from the form.
 * @param {SubmitEvent} event
 */
async function create(event) {
  event.preventDefault();
  formError.hidden = true;
  hideNotice();
  const nameInput = /** @type {HTMLInputElement} */ ($('report-name'));
  const daysInput = /** @type {HTMLInputElement} */ ($('report-days'));
  const timeInput = /** @type {HTMLInputElement} */ ($('report-time'));
  const name = nameInput.value.trim();
  if (!name) return formProblem('Give the report a name', nameInput);
  const days = Number(daysInput.value);
  if (!Number.isInteger(days) || days < 1 || days > MAX_DAYS) {
    return formProblem(`A report covers 1 to ${MAX_DAYS} whole days`, daysInput);
  }
  const time = timeInput.value.slice(0, 5);
  if (!/^([01]\d|2[0-3]):[0-5]\d$/.test(time)) return formProblem('Choose the time the report runs', timeInput);
  const schedule = frequency.value === 'weekly' ? `weekly ${weekday.value} ${time}` : `daily ${time}`;
  const groupValue = /** @type {HTMLSelectElement} */ ($('report-group')).value;
  /** @type {Record<string, unknown>} */
  const body = { name, kind: /** @type {HTMLSelectElement} */ ($('report-kind')).value, days, schedule };
  if (groupValue) body.group_id = Number(groupValue);

  const button = /** @type {HTMLButtonElement} */ ($('report-create'));
  button.disabled = true;
  try {
    const report = await api('POST', '/api/v1/reports', body);
    reports = reports.filter((r) => r.id !== report.id);
    reports.push(report);
    render();
    nameInput.value = '';
    showNotice(`Report ${report.name} created; next run ${timeElement(report.next_run).textContent}`, 'info');
  } catch (err) {
    formProblem(`Not created: ${err.message}`);
  } finally {
    button.disabled = false;
  }
}

/** Hooks up the page and starts loading. */
async function main() {
  initSafetyPage('Reports');
  $('report-form').addEventListener('submit', create);
  frequency.addEventListener('change', () => {
    weekday.disabled = frequency.value !== 'weekly';
  });
  weekday.disabled = frequency.value !== 'weekly';
  try {
    groups = await loadGroups();
    fillGroupSelect(/** @type {HTMLSelectElement} */ ($('report-group')), groups, 'Everyone');
  } catch (err) {
    showNotice(`Could not load the groups: ${err.message}`);
  }
  await loadReports();
}

main();
