// The acceptable use page: shows the pending policy from storage (set with
// textContent: never parsed as HTML) and sends the student's acceptance to
// the service worker, which tells the server and closes the pages.

import { AUP_KEY, paragraphs, parseAup } from './aup.js';

/** @type {number | null} */
let shown = null;

/** @param {unknown} raw */
function show(raw) {
  const p = parseAup(raw);
  const button = /** @type {HTMLButtonElement} */ (document.getElementById('aup-accept'));
  button.disabled = !p;
  if (!p) {
    document.getElementById('aup-status').textContent = 'Nothing to accept.';
    return;
  }
  shown = p.version_id;
  document.getElementById('aup-title').textContent = p.title;
  document.getElementById('aup-version').textContent = `Version ${p.version}. Read it, then accept it to use this computer.`;
  const body = document.getElementById('aup-text');
  body.replaceChildren(...paragraphs(p.text).map((t) => {
    const para = document.createElement('p');
    para.textContent = t;
    return para;
  }));
  document.getElementById('aup-status').textContent = '';
}

document.getElementById('aup-accept').addEventListener('click', async () => {
  if (shown === null) return;
  const status = document.getElementById('aup-status');
  const ok = await chrome.runtime.sendMessage({ type: 'aup_accept', version_id: shown }).catch(() => false);
  if (!ok) status.textContent = 'Not connected to your school right now; try again in a moment.';
});

chrome.storage.local.get([AUP_KEY, 'lockState']).then((got) => {
  show(got[AUP_KEY]);
  const school = got.lockState && typeof got.lockState.school === 'string' ? got.lockState.school : '';
  document.getElementById('aup-school').textContent = school;
});
chrome.storage.onChanged.addListener((changes, area) => {
  if (area === 'local' && changes[AUP_KEY] && changes[AUP_KEY].newValue) show(changes[AUP_KEY].newValue);
});
