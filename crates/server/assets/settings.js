// The school settings page: each setting with its value in force and where
// it came from (the built-in default, server.toml, or who set it here and
// when), saved all together (the server refuses the lot and names each bad
// field), and "reset" back to the server's value. Administrators also see
// the backups and download them.

import { ApiError, api, csrfToken, errorSentence } from './api.js';
import { $, el, formatTime, hideNotice, initPage, showNotice } from './page.js';

/**
 * @typedef {object} Setting
 * @property {string} key
 * @property {string} label
 * @property {string} help
 * @property {'number' | 'time' | 'actions'} kind
 * @property {number} [min]
 * @property {number} [max]
 * @property {any} value the value in force
 * @property {any} server_value what "reset" goes back to
 * @property {'default' | 'server_toml' | 'school'} source
 * @property {string} [set_by]
 * @property {number} [set_at]
 */

/** @typedef {{name: string, size: number, at: number}} Backup */

const ACTIONS = [
  ['log', 'Log'],
  ['screenshot', 'Screenshot'],
  ['alert', 'Alert'],
  ['lock', 'Lock'],
];

const list = $('setting-list');
/** @type {Setting[]} */
let settings = [];

/**
 * A value as words.
 * @param {Setting} s
 * @param {any} v
 * @returns {string}
 */
function words(s, v) {
  if (s.kind === 'actions') return v.map((/** @type {string} */ a, /** @type {number} */ i) => `${i + 1}: ${a}`).join(', ');
  if (s.kind === 'time') return v || 'no nightly backups';
  return String(v);
}

/**
 * Where the value in force comes from, as a sentence.
 * @param {Setting} s
 * @returns {string}
 */
function sourceSentence(s) {
  if (s.source === 'school') {
    return `Set by ${s.set_by} ${formatTime(s.set_at)}. Server value: ${words(s, s.server_value)}.`;
  }
  if (s.source === 'server_toml') return 'From server.toml.';
  return 'Built-in default.';
}

/**
 * The input(s) of a setting.
 * @param {Setting} s
 * @param {string} described ids that describe it
 * @returns {HTMLElement}
 */
function input(s, described) {
  if (s.kind === 'actions') {
    const group = /** @type {HTMLFieldSetElement} */ (el('fieldset', 'severity-actions'));
    group.id = `setting-${s.key}`;
    group.setAttribute('aria-describedby', described);
    const legend = el('legend', 'visually-hidden', s.label);
    group.append(legend);
    s.value.forEach((/** @type {string} */ a, /** @type {number} */ i) => {
      const label = el('label', '', `Severity ${i + 1}`);
      const select = /** @type {HTMLSelectElement} */ (document.createElement('select'));
      select.id = `setting-${s.key}-${i + 1}`;
      select.dataset.key = s.key;
      for (const [value, text] of ACTIONS) {
        const option = new Option(text, value, false, value === a);
        select.append(option);
      }
      label.append(select);
      group.append(label);
    });
    return group;
  }
  const field = /** @type {HTMLInputElement} */ (document.createElement('input'));
  field.id = `setting-${s.key}`;
  field.dataset.key = s.key;
  field.setAttribute('aria-describedby', described);
  if (s.kind === 'time') {
    field.type = 'time';
    field.step = '60';
    field.value = s.value;
  } else {
    field.type = 'number';
    field.step = '1';
    field.min = String(s.min);
    field.max = String(s.max);
    field.required = true;
    field.value = String(s.value);
  }
  return field;
}

/**
 * One setting's row.
 * @param {Setting} s
 * @returns {HTMLLIElement}
 */
function item(s) {
  const li = /** @type {HTMLLIElement} */ (el('li', 'setting'));
  const ids = ['help', 'source', 'error'].map((p) => `setting-${s.key}-${p}`);
  const label = s.kind === 'actions'
    ? el('span', 'setting-label', s.label)
    : el('label', '', s.label);
  if (label instanceof HTMLLabelElement) label.htmlFor = `setting-${s.key}`;
  const right = el('div');
  const help = el('p', 'hint', s.help);
  help.id = ids[0];
  const source = el('p', 'setting-source', sourceSentence(s));
  source.id = ids[1];
  const error = el('p', 'setting-error');
  error.id = ids[2];
  right.append(input(s, ids.join(' ')), help, source, error);
  if (s.source === 'school') {
    const reset = /** @type {HTMLButtonElement} */ (el('button', 'reset', `Reset to server value (${words(s, s.server_value)})`));
    reset.type = 'button';
    reset.addEventListener('click', () => save({ reset: [s.key] }, `${s.label}: back to the server's value.`));
    right.append(reset);
  }
  li.append(label, right);
  return li;
}

/** Shows the settings as the server has them. */
function render() {
  list.replaceChildren(...settings.map(item));
}

/**
 * The value a setting's inputs hold now.
 * @param {Setting} s
 * @returns {any}
 */
function current(s) {
  if (s.kind === 'actions') {
    return s.value.map((/** @type {string} */ _, /** @type {number} */ i) => /** @type {HTMLSelectElement} */ ($(`setting-${s.key}-${i + 1}`)).value);
  }
  const field = /** @type {HTMLInputElement} */ ($(`setting-${s.key}`));
  if (s.kind === 'time') return field.value.slice(0, 5);
  // Sent as typed when not a whole number, so the server names the field.
  return field.value.trim() !== '' && Number.isInteger(Number(field.value)) ? Number(field.value) : field.value;
}

/**
 * Marks each field the server refused, and clears the others.
 * @param {Record<string, string>} fields
 */
function markErrors(fields) {
  for (const s of settings) {
    const message = fields[s.key] || '';
    $(`setting-${s.key}-error`).textContent = message ? `${s.label} ${message}.` : '';
    const target = $(`setting-${s.key}`);
    if (message) target.setAttribute('aria-invalid', 'true');
    else target.removeAttribute('aria-invalid');
  }
  const first = settings.find((s) => fields[s.key]);
  if (first) {
    const target = $(`setting-${first.key}`);
    (target.querySelector('select') || target).focus();
  }
}

/**
 * Sends a change; on refusal shows each bad field, on success the new values.
 * @param {{values?: Record<string, any>, reset?: string[]}} change
 * @param {string} done
 */
async function save(change, done) {
  hideNotice();
  let res;
  try {
    res = await fetch('/api/v1/school/settings', {
      method: 'PUT',
      headers: { 'Content-Type': 'application/json', 'X-CSRF-Token': csrfToken(), Accept: 'application/json' },
      credentials: 'same-origin',
      body: JSON.stringify(change),
    });
  } catch {
    showNotice(errorSentence(0, null, '', 0));
    return;
  }
  const text = await res.text();
  let body = null;
  try {
    body = JSON.parse(text);
  } catch { /* not JSON */ }
  if (res.ok && body) {
    settings = body.settings;
    render();
    showNotice(done, 'info');
    return;
  }
  if (res.status === 400 && body && body.fields) markErrors(body.fields);
  showNotice(errorSentence(res.status, body, text, 0));
}

/** Loads the settings. */
async function load() {
  const page = await api('GET', '/api/v1/school/settings');
  settings = page.settings;
  render();
}

/**
 * A size in words.
 * @param {number} bytes
 * @returns {string}
 */
function size(bytes) {
  if (bytes >= 1024 * 1024) return `${(bytes / (1024 * 1024)).toFixed(1)} MiB`;
  return `${Math.ceil(bytes / 1024)} KiB`;
}

/** Lists the backups, or says why not. */
async function loadBackups() {
  const summary = $('backups-summary');
  const table = $('backups-table');
  try {
    /** @type {{backups: Backup[], folder_holds: string}} */
    const r = await api('GET', '/api/v1/backups');
    const rows = r.backups.map((b) => {
      const tr = document.createElement('tr');
      tr.append(el('td', '', new Date(b.at).toLocaleString()), el('td', '', size(b.size)));
      const link = /** @type {HTMLAnchorElement} */ (el('a', '', b.name));
      link.href = `/api/v1/backups/${encodeURIComponent(b.name)}`;
      link.download = b.name;
      const cell = el('td');
      cell.append(link);
      tr.append(cell);
      return tr;
    });
    table.querySelector('tbody')?.replaceChildren(...rows);
    table.hidden = rows.length === 0;
    summary.textContent = rows.length === 0
      ? 'No backups yet: the first is written at the nightly backup time.'
      : `${rows.length} backup${rows.length === 1 ? '' : 's'} of ${r.folder_holds}, newest first.`;
  } catch (e) {
    table.hidden = true;
    summary.textContent = e instanceof ApiError && e.status === 403
      ? 'Only administrators can see and download backups.'
      : (e instanceof Error ? e.message : String(e));
    if (e instanceof ApiError && e.reason === 'admin_only') $('school-export').hidden = true;
  }
}

$('settings-form').addEventListener('submit', (e) => {
  e.preventDefault();
  /** @type {Record<string, any>} */
  const values = {};
  for (const s of settings) {
    const now = current(s);
    if (JSON.stringify(now) !== JSON.stringify(s.value)) values[s.key] = now;
  }
  if (Object.keys(values).length === 0) {
    markErrors({});
    showNotice('Nothing to save: no setting was changed.', 'info');
    return;
  }
  save({ values }, 'Settings saved; they apply now.');
});
$('settings-undo').addEventListener('click', () => {
  hideNotice();
  render();
});

initPage('School settings');
load().catch((e) => showNotice(e instanceof Error ? e.message : String(e)));
loadBackups();
