// The block page: says why a page was blocked and who set the restriction.
// The redirect rule passes `#reason=…&by=…&url=…` (see rules.js).

import { parseBlockHash } from './rules.js';

/** Headline and explanation for each reason. */
const TEXT = {
  internet: ['The internet is blocked by your teacher', 'Web access is switched off on this computer for now.'],
  not_allowed: ['This site is not on the allowed list', 'Only the websites on the allowed list can be opened right now.'],
  blocked: ['This site is blocked', 'This website is on the blocked list.'],
};

/** Renders the page from the current fragment. */
function render() {
  const { reason, by, url } = parseBlockHash(location.hash);
  let [headline, explain] = TEXT[reason] || ['This page is blocked', 'Lectern blocked this page.'];
  // The agent says "your teacher" or "your school".
  if (reason === 'internet' && /school|policy/i.test(by)) headline = 'The internet is blocked by your school';
  document.getElementById('headline').textContent = headline;
  document.getElementById('explain').textContent = explain;
  document.getElementById('set-by').textContent = by || 'your school';
  document.getElementById('blocked-url').textContent = url || 'not known (the browser did not pass it on)';
  document.body.dataset.reason = reason || 'unknown';
  document.title = `${headline} · Lectern`;
}

document.getElementById('back').addEventListener('click', () => {
  if (history.length > 1) history.back();
  else location.replace('about:blank');
});
window.addEventListener('hashchange', render);
render();
