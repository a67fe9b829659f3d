// The Chromebook-mode broadcast controller (broadcast.js) against fake
// chrome.windows and a fake page port.
import { test } from 'node:test';
import assert from 'node:assert/strict';
import { MAX_FRAME, createBroadcast, parseBroadcastFrame, toBase64 } from '../broadcast.js';

/** A media frame `[kind][w][h][payload]`. */
function frame(kind, payload) {
  const b = new Uint8Array(5 + payload.length);
  b[0] = kind;
  b.set(payload, 5);
  return b.buffer;
}
const jpeg = (n) => new Uint8Array([0xff, 0xd8, 0xff, n]);

function fakes() {
  const calls = { created: [], removed: [], changed: 0, warnings: [] };
  let next = 1;
  const windows = {
    create: async (o) => { calls.created.push(o); return { id: next++ }; },
    remove: async (id) => { calls.removed.push(id); },
  };
  const b = createBroadcast({
    changed: () => { calls.changed += 1; },
    warn: (m) => calls.warnings.push(m),
    windows,
    pageUrl: 'chrome-extension://x/broadcast.html',
  });
  return { b, calls };
}

function fakePort() {
  const port = { name: 'broadcast', sent: [], listeners: [], onDisconnect: { addListener() {} }, disconnected: false };
  port.postMessage = (m) => port.sent.push(m);
  port.onMessage = { addListener: (f) => port.listeners.push(f) };
  port.disconnect = () => { port.disconnected = true; };
  port.ready = () => port.listeners.forEach((f) => f({ type: 'ready' }));
  return port;
}

test('broadcast frames are JPEGs of kind 2 within the size limit', () => {
  assert.equal(parseBroadcastFrame(frame(2, jpeg(1))).ok, true);
  assert.deepEqual([...parseBroadcastFrame(frame(2, jpeg(7))).jpeg], [...jpeg(7)]);
  assert.match(parseBroadcastFrame(frame(1, jpeg(1))).error, /kind 1/);
  assert.match(parseBroadcastFrame(frame(2, new Uint8Array([1, 2, 3]))).error, /not a JPEG/);
  assert.match(parseBroadcastFrame(new ArrayBuffer(3)).error, /too short/);
  assert.match(parseBroadcastFrame(new ArrayBuffer(MAX_FRAME + 1)).error, /over/);
  assert.equal(toBase64(new Uint8Array([0xff, 0xd8])), '/9g=');
});

test('start opens one full-screen window; stop closes it; state follows', async () => {
  const { b, calls } = fakes();
  assert.equal(b.shown, false);
  await b.start("Ms Khan's screen");
  await b.start("Ms Khan's screen");
  assert.equal(calls.created.length, 1);
  assert.equal(calls.created[0].state, 'fullscreen');
  assert.equal(b.shown, true);
  await b.stop();
  assert.deepEqual(calls.removed, [1]);
  assert.equal(b.shown, false);
  assert.ok(calls.changed >= 2);
});

test('the page gets the title, then only the newest frame once it drew the last', async () => {
  const { b } = fakes();
  await b.start('Title');
  b.frame(frame(2, jpeg(1)));
  const port = fakePort();
  b.onConnect(port);
  assert.deepEqual(port.sent[0], { type: 'title', title: 'Title' });
  assert.equal(port.sent.length, 2, 'the waiting frame goes at once');
  // While the page draws, frames replace each other.
  b.frame(frame(2, jpeg(2)));
  b.frame(frame(2, jpeg(3)));
  assert.equal(port.sent.length, 2);
  port.ready();
  assert.equal(port.sent.length, 3);
  assert.equal(port.sent[2].jpeg, toBase64(jpeg(3)));
  port.ready();
  assert.equal(port.sent.length, 3, 'nothing new to send');
  // A bad frame is skipped with a warning, not sent.
  b.frame(frame(2, new Uint8Array([0, 0, 0])));
  assert.equal(port.sent.length, 3);
});

test('a closed window opens again while the broadcast runs; pages after a stop are refused', async () => {
  const { b, calls } = fakes();
  await b.start('T');
  await b.onWindowRemoved(1);
  assert.equal(calls.created.length, 2);
  assert.equal(b.shown, true);
  await b.onWindowRemoved(99);
  assert.equal(calls.created.length, 2, 'other windows do not matter');
  await b.stop();
  await b.onWindowRemoved(2);
  assert.equal(calls.created.length, 2, 'no window after the stop');
  const late = fakePort();
  b.onConnect(late);
  assert.equal(late.disconnected, true);
  b.frame(frame(2, jpeg(1)));
  assert.equal(late.sent.length, 0);
});
