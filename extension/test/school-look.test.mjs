// Unit tests of school-look.js: the logo is asked for only when it is not
// the one stored, kept only with the right hash and size, and removed when
// the school has none; names are one bounded line.
//
// Run: node --test extension/test/

import assert from 'node:assert/strict';
import { createHash } from 'node:crypto';
import { test } from 'node:test';

import { LOGO_KEY, MAX_LOGO_BYTES, MAX_SCHOOL_NAME, createSchoolLook, schoolName } from '../school-look.js';

function memoryStorage() {
  /** @type {Record<string, any>} */
  const data = {};
  return {
    data,
    get: async (/** @type {string} */ k) => (k in data ? { [k]: data[k] } : {}),
    set: async (/** @type {Record<string, any>} */ o) => { Object.assign(data, o); },
    remove: async (/** @type {string} */ k) => { delete data[k]; },
  };
}

const png = Buffer.from('89504e470d0a1a0a-pretend', 'utf8');
const sha = createHash('sha256').update(png).digest('hex');
const b64 = png.toString('base64');

test('the logo is asked for once, checked by hash, and removed with the school’s', async () => {
  const storage = memoryStorage();
  /** @type {Record<string, unknown>[]} */
  const sent = [];
  const look = createSchoolLook(storage, (f) => sent.push(f));
  assert.equal(await look.look({ name: ' Hill School ', logo_sha256: sha }), 'Hill School');
  assert.deepEqual(sent, [{ type: 'want_logo', sha256: sha }]);
  assert.equal(await look.logo({ sha256: sha, png: Buffer.from('other').toString('base64') }), false, 'wrong bytes');
  assert.equal(await look.logo({ sha256: 'a'.repeat(64), png: b64 }), false, 'not asked for');
  assert.equal(await look.logo({ sha256: sha, png: 'A'.repeat(Math.ceil(MAX_LOGO_BYTES / 3) * 4 + 4) }), false, 'too large');
  assert.equal(storage.data[LOGO_KEY], undefined);
  assert.equal(await look.logo({ sha256: sha, png: b64 }), true);
  assert.equal(storage.data[LOGO_KEY].dataUrl, `data:image/png;base64,${b64}`);
  // The same logo again (a reconnect): nothing asked.
  await look.look({ name: 'Hill School', logo_sha256: sha });
  assert.equal(sent.length, 1);
  // None any more.
  await look.look({ name: 'Hill School' });
  assert.equal(storage.data[LOGO_KEY], undefined);
});

test('names are one bounded line, else the shown one stays', () => {
  assert.equal(schoolName('Ysgol Gŵyr'), 'Ysgol Gŵyr');
  for (const bad of [null, 42, '', '  ', 'a\nb', 'x'.repeat(MAX_SCHOOL_NAME + 1)]) {
    assert.equal(schoolName(bad), null, JSON.stringify(bad));
  }
});
