// Login page: posts the credentials to the session endpoint; on success the
// server sets an HttpOnly session cookie and we go to the console.

const form = /** @type {HTMLFormElement} */ (document.getElementById('login-form'));
const username = /** @type {HTMLInputElement} */ (document.getElementById('username'));
const password = /** @type {HTMLInputElement} */ (document.getElementById('password'));
const button = /** @type {HTMLButtonElement} */ (document.getElementById('login-button'));
const errorBox = /** @type {HTMLElement} */ (document.getElementById('login-error'));

/**
 * Shows an error under the form, or hides the error area when `text` is empty.
 * @param {string} text
 */
function showError(text) {
  errorBox.textContent = text;
  errorBox.hidden = !text;
}

/**
 * Maps a failed login response status to the text shown to the teacher.
 * @param {number} status HTTP status code
 * @returns {string}
 */
function errorFor(status) {
  switch (status) {
    case 401:
      return 'Wrong user name or password';
    case 429:
      return 'Too many attempts, wait a minute';
    default:
      return `Sign-in failed (server answered ${status})`;
  }
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
      body: JSON.stringify({ username: username.value.trim(), password: password.value }),
    });
    if (res.ok) {
      location.assign('/');
      return;
    }
    showError(errorFor(res.status));
    password.select();
  } catch {
    showError('Cannot reach the server');
  } finally {
    button.disabled = false;
  }
}

form.addEventListener('submit', submit);
