// The toolbar popup: raise a hand with an optional note, withdraw it, see
// the teacher's answer, and chat. It only asks the background worker, which
// speaks to the server (standalone mode); with a desktop agent (native mode)
// the desktop's own button and Ctrl+Alt+H do this, and the popup says so.

const $ = (id) => /** @type {HTMLElement} */ (document.getElementById(id));

/**
 * Asks the worker; its answer is the student's request state.
 * @param {Record<string, unknown>} msg
 */
async function ask(msg) {
  return chrome.runtime.sendMessage({ ...msg, type: 'student_request' });
}

/**
 * Shows the state the worker keeps.
 * @param {{available: boolean, why?: string, raised: boolean, answer: string | null, status: string | null, lines: {mine: boolean, author: string, text: string}[]}} s
 */
function show(s) {
  $('popup-off').hidden = s.available;
  $('popup-off').textContent = s.why || '';
  $('hand').hidden = !s.available;
  $('chat').hidden = !s.available;
  $('hand-form').hidden = s.raised;
  $('hand-raised').hidden = !s.raised;
  $('hand-answer').hidden = !s.answer;
  $('hand-answer').textContent = s.answer ? `Your teacher answered: ${s.answer}` : '';
  $('popup-status').hidden = !s.status;
  $('popup-status').textContent = s.status || '';
  $('chat-lines').replaceChildren(...s.lines.map((l) => {
    const li = document.createElement('li');
    li.className = l.mine ? 'mine' : 'theirs';
    const who = document.createElement('strong');
    who.textContent = l.mine ? 'You' : l.author;
    const text = document.createElement('p');
    text.textContent = l.text;
    li.append(who, text);
    return li;
  }));
  const lines = $('chat-lines');
  lines.scrollTop = lines.scrollHeight;
}

/** @param {Record<string, unknown>} msg */
async function act(msg) {
  show(await ask(msg));
}

$('hand-form').addEventListener('submit', (e) => {
  e.preventDefault();
  const note = /** @type {HTMLTextAreaElement} */ ($('hand-note'));
  act({ op: 'raise_hand', note: note.value.trim() });
  note.value = '';
});
$('hand-withdraw').addEventListener('click', () => act({ op: 'lower_hand' }));
$('chat-form').addEventListener('submit', (e) => {
  e.preventDefault();
  const text = /** @type {HTMLTextAreaElement} */ ($('chat-text'));
  if (!text.value.trim()) return;
  act({ op: 'chat_send', text: text.value.trim() });
  text.value = '';
});
// The worker tells open popups when the server answers.
chrome.runtime.onMessage.addListener((msg) => {
  if (msg && msg.type === 'student_state') show(msg.state);
});
act({ op: 'get' });

/** Shows who signed in with the school's sign-in (signin.html), if anyone. */
async function showStudent() {
  const s = await chrome.runtime.sendMessage({ type: 'signin_state' });
  $('student').hidden = !s?.student;
  $('student-name').textContent = s?.student?.display_name || '';
}
$('student-sign-out').addEventListener('click', async () => {
  const answer = await chrome.runtime.sendMessage({ type: 'student_sign_out' });
  if (answer?.outcome !== 'signed_out') {
    $('popup-status').hidden = false;
    $('popup-status').textContent = 'Could not sign out: this computer cannot reach the school. Try again in a moment.';
  }
  await showStudent();
});
showStudent();
