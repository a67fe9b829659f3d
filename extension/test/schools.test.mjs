// A Chromebook in several schools (schools-core.js): which codes register,
// what the sign-in page offers, and what a switch swaps.

import assert from 'node:assert/strict';
import { readFileSync } from 'node:fs';
import { test } from 'node:test';

import { MAX_SCHOOLS, fallBack, furtherCodes, loadStash, offeredSchools, switchTo } from '../schools-core.js';
import { loadActivityQueue, parseServerFrame } from '../protocol.js';

const stashed = (school, id) => ({
  school, credential: { device_id: id, secret: `s${id}`, server: 'lectern.test:8443' }, policy: null, activity: null,
});

test('further codes are read forgivingly, once each, without the first', () => {
  const { codes, errors } = furtherCodes(['7kq2m-xh4pd', 'H3RT9 WWQ7C', 'h3rt9-wwq7c', 'not a code!', 42], '7KQ2MXH4PD');
  assert.deepEqual(codes, ['H3RT9WWQ7C']);
  assert.equal(errors.length, 2);
  assert.deepEqual(furtherCodes(undefined), { codes: [], errors: [] });
  const many = ['AAAAAAAAAA', 'BBBBBBBBBB', 'CCCCCCCCCC', 'DDDDDDDDDD', 'EEEEEEEEEE'];
  assert.equal(furtherCodes(many).codes.length, MAX_SCHOOLS - 1, 'a handful at most');
});

test('a stash that was tampered with or is malformed is dropped', () => {
  assert.deepEqual(loadStash(null), []);
  const good = stashed('Vale School', 2);
  assert.deepEqual(loadStash([good, { school: '', credential: good.credential }, { school: 'X' },
    { school: 'Y', credential: { device_id: 'two', secret: 's', server: 'x' } }]), [good]);
});

test('the other schools are offered only where the school in use allows it, on its sign-in', () => {
  const stash = [stashed('Vale School', 2), stashed('Oak Academy', 3), stashed('Vale School', 4)];
  assert.deepEqual(offeredSchools({ school_switch: true }, stash, 'Hill', true), ['Vale School', 'Oak Academy']);
  assert.deepEqual(offeredSchools({ school_switch: false }, stash, 'Hill', true), []);
  assert.deepEqual(offeredSchools({}, stash, 'Hill', true), []);
  assert.deepEqual(offeredSchools({ school_switch: true }, stash, 'Hill', false), [], 'a student is signed in');
});

test('a switch swaps the school in use with the one chosen, keeping each one\'s own state', () => {
  // The queue as the outbox keeps it: its numbering goes on from there.
  const queue = { next_seq: 8, pending: [{ seq: 7, event: { url: 'https://maths.test/' } }] };
  const hill = { ...stashed('Hill', 1), policy: { version: 3 }, activity: queue };
  const stash = [stashed('Vale School', 2), stashed('Oak Academy', 3)];
  const offered = ['Vale School', 'Oak Academy'];
  const r = switchTo(stash, hill, 'Oak Academy', offered);
  assert.equal(r.next.credential.device_id, 3);
  assert.deepEqual(r.stash.map((s) => s.school), ['Vale School', 'Hill']);
  assert.deepEqual(r.stash[1].activity, queue, 'Hill\'s unacknowledged activity waits for Hill');
  // Stored and read back, the queue is Hill's still, numbering included.
  const back = loadStash(JSON.parse(JSON.stringify(r.stash)));
  assert.deepEqual(loadActivityQueue(back[1].activity), queue);
  assert.equal(switchTo(stash, hill, 'Elm', offered), null, 'not registered');
  assert.equal(switchTo(stash, hill, 'Oak Academy', []), null, 'not offered now');
});

test('a school that refused the Chromebook hands it to the next one, and is dropped', () => {
  const stash = [stashed('Vale School', 2), stashed('Oak Academy', 3)];
  const r = fallBack(stash);
  assert.equal(r.next.school, 'Vale School');
  assert.deepEqual(r.stash.map((s) => s.school), ['Oak Academy'], 'the refused school is not kept');
  assert.equal(fallBack(r.stash).next.school, 'Oak Academy');
  assert.equal(fallBack([]), null, 'nowhere to go: it waits, as before');
});

test('the server\'s policy frame carries school_switch, and the extension reads it', () => {
  const fixtures = JSON.parse(readFileSync(new URL('./fixtures/server-frames.json', import.meta.url), 'utf8'));
  const policy = fixtures.find((f) => f.type === 'policy');
  assert.equal(policy.policy.school_switch, false);
  const parsed = parseServerFrame(JSON.stringify({ ...policy, policy: { ...policy.policy, school_switch: true } }));
  assert.equal(parsed.ok, true);
  assert.equal(parsed.msg.policy.school_switch, true);
});
