// Pure parts of screens on demand (screens.js): the media frame the server
// decodes (crates/proto media.rs), the stream parameters and the browser's
// rate limit, the privacy rule (Policy::allows_stream) and which pages get a
// placeholder instead of a picture.

import assert from 'node:assert/strict';
import test from 'node:test';
import {
  MAX_WIDTH, MEDIA_HEADER_LEN, MEDIA_THUMBNAIL, MIN_CAPTURE_INTERVAL_MS, allowsStream, encodeMediaFrame, scaledSize,
  streamParams, uncapturableReason,
} from '../screens.js';

test('media frames are [kind u8][width u16 BE][height u16 BE][payload]', () => {
  const f = encodeMediaFrame(MEDIA_THUMBNAIL, 320, 0x1c2, new Uint8Array([0xff, 0xd8, 0xff]));
  assert.equal(MEDIA_HEADER_LEN, 5);
  assert.deepEqual([...f], [1, 0x01, 0x40, 0x01, 0xc2, 0xff, 0xd8, 0xff]);
  assert.throws(() => encodeMediaFrame(1, 70000, 1, new Uint8Array()), RangeError);
});

test('the stream follows the request, within the browser\'s two captures a second', () => {
  assert.deepEqual(streamParams({ width: 320, interval_ms: 1000 }), { width: 320, intervalMs: 1000, clamped: false });
  // Live view asks for more than the browser allows: 2 frames a second.
  assert.deepEqual(streamParams({ width: 1280, interval_ms: 200 }), { width: 1280, intervalMs: MIN_CAPTURE_INTERVAL_MS, clamped: true });
  assert.equal(MIN_CAPTURE_INTERVAL_MS, 500);
  assert.equal(streamParams({ width: 99999, interval_ms: 10_000_000 }).width, MAX_WIDTH);
  assert.equal(streamParams({ width: 1, interval_ms: 10_000_000 }).intervalMs, 60_000);
  assert.equal(streamParams({ width: 1 }).width, 32);
});

test('privacy: the same rule as Policy::allows_stream', () => {
  assert.equal(allowsStream({ thumbnails_allowed: true, remote_view: 'allow' }, false), true);
  assert.equal(allowsStream({ thumbnails_allowed: true, remote_view: 'ask_then_deny' }, false), true);
  assert.equal(allowsStream({ thumbnails_allowed: true, remote_view: 'deny' }, false), false);
  assert.equal(allowsStream({ thumbnails_allowed: true, remote_view: 'deny' }, true), true);
  assert.equal(allowsStream({ thumbnails_allowed: false, remote_view: 'allow' }, true), false);
});

test('pages the browser will not capture get a placeholder reason', () => {
  const own = 'chrome-extension://abc';
  assert.equal(uncapturableReason('https://example.org/x', own), null);
  assert.equal(uncapturableReason('http://red.test:8080/', own), null);
  assert.equal(uncapturableReason(`${own}/lock.html`, own), null);
  assert.match(uncapturableReason('chrome://newtab/', own), /new tab/);
  assert.match(uncapturableReason('chrome://settings/', own), /own pages/);
  assert.match(uncapturableReason('https://chromewebstore.google.com/detail/x', own), /Web Store/);
  assert.match(uncapturableReason('https://chrome.google.com/webstore/category', own), /Web Store/);
  assert.match(uncapturableReason('chrome-extension://other/page.html', own), /chrome-extension:/);
  assert.match(uncapturableReason('file:///home/x.pdf', own), /local files/);
  assert.match(uncapturableReason('', own), /No page/);
  assert.match(uncapturableReason(null, own), /No page/);
});

test('thumbnails keep the aspect ratio and never upscale', () => {
  assert.deepEqual(scaledSize(1280, 800, 320), { w: 320, h: 200 });
  assert.deepEqual(scaledSize(200, 100, 320), { w: 200, h: 100 });
  assert.deepEqual(scaledSize(0, 0, 320), { w: 320, h: 180 });
});

test('the policy\'s privacy settings and start_thumbnails are read from the server', async () => {
  const P = await import('../protocol.js');
  const p = P.parseServerPolicy({ remote_view: 'deny', thumbnails_allowed: false });
  assert.ok(p.ok);
  assert.equal(p.policy.remote_view, 'deny');
  assert.equal(p.policy.thumbnails_allowed, false);
  assert.equal(P.parseServerPolicy({}).policy.thumbnails_allowed, true);
  assert.equal(P.parseServerPolicy({ remote_view: 'maybe' }).ok, false);
  const f = P.parseServerFrame(JSON.stringify({ type: 'start_thumbnails', width: 320, interval_ms: 1000, privacy_bypass: true }));
  assert.deepEqual(f, { ok: true, msg: { type: 'start_thumbnails', width: 320, interval_ms: 1000, privacy_bypass: true } });
  assert.equal(P.parseServerFrame(JSON.stringify({ type: 'start_thumbnails', width: 'big' })).ok, false);
  assert.ok(P.CHROMEBOOK_CAPABILITIES.includes('thumbnails') && P.CHROMEBOOK_CAPABILITIES.includes('lock'));
  assert.ok(!P.CHROMEBOOK_CAPABILITIES.includes('logout'));
  const web = { internet_blocked: false, mode: 'off', allow: [], block: [], always_allowed: [], set_by: 'your school' };
  const s = P.deviceState({ web, policy: { ...P.DEFAULT_SERVER_POLICY, screen_locked: true }, tabs: [], messageShown: false, locked: true, limits: ['lock covers browser windows only'] });
  assert.equal(s.locked, true);
  assert.deepEqual(s.unsupported, ['lock covers browser windows only'], 'screen_locked is enforced, its limits are reported');
});
