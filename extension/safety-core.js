// The pure parts of safeguarding in the browser (no chrome.* calls; Node tests
// them in extension/test/safety.test.mjs):
// - the keyword engine: crates/keywords-wasm, i.e. lectern-keywords compiled
//   to WebAssembly, driven through its C ABI. Matching is never done in
//   JavaScript: the browser finds exactly what the desktop agent finds;
// - violation reports and evidence frames as lectern-proto defines them
//   (AgentMsg::Violation, MediaKind::Evidence with its Evidence header).

/** lectern-proto AGENT_EVIDENCE: marks evidence for a violation the device reported. */
export const AGENT_EVIDENCE = 1n << 63n;
/** lectern-proto MediaKind::Evidence. */
export const MEDIA_EVIDENCE = 3;
/** Media header (kind, width, height) plus the Evidence header (id, index, total). */
export const EVIDENCE_HEADER_LEN = 5 + 10;
/** Largest binary frame the server accepts (lectern-proto MAX_BINARY_FRAME). */
export const MAX_BINARY_FRAME = 1024 * 1024;

/**
 * @typedef {{source: string, term: string, category: string, severity: number,
 *   match_type: string, matched: string, start: number, end: number, context: string}} Found
 * @typedef {{max_frames: number, max_frame_bytes: number}} Allowance
 * @typedef {{width: number, height: number, jpeg: Uint8Array}} Frame
 */

/**
 * Instantiates the engine from the module's bytes.
 * @param {BufferSource} bytes keywords.wasm
 */
export async function instantiateEngine(bytes) {
  const { instance } = await WebAssembly.instantiate(bytes, {});
  return new Engine(/** @type {any} */ (instance.exports));
}

/** One instance of crates/keywords-wasm. */
export class Engine {
  /** @param {{memory: WebAssembly.Memory, lectern_alloc: Function, lectern_free: Function, lectern_load: Function, lectern_scan: Function}} x */
  constructor(x) {
    this.x = x;
    /** Terms in the installed library; 0 before one is loaded. */
    this.terms = 0;
  }

  /**
   * Calls `f(ptr, len)` on a copy of `input` and returns its JSON result.
   * @param {Function} f
   * @param {string} input
   */
  call(f, input) {
    const bytes = new TextEncoder().encode(input);
    const ptr = this.x.lectern_alloc(bytes.length);
    new Uint8Array(this.x.memory.buffer, ptr, bytes.length).set(bytes);
    const out = f(ptr, bytes.length);
    this.x.lectern_free(ptr, bytes.length);
    // Views are made after the calls: the memory may have grown.
    const len = new DataView(this.x.memory.buffer).getUint32(out, true);
    const json = new TextDecoder().decode(new Uint8Array(this.x.memory.buffer, out + 4, len));
    this.x.lectern_free(out, 4 + len);
    return JSON.parse(json);
  }

  /**
   * Installs a library (ServerMsg::Keywords JSON, or CSV); a bad one leaves the previous one.
   * @param {unknown} library an object, or CSV text
   * @returns {{ok: true, terms: number} | {ok: false, error: string}}
   */
  load(library) {
    const r = this.call(this.x.lectern_load, typeof library === 'string' ? library : JSON.stringify(library));
    if (typeof r.error === 'string') return { ok: false, error: r.error };
    this.terms = r.terms;
    return { ok: true, terms: r.terms };
  }

  /**
   * Scans typed text (`{text, source?, url?}`) or an activity event (`{event}`).
   * @param {Record<string, unknown>} request
   * @returns {{ok: true, matches: Found[]} | {ok: false, error: string}}
   */
  scan(request) {
    const r = this.call(this.x.lectern_scan, JSON.stringify(request));
    if (typeof r.error === 'string') return { ok: false, error: r.error };
    return { ok: true, matches: r.matches };
  }
}

/**
 * The AgentMsg::Violation of a match, as lectern-agent's Safety::report builds it.
 * @param {Found} m
 * @param {number} localId
 * @param {string | null} user
 * @param {number} at ms
 */
export function violationReport(m, localId, user, at) {
  return {
    local_id: localId,
    term: m.term,
    category: m.category,
    severity: m.severity,
    matched: m.matched,
    context: m.context,
    source: m.source,
    user,
    at,
  };
}

/** Widest evidence frame (lectern-proto's EVIDENCE_MAX_WIDTH): the tab at its own size up to this. */
export const EVIDENCE_MAX_WIDTH = 1920;
/** The server's default largest evidence JPEG (EVIDENCE_FRAME_BYTES), used before a welcome says otherwise. */
export const EVIDENCE_FRAME_BYTES = 768 * 1024;
/** JPEG qualities tried, best first, as the agent's evidence::fit_jpeg. */
export const EVIDENCE_QUALITIES = Object.freeze([0.8, 0.65, 0.5, 0.35]);
/** Widths tried when no quality fits at the tab's own width: readable first, the old 640 px last. */
export const EVIDENCE_FALLBACK_WIDTHS = Object.freeze([1280, 960, 640]);

/**
 * The sizes to try for a capture of `width` × `height`, best first: the tab
 * at its own size (up to EVIDENCE_MAX_WIDTH) at each quality, then narrower.
 * @param {number} width
 * @param {number} height
 * @returns {{width: number, height: number, quality: number}[]}
 */
export function evidenceSizes(width, height) {
  const first = Math.min(EVIDENCE_MAX_WIDTH, Math.max(1, Math.round(width)));
  const widths = [first, ...EVIDENCE_FALLBACK_WIDTHS.filter((w) => w < first)];
  return widths.flatMap((w) => {
    const h = Math.max(1, Math.round((height * w) / Math.max(1, width)));
    return EVIDENCE_QUALITIES.map((quality) => ({ width: w, height: h, quality }));
  });
}

/**
 * The best JPEG of a capture that fits `maxBytes`: `encode` draws and
 * encodes at one size; null when none fits.
 * @param {number} width
 * @param {number} height
 * @param {number} maxBytes
 * @param {(width: number, height: number, quality: number) => Promise<Uint8Array>} encode
 * @returns {Promise<Frame | null>}
 */
export async function fitJpeg(width, height, maxBytes, encode) {
  for (const s of evidenceSizes(width, height)) {
    const jpeg = await encode(s.width, s.height, s.quality);
    if (jpeg.length <= maxBytes) return { width: s.width, height: s.height, jpeg };
  }
  return null;
}

/**
 * The frames the server accepts, as lectern-agent's fit_evidence: none larger
 * than allowed, and the newest that fit the count.
 * @param {Frame[]} frames oldest first
 * @param {Allowance | null} allowance
 */
export function fitEvidence(frames, allowance) {
  const maxFrames = allowance ? allowance.max_frames : 255;
  const maxBytes = Math.min(allowance ? allowance.max_frame_bytes : Infinity, MAX_BINARY_FRAME - EVIDENCE_HEADER_LEN);
  const fit = frames.filter((f) => f.jpeg.length <= maxBytes);
  return fit.slice(Math.max(0, fit.length - maxFrames));
}

/**
 * One binary evidence frame: `[3][width u16][height u16][violation id u64][index][total][jpeg]`.
 * @param {bigint} violationId
 * @param {number} index
 * @param {number} total
 * @param {Frame} frame
 */
export function evidenceFrame(violationId, index, total, frame) {
  const out = new Uint8Array(EVIDENCE_HEADER_LEN + frame.jpeg.length);
  const v = new DataView(out.buffer);
  v.setUint8(0, MEDIA_EVIDENCE);
  v.setUint16(1, Math.min(frame.width, 0xffff));
  v.setUint16(3, Math.min(frame.height, 0xffff));
  v.setBigUint64(5, violationId);
  v.setUint8(13, index);
  v.setUint8(14, total);
  out.set(frame.jpeg, EVIDENCE_HEADER_LEN);
  return out;
}

/**
 * The binary frames for one violation, oldest first, within the allowance.
 * @param {bigint} violationId the server's id, or `local_id | AGENT_EVIDENCE`
 * @param {Frame[]} frames
 * @param {Allowance | null} allowance
 */
export function evidenceFrames(violationId, frames, allowance) {
  const fit = fitEvidence(frames, allowance);
  return fit.map((f, i) => evidenceFrame(violationId, i, fit.length, f));
}
