// The registration page: Chromebook mode with a server but neither an
// enrollment token nor a school code in the policy. The code typed here is
// checked for its form, kept in chrome.storage.local (`typedSchoolCode`) for
// the service worker to register with; a refusal comes back as
// `registerError`, success as the stored credential.

import { normalizeSchoolCode } from './protocol.js';

const input = /** @type {HTMLInputElement} */ (document.getElementById('code'));
const error = /** @type {HTMLElement} */ (document.getElementById('register-error'));
const status = /** @type {HTMLElement} */ (document.getElementById('register-status'));
const button = /** @type {HTMLButtonElement} */ (document.getElementById('register'));

/** @param {string} text */
function showError(text) {
  error.textContent = text;
  error.hidden = !text;
  input.setAttribute('aria-invalid', text ? 'true' : 'false');
}

/** Shows what the service worker last stored. */
async function render() {
  const got = await chrome.storage.local.get(['registerError', 'typedSchoolCode', 'cbCredential', 'identitySchool']);
  if (got.cbCredential) {
    const school = typeof got.identitySchool === 'string' && got.identitySchool ? got.identitySchool : 'your school';
    status.textContent = `This device is registered with ${school}. You can close this tab.`;
    showError('');
    button.hidden = true;
    input.disabled = true;
    return;
  }
  showError(typeof got.registerError === 'string' ? got.registerError : '');
  status.textContent = got.typedSchoolCode && !got.registerError ? 'Registering…' : '';
  button.disabled = Boolean(got.typedSchoolCode && !got.registerError);
}

document.getElementById('register-form').addEventListener('submit', async (e) => {
  e.preventDefault();
  const code = normalizeSchoolCode(input.value);
  if (!code.ok) {
    showError(code.error);
    input.focus();
    return;
  }
  showError('');
  status.textContent = 'Registering…';
  button.disabled = true;
  await chrome.storage.local.remove('registerError');
  await chrome.storage.local.set({ typedSchoolCode: code.code });
});

chrome.storage.onChanged.addListener((changes, area) => {
  if (area === 'local' && (changes.registerError || changes.cbCredential || changes.typedSchoolCode || changes.identitySchool)) render();
});
render();
input.focus();
