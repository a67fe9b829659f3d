// Shows a teacher's message (Chromebook mode), passed in the fragment.
// The text is set with textContent: it is never parsed as HTML.

let text = '';
try {
  text = decodeURIComponent(location.hash.slice(1));
} catch {
  text = location.hash.slice(1);
}
document.getElementById('message-text').textContent = text;
document.getElementById('ok').addEventListener('click', () => window.close());
