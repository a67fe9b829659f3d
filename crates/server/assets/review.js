// The review workflow on the safeguarding log: each violation's case
// (status, assignee, notes, history) in its detail, the status and assignee
// columns, bulk changes to the selected rows, and live updates when someone
// else changes a case. The log itself (logs.js) calls in here.
//
// The server judges every change (violations.review, the assignee's right
// to read each violation); the forms are hidden from those without the
// right by `data-right`.

import { api } from './api.js';
import { $, el, holds, hideNotice, showNotice } from './page.js';
import { timeElement } from './safety.js';
import { Stream } from './stream.js';

/**
 * @typedef {object} CaseFields
 * @property {number} id
 * @property {string} [status] new | in_review | no_concern | escalated | closed
 * @property {string | null} [assignee]
 * @property {number} [notes] how many
 */

/**
 * @typedef {object} CaseNote
 * @property {number} id
 * @property {string} author
 * @property {string} body
 * @property {number} at
 */

/**
 * @typedef {object} CaseEvent
 * @property {string} actor
 * @property {string} field status | assignee | note
 * @property {string | null} old
 * @property {string | null} new
 * @property {number} at
 */

/**
 * @typedef {object} CaseView
 * @property {number} id
 * @property {string} status
 * @property {string | null} assignee
 * @property {number} notes
 * @property {CaseNote[]} notes_list
 * @property {CaseEvent[]} history
 */

/** Statuses in workflow order, with their words. */
export const STATUS_LABELS = {
  new: 'New',
  in_review: 'In review',
  no_concern: 'No concern',
  escalated: 'Escalated',
  closed: 'Closed',
};

/** What the log's owner does when cases change. */
let hooks = {
  /** @type {(id: number, fields: {status: string, assignee: string | null, notes: number}) => void} */
  changed: () => {},
  /** @type {() => void} */
  reload: () => {},
};

/** The violations ticked for a bulk change. @type {Set<number>} */
const selected = new Set();
/** Ids shown in the table now. @type {number[]} */
let shown = [];
/** The violation whose case the dialog shows. @type {number | null} */
let openId = null;
/** Console users a case may be assigned to. @type {string[]} */
let assignees = [];

/**
 * A status in words.
 * @param {string | undefined} status
 * @returns {string}
 */
function statusLabel(status) {
  return STATUS_LABELS[status || 'new'] || status || 'New';
}

/**
 * A status badge.
 * @param {string | undefined} status
 * @returns {HTMLElement}
 */
function statusBadge(status) {
  return el('span', `case-status status-${status || 'new'}`, statusLabel(status));
}

/**
 * The table cells the review adds to a violation's row: a tick box (for
 * those who may review), status and assignee.
 * @param {CaseFields & {term: string}} v
 * @returns {{pick: HTMLElement, status: HTMLElement, assignee: HTMLElement}}
 */
export function reviewCells(v) {
  const pick = el('td', 'pick');
  pick.dataset.right = 'violations.review';
  const box = /** @type {HTMLInputElement} */ (el('input', 'pick-box'));
  box.type = 'checkbox';
  box.checked = selected.has(v.id);
  box.setAttribute('aria-label', `Select “${v.term}” (violation ${v.id})`);
  box.addEventListener('change', () => {
    if (box.checked) selected.add(v.id);
    else selected.delete(v.id);
    syncBulk();
  });
  pick.append(box);
  if (!holds('violations.review')) pick.hidden = true;
  const status = el('td', 'status-cell');
  status.append(statusBadge(v.status));
  const assignee = el('td', `assignee${v.assignee ? '' : ' none'}`, v.assignee || 'Nobody');
  return { pick, status, assignee };
}

/**
 * Tells the review which violations the table shows (ticks of others go).
 * @param {number[]} ids
 */
export function tableShown(ids) {
  shown = ids;
  const keep = new Set(ids);
  for (const id of [...selected]) if (!keep.has(id)) selected.delete(id);
  syncBulk();
}

/** Updates the bulk form's count, button and the "all" tick box. */
function syncBulk() {
  const n = selected.size;
  $('bulk-count').textContent = n === 0 ? 'No violations selected' : `${n.toLocaleString()} selected`;
  /** @type {HTMLButtonElement} */ ($('bulk-apply')).disabled = n === 0;
  const all = /** @type {HTMLInputElement} */ ($('pick-all'));
  all.checked = n > 0 && n === shown.length;
  all.indeterminate = n > 0 && n < shown.length;
}

/**
 * Options for an assignee select: the fixed ones, then every assignee.
 * @param {HTMLSelectElement} select
 * @param {[string, string][]} fixed
 * @param {string} [keep] the value to keep selected
 */
function fillAssignees(select, fixed, keep = select.dataset.pending ?? select.value) {
  const names = [...assignees];
  if (keep && !fixed.some(([v]) => v === keep) && !names.includes(keep)) names.push(keep);
  select.replaceChildren(...[...fixed, ...names.map((n) => /** @type {[string, string]} */ ([n, n]))].map(([value, label]) => {
    const o = /** @type {HTMLOptionElement} */ (el('option', '', label));
    o.value = value;
    return o;
  }));
  select.value = keep || '';
  delete select.dataset.pending;
}

/** Loads who cases may be assigned to and fills every assignee choice. */
async function loadAssignees() {
  if (holds('violations.review')) {
    try {
      const list = await api('GET', '/api/v1/violations/assignees');
      assignees = Array.isArray(list) ? list.map((u) => String(u.username)) : [];
    } catch {
      assignees = [];
    }
  }
  fillAssignees(/** @type {HTMLSelectElement} */ ($('filter-assignee')), [['', 'Anyone'], ['mine', 'Assigned to me'], ['unassigned', 'Nobody']]);
  fillAssignees(/** @type {HTMLSelectElement} */ ($('bulk-assignee')), [['', 'Keep'], ['-', 'Nobody']], '');
  fillAssignees(/** @type {HTMLSelectElement} */ ($('case-assignee')), [['', 'Nobody']], '');
}

/**
 * Sends a change; shows what the server says went wrong in the page's
 * notice, or in `inDialog` (the page behind a modal dialog is out of reach).
 * @param {string} path
 * @param {object} body
 * @param {HTMLElement} [inDialog]
 * @returns {Promise<any>}
 */
async function send(path, body, inDialog) {
  hideNotice();
  if (inDialog) inDialog.hidden = true;
  try {
    return await api('POST', path, body);
  } catch (err) {
    if (inDialog) {
      inDialog.textContent = err.message;
      inDialog.hidden = false;
    } else {
      showNotice(err.message);
    }
    return null;
  }
}

/** Applies the bulk form to the ticked violations. */
async function applyBulk() {
  const status = /** @type {HTMLSelectElement} */ ($('bulk-status')).value;
  const who = /** @type {HTMLSelectElement} */ ($('bulk-assignee')).value;
  const note = /** @type {HTMLInputElement} */ ($('bulk-note')).value;
  /** @type {Record<string, unknown>} */
  const body = { ids: [...selected] };
  if (status) body.status = status;
  if (who) body.assignee = who === '-' ? null : who;
  if (note.trim()) body.note = note;
  if (Object.keys(body).length === 1) {
    showNotice('Choose a status, someone to assign or a note first');
    return;
  }
  const r = await send('/api/v1/violations/review', body);
  if (!r) return;
  const parts = [`${r.changed.length} changed`];
  if (r.unchanged.length) parts.push(`${r.unchanged.length} already so`);
  if (r.skipped.length) parts.push(`${r.skipped.length} not found or not yours to see`);
  if (r.refused.length) parts.push(`${r.refused.length} not assigned: ${who} can’t see ${r.refused.length === 1 ? 'its computer' : 'their computers'}`);
  showNotice(parts.join(', '), r.skipped.length || r.refused.length ? 'error' : 'info');
  /** @type {HTMLFormElement} */ ($('bulk-review')).reset();
  selected.clear();
  hooks.reload();
}

/**
 * One line of the case's history, in words.
 * @param {CaseEvent} e
 * @returns {string}
 */
function historyText(e) {
  if (e.field === 'status') return `${e.actor} changed the status from ${statusLabel(e.old || 'new')} to ${statusLabel(e.new || 'new')}`;
  if (e.field === 'assignee') {
    if (!e.new) return `${e.actor} unassigned ${e.old}`;
    return e.old ? `${e.actor} reassigned it from ${e.old} to ${e.new}` : `${e.actor} assigned it to ${e.new}`;
  }
  if (e.field === 'note') return `${e.actor} added a note`;
  return `${e.actor} changed ${e.field}`;
}

/**
 * Shows a case in the dialog.
 * @param {CaseView} c
 */
function renderCase(c) {
  const words = [statusLabel(c.status), c.assignee ? `assigned to ${c.assignee}` : 'not assigned', `${c.notes} note${c.notes === 1 ? '' : 's'}`];
  $('case-summary').replaceChildren(statusBadge(c.status), ` ${words.slice(1).join(' · ')}`);
  /** @type {HTMLSelectElement} */ ($('case-status')).value = c.status;
  const who = /** @type {HTMLSelectElement} */ ($('case-assignee'));
  fillAssignees(who, [['', 'Nobody']], c.assignee || '');
  $('case-notes').replaceChildren(...c.notes_list.map((n) => {
    const li = el('li', 'case-note');
    const head = el('p', 'case-note-head', `${n.author} · `);
    head.append(timeElement(n.at));
    li.append(head, el('p', 'case-note-body', n.body));
    return li;
  }));
  $('case-notes-empty').hidden = c.notes_list.length > 0;
  $('case-history').replaceChildren(...c.history.map((e) => {
    const li = el('li', `case-event field-${e.field}`);
    li.append(timeElement(e.at), ` ${historyText(e)}`);
    return li;
  }));
  $('case-history-empty').hidden = c.history.length > 0;
}

/**
 * Loads and shows violation `id`'s case in the open dialog.
 * @param {number} id
 */
export async function showCase(id) {
  openId = id;
  $('case-summary').textContent = 'Loading…';
  try {
    const c = /** @type {CaseView} */ (await api('GET', `/api/v1/violations/${encodeURIComponent(id)}/review`));
    if (openId !== id) return;
    renderCase(c);
  } catch (err) {
    if (openId === id) $('case-summary').textContent = `Could not load the case: ${err.message}`;
  }
}

/** The dialog closed. */
export function caseClosed() {
  openId = null;
  $('case-error').hidden = true;
}

/**
 * Sends a change of the open case and shows the result.
 * @param {Record<string, unknown>} body
 * @returns {Promise<boolean>} whether it was saved
 */
async function changeOpen(body) {
  const id = openId;
  if (id === null) return false;
  const c = await send(`/api/v1/violations/${encodeURIComponent(id)}/review`, body, $('case-error'));
  if (!c || openId !== id) return false;
  renderCase(c);
  hooks.changed(id, { status: c.status, assignee: c.assignee, notes: c.notes });
  return true;
}

/**
 * A case changed (the stream): the row, and the dialog if it shows it.
 * @param {{violation_id: number, status: string, assignee: string | null, notes: number}} c
 */
function onCase(c) {
  hooks.changed(c.violation_id, { status: c.status, assignee: c.assignee, notes: c.notes });
  if (openId === c.violation_id) showCase(c.violation_id);
}

/**
 * Hooks up the review's forms and live updates.
 * @param {{changed: typeof hooks.changed, reload: typeof hooks.reload}} owner
 */
export function initReview(owner) {
  hooks = owner;
  $('pick-all').addEventListener('change', () => {
    const all = /** @type {HTMLInputElement} */ ($('pick-all')).checked;
    selected.clear();
    if (all) for (const id of shown) selected.add(id);
    for (const box of document.querySelectorAll('#violations-table tbody .pick-box')) {
      /** @type {HTMLInputElement} */ (box).checked = all;
    }
    syncBulk();
  });
  $('bulk-review').addEventListener('submit', (event) => {
    event.preventDefault();
    applyBulk();
  });
  $('case-form').addEventListener('submit', (event) => {
    event.preventDefault();
    const who = /** @type {HTMLSelectElement} */ ($('case-assignee')).value;
    changeOpen({ status: /** @type {HTMLSelectElement} */ ($('case-status')).value, assignee: who || null });
  });
  $('case-note-form').addEventListener('submit', async (event) => {
    event.preventDefault();
    const note = /** @type {HTMLTextAreaElement} */ ($('case-note'));
    if (!note.value.trim()) {
      $('case-error').textContent = 'Write the note first.';
      $('case-error').hidden = false;
      return;
    }
    if (await changeOpen({ note: note.value })) note.value = '';
  });
  syncBulk();
  loadAssignees();
  // The stream is only for those who may see computers (it refuses, and
  // audits, anyone else); without it the log still updates on reload.
  if (holds('devices.view')) new Stream('/api/v1/stream', { onCase }).start();
}
