// The school's look on student screens: the name the lock screen shows and
// the logo above it. The server checks and re-encodes the logo and sends
// both to the computers.

import { ApiError, api, csrfToken, errorSentence } from './api.js';
import { $, hideNotice, initPage, showNotice } from './page.js';

/** Largest logo the server takes, in bytes. */
const MAX_LOGO_BYTES = 256 * 1024;

const nameInput = /** @type {HTMLInputElement} */ ($('look-name'));
const fileInput = /** @type {HTMLInputElement} */ ($('look-logo-file'));
const image = /** @type {HTMLImageElement} */ ($('look-logo-image'));
const removeButton = /** @type {HTMLButtonElement} */ ($('look-logo-remove'));

/**
 * @typedef {object} Look
 * @property {string} name
 * @property {{sha256: string, width: number, height: number, bytes: number} | null} logo
 */

/** Shows the look as the server has it. */
async function load() {
  /** @type {Look} */
  const look = await api('GET', '/api/v1/school/look');
  nameInput.value = look.name;
  const logo = look.logo;
  image.hidden = !logo;
  $('look-logo-none').hidden = Boolean(logo);
  removeButton.disabled = !logo;
  if (logo) {
    // The hash in the address: a new logo is never an old cached picture.
    image.src = `/api/v1/school/look/logo?v=${logo.sha256}`;
    image.width = Math.min(logo.width, 240);
    $('look-logo-info').textContent = `${logo.width} × ${logo.height} pixels, ${Math.ceil(logo.bytes / 1024)} KiB`;
  } else {
    image.removeAttribute('src');
    $('look-logo-info').textContent = '';
  }
}

/**
 * Runs `f`, showing what went wrong (or `done`) in the notice line.
 * @param {() => Promise<void>} f
 * @param {string} done
 */
async function act(f, done) {
  hideNotice();
  try {
    await f();
    showNotice(done, 'info');
  } catch (e) {
    showNotice(e instanceof Error ? e.message : String(e));
  }
  await load().catch(() => {});
}

/**
 * Uploads an image file as the logo.
 * @param {File} file
 */
async function upload(file) {
  if (file.size > MAX_LOGO_BYTES) throw new Error('The logo must be at most 256 KiB.');
  const res = await fetch('/api/v1/school/look/logo', {
    method: 'PUT',
    headers: { 'Content-Type': file.type || 'application/octet-stream', 'X-CSRF-Token': csrfToken() },
    credentials: 'same-origin',
    body: file,
  });
  if (res.ok) return;
  const text = await res.text();
  let body = null;
  try {
    body = JSON.parse(text);
  } catch { /* not JSON */ }
  throw new ApiError(res.status, errorSentence(res.status, body, text, 0));
}

$('look-name-form').addEventListener('submit', (e) => {
  e.preventDefault();
  act(() => api('PUT', '/api/v1/school/look', { name: nameInput.value }), 'Name saved.');
});

$('look-logo-form').addEventListener('submit', (e) => {
  e.preventDefault();
  const file = fileInput.files && fileInput.files[0];
  if (!file) {
    showNotice('Choose an image file first.');
    return;
  }
  act(() => upload(file), 'Logo uploaded.').then(() => {
    fileInput.value = '';
  });
});

removeButton.addEventListener('click', () => {
  act(() => api('DELETE', '/api/v1/school/look/logo'), 'Logo removed.');
});

initPage('School on student screens');
load().catch((e) => showNotice(e instanceof Error ? e.message : String(e)));
