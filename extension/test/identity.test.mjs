// Unit tests of identity.js's pure part: which user is reported, when the
// sign-in gate closes, and the redirect rule it installs.
//
// Run: node --test extension/test/

import assert from 'node:assert/strict';
import { test } from 'node:test';

import {
  MAX_USER_LEN, SIGNIN_DOMAINS, SIGNIN_PAGE, SIGNIN_RULE_ID, gated, normalizeUser, pickUser, signinRule, tabNeedsSignin,
} from '../identity.js';
import { DEFAULT_SERVER_POLICY, deviceState, parseServerPolicy } from '../protocol.js';

test('user names are trimmed and bounded; anything else is unknown', () => {
  assert.equal(normalizeUser('  zoe@school.example '), 'zoe@school.example');
  for (const bad of [null, undefined, 42, {}, '', '   ', 'a\nb', 'tab\there', 'x'.repeat(MAX_USER_LEN + 1)]) {
    assert.equal(normalizeUser(bad), null, JSON.stringify(bad));
  }
  assert.equal(normalizeUser('é'.repeat(MAX_USER_LEN)), 'é'.repeat(MAX_USER_LEN), 'counted in characters');
});

test('the signed-in profile wins over the managed value, which fills in', () => {
  assert.equal(pickUser({ profileEmail: 'zoe@school.example', managedUser: 'zoe' }), 'zoe@school.example');
  assert.equal(pickUser({ profileEmail: '', managedUser: 'zoe' }), 'zoe', 'not signed in: the admin-set user');
  assert.equal(pickUser({ profileEmail: null, managedUser: ' ' }), null);
  assert.equal(pickUser({}), null);
});

test('browsing is gated only when sign-in is required and nobody is known', () => {
  assert.equal(gated({ user: null, requireSignIn: true }), true);
  assert.equal(gated({ user: 'zoe', requireSignIn: true }), false);
  assert.equal(gated({ user: null, requireSignIn: false }), false);
  assert.equal(gated({ user: null, requireSignIn: /** @type {any} */ ('true') }), false, 'only a real true');
});

test('the redirect rule sends web pages to the sign-in page, sparing sign-in and the server', () => {
  const r = signinRule(['Lectern.School.example', '[::1]', 'bad host!']);
  assert.equal(r.id, SIGNIN_RULE_ID);
  assert.deepEqual(r.action, { type: 'redirect', redirect: { extensionPath: SIGNIN_PAGE } });
  assert.deepEqual(r.condition.resourceTypes, ['main_frame']);
  assert.ok(new RegExp(r.condition.regexFilter).test('https://example.org/'));
  assert.ok(!new RegExp(r.condition.regexFilter).test('chrome://settings'));
  assert.deepEqual(r.condition.excludedRequestDomains, [...SIGNIN_DOMAINS, 'lectern.school.example', '::1']);
});

test('open pages move to the sign-in page unless they are sign-in or the server', () => {
  assert.equal(tabNeedsSignin('https://games.example/play'), true);
  assert.equal(tabNeedsSignin('https://accounts.google.com/signin'), false);
  assert.equal(tabNeedsSignin('https://x.accounts.google.com/'), false);
  assert.equal(tabNeedsSignin('https://lectern.test:30016/', ['lectern.test']), false);
  assert.equal(tabNeedsSignin('chrome://newtab/'), false);
  assert.equal(tabNeedsSignin('chrome-extension://abc/signin.html'), false);
  assert.equal(tabNeedsSignin(undefined), false);
});

test('require_sign_in travels in the policy and the user in the state', () => {
  assert.equal(DEFAULT_SERVER_POLICY.require_sign_in, false);
  const p = parseServerPolicy({ version: 3, require_sign_in: true });
  assert.ok(p.ok && p.policy.require_sign_in === true);
  assert.equal(parseServerPolicy({ require_sign_in: 'yes' }).ok, false);
  const s = deviceState({ web: { internet_blocked: false, mode: 'off', allow: [], block: [], always_allowed: [] },
    policy: DEFAULT_SERVER_POLICY, tabs: [], messageShown: false, user: 'zoe@school.example' });
  assert.equal(s.user, 'zoe@school.example');
});
