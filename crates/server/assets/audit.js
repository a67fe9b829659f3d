// The audit log page: who did what, filtered by user, action, computer,
// outcome and time, paged (newest first, "Show older entries"), and the
// filtered set exported as CSV by the server. The filters live in the
// address (`/audit?user=ann&outcome=denied`) so a view can be reloaded or
// shared.

import { api } from './api.js';
import { $, el, formatTime, hideNotice, initPage, showNotice } from './page.js';

/**
 * @typedef {object} AuditEntry
 * @property {number} id
 * @property {number} at ms
 * @property {string} actor
 * @property {string | null} address
 * @property {string} action
 * @property {string} detail
 * @property {number[]} devices
 * @property {number | null} command_id
 * @property {string} outcome
 */

/** Entries per page. */
const PAGE = 100;
/** Actions offered as suggestions (any text is allowed). */
const ACTIONS = [
  'login', 'access.denied', 'command', 'settings.change', 'backup.download', 'groups', 'access',
  'lessons', 'files', 'exams', 'keywords', 'reports',
];

const user = /** @type {HTMLInputElement} */ ($('audit-user'));
const action = /** @type {HTMLInputElement} */ ($('audit-action'));
const device = /** @type {HTMLInputElement} */ ($('audit-device'));
const outcome = /** @type {HTMLSelectElement} */ ($('audit-outcome'));
const since = /** @type {HTMLInputElement} */ ($('audit-since'));
const until = /** @type {HTMLInputElement} */ ($('audit-until'));
const csvLink = /** @type {HTMLAnchorElement} */ ($('audit-csv'));
const more = /** @type {HTMLButtonElement} */ ($('audit-more'));
const tbody = /** @type {HTMLTableSectionElement} */ ($('audit-table').querySelector('tbody'));

/** Entries shown so far. */
let shown = 0;
/** The id below which the next page starts, or null when all are shown. */
let before = /** @type {number | null} */ (null);

/**
 * A `datetime-local` value as ms, or null.
 * @param {string} value
 * @returns {number | null}
 */
function toMs(value) {
  if (!value) return null;
  const ms = new Date(value).getTime();
  return Number.isFinite(ms) ? ms : null;
}

/**
 * ms as a `datetime-local` value.
 * @param {number} ms
 * @returns {string}
 */
function toInput(ms) {
  const d = new Date(ms - new Date(ms).getTimezoneOffset() * 60000);
  return d.toISOString().slice(0, 16);
}

/**
 * The filters as query parameters (empty ones left out).
 * @returns {URLSearchParams}
 */
function filters() {
  const p = new URLSearchParams();
  if (user.value.trim()) p.set('user', user.value.trim());
  if (action.value.trim()) p.set('action', action.value.trim());
  if (device.value.trim()) p.set('device', device.value.trim());
  if (outcome.value) p.set('outcome', outcome.value);
  const from = toMs(since.value);
  const to = toMs(until.value);
  if (from !== null) p.set('since', String(from));
  if (to !== null) p.set('until', String(to));
  return p;
}

/** Fills the filters from the address. */
function readAddress() {
  const p = new URLSearchParams(location.search);
  user.value = p.get('user') || '';
  action.value = p.get('action') || '';
  device.value = p.get('device') || '';
  outcome.value = p.get('outcome') || '';
  const from = Number(p.get('since'));
  const to = Number(p.get('until'));
  since.value = from > 0 ? toInput(from) : '';
  until.value = to > 0 ? toInput(to) : '';
}

/** Outcomes in words; others are shown as written. */
const OUTCOME_WORDS = {
  ok: 'Done',
  denied: 'Refused',
  failed: 'Failed',
  bad_credentials: 'Refused: wrong password',
  rate_limited: 'Refused: too many attempts',
};

/**
 * The outcome's class, as the server's filter counts it.
 * @param {string} o
 * @returns {'ok' | 'denied' | 'failed'}
 */
function outcomeClass(o) {
  if (['denied', 'rate_limited', 'bad_credentials'].includes(o) || o.startsWith('refused')) return 'denied';
  if (o.startsWith('failed') || o === 'missed' || /failed [1-9]/.test(o)) return 'failed';
  return 'ok';
}

/**
 * One table row.
 * @param {AuditEntry} e
 * @returns {HTMLTableRowElement}
 */
function row(e) {
  const tr = document.createElement('tr');
  const time = document.createElement('time');
  time.dateTime = new Date(e.at).toISOString();
  time.textContent = formatTime(e.at);
  time.title = new Date(e.at).toLocaleString();
  const cell = document.createElement('td');
  cell.append(time);
  tr.append(cell);
  tr.append(el('td', '', e.actor));
  tr.append(el('td', '', e.action));
  tr.append(el('td', '', e.devices.join(', ')));
  tr.append(el('td', '', e.detail));
  const cls = outcomeClass(e.outcome);
  const out = el('td', `outcome-${cls}`, OUTCOME_WORDS[e.outcome] || e.outcome);
  tr.append(out);
  tr.append(el('td', '', e.address || ''));
  return tr;
}

/**
 * Loads a page of entries: the first (replacing the table) or the next.
 * @param {boolean} next
 */
async function load(next) {
  hideNotice();
  const p = filters();
  p.set('limit', String(PAGE));
  if (next && before !== null) p.set('before', String(before));
  more.disabled = true;
  try {
    /** @type {AuditEntry[]} */
    const entries = await api('GET', `/api/v1/audit?${p}`);
    if (!next) {
      tbody.replaceChildren();
      shown = 0;
    }
    tbody.append(...entries.map(row));
    shown += entries.length;
    before = entries.length === PAGE ? entries[entries.length - 1].id : null;
    more.hidden = before === null;
    $('audit-summary').textContent = shown === 0
      ? 'No entries match these filters.'
      : `${shown} entr${shown === 1 ? 'y' : 'ies'} shown${before === null ? '' : '; older ones follow'}.`;
  } catch (e) {
    $('audit-summary').textContent = '';
    showNotice(e instanceof Error ? e.message : String(e));
  } finally {
    more.disabled = false;
  }
}

/** Applies the filters: into the address, the export link and the table. */
function apply() {
  const p = filters();
  const query = p.toString();
  history.replaceState(null, '', query ? `/audit?${query}` : '/audit');
  p.set('format', 'csv');
  csvLink.href = `/api/v1/audit?${p}`;
  load(false);
}

$('audit-filters').addEventListener('submit', (e) => {
  e.preventDefault();
  apply();
});
$('audit-clear').addEventListener('click', () => {
  for (const input of [user, action, device, since, until]) input.value = '';
  outcome.value = '';
  apply();
});
more.addEventListener('click', () => load(true));

initPage('Audit log');
const list = $('audit-actions');
for (const a of ACTIONS) {
  const option = document.createElement('option');
  option.value = a;
  list.append(option);
}
readAddress();
apply();
