// Student sign-in page: the students whose passwords this user may set
// (their classes; everyone for administrators), what is set for each, and
// a dialog to set a picture password (3 or 4 of the 16 pictures, in order)
// or a text password, or to reset it. Pictures come from the server
// (GET /sign-in/pictures), so the console and the devices show one grid.

import { api } from './api.js';
import { $, el, formatTime, hideNotice, initPage, showNotice } from './page.js';

/**
 * @typedef {object} Student
 * @property {number} id
 * @property {string} display_name
 * @property {string[]} names
 * @property {string | null} kind
 * @property {string | null} set_by
 * @property {number | null} set_at
 */

/** @type {Student[]} */
let students = [];
/** @type {{picture: string, name: string}[]} */
let pictures = [];
/** The student the dialog is for. @type {Student | null} */
let editing = null;
/** Pictures chosen in the dialog, by index. @type {number[]} */
let chosen = [];

const dialog = /** @type {HTMLDialogElement} */ ($('secret-dialog'));
const search = /** @type {HTMLInputElement} */ ($('students-search'));

/** @param {unknown} e */
const message = (e) => (e instanceof Error ? e.message : String(e));

/**
 * What is set, in words.
 * @param {Student} s
 */
function setWords(s) {
  if (!s.kind) return 'None';
  const what = s.kind === 'picture' ? 'Pictures' : 'Text password';
  return `${what}, set by ${s.set_by} ${formatTime(s.set_at)}`;
}

/** Draws the table, filtered by the search box. */
function draw() {
  const q = search.value.trim().toLowerCase();
  const shown = students.filter((s) => !q || s.display_name.toLowerCase().includes(q)
    || s.names.some((n) => n.toLowerCase().includes(q)));
  $('students-summary').textContent = `${shown.length} of ${students.length} students`;
  $('students-table').querySelector('tbody')?.replaceChildren(...shown.map((s) => {
    const tr = el('tr');
    const set = el('button', '', s.kind ? 'Change…' : 'Set…');
    set.addEventListener('click', () => open(s));
    const actions = el('td', 'row-actions');
    actions.append(set);
    if (s.kind) {
      const reset = el('button', 'danger', 'Reset');
      reset.addEventListener('click', () => resetFor(s));
      actions.append(reset);
    }
    tr.append(el('td', '', s.display_name), el('td', 'student-names', s.names.join(', ')), el('td', '', setWords(s)), actions);
    return tr;
  }) ?? []);
}

async function load() {
  try {
    students = (await api('GET', '/api/v1/students')).students;
    draw();
  } catch (e) {
    showNotice(message(e));
  }
}

/** Draws the dialog's grid (once) and the pictures chosen. */
function drawChosen() {
  const grid = $('secret-grid');
  if (!grid.childElementCount) {
    pictures.forEach((p, i) => {
      const b = el('button', '', p.picture);
      b.setAttribute('type', 'button');
      b.setAttribute('aria-label', p.name);
      b.addEventListener('click', () => {
        if (chosen.length < 4) chosen.push(i);
        drawChosen();
      });
      grid.append(b);
    });
  }
  $('secret-chosen').textContent = chosen.length
    ? `Chosen: ${chosen.map((i) => pictures[i].picture).join(' ')} (${chosen.map((i) => pictures[i].name).join(', ')})`
    : 'Choose 3 or 4 pictures, in order.';
  for (const b of grid.querySelectorAll('button')) /** @type {HTMLButtonElement} */ (b).disabled = chosen.length >= 4;
}

/** @returns {'picture' | 'text'} */
function kind() {
  const checked = /** @type {HTMLInputElement | null} */ (dialog.querySelector('input[name="kind"]:checked'));
  return checked?.value === 'text' ? 'text' : 'picture';
}

function showKind() {
  $('secret-pictures').hidden = kind() !== 'picture';
  $('secret-text').hidden = kind() !== 'text';
}

/** @param {string} text */
function dialogError(text) {
  $('secret-error').textContent = text;
  $('secret-error').hidden = !text;
}

/**
 * Opens the dialog for a student.
 * @param {Student} s
 */
function open(s) {
  editing = s;
  chosen = [];
  $('secret-who').textContent = `For ${s.display_name} (signs in as ${s.names.join(' or ')})`;
  /** @type {HTMLInputElement} */ ($('secret-password')).value = '';
  dialogError('');
  drawChosen();
  showKind();
  dialog.showModal();
}

async function save(event) {
  event.preventDefault();
  if (!editing) return;
  const body = kind() === 'picture'
    ? { kind: 'picture', picture: chosen }
    : { kind: 'text', password: /** @type {HTMLInputElement} */ ($('secret-password')).value };
  try {
    await api('PUT', `/api/v1/people/${editing.id}/sign-in`, body);
    dialog.close();
    showNotice(`${editing.display_name}'s password is set.`, 'info');
    await load();
  } catch (e) {
    dialogError(message(e));
  }
}

/**
 * Resets a student's password.
 * @param {Student} s
 */
async function resetFor(s) {
  if (!confirm(`Reset ${s.display_name}'s password? They cannot sign in until you set a new one.`)) return;
  try {
    await api('DELETE', `/api/v1/people/${s.id}/sign-in`);
    hideNotice();
    await load();
  } catch (e) {
    showNotice(message(e));
  }
}

$('secret-form').addEventListener('submit', save);
$('secret-cancel').addEventListener('click', () => dialog.close());
$('secret-clear').addEventListener('click', () => {
  chosen = [];
  drawChosen();
});
for (const r of dialog.querySelectorAll('input[name="kind"]')) r.addEventListener('change', showKind);
search.addEventListener('input', draw);

initPage('Student sign-in');
api('GET', '/api/v1/sign-in/pictures').then((p) => {
  pictures = p.pictures;
}).catch((e) => showNotice(message(e))).finally(load);
