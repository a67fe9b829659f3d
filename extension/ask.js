// Asks the student whether a teacher may see the screen live (ViewRequest).
// The fragment carries the request id and the teacher's name; the answer goes
// to the service worker, which sends the ViewAnswer. Closing the window
// without answering leaves the request unanswered: the server's default applies.

const params = new URLSearchParams(location.hash.slice(1));
const requestId = Number(params.get('id'));
const teacher = params.get('teacher') || 'Your teacher';
document.getElementById('ask-text').textContent = `${teacher} would like to see your screen.`;

async function answer(allowed) {
  await chrome.runtime.sendMessage({ type: 'view_answer', request_id: requestId, allowed });
  window.close();
}
document.getElementById('allow').addEventListener('click', () => answer(true));
document.getElementById('deny').addEventListener('click', () => answer(false));
