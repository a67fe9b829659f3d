// Inventory page: every computer's hardware, system and packages as its
// agent last reported them (sent on change), with search across all fields,
// CSV export of what the search selects, and one computer's whole report.
// The search lives in the address (`/inventory?q=firefox`).

import { api } from './api.js';
import { $, el, formatTime, hideNotice, initPage, showNotice } from './page.js';

/**
 * @typedef {object} Summary
 * @property {number} device_id
 * @property {string} hostname
 * @property {boolean} online
 * @property {number} received_at
 * @property {string} vendor
 * @property {string} model
 * @property {string} serial
 * @property {string} cpu_model
 * @property {number} cpu_count
 * @property {number} memory_bytes
 * @property {string} os
 * @property {string} kernel
 * @property {number | null} uptime_secs
 * @property {number} disk_bytes
 * @property {number} disk_free_bytes
 * @property {string[]} macs
 * @property {string[]} addresses
 * @property {number | null} battery_health
 * @property {number} packages
 */

/** Packages listed in the detail at most (the CSV and API have them all). */
const MAX_PACKAGES_SHOWN = 5000;

const form = /** @type {HTMLFormElement} */ ($('inventory-search'));
const qInput = /** @type {HTMLInputElement} */ ($('inventory-q'));
const csvLink = /** @type {HTMLAnchorElement} */ ($('inventory-csv'));
const table = /** @type {HTMLTableElement} */ ($('inventory-table'));
const dialog = /** @type {HTMLDialogElement} */ ($('inventory-dialog'));

/**
 * Bytes in GiB or MiB.
 * @param {number} n
 * @returns {string}
 */
function size(n) {
  if (!n) return '—';
  const gib = n / 1024 ** 3;
  return gib >= 1 ? `${gib.toFixed(gib >= 10 ? 0 : 1)} GiB` : `${Math.round(n / 1024 ** 2)} MiB`;
}

/**
 * Seconds as "3 d 4 h" or "25 min".
 * @param {number | null} s
 * @returns {string}
 */
function duration(s) {
  if (s === null || s === undefined) return '—';
  const d = Math.floor(s / 86400);
  const h = Math.floor((s % 86400) / 3600);
  if (d) return `${d} d ${h} h`;
  if (h) return `${h} h ${Math.floor((s % 3600) / 60)} min`;
  return `${Math.floor(s / 60)} min`;
}

/**
 * A table cell with text.
 * @param {string} text
 * @returns {HTMLElement}
 */
function cell(text) {
  return el('td', '', text || '—');
}

/**
 * One computer's row; its name opens the detail.
 * @param {Summary} s
 * @returns {HTMLTableRowElement}
 */
function row(s) {
  const tr = /** @type {HTMLTableRowElement} */ (el('tr'));
  const name = el('td');
  const open = el('button', 'link', s.hostname);
  open.setAttribute('type', 'button');
  open.setAttribute('aria-haspopup', 'dialog');
  open.addEventListener('click', () => { void showDetail(s.device_id); });
  name.append(open);
  tr.append(
    name,
    cell([s.vendor, s.model].filter(Boolean).join(' ')),
    cell(s.serial),
    cell(s.cpu_model ? `${s.cpu_model} × ${s.cpu_count}` : ''),
    cell(size(s.memory_bytes)),
    cell(s.os),
    cell(s.online ? duration(s.uptime_secs) : 'Offline'),
    cell(s.disk_bytes ? `${size(s.disk_free_bytes)} of ${size(s.disk_bytes)}` : ''),
    cell(s.addresses.join(', ')),
    cell(String(s.packages)),
  );
  return tr;
}

/** Loads the list for the search in the address. */
async function load() {
  const q = new URLSearchParams(location.search).get('q') ?? '';
  qInput.value = q;
  const query = q ? `?q=${encodeURIComponent(q)}` : '';
  csvLink.href = `/api/v1/inventory.csv${query}`;
  try {
    /** @type {Summary[]} */
    const list = await api('GET', `/api/v1/inventory${query}`);
    table.tBodies[0].replaceChildren(...list.map(row));
    const n = list.length;
    $('inventory-summary').textContent = n
      ? `${n} computer${n === 1 ? '' : 's'}${q ? ` matching “${q}”` : ''}.`
      : q ? `No computer matches “${q}”.` : 'No computer has sent an inventory yet.';
    hideNotice();
  } catch (e) {
    showNotice(e instanceof Error ? e.message : String(e));
  }
}

/**
 * Adds a term and its description to the detail's facts.
 * @param {HTMLElement} dl
 * @param {string} term
 * @param {string} value
 */
function fact(dl, term, value) {
  dl.append(el('dt', '', term), el('dd', '', value || '—'));
}

/**
 * Rows of cells for a detail table.
 * @param {HTMLTableElement} t
 * @param {string[][]} rows
 */
function fillTable(t, rows) {
  t.tBodies[0].replaceChildren(...rows.map((r) => {
    const tr = el('tr');
    tr.append(...r.map(cell));
    return tr;
  }));
}

/**
 * Opens one computer's whole report.
 * @param {number} id
 */
async function showDetail(id) {
  try {
    const d = await api('GET', `/api/v1/inventory/${id}`);
    const r = d.report;
    $('inventory-dialog-title').textContent = d.hostname;
    const dl = $('inventory-facts');
    dl.replaceChildren();
    fact(dl, 'Model', [d.vendor, d.model].filter(Boolean).join(' '));
    fact(dl, 'Serial', d.serial);
    if (r.hardware?.asset_id) fact(dl, 'Asset ID', r.hardware.asset_id);
    fact(dl, 'Processor', d.cpu_model ? `${d.cpu_model} × ${d.cpu_count}` : '');
    fact(dl, 'Memory', size(d.memory_bytes));
    fact(dl, 'System', d.os);
    fact(dl, 'Kernel', d.kernel);
    fact(dl, 'Booted', d.boot_time_ms ? formatTime(d.boot_time_ms) : '');
    fact(dl, 'Battery health', r.batteries.map((b) => `${b.name}: ${b.health_percent ?? '?'} %${b.cycle_count !== null ? `, ${b.cycle_count} cycles` : ''}`).join('; '));
    fact(dl, 'Reported', formatTime(d.received_at));
    fillTable(/** @type {HTMLTableElement} */ ($('inventory-disks')),
      r.disks.map((k) => [k.mount, k.device, k.fs, size(k.size_bytes), size(k.free_bytes)]));
    fillTable(/** @type {HTMLTableElement} */ ($('inventory-net')),
      r.network.map((i) => [i.name, i.mac, i.addresses.join(', ')]));
    fillTable(/** @type {HTMLTableElement} */ ($('inventory-packages')),
      r.packages.slice(0, MAX_PACKAGES_SHOWN).map((p) => [p.name, p.version]));
    $('inventory-packages-heading').textContent = `Packages (${r.packages.length})`;
    dialog.showModal();
  } catch (e) {
    showNotice(e instanceof Error ? e.message : String(e));
  }
}

form.addEventListener('submit', (ev) => {
  ev.preventDefault();
  const q = qInput.value.trim();
  history.pushState(null, '', q ? `/inventory?q=${encodeURIComponent(q)}` : '/inventory');
  void load();
});
window.addEventListener('popstate', () => { void load(); });
$('inventory-dialog-close').addEventListener('click', () => dialog.close());

initPage('Inventory');
void load();
