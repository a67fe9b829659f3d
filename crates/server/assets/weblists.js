// The "Web lists" dialog: a teacher's allow or block list for the selected
// computers, sent as `set_web_filter`. One pattern per line: `example.org`
// matches that site and its subdomains, `*.example.org` only subdomains,
// `*` anywhere stands for any run of characters in a host name.

/** Most patterns in one list (the server's limit). */
export const MAX_PATTERNS = 5000;

/**
 * Splits a textarea into patterns: one per line, the line whole (a line with
 * a space, `bad pattern!`, is one bad entry, never split in two), blank
 * lines and `#` comments ignored, lower-cased, a pasted `https://` and
 * trailing `/` removed. Bad entries come back as `line N: text`, numbered
 * as the teacher sees the lines.
 * @param {string} text
 * @returns {{patterns: string[], bad: string[]}}
 */
export function parsePatterns(text) {
  /** @type {string[]} */
  const patterns = [];
  /** @type {string[]} */
  const bad = [];
  text.split('\n').forEach((line, i) => {
    const raw = line.replace(/#.*$/, '').trim();
    if (!raw) return;
    const p = raw.toLowerCase().replace(/^[a-z][a-z0-9+.-]*:\/\//, '').replace(/\/$/, '').replace(/\.$/, '');
    if (!p || p.length > 253 || !/^[a-z0-9.*-]+$/.test(p) || p.includes('..')) bad.push(`line ${i + 1}: ${raw}`);
    else if (!patterns.includes(p)) patterns.push(p);
  });
  return { patterns, bad };
}

/**
 * @typedef {object} WebListsElements
 * @property {HTMLDialogElement} dialog `#web-lists`
 * @property {HTMLElement} target `#web-lists-target` (how many computers)
 * @property {HTMLSelectElement} mode `#web-lists-mode`
 * @property {HTMLTextAreaElement} allow `#web-lists-allow`
 * @property {HTMLTextAreaElement} block `#web-lists-block`
 * @property {HTMLElement} error `#web-lists-error`
 * @property {HTMLButtonElement} apply `#web-lists-apply`
 * @property {HTMLButtonElement} cancel `#web-lists-cancel`
 */

export class WebListsDialog {
  /**
   * @param {WebListsElements} els
   * @param {(command: {type: string} & Record<string, unknown>, ids: number[]) => Promise<void>} send
   */
  constructor(els, send) {
    this.els = els;
    this.send = send;
    /** The computers the dialog was opened for. @type {number[]} */
    this.ids = [];
    els.cancel.addEventListener('click', () => els.dialog.close());
    els.mode.addEventListener('change', () => this.#syncMode());
    els.dialog.addEventListener('submit', (event) => {
      event.preventDefault();
      this.#apply();
    });
  }

  /**
   * Opens the dialog for some computers; the lists typed last time stay.
   * @param {number[]} ids
   */
  open(ids) {
    this.ids = ids.slice();
    this.els.target.textContent = `${ids.length} computer${ids.length === 1 ? '' : 's'}`;
    this.#error('');
    this.#syncMode();
    if (!this.els.dialog.open) this.els.dialog.showModal();
    this.els.mode.focus();
  }

  /** Highlights the list the chosen mode uses. */
  #syncMode() {
    const mode = this.els.mode.value;
    this.els.allow.closest('.list-field')?.classList.toggle('in-use', mode === 'allow_list');
    this.els.block.closest('.list-field')?.classList.toggle('in-use', mode === 'block_list');
  }

  /** @param {string} text */
  #error(text) {
    this.els.error.textContent = text;
    this.els.error.hidden = !text;
  }

  /** Checks the form and sends set_web_filter to the computers. */
  async #apply() {
    const mode = this.els.mode.value;
    const allow = parsePatterns(this.els.allow.value);
    const block = parsePatterns(this.els.block.value);
    const bad = [...allow.bad, ...block.bad];
    if (bad.length) {
      this.#error(`Not a site pattern: ${bad.slice(0, 3).join(', ')}${bad.length > 3 ? ` and ${bad.length - 3} more` : ''}. Use names like example.org or *.example.org.`);
      return;
    }
    if (mode === 'allow_list' && allow.patterns.length === 0) {
      this.#error('Add at least one allowed site, or choose another mode.');
      return;
    }
    if (mode === 'block_list' && block.patterns.length === 0) {
      this.#error('Add at least one blocked site, or choose another mode.');
      return;
    }
    if (allow.patterns.length > MAX_PATTERNS || block.patterns.length > MAX_PATTERNS) {
      this.#error(`A list may hold at most ${MAX_PATTERNS} sites.`);
      return;
    }
    this.els.apply.disabled = true;
    try {
      await this.send({
        type: 'set_web_filter',
        mode,
        allow: mode === 'allow_list' ? allow.patterns : [],
        block: mode === 'block_list' ? block.patterns : [],
      }, this.ids);
      this.els.dialog.close();
    } catch (err) {
      this.#error(err.message);
    } finally {
      this.els.apply.disabled = false;
    }
  }
}
