// What every console page shares: element look-ups, the notice line, the
// navigation bar, the page title, the "Log out" button, and hiding what the
// user has no right to use.

import { api } from './api.js';
import { offerSchools } from './schools.js';

/** How long a notice stays up, in milliseconds. */
const NOTICE_MS = 8000;

/**
 * Looks up an element that the page is known to have.
 * @template {HTMLElement} T
 * @param {string} id
 * @returns {T}
 */
export function $(id) {
  const node = document.getElementById(id);
  if (!node) throw new Error(`this page lacks #${id}`);
  return /** @type {T} */ (node);
}

/**
 * Creates an element with a class and optional text.
 * @param {string} tag
 * @param {string} [className]
 * @param {string} [text]
 * @returns {HTMLElement}
 */
export function el(tag, className, text) {
  const node = document.createElement(tag);
  if (className) node.className = className;
  if (text !== undefined) node.textContent = text;
  return node;
}

/**
 * An element with attributes and children.
 * @param {string} tag
 * @param {Record<string, string>} [attrs]
 * @param {(Node | string)[]} [children]
 * @returns {HTMLElement}
 */
export function h(tag, attrs = {}, children = []) {
  const e = document.createElement(tag);
  for (const [k, v] of Object.entries(attrs)) e.setAttribute(k, v);
  e.append(...children);
  return e;
}

/** @type {ReturnType<typeof setTimeout> | null} */
let noticeTimer = null;

/**
 * Shows a short notice in the page's `#notice` element.
 * @param {string} text
 * @param {'error' | 'info'} [kind]
 */
export function showNotice(text, kind = 'error') {
  const notice = $('notice');
  notice.textContent = text;
  notice.className = `notice ${kind}`;
  notice.hidden = false;
  if (noticeTimer) clearTimeout(noticeTimer);
  noticeTimer = setTimeout(() => {
    notice.hidden = true;
  }, NOTICE_MS);
}

/** Hides the notice. */
export function hideNotice() {
  if (noticeTimer) clearTimeout(noticeTimer);
  noticeTimer = null;
  $('notice').hidden = true;
}

/** Ends the teacher's session and goes back to the login page. */
export async function logOut() {
  try {
    await api('DELETE', '/api/v1/session');
  } catch (err) {
    if (err.status !== 401) {
      showNotice(`Could not log out: ${err.message}`);
      return;
    }
  }
  location.assign('/login');
}

/**
 * The rights the user can use, from the page's `<body data-rights>` (the
 * server renders it from their access rules; see `Rights::usable`).
 * @type {Set<string> | null}
 */
let usable = null;

/**
 * Whether the user holds `feature` on at least one group (commands: with
 * control). Only for what to show: the server still judges every request.
 * @param {string} feature e.g. "command.lock"
 * @returns {boolean}
 */
export function holds(feature) {
  if (usable === null) usable = new Set((document.body.dataset.rights || '').split(/\s+/).filter(Boolean));
  return usable.has(feature);
}

/**
 * Rights-dependent elements, for every page and every helper: give an element
 * `data-right="command.lock"` (or several, space separated: shown when the
 * user holds ANY of them) and it is hidden while the user holds none of them
 * on any group, whether it is in the page's HTML or added later (menus,
 * tiles). Give a container `data-right-group` and it is hidden when all its
 * `data-right` children are. The server stays the judge: a hidden button's
 * route still refuses the request.
 * @param {ParentNode} [root]
 */
export function applyRights(root = document) {
  markRights(root);
  hideEmptyGroups();
  document.body.dataset.rightsApplied = '';
}

/**
 * Hides the `data-right` elements in (and at) `root` the user cannot use.
 * @param {ParentNode} root
 */
function markRights(root) {
  /** @type {Element[]} */
  const found = [...root.querySelectorAll('[data-right]')];
  if (root instanceof Element && root.matches('[data-right]')) found.push(root);
  for (const node of found) {
    const wanted = (node.getAttribute('data-right') || '').split(/\s+/).filter(Boolean);
    /** @type {HTMLElement} */ (node).hidden = wanted.length > 0 && !wanted.some(holds);
  }
}

/** Hides each `data-right-group` whose `data-right` elements are all hidden. */
function hideEmptyGroups() {
  for (const group of document.querySelectorAll('[data-right-group]')) {
    const parts = [...group.querySelectorAll('[data-right]')];
    /** @type {HTMLElement} */ (group).hidden = parts.length > 0 && parts.every((n) => /** @type {HTMLElement} */ (n).hidden);
  }
}

/** Applies {@link applyRights} to elements added to the page later. */
function watchRights() {
  new MutationObserver((records) => {
    let marked = false;
    for (const r of records) {
      for (const node of r.addedNodes) {
        if (node instanceof Element && (node.matches('[data-right]') || node.querySelector('[data-right]'))) {
          markRights(node);
          marked = true;
        }
      }
    }
    if (marked) hideEmptyGroups();
  }).observe(document.body, { childList: true, subtree: true });
}

/**
 * Sets up what every page has: title with the school's name and the "Log
 * out" button (the server marks the current navigation links).
 * @param {string} [pageName] e.g. "Groups"; the classroom page has none
 */
export function initPage(pageName) {
  const school = $('school-name').textContent;
  if (school) document.title = [pageName, school, 'Lectern'].filter(Boolean).join(' · ');
  applyRights();
  watchRights();
  $('logout-button').addEventListener('click', logOut);
  offerSchools((text) => showNotice(text));
}

/**
 * Formats a time (milliseconds since the epoch) for tables.
 * @param {number | null | undefined} ms
 * @returns {string}
 */
export function formatTime(ms) {
  if (!ms) return '';
  const d = new Date(ms);
  const sameDay = d.toDateString() === new Date().toDateString();
  return sameDay
    ? d.toLocaleTimeString(undefined, { hour: '2-digit', minute: '2-digit' })
    : d.toLocaleString(undefined, { dateStyle: 'short', timeStyle: 'short' });
}

/**
 * Adds `<option>`s to a select.
 * @param {HTMLSelectElement} select
 * @param {[string, string][]} options value and label pairs
 * @param {string} [selected]
 */
export function fillSelect(select, options, selected) {
  select.replaceChildren(...options.map(([value, label]) => {
    const o = /** @type {HTMLOptionElement} */ (el('option', '', label));
    o.value = value;
    return o;
  }));
  if (selected !== undefined) select.value = selected;
}
