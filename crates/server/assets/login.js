// Login page: posts the credentials to the session endpoint; on success the
// server sets an HttpOnly session cookie and we go to the console.

import { errorSentence } from './api.js';

const form = /** @type {HTMLFormElement} */ (document.getElementById('login-form'));
const username = /** @type {HTMLInputElement} */ (document.getElementById('username'));
const password = /** @type {HTMLInputElement} */ (document.getElementById('password'));
const button = /** @type {HTMLButtonElement} */ (document.getElementById('login-button'));
const errorBox = /** @type {HTMLElement} */ (document.getElementById('login-error'));
// Only on a server that hosts several schools.
const school = /** @type {HTMLSelectElement | null} */ (document.getElementById('school'));

/**
 * Shows an error under the form, or hides the error area when `text` is empty.
 * @param {string} text
 */
function showError(text) {
  errorBox.textContent = text;
  errorBox.hidden = !text;
}

/**
 * The text shown for a failed sign-in.
 * @param {Response} res
 * @returns {Promise<string>}
 */
async function errorFor(res) {
  if (res.status === 401) return 'Wrong user name or password';
  if (res.status === 429) {
    const secs = Math.ceil(Number(res.headers.get('Retry-After')) || 0);
    return secs > 0
      ? `Too many sign-in attempts. Try again in ${secs} second${secs === 1 ? '' : 's'}.`
      : 'Too many sign-in attempts. Wait a minute, then try again.';
  }
  const text = await res.text().catch(() => '');
  let body = null;
  try {
    body = JSON.parse(text);
  } catch { /* not JSON */ }
  return errorSentence(res.status, body, text, 0);
}

/**
 * Sends the credentials; redirects to the console on success.
 * @param {SubmitEvent} event
 */
async function submit(event) {
  event.preventDefault();
  if (!username.value.trim() || !password.value) {
    showError('Enter your user name and password');
    return;
  }
  button.disabled = true;
  showError('');
  try {
    const res = await fetch('/api/v1/session', {
      method: 'POST',
      credentials: 'same-origin',
      headers: { 'Content-Type': 'application/json', Accept: 'application/json' },
      body: JSON.stringify({
        username: username.value.trim(),
        password: password.value,
        ...(school ? { school: Number(school.value) } : {}),
      }),
    });
    if (res.ok) {
      const body = await res.json().catch(() => ({}));
      // A reset password: choosing a new one comes before anything else.
      location.assign(body.must_change_password ? '/password' : '/');
      return;
    }
    showError(await errorFor(res));
    password.select();
  } catch {
    showError(errorSentence(0, null, '', 0));
  } finally {
    button.disabled = false;
  }
}

form.addEventListener('submit', submit);

// The console closed its stream because the account changed (see stream.js).
if (new URLSearchParams(location.search).has('signed-out')) {
  const notice = /** @type {HTMLElement} */ (document.getElementById('login-notice'));
  notice.textContent = 'You were signed out: your account was disabled, removed or given a new password. Sign in again if you can.';
  notice.hidden = false;
}
