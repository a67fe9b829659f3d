// The sign-in request page (identity.js redirects web pages here while the
// school requires sign-in and the browser has no known user).

/** Shows the school's name when the extension has connected before. */
async function render() {
  try {
    const { identitySchool } = await chrome.storage.local.get('identitySchool');
    if (typeof identitySchool === 'string' && identitySchool.trim()) {
      document.getElementById('school').textContent = identitySchool.trim().slice(0, 100);
    }
  } catch { /* storage unavailable: keep "Your school" */ }
}

document.getElementById('back').addEventListener('click', () => {
  if (history.length > 1) history.back();
  else location.replace('about:blank');
});
render();
