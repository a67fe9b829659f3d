// Raised hands and chat on the class page: a "✋ Hand raised" badge on each
// tile whose student asks for help, the queue of open hands (who, when, the
// note, Answer / Dismiss / Chat), and the chat dialog with one student or the
// selected computers. Hands and chat lines arrive as `hand` and `chat`
// events of the live stream (re-dispatched on `window` by stream.js); the
// server scopes them (hands: computers the user sees; chat: computers they
// control, or safeguarding). Answering and chatting need `command.chat`;
// safeguarding leads (`activity.view`) open the same dialog read-only.

import { api } from './api.js';
import { $, el, formatTime, holds, hideNotice, showNotice } from './page.js';

/** Name of the window event that carries stream messages. */
const STREAM_EVENT = 'lectern-stream';
/** Longest answer the server takes, in characters. */
const MAX_ANSWER = 500;
/** Most computers whose histories the chat dialog loads for a class. */
const MAX_HISTORIES = 40;

/**
 * @typedef {object} HelpRequest
 * @property {number} id
 * @property {number} device_id
 * @property {string | null} username
 * @property {string} note
 * @property {number} raised_at
 * @property {number | null} closed_at
 * @property {string | null} outcome
 */

/**
 * @typedef {object} ChatMessage
 * @property {number} id
 * @property {number} device_id
 * @property {string} thread
 * @property {number | null} batch
 * @property {string} author
 * @property {boolean} from_teacher
 * @property {string} text
 * @property {number} at
 */

/**
 * What this module needs of the grid.
 * @typedef {object} GridLike
 * @property {() => number[]} selectedIds
 * @property {(id: number) => (import('./grid.js').Device | null)} device
 * @property {(ids: Set<number>) => void} setHands
 */

export class Requests {
  /** @param {GridLike} grid */
  constructor(grid) {
    this.grid = grid;
    /** Open hands by request id. @type {Map<number, HelpRequest>} */
    this.open = new Map();
    /** The computers the chat dialog is with. @type {number[]} */
    this.chatWith = [];
    /** Chat lines shown, by key (batch or id), to show a class message once. @type {Set<string>} */
    this.shownLines = new Set();
  }

  init() {
    window.addEventListener(STREAM_EVENT, (event) => this.#onStream(/** @type {CustomEvent} */ (event).detail));
    $('chat-open').addEventListener('click', () => this.openChat(this.grid.selectedIds()));
    $('chat-close').addEventListener('click', () => /** @type {HTMLDialogElement} */ ($('chat-dialog')).close());
    $('chat-form').addEventListener('submit', (event) => {
      event.preventDefault();
      this.#sendChat();
    });
    const input = /** @type {HTMLTextAreaElement} */ ($('chat-text'));
    input.addEventListener('keydown', (event) => {
      if (event.key === 'Enter' && !event.shiftKey) {
        event.preventDefault();
        this.#sendChat();
      }
    });
    this.load();
  }

  /** Loads the open hands (at start and after the stream missed events). */
  async load() {
    try {
      /** @type {HelpRequest[]} */
      const list = await api('GET', '/api/v1/requests');
      this.open = new Map(list.map((r) => [r.id, r]));
      this.#render();
    } catch {
      // No right to see computers: the page says so elsewhere.
    }
  }

  /** @param {any} msg */
  #onStream(msg) {
    if (!msg || typeof msg !== 'object') return;
    if (msg.type === 'hand') this.#onHand(msg.request);
    else if (msg.type === 'chat') this.#onChat(msg.message);
    else if (msg.type === 'resync') this.load();
  }

  /** @param {HelpRequest} r */
  #onHand(r) {
    if (r.closed_at) this.open.delete(r.id);
    else this.open.set(r.id, r);
    this.#render();
  }

  /** A name for the student at a computer: the user, and the computer. */
  #who(/** @type {number} */ deviceId, /** @type {string | null | undefined} */ user) {
    const host = this.grid.device(deviceId)?.hostname || `computer ${deviceId}`;
    return user ? `${user} on ${host}` : host;
  }

  /** Draws the badges and the queue. */
  #render() {
    const list = [...this.open.values()].sort((a, b) => a.raised_at - b.raised_at);
    this.grid.setHands(new Set(list.map((r) => r.device_id)));
    const panel = $('hands-panel');
    panel.hidden = list.length === 0;
    $('hands-count').textContent = list.length === 1 ? '1 student asks for help' : `${list.length} students ask for help`;
    const items = list.map((r) => this.#item(r));
    $('hands-list').replaceChildren(...items);
  }

  /**
   * One raised hand in the queue: who, when, the note, and the teacher's
   * answer field with Answer, Dismiss and Chat.
   * @param {HelpRequest} r
   */
  #item(r) {
    const li = el('li', 'hand-item');
    const head = el('div', 'hand-head');
    const who = el('strong', 'hand-who', this.#who(r.device_id, r.username));
    const when = el('time', 'hand-when', formatTime(r.raised_at));
    when.setAttribute('datetime', new Date(r.raised_at).toISOString());
    head.append('✋ ', who, ' ', when);
    li.append(head);
    li.append(el('p', r.note ? 'hand-note' : 'hand-note empty', r.note || 'No note'));
    if (!holds('command.chat')) return li;
    const form = el('form', 'hand-answer');
    const id = `hand-answer-${r.id}`;
    const label = el('label', 'visually-hidden', `Answer to ${this.#who(r.device_id, r.username)}`);
    label.setAttribute('for', id);
    const input = /** @type {HTMLInputElement} */ (el('input'));
    input.id = id;
    input.type = 'text';
    input.maxLength = MAX_ANSWER;
    input.placeholder = 'Answer (shown to the student)';
    input.autocomplete = 'off';
    const answer = el('button', 'primary', 'Answer');
    /** @type {HTMLButtonElement} */ (answer).type = 'submit';
    const dismiss = el('button', '', 'Dismiss');
    /** @type {HTMLButtonElement} */ (dismiss).type = 'button';
    const chat = el('button', '', 'Chat…');
    /** @type {HTMLButtonElement} */ (chat).type = 'button';
    form.append(label, input, answer, dismiss, chat);
    form.addEventListener('submit', (event) => {
      event.preventDefault();
      this.#close(r, input.value.trim());
    });
    dismiss.addEventListener('click', () => this.#close(r, null));
    chat.addEventListener('click', () => this.openChat([r.device_id]));
    li.append(form);
    return li;
  }

  /**
   * Moves to the answer field of a computer's raised hand in the queue (the
   * tile menu's "Answer raised hand…"); says so if the hand is down by now.
   * @param {number} deviceId
   */
  answerHand(deviceId) {
    hideNotice();
    const r = [...this.open.values()].find((h) => h.device_id === deviceId);
    const input = r && document.getElementById(`hand-answer-${r.id}`);
    if (!input) {
      showNotice(`The student at ${this.#who(deviceId, null)} no longer has a hand raised.`, 'info');
      return;
    }
    input.scrollIntoView({ block: 'nearest' });
    input.focus();
  }

  /**
   * Answers (with text) or dismisses (null) a raised hand.
   * @param {HelpRequest} r
   * @param {string | null} text
   */
  async #close(r, text) {
    hideNotice();
    if (text === '') {
      showNotice('Write an answer first, or dismiss the raised hand.');
      return;
    }
    try {
      const path = `/api/v1/requests/${r.id}/${text === null ? 'dismiss' : 'answer'}`;
      /** @type {HelpRequest} */
      const closed = await api('POST', path, text === null ? {} : { answer: text });
      this.#onHand(closed);
    } catch (err) {
      showNotice(err instanceof Error ? err.message : String(err));
    }
  }

  /**
   * Opens the chat with these computers and loads their histories.
   * @param {number[]} ids
   */
  async openChat(ids) {
    hideNotice();
    if (ids.length === 0) {
      showNotice('Select the computers to chat with first.', 'info');
      return;
    }
    this.chatWith = [...ids];
    this.shownLines = new Set();
    const one = ids.length === 1;
    // A safeguarding lead (activity.view without command.chat) reads the
    // chats of computers they see but cannot write in them.
    const canSend = holds('command.chat');
    const what = canSend ? 'Chat' : 'Chat history';
    $('chat-title').textContent = one ? `${what} with ${this.#who(ids[0], this.grid.device(ids[0])?.state?.user)}` : `${what} with ${ids.length} computers`;
    $('chat-form').hidden = !canSend;
    $('chat-readonly').hidden = canSend;
    $('chat-log').replaceChildren();
    $('chat-error').hidden = true;
    const dialog = /** @type {HTMLDialogElement} */ ($('chat-dialog'));
    if (!dialog.open) dialog.showModal();
    $(canSend ? 'chat-text' : 'chat-log').focus();
    /** @type {ChatMessage[]} */
    const all = [];
    for (const id of ids.slice(0, MAX_HISTORIES)) {
      try {
        const h = await api('GET', `/api/v1/chat?device=${id}`);
        all.push(...h.messages);
      } catch (err) {
        this.#error(err);
      }
    }
    all.sort((a, b) => a.at - b.at || a.id - b.id);
    for (const m of all) this.#append(m);
  }

  /** @param {ChatMessage} m */
  #onChat(m) {
    const dialog = /** @type {HTMLDialogElement} */ ($('chat-dialog'));
    if (dialog.open && this.chatWith.includes(m.device_id)) this.#append(m);
  }

  /**
   * Adds a line to the chat log once (a class message is one line).
   * @param {ChatMessage} m
   */
  #append(m) {
    const key = m.batch ? `b${m.batch}` : `m${m.id}`;
    if (this.shownLines.has(key)) return;
    this.shownLines.add(key);
    const li = el('li', m.from_teacher ? 'chat-line teacher' : 'chat-line student');
    const who = m.from_teacher ? m.author : this.#who(m.device_id, m.author);
    const head = el('div', 'chat-head');
    head.append(el('strong', '', who), ' ', el('time', '', formatTime(m.at)));
    li.append(head, el('p', 'chat-text', m.text));
    const log = $('chat-log');
    log.append(li);
    log.scrollTop = log.scrollHeight;
  }

  async #sendChat() {
    const input = /** @type {HTMLTextAreaElement} */ ($('chat-text'));
    const text = input.value.trim();
    if (!text || this.chatWith.length === 0) return;
    $('chat-error').hidden = true;
    try {
      const r = await api('POST', '/api/v1/chat', { devices: this.chatWith, text });
      input.value = '';
      for (const m of r.messages) this.#append(m);
      const offline = this.chatWith.length - r.delivered.length;
      if (offline > 0) this.#error(new Error(`${offline} of these computers are offline; the message is kept in their chat history.`));
    } catch (err) {
      this.#error(err);
    }
  }

  /** @param {unknown} err */
  #error(err) {
    const p = $('chat-error');
    p.textContent = err instanceof Error ? err.message : String(err);
    p.hidden = false;
  }
}
