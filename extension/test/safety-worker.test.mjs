// safety.js in the service worker's place: a fake chrome.* (no capture
// possible, as on a chrome:// page) and a recording session, with the real
// keywords.wasm. Reports and evidence go as the agent sends them; a refused
// violation is held and sent again; keyword_policies off stops scanning.
import { test } from 'node:test';
import assert from 'node:assert/strict';
import { readFile } from 'node:fs/promises';

const stored = {};
globalThis.chrome = {
  storage: { local: { get: async (k) => (k in stored ? { [k]: stored[k] } : {}), set: async (o) => Object.assign(stored, o) } },
  tabs: { captureVisibleTab: async () => { throw new Error('Cannot access a chrome:// URL'); } },
};
const { Safety } = await import('../safety.js');
const fixture = JSON.parse(await readFile(new URL('./fixtures/keywords.json', import.meta.url), 'utf8'));

function session() {
  const s = { online: true, json: [], binary: [] };
  const io = {
    send: (f) => s.online && s.json.push(f) > 0,
    sendBinary: (b) => s.online && s.binary.push(b) > 0,
    connected: () => s.online,
    user: () => 'pupil@school.example',
    log: () => {},
    warn: () => {},
    wasm: () => readFile(new URL('../keywords.wasm', import.meta.url)),
  };
  return { s, safety: new Safety(io) };
}
const frame = (n) => ({ width: 640, height: 400, jpeg: new Uint8Array(n).fill(7) });

test('a typed match is reported with its evidence, within the allowance', async () => {
  const { s, safety } = session();
  assert.deepEqual(await safety.capabilities(), ['keyword_scan']);
  safety.onFrame({ type: 'keywords', library: fixture.library });
  await safety.onKeywords(fixture.library);
  assert.ok(stored.safetyLibrary, 'kept for offline use');
  safety.onWelcome({ evidence: { max_frames: 2, max_frame_bytes: 1000 } });
  safety.buffer = [frame(10), frame(5000), frame(20), frame(30)];
  await safety.typed('nothing to see here', 'https://chat.example/', 1);
  assert.equal(s.json.length, 0);
  await safety.typed('you should k1ll urself', 'https://chat.example/', 1);
  assert.equal(s.json.length, 1);
  const v = s.json[0];
  assert.equal(v.type, 'violation');
  assert.equal(v.term, 'kill urself');
  assert.equal(v.source, 'text');
  assert.equal(v.user, 'pupil@school.example');
  assert.equal(v.context, 'you should k1ll urself (typed on https://chat.example/)');
  // The newest two frames that fit 1000 bytes; the capture of now failed.
  assert.deepEqual(s.binary.map((b) => [b[0], b.length - 15, b[13], b[14]]), [[3, 20, 0, 2], [3, 30, 1, 2]]);
  assert.equal(new DataView(s.binary[0].buffer).getBigUint64(5), BigInt(v.local_id) | (1n << 63n));
  safety.setPolicy({ keyword_policies: false });
});

test('visits are scanned for searches; held while offline; a refused report goes again', async () => {
  const { s, safety } = session();
  await safety.onKeywords(fixture.library);
  s.online = false;
  await safety.activity({ kind: 'web', user: null, url: 'https://search.example/?q=i+wanna+die', title: 'Search', app: 'Web browser', at: 1 });
  assert.equal(safety.pending.length, 1);
  s.online = true;
  safety.onWelcome({});
  assert.equal(s.json.length, 1);
  assert.equal(s.json[0].source, 'search');
  const id = s.json[0].local_id;
  assert.equal(safety.onFrame({ type: 'refused', code: 'rate_limited', frame: { kind: 'violation', local_id: id }, retry_after_ms: 0, message: 'slow down' }), true);
  assert.equal(safety.onFrame({ type: 'refused', code: 'rate_limited', frame: { kind: 'activity', first_seq: 1 }, retry_after_ms: 5, message: '' }), false);
  assert.equal(safety.pending.length, 1, 'held again');
  safety.flush();
  assert.equal(s.json.length, 2);
  assert.equal(s.json[1].local_id, id);
});

test('keyword_policies off: nothing is scanned or kept', async () => {
  const { s, safety } = session();
  await safety.onKeywords(fixture.library);
  safety.buffer = [frame(10)];
  safety.setPolicy({ keyword_policies: false });
  assert.equal(safety.buffer.length, 0);
  await safety.typed('kill yourself', null, undefined);
  assert.equal(s.json.length, 0);
  // A bad library keeps the good one.
  await safety.onKeywords({ terms: 3 });
  assert.equal(safety.engine.terms, fixture.library.terms.length);
});
