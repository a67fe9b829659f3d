// Devices page: every computer the user may see, with its enrolled name and
// any other name it reports (a waiting change is marked, and can be
// accepted), online state, last seen, agent version and system; search and
// filter; rename, revoke and delete for those who manage devices.

import { api } from './api.js';
import { $, el, formatTime, hideNotice, holds, initPage, showNotice } from './page.js';

/**
 * @typedef {object} Device
 * @property {number} id
 * @property {string} hostname
 * @property {boolean} online
 * @property {string} os
 * @property {string} agent_version
 * @property {boolean} revoked
 * @property {number | null} last_seen
 * @property {{user?: string | null}} state
 * @property {string | null} reported_name
 */

const table = /** @type {HTMLTableElement} */ ($('devices-table'));
const qInput = /** @type {HTMLInputElement} */ ($('devices-q'));
const show = /** @type {HTMLSelectElement} */ ($('devices-show'));
const dialog = /** @type {HTMLDialogElement} */ ($('rename-dialog'));
const nameInput = /** @type {HTMLInputElement} */ ($('rename-name'));

/** @type {Device[]} */
let devices = [];
/** @type {Device | null} */
let renaming = null;

/**
 * The error's text.
 * @param {unknown} e
 * @returns {string}
 */
function message(e) {
  return e instanceof Error ? e.message : String(e);
}

/**
 * Whether the device passes the search and the "Show" choice.
 * @param {Device} d
 * @returns {boolean}
 */
function shown(d) {
  const kind = show.value;
  if (kind === 'online' && !d.online) return false;
  if (kind === 'offline' && (d.online || d.revoked)) return false;
  if (kind === 'pending' && !d.reported_name) return false;
  if (kind === 'revoked' && !d.revoked) return false;
  const q = qInput.value.trim().toLowerCase();
  if (!q) return true;
  return [d.hostname, d.reported_name, d.state?.user, d.os, d.agent_version]
    .some((v) => (v ?? '').toLowerCase().includes(q));
}

/**
 * A button for a row.
 * @param {string} text
 * @param {string} label accessible name
 * @param {() => void} act
 * @param {string} [className]
 * @returns {HTMLElement}
 */
function button(text, label, act, className = '') {
  const b = el('button', className, text);
  b.setAttribute('type', 'button');
  b.setAttribute('aria-label', label);
  // Every action here manages devices (page.js hides it from others too).
  b.dataset.right = 'devices.manage';
  b.addEventListener('click', act);
  return b;
}

/**
 * The reported-name cell: a waiting change is marked and can be accepted.
 * @param {Device} d
 * @returns {HTMLElement}
 */
function reportedCell(d) {
  const td = el('td');
  if (!d.reported_name) {
    td.textContent = '—';
    return td;
  }
  const mark = el('span', 'name-pending', d.reported_name);
  mark.title = 'The computer reports this name; it keeps its enrolled name until you accept it.';
  td.append(mark, el('span', 'visually-hidden', ' (name change waiting)'));
  if (holds('devices.manage') && !d.revoked) {
    td.append(' ', button('Accept', `Accept the name ${d.reported_name} for ${d.hostname}`, () => { void acceptName(d); }));
  }
  return td;
}

/**
 * One device's row.
 * @param {Device} d
 * @returns {HTMLTableRowElement}
 */
function row(d) {
  const tr = /** @type {HTMLTableRowElement} */ (el('tr'));
  if (d.reported_name) tr.classList.add('pending');
  const words = d.revoked ? 'Revoked' : d.online ? 'Online' : 'Offline';
  const actions = el('td', 'row-actions');
  if (holds('devices.manage')) {
    actions.append(button('Rename', `Rename ${d.hostname}`, () => openRename(d)));
    if (!d.revoked) actions.append(' ', button('Revoke', `Revoke ${d.hostname}`, () => { void revoke(d); }, 'danger'));
    actions.append(' ', button('Delete', `Delete ${d.hostname}`, () => { void remove(d); }, 'danger'));
  }
  tr.append(
    el('td', 'dev-name', d.hostname),
    reportedCell(d),
    el('td', `dev-state ${words.toLowerCase()}`, words),
    el('td', '', d.online ? 'Now' : formatTime(d.last_seen) || 'Never'),
    el('td', '', d.state?.user ?? '—'),
    el('td', '', d.agent_version || '—'),
    el('td', '', d.os || '—'),
    actions,
  );
  return tr;
}

/** Draws the rows that pass the filter. */
function draw() {
  const rows = devices.filter(shown);
  table.tBodies[0].replaceChildren(...rows.map(row));
  const pending = devices.filter((d) => d.reported_name).length;
  const n = devices.length;
  $('devices-summary').textContent = `${rows.length} of ${n} computer${n === 1 ? '' : 's'} shown`
    + (pending ? `; ${pending} waiting for a name change.` : '.');
}

/** Loads the list. */
async function load() {
  try {
    devices = await api('GET', '/api/v1/devices');
    draw();
  } catch (e) {
    showNotice(message(e));
  }
}

/**
 * Runs a change, then reloads the list.
 * @param {() => Promise<unknown>} change
 * @param {string} done
 */
async function act(change, done) {
  try {
    await change();
    showNotice(done, 'info');
  } catch (e) {
    showNotice(message(e));
  }
  await load();
}

/** @param {Device} d */
async function acceptName(d) {
  await act(() => api('POST', `/api/v1/devices/${d.id}/accept-name`), `${d.hostname} is now called ${d.reported_name}.`);
}

/** @param {Device} d */
async function revoke(d) {
  if (!confirm(`Revoke ${d.hostname}? It is disconnected now and refused from then on; it must be enrolled again to come back.`)) return;
  await act(() => api('DELETE', `/api/v1/devices/${d.id}`), `${d.hostname} is revoked.`);
}

/** @param {Device} d */
async function remove(d) {
  if (!confirm(`Delete ${d.hostname}? It is revoked, and its record, screenshots and inventory are removed. Activity and audit records stay.`)) return;
  await act(() => api('POST', `/api/v1/devices/${d.id}/delete`), `${d.hostname} is deleted.`);
}

/** @param {Device} d */
function openRename(d) {
  renaming = d;
  $('rename-title').textContent = `Rename ${d.hostname}`;
  nameInput.value = d.hostname;
  $('rename-error').hidden = true;
  dialog.showModal();
  nameInput.select();
}

$('rename-form').addEventListener('submit', async (ev) => {
  ev.preventDefault();
  const d = renaming;
  if (!d) return;
  try {
    await api('POST', `/api/v1/devices/${d.id}/rename`, { name: nameInput.value.trim() });
    dialog.close();
    showNotice(`${d.hostname} is now called ${nameInput.value.trim()}.`, 'info');
    await load();
  } catch (e) {
    const err = $('rename-error');
    err.textContent = message(e);
    err.hidden = false;
  }
});
$('rename-cancel').addEventListener('click', () => dialog.close());
$('devices-filter').addEventListener('submit', (ev) => ev.preventDefault());
qInput.addEventListener('input', draw);
show.addEventListener('change', draw);

initPage('Devices');
hideNotice();
void load();
