// The lock page: shows the school's name and the teacher's message from the
// stored lock state (set with textContent: never parsed as HTML), and follows
// its changes. The service worker closes this page on unlock.

import { lockMessage, parseLockState } from './lock.js';

function show(raw) {
  const s = parseLockState(raw);
  document.getElementById('lock-school').textContent = s.school || 'Lectern';
  document.getElementById('lock-text').textContent = lockMessage(s);
}

chrome.storage.local.get('lockState').then(({ lockState }) => show(lockState));
chrome.storage.onChanged.addListener((changes, area) => {
  if (area === 'local' && changes.lockState) show(changes.lockState.newValue);
});
