// Lectern content script: text a student types into a page (a search box, a
// chat, a comment) is passed to the agent for keyword scanning only; it is
// never logged as activity. Passwords, card numbers and hidden fields are
// never read.
(() => {
  const MAX = 1000;
  const SKIP_TYPES = new Set(['password', 'hidden', 'file', 'checkbox', 'radio', 'submit', 'button', 'number', 'date', 'color', 'range']);

  /** @param {Element} el */
  function readable(el) {
    if (el instanceof HTMLTextAreaElement) return true;
    if (!(el instanceof HTMLInputElement)) return false;
    if (SKIP_TYPES.has(el.type)) return false;
    const ac = (el.getAttribute('autocomplete') || '').toLowerCase();
    return !ac.includes('cc-') && !ac.includes('password');
  }

  /** @param {string} text */
  function send(text) {
    const t = text.trim().slice(0, MAX);
    if (!t) return;
    try {
      chrome.runtime.sendMessage({ type: 'typed', text: t });
    } catch {
      // The extension is reloading: nothing to do.
    }
  }

  // `change` fires when a field loses focus or Enter commits it: one message
  // per finished entry, not per keystroke.
  document.addEventListener('change', (e) => {
    if (e.target instanceof Element && readable(e.target)) send(/** @type {HTMLInputElement} */ (e.target).value);
  }, true);
  // Editable regions (chat boxes) have no change event: read them on blur.
  document.addEventListener('focusout', (e) => {
    const el = e.target;
    if (el instanceof HTMLElement && el.isContentEditable) send(el.innerText || '');
  }, true);
})();
