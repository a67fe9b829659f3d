// The live view: asks the server (which may ask the student, up to ~10 s)
// whether a device's screen may be watched, shows the decision and, when
// allowed, the device's latest picture. While it shows a device, the console
// names it as `live` in its watch message (`onLive`), and the server asks
// that device for larger frames at a higher rate (1280 px, up to 10 a second
// by default; a browser extension manages about 2), so the picture is sharp
// rather than an enlarged thumbnail; closing the view sends thumbnails again.

import { api } from './api.js';

/** What each decision reason is shown as. */
const REASONS = {
  policy_allow: 'Allowed by policy',
  policy_deny: 'Denied by policy',
  student_allowed: 'Allowed by the student',
  student_denied: 'Denied by the student',
  timeout_allowed: 'No answer in 10 s: allowed',
  timeout_denied: 'No answer in 10 s: denied',
  bypass: 'Allowed: you may bypass client privacy',
  thumbnails_off: 'Pictures of this screen are turned off by policy',
  policy_pending: 'The computer has not received its policy yet; try again',
};

/**
 * @typedef {object} LiveViewElements
 * @property {HTMLDialogElement} dialog `#live-view`
 * @property {HTMLElement} title
 * @property {HTMLElement} decision `#live-view-decision`
 * @property {HTMLElement} screen holds the image
 * @property {HTMLImageElement} image
 * @property {HTMLButtonElement} close
 */

export class LiveView {
  /**
   * @param {LiveViewElements} els
   * @param {import('./grid.js').Grid} grid where the latest pictures come from
   * @param {(id: number | null) => void} [onLive] the device to stream live
   *   (null: none), called when that changes
   */
  constructor(els, grid, onLive = () => {}) {
    this.els = els;
    this.grid = grid;
    this.onLive = onLive;
    /** The device being shown, once allowed. @type {number | null} */
    this.showing = null;
    /** Counts requests, so that a late answer for a closed view is ignored. */
    this.request = 0;
    els.close.addEventListener('click', () => this.close());
    els.dialog.addEventListener('close', () => this.#reset());
  }

  /**
   * Opens the live view of a device: asks for permission, then shows it.
   * @param {import('./grid.js').Device} device
   */
  async open(device) {
    const { dialog, title, decision } = this.els;
    const request = ++this.request;
    this.#reset();
    title.textContent = `Live view · ${device.hostname}`;
    decision.textContent = 'Asking the student…';
    decision.className = 'live-view-decision pending';
    decision.dataset.reason = 'pending';
    if (!dialog.open) dialog.showModal();

    let answer;
    try {
      answer = await api('POST', `/api/v1/devices/${device.id}/view`);
    } catch (err) {
      if (request !== this.request) return;
      decision.textContent = `Could not open the live view: ${err.message}`;
      decision.className = 'live-view-decision denied';
      decision.dataset.reason = 'error';
      return;
    }
    if (request !== this.request || !dialog.open) return;
    const reason = answer && typeof answer.reason === 'string' ? answer.reason : '';
    const allowed = answer && answer.decision === 'allowed';
    decision.textContent = REASONS[reason] || (allowed ? 'Allowed' : 'Denied');
    decision.className = `live-view-decision ${allowed ? 'allowed' : 'denied'}`;
    decision.dataset.reason = reason;
    decision.dataset.decision = allowed ? 'allowed' : 'denied';
    if (allowed) {
      this.showing = device.id;
      this.onLive(device.id);
      this.els.image.alt = `Screen of ${device.hostname}`;
      this.els.screen.hidden = false;
      this.#showPicture(this.grid.thumbnailUrl(device.id));
    }
  }

  /**
   * A device has a new picture: shows it if that device is on view.
   * @param {number} id
   * @param {string} url Blob URL of the picture
   */
  onThumbnail(id, url) {
    if (id === this.showing) this.#showPicture(url);
  }

  /** Closes the view (a pending request's answer is then ignored). */
  close() {
    this.request += 1;
    if (this.els.dialog.open) this.els.dialog.close();
    this.#reset();
  }

  /**
   * @param {string | null} url
   */
  #showPicture(url) {
    if (url) this.els.image.src = url;
  }

  /** Empties the view (and stops its live stream). */
  #reset() {
    if (this.showing !== null) this.onLive(null);
    this.showing = null;
    this.els.screen.hidden = true;
    this.els.image.removeAttribute('src');
    delete this.els.decision.dataset.decision;
  }
}
