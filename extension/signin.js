// The sign-in page (identity.js redirects web pages here while the school
// requires sign-in and the browser has no known user). When the school
// offers its own student sign-in (the policy's student_sign_in), the page
// asks for the student's user name and picture password (or text
// password) and hands them to the worker, which asks the server; else it
// explains how to sign in to the browser with a school account.

import { PICTURES, PICTURE_MAX, answerSentence } from './signin-core.js';

const $ = (id) => /** @type {HTMLElement} */ (document.getElementById(id));

/** Pictures chosen so far, by index. @type {number[]} */
let chosen = [];
let usePassword = false;

/** Shows the school's name when the extension has connected before. */
async function showSchool() {
  try {
    const { identitySchool } = await chrome.storage.local.get('identitySchool');
    if (typeof identitySchool === 'string' && identitySchool.trim()) {
      for (const el of document.querySelectorAll('.school-name')) el.textContent = identitySchool.trim().slice(0, 100);
    }
  } catch { /* storage unavailable: keep "Your school" */ }
}

/** Draws the grid (once) and what has been chosen. */
function drawPictures() {
  const grid = $('picture-grid');
  if (!grid.childElementCount) {
    PICTURES.forEach(([picture, name], i) => {
      const b = document.createElement('button');
      b.type = 'button';
      b.className = 'picture';
      b.textContent = picture;
      b.setAttribute('aria-label', name);
      b.dataset.index = String(i);
      b.addEventListener('click', () => {
        if (chosen.length >= PICTURE_MAX) return;
        chosen.push(i);
        drawPictures();
      });
      grid.append(b);
    });
  }
  const said = chosen.map((i) => PICTURES[i][1]);
  $('picture-chosen').textContent = chosen.length
    ? `Chosen: ${chosen.map((i) => PICTURES[i][0]).join(' ')} (${said.join(', ')})`
    : 'No pictures chosen yet.';
  for (const b of grid.querySelectorAll('button')) {
    /** @type {HTMLButtonElement} */ (b).disabled = chosen.length >= PICTURE_MAX;
  }
}

/** @param {string} text */
function showError(text) {
  $('student-error').textContent = text;
  $('student-error').hidden = !text;
}

/** Sends what the student entered; on success, browsing opens. */
async function submit(event) {
  event.preventDefault();
  const name = /** @type {HTMLInputElement} */ ($('student-name')).value;
  const password = /** @type {HTMLInputElement} */ ($('student-password')).value;
  const button = /** @type {HTMLButtonElement} */ ($('student-submit'));
  button.disabled = true;
  showError('');
  try {
    const answer = await chrome.runtime.sendMessage(usePassword
      ? { type: 'student_sign_in', name, password }
      : { type: 'student_sign_in', name, picture: chosen });
    if (answer?.outcome === 'signed_in') {
      $('student-form').hidden = true;
      $('student-done').hidden = false;
      $('student-done').textContent = `Welcome, ${answer.display_name}! You can browse now. Sign out from the Lectern button when you finish.`;
      return;
    }
    showError(answer?.error || answerSentence(answer || { outcome: 'refused', reason: 'offline' }));
    chosen = [];
    drawPictures();
  } finally {
    button.disabled = false;
  }
}

/**
 * The other schools of a Chromebook shared by schools, where the school in
 * use lets students switch: a button each; a choice reconnects the
 * Chromebook there and the page shows that school's sign-in.
 * @param {string[]} schools
 */
function showOtherSchools(schools) {
  const list = $('other-schools-list');
  list.replaceChildren(...schools.map((name) => {
    const b = document.createElement('button');
    b.type = 'button';
    b.textContent = name;
    b.addEventListener('click', async () => {
      for (const other of list.querySelectorAll('button')) /** @type {HTMLButtonElement} */ (other).disabled = true;
      $('switch-status').textContent = `Switching to ${name}…`;
      const answer = await chrome.runtime.sendMessage({ type: 'switch_school', school: name }).catch(() => null);
      if (!answer?.ok) {
        $('switch-status').textContent = answer?.error || 'This Chromebook could not switch school. Ask your teacher.';
        for (const other of list.querySelectorAll('button')) /** @type {HTMLButtonElement} */ (other).disabled = false;
        return;
      }
      // The new school's name and sign-in, once it has answered.
      setTimeout(() => location.reload(), 1500);
    });
    return b;
  }));
  $('other-schools').hidden = schools.length === 0;
}

/** Shows the school's sign-in when it is offered. */
async function render() {
  await showSchool();
  let s = null;
  try {
    s = await chrome.runtime.sendMessage({ type: 'signin_state' });
  } catch { /* the worker is starting */ }
  showOtherSchools(Array.isArray(s?.schools) ? s.schools.filter((n) => typeof n === 'string') : []);
  if (!s?.offered) return;
  $('headline').textContent = 'Sign in to start';
  $('account-steps').hidden = true;
  $('student-form').hidden = false;
  drawPictures();
  $('student-name').focus();
}

$('student-form').addEventListener('submit', submit);
$('picture-clear').addEventListener('click', () => {
  chosen = [];
  drawPictures();
});
$('use-password').addEventListener('click', () => {
  usePassword = !usePassword;
  $('picture-set').hidden = usePassword;
  $('password-set').hidden = !usePassword;
  $('use-password').textContent = usePassword ? 'I have pictures instead of a password' : 'I have a password instead of pictures';
  showError('');
});
$('back').addEventListener('click', () => {
  if (history.length > 1) history.back();
  else location.replace('about:blank');
});
render();
