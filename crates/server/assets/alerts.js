// Safeguarding alerts on the class page: each `violation` event of the live
// stream becomes a toast (severity, term, computer, user, where it was seen)
// with a link to its detail on the logs page. Serious ones (severity 4 and
// 5) stay until dismissed; the others go after a while.
//
// The stream module re-dispatches every JSON event it receives as a
// `lectern-stream` event on `window`; importing this module is all a page
// needs (it brings its own stylesheet).

import { api } from './api.js';
import { el } from './page.js';
import { severityBadge } from './safety.js';

/** Name of the window event that carries stream messages. */
export const STREAM_EVENT = 'lectern-stream';
/** How long a toast of severity 1 to 3 stays, in milliseconds. */
const TOAST_MS = 20_000;
/** Severity from which a toast stays until dismissed. */
const STICKY_SEVERITY = 4;
/** Most toasts shown at once; older ones give way. */
const MAX_TOASTS = 5;
/** Longest context shown in a toast. */
const CONTEXT_CHARS = 140;

const SOURCE_LABELS = {
  window_title: 'window title',
  url: 'web address',
  title: 'page title',
  search: 'search',
  text: 'typed text',
};

/** @type {HTMLElement | null} */
let region = null;
/** Host names by device id, for events that carry no host name. @type {Map<number, string>} */
let hostnames = new Map();
/** Violations already shown (a reconnecting stream may repeat one). */
const seen = new Set();

/** Adds the safeguarding stylesheet to the page once. */
function ensureStylesheet() {
  if (document.querySelector('link[href="/assets/safety.css"]')) return;
  const link = document.createElement('link');
  link.rel = 'stylesheet';
  link.href = '/assets/safety.css';
  document.head.append(link);
}

/**
 * The region toasts go in, created on first use.
 * @returns {HTMLElement}
 */
function toastRegion() {
  if (region) return region;
  ensureStylesheet();
  region = el('section', 'safety-alerts');
  region.setAttribute('aria-label', 'Safeguarding alerts');
  region.setAttribute('role', 'log');
  region.setAttribute('aria-live', 'polite');
  document.body.append(region);
  return region;
}

/**
 * Shortens text around the match for a toast.
 * @param {string} context
 * @param {string} matched
 * @returns {string}
 */
function snippet(context, matched) {
  const text = (context || '').replace(/\s+/g, ' ').trim();
  if (text.length <= CONTEXT_CHARS) return text;
  const at = matched ? text.toLowerCase().indexOf(matched.toLowerCase()) : -1;
  const start = Math.max(0, Math.min(text.length - CONTEXT_CHARS, at - Math.floor(CONTEXT_CHARS / 3)));
  return `${start > 0 ? '…' : ''}${text.slice(start, start + CONTEXT_CHARS)}${start + CONTEXT_CHARS < text.length ? '…' : ''}`;
}

/**
 * A device's host name: from the event, else from the device list (loaded
 * again when the device is new to it).
 * @param {{device_id: number, hostname?: string | null}} v
 * @returns {Promise<string>}
 */
async function hostOf(v) {
  if (v.hostname) return v.hostname;
  if (!hostnames.has(v.device_id)) {
    try {
      const list = await api('GET', '/api/v1/devices');
      hostnames = new Map((Array.isArray(list) ? list : []).map((d) => [d.id, d.hostname]));
    } catch {
      // The toast names the device by its id.
    }
  }
  return hostnames.get(v.device_id) ?? `computer ${v.device_id}`;
}

/**
 * Removes a toast.
 * @param {HTMLElement} toast
 */
function dismiss(toast) {
  const timer = Number(toast.dataset.timer);
  if (timer) clearTimeout(timer);
  toast.remove();
}

/**
 * Shows a toast for a violation.
 * @param {import('./logs.js').Violation} v
 */
export async function showViolation(v) {
  if (!v || typeof v !== 'object' || seen.has(v.id)) return;
  seen.add(v.id);
  const host = await hostOf(v);
  const box = toastRegion();
  const severity = Number(v.severity) || 1;
  const toast = el('article', `safety-toast sev-${severity}`);
  toast.dataset.violationId = String(v.id);
  if (severity >= STICKY_SEVERITY) toast.setAttribute('role', 'alert');

  const head = el('div', 'toast-head');
  head.append(severityBadge(severity), el('strong', 'toast-title', `“${v.term}” on ${host}`));
  const close = /** @type {HTMLButtonElement} */ (el('button', 'toast-close', '×'));
  close.type = 'button';
  close.setAttribute('aria-label', `Dismiss the alert about “${v.term}” on ${host}`);
  close.addEventListener('click', () => dismiss(toast));
  head.append(close);

  const facts = [v.user || 'nobody signed in', v.category, SOURCE_LABELS[v.source] || v.source].filter(Boolean).join(' · ');
  const details = /** @type {HTMLAnchorElement} */ (el('a', 'toast-link', 'Details'));
  details.href = `/logs?violation=${encodeURIComponent(v.id)}`;
  details.target = '_blank';
  details.rel = 'noopener';
  details.setAttribute('aria-label', `Details of the alert about “${v.term}” on ${host} (opens a new tab)`);

  toast.append(head, el('p', 'toast-facts', facts));
  const text = snippet(v.context, v.matched);
  if (text) toast.append(el('p', 'toast-context', text));
  toast.append(details);
  box.prepend(toast);

  while (box.children.length > MAX_TOASTS) dismiss(/** @type {HTMLElement} */ (box.lastElementChild));
  if (severity < STICKY_SEVERITY) toast.dataset.timer = String(setTimeout(() => dismiss(toast), TOAST_MS));
}

window.addEventListener(STREAM_EVENT, (event) => {
  const msg = /** @type {CustomEvent} */ (event).detail;
  if (msg && msg.type === 'violation' && msg.violation) showViolation(msg.violation);
});
