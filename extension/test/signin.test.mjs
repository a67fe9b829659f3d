// Student sign-in's pure parts (signin-core.js): the grid is lectern-proto's,
// frames are built and answers read as the server writes them.

import assert from 'node:assert/strict';
import { readFileSync } from 'node:fs';
import { test } from 'node:test';

import { PICTURES, answerSentence, parseSignInFrame, signInFrame } from '../signin-core.js';
import { parseServerFrame } from '../protocol.js';

test('the picture grid is lectern-proto\'s, in its order', () => {
  const fixture = JSON.parse(readFileSync(new URL('./fixtures/pictures.json', import.meta.url), 'utf8'));
  assert.deepEqual(PICTURES.map((p) => [...p]), fixture);
});

test('a sign-in frame is built only from what a student could have', () => {
  assert.deepEqual(signInFrame(' amy.ng ', { picture: [0, 9, 4] }), {
    ok: true, frame: { type: 'student_sign_in', name: 'amy.ng', secret: { kind: 'picture', picture: [0, 9, 4] } },
  });
  assert.deepEqual(signInFrame('amy', { password: 'sunflower' }).frame.secret, { kind: 'text', password: 'sunflower' });
  for (const [name, entered] of [
    ['', { picture: [0, 1, 2] }],
    ['amy', { picture: [0, 1] }],
    ['amy', { picture: [0, 1, 2, 3, 4] }],
    ['amy', { picture: [0, 1, 16] }],
    ['amy', { picture: [0, 1, 1.5] }],
    ['amy', { password: 'short' }],
    ['x'.repeat(129), { picture: [0, 1, 2] }],
  ]) {
    const r = signInFrame(name, entered);
    assert.equal(r.ok, false, JSON.stringify([name, entered]));
    assert.match(r.error, /\.$/);
  }
});

test('the server\'s answers are read as lectern-proto writes them', () => {
  const fixtures = JSON.parse(readFileSync(new URL('./fixtures/server-frames.json', import.meta.url), 'utf8'));
  const signedIn = fixtures.find((f) => f.type === 'student_sign_in');
  assert.deepEqual(parseServerFrame(JSON.stringify(signedIn)).msg, {
    type: 'student_sign_in', outcome: 'signed_in', name: 'amy.ng', display_name: 'Amy Ng',
  });
  assert.deepEqual(parseSignInFrame({ outcome: 'refused', reason: 'rate_limited', retry_after_secs: 30 }).msg, {
    type: 'student_sign_in', outcome: 'refused', reason: 'rate_limited', retry_after_secs: 30,
  });
  assert.equal(parseSignInFrame({ outcome: 'refused', reason: 'because' }).ok, false);
  assert.equal(parseSignInFrame({ outcome: 'signed_in', name: 5 }).ok, false);
  assert.equal(parseSignInFrame({ outcome: 'maybe' }).ok, false);
  assert.equal(answerSentence({ outcome: 'signed_in' }), '');
  assert.match(answerSentence({ outcome: 'refused', reason: 'rate_limited', retry_after_secs: 1 }), /Wait 1 second,/);
  assert.match(answerSentence({ outcome: 'refused', reason: 'wrong_credentials' }), /do not match/);
});
