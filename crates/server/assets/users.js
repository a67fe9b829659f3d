// Console users page: lists the console accounts and creates, disables,
// enables, deletes them, changes roles and resets passwords. The server
// decides what the viewer may do to each account (delegation, their own
// account, the last administrator) and says why when it refuses.

import { api } from './api.js';
import { $, el, formatTime, hideNotice, initPage, showNotice } from './page.js';

/**
 * @typedef {object} Account
 * @property {string} username
 * @property {'admin' | 'teacher'} role
 * @property {boolean} disabled
 * @property {boolean} must_change_password
 * @property {number | null} last_sign_in
 * @property {string} source
 */

/** @type {Account[]} */
let accounts = [];
/** The signed-in user, who cannot disable, delete or demote themselves. */
const me = $('user-name').textContent || '';

const table = /** @type {HTMLTableElement} */ ($('users-table'));
const resetDialog = /** @type {HTMLDialogElement} */ ($('reset-dialog'));
/** The account the reset dialog is for. */
let resetting = '';

/**
 * A path for `name` under `/api/v1/users/`.
 * @param {string} name
 * @param {string} [tail]
 */
function userPath(name, tail = '') {
  return `/api/v1/users/${encodeURIComponent(name)}${tail}`;
}

/**
 * A row button.
 * @param {string} label
 * @param {string} className
 * @param {string} accessibleName
 * @param {() => void} onClick
 */
function button(label, className, accessibleName, onClick) {
  const b = /** @type {HTMLButtonElement} */ (el('button', className, label));
  b.type = 'button';
  b.setAttribute('aria-label', accessibleName);
  b.addEventListener('click', onClick);
  return b;
}

/**
 * The account's status words.
 * @param {Account} a
 */
function status(a) {
  if (a.disabled) return 'Disabled';
  if (a.must_change_password) return 'Must change password';
  return 'Active';
}

/**
 * One account's row.
 * @param {Account} a
 */
function row(a) {
  const tr = /** @type {HTMLTableRowElement} */ (el('tr'));
  tr.dataset.username = a.username;
  const own = a.username === me;
  const name = el('td', 'username');
  name.append(el('strong', '', a.username));
  if (own) name.append(el('span', 'hint', ' (you)'));
  const role = /** @type {HTMLSelectElement} */ (el('select', 'user-role'));
  role.setAttribute('aria-label', `Role of ${a.username}`);
  for (const [value, label] of [['teacher', 'Teacher'], ['admin', 'Administrator']]) {
    const o = /** @type {HTMLOptionElement} */ (el('option', '', label));
    o.value = value;
    role.append(o);
  }
  role.value = a.role;
  role.disabled = own;
  role.addEventListener('change', () => setRole(a, role));
  const roleCell = el('td');
  roleCell.append(role);
  const actions = el('td', 'row-actions wrap');
  const toggle = a.disabled
    ? button('Enable', 'user-enable', `Enable ${a.username}`, () => change(a, '/enable', `${a.username} can sign in again.`))
    : button('Disable', 'user-disable', `Disable ${a.username}`, () => change(a, '/disable', `${a.username} is disabled and signed out.`));
  toggle.disabled = own && !a.disabled;
  const reset = button('Reset password', 'user-reset', `Reset password of ${a.username}`, () => openReset(a));
  reset.disabled = own;
  const del = button('Delete', 'user-delete danger', `Delete ${a.username}`, () => remove(a));
  del.disabled = own;
  actions.append(toggle, ' ', reset, ' ', del);
  tr.append(name, roleCell, el('td', 'user-status', status(a)), el('td', 'user-seen', formatTime(a.last_sign_in) || 'Never'), actions);
  tr.classList.toggle('disabled', a.disabled);
  return tr;
}

/** Redraws the table. */
function render() {
  table.tBodies[0].replaceChildren(...accounts.map(row));
  $('users-empty').hidden = accounts.length > 0;
}

/** Loads the accounts. */
async function load() {
  try {
    const list = await api('GET', '/api/v1/users');
    accounts = Array.isArray(list) ? list : [];
  } catch (err) {
    showNotice(`Could not load the users: ${err.message}`);
    return;
  }
  render();
}

/**
 * Posts a change (`/disable`, `/enable`) and reloads.
 * @param {Account} a
 * @param {string} tail
 * @param {string} done what to say when it worked
 */
async function change(a, tail, done) {
  try {
    await api('POST', userPath(a.username, tail), {});
    showNotice(done, 'info');
  } catch (err) {
    showNotice(err.message);
  }
  await load();
}

/**
 * Changes the account's role to the select's value.
 * @param {Account} a
 * @param {HTMLSelectElement} select
 */
async function setRole(a, select) {
  const role = select.value;
  try {
    await api('PUT', userPath(a.username, '/role'), { role });
    showNotice(`${a.username} is now ${role === 'admin' ? 'an administrator' : 'a teacher'}.`, 'info');
  } catch (err) {
    showNotice(err.message);
  }
  await load();
}

/**
 * Deletes the account after asking.
 * @param {Account} a
 */
async function remove(a) {
  if (!confirm(`Delete the console user “${a.username}”? They are signed out at once.`)) return;
  try {
    await api('DELETE', userPath(a.username));
    showNotice(`${a.username} was deleted.`, 'info');
  } catch (err) {
    showNotice(err.message);
  }
  await load();
}

/**
 * Opens the reset dialog for an account.
 * @param {Account} a
 */
function openReset(a) {
  resetting = a.username;
  $('reset-title').textContent = `Reset password of ${a.username}`;
  /** @type {HTMLInputElement} */ ($('reset-password')).value = '';
  $('reset-ask').hidden = false;
  $('reset-done').hidden = true;
  $('reset-error').hidden = true;
  $('reset-submit').hidden = false;
  $('reset-close').textContent = 'Cancel';
  resetDialog.showModal();
  $('reset-password').focus();
}

/**
 * Resets the password; shows the temporary one.
 * @param {SubmitEvent} event
 */
async function submitReset(event) {
  event.preventDefault();
  const typed = /** @type {HTMLInputElement} */ ($('reset-password')).value;
  const submit = /** @type {HTMLButtonElement} */ ($('reset-submit'));
  submit.disabled = true;
  try {
    const body = typed ? { password: typed } : {};
    const out = await api('POST', userPath(resetting, '/password'), body);
    $('reset-user').textContent = resetting;
    $('reset-result').textContent = out.temporary_password;
    $('reset-ask').hidden = true;
    $('reset-error').hidden = true;
    $('reset-done').hidden = false;
    submit.hidden = true;
    $('reset-close').textContent = 'Done';
    $('reset-close').focus();
    await load();
  } catch (err) {
    $('reset-error').textContent = err.message;
    $('reset-error').hidden = false;
  } finally {
    submit.disabled = false;
  }
}

/**
 * Creates an account from the form.
 * @param {SubmitEvent} event
 */
async function create(event) {
  event.preventDefault();
  const name = /** @type {HTMLInputElement} */ ($('users-name'));
  const password = /** @type {HTMLInputElement} */ ($('users-password'));
  const username = name.value.trim();
  if (!username || !password.value) {
    showNotice('Enter a user name and a password.');
    return;
  }
  try {
    await api('POST', '/api/v1/users', {
      username,
      password: password.value,
      role: /** @type {HTMLSelectElement} */ ($('users-role')).value,
      must_change_password: /** @type {HTMLInputElement} */ ($('users-must-change')).checked,
    });
    showNotice(`${username} was created.`, 'info');
    name.value = '';
    password.value = '';
  } catch (err) {
    showNotice(err.message);
    return;
  }
  await load();
}

/** Hooks up the page and starts loading. */
function main() {
  initPage('Console users');
  $('users-form').addEventListener('submit', create);
  $('reset-form').addEventListener('submit', submitReset);
  $('reset-close').addEventListener('click', () => {
    resetDialog.close();
    hideNotice();
  });
  load();
}

main();
