// The capture scheduler (capture.js) on a virtual clock, against a model of
// Chromium's quota (QuotaService::TimedLimit: 2 calls in a one-second window
// that opens at the first call after the last one closed) with calls reaching
// the browser after varying delays: no call is ever over the quota, evidence
// at a match goes before waiting frames, and frames take what is left.

import assert from 'node:assert/strict';
import test from 'node:test';
import {
  CAPTURES_PER_SECOND, CaptureBusy, CaptureScheduler, MAX_QUEUED, PRIORITY, WINDOW_MS,
} from '../capture.js';

/** Lets promise callbacks run (a macrotask turn). */
const settle = () => new Promise((r) => setImmediate(r));

/** A virtual clock: timers run in time order when `run` advances. */
function fakeClock() {
  let t = 0;
  /** @type {{at: number, seq: number, fn: () => void}[]} */
  const timers = [];
  let seq = 0;
  return {
    now: () => t,
    setTimeout(fn, ms) {
      timers.push({ at: t + Math.max(0, ms), seq: seq++, fn });
      timers.sort((a, b) => a.at - b.at || a.seq - b.seq);
    },
    /** Runs timers up to `until` ms. */
    async run(until) {
      for (;;) {
        await settle();
        if (!timers.length || timers[0].at > until) break;
        const next = /** @type {{at: number, fn: () => void}} */ (timers.shift());
        t = next.at;
        next.fn();
      }
      t = Math.max(t, until);
    },
  };
}

/**
 * A browser: each call arrives after a delay from `delays` (in turn), is
 * judged by the quota as Chromium judges it, and takes `duration` ms.
 */
function fakeBrowser(clock, { delays = [0], duration = 60 } = {}) {
  const b = { calls: [], refused: 0, expiration: -Infinity, tokens: 0 };
  b.capture = (windowId) => new Promise((resolve, reject) => {
    const delay = delays[b.calls.length % delays.length];
    clock.setTimeout(() => {
      const at = clock.now();
      if (at > b.expiration) {
        b.expiration = at + WINDOW_MS;
        b.tokens = CAPTURES_PER_SECOND;
      }
      const ok = b.tokens > 0;
      b.tokens -= 1;
      b.calls.push({ at, windowId, ok });
      if (!ok) b.refused += 1;
      clock.setTimeout(() => (ok ? resolve(`data:${windowId}`)
        : reject(new Error('This request exceeds the MAX_CAPTURE_VISIBLE_TAB_CALLS_PER_SECOND quota.'))), duration);
    }, delay);
  });
  return b;
}

/** A stream asking for a frame as soon as the last one came (live view asking too fast). */
function greedyFrames(s, count) {
  const got = { frames: 0, errors: 0 };
  const loop = async () => {
    while (count.left-- > 0) {
      try {
        await s.capture(PRIORITY.FRAME, 1);
        got.frames += 1;
      } catch {
        got.errors += 1;
      }
    }
  };
  loop();
  return got;
}

test('frames never go over the browser quota, however the calls are delayed', async () => {
  const clock = fakeClock();
  // Delays between worker and browser that vary from call to call.
  const browser = fakeBrowser(clock, { delays: [0, 40, 5, 0, 30, 1], duration: 60 });
  const s = new CaptureScheduler({ capture: browser.capture, clock });
  const got = greedyFrames(s, { left: 1000 });
  await clock.run(60_000);
  assert.equal(browser.refused, 0, 'no MAX_CAPTURE_VISIBLE_TAB_CALLS_PER_SECOND errors');
  assert.equal(s.stats().quota, 0);
  // Two calls per window and their time: 2 per (1000 + 25 + a call's 60..100 ms).
  const rate = got.frames / 60;
  assert.ok(rate > 1.75 && rate <= CAPTURES_PER_SECOND, `rate ${rate}`);
  for (let i = 2; i < browser.calls.length; i += 1) {
    assert.ok(browser.calls[i].at - browser.calls[i - 2].at > WINDOW_MS, `calls ${i - 2} and ${i} in one window`);
  }
});

test('evidence at a match goes before the buffer and waiting frames', async () => {
  const clock = fakeClock();
  const browser = fakeBrowser(clock);
  const s = new CaptureScheduler({ capture: browser.capture, clock });
  const order = [];
  const ask = (p, w) => s.capture(p, w).then(() => order.push(w));
  // The budget is spent by two frames; then a frame, the buffer and a match wait.
  ask(PRIORITY.FRAME, 1);
  ask(PRIORITY.FRAME, 2);
  await clock.run(200);
  assert.deepEqual(order, [1, 2]);
  ask(PRIORITY.FRAME, 3);
  ask(PRIORITY.BUFFER, 4);
  ask(PRIORITY.MATCH, 5);
  await clock.run(10_000);
  assert.deepEqual(order, [1, 2, 5, 4, 3]);
  assert.deepEqual(s.stats().byPriority, [1, 1, 3]);
  assert.equal(browser.refused, 0);
});

test('frames take what a match leaves, and the total stays within the budget', async () => {
  const clock = fakeClock();
  const browser = fakeBrowser(clock, { delays: [0, 20, 3] });
  const s = new CaptureScheduler({ capture: browser.capture, clock });
  const got = greedyFrames(s, { left: 1000 });
  const matched = [];
  for (let at = 1000; at < 20_000; at += 3000) {
    clock.setTimeout(() => {
      const asked = clock.now();
      s.capture(PRIORITY.MATCH, 9).then(() => matched.push(clock.now() - asked));
    }, at);
  }
  await clock.run(20_000);
  assert.equal(browser.refused, 0);
  assert.equal(matched.length, 7, 'every match got its picture');
  // A match waits at most for the call in progress and one budget slot.
  for (const wait of matched) assert.ok(wait < WINDOW_MS + 200, `a match waited ${wait} ms`);
  const calls = browser.calls.length;
  assert.ok(calls <= (20 * CAPTURES_PER_SECOND) && got.frames + matched.length >= calls - 1);
});

test('a failed capture is counted, passed on, and does not stall the queue', async () => {
  const clock = fakeClock();
  let n = 0;
  const s = new CaptureScheduler({
    clock,
    capture: async () => {
      n += 1;
      if (n === 1) throw new Error('Cannot access a chrome:// URL');
      if (n === 2) return 'data:ok';
      throw new Error('boom');
    },
  });
  const results = await Promise.allSettled([
    s.capture(PRIORITY.MATCH, undefined),
    s.capture(PRIORITY.MATCH, undefined),
    (async () => { await clock.run(5000); return s.capture(PRIORITY.FRAME, undefined); })(),
  ]);
  await clock.run(10_000);
  assert.deepEqual(results.map((r) => r.status), ['rejected', 'fulfilled', 'rejected']);
  assert.equal(results[2].reason.message, 'boom');
  assert.equal(s.stats().failed, 2);
});

test('a full queue refuses the least urgent request', async () => {
  const clock = fakeClock();
  const s = new CaptureScheduler({ capture: () => new Promise(() => {}), clock });
  const frames = Array.from({ length: MAX_QUEUED + 1 }, () => s.capture(PRIORITY.FRAME, 1));
  const match = s.capture(PRIORITY.MATCH, 1);
  await assert.rejects(frames[MAX_QUEUED], CaptureBusy);
  await assert.rejects(frames[MAX_QUEUED - 1], CaptureBusy, 'a match displaces the newest frame');
  await settle();
  assert.equal(s.stats().dropped, 2);
  assert.equal(s.stats().queued, MAX_QUEUED - 1, 'one is in progress');
  match.catch(() => {});
});

test('the frame interval follows the budget', () => {
  assert.equal(new CaptureScheduler({ perSecond: 2 }).frameIntervalMs(), 500);
  assert.equal(new CaptureScheduler({ perSecond: 4 }).frameIntervalMs(), 250);
});
