// The classroom's meeting invite (issue 16.4): a teacher sends a video
// meeting link (Google Meet or any https meeting) to the selected computers;
// it opens in each student's browser and the results come per computer, as
// for any command. Builds its own toolbar button and dialog, shown to
// holders of command.meeting only. The server checks the link again, and so
// does every agent.

import { el, h } from './page.js';

/** Meeting services recognised by host, to name the link for the teacher. */
const SERVICES = /** @type {const} */ ([
  ['meet.google.com', 'Google Meet'],
  ['teams.microsoft.com', 'Microsoft Teams'],
  ['teams.live.com', 'Microsoft Teams'],
  ['zoom.us', 'Zoom'],
  ['webex.com', 'Webex'],
  ['meet.jit.si', 'Jitsi Meet'],
  ['whereby.com', 'Whereby'],
]);

/** The longest link the server takes (lectern-policy MAX_URL_LEN). */
const MAX_URL = 2048;

/** Where the last link is kept for this browser tab's session only. */
const REMEMBER_KEY = 'lectern.meeting.url';

/**
 * Reads a meeting link as typed: `https://` is added when no scheme is
 * given; anything but an https address is refused with a sentence.
 * @param {string} typed
 * @returns {{ok: true, url: string, service: string} | {ok: false, error: string}}
 */
export function parseMeetingLink(typed) {
  const text = typed.trim();
  if (!text) return { ok: false, error: 'Paste the meeting link first.' };
  const withScheme = /^[a-z][a-z0-9+.-]*:/i.test(text) ? text : `https://${text}`;
  if (withScheme.length > MAX_URL) return { ok: false, error: `The link is longer than ${MAX_URL} characters.` };
  let url;
  try {
    url = new URL(withScheme);
  } catch {
    return { ok: false, error: 'That is not a web address. Paste the meeting link as your meeting service gives it.' };
  }
  if (url.protocol !== 'https:') return { ok: false, error: 'A meeting link must start with https:// so that it is private.' };
  if (url.username || url.password) return { ok: false, error: 'A meeting link cannot carry a user name or password.' };
  const host = url.hostname.toLowerCase();
  const found = SERVICES.find(([domain]) => host === domain || host.endsWith(`.${domain}`));
  return { ok: true, url: url.href, service: found ? found[1] : 'Video meeting' };
}

export class MeetingDialog {
  /**
   * @param {import('./grid.js').Grid} grid
   * @param {import('./commands.js').Commands} commands
   */
  constructor(grid, commands) {
    this.grid = grid;
    this.commands = commands;
    this.#buildButton();
    this.dialog = this.#buildDialog();
    document.body.append(this.dialog);
  }

  #buildButton() {
    const toolbar = document.querySelector('.toolbar');
    const button = h('button', { id: 'meeting-button', type: 'button', 'data-right': 'command.meeting', 'aria-haspopup': 'dialog' }, ['Meeting…']);
    button.addEventListener('click', () => this.open());
    toolbar?.append(h('div', { class: 'group', 'data-right-group': '' }, [button]));
  }

  /** @returns {HTMLDialogElement} */
  #buildDialog() {
    const input = h('input', {
      id: 'meeting-url', type: 'url', inputmode: 'url', autocomplete: 'off', spellcheck: 'false',
      maxlength: String(MAX_URL), placeholder: 'https://meet.google.com/abc-defg-hij', 'aria-describedby': 'meeting-service',
    });
    const form = h('form', { method: 'dialog', id: 'meeting-form', novalidate: '' }, [
      h('p', { id: 'meeting-target', class: 'hint' }),
      h('label', { for: 'meeting-url' }, ['Meeting link']),
      input,
      h('p', { id: 'meeting-service', class: 'hint', 'aria-live': 'polite' }, ['Google Meet, Microsoft Teams, Zoom or any https meeting link.']),
      h('p', { class: 'hint' }, ['The link opens in the browser on each computer. A computer whose internet is blocked cannot join: its result says so.']),
      h('p', { id: 'meeting-error', class: 'form-error', role: 'alert', hidden: '' }),
      h('div', { class: 'actions' }, [
        h('button', { id: 'meeting-send', type: 'submit', class: 'primary' }, ['Invite']),
        h('button', { id: 'meeting-close', type: 'button' }, ['Close']),
      ]),
      h('p', { id: 'meeting-sent', class: 'hint', role: 'status', hidden: '' }),
    ]);
    const dialog = /** @type {HTMLDialogElement} */ (h('dialog', { id: 'meeting-dialog', class: 'modal meeting-dialog', 'aria-labelledby': 'meeting-title' }, [
      h('div', { class: 'modal-head' }, [h('h2', { id: 'meeting-title' }, ['Invite to a video meeting'])]),
      form,
    ]));
    input.addEventListener('input', () => {
      this.#error('');
      this.#describe();
    });
    form.addEventListener('submit', (ev) => { ev.preventDefault(); void this.#send(); });
    dialog.querySelector('#meeting-close')?.addEventListener('click', () => dialog.close());
    return dialog;
  }

  /** @param {string} id */
  #el(id) {
    return /** @type {HTMLElement} */ (this.dialog.querySelector(`#${id}`));
  }

  /** @returns {HTMLInputElement} */
  get #input() {
    return /** @type {HTMLInputElement} */ (this.#el('meeting-url'));
  }

  /** @param {string} text */
  #error(text) {
    const e = this.#el('meeting-error');
    e.textContent = text;
    e.hidden = !text;
  }

  /** Names the service of the link typed so far. */
  #describe() {
    const typed = this.#input.value;
    const parsed = parseMeetingLink(typed);
    this.#el('meeting-service').textContent = !typed.trim()
      ? 'Google Meet, Microsoft Teams, Zoom or any https meeting link.'
      : 'service' in parsed ? `${parsed.service} link` : '';
  }

  /** Opens the dialog for the selected computers. */
  open() {
    const n = this.grid.selectedIds().length;
    this.#el('meeting-target').textContent = n
      ? `${n} selected computer${n === 1 ? '' : 's'} will be invited.`
      : 'Select the computers to invite first.';
    /** @type {HTMLButtonElement} */ (this.#el('meeting-send')).disabled = n === 0;
    if (!this.#input.value) this.#input.value = sessionStorage.getItem(REMEMBER_KEY) ?? '';
    this.#error('');
    this.#el('meeting-sent').hidden = true;
    this.#describe();
    this.dialog.showModal();
    this.#input.focus();
  }

  async #send() {
    const ids = this.grid.selectedIds();
    const parsed = parseMeetingLink(this.#input.value);
    if ('error' in parsed) {
      this.#error(parsed.error);
      return;
    }
    this.#error('');
    const button = /** @type {HTMLButtonElement} */ (this.#el('meeting-send'));
    button.disabled = true;
    try {
      await this.commands.send({ type: 'meeting', url: parsed.url }, ids);
      sessionStorage.setItem(REMEMBER_KEY, parsed.url);
      const sent = this.#el('meeting-sent');
      sent.replaceChildren(el('span', '', `${parsed.service} sent to ${ids.length} computer${ids.length === 1 ? '' : 's'}: the results are on the tiles and in the command line above the grid.`));
      sent.hidden = false;
    } catch (e) {
      this.#error(e instanceof Error ? e.message : String(e));
    } finally {
      button.disabled = false;
    }
  }
}
