// The server frames of raised hands and chat, as the extension checks them
// (protocol.js parseServerFrame).
import assert from 'node:assert/strict';
import test from 'node:test';

import { parseServerFrame } from '../protocol.js';

test('hand and chat frames are checked', () => {
  assert.deepEqual(parseServerFrame('{"type":"hand_raised"}'), { ok: true, msg: { type: 'hand_raised' } });
  assert.deepEqual(parseServerFrame('{"type":"hand_closed"}'), { ok: true, msg: { type: 'hand_closed', answer: null } });
  assert.deepEqual(parseServerFrame('{"type":"hand_closed","answer":"Coming ✓"}'), { ok: true, msg: { type: 'hand_closed', answer: 'Coming ✓' } });
  assert.equal(parseServerFrame('{"type":"hand_closed","answer":5}').ok, false);
  const line = { id: 1, from_teacher: true, author: 'khan', text: 'Hello Zoë', at: 1 };
  assert.deepEqual(parseServerFrame(JSON.stringify({ type: 'chat', line })), {
    ok: true,
    msg: { type: 'chat', line: { from_teacher: true, author: 'khan', text: 'Hello Zoë' } },
  });
  assert.equal(parseServerFrame('{"type":"chat","line":{"text":"x"}}').ok, false);
});

test('a chat history is checked and keeps the newest 20 lines', () => {
  const line = (n) => ({ id: n, from_teacher: n === 0, author: n === 0 ? 'khan' : 'zoe', text: `line ${n}`, at: n });
  const lines = Array.from({ length: 25 }, (_, n) => line(n));
  const r = parseServerFrame(JSON.stringify({ type: 'chat_history', lines }));
  assert.equal(r.ok, true);
  assert.equal(r.msg.lines.length, 20);
  assert.deepEqual(r.msg.lines[0], { from_teacher: false, author: 'zoe', text: 'line 5' });
  assert.deepEqual(parseServerFrame('{"type":"chat_history","lines":[]}'), { ok: true, msg: { type: 'chat_history', lines: [] } });
  assert.equal(parseServerFrame('{"type":"chat_history","lines":[{"text":"x"}]}').ok, false);
  assert.equal(parseServerFrame('{"type":"chat_history"}').ok, false);
});
