// Enrollment page: the school's code for registering devices (shown, copied,
// made anew, turned off); make a token for a room (shown once, with a copy
// button), list tokens with uses left, expiry, label, room and maker, and
// revoke one. Rooms offered are those the user controls (administrators may
// also make a token for no room).

import { api } from './api.js';
import { $, el, fillSelect, formatTime, hideNotice, initPage, showNotice } from './page.js';

/**
 * @typedef {object} Token
 * @property {number} id
 * @property {string} label
 * @property {number} uses_left
 * @property {number} expires_at
 * @property {string} created_by
 * @property {number} created_at
 * @property {number | null} room
 * @property {string | null} room_name
 * @property {number | null} revoked_at
 */

const form = /** @type {HTMLFormElement} */ ($('token-form'));
const roomSelect = /** @type {HTMLSelectElement} */ ($('token-room'));
const table = /** @type {HTMLTableElement} */ ($('tokens-table'));
const made = $('token-made');
const valueInput = /** @type {HTMLInputElement} */ ($('token-value'));

/**
 * The error's text.
 * @param {unknown} e
 * @returns {string}
 */
function message(e) {
  return e instanceof Error ? e.message : String(e);
}

/**
 * A token's state in words.
 * @param {Token} t
 * @returns {string}
 */
function state(t) {
  if (t.revoked_at) return 'Revoked';
  if (t.expires_at <= Date.now()) return 'Expired';
  if (t.uses_left <= 0) return 'Used up';
  return 'Active';
}

/**
 * One token's row.
 * @param {Token} t
 * @returns {HTMLTableRowElement}
 */
function row(t) {
  const tr = /** @type {HTMLTableRowElement} */ (el('tr'));
  const words = state(t);
  const actions = el('td', 'row-actions');
  if (words === 'Active') {
    const revoke = el('button', 'danger', 'Revoke');
    revoke.setAttribute('type', 'button');
    revoke.setAttribute('aria-label', `Revoke token ${t.label || t.id}`);
    revoke.addEventListener('click', () => { void revokeToken(t); });
    actions.append(revoke);
  }
  tr.append(
    el('td', '', t.label || '—'),
    el('td', '', t.room_name ?? (t.room ? `group ${t.room}` : 'No room')),
    el('td', '', String(t.uses_left)),
    el('td', '', formatTime(t.expires_at)),
    el('td', '', t.created_by),
    el('td', '', formatTime(t.created_at)),
    el('td', `token-state ${words.toLowerCase().replace(' ', '-')}`, words),
    actions,
  );
  return tr;
}

/** Loads the list. */
async function loadTokens() {
  /** @type {Token[]} */
  const list = await api('GET', '/api/v1/enrollment-tokens');
  table.tBodies[0].replaceChildren(...list.map(row));
  $('tokens-empty').hidden = list.length > 0;
}

/** Fills the room choice with the rooms the user controls. */
async function loadRooms() {
  const [me, av] = await Promise.all([api('GET', '/api/v1/me'), api('GET', '/api/v1/availability')]);
  const all = Boolean(me.rights?.all);
  /** @type {Record<string, string>} */
  const access = me.rights?.group_access ?? {};
  /** @type {[string, string][]} */
  const options = av.rooms
    .filter((/** @type {{id: number}} */ r) => all || access[String(r.id)] === 'control')
    .map((/** @type {{id: number, name: string}} */ r) => [String(r.id), r.name]);
  if (all) options.push(['', 'No room (joins no group)']);
  fillSelect(roomSelect, options);
  $('token-create').toggleAttribute('disabled', options.length === 0);
  if (!options.length) showNotice('You control no room to enroll computers into.', 'info');
}

/**
 * Revokes a token after asking.
 * @param {Token} t
 */
async function revokeToken(t) {
  if (!confirm(`Revoke token “${t.label || t.id}”? No more computers can enroll with it.`)) return;
  try {
    await api('DELETE', `/api/v1/enrollment-tokens/${t.id}`);
    showNotice('Token revoked.', 'info');
    await loadTokens();
  } catch (e) {
    showNotice(message(e));
  }
}

form.addEventListener('submit', async (ev) => {
  ev.preventDefault();
  const uses = Number(/** @type {HTMLInputElement} */ ($('token-uses')).value);
  const hours = Number(/** @type {HTMLInputElement} */ ($('token-hours')).value);
  const room = roomSelect.value ? Number(roomSelect.value) : null;
  try {
    const v = await api('POST', '/api/v1/enrollment-tokens', {
      label: /** @type {HTMLInputElement} */ ($('token-label')).value.trim(),
      uses,
      expires_hours: hours,
      room,
    });
    valueInput.value = v.token;
    $('token-copied').textContent = '';
    made.hidden = false;
    valueInput.focus();
    valueInput.select();
    hideNotice();
    await loadTokens();
  } catch (e) {
    showNotice(message(e));
  }
});

$('token-copy').addEventListener('click', async () => {
  valueInput.select();
  try {
    await navigator.clipboard.writeText(valueInput.value);
    $('token-copied').textContent = 'Copied.';
  } catch {
    $('token-copied').textContent = 'Select the token and copy it (Ctrl+C).';
  }
});

/**
 * @typedef {object} SchoolCode
 * @property {string | null} code as people type it; null: registration by code is off
 * @property {string | null} created_by
 * @property {number | null} created_at
 */

/**
 * Shows the school code as the server has it.
 * @param {SchoolCode} c
 */
function showCode(c) {
  const value = $('code-value');
  value.textContent = c.code ?? 'Off: no computer can register with a code';
  value.classList.toggle('off', !c.code);
  $('code-info').textContent = c.code && c.created_at
    ? `Made by ${c.created_by}, ${formatTime(c.created_at)}.`
    : '';
  $('code-copy').toggleAttribute('disabled', !c.code);
  $('code-off').toggleAttribute('disabled', !c.code);
  $('code-new').textContent = c.code ? 'Make a new code' : 'Make a code';
}

/** Loads the school code. */
async function loadCode() {
  showCode(await api('GET', '/api/v1/school/code'));
}

$('code-new').addEventListener('click', async () => {
  const had = !$('code-value').classList.contains('off');
  if (had && !confirm('Make a new school code? The current one stops working at once; computers already registered stay.')) return;
  try {
    showCode(await api('POST', '/api/v1/school/code'));
    showNotice(had ? 'New school code made; the old one no longer works.' : 'School code made.', 'info');
  } catch (e) {
    showNotice(message(e));
  }
});

$('code-off').addEventListener('click', async () => {
  if (!confirm('Turn registration by school code off? Computers already registered stay.')) return;
  try {
    await api('DELETE', '/api/v1/school/code');
    await loadCode();
    showNotice('Registration by school code is off.', 'info');
  } catch (e) {
    showNotice(message(e));
  }
});

$('code-copy').addEventListener('click', async () => {
  try {
    await navigator.clipboard.writeText($('code-value').textContent ?? '');
    $('code-info').textContent = 'Copied.';
  } catch {
    $('code-info').textContent = 'Select the code and copy it (Ctrl+C).';
  }
});

initPage('Enrollment tokens');
Promise.all([loadCode(), loadRooms(), loadTokens()]).catch((e) => showNotice(message(e)));
