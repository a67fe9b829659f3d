// Evidence at a readable size: the tab at its own width up to 1920 px, at the
// best JPEG quality that fits the server's per-frame limit, narrower only
// when no quality fits (safety-core.js fitJpeg, as the agent's evidence.rs).
import { test } from 'node:test';
import assert from 'node:assert/strict';

import { EVIDENCE_FRAME_BYTES, EVIDENCE_MAX_WIDTH, evidenceSizes, fitJpeg } from '../safety-core.js';

/** A fake encoder: `bytesPerPixel(quality)` bytes a pixel, recording each call. */
function encoder(bytesPerPixel) {
  const calls = [];
  const encode = async (width, height, quality) => {
    calls.push([width, height, quality]);
    return new Uint8Array(Math.round(width * height * bytesPerPixel(quality)));
  };
  return { calls, encode };
}

test('a 1600x900 tab is kept whole at the best quality that fits', async () => {
  const { calls, encode } = encoder((q) => q / 2);
  const f = await fitJpeg(1600, 900, EVIDENCE_FRAME_BYTES * 0.7, encode);
  assert.equal(f.width, 1600);
  assert.equal(f.height, 900);
  assert.ok(f.jpeg.length <= EVIDENCE_FRAME_BYTES * 0.7);
  // 0.8 is too big at 1600x900 (0.4 B/px of 1.44 Mpx: 576,000 bytes, over 550,502); 0.65 fits.
  assert.deepEqual(calls.map((c) => c[2]), [0.8, 0.65]);
});

test('a wide tab is scaled to 1920 px; narrower only when nothing fits', async () => {
  const sizes = evidenceSizes(3840, 2160);
  assert.equal(sizes[0].width, EVIDENCE_MAX_WIDTH);
  assert.equal(sizes[0].height, 1080);
  assert.deepEqual([...new Set(sizes.map((s) => s.width))], [1920, 1280, 960, 640]);
  const { encode } = encoder(() => 1);
  const f = await fitJpeg(1600, 900, 640 * 360, encode);
  assert.equal(f.width, 640, 'only the old 640 px fits one byte a pixel');
  assert.equal(await fitJpeg(1600, 900, 100, encode), null);
});

test('a small tab is not enlarged', () => {
  assert.deepEqual([...new Set(evidenceSizes(800, 600).map((s) => s.width))], [800, 640]);
});
