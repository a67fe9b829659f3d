// Chromebook mode's activity queue against the server's rules: numbered
// visits stay queued until `activity_ack`, a `refused` batch is sent again
// after the server's wait, and nothing is lost or stored twice.
//
// Run: node --test extension/test/

import assert from 'node:assert/strict';
import { test } from 'node:test';

import {
  ActivityOutbox, MAX_ACTIVITY_BATCH, MAX_ACTIVITY_QUEUE, MAX_SERVER_FRAME, activityFrames, activityRetryDelay, loadActivityQueue,
  newActivityQueue, parseServerFrame,
} from '../protocol.js';

const visit = (i, title = '') => ({ kind: 'web', user: null, url: `https://site.test/${i}`, title, app: 'Web browser', at: i });

test('refused and activity_ack frames are understood', () => {
  // As crates/proto encodes ServerMsg::Refused and ServerMsg::ActivityAck.
  const refused = parseServerFrame(JSON.stringify({
    type: 'refused', code: 'rate_limited', frame: { kind: 'activity', first_seq: 7 }, retry_after_ms: 1500, message: 'too many events',
  }));
  assert.ok(refused.ok, JSON.stringify(refused));
  assert.deepEqual(refused.msg, {
    type: 'refused', code: 'rate_limited', frame: { kind: 'activity', first_seq: 7 }, retry_after_ms: 1500, message: 'too many events',
  });
  const evidence = parseServerFrame(JSON.stringify({
    type: 'refused', code: 'not_allowed', frame: { kind: 'evidence', violation_id: 3, index: 0 }, retry_after_ms: 0, message: 'no',
  }));
  assert.equal(evidence.ok && evidence.msg.frame.kind, 'evidence');
  assert.deepEqual(parseServerFrame('{"type":"activity_ack","up_to":12}'), { ok: true, msg: { type: 'activity_ack', up_to: 12 } });
  for (const bad of [
    { type: 'activity_ack' }, { type: 'activity_ack', up_to: -1 }, { type: 'refused', frame: { kind: 'activity' } },
    { type: 'refused', frame: 'activity', retry_after_ms: 1 }, { type: 'refused', frame: { kind: 'activity', first_seq: 'x' }, retry_after_ms: 1 },
  ]) {
    assert.equal(parseServerFrame(JSON.stringify(bad)).ok, false, JSON.stringify(bad));
  }
  assert.equal(activityRetryDelay(0), 100);
  assert.equal(activityRetryDelay(1500), 1500);
  assert.equal(activityRetryDelay(1e9), 600_000);
});

test('frames are consecutive runs within the batch and frame limits', () => {
  const q = newActivityQueue();
  const out = new ActivityOutbox(q);
  for (let i = 0; i < MAX_ACTIVITY_BATCH + 10; i++) out.add(visit(i));
  const frames = activityFrames(q, 0);
  assert.deepEqual(frames.map((f) => [f.first_seq, f.events.length]), [[1, MAX_ACTIVITY_BATCH], [MAX_ACTIVITY_BATCH + 1, 10]]);
  // A gap (acknowledged in the middle cannot happen, but trimmed can) starts a new frame.
  q.pending.splice(2, 1);
  assert.deepEqual(activityFrames(q, 0).slice(0, 2).map((f) => f.first_seq), [1, 4]);
  // Long titles: split to fit the server's frame size.
  const big = newActivityQueue();
  const bigOut = new ActivityOutbox(big);
  for (let i = 0; i < 40; i++) bigOut.add(visit(i, 'x'.repeat(4000)));
  const split = activityFrames(big, 0);
  assert.ok(split.length > 1);
  assert.ok(split.every((f) => JSON.stringify(f).length <= MAX_SERVER_FRAME - 1024));
  assert.equal(split.reduce((n, f) => n + f.events.length, 0), 40);
});

test('the queue survives storage and keeps numbering', () => {
  const q = newActivityQueue();
  const out = new ActivityOutbox(q);
  for (let i = 0; i < 3; i++) out.add(visit(i));
  out.ack(1);
  const back = loadActivityQueue(JSON.parse(JSON.stringify(q)));
  assert.deepEqual(back, q);
  assert.equal(back.next_seq, 4);
  assert.deepEqual(loadActivityQueue({ next_seq: 9, pending: [{ seq: 'x' }, { seq: 3, event: visit(3) }, { seq: 12, event: {} }] }),
    { next_seq: 9, pending: [{ seq: 3, event: visit(3) }] });
  assert.deepEqual(loadActivityQueue(null), newActivityQueue());
});

/**
 * The gateway's rules for activity (crates/server/src/gateway.rs): a bucket
 * of `burst` events (never below a full batch) refilled by `refill` each tick; an over-budget batch is
 * refused with nothing stored, and later batches are refused until the
 * refused one comes again; each (device, seq) is stored once; every stored
 * batch is acknowledged up to its last number.
 */
class Server {
  constructor(burst, refill) {
    burst = Math.max(burst, MAX_ACTIVITY_BATCH);
    Object.assign(this, { burst, refill, tokens: burst, refusedFrom: null, stored: new Map(), refusals: 0 });
  }

  tick() {
    this.tokens = Math.min(this.burst, this.tokens + this.refill);
  }

  /** @returns {object} the server's answer */
  receive(frame) {
    const last = frame.first_seq + frame.events.length - 1;
    const refuse = () => {
      this.refusals += 1;
      return { type: 'refused', code: 'rate_limited', frame: { kind: 'activity', first_seq: frame.first_seq }, retry_after_ms: 1000, message: 'slow down' };
    };
    if (this.refusedFrom !== null && frame.first_seq > this.refusedFrom) return refuse();
    if (frame.events.length > this.tokens) {
      this.refusedFrom = Math.min(this.refusedFrom ?? frame.first_seq, frame.first_seq);
      return refuse();
    }
    this.tokens -= frame.events.length;
    if (this.refusedFrom !== null && last >= this.refusedFrom) this.refusedFrom = null;
    frame.events.forEach((e, i) => {
      const seq = frame.first_seq + i;
      if (!this.stored.has(seq)) this.stored.set(seq, e);
    });
    return { type: 'activity_ack', up_to: last };
  }
}

test('refused batches are held and sent again until every visit is stored once', () => {
  const server = new Server(MAX_ACTIVITY_BATCH, 20);
  const q = newActivityQueue();
  const out = new ActivityOutbox(q);
  let wait = 0;
  const exchange = () => {
    // Answers arrive after the frames that were in flight, as on a socket.
    const answers = out.take().map((f) => server.receive(f));
    for (const a of answers.map((x) => parseServerFrame(JSON.stringify(x)).msg)) {
      if (a.type === 'activity_ack') out.ack(a.up_to);
      else wait = out.refused(a.frame.first_seq, a.retry_after_ms);
    }
  };
  const TICKS = 10;
  const PER_TICK = 90;
  for (let t = 0; t < 400 && (t < TICKS || q.pending.length); t++) {
    // A burst of visits (as from a flood of redirects), faster than allowed.
    if (t < TICKS) for (let k = 0; k < PER_TICK; k++) out.add(visit(t * PER_TICK + k));
    if (out.held) {
      wait -= 1000;
      if (wait <= 0) out.release();
    }
    exchange();
    server.tick();
    if (t === 5) {
      // The connection drops and comes back: unacknowledged visits go again.
      out.restart();
    }
  }
  assert.ok(server.refusals > 0, 'the test reached the rate limit');
  const n = TICKS * PER_TICK;
  assert.equal(q.pending.length, 0, 'everything acknowledged');
  assert.deepEqual([...server.stored.keys()].sort((a, b) => a - b), Array.from({ length: n }, (_, i) => i + 1));
  assert.deepEqual([...server.stored.values()].map((e) => e.at).sort((a, b) => a - b), Array.from({ length: n }, (_, i) => i));
});

test('a full queue never drops a batch that was sent and may have been refused', () => {
  const q = newActivityQueue();
  const out = new ActivityOutbox(q);
  for (let i = 0; i < 600; i++) out.add(visit(i));
  assert.equal(out.take().length, 2); // 1 to 600 sent
  out.refused(1, 1000);
  // Held: 600 more arrive; the unsent ones give way, the sent ones stay.
  for (let i = 600; i < 1200; i++) out.add(visit(i));
  assert.equal(q.pending.length, MAX_ACTIVITY_QUEUE);
  assert.equal(q.pending[0].seq, 1);
  assert.deepEqual(out.take(), [], 'nothing while held');
  out.release();
  const again = out.take();
  assert.equal(again[0].first_seq, 1, 'the refused batch goes again first');
  // A new session: everything may give way to newer visits again.
  out.restart();
  out.add(visit(1200));
  assert.equal(q.pending[0].seq, 2);
  assert.equal(q.pending[q.pending.length - 1].seq, 1201);
});
