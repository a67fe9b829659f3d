// One capture scheduler for the whole extension: every
// chrome.tabs.captureVisibleTab call (evidence at a keyword match, the
// rolling evidence buffer, thumbnails and live-view frames) goes through
// `captures` here.
//
// Chromium lets an extension make MAX_CAPTURE_VISIBLE_TAB_CALLS_PER_SECOND (2)
// calls in a one-second window, which opens at the first call after the last
// window closed; a call over it fails. So at most CAPTURES_PER_SECOND calls
// start within any WINDOW_MS + MARGIN_MS, counted from when earlier calls
// *finished* (a call reaches the browser after it starts in the worker and
// before it finishes, so delays in between cannot bunch calls up in the
// browser's window). Calls run one at a time, the most urgent first:
// evidence at a match, then the buffer, then frames, which take what is
// left. The pure logic takes its clock and capture function as parameters,
// for the Node tests (extension/test/capture.test.mjs).

/** Captures the budget allows per second (Chromium's quota). */
export const CAPTURES_PER_SECOND = 2;
/** The browser's quota window, ms. */
export const WINDOW_MS = 1000;
/** Kept beyond the window, for clock differences between worker and browser. */
export const MARGIN_MS = 25;
/** Requests waiting at most; beyond, the least urgent is refused. */
export const MAX_QUEUED = 8;

/** Who captures: lower numbers go first. */
export const PRIORITY = Object.freeze({
  /** Evidence of a keyword match, or asked by the server for a violation. */
  MATCH: 0,
  /** The rolling evidence buffer. */
  BUFFER: 1,
  /** Thumbnails and live-view frames. */
  FRAME: 2,
});

/** A request refused because too many more urgent ones wait. */
export class CaptureBusy extends Error {
  constructor() {
    super('capture dropped: too many captures waiting');
    this.name = 'CaptureBusy';
  }
}

/**
 * @typedef {object} Clock
 * @property {() => number} now milliseconds
 * @property {(fn: () => void, ms: number) => unknown} setTimeout
 */

/** @type {Clock} */
const realClock = {
  now: () => performance.now(),
  setTimeout: (fn, ms) => setTimeout(fn, ms),
};

/**
 * The browser's capture of the visible tab of `windowId` (default: the
 * focused window), as a JPEG data URL.
 * @param {number | undefined} windowId
 * @returns {Promise<string>}
 */
function captureVisibleTab(windowId) {
  const options = { format: /** @type {'jpeg'} */ ('jpeg'), quality: 80 };
  return windowId === undefined
    ? chrome.tabs.captureVisibleTab(options)
    : chrome.tabs.captureVisibleTab(windowId, options);
}

/**
 * @typedef {object} Job
 * @property {number} priority
 * @property {number | undefined} windowId
 * @property {(() => void) | undefined} onStart
 * @property {(url: string) => void} resolve
 * @property {(err: unknown) => void} reject
 */

export class CaptureScheduler {
  /**
   * @param {{capture?: (windowId: number | undefined) => Promise<string>, perSecond?: number, clock?: Clock}} [opts]
   */
  constructor({ capture = captureVisibleTab, perSecond = CAPTURES_PER_SECOND, clock = realClock } = {}) {
    this.captureFn = capture;
    this.perSecond = perSecond;
    this.clock = clock;
    /** Waiting requests, most urgent first (in arrival order within a priority). @type {Job[]} */
    this.queue = [];
    /** When the last `perSecond` calls finished. @type {number[]} */
    this.ends = [];
    this.busy = false;
    /** Whether a timer will look at the queue again. */
    this.waiting = false;
    this.counts = { captures: 0, failed: 0, quota: 0, dropped: 0, byPriority: [0, 0, 0] };
  }

  /**
   * Least time between frames for the budget: a stream asking faster gets this.
   * @returns {number}
   */
  frameIntervalMs() {
    return Math.ceil(WINDOW_MS / this.perSecond);
  }

  /**
   * Captures the visible tab of `windowId` when the budget allows, before any
   * less urgent request. `onStart` is called when the browser call starts
   * (never synchronously).
   * @param {number} priority one of PRIORITY
   * @param {number | undefined} windowId
   * @param {{onStart?: () => void}} [opts]
   * @returns {Promise<string>} the JPEG data URL
   */
  capture(priority, windowId, { onStart } = {}) {
    return new Promise((resolve, reject) => {
      const job = { priority, windowId, onStart, resolve, reject };
      const at = this.queue.findIndex((j) => j.priority > priority);
      this.queue.splice(at < 0 ? this.queue.length : at, 0, job);
      if (this.queue.length > MAX_QUEUED) {
        const dropped = /** @type {Job} */ (this.queue.pop());
        this.counts.dropped += 1;
        dropped.reject(new CaptureBusy());
      }
      queueMicrotask(() => this.#pump());
    });
  }

  /** Counts since start: calls made, failed, refused by the quota, dropped. */
  stats() {
    return { ...this.counts, byPriority: [...this.counts.byPriority], queued: this.queue.length };
  }

  /** When the next call may start. */
  #nextStart() {
    if (this.ends.length < this.perSecond) return -Infinity;
    return this.ends[this.ends.length - this.perSecond] + WINDOW_MS + MARGIN_MS;
  }

  /** Starts the most urgent request if the budget allows, else waits for it. */
  #pump() {
    if (this.busy || this.waiting || !this.queue.length) return;
    const wait = this.#nextStart() - this.clock.now();
    if (wait > 0) {
      this.waiting = true;
      this.clock.setTimeout(() => {
        this.waiting = false;
        this.#pump();
      }, wait);
      return;
    }
    const job = /** @type {Job} */ (this.queue.shift());
    this.busy = true;
    this.counts.captures += 1;
    this.counts.byPriority[job.priority] = (this.counts.byPriority[job.priority] || 0) + 1;
    job.onStart?.();
    let call;
    try {
      call = Promise.resolve(this.captureFn(job.windowId));
    } catch (err) {
      call = Promise.reject(err);
    }
    call.then(
      (url) => {
        this.#finished();
        job.resolve(url);
      },
      (err) => {
        this.#finished();
        this.counts.failed += 1;
        if (String(err && err.message ? err.message : err).includes('MAX_CAPTURE_VISIBLE_TAB_CALLS_PER_SECOND')) {
          this.counts.quota += 1;
        }
        job.reject(err);
      },
    ).then(() => this.#pump());
  }

  #finished() {
    this.ends.push(this.clock.now());
    if (this.ends.length > this.perSecond) this.ends.shift();
    this.busy = false;
  }
}

/** The extension's one scheduler (a module is one instance per worker). */
export const captures = new CaptureScheduler();
