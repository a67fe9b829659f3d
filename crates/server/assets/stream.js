// The live stream: one WebSocket that carries device changes, command results,
// JPEG thumbnails and the live view's video, reconnecting with backoff when it
// drops, except when the server closes it for good because its user has no
// access.

/** Binary frame kind: a JPEG thumbnail. */
const FRAME_THUMBNAIL = 1;
/**
 * Binary frame kind: a live-view H.264 picture; after the device id come
 * width u16, height u16, flags u8 (1: keyframe), sequence u32, ms u32.
 */
const FRAME_VIDEO = 4;
/** Bytes before the payload of a binary frame: kind (1) + device id (8). */
const FRAME_HEADER = 9;
/**
 * Close code the server ends the stream with when its user may not see any
 * computers (`CLOSE_NO_ACCESS` in the server): final, never retried.
 */
export const CLOSE_NO_ACCESS = 4403;

/** Close code for a stream whose session was ended (`signout::CLOSE_SIGNED_OUT`). */
export const CLOSE_SIGNED_OUT = 4401;
/** Bytes before the H.264 of a video frame. */
const VIDEO_HEADER = FRAME_HEADER + 13;

/**
 * @typedef {object} StreamHandlers
 * @property {() => void} [onOpen] the stream is (re)connected
 * @property {() => void} [onClose] the stream dropped; a reconnect is scheduled
 * @property {() => void} [onRefused] the server refused the stream for good (no access); no reconnect
 * @property {(device: import('./grid.js').Device) => void} [onDevice]
 * @property {(result: {command_id: number, device_id: number, status: string, reason: string | null}) => void} [onResult]
 * @property {(deviceId: number, jpeg: Blob) => void} [onThumbnail]
 * @property {(c: {violation_id: number, status: string, assignee: string | null, notes: number}) => void} [onCase] a violation's case changed
 * @property {(deviceId: number, picture: import('./liveview.js').VideoPicture) => void} [onVideo]
 */

export class Stream {
  /**
   * @param {string} path e.g. `/api/v1/stream`
   * @param {StreamHandlers} handlers
   */
  constructor(path, handlers) {
    this.path = path;
    this.handlers = handlers;
    /** @type {WebSocket | null} */
    this.ws = null;
    this.failures = 0;
    /** @type {ReturnType<typeof setTimeout> | null} */
    this.timer = null;
  }

  /** Opens the connection (and keeps reopening it until the page unloads). */
  start() {
    const scheme = location.protocol === 'https:' ? 'wss://' : 'ws://';
    const ws = new WebSocket(scheme + location.host + this.path);
    ws.binaryType = 'arraybuffer';
    this.ws = ws;
    ws.addEventListener('open', () => {
      this.failures = 0;
      this.handlers.onOpen?.();
    });
    ws.addEventListener('message', (event) => this.#onMessage(event));
    ws.addEventListener('close', (event) => {
      if (this.ws !== ws) return;
      this.ws = null;
      if (event.code === CLOSE_NO_ACCESS) {
        this.handlers.onRefused?.();
        return;
      }
      if (event.code === CLOSE_SIGNED_OUT) {
        // The account was disabled, deleted or given a new password.
        location.assign('/login?signed-out');
        return;
      }
      this.handlers.onClose?.();
      this.#scheduleReconnect();
    });
  }

  /** True while the socket is open. */
  get connected() {
    return this.ws !== null && this.ws.readyState === WebSocket.OPEN;
  }

  /**
   * Sends a JSON message if the socket is open.
   * @param {unknown} message
   * @returns {boolean} whether it was sent
   */
  send(message) {
    if (!this.connected) return false;
    /** @type {WebSocket} */ (this.ws).send(JSON.stringify(message));
    return true;
  }

  /** Waits 0.5 s, 1 s, 2 s … (at most 15 s, with jitter) before reconnecting. */
  #scheduleReconnect() {
    const delay = Math.min(15000, 500 * 2 ** this.failures) * (0.8 + Math.random() * 0.4);
    this.failures += 1;
    if (this.timer) clearTimeout(this.timer);
    this.timer = setTimeout(() => {
      this.timer = null;
      this.start();
    }, delay);
  }

  /**
   * Dispatches one message from the server.
   * @param {MessageEvent} event
   */
  #onMessage(event) {
    if (typeof event.data === 'string') {
      let msg;
      try {
        msg = JSON.parse(event.data);
      } catch {
        console.warn('stream: ignoring a message that is not JSON');
        return;
      }
      if (msg.type === 'device' && msg.device) this.handlers.onDevice?.(msg.device);
      else if (msg.type === 'result') this.handlers.onResult?.(msg);
      else if (msg.type === 'case' && msg.case) this.handlers.onCase?.(msg.case);
      // Every event also goes to other modules of the page (alerts.js).
      window.dispatchEvent(new CustomEvent('lectern-stream', { detail: msg }));
      return;
    }
    const buf = /** @type {ArrayBuffer} */ (event.data);
    if (buf.byteLength <= FRAME_HEADER) return;
    const view = new DataView(buf);
    const kind = view.getUint8(0);
    const deviceId = Number(view.getBigInt64(1, false));
    if (kind === FRAME_VIDEO && buf.byteLength > VIDEO_HEADER) {
      this.handlers.onVideo?.(deviceId, {
        width: view.getUint16(9, false),
        height: view.getUint16(11, false),
        keyframe: (view.getUint8(13) & 1) === 1,
        seq: view.getUint32(14, false),
        ms: view.getUint32(18, false),
        data: new Uint8Array(buf, VIDEO_HEADER),
      });
      return;
    }
    if (kind !== FRAME_THUMBNAIL) return;
    this.handlers.onThumbnail?.(deviceId, new Blob([new Uint8Array(buf, FRAME_HEADER)], { type: 'image/jpeg' }));
  }
}
