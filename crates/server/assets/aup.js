// Acceptable use policies: write and publish a group's policy (each
// publication is a new version; old ones stay read-only), see who accepted
// which version on which computer, who online has not yet, and export the
// acceptances as CSV. Everything here needs aup.manage.

import { api } from './api.js';
import { $, el, fillSelect, formatTime, hideNotice, initPage, showNotice } from './page.js';

/** Most bytes of text the server takes. */
const MAX_TEXT_BYTES = 32 * 1024;

/**
 * @typedef {object} Version
 * @property {number} id
 * @property {number} group_id
 * @property {number} number
 * @property {string} title
 * @property {string} text
 * @property {string} published_by
 * @property {number} published_at
 */

/**
 * @typedef {object} GroupPolicies
 * @property {number} group_id
 * @property {string} group_name
 * @property {string} kind
 * @property {string} priority
 * @property {Version[]} versions
 */

/**
 * @typedef {object} Acceptance
 * @property {number} version_id
 * @property {number} device_id
 * @property {string} username
 * @property {number} accepted_at
 * @property {string} hostname
 * @property {number} version
 * @property {number} group_id
 */

/**
 * @typedef {object} Pending
 * @property {number} device_id
 * @property {string} hostname
 * @property {string} username
 * @property {number} version_id
 * @property {number} version
 * @property {number} group_id
 * @property {string} status
 */

const groupSelect = /** @type {HTMLSelectElement} */ ($('aup-group'));
const titleInput = /** @type {HTMLInputElement} */ ($('aup-title'));
const textInput = /** @type {HTMLTextAreaElement} */ ($('aup-text'));
const versionFilter = /** @type {HTMLSelectElement} */ ($('aup-filter-version'));
const csvLink = /** @type {HTMLAnchorElement} */ ($('aup-csv'));

/** @type {GroupPolicies[]} */
let groups = [];

/**
 * The group's name, for tables.
 * @param {number} id
 * @returns {string}
 */
function groupName(id) {
  return groups.find((g) => g.group_id === id)?.group_name ?? `group ${id}`;
}

/**
 * A table cell with text.
 * @param {string} text
 * @param {string} [className]
 * @returns {HTMLElement}
 */
function td(text, className) {
  return el('td', className, text);
}

/**
 * Fills a table's body, or one row saying it is empty.
 * @param {string} id
 * @param {HTMLElement[]} rows
 * @param {number} columns
 * @param {string} empty
 */
function fillTable(id, rows, columns, empty) {
  const body = /** @type {HTMLTableElement} */ ($(id)).tBodies[0];
  if (rows.length === 0) {
    const cell = /** @type {HTMLTableCellElement} */ (el('td', 'hint', empty));
    cell.colSpan = columns;
    const row = el('tr');
    row.append(cell);
    body.replaceChildren(row);
  } else {
    body.replaceChildren(...rows);
  }
}

/** Puts the chosen group's current version into the form. */
function fillForm() {
  const g = groups.find((x) => String(x.group_id) === groupSelect.value);
  const current = g?.versions[0];
  titleInput.value = current?.title ?? 'Acceptable use of school computers';
  textInput.value = current?.text ?? '';
  showSize();
}

/** Shows how much of the size limit the text uses. */
function showSize() {
  const bytes = new TextEncoder().encode(textInput.value).length;
  $('aup-size').textContent = `${Math.ceil(bytes / 1024)} of ${MAX_TEXT_BYTES / 1024} KiB`;
}

/** Loads the groups and their versions. */
async function loadVersions() {
  groups = await api('GET', '/api/v1/aup');
  const chosen = groupSelect.value;
  fillSelect(
    groupSelect,
    groups.map((g) => [String(g.group_id), g.versions.length
      ? `${g.group_name} (version ${g.versions[0].number})`
      : `${g.group_name} (no policy)`]),
    chosen || undefined,
  );
  const all = groups.flatMap((g) => g.versions);
  all.sort((a, b) => b.id - a.id);
  const rows = all.map((v) => {
    const row = el('tr');
    const text = el('td');
    const details = el('details');
    details.append(el('summary', '', v.title), el('pre', 'aup-text', v.text));
    text.append(details);
    const current = groups.find((g) => g.group_id === v.group_id)?.versions[0]?.id === v.id;
    row.append(
      td(groupName(v.group_id)),
      td(current ? `${v.number} (current)` : String(v.number)),
      text,
      td(formatTime(v.published_at)),
      td(v.published_by),
    );
    return row;
  });
  fillTable('aup-versions', rows, 5, 'No policy has been published yet.');
  $('aup-versions-summary').textContent = `${all.length} version${all.length === 1 ? '' : 's'}`;
  const filter = versionFilter.value;
  /** @type {[string, string][]} */
  const choices = all.map((v) => [String(v.id), `${groupName(v.group_id)} — version ${v.number}`]);
  fillSelect(versionFilter, [['', 'All versions'], ...choices], filter);
  if (!chosen) fillForm();
}

/** Loads who accepted (for the chosen version) and who has not yet. */
async function loadReports() {
  const version = versionFilter.value;
  const query = version ? `?version=${encodeURIComponent(version)}` : '';
  csvLink.href = `/api/v1/aup/acceptances.csv${query}`;
  /** @type {Acceptance[]} */
  const accepted = await api('GET', `/api/v1/aup/acceptances${query}`);
  fillTable('aup-accepted', accepted.map((a) => {
    const row = el('tr');
    row.append(
      td(formatTime(a.accepted_at)),
      td(a.username),
      td(a.hostname),
      td(`${groupName(a.group_id)} — version ${a.version}`),
    );
    return row;
  }), 4, 'No one has accepted yet.');
  $('aup-accepted-summary').textContent = `${accepted.length} acceptance${accepted.length === 1 ? '' : 's'}`;
  /** @type {Pending[]} */
  const pending = await api('GET', '/api/v1/aup/pending');
  fillTable('aup-pending', pending.map((p) => {
    const row = el('tr');
    const unsupported = p.status === 'unsupported';
    row.append(
      td(p.hostname),
      td(p.username),
      td(`${groupName(p.group_id)} — version ${p.version}`),
      td(unsupported ? 'This computer cannot show it' : 'Waiting', unsupported ? 'aup-status-unsupported' : ''),
    );
    return row;
  }), 4, 'Every signed-in student online has accepted their policy.');
  $('aup-pending-summary').textContent = `${pending.length} computer${pending.length === 1 ? '' : 's'} waiting`;
}

/**
 * Runs `f`, showing what went wrong.
 * @param {() => Promise<void>} f
 */
async function guarded(f) {
  try {
    await f();
  } catch (e) {
    showNotice(e instanceof Error ? e.message : String(e));
  }
}

$('aup-form').addEventListener('submit', (e) => {
  e.preventDefault();
  hideNotice();
  guarded(async () => {
    /** @type {Version} */
    const v = await api('POST', '/api/v1/aup', {
      group_id: Number(groupSelect.value),
      title: titleInput.value,
      text: textInput.value,
    });
    showNotice(`Version ${v.number} published.`, 'info');
    await loadVersions();
    await loadReports();
  });
});

groupSelect.addEventListener('change', fillForm);
textInput.addEventListener('input', showSize);
versionFilter.addEventListener('change', () => guarded(loadReports));
$('aup-refresh').addEventListener('click', () => guarded(async () => {
  await loadVersions();
  await loadReports();
}));

initPage('Acceptable use');
guarded(async () => {
  await loadVersions();
  await loadReports();
});
