// What the safeguarding pages (logs, keywords, reports) share: the
// "Safeguarding" navigation, severity badges, times with seconds, and the
// device and group look-ups used by filters.

import { api } from './api.js';
import { el, fillSelect, initPage } from './page.js';

/** Words for severities 1 to 5. */
export const SEVERITY_LABELS = ['', 'Low', 'Minor', 'Moderate', 'High', 'Critical'];

/**
 * @typedef {object} Device
 * @property {number} id
 * @property {string} hostname
 * @property {boolean} online
 * @property {{user?: string | null}} [state]
 */

/**
 * Sets up a safeguarding page: what every page has (the server marks the
 * "Safeguarding" section link and the current page in its sub-navigation).
 * @param {string} pageName e.g. "Safeguarding logs"
 */
export function initSafetyPage(pageName) {
  initPage(pageName);
}

/**
 * A severity badge: "4 High".
 * @param {number} severity 1 to 5
 * @returns {HTMLElement}
 */
export function severityBadge(severity) {
  const n = Math.min(5, Math.max(1, Math.round(Number(severity) || 1)));
  const badge = el('span', `severity sev-${n}`);
  badge.append(el('span', 'severity-number', String(n)), ` ${SEVERITY_LABELS[n]}`);
  badge.title = `Severity ${n} of 5`;
  return badge;
}

/**
 * A time (ms since the epoch) with seconds, in the browser's time zone:
 * only the time for today, date and time otherwise.
 * @param {number | null | undefined} ms
 * @returns {string}
 */
export function formatWhen(ms) {
  if (!ms) return '';
  const d = new Date(ms);
  const sameDay = d.toDateString() === new Date().toDateString();
  return sameDay
    ? d.toLocaleTimeString(undefined, { hour: '2-digit', minute: '2-digit', second: '2-digit' })
    : d.toLocaleString(undefined, { dateStyle: 'short', timeStyle: 'medium' });
}

/**
 * A `<time>` element for a moment, with the full date as its tooltip.
 * @param {number | null | undefined} ms
 * @returns {HTMLElement}
 */
export function timeElement(ms) {
  const t = el('time', '', formatWhen(ms));
  if (ms) {
    const d = new Date(ms);
    t.setAttribute('datetime', d.toISOString());
    t.title = d.toLocaleString(undefined, { dateStyle: 'full', timeStyle: 'long' });
  }
  return t;
}

/**
 * The devices the teacher may see, by id.
 * @returns {Promise<Map<number, Device>>}
 */
export async function loadDevices() {
  const list = await api('GET', '/api/v1/devices');
  return new Map((Array.isArray(list) ? list : []).map((d) => [d.id, d]));
}

/**
 * The groups, for group filters.
 * @returns {Promise<{id: number, name: string, kind: string}[]>}
 */
export async function loadGroups() {
  const list = await api('GET', '/api/v1/groups');
  return Array.isArray(list) ? list : [];
}

/**
 * Fills a group select: an "any" choice, then the groups by name.
 * @param {HTMLSelectElement} select
 * @param {{id: number, name: string}[]} groups
 * @param {string} anyLabel e.g. "All groups"
 */
export function fillGroupSelect(select, groups, anyLabel) {
  const keep = select.value;
  const sorted = [...groups].sort((a, b) => a.name.localeCompare(b.name));
  fillSelect(select, [['', anyLabel], ...sorted.map((g) => /** @type {[string, string]} */ ([String(g.id), g.name]))]);
  select.value = sorted.some((g) => String(g.id) === keep) ? keep : '';
}

/**
 * A device's host name, or "computer N" when it is not (or no longer) visible.
 * @param {Map<number, Device>} devices
 * @param {number} id
 * @returns {string}
 */
export function deviceName(devices, id) {
  return devices.get(id)?.hostname ?? `computer ${id}`;
}

/**
 * Converts a `datetime-local` input's value to ms since the epoch (local
 * time), or null when empty or invalid.
 * @param {string} value
 * @returns {number | null}
 */
export function localInputToMs(value) {
  if (!value) return null;
  const ms = new Date(value).getTime();
  return Number.isFinite(ms) ? ms : null;
}
