// Remote control from the live view. View-only by default: a "Take control"
// toggle (shown only to users holding `command.remote_control`; the server
// still judges each device) asks the server over the stream; while on, the
// pointer and keys over the picture go to the device, the pointer scaled to
// its screen. Keys are physical key codes (`KeyboardEvent.code`) with their
// modifiers, so the student's keyboard layout decides what they type.
// Ctrl+Alt+Del is never sent (the server refuses it too). Esc twice, the
// toggle, or closing the view stops control.

import { holds } from './page.js';

/** Most events in one message (the server refuses more). */
const MAX_BATCH = 64;
/** How often queued events go out, in ms (pointer moves coalesce). */
const FLUSH_MS = 30;
/** A second Esc within this many ms stops control. */
const ESC_ESC_MS = 600;
/** Keys sent only as modifiers of another key. */
const MODIFIER_CODES = new Set([
  'ShiftLeft', 'ShiftRight', 'ControlLeft', 'ControlRight',
  'AltLeft', 'AltRight', 'MetaLeft', 'MetaRight',
]);
/** Mouse buttons by `MouseEvent.button`. */
const BUTTONS = ['left', 'middle', 'right'];

/**
 * @typedef {object} ControlElements
 * @property {HTMLDialogElement} dialog the live view `#live-view`
 * @property {HTMLElement} screen holds the picture
 * @property {() => HTMLElement} picture the element that shows the screen now
 *   (liveview.js `pictureElement`: the canvas for video, else the image)
 */

/**
 * @typedef {{t: 'move', x: number, y: number}
 *   | {t: 'button', button: string, down: boolean}
 *   | {t: 'wheel', dx: number, dy: number}
 *   | {t: 'key', code: string, mods: {ctrl: boolean, alt: boolean, shift: boolean, meta: boolean}}} InputEvent
 */

export class RemoteControl {
  /**
   * @param {ControlElements} els
   * @param {(message: unknown) => boolean} send sends on the console stream
   */
  constructor(els, send) {
    this.els = els;
    this.send = send;
    /** The device shown live, or null. @type {number | null} */
    this.device = null;
    this.hostname = '';
    /** Whether the server says we control it. */
    this.on = false;
    /** @type {InputEvent[]} */
    this.queue = [];
    /** The latest pointer position not yet queued. @type {InputEvent | null} */
    this.move = null;
    /** @type {ReturnType<typeof setTimeout> | null} */
    this.timer = null;
    /** A first Esc held back, waiting to see if a second follows. @type {ReturnType<typeof setTimeout> | null} */
    this.escTimer = null;

    this.bar = document.createElement('div');
    this.bar.className = 'control-bar';
    this.bar.hidden = true;
    this.toggle = document.createElement('button');
    this.toggle.type = 'button';
    this.toggle.id = 'control-toggle';
    this.toggle.className = 'control-toggle';
    this.toggle.textContent = 'Take control';
    this.toggle.setAttribute('aria-pressed', 'false');
    this.state = document.createElement('p');
    this.state.id = 'control-state';
    this.state.className = 'control-state';
    this.state.setAttribute('role', 'status');
    this.state.setAttribute('aria-live', 'polite');
    this.bar.append(this.toggle, this.state);
    els.screen.before(this.bar);

    this.toggle.addEventListener('click', () => this.#request(!this.on));
    window.addEventListener('lectern-stream', (e) => this.#onServer(/** @type {CustomEvent} */ (e).detail));
    const s = els.screen;
    s.addEventListener('pointermove', (e) => this.#onPointer(e));
    s.addEventListener('pointerdown', (e) => this.#onButton(e, true));
    s.addEventListener('pointerup', (e) => this.#onButton(e, false));
    s.addEventListener('wheel', (e) => this.#onWheel(e), { passive: false });
    s.addEventListener('contextmenu', (e) => { if (this.on) e.preventDefault(); });
    els.dialog.addEventListener('keydown', (e) => this.#onKey(e), true);
    els.dialog.addEventListener('keyup', (e) => { if (this.on) e.preventDefault(); }, true);
    // Esc must reach the device (or stop control), not close the view.
    els.dialog.addEventListener('cancel', (e) => { if (this.on) e.preventDefault(); });
    // The page's usable rights (page.js): the right with control of some group.
    this.allowed = holds('command.remote_control');
  }

  /**
   * The live view shows `id` now (null: nothing); control of another
   * device ends (the server ends it too when the live device changes).
   * @param {number | null} id
   * @param {string} [hostname]
   */
  show(id, hostname = '') {
    if (this.device !== null && this.device !== id && this.on) this.#request(false);
    this.device = id;
    this.hostname = hostname;
    this.#set(false, '');
    this.bar.hidden = id === null || !this.allowed;
  }

  /**
   * Asks the server to start or stop control.
   * @param {boolean} on
   */
  #request(on) {
    if (this.device === null) return;
    if (!on) this.#flush();
    this.send({ type: 'control', device: this.device, on });
    if (!on) this.#set(false, '');
    else this.state.textContent = `Taking control of ${this.hostname}…`;
  }

  /**
   * A stream message: the server's answer about control.
   * @param {any} msg
   */
  #onServer(msg) {
    if (!msg || msg.type !== 'control' || msg.device !== this.device) return;
    this.#set(Boolean(msg.on), typeof msg.error === 'string' ? msg.error : '');
  }

  /**
   * Shows the state: the toggle, the sentence, the picture's frame.
   * @param {boolean} on
   * @param {string} error
   */
  #set(on, error) {
    this.on = on;
    this.toggle.setAttribute('aria-pressed', String(on));
    this.toggle.textContent = on ? 'Stop control' : 'Take control';
    this.els.screen.classList.toggle('controlling', on);
    this.state.classList.toggle('error', Boolean(error));
    const controlling = `You are controlling ${this.hostname}.`;
    if (on) this.state.textContent = `${controlling} ${error || 'Press Esc twice to stop.'}`;
    else this.state.textContent = error || 'View only';
    if (on) {
      this.els.screen.tabIndex = 0;
      this.els.screen.focus();
    } else {
      this.queue = [];
      this.move = null;
    }
  }

  /**
   * The point of the event on the device's screen, in 1/65535ths, or null
   * outside the picture (it is letterboxed inside its box).
   * @param {MouseEvent} e
   * @returns {{x: number, y: number} | null}
   */
  #point(e) {
    // The live view holds both an image (JPEG) and a canvas (video); only the
    // one on show has the device's size.
    const media = /** @type {any} */ (this.els.picture());
    if (!media) return null;
    const box = media.getBoundingClientRect();
    const nw = media.naturalWidth || media.videoWidth || media.width;
    const nh = media.naturalHeight || media.videoHeight || media.height;
    if (!nw || !nh || !box.width || !box.height) return null;
    const scale = Math.min(box.width / nw, box.height / nh);
    const w = nw * scale;
    const h = nh * scale;
    const fx = (e.clientX - box.left - (box.width - w) / 2) / w;
    const fy = (e.clientY - box.top - (box.height - h) / 2) / h;
    if (fx < 0 || fx > 1 || fy < 0 || fy > 1) return null;
    return { x: Math.round(fx * 65535), y: Math.round(fy * 65535) };
  }

  /** @param {PointerEvent} e */
  #onPointer(e) {
    if (!this.on) return;
    const p = this.#point(e);
    if (!p) return;
    this.move = { t: 'move', x: p.x, y: p.y };
    this.#schedule();
  }

  /**
   * @param {PointerEvent} e
   * @param {boolean} down
   */
  #onButton(e, down) {
    if (!this.on) return;
    const button = BUTTONS[e.button];
    if (!button) return;
    e.preventDefault();
    if (down) this.els.screen.focus();
    this.#onPointer(e);
    this.#queue({ t: 'button', button, down });
  }

  /** @param {WheelEvent} e */
  #onWheel(e) {
    if (!this.on) return;
    e.preventDefault();
    const notches = (/** @type {number} */ d) => Math.max(-10, Math.min(10, Math.sign(d) * Math.max(1, Math.round(Math.abs(d) / 100))));
    this.#queue({ t: 'wheel', dx: e.deltaX ? notches(e.deltaX) : 0, dy: e.deltaY ? notches(e.deltaY) : 0 });
  }

  /** @param {KeyboardEvent} e */
  #onKey(e) {
    if (!this.on) return;
    e.preventDefault();
    e.stopPropagation();
    if (MODIFIER_CODES.has(e.code) || !e.code) return;
    if (e.code === 'Escape' && !e.ctrlKey && !e.altKey && !e.shiftKey && !e.metaKey) {
      if (this.escTimer) {
        clearTimeout(this.escTimer);
        this.escTimer = null;
        this.#request(false);
        return;
      }
      this.escTimer = setTimeout(() => {
        this.escTimer = null;
        this.#queue(this.#key(e));
      }, ESC_ESC_MS);
      return;
    }
    if ((e.code === 'Delete' || e.code === 'NumpadDecimal') && e.ctrlKey && e.altKey) {
      this.state.textContent = `You are controlling ${this.hostname}. Ctrl+Alt+Del is never sent to a student's computer.`;
      return;
    }
    this.#queue(this.#key(e));
  }

  /**
   * @param {KeyboardEvent} e
   * @returns {InputEvent}
   */
  #key(e) {
    return { t: 'key', code: e.code, mods: { ctrl: e.ctrlKey, alt: e.altKey, shift: e.shiftKey, meta: e.metaKey } };
  }

  /** @param {InputEvent} ev */
  #queue(ev) {
    // The pointer's position goes first, so a click lands where it was.
    if (this.move) {
      this.queue.push(this.move);
      this.move = null;
    }
    this.queue.push(ev);
    this.#schedule();
  }

  #schedule() {
    if (this.timer) return;
    this.timer = setTimeout(() => {
      this.timer = null;
      this.#flush();
    }, FLUSH_MS);
  }

  /** Sends what is queued, in messages of at most 64 events. */
  #flush() {
    if (this.move) {
      this.queue.push(this.move);
      this.move = null;
    }
    if (!this.on || this.device === null) {
      this.queue = [];
      return;
    }
    while (this.queue.length) {
      const events = this.queue.splice(0, MAX_BATCH);
      this.send({ type: 'input', device: this.device, events });
    }
  }
}
