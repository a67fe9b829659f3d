// Files page: send a file to the ticked computers, collect a file or folder
// back, and follow each computer's progress; collected files download as a
// zip with one folder per computer.

import { api } from './api.js';
import { $, el, formatTime, hideNotice, initPage, showNotice } from './page.js';
import { formatSize, linesCell, loadDevicePicks, pickedDevices, statusText, uploadFile } from './filepicks.js';

/** How often the tables refresh while something is on its way. */
const BUSY_MS = 1_500;
/** How often otherwise. */
const IDLE_MS = 15_000;

const picks = /** @type {HTMLFieldSetElement} */ ($('files-devices'));
const fileInput = /** @type {HTMLInputElement} */ ($('files-file'));
const titleInput = /** @type {HTMLInputElement} */ ($('files-title'));
const pathInput = /** @type {HTMLInputElement} */ ($('files-path'));

/** @type {ReturnType<typeof setTimeout> | undefined} */
let timer;

/**
 * Whether any row is still on its way.
 * @param {any[]} rows
 * @returns {boolean}
 */
function busy(rows) {
  return rows.some((r) => r.status === 'pending' || r.status === 'sending');
}

/**
 * Fills a table's body, showing its "empty" line when there are no rows.
 * @param {string} id
 * @param {HTMLTableRowElement[]} rows
 */
function fill(id, rows) {
  const table = /** @type {HTMLTableElement} */ ($(id));
  table.tBodies[0].replaceChildren(...rows);
  table.hidden = rows.length === 0;
  $(`${id}-empty`).hidden = rows.length > 0;
}

/**
 * A row of the sent files.
 * @param {any} t
 * @returns {HTMLTableRowElement}
 */
function sentRow(t) {
  const tr = /** @type {HTMLTableRowElement} */ (el('tr'));
  tr.dataset.transferId = String(t.id);
  tr.append(
    el('td', '', t.name),
    el('td', '', t.title),
    el('td', '', formatSize(t.size)),
    el('td', '', `${formatTime(t.created_at)} by ${t.created_by}`),
    linesCell(t.deliveries.map((d) => statusText(d, t.size))),
  );
  return tr;
}

/**
 * A row of the collections.
 * @param {any} c
 * @returns {HTMLTableRowElement}
 */
function collectedRow(c) {
  const tr = /** @type {HTMLTableRowElement} */ (el('tr'));
  tr.dataset.collectionId = String(c.id);
  const link = /** @type {HTMLAnchorElement} */ (el('a', '', 'Download zip'));
  link.href = `/api/v1/collections/${c.id}/zip`;
  link.setAttribute('download', `collection-${c.id}.zip`);
  link.setAttribute('aria-label', `Download zip: ${c.path}`);
  const cell = el('td');
  cell.append(link);
  tr.append(
    el('td', '', c.path),
    el('td', '', `${formatTime(c.created_at)} by ${c.created_by}`),
    linesCell(c.hand_ins.map((h) => statusText(h))),
    cell,
  );
  return tr;
}

/** Reloads both tables, again soon while anything is on its way. */
async function refresh() {
  clearTimeout(timer);
  let next = IDLE_MS;
  try {
    const [sent, collected] = await Promise.all([api('GET', '/api/v1/files'), api('GET', '/api/v1/collections')]);
    fill('files-sent', sent.map(sentRow));
    fill('files-collected', collected.map(collectedRow));
    if (sent.some((t) => busy(t.deliveries)) || collected.some((c) => busy(c.hand_ins))) next = BUSY_MS;
  } catch (err) {
    showNotice(`Could not load the files: ${err.message}`);
  }
  timer = setTimeout(refresh, next);
}

/**
 * The ticked computers, or a notice.
 * @returns {number[] | null}
 */
function targets() {
  const devices = pickedDevices(picks);
  if (!devices.length) {
    showNotice('Tick at least one computer first');
    return null;
  }
  return devices;
}

/** @param {SubmitEvent} event */
async function send(event) {
  event.preventDefault();
  const devices = targets();
  if (!devices) return;
  const file = fileInput.files?.[0];
  if (!file) {
    showNotice('Choose the file to send');
    fileInput.focus();
    return;
  }
  hideNotice();
  const q = new URLSearchParams({ devices: devices.join(','), name: file.name });
  if (titleInput.value.trim()) q.set('title', titleInput.value.trim());
  const button = /** @type {HTMLButtonElement} */ ($('files-send'));
  button.disabled = true;
  try {
    const t = await uploadFile('POST', `/api/v1/files?${q}`, file);
    showNotice(`Sending ${t.name} to ${devices.length} computer${devices.length === 1 ? '' : 's'}`, 'info');
    fileInput.value = '';
    refresh();
  } catch (err) {
    showNotice(`Could not send the file: ${err.message}`);
  } finally {
    button.disabled = false;
  }
}

/** @param {SubmitEvent} event */
async function collect(event) {
  event.preventDefault();
  const devices = targets();
  if (!devices) return;
  const path = pathInput.value.trim();
  if (!path) {
    showNotice('Type the file or folder to collect, e.g. Hand-in/Essay.docx');
    pathInput.focus();
    return;
  }
  hideNotice();
  try {
    const c = await api('POST', '/api/v1/collections', { devices, path });
    showNotice(`Collecting ${c.path} from ${devices.length} computer${devices.length === 1 ? '' : 's'}`, 'info');
    refresh();
  } catch (err) {
    showNotice(`Could not collect: ${err.message}`);
  }
}

/** Shows the school's upload limit beside the form. */
async function showLimit() {
  try {
    const l = await api('GET', '/api/v1/files/limits');
    $('files-limit-hint').append(` At most ${l.max_upload_mib} MiB.`);
  } catch { /* the hint stays without the number */ }
}

initPage('Files');
$('files-send-form').addEventListener('submit', send);
$('files-collect-form').addEventListener('submit', collect);
loadDevicePicks(picks, $('files-devices-empty'), 'files-device')
  .catch((err) => showNotice(`Could not load the computers: ${err.message}`))
  .then(refresh);
showLimit();
