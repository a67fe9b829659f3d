// Broadcasts from the console: the teacher's screen (captured with
// getDisplayMedia, drawn to a canvas, JPEG-encoded in the browser and uploaded
// over a stream socket of its own) or a student's screen (relayed by the
// server), the "who is receiving" panel and the toolbar indicator.

import { api, csrfToken } from './api.js';
import { $, el, hideNotice, showNotice } from './page.js';

/** Upload kind byte: `[2][broadcast id u64 BE][JPEG]` (lectern-proto console). */
const UPLOAD_KIND = 2;
/** Bytes before the JPEG of an upload. */
const UPLOAD_HEADER = 9;
/** Largest JPEG the server passes on (a media frame of 1 MiB less its 5-byte header). */
const MAX_JPEG = 1024 * 1024 - 5;
/** Widest frame sent: agents refuse frames over 3840×2160; 1920 keeps bytes modest. */
const MAX_WIDTH = 1920;
/** Fastest frame interval (ms): the server passes at most 15 frames a second. */
const MIN_INTERVAL = 70;
/** Slowest frame interval (ms) when the connection is behind. */
const MAX_INTERVAL = 1000;
/** JPEG quality bounds and start. */
const QUALITY = { min: 0.35, max: 0.8, start: 0.7 };
/** How often the receiving list is refreshed while a broadcast runs (ms). */
const POLL_MS = 1500;

/** Each receiving state as the panel says it. */
const STATE_LABELS = {
  showing: 'Showing',
  starting: 'Starting…',
  failed: 'Failed: not on screen',
  offline: 'Offline: will show when back',
  not_supported: "Can't show broadcasts",
};

/**
 * @typedef {object} Receiver
 * @property {number} device_id
 * @property {string} hostname
 * @property {'showing' | 'starting' | 'failed' | 'offline' | 'not_supported'} state
 */

/**
 * @typedef {object} Broadcast
 * @property {number} id
 * @property {string} title
 * @property {{type: string, id?: number | string, hostname?: string} | null} source
 * @property {number[]} targets
 * @property {string} started_by
 * @property {Receiver[]} receivers
 */

/**
 * What the broadcast code needs of the grid.
 * @typedef {object} GridLike
 * @property {() => number[]} selectedIds
 * @property {(id: number) => (import('./grid.js').Device | null)} device
 */

/**
 * Sends the teacher's screen: draws the captured video to a canvas at a
 * rate and quality that keep up with the connection (a frame is dropped,
 * never queued, while the previous one is still being sent) and uploads each
 * JPEG for broadcast `id`.
 */
class ScreenSender {
  /**
   * @param {number} id the broadcast
   * @param {MediaStream} media the captured screen
   * @param {() => void} onEnded the teacher stopped sharing in the browser
   */
  constructor(id, media, onEnded) {
    this.id = id;
    this.media = media;
    this.interval = 100;
    this.quality = QUALITY.start;
    /** Frames sent in a row without falling behind. */
    this.smooth = 0;
    this.sent = 0;
    this.dropped = 0;
    this.stopped = false;
    this.video = document.createElement('video');
    this.video.muted = true;
    this.video.playsInline = true;
    this.video.srcObject = media;
    this.canvas = document.createElement('canvas');
    /** @type {WebSocket | null} */
    this.ws = null;
    /** @type {ReturnType<typeof setTimeout> | null} */
    this.timer = null;
    for (const track of media.getVideoTracks()) track.addEventListener('ended', onEnded);
  }

  /** Starts the video and the upload socket, then the frame loop. */
  async start() {
    this.#connect();
    await this.video.play();
    this.#schedule();
  }

  /** Stops capturing and sending. */
  stop() {
    this.stopped = true;
    if (this.timer) clearTimeout(this.timer);
    for (const track of this.media.getTracks()) track.stop();
    this.video.srcObject = null;
    this.ws?.close();
  }

  /** Opens the upload socket, again after it drops while broadcasting. */
  #connect() {
    const scheme = location.protocol === 'https:' ? 'wss://' : 'ws://';
    const ws = new WebSocket(`${scheme}${location.host}/api/v1/stream`);
    ws.binaryType = 'arraybuffer';
    ws.addEventListener('close', () => {
      if (this.ws === ws && !this.stopped) setTimeout(() => this.#connect(), 1000);
    });
    this.ws = ws;
  }

  #schedule() {
    if (!this.stopped) this.timer = setTimeout(() => this.#tick(), this.interval);
  }

  /** One frame: sent if the socket is free, else dropped and the pace eased. */
  async #tick() {
    const ws = this.ws;
    if (!ws || ws.readyState !== WebSocket.OPEN || this.video.videoWidth === 0) {
      this.#schedule();
      return;
    }
    if (ws.bufferedAmount > 0) {
      this.#behind();
      this.#schedule();
      return;
    }
    const jpeg = await this.#encode();
    if (jpeg && jpeg.byteLength > MAX_JPEG) {
      this.#behind();
    } else if (jpeg && !this.stopped) {
      const frame = new Uint8Array(UPLOAD_HEADER + jpeg.byteLength);
      const head = new DataView(frame.buffer);
      head.setUint8(0, UPLOAD_KIND);
      head.setBigUint64(1, BigInt(this.id), false);
      frame.set(new Uint8Array(jpeg), UPLOAD_HEADER);
      ws.send(frame);
      this.sent += 1;
      this.#keptUp();
    }
    this.#schedule();
  }

  /**
   * The current video frame as a JPEG, scaled to at most MAX_WIDTH.
   * @returns {Promise<ArrayBuffer | null>}
   */
  async #encode() {
    const { videoWidth: w, videoHeight: h } = this.video;
    const scale = Math.min(1, MAX_WIDTH / w);
    this.canvas.width = Math.round(w * scale);
    this.canvas.height = Math.round(h * scale);
    const ctx = this.canvas.getContext('2d');
    if (!ctx) return null;
    ctx.drawImage(this.video, 0, 0, this.canvas.width, this.canvas.height);
    const blob = await new Promise((resolve) => {
      this.canvas.toBlob(resolve, 'image/jpeg', this.quality);
    });
    return blob ? /** @type {Blob} */ (blob).arrayBuffer() : null;
  }

  /** The connection is behind: drop this frame, lower quality and rate. */
  #behind() {
    this.dropped += 1;
    this.smooth = 0;
    this.quality = Math.max(QUALITY.min, this.quality - 0.05);
    this.interval = Math.min(MAX_INTERVAL, Math.round(this.interval * 1.25));
  }

  /** A frame went out on a free socket: after a run of them, speed up again. */
  #keptUp() {
    this.smooth += 1;
    if (this.smooth < 10) return;
    this.smooth = 0;
    this.interval = Math.max(MIN_INTERVAL, Math.round(this.interval * 0.85));
    this.quality = Math.min(QUALITY.max, this.quality + 0.02);
  }
}

/** The toolbar buttons, the student's-screen dialog and the receiving panel. */
export class Broadcasts {
  /** @param {GridLike} grid */
  constructor(grid) {
    this.grid = grid;
    /** The broadcast the panel shows. @type {Broadcast | null} */
    this.current = null;
    /** This page's upload of the teacher's screen. @type {ScreenSender | null} */
    this.sender = null;
    /** @type {ReturnType<typeof setTimeout> | null} */
    this.poller = null;
    this.els = {
      myScreen: /** @type {HTMLButtonElement} */ ($('bc-my-screen')),
      studentScreen: /** @type {HTMLButtonElement} */ ($('bc-student-screen')),
      indicator: $('bc-indicator'),
      panel: $('bc-panel'),
      title: $('bc-title'),
      summary: $('bc-summary'),
      receivers: $('bc-receivers'),
      stop: /** @type {HTMLButtonElement} */ ($('bc-stop')),
      dialog: /** @type {HTMLDialogElement} */ ($('bc-dialog')),
      source: /** @type {HTMLSelectElement} */ ($('bc-source')),
      targets: $('bc-dialog-targets'),
      error: $('bc-dialog-error'),
      start: /** @type {HTMLButtonElement} */ ($('bc-start')),
      cancel: /** @type {HTMLButtonElement} */ ($('bc-cancel')),
    };
    const e = this.els;
    e.myScreen.addEventListener('click', () => this.showMyScreen());
    e.studentScreen.addEventListener('click', () => this.openStudentDialog());
    e.stop.addEventListener('click', () => this.stop());
    e.cancel.addEventListener('click', () => e.dialog.close());
    e.source.addEventListener('change', () => this.#describeTargets());
    e.dialog.addEventListener('submit', (event) => {
      event.preventDefault();
      this.#startFromStudent();
    });
    // Leaving the page ends the teacher's screen it was sending.
    window.addEventListener('pagehide', () => this.#endOnLeave());
  }

  /** Shows the buttons the user's rights allow, then what is running. */
  async init() {
    let me;
    try {
      me = await api('GET', '/api/v1/me');
    } catch {
      return;
    }
    const rights = me?.rights || {};
    const has = (/** @type {string} */ f) => rights.all || (rights.features || []).includes(f);
    if (!has('command.broadcast')) return;
    this.els.myScreen.hidden = false;
    this.els.studentScreen.hidden = !has('live_view');
    await this.refresh();
  }

  /** "Show my screen": asks the browser for a screen, then starts the broadcast. */
  async showMyScreen() {
    const ids = this.grid.selectedIds();
    if (ids.length === 0) {
      showNotice('Select at least one computer first', 'info');
      return;
    }
    if (!navigator.mediaDevices?.getDisplayMedia) {
      showNotice("This browser can't share its screen. Try a current Chrome, Edge or Firefox.");
      return;
    }
    let media;
    try {
      media = await navigator.mediaDevices.getDisplayMedia({ video: { frameRate: 15 }, audio: false });
    } catch {
      showNotice('Screen sharing was cancelled, so nothing is shown.', 'info');
      return;
    }
    let b;
    try {
      await this.#stopRunning();
      b = await api('POST', '/api/v1/broadcasts', { devices: ids, source: { type: 'console' } });
    } catch (err) {
      for (const track of media.getTracks()) track.stop();
      showNotice(err.message);
      return;
    }
    hideNotice();
    this.sender = new ScreenSender(b.id, media, () => this.stop());
    this.#show({ ...b, receivers: [] });
    try {
      await this.sender.start();
    } catch {
      showNotice('Your screen could not be captured; the broadcast is stopped.');
      await this.stop();
    }
  }

  /** "Show a student's screen…": choose whose among the selected computers. */
  openStudentDialog() {
    const ids = this.grid.selectedIds();
    const online = ids.filter((id) => this.grid.device(id)?.online);
    if (ids.length < 2 || online.length === 0) {
      showNotice("Select the student's computer and the computers to show it on", 'info');
      return;
    }
    const e = this.els;
    e.source.replaceChildren(...online.map((id) => {
      const d = /** @type {import('./grid.js').Device} */ (this.grid.device(id));
      const user = d.state?.user;
      const option = /** @type {HTMLOptionElement} */ (el('option', '', user ? `${user} on ${d.hostname}` : d.hostname));
      option.value = String(id);
      return option;
    }));
    e.error.hidden = true;
    this.#describeTargets();
    e.dialog.showModal();
  }

  /** Says how many computers the chosen screen goes to. */
  #describeTargets() {
    const n = this.#studentTargets().length;
    this.els.targets.textContent = `It will be shown full screen on the ${n} other selected computer${n === 1 ? '' : 's'}.`;
  }

  /** The selected computers but the chosen source. */
  #studentTargets() {
    const source = Number(this.els.source.value);
    return this.grid.selectedIds().filter((id) => id !== source);
  }

  async #startFromStudent() {
    const e = this.els;
    const source = Number(e.source.value);
    const devices = this.#studentTargets();
    e.start.disabled = true;
    e.error.hidden = true;
    // The student may be asked first; say so while we wait.
    e.targets.textContent = 'Waiting for the student’s answer if they are asked…';
    try {
      await this.#stopRunning();
      const b = await api('POST', '/api/v1/broadcasts', { devices, source: { type: 'device', id: source } });
      e.dialog.close();
      this.#show({ ...b, receivers: [] });
    } catch (err) {
      e.error.textContent = err.message;
      e.error.hidden = false;
      this.#describeTargets();
    } finally {
      e.start.disabled = false;
    }
  }

  /** Ends the broadcast in the panel (and this page's upload). */
  async stop() {
    const b = this.current;
    this.sender?.stop();
    this.sender = null;
    if (!b) return;
    try {
      await api('DELETE', `/api/v1/broadcasts/${b.id}`);
    } catch (err) {
      if (err.status !== 404) {
        showNotice(`Could not stop the broadcast: ${err.message}`);
        return;
      }
    }
    this.#show(null);
    await this.refresh();
  }

  /** One broadcast at a time from the panel: a new one replaces the shown one. */
  async #stopRunning() {
    if (this.current) await this.stop();
  }

  /** Sends the stop without waiting, as the page goes away. */
  #endOnLeave() {
    if (!this.sender || !this.current) return;
    fetch(`/api/v1/broadcasts/${this.current.id}`, {
      method: 'DELETE',
      keepalive: true,
      credentials: 'same-origin',
      headers: { 'X-CSRF-Token': csrfToken() },
    });
  }

  /** Reloads the running broadcasts and shows the current one (or the first). */
  async refresh() {
    if (this.poller) clearTimeout(this.poller);
    this.poller = null;
    /** @type {Broadcast[]} */
    let list;
    try {
      list = (await api('GET', '/api/v1/broadcasts')) || [];
    } catch {
      list = this.current ? [this.current] : [];
    }
    const mine = list.find((b) => b.id === this.current?.id) || list[0] || null;
    if (!mine && this.sender) {
      // Stopped elsewhere (another console, an administrator).
      this.sender.stop();
      this.sender = null;
    }
    this.#show(mine);
  }

  /**
   * Shows a broadcast in the panel and the indicator, or hides both.
   * @param {Broadcast | null} b
   */
  #show(b) {
    this.current = b;
    const e = this.els;
    e.panel.hidden = !b;
    e.indicator.hidden = !b;
    if (this.poller) clearTimeout(this.poller);
    this.poller = null;
    if (!b) return;
    const from = b.source?.type === 'device' && b.source.hostname ? ` from ${b.source.hostname}` : '';
    e.title.textContent = `Broadcasting ${b.title}${from}`;
    const counts = new Map();
    for (const r of b.receivers) counts.set(r.state, (counts.get(r.state) || 0) + 1);
    const showing = counts.get('showing') || 0;
    e.indicator.textContent = `Broadcasting: ${showing} of ${b.receivers.length} showing`;
    e.summary.textContent = [...counts]
      .map(([state, n]) => `${n} ${STATE_LABELS[state]?.toLowerCase() || state}`)
      .join(' · ') || 'Starting…';
    e.receivers.replaceChildren(...b.receivers.map((r) => {
      const li = el('li', 'bc-receiver');
      li.dataset.state = r.state;
      li.dataset.deviceId = String(r.device_id);
      li.append(el('span', 'bc-host', r.hostname), el('span', 'bc-state', STATE_LABELS[r.state] || r.state));
      return li;
    }));
    this.poller = setTimeout(() => this.refresh(), POLL_MS);
  }
}
