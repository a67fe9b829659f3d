// The built keyword engine (extension/keywords.wasm, from
// scripts/build-extension-wasm.sh) finds exactly what the native engine finds
// (extension/test/fixtures/keywords.json, checked against lectern-keywords by
// `cargo test -p lectern-keywords-wasm`), and evidence frames have
// lectern-proto's layout.
import { test } from 'node:test';
import assert from 'node:assert/strict';
import { readFile } from 'node:fs/promises';

import { AGENT_EVIDENCE, evidenceFrame, evidenceFrames, fitEvidence, instantiateEngine, violationReport } from '../safety-core.js';

const wasmUrl = new URL('../keywords.wasm', import.meta.url);
const fixture = JSON.parse(await readFile(new URL('./fixtures/keywords.json', import.meta.url), 'utf8'));

async function engine() {
  let bytes;
  try {
    bytes = await readFile(wasmUrl);
  } catch {
    assert.fail('extension/keywords.wasm is missing: run scripts/build-extension-wasm.sh');
  }
  return instantiateEngine(bytes);
}

test('the wasm engine finds what the native engine finds', async () => {
  const e = await engine();
  assert.deepEqual(e.scan({ text: 'go d1e' }), { ok: false, error: 'no library loaded' });
  const loaded = e.load(fixture.library);
  assert.equal(loaded.ok, true);
  assert.equal(loaded.terms, fixture.library.terms.length);
  let found = 0;
  for (const c of fixture.cases) {
    const r = e.scan(c.request);
    assert.deepEqual(r, { ok: true, matches: c.matches }, JSON.stringify(c.request));
    found += c.matches.length;
  }
  assert.ok(found >= 9, `only ${found} matches in the fixture`);
  // Spans are UTF-8 byte offsets: the emoji case slices back to the match.
  const c = fixture.cases.find((x) => x.request.text && x.request.text.startsWith('😀'));
  const bytes = new TextEncoder().encode(c.request.text);
  const m = c.matches[0];
  assert.equal(new TextDecoder().decode(bytes.slice(m.start, m.end)), m.matched);
});

test('bad input gets an error and keeps the library', async () => {
  const e = await engine();
  assert.equal(e.load(fixture.library).ok, true);
  const bad = e.load({ terms: 'no' });
  assert.equal(bad.ok, false);
  assert.match(bad.error, /^library JSON/);
  assert.equal(e.scan({}).ok, false);
  assert.equal(e.scan({ text: 'x'.repeat(70_000) }).ok, false);
  assert.equal(e.scan({ text: 'kiiiill yourself' }).matches[0].term, 'kill yourself');
  // Many calls do not leak: memory stays put after the first few.
  for (let i = 0; i < 200; i++) e.scan({ text: `round ${i}: go d1e` });
  const size = e.x.memory.buffer.byteLength;
  for (let i = 0; i < 2000; i++) e.scan({ text: `round ${i}: go d1e` });
  assert.equal(e.x.memory.buffer.byteLength, size);
});

test('a CSV library loads too', async () => {
  const e = await engine();
  const csv = await readFile(new URL('../../crates/keywords/default-library.csv', import.meta.url), 'utf8');
  assert.equal(e.load(csv).terms, fixture.library.terms.length);
});

test('reports and evidence frames as lectern-proto has them', () => {
  const m = fixture.cases[0].matches[0];
  const r = violationReport(m, 7, null, 1234);
  assert.deepEqual(Object.keys(r).sort(), ['at', 'category', 'context', 'local_id', 'matched', 'severity', 'source', 'term', 'user']);
  const jpeg = new Uint8Array([0xff, 0xd8, 1, 2, 3]);
  const f = evidenceFrame(7n | AGENT_EVIDENCE, 1, 2, { width: 640, height: 400, jpeg });
  assert.deepEqual([...f.slice(0, 5)], [3, 2, 128, 1, 144]);
  assert.deepEqual([...f.slice(5, 13)], [128, 0, 0, 0, 0, 0, 0, 7]);
  assert.deepEqual([...f.slice(13, 15)], [1, 2]);
  assert.deepEqual([...f.slice(15)], [...jpeg]);
  const frame = (n) => ({ width: 1, height: 1, jpeg: new Uint8Array(n) });
  const fit = fitEvidence([frame(10), frame(500), frame(20), frame(30)], { max_frames: 2, max_frame_bytes: 100 });
  assert.deepEqual(fit.map((x) => x.jpeg.length), [20, 30]);
  const frames = evidenceFrames(9n, [frame(10), frame(20)], null);
  assert.deepEqual(frames.map((x) => [x[13], x[14]]), [[0, 2], [1, 2]]);
});

test('the server frames safeguarding needs are read', async () => {
  const P = await import('../protocol.js');
  // A school library over the 64 KiB an agent may send is still taken (the server sends up to 1 MiB).
  const big = { terms: Array.from({ length: 1500 }, (_, i) => ({ term: `term number ${i}`, category: 'c', severity: 3, match_type: 'phrase', exceptions: [] })) };
  const text = JSON.stringify({ type: 'keywords', library: big });
  assert.ok(text.length > 64 * 1024);
  assert.equal(P.parseServerFrame(text).ok, true);
  assert.equal(P.parseServerFrame(JSON.stringify({ type: 'keywords', library: 'x' })).ok, false);
  assert.equal(P.parseServerFrame('x'.repeat(P.MAX_SERVER_TEXT_FRAME + 1)).ok, false);
  assert.equal(P.parseServerFrame(JSON.stringify({ type: 'evidence_request', violation_id: 4 })).ok, true);
  assert.equal(P.parseServerFrame(JSON.stringify({ type: 'refused', code: 'rate_limited', frame: { kind: 'violation', local_id: 1 }, retry_after_ms: 5, message: '' })).ok, true);
  const p = P.parseServerFrame(JSON.stringify({ type: 'policy', policy: { keyword_policies: false } }));
  assert.equal(p.msg.policy.keyword_policies, false);
  assert.equal(P.parseServerPolicy({}).policy.keyword_policies, true);
  assert.ok(P.helloFrame({ kind: 'enroll', token: 't' }, {}, {}, ['keyword_scan']).capabilities.includes('keyword_scan'));
});
