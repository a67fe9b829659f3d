// The live view: asks the server (which may ask the student, up to ~10 s)
// whether a device's screen may be watched, shows the decision and, when
// allowed, the device's screen. While it shows a device, the console names it
// as `live` in its watch message (`onLive`), with the codecs this browser
// decodes (`codecs`). A desktop agent then streams its full screen as H.264,
// decoded here with WebCodecs onto a canvas; where this browser cannot decode
// H.264 (or the agent cannot encode it), the server asks for larger JPEG
// frames at a higher rate instead (1280 px, up to 10 a second by default; a
// browser extension manages about 2), shown in an image. Closing the view
// stops the stream.
//
// For other modules (control.js): `deviceId` is the device on view (or
// null), `pictureElement` the element that shows its screen now, and the
// dialog fires `lectern-live-device` (detail: the device id or null) when
// the device on view changes.

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
 * The decoder set-up for the agents' H.264: Constrained Baseline, level 4.0
 * (1080p), Annex B (no `description`), lowest latency.
 * @type {VideoDecoderConfig}
 */
const H264 = { codec: 'avc1.42E028', optimizeForLatency: true };

/** @type {Promise<string[]> | null} */
let codecCheck = null;

/**
 * The live-view codecs this browser decodes (asked once).
 * @returns {Promise<string[]>}
 */
export function supportedCodecs() {
  codecCheck ??= (async () => {
    if (typeof VideoDecoder === 'undefined' || typeof EncodedVideoChunk === 'undefined') return [];
    try {
      const support = await VideoDecoder.isConfigSupported(H264);
      return support.supported ? ['h264'] : [];
    } catch {
      return [];
    }
  })();
  return codecCheck;
}

/**
 * One live-view video picture as the stream delivers it.
 * @typedef {object} VideoPicture
 * @property {number} width
 * @property {number} height
 * @property {boolean} keyframe
 * @property {number} seq counts the device's pictures
 * @property {number} ms capture time, ms since the stream started
 * @property {Uint8Array} data H.264, Annex B
 */

/**
 * @typedef {object} LiveViewElements
 * @property {HTMLDialogElement} dialog `#live-view`
 * @property {HTMLElement} title
 * @property {HTMLElement} decision `#live-view-decision`
 * @property {HTMLElement} screen holds the picture
 * @property {HTMLImageElement} image the JPEG picture
 * @property {HTMLCanvasElement} canvas the decoded video
 * @property {HTMLButtonElement} close
 * @property {HTMLButtonElement} previous the previous device in the grid's order
 * @property {HTMLButtonElement} next the next device
 * @property {HTMLButtonElement} screenshot takes a full-size screenshot
 * @property {HTMLElement} shotStatus what became of the last screenshot
 */

export class LiveView {
  /**
   * @param {LiveViewElements} els
   * @param {import('./grid.js').Grid} grid where the latest pictures and the order come from
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
    /** The device last opened (shown or being asked for). @type {import('./grid.js').Device | null} */
    this.current = null;
    /** Codecs to name in the watch message (known before the first view). @type {string[]} */
    this.codecs = [];
    /** The H.264 decoder while video is shown. @type {VideoDecoder | null} */
    this.decoder = null;
    /** Deltas are skipped until a keyframe (start, gap, decoder error). */
    this.waitKey = true;
    /** The last picture's sequence number. @type {number | null} */
    this.lastSeq = null;
    /** Pictures decoded and drawn for the device on view. */
    this.decoded = 0;
    supportedCodecs().then((c) => {
      this.codecs = c;
    });
    els.close.addEventListener('click', () => this.close());
    els.previous.addEventListener('click', () => this.step(-1));
    els.next.addEventListener('click', () => this.step(1));
    els.screenshot.addEventListener('click', () => this.takeScreenshot());
    els.dialog.addEventListener('close', () => this.#reset());
  }

  /** The device on view, or null. @returns {number | null} */
  get deviceId() {
    return this.showing;
  }

  /** The element that shows the screen now (canvas for video, else image). @returns {HTMLElement} */
  get pictureElement() {
    return this.els.screen.dataset.mode === 'video' ? this.els.canvas : this.els.image;
  }

  /**
   * Opens the live view of a device: asks for permission, then shows it.
   * @param {import('./grid.js').Device} device
   */
  async open(device) {
    const { dialog, title, decision } = this.els;
    const request = ++this.request;
    this.#reset();
    this.current = device;
    title.textContent = `Live view · ${device.hostname}`;
    decision.textContent = 'Asking the student…';
    decision.className = 'live-view-decision pending';
    decision.dataset.reason = 'pending';
    this.#updateSteps();
    if (!dialog.open) dialog.showModal();

    let answer;
    try {
      answer = await api('POST', `/api/v1/devices/${device.id}/view`);
    } catch (err) {
      if (request !== this.request) return;
      decision.textContent = `Could not open the live view: ${/** @type {Error} */ (err).message}`;
      decision.className = 'live-view-decision denied';
      decision.dataset.reason = 'error';
      return;
    }
    // The codecs go with the first watch message naming this device.
    this.codecs = await supportedCodecs();
    if (request !== this.request || !dialog.open) return;
    const reason = answer && typeof answer.reason === 'string' ? answer.reason : '';
    const allowed = answer && answer.decision === 'allowed';
    decision.textContent = REASONS[/** @type {keyof typeof REASONS} */ (reason)] || (allowed ? 'Allowed' : 'Denied');
    decision.className = `live-view-decision ${allowed ? 'allowed' : 'denied'}`;
    decision.dataset.reason = reason;
    decision.dataset.decision = allowed ? 'allowed' : 'denied';
    if (allowed) {
      this.showing = device.id;
      this.els.screenshot.disabled = false;
      this.onLive(device.id);
      this.#announce();
      this.els.image.alt = `Screen of ${device.hostname}`;
      this.els.canvas.setAttribute('aria-label', `Screen of ${device.hostname}`);
      this.els.screen.hidden = false;
      this.#showPicture(this.grid.thumbnailUrl(device.id));
    }
  }

  /**
   * A device has a new JPEG picture: shows it if that device is on view and
   * no video has come for it (the grid's thumbnails keep coming besides).
   * @param {number} id
   * @param {string} url Blob URL of the picture
   */
  onThumbnail(id, url) {
    if (id === this.showing && this.els.screen.dataset.mode !== 'video') this.#showPicture(url);
  }

  /**
   * A live video picture: decoded onto the canvas if its device is on view.
   * After a gap in the sequence (the server dropped pictures this console
   * could not take) or a decoder error, pictures wait for the next keyframe,
   * which the server asks the device for.
   * @param {number} id
   * @param {VideoPicture} p
   */
  onVideo(id, p) {
    if (id !== this.showing) return;
    const gap = this.lastSeq !== null && p.seq !== ((this.lastSeq + 1) >>> 0);
    this.lastSeq = p.seq;
    if (gap) this.waitKey = true;
    if (this.waitKey && !p.keyframe) return;
    const decoder = this.#decoder();
    if (!decoder) return;
    this.waitKey = false;
    this.els.screen.dataset.mode = 'video';
    this.els.canvas.hidden = false;
    this.els.image.hidden = true;
    try {
      decoder.decode(new EncodedVideoChunk({
        type: p.keyframe ? 'key' : 'delta',
        timestamp: p.ms * 1000,
        data: p.data,
      }));
    } catch {
      this.#dropDecoder();
    }
  }

  /**
   * Shows the previous (-1) or next (1) online device in the grid's order.
   * @param {number} direction
   */
  step(direction) {
    const target = this.#neighbour(direction);
    if (target) this.open(target);
  }

  /** Takes a full-size screenshot of the device on view and offers it for download. */
  async takeScreenshot() {
    const id = this.showing;
    if (id === null) return;
    const { screenshot, shotStatus } = this.els;
    screenshot.disabled = true;
    shotStatus.hidden = false;
    shotStatus.dataset.state = 'pending';
    shotStatus.textContent = 'Taking a screenshot…';
    try {
      const shot = await api('POST', `/api/v1/devices/${id}/screenshots`);
      if (id !== this.showing) return;
      const link = document.createElement('a');
      link.href = `/api/v1/devices/${id}/screenshots/${shot.id}`;
      link.download = `screenshot-${id}-${shot.taken_at}.jpg`;
      link.textContent = `Download (${shot.width}×${shot.height})`;
      shotStatus.dataset.state = 'saved';
      shotStatus.replaceChildren('Screenshot saved to this computer\'s history. ', link);
    } catch (err) {
      if (id !== this.showing) return;
      shotStatus.dataset.state = 'error';
      shotStatus.textContent = `Could not take a screenshot: ${/** @type {Error} */ (err).message}`;
    } finally {
      if (id === this.showing) screenshot.disabled = false;
    }
  }

  /** Closes the view (a pending request's answer is then ignored). */
  close() {
    this.request += 1;
    if (this.els.dialog.open) this.els.dialog.close();
    this.#reset();
  }

  /**
   * The online device `direction` places away from the one on view, in the
   * grid's display order (wrapping round), or null.
   * @param {number} direction
   * @returns {import('./grid.js').Device | null}
   */
  #neighbour(direction) {
    const current = this.current;
    if (!current) return null;
    // The grid's shown order, tiles in the DOM or not.
    const devices = this.grid.shownIds()
      .map((id) => this.grid.device(id))
      .filter((d) => d && (d.online || d.id === current.id));
    const at = devices.findIndex((d) => d?.id === current.id);
    if (at < 0 || devices.length < 2) return null;
    return devices[(at + direction + devices.length) % devices.length] ?? null;
  }

  /** Enables next/previous when there is somewhere to go. */
  #updateSteps() {
    const none = this.#neighbour(1) === null;
    this.els.previous.disabled = none;
    this.els.next.disabled = none;
  }

  /** The decoder for the device on view, made on the first keyframe. @returns {VideoDecoder | null} */
  #decoder() {
    if (this.decoder && this.decoder.state === 'configured') return this.decoder;
    if (typeof VideoDecoder === 'undefined') return null;
    const canvas = this.els.canvas;
    const ctx = canvas.getContext('2d');
    const decoder = new VideoDecoder({
      output: (frame) => {
        if (canvas.width !== frame.displayWidth || canvas.height !== frame.displayHeight) {
          canvas.width = frame.displayWidth;
          canvas.height = frame.displayHeight;
        }
        ctx?.drawImage(frame, 0, 0);
        frame.close();
        this.decoded += 1;
        this.els.screen.dataset.frames = String(this.decoded);
      },
      error: () => this.#dropDecoder(),
    });
    decoder.configure(H264);
    this.decoder = decoder;
    return decoder;
  }

  /** Forgets a failed decoder; the next keyframe starts a new one. */
  #dropDecoder() {
    const d = this.decoder;
    this.decoder = null;
    this.waitKey = true;
    if (d && d.state !== 'closed') d.close();
  }

  /** Tells other modules which device is on view. */
  #announce() {
    this.els.dialog.dispatchEvent(new CustomEvent('lectern-live-device', { detail: this.showing }));
  }

  /**
   * @param {string | null} url
   */
  #showPicture(url) {
    if (url) this.els.image.src = url;
  }

  /** Empties the view (and stops its live stream). */
  #reset() {
    const was = this.showing;
    if (was !== null) this.onLive(null);
    this.showing = null;
    this.#dropDecoder();
    this.lastSeq = null;
    this.decoded = 0;
    const { screen, image, canvas, screenshot, shotStatus } = this.els;
    screen.hidden = true;
    screen.dataset.mode = 'jpeg';
    delete screen.dataset.frames;
    image.hidden = false;
    canvas.hidden = true;
    image.removeAttribute('src');
    screenshot.disabled = true;
    shotStatus.hidden = true;
    shotStatus.textContent = '';
    delete this.els.decision.dataset.decision;
    if (was !== null) this.#announce();
  }
}
