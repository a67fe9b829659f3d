// Screens on demand in standalone (Chromebook) mode: JPEG thumbnails of the
// active tab of the focused window, sent only while the server asks
// (StartThumbnails … StopThumbnails, as the desktop agent), in the agent's
// binary media frames. The pure parts are exported for Node tests
// (extension/test/screens.test.mjs); the capture loop needs chrome.*.
// Captures go through the extension's one scheduler (capture.js), which
// keeps within the browser's budget and lets evidence go first.

import { CAPTURES_PER_SECOND, PRIORITY, WINDOW_MS, captures } from './capture.js';

/** lectern-proto MediaKind::Thumbnail. */
export const MEDIA_THUMBNAIL = 1;
/** lectern-proto MEDIA_HEADER_LEN: [kind u8][width u16 BE][height u16 BE]. */
export const MEDIA_HEADER_LEN = 5;
/** lectern-proto MAX_BINARY_FRAME: the server drops larger frames. */
export const MAX_MEDIA_FRAME = 1024 * 1024;
/**
 * Chromium allows two captureVisibleTab calls per second per extension
 * (MAX_CAPTURE_VISIBLE_TAB_CALLS_PER_SECOND), shared with evidence capture;
 * faster requests (the live view asks every 100 ms) are clamped to the
 * capture budget, and the scheduler spaces calls a little more (about 1.8
 * frames/s are reached, fewer while evidence is captured).
 */
export const MIN_CAPTURE_INTERVAL_MS = Math.ceil(WINDOW_MS / CAPTURES_PER_SECOND);
/** The agent's bounds on the requested width (crates/agent session.rs). */
export const MIN_WIDTH = 32;
export const MAX_WIDTH = 1920;
/** Slowest interval honoured (the agent's upper clamp). */
export const MAX_INTERVAL_MS = 60_000;
/** A capture step that takes longer is abandoned (the loop must never stall). */
export const CAPTURE_TIMEOUT_MS = 5000;
/** JPEG quality of thumbnails. */
export const JPEG_QUALITY = 0.7;

/**
 * Encodes a media frame as crates/proto `MediaFrame::encode` does.
 * @param {number} kind
 * @param {number} width
 * @param {number} height
 * @param {Uint8Array} payload
 * @returns {Uint8Array}
 */
export function encodeMediaFrame(kind, width, height, payload) {
  if (!(width >= 0 && width <= 0xffff && height >= 0 && height <= 0xffff)) throw new RangeError('size out of range');
  const out = new Uint8Array(MEDIA_HEADER_LEN + payload.length);
  out[0] = kind;
  out[1] = (width >> 8) & 0xff;
  out[2] = width & 0xff;
  out[3] = (height >> 8) & 0xff;
  out[4] = height & 0xff;
  out.set(payload, MEDIA_HEADER_LEN);
  return out;
}

/**
 * The stream the extension runs for a StartThumbnails request: the width the
 * agent would use and the interval the browser allows.
 * @param {{width?: unknown, interval_ms?: unknown}} req
 * @returns {{width: number, intervalMs: number, clamped: boolean}}
 */
export function streamParams(req) {
  const w = Number.isFinite(req.width) ? Math.round(/** @type {number} */ (req.width)) : 320;
  const i = Number.isFinite(req.interval_ms) ? Math.round(/** @type {number} */ (req.interval_ms)) : 1000;
  const width = Math.min(MAX_WIDTH, Math.max(MIN_WIDTH, w));
  const intervalMs = Math.min(MAX_INTERVAL_MS, Math.max(MIN_CAPTURE_INTERVAL_MS, i));
  return { width, intervalMs, clamped: i < MIN_CAPTURE_INTERVAL_MS };
}

/**
 * lectern-proto `Policy::allows_stream`: never with thumbnails off, and under
 * `remote_view = deny` only for a viewer with the bypass right.
 * @param {{thumbnails_allowed?: boolean, remote_view?: string}} policy
 * @param {boolean} privacyBypass
 */
export function allowsStream(policy, privacyBypass) {
  const thumbs = policy.thumbnails_allowed !== false;
  return thumbs && (policy.remote_view !== 'deny' || Boolean(privacyBypass));
}

/** Hosts of the Chrome Web Store, which extensions may never capture. */
const STORE_HOSTS = ['chromewebstore.google.com'];

/**
 * Why the browser will not let an extension capture a tab showing `url`, or
 * null when it will (http, https, and this extension's own pages).
 * @param {string | undefined | null} url
 * @param {string} [ownOrigin] this extension's origin, e.g. chrome-extension://id
 * @returns {string | null}
 */
export function uncapturableReason(url, ownOrigin = '') {
  if (!url) return 'No page is open';
  let u;
  try {
    u = new URL(url);
  } catch {
    return 'No page is open';
  }
  if (ownOrigin && url.startsWith(`${ownOrigin}/`)) return null;
  if (u.protocol === 'http:' || u.protocol === 'https:') {
    if (STORE_HOSTS.includes(u.hostname) || (u.hostname === 'chrome.google.com' && u.pathname.startsWith('/webstore'))) {
      return 'The browser does not allow pictures of the Web Store';
    }
    return null;
  }
  if (/^chrome:\/\/(newtab|new-tab-page)/.test(url) || url.startsWith('chrome-search://') || url === 'about:blank') {
    return 'The student has a new tab open';
  }
  if (u.protocol === 'chrome:' || u.protocol === 'edge:' || u.protocol === 'about:') return `The browser does not allow pictures of its own pages (${u.protocol}//${u.hostname})`;
  if (u.protocol === 'file:') return 'The browser does not allow pictures of local files';
  return `The browser does not allow pictures of ${u.protocol} pages`;
}

/**
 * Scaled size keeping the aspect ratio, at most `width` wide.
 * @param {number} srcW
 * @param {number} srcH
 * @param {number} width
 * @returns {{w: number, h: number}}
 */
export function scaledSize(srcW, srcH, width) {
  if (!(srcW > 0 && srcH > 0)) return { w: width, h: Math.round((width * 9) / 16) };
  const w = Math.min(width, srcW);
  return { w, h: Math.max(1, Math.round((srcH * w) / srcW)) };
}

// ---------------------------------------------------------------------------
// The capture loop (service worker).

/**
 * @typedef {object} Streamer
 * @property {(req: {width?: number, interval_ms?: number, privacy_bypass?: boolean}, policy: object) => boolean} start
 * @property {() => void} stop
 * @property {(policy: object) => void} policyChanged
 * @property {() => boolean} running
 * @property {() => {frames: number, placeholders: number, intervalMs: number}} stats
 */

/**
 * Makes the thumbnail streamer. `send` delivers one binary frame (false when
 * the connection is gone).
 * @param {(frame: Uint8Array) => boolean} send
 * @param {(...args: unknown[]) => void} [log]
 * @returns {Streamer}
 */
export function createStreamer(send, log = () => {}) {
  /** @type {{width: number, intervalMs: number, bypass: boolean} | null} */
  let params = null;
  /** @type {ReturnType<typeof setTimeout> | null} */
  let timer = null;
  let generation = 0;
  const counts = { frames: 0, placeholders: 0 };

  const stop = () => {
    if (params) log('thumbnails: stop');
    params = null;
    generation += 1;
    if (timer) clearTimeout(timer);
    timer = null;
  };

  /** One frame, then the next after the interval (never two at once). */
  const tick = async (gen) => {
    if (gen !== generation || !params) return;
    const started = Date.now();
    try {
      const frame = await withTimeout(captureFrame(params.width), CAPTURE_TIMEOUT_MS, 'capturing the tab');
      if (gen !== generation) return;
      if (frame.placeholder) counts.placeholders += 1;
      else counts.frames += 1;
      if (frame.bytes.length <= MAX_MEDIA_FRAME && !send(frame.bytes)) {
        stop();
        return;
      }
    } catch (err) {
      log(`thumbnail: ${err && err.message ? err.message : err}`);
    }
    if (gen !== generation || !params) return;
    const wait = Math.max(0, params.intervalMs - (Date.now() - started));
    timer = setTimeout(() => tick(gen), wait);
  };

  return {
    start(req, policy) {
      stop();
      if (!allowsStream(policy, Boolean(req.privacy_bypass))) {
        log('pictures of the screen are not allowed by policy; not streaming');
        return false;
      }
      const p = streamParams(req);
      if (p.clamped) log(`thumbnails: ${req.interval_ms} ms asked, ${p.intervalMs} ms is the browser's fastest`);
      params = { width: p.width, intervalMs: p.intervalMs, bypass: Boolean(req.privacy_bypass) };
      log(`thumbnails: ${p.width} px every ${p.intervalMs} ms`);
      const gen = generation;
      timer = setTimeout(() => tick(gen), 0);
      return true;
    },
    stop,
    policyChanged(policy) {
      if (params && !allowsStream(policy, params.bypass)) stop();
    },
    running: () => params !== null,
    stats: () => ({ ...counts, intervalMs: params ? params.intervalMs : 0 }),
  };
}

/**
 * `p`, or a rejection after `ms`.
 * @template T
 * @param {Promise<T>} p
 * @param {number} ms
 * @param {string} what
 * @returns {Promise<T>}
 */
function withTimeout(p, ms, what) {
  let timer;
  const t = new Promise((_, fail) => { timer = setTimeout(() => fail(new Error(`${what} took over ${ms} ms`)), ms); });
  return Promise.race([p, t]).finally(() => clearTimeout(timer));
}

/**
 * The focused window's active tab: a JPEG of it, or a placeholder saying why
 * the browser will not show it.
 * @param {number} width
 * @returns {Promise<{bytes: Uint8Array, placeholder: boolean}>}
 */
export async function captureFrame(width) {
  let win = null;
  try {
    win = await chrome.windows.getLastFocused({ windowTypes: ['normal'] });
  } catch { /* no window */ }
  if (!win || typeof win.id !== 'number') return placeholderFrame(width, 'No browser window is open');
  const [tab] = await chrome.tabs.query({ active: true, windowId: win.id });
  const own = chrome.runtime.getURL('').replace(/\/$/, '');
  const reason = uncapturableReason(tab ? tab.url || tab.pendingUrl : null, own);
  if (reason) return placeholderFrame(width, reason);
  let dataUrl;
  try {
    dataUrl = await captures.capture(PRIORITY.FRAME, win.id);
  } catch (err) {
    // E.g. a page the browser protects.
    return placeholderFrame(width, `The browser did not allow a picture: ${err && err.message ? err.message : err}`.slice(0, 120));
  }
  const bitmap = await createImageBitmap(await (await fetch(dataUrl)).blob());
  const { w, h } = scaledSize(bitmap.width, bitmap.height, width);
  const canvas = new OffscreenCanvas(w, h);
  const ctx = /** @type {OffscreenCanvasRenderingContext2D} */ (canvas.getContext('2d'));
  ctx.drawImage(bitmap, 0, 0, w, h);
  bitmap.close();
  return { bytes: await jpegFrame(canvas, w, h), placeholder: false };
}

/**
 * A grey frame with the reason written on it, so the console never shows a
 * stale picture of a page the student has left.
 * @param {number} width
 * @param {string} reason
 */
export async function placeholderFrame(width, reason) {
  const w = width;
  const h = Math.max(1, Math.round((width * 9) / 16));
  const canvas = new OffscreenCanvas(w, h);
  const ctx = /** @type {OffscreenCanvasRenderingContext2D} */ (canvas.getContext('2d'));
  ctx.fillStyle = '#3a4150';
  ctx.fillRect(0, 0, w, h);
  ctx.fillStyle = '#ffffff';
  ctx.textAlign = 'center';
  ctx.textBaseline = 'middle';
  const size = Math.max(8, Math.round(w / 24));
  ctx.font = `${size}px system-ui, "Noto Sans", sans-serif`;
  const lines = wrap(ctx, reason, w - 2 * size);
  const top = h / 2 - ((lines.length - 1) * size * 1.3) / 2;
  lines.forEach((line, i) => ctx.fillText(line, w / 2, top + i * size * 1.3, w - size));
  return { bytes: await jpegFrame(canvas, w, h), placeholder: true };
}

/** Greedy word wrap to `max` pixels. */
function wrap(ctx, text, max) {
  const lines = [];
  let line = '';
  for (const word of text.split(/\s+/)) {
    const next = line ? `${line} ${word}` : word;
    if (line && ctx.measureText(next).width > max) {
      lines.push(line);
      line = word;
    } else {
      line = next;
    }
  }
  if (line) lines.push(line);
  return lines.slice(0, 4);
}

/** JPEG bytes of the canvas in a thumbnail media frame. */
async function jpegFrame(canvas, w, h) {
  const blob = await canvas.convertToBlob({ type: 'image/jpeg', quality: JPEG_QUALITY });
  return encodeMediaFrame(MEDIA_THUMBNAIL, w, h, new Uint8Array(await blob.arrayBuffer()));
}
