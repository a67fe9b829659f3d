// Safeguarding logs page: the violations (keyword matches) and the activity
// log (sites, applications, logins) with filters, CSV export of what the
// filters select, and a violation's detail with its screenshots.
//
// The filters and the tab live in the address (`/logs?tab=activity&user=ben`),
// so a view can be reloaded or shared; `?violation=ID` opens that violation's
// detail (the grid's alerts link there).

import { api } from './api.js';
import { highlighted, initEvidenceViewer, showEvidence } from './evidence.js';
import { $, el, fillSelect, hideNotice, showNotice } from './page.js';
import {
  caseClosed, initReview, reviewCells, showCase, tableShown,
} from './review.js';
import {
  deviceName, fillGroupSelect, initSafetyPage, loadDevices, loadGroups, localInputToMs, severityBadge,
  timeElement,
} from './safety.js';

/**
 * @typedef {object} Violation
 * @property {number} id
 * @property {number} device_id
 * @property {string | null} hostname
 * @property {string | null} user
 * @property {string} term
 * @property {string} category
 * @property {number} severity 1 to 5
 * @property {string} matched the text that matched, as it was written
 * @property {string} context the text around it
 * @property {string} source window_title | url | title | search | text
 * @property {number} at ms
 * @property {number} screenshots how many
 * @property {string} action log | screenshot | alert | lock
 * @property {string} [status] the case's: new | in_review | no_concern | escalated | closed
 * @property {string | null} [assignee] the console user the case is assigned to
 * @property {number} [notes] how many notes the case has
 * @property {boolean} [retrospective] found later by a rescan of stored activity
 */

/**
 * @typedef {object} Activity
 * @property {number} id
 * @property {number} device_id
 * @property {number | null} seq
 * @property {string | null} user
 * @property {string} kind
 * @property {string | null} url
 * @property {string | null} title
 * @property {string | null} app
 * @property {number} at
 */

/** @typedef {'violations' | 'activity'} Tab */

const SOURCE_LABELS = {
  window_title: 'Window title',
  url: 'Web address',
  title: 'Page title',
  search: 'Search',
  text: 'Typed text',
};
const ACTION_LABELS = {
  log: 'Logged',
  screenshot: 'Screenshots',
  alert: 'Alert',
  lock: 'Screen locked',
};
const KIND_LABELS = {
  web: 'Website',
  app: 'Application',
  login: 'Login',
  logout: 'Logout',
  power_on: 'Power on',
  power_off: 'Power off',
  dropped: 'Lost events',
};

/** The filter inputs, by query parameter name. */
const FILTERS = /** @type {const} */ ({
  device: 'filter-device',
  group: 'filter-group',
  user: 'filter-user',
  category: 'filter-category',
  min_severity: 'filter-severity',
  status: 'filter-status',
  assignee: 'filter-assignee',
  kind: 'filter-kind',
  since: 'filter-since',
  until: 'filter-until',
  q: 'filter-q',
  retrospective: 'filter-found',
  limit: 'filter-limit',
});
/** Filters only one tab has. */
const ONLY_FOR = {
  category: 'violations', min_severity: 'violations', status: 'violations', assignee: 'violations', kind: 'activity',
  retrospective: 'violations',
};
const DEFAULT_LIMIT = '200';

/** @type {Tab} */
let tab = 'violations';
/** @type {Map<number, import('./safety.js').Device>} */
let devices = new Map();
/** @type {Violation[]} */
let violations = [];
/** @type {Activity[]} */
let activity = [];
/** Categories of the keyword library, when the teacher may read it. @type {string[]} */
let libraryCategories = [];
/** Ignores answers to older loads. */
let loadSerial = 0;

const form = /** @type {HTMLFormElement} */ ($('log-filters'));
const exportLink = /** @type {HTMLAnchorElement} */ ($('export-csv'));
const dialog = /** @type {HTMLDialogElement} */ ($('violation-dialog'));

/**
 * An input of the filter form.
 * @param {keyof typeof FILTERS} name
 * @returns {HTMLInputElement | HTMLSelectElement}
 */
function input(name) {
  return /** @type {HTMLInputElement | HTMLSelectElement} */ ($(FILTERS[name]));
}

/**
 * A filter's value; a choice from the address whose option has not arrived
 * yet counts.
 * @param {keyof typeof FILTERS} name
 * @returns {string}
 */
function fieldValue(name) {
  const field = input(name);
  return (field.dataset.pending ?? field.value).trim();
}

/**
 * The query parameters the filters ask for, for the current tab (no empty ones).
 * @returns {URLSearchParams}
 */
function filterParams() {
  const params = new URLSearchParams();
  for (const name of /** @type {(keyof typeof FILTERS)[]} */ (Object.keys(FILTERS))) {
    if (ONLY_FOR[name] && ONLY_FOR[name] !== tab) continue;
    let value = fieldValue(name);
    if (name === 'min_severity' && value.startsWith('=')) {
      params.set('severity', value.slice(1));
      continue;
    }
    if (name === 'since' || name === 'until') {
      const ms = localInputToMs(value);
      value = ms === null ? '' : String(ms);
    }
    if (value) params.set(name, value);
  }
  return params;
}

/**
 * The API path for the current tab and filters.
 * @param {boolean} csv
 * @returns {string}
 */
function listPath(csv) {
  const params = filterParams();
  if (csv) {
    // The export has everything the filters select, not just the rows shown.
    params.delete('limit');
    params.set('format', 'csv');
  }
  const query = params.toString();
  return `/api/v1/${tab}${query ? `?${query}` : ''}`;
}

/** Shows the filters of the current tab and points the export link at its CSV. */
function syncFilterForm() {
  for (const box of form.querySelectorAll('[data-for]')) {
    /** @type {HTMLElement} */ (box).hidden = /** @type {HTMLElement} */ (box).dataset.for !== tab;
  }
  updateExportLink();
}

/** Points "Export CSV" at what the filters select. */
function updateExportLink() {
  exportLink.href = listPath(true);
  exportLink.setAttribute('download', `${tab}.csv`);
  exportLink.setAttribute('aria-label', `Export CSV of the ${tab === 'violations' ? 'violations' : 'activity'} shown`);
}

/** Puts the tab and filters in the address bar (without reloading). */
function saveToAddress() {
  const params = new URLSearchParams();
  if (tab !== 'violations') params.set('tab', tab);
  for (const name of /** @type {(keyof typeof FILTERS)[]} */ (Object.keys(FILTERS))) {
    if (ONLY_FOR[name] && ONLY_FOR[name] !== tab) continue;
    const value = fieldValue(name);
    if (name === 'min_severity' && value.startsWith('=')) params.set('severity', value.slice(1));
    else if (value && !(name === 'limit' && value === DEFAULT_LIMIT)) params.set(name, value);
  }
  const query = params.toString();
  history.replaceState(null, '', `${location.pathname}${query ? `?${query}` : ''}`);
}

/** Sets the tab and filters from the address bar. */
function loadFromAddress() {
  const params = new URLSearchParams(location.search);
  tab = params.get('tab') === 'activity' ? 'activity' : 'violations';
  for (const name of /** @type {(keyof typeof FILTERS)[]} */ (Object.keys(FILTERS))) {
    const value = params.get(name);
    if (value === null) continue;
    const field = input(name);
    if (field instanceof HTMLSelectElement && ![...field.options].some((o) => o.value === value)) {
      // Devices, groups and categories arrive later; keep the choice until then.
      field.dataset.pending = value;
    }
    field.value = value;
  }
  // The overview's charts link here with `from` and `to` (a day, from its
  // start, or a local time) and `severity` (exactly one severity).
  for (const [alias, name] of /** @type {const} */ ([['from', 'since'], ['to', 'until']])) {
    const value = params.get(alias) || '';
    const local = /^\d{4}-\d{2}-\d{2}$/.test(value) ? `${value}T00:00` : value;
    if (/^\d{4}-\d{2}-\d{2}T\d{2}:\d{2}$/.test(local)) input(name).value = local;
  }
  const exact = params.get('severity');
  if (exact && /^[1-5]$/.test(exact)) input('min_severity').value = exact === '5' ? '5' : `=${exact}`;
}

/**
 * Applies a value remembered by `loadFromAddress` once the select has its options.
 * @param {HTMLSelectElement} select
 */
function applyPending(select) {
  const pending = select.dataset.pending;
  if (pending && [...select.options].some((o) => o.value === pending)) {
    select.value = pending;
    delete select.dataset.pending;
  }
}

/**
 * Switches tabs.
 * @param {Tab} next
 * @param {boolean} [focus] move the focus to the tab (keyboard use)
 */
function selectTab(next, focus = false) {
  tab = next;
  for (const name of ['violations', 'activity']) {
    const button = $(`tab-${name}`);
    const selected = name === tab;
    button.setAttribute('aria-selected', String(selected));
    button.tabIndex = selected ? 0 : -1;
    $(`panel-${name}`).hidden = !selected;
    if (selected && focus) button.focus();
  }
  syncFilterForm();
  saveToAddress();
  load();
}

/**
 * A violation's host name.
 * @param {Violation} v
 * @returns {string}
 */
function violationHost(v) {
  return v.hostname || deviceName(devices, v.device_id);
}

/**
 * A row of the violations table.
 * @param {Violation} v
 * @returns {HTMLTableRowElement}
 */
function violationRow(v) {
  const tr = /** @type {HTMLTableRowElement} */ (el('tr', `violation sev-row-${v.severity}`));
  tr.dataset.violationId = String(v.id);
  const when = el('td', 'at');
  when.append(timeElement(v.at));
  const sev = el('td', 'severity-cell');
  sev.append(severityBadge(v.severity));
  const term = el('td', 'term');
  const open = /** @type {HTMLButtonElement} */ (el('button', 'link open-violation', v.term));
  open.type = 'button';
  open.setAttribute('aria-label', `Details of “${v.term}” on ${violationHost(v)}`);
  open.addEventListener('click', () => showViolation(v));
  term.append(open);
  if (v.retrospective) term.append(' ', retroBadge());
  const where = el('td', 'where');
  where.append(el('span', 'source', SOURCE_LABELS[v.source] || v.source), el('span', 'context', ''));
  /** @type {HTMLElement} */ (where.lastChild).append(...highlighted(v.context, v.matched));
  const shots = el('td', 'shots-count', v.screenshots ? `${v.screenshots} screenshot${v.screenshots === 1 ? '' : 's'}` : '');
  const review = reviewCells(v);
  tr.append(
    review.pick,
    when,
    el('td', 'device', violationHost(v)),
    el('td', `username${v.user ? '' : ' none'}`, who(v)),
    el('td', 'category', v.category),
    sev,
    review.status,
    review.assignee,
    term,
    where,
    el('td', `action action-${v.action}`, ACTION_LABELS[v.action] || v.action),
    shots,
  );
  tr.addEventListener('click', (event) => {
    if (!(/** @type {HTMLElement} */ (event.target)).closest('button, a, input, td.pick')) showViolation(v);
  });
  return tr;
}

/**
 * The mark of a violation found by a retrospective scan.
 * @returns {HTMLElement}
 */
function retroBadge() {
  const badge = el('span', 'badge retro-badge', 'Retrospective');
  badge.title = 'Found later by a rescan of stored activity: no screenshots, no lock';
  return badge;
}

/**
 * Who a row is about: the person (when the name reported is one of their
 * aliases) with the name as reported.
 * @param {{user?: string | null, person?: string | null}} row
 * @returns {string}
 */
function who(row) {
  if (!row.user) return 'nobody';
  return row.person && row.person !== row.user ? `${row.person} (${row.user})` : row.user;
}

/**
 * What an activity event was, in words.
 * @param {Activity} a
 * @returns {HTMLElement}
 */
function activityWhat(a) {
  const cell = el('td', 'what');
  if (a.kind === 'web') {
    if (a.title && a.title !== a.url) cell.append(el('span', 'title', a.title));
    if (a.url) cell.append(el('code', 'url', a.url));
  } else if (a.kind === 'app') {
    cell.append(el('strong', 'app', a.app || 'Application'));
    if (a.title) cell.append(el('span', 'title', a.title));
  } else if (a.kind === 'dropped') {
    // The title is how many events the computer could not keep (its queue was full).
    const lost = Number(a.title);
    cell.append(el('span', 'title', Number.isInteger(lost) && lost > 0
      ? `${lost.toLocaleString()} event${lost === 1 ? ' was' : 's were'} lost: the computer’s queue was full while it was offline`
      : 'Some events were lost: the computer’s queue was full while it was offline'));
  } else if (a.title || a.app) {
    cell.append(el('span', 'title', [a.app, a.title].filter(Boolean).join(' · ')));
  }
  return cell;
}

/**
 * A row of the activity table.
 * @param {Activity} a
 * @returns {HTMLTableRowElement}
 */
function activityRow(a) {
  const tr = /** @type {HTMLTableRowElement} */ (el('tr', `activity-row kind-${a.kind}`));
  tr.dataset.activityId = String(a.id);
  const when = el('td', 'at');
  when.append(timeElement(a.at));
  tr.append(
    when,
    el('td', 'device', deviceName(devices, a.device_id)),
    el('td', `username${a.user ? '' : ' none'}`, who(a)),
    el('td', 'kind', KIND_LABELS[a.kind] || a.kind),
    activityWhat(a),
  );
  return tr;
}

/**
 * "3 violations", "no violations match", with a hint when the limit was reached.
 * @param {number} count
 * @param {string} one
 * @param {string} many
 * @returns {string}
 */
function summary(count, one, many) {
  if (count === 0) return `No ${many} match these filters.`;
  const limit = Number(input('limit').value);
  const text = `${count.toLocaleString()} ${count === 1 ? one : many}, newest first`;
  return count >= limit ? `${text} (only the ${limit.toLocaleString()} newest are shown; narrow the filters to see older ones).` : `${text}.`;
}

/** Redraws the current tab's table. */
function render() {
  if (tab === 'violations') {
    /** @type {HTMLTableElement} */ ($('violations-table')).tBodies[0].replaceChildren(...violations.map(violationRow));
    $('violations-table').hidden = violations.length === 0;
    tableShown(violations.map((v) => v.id));
    $('violations-summary').textContent = summary(violations.length, 'violation', 'violations');
  } else {
    /** @type {HTMLTableElement} */ ($('activity-table')).tBodies[0].replaceChildren(...activity.map(activityRow));
    $('activity-table').hidden = activity.length === 0;
    $('activity-summary').textContent = summary(activity.length, 'event', 'events');
  }
}

/** Adds users and categories seen in the results to the filters' choices. */
function updateChoices() {
  const users = new Set();
  for (const d of devices.values()) if (d.state?.user) users.add(d.state.user);
  for (const row of [...violations, ...activity]) if (row.user) users.add(row.user);
  $('filter-users').replaceChildren(...[...users].sort().map((u) => {
    const o = /** @type {HTMLOptionElement} */ (el('option'));
    o.value = u;
    return o;
  }));
  const categories = new Set(libraryCategories);
  for (const v of violations) categories.add(v.category);
  const select = /** @type {HTMLSelectElement} */ (input('category'));
  const keep = select.dataset.pending || select.value;
  if (keep) categories.add(keep);
  fillSelect(select, [['', 'All categories'], ...[...categories].sort().map((c) => /** @type {[string, string]} */ ([c, c]))], keep);
  delete select.dataset.pending;
}

/**
 * Loads the current tab's rows with the filters.
 * @param {boolean} [quiet] no notice when it fails
 */
async function load(quiet = false) {
  const serial = ++loadSerial;
  const which = tab;
  const since = localInputToMs(input('since').value);
  const until = localInputToMs(input('until').value);
  if (since !== null && until !== null && since > until) {
    showNotice('“From” is after “To”: no event can match');
    return;
  }
  $(`${which}-summary`).textContent = 'Loading…';
  try {
    const rows = await api('GET', listPath(false));
    if (serial !== loadSerial) return;
    if (which === 'violations') violations = Array.isArray(rows) ? rows : [];
    else activity = Array.isArray(rows) ? rows : [];
    render();
    updateChoices();
  } catch (err) {
    if (serial !== loadSerial) return;
    $(`${which}-summary`).textContent = `Could not load the ${which}.`;
    if (!quiet) showNotice(`Could not load the ${which}: ${err.message}`);
  }
}

/**
 * One fact of the detail view.
 * @param {HTMLElement} list the `<dl>`
 * @param {string} name
 * @param {string | Node} value
 */
function fact(list, name, value) {
  const dd = el('dd');
  dd.append(value);
  list.append(el('dt', '', name), dd);
}

/**
 * Opens a violation's detail: facts, its context with the match marked and
 * its screenshots, oldest first, the last one (the moment of the match)
 * marked and shown large.
 * @param {Violation} v
 */
function openViolation(v) {
  $('violation-title').textContent = `“${v.term}” on ${violationHost(v)}`;
  const facts = $('violation-facts');
  facts.replaceChildren();
  fact(facts, 'When', timeElement(v.at));
  fact(facts, 'Computer', violationHost(v));
  fact(facts, 'User', who(v));
  fact(facts, 'Category', v.category);
  fact(facts, 'Severity', severityBadge(v.severity));
  fact(facts, 'Term', v.term);
  fact(facts, 'Matched text', v.matched);
  fact(facts, 'Seen in', SOURCE_LABELS[v.source] || v.source);
  fact(facts, 'Action', ACTION_LABELS[v.action] || v.action);
  if (v.retrospective) fact(facts, 'Found', 'Later, by a rescan of stored activity for new or changed terms');
  $('violation-context').replaceChildren(...highlighted(v.context, v.matched));

  showEvidence(v, violationHost(v));
  $('violation-shots-empty').textContent = v.retrospective
    ? 'No screenshots: this violation was found later, by a rescan of stored activity, when the moment had passed.'
    : 'No screenshots were taken for this violation.';

  if (dialog.dataset.violationId !== String(v.id) || !dialog.open) showCase(v.id);
  dialog.dataset.violationId = String(v.id);
  if (!dialog.open) dialog.showModal();
}

/**
 * Opens a violation from the table at once, then again with what the server
 * has now: its screenshots arrive from the computer a moment after the match.
 * @param {Violation} v
 */
async function showViolation(v) {
  openViolation(v);
  try {
    const fresh = await api('GET', `/api/v1/violations/${encodeURIComponent(v.id)}`);
    if (!fresh || !dialog.open || dialog.dataset.violationId !== String(v.id)) return;
    if (fresh.screenshots !== v.screenshots) {
      violations = violations.map((x) => (x.id === v.id ? fresh : x));
      render();
      openViolation(fresh);
    }
  } catch {
    // The table's copy stays shown.
  }
}

/**
 * Opens the violation named in the address (`?violation=ID`).
 * @param {string} id
 */
async function openFromAddress(id) {
  try {
    const v = await api('GET', `/api/v1/violations/${encodeURIComponent(id)}`);
    if (v && typeof v === 'object') openViolation(v);
  } catch (err) {
    showNotice(`Could not open violation ${id}: ${err.message}`);
  }
}

/** Empties the filters (the tab stays). */
function clearFilters() {
  for (const name of /** @type {(keyof typeof FILTERS)[]} */ (Object.keys(FILTERS))) {
    const field = input(name);
    field.value = name === 'limit' ? DEFAULT_LIMIT : '';
    delete field.dataset.pending;
  }
  updateExportLink();
  saveToAddress();
  load();
}

/** Loads what the filters choose from: computers, groups and categories. */
async function loadChoices() {
  const [devs, groups, library] = await Promise.allSettled([
    loadDevices(),
    loadGroups(),
    api('GET', '/api/v1/keywords'),
  ]);
  if (devs.status === 'fulfilled') {
    devices = devs.value;
    const select = /** @type {HTMLSelectElement} */ (input('device'));
    const keep = select.dataset.pending || select.value;
    const sorted = [...devices.values()].sort((a, b) => a.hostname.localeCompare(b.hostname));
    fillSelect(select, [['', 'All computers'], ...sorted.map((d) => /** @type {[string, string]} */ ([String(d.id), d.hostname]))], '');
    select.value = keep;
    if (select.value !== keep) select.value = '';
    delete select.dataset.pending;
  } else {
    showNotice(`Could not load the computers: ${devs.reason.message}`);
  }
  if (groups.status === 'fulfilled') {
    const select = /** @type {HTMLSelectElement} */ (input('group'));
    const keep = select.dataset.pending || select.value;
    fillGroupSelect(select, groups.value, 'All groups');
    select.dataset.pending = keep;
    applyPending(select);
    delete select.dataset.pending;
  }
  if (library.status === 'fulfilled' && library.value && Array.isArray(library.value.terms)) {
    libraryCategories = [...new Set(library.value.terms.map((t) => String(t.category)))];
  }
  updateChoices();
  // Host names may have arrived after the rows.
  render();
}

/** Hooks up the page and starts loading. */
function main() {
  initSafetyPage('Safeguarding logs');
  loadFromAddress();
  const openId = new URLSearchParams(location.search).get('violation');

  for (const name of /** @type {Tab[]} */ (['violations', 'activity'])) {
    $(`tab-${name}`).addEventListener('click', () => {
      if (tab !== name) selectTab(name);
    });
  }
  $('tab-violations').parentElement?.addEventListener('keydown', (event) => {
    if (event.key !== 'ArrowLeft' && event.key !== 'ArrowRight' && event.key !== 'Home' && event.key !== 'End') return;
    event.preventDefault();
    selectTab(tab === 'violations' ? 'activity' : 'violations', true);
  });
  form.addEventListener('submit', (event) => {
    event.preventDefault();
    hideNotice();
    updateExportLink();
    saveToAddress();
    load();
  });
  form.addEventListener('change', (event) => {
    // A choice made by hand replaces one from the address still waiting for its option.
    delete /** @type {HTMLElement} */ (event.target).dataset.pending;
    updateExportLink();
  });
  form.addEventListener('input', updateExportLink);
  $('filter-clear').addEventListener('click', clearFilters);
  initEvidenceViewer();
  $('violation-close').addEventListener('click', () => dialog.close());
  dialog.addEventListener('close', () => {
    /** @type {HTMLImageElement} */ ($('violation-shot-large')).removeAttribute('src');
    $('violation-strip').replaceChildren();
    delete dialog.dataset.violationId;
    caseClosed();
  });

  // Select the tab without loading twice.
  for (const name of ['violations', 'activity']) {
    const selected = name === tab;
    $(`tab-${name}`).setAttribute('aria-selected', String(selected));
    $(`tab-${name}`).tabIndex = selected ? 0 : -1;
    $(`panel-${name}`).hidden = !selected;
  }
  syncFilterForm();
  initReview({
    changed(id, fields) {
      violations = violations.map((x) => (x.id === id ? { ...x, ...fields } : x));
      if (tab === 'violations') render();
    },
    reload: () => load(true),
  });
  loadChoices();
  load();
  if (openId) openFromAddress(openId);
}

main();
