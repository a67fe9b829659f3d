// The lock page: shows the school's name and the teacher's message from the
// stored lock state (set with textContent: never parsed as HTML), and follows
// its changes. The service worker closes this page on unlock.

import { lockMessage, parseLockState } from './lock.js';
import { LOGO_KEY } from './school-look.js';

function show(raw) {
  const s = parseLockState(raw);
  document.getElementById('lock-school').textContent = s.school || 'Lectern';
  document.getElementById('lock-text').textContent = lockMessage(s);
}

/**
 * Shows the school's logo kept by school-look.js (a PNG data URL), or none.
 * @param {unknown} stored
 */
function showLogo(stored) {
  const img = /** @type {HTMLImageElement} */ (document.getElementById('lock-logo'));
  const url = stored && typeof stored === 'object' ? /** @type {any} */ (stored).dataUrl : null;
  const ok = typeof url === 'string' && url.startsWith('data:image/png;base64,');
  img.hidden = !ok;
  if (ok) img.src = url;
  else img.removeAttribute('src');
}

chrome.storage.local.get(['lockState', LOGO_KEY]).then((got) => {
  show(got.lockState);
  showLogo(got[LOGO_KEY]);
});
chrome.storage.onChanged.addListener((changes, area) => {
  if (area !== 'local') return;
  if (changes.lockState) show(changes.lockState.newValue);
  if (changes[LOGO_KEY]) showLogo(changes[LOGO_KEY].newValue);
});
