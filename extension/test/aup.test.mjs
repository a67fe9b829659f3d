// The acceptable use policy's frames and stored state (aup.js, protocol.js).
import { test } from 'node:test';
import assert from 'node:assert/strict';
import { parseServerFrame, MAX_AUP_TEXT } from '../protocol.js';
import { paragraphs, parseAup } from '../aup.js';

const policy = { version_id: 7, version: 2, title: 'Règles ✓', text: 'Один.\n\n日本語', published_at: 5 };

test('acceptable_use frames are taken only well formed and within the size limit', () => {
  const ok = parseServerFrame(JSON.stringify({ type: 'acceptable_use', policy }));
  assert.deepEqual(ok, { ok: true, msg: { type: 'acceptable_use', policy } });
  for (const bad of [
    { ...policy, version_id: 'x' },
    { ...policy, text: 1 },
    { ...policy, text: 'a'.repeat(MAX_AUP_TEXT + 1) },
    null,
  ]) {
    assert.equal(parseServerFrame(JSON.stringify({ type: 'acceptable_use', policy: bad })).ok, false);
  }
  assert.deepEqual(parseServerFrame('{"type":"acceptable_use_clear"}'), { ok: true, msg: { type: 'acceptable_use_clear' } });
});

test('a stored policy is read back or dropped when malformed', () => {
  assert.deepEqual(parseAup(policy), policy);
  assert.equal(parseAup({ ...policy, title: null }), null);
  assert.equal(parseAup('junk'), null);
  assert.deepEqual(paragraphs('a\r\nb\r\n\r\n  \n\nc '), ['a\nb', 'c']);
});
