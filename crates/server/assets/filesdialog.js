// The classroom's "Send file…" and "Collect…" (issue 13.7): send a file to
// the selected computers or collect a file or folder back from them, from
// the grid, with each computer's progress and the zip of what came back.
// Builds its own toolbar buttons and dialog, shown to holders of
// command.files only; the Files page keeps the full history.

import { api } from './api.js';
import { deviceNames, statusText, uploadFile } from './filepicks.js';
import { el, h } from './page.js';

/** How often progress is fetched while something is on its way. */
const POLL_MS = 1_500;

/** @param {{status: string}[]} rows */
function busy(rows) {
  return rows.some((r) => r.status === 'pending' || r.status === 'sending');
}

/** @param {number} n */
function computers(n) {
  return `${n} selected computer${n === 1 ? '' : 's'}`;
}

export class FilesDialog {
  /** @param {import('./grid.js').Grid} grid */
  constructor(grid) {
    this.grid = grid;
    /** @type {'send' | 'collect'} */
    this.mode = 'send';
    /** @type {ReturnType<typeof setTimeout> | undefined} */
    this.timer = undefined;
    this.#buildButtons();
    this.dialog = this.#buildDialog();
    document.body.append(this.dialog);
  }

  #buildButtons() {
    const toolbar = document.querySelector('.toolbar');
    const send = h('button', { id: 'files-send-button', type: 'button', 'data-right': 'command.files', 'aria-haspopup': 'dialog' }, ['Send file…']);
    const collect = h('button', { id: 'files-collect-button', type: 'button', 'data-right': 'command.files', 'aria-haspopup': 'dialog' }, ['Collect…']);
    send.addEventListener('click', () => this.open('send'));
    collect.addEventListener('click', () => this.open('collect'));
    toolbar?.append(h('div', { class: 'group', 'data-right-group': '' }, [send, collect]));
  }

  /** @returns {HTMLDialogElement} */
  #buildDialog() {
    const sendForm = h('form', { id: 'fd-send-form', novalidate: '' }, [
      h('div', { class: 'fields' }, [
        h('label', { for: 'fd-file' }, ['File']), h('input', { id: 'fd-file', type: 'file' }),
        h('label', { for: 'fd-title' }, ['Folder name (optional)']),
        h('input', { id: 'fd-title', type: 'text', maxlength: '120', autocomplete: 'off' }),
      ]),
      h('p', { id: 'fd-send-hint', class: 'hint' }, ['It arrives in Lectern/Received/<folder> in each student\'s home folder.']),
      h('div', { class: 'actions' }, [h('button', { id: 'fd-send', type: 'submit', class: 'primary' }, ['Send'])]),
    ]);
    const collectForm = h('form', { id: 'fd-collect-form', novalidate: '' }, [
      h('div', { class: 'fields' }, [
        h('label', { for: 'fd-path' }, ['File or folder in Lectern/']),
        h('input', { id: 'fd-path', type: 'text', placeholder: 'Hand-in/Essay.docx', autocomplete: 'off' }),
      ]),
      h('p', { class: 'hint' }, ['Each computer sends back what it has there; you get one zip with a folder per computer.']),
      h('div', { class: 'actions' }, [h('button', { id: 'fd-collect', type: 'submit', class: 'primary' }, ['Collect'])]),
    ]);
    const dialog = /** @type {HTMLDialogElement} */ (h('dialog', { id: 'files-dialog', class: 'modal files-dialog', 'aria-labelledby': 'fd-title-heading' }, [
      h('div', { class: 'modal-head' }, [
        h('h2', { id: 'fd-title-heading' }, ['Send a file']),
        h('button', { id: 'fd-close', type: 'button' }, ['Close']),
      ]),
      h('p', { id: 'fd-target', class: 'hint' }),
      sendForm,
      collectForm,
      h('p', { id: 'fd-error', class: 'form-error', role: 'alert', hidden: '' }),
      h('section', { id: 'fd-progress', 'aria-labelledby': 'fd-progress-heading', hidden: '' }, [
        h('h3', { id: 'fd-progress-heading' }, ['Progress']),
        h('ul', { id: 'fd-results', class: 'plain-list fd-results', 'aria-live': 'polite' }),
        h('p', {}, [h('a', { id: 'fd-zip', hidden: '' }, ['Download zip'])]),
      ]),
    ]));
    sendForm.addEventListener('submit', (ev) => { ev.preventDefault(); void this.#send(); });
    collectForm.addEventListener('submit', (ev) => { ev.preventDefault(); void this.#collect(); });
    dialog.querySelector('#fd-close')?.addEventListener('click', () => dialog.close());
    dialog.addEventListener('close', () => clearTimeout(this.timer));
    return dialog;
  }

  /** @param {string} id */
  #el(id) {
    return /** @type {HTMLElement} */ (this.dialog.querySelector(`#${id}`));
  }

  /** @param {string} text */
  #error(text) {
    const e = this.#el('fd-error');
    e.textContent = text;
    e.hidden = !text;
  }

  /**
   * Opens the dialog for the selected computers.
   * @param {'send' | 'collect'} mode
   */
  open(mode) {
    clearTimeout(this.timer);
    this.mode = mode;
    this.ids = this.grid.selectedIds();
    const n = this.ids.length;
    this.#el('fd-title-heading').textContent = mode === 'send' ? 'Send a file' : 'Collect work';
    this.#el('fd-send-form').hidden = mode !== 'send';
    this.#el('fd-collect-form').hidden = mode !== 'collect';
    this.#el('fd-target').textContent = n
      ? `${mode === 'send' ? 'To' : 'From'} ${computers(n)}.`
      : 'Select computers first.';
    /** @type {HTMLButtonElement} */ (this.#el('fd-send')).disabled = n === 0;
    /** @type {HTMLButtonElement} */ (this.#el('fd-collect')).disabled = n === 0;
    this.#error('');
    this.#el('fd-progress').hidden = true;
    this.dialog.showModal();
    if (mode === 'send') void this.#showLimit();
  }

  async #showLimit() {
    try {
      const l = await api('GET', '/api/v1/files/limits');
      this.#el('fd-send-hint').textContent = `It arrives in Lectern/Received/<folder> in each student's home folder. At most ${l.max_upload_mib} MiB.`;
    } catch { /* the hint stays without the number */ }
  }

  async #send() {
    const file = /** @type {HTMLInputElement} */ (this.#el('fd-file')).files?.[0];
    if (!file) {
      this.#error('Choose the file to send.');
      this.#el('fd-file').focus();
      return;
    }
    const ids = this.ids ?? [];
    const q = new URLSearchParams({ devices: ids.join(','), name: file.name });
    const title = /** @type {HTMLInputElement} */ (this.#el('fd-title')).value.trim();
    if (title) q.set('title', title);
    const button = /** @type {HTMLButtonElement} */ (this.#el('fd-send'));
    button.disabled = true;
    try {
      const t = await uploadFile('POST', `/api/v1/files?${q}`, file);
      this.#error('');
      this.#follow(`/api/v1/files/${t.id}`, 'deliveries', t.size, null);
    } catch (e) {
      this.#error(`Could not send the file: ${e instanceof Error ? e.message : String(e)}`);
    } finally {
      button.disabled = false;
    }
  }

  async #collect() {
    const path = /** @type {HTMLInputElement} */ (this.#el('fd-path')).value.trim();
    if (!path) {
      this.#error('Type the file or folder to collect, e.g. Hand-in/Essay.docx');
      this.#el('fd-path').focus();
      return;
    }
    try {
      const c = await api('POST', '/api/v1/collections', { devices: this.ids ?? [], path });
      this.#error('');
      this.#follow(`/api/v1/collections/${c.id}`, 'hand_ins', undefined, `/api/v1/collections/${c.id}/zip`);
    } catch (e) {
      this.#error(`Could not collect: ${e instanceof Error ? e.message : String(e)}`);
    }
  }

  /**
   * Shows a transfer's or collection's per-computer progress, fetched again
   * while any computer is still on its way and the dialog is open.
   * @param {string} path
   * @param {'deliveries' | 'hand_ins'} key
   * @param {number | undefined} size the file's size, for percentages
   * @param {string | null} zip the zip's address, for collections
   */
  #follow(path, key, size, zip) {
    clearTimeout(this.timer);
    this.#el('fd-progress').hidden = false;
    const link = /** @type {HTMLAnchorElement} */ (this.#el('fd-zip'));
    link.hidden = true;
    const poll = async () => {
      if (!this.dialog.open) return;
      try {
        const v = await api('GET', path);
        /** @type {any[]} */
        const rows = v[key] ?? [];
        for (const r of rows) {
          const name = this.grid.device(r.device_id)?.hostname;
          if (name) deviceNames.set(r.device_id, name);
        }
        const name = (/** @type {any} */ r) => deviceNames.get(r.device_id) ?? '';
        rows.sort((a, b) => name(a).localeCompare(name(b)));
        this.#el('fd-results').replaceChildren(...rows.map((r) => {
          const text = statusText(r, size);
          return el('li', r.status === 'failed' ? 'failed' : '', text);
        }));
        if (zip) {
          link.href = zip;
          link.setAttribute('download', `collection-${v.id}.zip`);
          // Offline computers may hand in much later: what came is ready now.
          link.hidden = busy(rows) && !rows.some((r) => r.status === 'done');
        }
        if (busy(rows)) this.timer = setTimeout(poll, POLL_MS);
      } catch (e) {
        this.#error(`Could not load the progress: ${e instanceof Error ? e.message : String(e)}`);
      }
    };
    void poll();
  }
}
