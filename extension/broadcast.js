// Broadcasts in standalone (Chromebook) mode: between `broadcast_start` and
// `broadcast_stop` a full-screen window of the extension (broadcast.html)
// shows the frames the server sends. The window gets the newest frame only
// when it has drawn the last one (frames in between are dropped, never
// queued); a window the student closes while the broadcast runs opens again.
// State is reported as DeviceState.broadcast_shown.

/** Largest media frame the server sends (lectern-proto MAX_BINARY_FRAME). */
export const MAX_FRAME = 1024 * 1024;
/** Media frame header: kind u8, width u16, height u16. */
const HEADER = 5;
/** Media kind of a broadcast frame. */
const KIND_BROADCAST = 2;

/**
 * The JPEG of a binary broadcast frame from the server, or why not.
 * @param {ArrayBuffer} buf
 * @returns {{ok: true, jpeg: Uint8Array} | {ok: false, error: string}}
 */
export function parseBroadcastFrame(buf) {
  if (!(buf instanceof ArrayBuffer)) return { ok: false, error: 'not binary' };
  if (buf.byteLength > MAX_FRAME) return { ok: false, error: `frame of ${buf.byteLength} bytes is over ${MAX_FRAME}` };
  const bytes = new Uint8Array(buf);
  if (bytes.length < HEADER + 3) return { ok: false, error: 'frame too short' };
  if (bytes[0] !== KIND_BROADCAST) return { ok: false, error: `unexpected media kind ${bytes[0]}` };
  const jpeg = bytes.subarray(HEADER);
  if (jpeg[0] !== 0xff || jpeg[1] !== 0xd8) return { ok: false, error: 'broadcast frame is not a JPEG image' };
  return { ok: true, jpeg };
}

/**
 * Base64 of bytes (runtime ports carry JSON, not binary).
 * @param {Uint8Array} bytes
 */
export function toBase64(bytes) {
  let s = '';
  for (let i = 0; i < bytes.length; i += 0x8000) s += String.fromCharCode(...bytes.subarray(i, i + 0x8000));
  return btoa(s);
}

/**
 * @typedef {object} BroadcastDeps
 * @property {() => void} changed runs when broadcast_shown may have changed
 * @property {(...a: unknown[]) => void} warn
 * @property {{create: (o: object) => Promise<{id?: number}>, remove: (id: number) => Promise<void>}} windows chrome.windows
 * @property {string} pageUrl the broadcast page's URL
 */

/**
 * Makes the broadcast controller of the service worker.
 * @param {BroadcastDeps} deps
 */
export function createBroadcast({ changed, warn, windows, pageUrl }) {
  /** The running broadcast's title, or null. @type {string | null} */
  let title = null;
  /** @type {number | null} */
  let windowId = null;
  /** The page's port, and whether it is ready for a frame. */
  /** @type {{postMessage: (m: unknown) => void} | null} */
  let port = null;
  let ready = false;
  /** The newest frame not yet sent to the page (base64). @type {string | null} */
  let pending = null;
  let opening = false;

  async function open() {
    if (windowId !== null || opening || title === null) return;
    opening = true;
    try {
      const win = await windows.create({ url: pageUrl, type: 'popup', state: 'fullscreen', focused: true });
      windowId = typeof win.id === 'number' ? win.id : null;
      // Stopped while the window opened.
      if (title === null && windowId !== null) await close();
    } catch (err) {
      warn(`broadcast: cannot open its window: ${err && err.message ? err.message : err}`);
    } finally {
      opening = false;
      changed();
    }
  }

  async function close() {
    const id = windowId;
    windowId = null;
    port = null;
    ready = false;
    pending = null;
    if (id !== null) await windows.remove(id).catch(() => {});
  }

  function flush() {
    if (!port || !ready || pending === null) return;
    port.postMessage({ type: 'frame', jpeg: pending });
    pending = null;
    ready = false;
  }

  return {
    /** Whether a broadcast is on screen. */
    get shown() {
      return title !== null && windowId !== null;
    },

    /**
     * `broadcast_start`: shows (or retitles) the broadcast window.
     * @param {unknown} t
     */
    async start(t) {
      title = typeof t === 'string' ? t.slice(0, 200) : '';
      if (port) port.postMessage({ type: 'title', title });
      await open();
    },

    /** `broadcast_stop`, or the session ended: closes the window. */
    async stop() {
      if (title === null && windowId === null) return;
      title = null;
      await close();
      changed();
    },

    /**
     * A binary frame from the server.
     * @param {ArrayBuffer} buf
     */
    frame(buf) {
      if (title === null) return;
      const f = parseBroadcastFrame(buf);
      if (!f.ok) {
        warn(`broadcast: skipping a frame: ${f.error}`);
        return;
      }
      pending = toBase64(f.jpeg);
      flush();
    },

    /**
     * A page connected (runtime.onConnect).
     * @param {{name: string, postMessage: (m: unknown) => void, onMessage: {addListener: (f: (m: any) => void) => void}, onDisconnect: {addListener: (f: () => void) => void}, disconnect: () => void}} p
     */
    onConnect(p) {
      if (p.name !== 'broadcast') return;
      if (title === null) {
        p.disconnect();
        return;
      }
      port = p;
      ready = true;
      p.postMessage({ type: 'title', title });
      p.onMessage.addListener((m) => {
        if (port === p && m && m.type === 'ready') {
          ready = true;
          flush();
        }
      });
      p.onDisconnect.addListener(() => {
        if (port === p) port = null;
      });
      flush();
    },

    /**
     * A window closed: the broadcast's opens again while it runs.
     * @param {number} id
     */
    async onWindowRemoved(id) {
      if (id !== windowId) return;
      windowId = null;
      port = null;
      changed();
      await open();
    },
  };
}
