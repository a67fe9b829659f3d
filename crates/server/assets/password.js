// "Change your password": any signed-in user, and the only page a user whose
// password an administrator reset can use until they choose a new one.

import { errorSentence } from './api.js';

const form = /** @type {HTMLFormElement} */ (document.getElementById('password-form'));
const current = /** @type {HTMLInputElement} */ (document.getElementById('current-password'));
const fresh = /** @type {HTMLInputElement} */ (document.getElementById('new-password'));
const repeat = /** @type {HTMLInputElement} */ (document.getElementById('repeat-password'));
const button = /** @type {HTMLButtonElement} */ (document.getElementById('password-button'));
const errorBox = /** @type {HTMLElement} */ (document.getElementById('password-error'));

/** The session's CSRF token and user, from `GET /session`. */
let session = { csrf: '', username: '', mustChange: false };

/** Fewest characters the server accepts (`users::MIN_PASSWORD`). */
const MIN_LENGTH = 10;

/**
 * Shows an error under the form, or hides it when `text` is empty.
 * @param {string} text
 */
function showError(text) {
  errorBox.textContent = text;
  errorBox.hidden = !text;
}

/**
 * Sends a request with the session's CSRF token.
 * @param {string} method
 * @param {string} path
 * @param {unknown} [body]
 */
function send(method, path, body) {
  /** @type {Record<string, string>} */
  const headers = { Accept: 'application/json', 'X-CSRF-Token': session.csrf };
  if (body !== undefined) headers['Content-Type'] = 'application/json';
  return fetch(path, {
    method,
    credentials: 'same-origin',
    cache: 'no-store',
    headers,
    body: body === undefined ? undefined : JSON.stringify(body),
  });
}

/** Who is signed in; the sign-in page when nobody is. */
async function load() {
  const res = await fetch('/api/v1/session', { credentials: 'same-origin', cache: 'no-store' });
  if (!res.ok) {
    location.assign('/login');
    return;
  }
  const body = await res.json();
  session = { csrf: body.csrf_token, username: body.user.username, mustChange: !!body.must_change_password };
  /** @type {HTMLElement} */ (document.getElementById('password-user')).textContent = session.username;
  if (body.school) document.title = `Change your password · ${body.school} · Lectern`;
  if (session.mustChange) {
    /** @type {HTMLElement} */ (document.getElementById('password-title')).textContent = 'Choose a new password';
    /** @type {HTMLElement} */ (document.getElementById('password-intro')).textContent =
      'An administrator reset your password. Choose a new one to continue.';
    /** @type {HTMLElement} */ (document.getElementById('current-label')).textContent = 'Temporary password';
    /** @type {HTMLElement} */ (document.getElementById('password-back')).hidden = true;
  }
}

/**
 * What is wrong with the form, or '' (the server checks again).
 * @returns {string}
 */
function problem() {
  if (!current.value) return session.mustChange ? 'Enter the temporary password.' : 'Enter your current password.';
  if ([...fresh.value].length < MIN_LENGTH) return `The new password needs at least ${MIN_LENGTH} characters.`;
  if (fresh.value.trim().toLowerCase() === session.username.toLowerCase()) return "A password can't be your user name.";
  if (fresh.value !== repeat.value) return "The two new passwords don't match.";
  return '';
}

/**
 * Changes the password; goes to the console on success.
 * @param {SubmitEvent} event
 */
async function submit(event) {
  event.preventDefault();
  const wrong = problem();
  if (wrong) {
    showError(wrong);
    return;
  }
  button.disabled = true;
  showError('');
  try {
    const res = await send('PUT', '/api/v1/me/password', {
      current_password: current.value,
      new_password: fresh.value,
    });
    if (res.ok) {
      location.assign('/');
      return;
    }
    if (res.status === 401) {
      location.assign('/login');
      return;
    }
    const text = await res.text();
    let body = null;
    try {
      body = JSON.parse(text);
    } catch { /* not JSON */ }
    const retry = Number(res.headers.get('Retry-After')) || 0;
    showError(errorSentence(res.status, body, text, retry));
    if (body?.reason === 'wrong_password') current.select();
  } catch {
    showError(errorSentence(0, null, '', 0));
  } finally {
    button.disabled = false;
  }
}

/** Signs out and goes to the sign-in page. */
async function signOut() {
  await send('DELETE', '/api/v1/session').catch(() => {});
  location.assign('/login');
}

form.addEventListener('submit', submit);
/** @type {HTMLElement} */ (document.getElementById('password-logout')).addEventListener('click', signOut);
load().catch(() => showError(errorSentence(0, null, '', 0)));
