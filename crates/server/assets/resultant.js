// Resultant settings page: for a computer and/or a user, every setting in
// force and the group it comes from ("default" when no group sets it).

import { api } from './api.js';
import { $, el, initPage, showNotice, hideNotice } from './page.js';

const collator = new Intl.Collator(undefined, { numeric: true, sensitivity: 'base' });

const deviceSelect = /** @type {HTMLSelectElement} */ ($('resultant-device'));
const userInput = /** @type {HTMLInputElement} */ ($('resultant-user'));
const table = /** @type {HTMLTableElement} */ ($('resultant-table'));
const summary = $('resultant-summary');

/** Catalogue entries by key, for order, labels and descriptions. @type {Map<string, {key: string, label?: string, description?: string, value_labels?: Record<string, string>}>} */
let catalogue = new Map();
/** Counts requests, so that only the latest answer is shown. */
let request = 0;

/**
 * A setting value in words.
 * @param {unknown} value
 * @returns {string}
 */
function describe(value, key) {
  if (value === undefined || value === null) return '(none)';
  if (Array.isArray(value)) return value.length ? value.join(', ') : '(none)';
  if (typeof value === 'boolean') return value ? 'Yes' : 'No';
  if (typeof value === 'object') return JSON.stringify(value);
  // Enum values in the catalogue's words ("All but blocked sites", not block_list).
  return catalogue.get(key ?? '')?.value_labels?.[String(value)] || String(value);
}

/**
 * Fills the computer list.
 * @returns {Promise<void>}
 */
async function loadDevices() {
  const devices = await api('GET', '/api/v1/devices');
  const list = (Array.isArray(devices) ? devices : [])
    .filter((d) => !d.revoked)
    .sort((a, b) => collator.compare(a.hostname, b.hostname));
  const keep = deviceSelect.value;
  const none = /** @type {HTMLOptionElement} */ (el('option', '', '(no computer)'));
  none.value = '';
  deviceSelect.replaceChildren(none, ...list.map((d) => {
    const o = /** @type {HTMLOptionElement} */ (el('option', '', d.hostname));
    o.value = String(d.id);
    return o;
  }));
  deviceSelect.value = keep;
}

/** Loads the catalogue (for descriptions and order); works without it. */
async function loadCatalogue() {
  try {
    const cat = await api('GET', '/api/v1/settings/catalogue');
    catalogue = new Map((Array.isArray(cat) ? cat : []).map((s) => [s.key, s]));
  } catch {
    catalogue = new Map();
  }
}

/**
 * Shows an answer of `GET /api/v1/resultant`.
 * @param {any} res
 */
function render(res) {
  const parts = [];
  if (res.hostname) parts.push(`Computer ${res.hostname}`);
  if (res.user) parts.push(`user ${res.user}`);
  if (Array.isArray(res.directory_groups) && res.directory_groups.length) {
    parts.push(`directory groups: ${res.directory_groups.join(', ')}`);
  }
  if (res.version !== undefined && res.version !== null) parts.push(`policy version ${res.version}`);
  summary.textContent = parts.join(' · ');

  const settings = res.settings && typeof res.settings === 'object' ? res.settings : {};
  const order = [...catalogue.keys()].filter((k) => k in settings);
  for (const key of Object.keys(settings)) if (!order.includes(key)) order.push(key);

  const rows = order.map((key) => {
    const entry = settings[key] || {};
    const tr = /** @type {HTMLTableRowElement} */ (el('tr'));
    tr.dataset.key = key;
    const name = el('td', 'key');
    // The catalogue's label; the key stays as a hint for scripts and logs.
    name.append(el('strong', '', catalogue.get(key)?.label || key), ' ', el('code', 'hint', key));
    const description = catalogue.get(key)?.description;
    if (description) name.append(el('div', 'hint', description));
    const value = el('td', 'value', describe(entry.value, key));
    value.dataset.value = JSON.stringify(entry.value ?? null);
    const source = el('td', 'source', entry.source ? entry.source.group_name : 'default');
    if (entry.source) source.dataset.groupId = String(entry.source.group_id);
    tr.classList.toggle('from-group', Boolean(entry.source));
    tr.append(name, value, source);
    return tr;
  });
  table.tBodies[0].replaceChildren(...rows);
  table.dataset.deviceId = res.device_id === null || res.device_id === undefined ? '' : String(res.device_id);
  table.dataset.user = res.user || '';
  table.hidden = false;
  renderKeywords(Array.isArray(res.keyword_libraries) ? res.keyword_libraries : []);
}

/**
 * Shows which keyword libraries apply and the group that enabled each.
 * @param {{library: string, library_id: number, group_name: string, group_id: number, actions: string[], actions_from: string}[]} libs
 */
function renderKeywords(libs) {
  const kw = /** @type {HTMLTableElement} */ ($('resultant-keywords'));
  kw.tBodies[0].replaceChildren(...libs.map((l) => {
    const tr = el('tr');
    tr.dataset.libraryId = String(l.library_id);
    const actions = `${l.actions.join(' · ')}${l.actions_from === 'school' ? ' (the school’s)' : ''}`;
    const source = el('td', 'source', l.group_name);
    source.dataset.groupId = String(l.group_id);
    tr.append(el('td', '', l.library), el('td', '', actions), source);
    return tr;
  }));
  if (!libs.length) {
    const tr = el('tr');
    const td = /** @type {HTMLTableCellElement} */ (el('td', 'hint', 'No keyword library applies.'));
    td.colSpan = 3;
    tr.append(td);
    kw.tBodies[0].append(tr);
  }
  kw.hidden = false;
  $('resultant-kw-heading').hidden = false;
}

/**
 * Asks the server for the settings of the chosen computer and/or user.
 * @param {Event} [event]
 */
async function show(event) {
  event?.preventDefault();
  const device = deviceSelect.value;
  const user = userInput.value.trim();
  if (!device && !user) {
    showNotice('Pick a computer or type a user name first', 'info');
    return;
  }
  const params = new URLSearchParams();
  if (device) params.set('device', device);
  if (user) params.set('user', user);
  history.replaceState(null, '', `${location.pathname}?${params}`);
  hideNotice();
  const mine = ++request;
  const button = /** @type {HTMLButtonElement} */ ($('resultant-show'));
  button.disabled = true;
  table.setAttribute('aria-busy', 'true');
  try {
    const res = await api('GET', `/api/v1/resultant?${params}`);
    if (mine === request) render(res || {});
  } catch (err) {
    if (mine === request) {
      table.hidden = true;
      summary.textContent = '';
      showNotice(`Could not work out the settings: ${err.message}`);
    }
  } finally {
    if (mine === request) {
      button.disabled = false;
      table.removeAttribute('aria-busy');
    }
  }
}

/** Hooks up the page and starts loading. */
async function main() {
  initPage('Resultant settings');
  $('resultant-form').addEventListener('submit', show);
  const query = new URLSearchParams(location.search);
  userInput.value = query.get('user') || '';
  try {
    await Promise.all([loadDevices(), loadCatalogue()]);
  } catch (err) {
    showNotice(`Could not load the computers: ${err.message}`);
  }
  const device = query.get('device');
  if (device && [...deviceSelect.options].some((o) => o.value === device)) deviceSelect.value = device;
  if (deviceSelect.value || userInput.value.trim()) show();
}

main();
