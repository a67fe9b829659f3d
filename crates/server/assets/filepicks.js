// Shared by the Files and Exams pages: the list of computers to tick, sizes
// in words, each device's transfer status in words, and raw file uploads.

import { api, apiRaw } from './api.js';
import { el } from './page.js';

/** @type {Map<number, string>} device id → name, for the tables */
export const deviceNames = new Map();

/**
 * Fills `fieldset` with a checkbox per computer the caller controls.
 * @param {HTMLFieldSetElement} fieldset
 * @param {HTMLElement} empty shown when there is none
 * @param {string} prefix for the checkboxes' ids
 */
export async function loadDevicePicks(fieldset, empty, prefix) {
  const devices = await api('GET', '/api/v1/devices');
  const list = (Array.isArray(devices) ? devices : []).filter((d) => !d.revoked_at);
  for (const d of list) deviceNames.set(d.id, d.hostname);
  const legend = fieldset.querySelector('legend');
  const boxes = list.map((d) => {
    const box = /** @type {HTMLInputElement} */ (el('input'));
    box.type = 'checkbox';
    box.id = `${prefix}-${d.id}`;
    box.value = String(d.id);
    const label = el('label', 'checkbox');
    label.setAttribute('for', box.id);
    const who = d.state?.user ? ` (${d.state.user})` : '';
    label.append(box, ` ${d.hostname}${who}`);
    return label;
  });
  fieldset.replaceChildren(...(legend ? [legend] : []), ...boxes);
  empty.hidden = list.length > 0;
}

/**
 * The ticked computers' ids.
 * @param {HTMLFieldSetElement} fieldset
 * @returns {number[]}
 */
export function pickedDevices(fieldset) {
  return [...fieldset.querySelectorAll('input[type=checkbox]:checked')]
    .map((b) => Number(/** @type {HTMLInputElement} */ (b).value));
}

/**
 * A size in words.
 * @param {number} bytes
 * @returns {string}
 */
export function formatSize(bytes) {
  if (bytes < 1024) return `${bytes} B`;
  if (bytes < 1024 * 1024) return `${(bytes / 1024).toFixed(1)} KiB`;
  return `${(bytes / 1024 / 1024).toFixed(1)} MiB`;
}

/**
 * One device's delivery or hand-in in words, e.g. "PC01: 40% (sending)".
 * @param {{device_id: number, status: string, bytes: number, reason?: string | null, files?: number}} row
 * @param {number} [total] the file's size, for a percentage
 * @returns {string}
 */
export function statusText(row, total) {
  const name = deviceNames.get(row.device_id) || `Computer ${row.device_id}`;
  let what = row.status;
  if (row.status === 'pending') what = 'waiting (offline or not started)';
  else if (row.status === 'sending') what = total ? `${Math.floor((100 * row.bytes) / total)}%` : `${formatSize(row.bytes)} so far`;
  else if (row.status === 'done') what = row.files === undefined ? 'saved' : `${row.files} files, ${formatSize(row.bytes)}`;
  else if (row.status === 'failed') what = `failed: ${row.reason || 'unknown reason'}`;
  return `${name}: ${what}`;
}

/**
 * A table cell listing each device's status, one a line.
 * @param {string[]} lines
 * @returns {HTMLTableCellElement}
 */
export function linesCell(lines) {
  const td = /** @type {HTMLTableCellElement} */ (el('td'));
  const ul = el('ul', 'plain-list');
  for (const l of lines) ul.append(el('li', l.includes('failed') ? 'failed' : '', l));
  td.append(ul);
  return td;
}

/**
 * Uploads a file as the raw request body.
 * @param {'POST' | 'PUT'} method
 * @param {string} path with its query
 * @param {File} file
 * @returns {Promise<any>}
 */
export async function uploadFile(method, path, file) {
  const text = await apiRaw(method, path, {
    body: /** @type {string} */ (/** @type {unknown} */ (file)),
    contentType: 'application/octet-stream',
  });
  return text ? JSON.parse(text) : null;
}
