// The lock's state machine (lock.js): a teacher's lock and a policy lock hold
// independently; what each window needs while locked.

import assert from 'node:assert/strict';
import test from 'node:test';
import { LOCKED_BY_POLICY, UNLOCKED, expire, isLocked, lockMessage, onCommand, onPolicy, parseLockState, planWindow } from '../lock.js';

test('a teacher locks and unlocks', () => {
  const a = onCommand({ ...UNLOCKED, school: 'Hillside' }, { type: 'lock', text: 'Eyes up' });
  assert.deepEqual(a.result, { status: 'done' });
  assert.ok(isLocked(a.state));
  assert.equal(lockMessage(a.state), 'Eyes up');
  assert.equal(a.state.school, 'Hillside');
  const b = onCommand(a.state, { type: 'unlock' });
  assert.deepEqual(b.result, { status: 'done' });
  assert.ok(!isLocked(b.state));
});

test('a policy lock outlasts the teacher\'s unlock and ends with the policy', () => {
  let s = onPolicy(UNLOCKED, true);
  assert.ok(isLocked(s));
  assert.match(lockMessage(s), /locked by your school/);
  s = onCommand(s, { type: 'lock', text: null }).state;
  const u = onCommand(s, { type: 'unlock' });
  assert.deepEqual(u.result, { status: 'failed', reason: LOCKED_BY_POLICY });
  assert.ok(isLocked(u.state), 'still locked by policy');
  assert.ok(!isLocked(onPolicy(u.state, false)), 'the policy ending unlocks');
  // The teacher's lock outlasts the policy's end.
  const t = onPolicy(onCommand(onPolicy(UNLOCKED, true), { type: 'lock', text: 'x' }).state, false);
  assert.ok(isLocked(t));
});

test('stored state is read defensively', () => {
  assert.deepEqual(parseLockState(undefined), UNLOCKED);
  assert.deepEqual(parseLockState('junk'), UNLOCKED);
  assert.deepEqual(parseLockState({ teacher: { text: 5 }, policy: 'yes', school: 3 }), { teacher: { text: null }, policy: false, school: '' });
  const s = { teacher: { text: 'Hi' }, policy: true, school: 'S' };
  assert.deepEqual(parseLockState(JSON.parse(JSON.stringify(s))), s);
});

test('each window gets exactly one lock page, in front', () => {
  const isLock = (u) => u.startsWith('lock:');
  assert.deepEqual(planWindow([{ id: 1, url: 'https://a', active: true }], isLock), { create: true, activate: null, close: [], reload: null, wait: false });
  assert.deepEqual(planWindow([{ id: 1, url: 'https://a', active: true }, { id: 2, url: 'lock:', active: false }], isLock),
    { create: false, activate: 2, close: [], reload: null, wait: false });
  assert.deepEqual(planWindow([{ id: 2, url: 'lock:', active: false }, { id: 3, url: 'lock:', active: true }], isLock),
    { create: false, activate: null, close: [2], reload: null, wait: false });
});

test('a lock tab that shows an error page instead of the lock page is reloaded', () => {
  const isLock = (u) => u.startsWith('lock:');
  // Restored at startup before the extension loaded: the lock URL, no lock page running.
  assert.deepEqual(planWindow([{ id: 1, url: 'lock:', active: true, live: false }, { id: 2, url: 'about:blank', active: false }], isLock),
    { create: false, activate: null, close: [], reload: 1, wait: true });
  // Still loading: given time.
  assert.deepEqual(planWindow([{ id: 1, url: 'lock:', active: true, live: false, loading: true }], isLock),
    { create: false, activate: null, close: [], reload: null, wait: true });
  // A live lock page is kept over a dead one, even one in front.
  assert.deepEqual(planWindow([{ id: 1, url: 'lock:', active: true, live: false }, { id: 2, url: 'lock:', active: false, live: true }], isLock),
    { create: false, activate: 2, close: [1], reload: null, wait: false });
});

test('a timed lock ends by itself, a later lock or unlock replaces it', () => {
  const now = 1_000_000;
  const a = onCommand(UNLOCKED, { type: 'lock', text: 'Back soon', minutes: 5 }, now);
  assert.deepEqual(a.result, { status: 'done' });
  assert.equal(a.state.teacher.until, now + 5 * 60_000);
  assert.equal(expire(a.state, now + 4 * 60_000), a.state, 'still locked after 4 minutes');
  const ended = expire(a.state, now + 5 * 60_000);
  assert.ok(!isLocked(ended), 'unlocked after 5 minutes');
  // A plain lock on top has no end.
  const plain = onCommand(a.state, { type: 'lock', text: null }, now + 60_000).state;
  assert.ok(isLocked(expire(plain, now + 60 * 60_000)));
  // A policy lock stays when the teacher's time is up.
  assert.ok(isLocked(expire(onPolicy(a.state, true), now + 6 * 60_000)));
  // Out of range: refused, nothing changes.
  for (const minutes of [0, 601, 1.5]) {
    const r = onCommand(UNLOCKED, { type: 'lock', minutes }, now);
    assert.equal(r.result.status, 'failed');
    assert.ok(!isLocked(r.state));
  }
  // Stored and read back, the end survives; a bad one is dropped.
  assert.deepEqual(parseLockState(JSON.parse(JSON.stringify(a.state))), a.state);
  assert.deepEqual(parseLockState({ teacher: { text: 'x', until: 'soon' } }).teacher, { text: 'x' });
});
