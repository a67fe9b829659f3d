// Safeguarding in Chromebook (standalone) mode, as the desktop agent does it
// (crates/agent/src/safety.rs and session.rs): the school's keyword library
// (ServerMsg::Keywords) is run on the device by lectern-keywords compiled to
// WebAssembly (keywords.wasm, safety-core.js); typed text and each visit's
// title, searches and address are scanned; a match is reported as an
// AgentMsg::Violation followed by evidence frames: the rolling buffer plus a
// screenshot of the moment, within the allowance of the server's welcome.
// Typed text is never logged as activity.
//
// Screen capture: Chromium allows about two captureVisibleTab calls a second
// per extension, shared with live thumbnails; every capture goes through the
// extension's scheduler (capture.js), where the capture at a match (or one
// the server asks for) goes first, then the rolling buffer, then thumbnails.
// The buffer takes one frame every BUFFER_INTERVAL_MS, and only while the
// school's keyword_policies setting is on; a capture the browser refuses is
// skipped (the report goes without that frame).

import { PRIORITY, captures } from './capture.js';
import {
  AGENT_EVIDENCE, EVIDENCE_FRAME_BYTES, evidenceFrames, fitJpeg, instantiateEngine, violationReport,
} from './safety-core.js';

/** Frames in the rolling buffer, and the time between them. */
const BUFFER_FRAMES = 3;
const BUFFER_INTERVAL_MS = 5000;
/** Violations held while offline (the agent's MAX_PENDING), and reports kept in case one is refused. */
const MAX_PENDING = 100;
const SENT_KEPT = 64;
/** Longest typed text scanned (typed.js cuts at 1000 too). */
const MAX_TYPED = 1000;
/** Storage key of the library, kept for offline use as the agent keeps its file. */
const LIBRARY_KEY = 'safetyLibrary';

/**
 * @typedef {import('./safety-core.js').Frame} Frame
 * @typedef {{send: (frame: object) => boolean, sendBinary: (bytes: Uint8Array) => boolean,
 *   connected: () => boolean, user: () => string | null, log: (m: string) => void, warn: (m: string) => void,
 *   wasm?: () => Promise<BufferSource>}} Io
 */

export class Safety {
  /** @param {Io} io */
  constructor(io) {
    this.io = io;
    /** @type {import('./safety-core.js').Engine | null} */
    this.engine = null;
    /** The engine, loading; resolves to null when it cannot run here. */
    this.ready = this.start();
    /** The school's keyword_policies setting. */
    this.enabled = true;
    /** @type {import('./safety-core.js').Allowance | null} */
    this.allowance = null;
    /** @type {Frame[]} */
    this.buffer = [];
    /** @type {{report: ReturnType<typeof violationReport>, frames: Frame[]}[]} */
    this.pending = [];
    /** @type {ReturnType<typeof violationReport>[]} */
    this.sent = [];
    /** No violations are sent before this (ms; the server refused one). */
    this.pausedUntil = 0;
    /** Local ids: time-based so a restarted worker never reuses one. */
    this.nextLocal = Date.now() * 1000;
    /** @type {ReturnType<typeof setInterval> | null} */
    this.bufferTimer = null;
    this.lastCaptureError = '';
    /** @type {Promise<Frame | null> | null} the capture waiting its turn */
    this.queuedCapture = null;
  }

  /** Instantiates the engine and installs the library kept from last time. */
  async start() {
    try {
      const bytes = this.io.wasm ? await this.io.wasm()
        : await (await fetch(chrome.runtime.getURL('keywords.wasm'))).arrayBuffer();
      this.engine = await instantiateEngine(bytes);
    } catch (err) {
      this.io.warn(`keyword engine unavailable: ${err && err.message ? err.message : err}`);
      return null;
    }
    const { [LIBRARY_KEY]: kept } = await chrome.storage.local.get(LIBRARY_KEY);
    if (kept && typeof kept === 'object') this.install(kept);
    return this.engine;
  }

  /** Capabilities to announce: keyword_scan once the engine runs. */
  async capabilities() {
    return (await this.ready) ? ['keyword_scan'] : [];
  }

  /**
   * The school's policy: keyword_policies turns scanning and the buffer on or off.
   * @param {{keyword_policies?: boolean}} policy
   */
  setPolicy(policy) {
    this.enabled = policy.keyword_policies !== false;
    if (!this.enabled) {
      this.buffer = [];
      if (this.bufferTimer) clearInterval(this.bufferTimer);
      this.bufferTimer = null;
    } else if (!this.bufferTimer) {
      this.bufferTimer = setInterval(() => this.keepFrame(), BUFFER_INTERVAL_MS);
    }
  }

  /**
   * A welcome: the evidence allowance for this session; held violations go.
   * @param {{evidence?: import('./safety-core.js').Allowance}} welcome
   */
  onWelcome(welcome) {
    this.allowance = welcome.evidence || null;
    this.flush();
  }

  /**
   * A server frame this module handles; false for the others.
   * @param {Record<string, any>} msg
   */
  onFrame(msg) {
    switch (msg.type) {
      case 'keywords':
        this.onKeywords(msg.library);
        return true;
      case 'evidence_request':
        this.onEvidenceRequest(msg.violation_id, msg.allowance || this.allowance);
        return true;
      case 'refused':
        return this.onRefused(msg);
      default:
        return false;
    }
  }

  /**
   * The Chromebook leaves its school for another: the evidence of the
   * last one's screens and what was sent to it go (the caller waits until
   * no violation is held). The next school's library replaces this one's
   * when its server sends it.
   */
  leaveSchool() {
    this.buffer = [];
    this.sent = [];
    this.allowance = null;
    this.pausedUntil = 0;
  }

  /** @param {object} library */
  async onKeywords(library) {
    if (!(await this.ready)) return;
    if (this.install(library)) await chrome.storage.local.set({ [LIBRARY_KEY]: library });
  }

  /** @param {object} library */
  install(library) {
    const r = /** @type {import('./safety-core.js').Engine} */ (this.engine).load(library);
    if (!r.ok) {
      this.io.warn(`ignoring an unreadable keyword library: ${r.error}`);
      return false;
    }
    this.io.log(`keyword library installed (${r.terms} terms)`);
    return true;
  }

  /**
   * Text typed into a page: scanned, never logged.
   * @param {string} text
   * @param {string | null} url the page
   * @param {number | undefined} windowId its window (captured at the match)
   */
  async typed(text, url, windowId) {
    const request = url ? { text: text.slice(0, MAX_TYPED), url } : { text: text.slice(0, MAX_TYPED) };
    await this.check(request, windowId);
  }

  /**
   * A visit: its title, searches and address (the server does not scan a
   * device that announces keyword_scan).
   * @param {Record<string, unknown>} event an ActivityEvent
   */
  async activity(event) {
    await this.check({ event }, undefined);
  }

  /**
   * Scans one request and holds a violation per match with its evidence.
   * @param {Record<string, unknown>} request
   * @param {number | undefined} windowId
   */
  async check(request, windowId) {
    if (!this.enabled || !(await this.ready) || !this.engine || !this.engine.terms) return;
    const r = this.engine.scan(request);
    if (!r.ok) {
      this.io.warn(`keyword scan: ${r.error}`);
      return;
    }
    if (!r.matches.length) return;
    const now = await this.capture(windowId, PRIORITY.MATCH);
    for (const m of r.matches) {
      const report = violationReport(m, this.nextLocal++, this.io.user(), Date.now());
      const frames = now ? [...this.buffer, now] : [...this.buffer];
      this.io.warn(`keyword violation: ${m.term} (${m.category})`);
      this.pending.push({ report, frames });
      if (this.pending.length > MAX_PENDING) this.pending.shift();
    }
    this.flush();
  }

  /** Sends held violations, each followed by its evidence frames. */
  flush() {
    if (Date.now() < this.pausedUntil) return;
    while (this.pending.length && this.io.connected()) {
      const { report, frames } = this.pending[0];
      if (!this.io.send({ type: 'violation', ...report })) return;
      this.sent.push(report);
      if (this.sent.length > SENT_KEPT) this.sent.shift();
      for (const f of evidenceFrames(BigInt(report.local_id) | AGENT_EVIDENCE, frames, this.allowance)) this.io.sendBinary(f);
      this.pending.shift();
    }
  }

  /**
   * A refused violation waits out the server's pause and goes again (its
   * evidence was refused with it, as on the desktop); refused evidence is dropped.
   * @param {Record<string, any>} msg
   */
  onRefused(msg) {
    if (msg.frame.kind === 'evidence') {
      this.io.warn(`server refused evidence: ${msg.message}`);
      return true;
    }
    if (msg.frame.kind !== 'violation') return false;
    const wait = Number.isSafeInteger(msg.retry_after_ms) ? msg.retry_after_ms : 60_000;
    this.pausedUntil = Date.now() + wait;
    const i = this.sent.findIndex((r) => r.local_id === msg.frame.local_id);
    if (msg.code === 'rate_limited' && i >= 0) {
      this.pending.unshift({ report: this.sent[i], frames: [] });
      this.sent.splice(i, 1);
    }
    this.io.warn(`server refused a violation report: ${msg.message}`);
    if (wait > 0) setTimeout(() => this.flush(), wait + 10);
    return true;
  }

  /**
   * The server found a violation in this device's activity and asks for the
   * evidence: the buffer and a frame of now.
   * @param {number} violationId
   * @param {import('./safety-core.js').Allowance | null} allowance
   */
  async onEvidenceRequest(violationId, allowance) {
    if (!this.enabled) return;
    const now = await this.capture(undefined, PRIORITY.MATCH);
    const frames = now ? [...this.buffer, now] : [...this.buffer];
    for (const f of evidenceFrames(BigInt(violationId), frames, allowance)) this.io.sendBinary(f);
  }

  /** One frame of the rolling buffer. */
  async keepFrame() {
    if (!this.enabled || !this.engine || !this.engine.terms) return;
    const f = await this.capture(undefined, PRIORITY.BUFFER);
    if (!f) return;
    this.buffer.push(f);
    while (this.buffer.length > BUFFER_FRAMES) this.buffer.shift();
  }

  /**
   * A JPEG of the visible tab of `windowId` (default: the focused window),
   * at its own size up to EVIDENCE_MAX_WIDTH, at the best quality within the
   * allowance (see fitJpeg); null when the browser refuses (chrome:// pages).
   * @param {number | undefined} windowId
   * @param {number} priority PRIORITY.MATCH or PRIORITY.BUFFER
   * @returns {Promise<Frame | null>}
   */
  capture(windowId, priority) {
    // Matches arriving while a capture waits share it: at most one queued,
    // whatever a page sends.
    if (this.queuedCapture) return this.queuedCapture;
    const next = this.captureNow(windowId, priority);
    this.queuedCapture = next;
    return next;
  }

  /**
   * @param {number | undefined} windowId
   * @param {number} priority
   */
  async captureNow(windowId, priority) {
    // Once the call starts, a later match needs a capture of its own.
    let began = false;
    const onStart = () => {
      began = true;
      this.queuedCapture = null;
    };
    try {
      const url = await captures.capture(priority, windowId, { onStart });
      return await this.scale(url);
    } catch (err) {
      if (!began) this.queuedCapture = null;
      // chrome:// pages refuse, and the scheduler drops a capture when too many
      // wait; said once per reason, not every 5 s.
      const why = String(err && err.message ? err.message : err);
      if (why !== this.lastCaptureError) this.io.log(`no screenshot: ${why}`);
      this.lastCaptureError = why;
      return null;
    }
  }

  /**
   * The capture re-encoded to fit the allowance: readable (the tab's own
   * width up to 1920 px) at the best quality that fits.
   * @param {string} dataUrl
   * @returns {Promise<Frame | null>}
   */
  async scale(dataUrl) {
    const bitmap = await createImageBitmap(await (await fetch(dataUrl)).blob());
    const max = this.allowance ? this.allowance.max_frame_bytes : EVIDENCE_FRAME_BYTES;
    try {
      return await fitJpeg(bitmap.width, bitmap.height, max, async (width, height, quality) => {
        const canvas = new OffscreenCanvas(width, height);
        /** @type {OffscreenCanvasRenderingContext2D} */ (canvas.getContext('2d')).drawImage(bitmap, 0, 0, width, height);
        const blob = await canvas.convertToBlob({ type: 'image/jpeg', quality });
        return new Uint8Array(await blob.arrayBuffer());
      });
    } finally {
      bitmap.close();
    }
  }
}
