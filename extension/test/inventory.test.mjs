// The Chromebook's inventory (extension/inventory.js): what Chrome's APIs
// answer becomes the agent's report shape, hashed and split as the agent does.
import assert from 'node:assert/strict';
import { createHash } from 'node:crypto';
import test from 'node:test';

import { FREE_SPACE_STEP, MAX_FIELD, PART_BYTES, buildInventory, field, gather, report, splitParts } from '../inventory.js';

/** A managed Chromebook's chrome.* as far as the report asks. */
function fakeChrome({ managed }) {
  return {
    system: {
      cpu: { getInfo: async () => ({ modelName: 'Intel(R) Celeron(R) N4020 ', numOfProcessors: 2, archName: 'x86_64' }) },
      memory: { getInfo: async () => ({ capacity: 4 * 1024 ** 3, availableCapacity: 1e9 }) },
      storage: {
        getInfo: async () => [
          { id: 'int', name: 'eMMC', type: 'fixed', capacity: 64e9 },
          { id: 'usb', name: 'USB stick', type: 'removable', capacity: 8e9 },
        ],
        getAvailableCapacity: async (id) => ({ id, availableCapacity: 10.5 * FREE_SPACE_STEP }),
      },
    },
    runtime: { getPlatformInfo: async () => ({ os: 'cros', arch: 'x86-64' }) },
    enterprise: managed ? {
      deviceAttributes: {
        getDeviceSerialNumber: (cb) => cb('5CD1234XYZ'),
        getDeviceAssetId: (cb) => cb('LIB-0042'),
      },
    } : undefined,
  };
}

const uaData = { getHighEntropyValues: async () => ({ platform: 'Chrome OS', platformVersion: '15633.69.0', model: '' }) };

test('a managed Chromebook reports CPU, memory, its disk, OS, serial and asset id', async () => {
  const inv = buildInventory(await gather(fakeChrome({ managed: true }), uaData));
  assert.deepEqual(inv.hardware, {
    vendor: '', model: '', serial: '5CD1234XYZ', asset_id: 'LIB-0042',
    cpu_model: 'Intel(R) Celeron(R) N4020', cpu_count: 2, memory_bytes: 4 * 1024 ** 3,
  });
  assert.deepEqual(inv.disks, [{ device: 'eMMC', mount: '', fs: '', size_bytes: 64e9, free_bytes: 10 * FREE_SPACE_STEP }]);
  assert.deepEqual(inv.os, { id: 'chromeos', name: 'Chrome OS 15633.69.0', version: '15633.69.0' });
  // What Chrome cannot give stays empty.
  assert.deepEqual([inv.network, inv.batteries, inv.packages, inv.kernel, inv.boot_time_ms], [[], [], [], '', 0]);
});

test('unmanaged or not ChromeOS: no serial, no disks, missing APIs are no error', async () => {
  const c = fakeChrome({ managed: false });
  let inv = buildInventory(await gather(c, uaData));
  assert.equal(inv.hardware.serial, '');
  assert.equal('asset_id' in inv.hardware, false, 'left out when empty');
  c.runtime.getPlatformInfo = async () => ({ os: 'win', arch: 'x86-64' });
  inv = buildInventory(await gather(c, undefined));
  assert.deepEqual(inv.disks, [], 'only removable media elsewhere');
  assert.equal(inv.os.id, 'windows');
  inv = buildInventory(await gather({ runtime: { getPlatformInfo: async () => { throw new Error('no'); } } }, undefined));
  assert.equal(inv.hardware.cpu_count, 0);
});

test('the hash is the SHA-256 of the JSON and the parts join back within the limit', async () => {
  const r = await report(await gather(fakeChrome({ managed: true }), uaData));
  assert.equal(r.hash, createHash('sha256').update(r.json, 'utf8').digest('hex'));
  assert.deepEqual(r.parts, [r.json]);
  const long = 'é'.repeat(PART_BYTES);
  const parts = splitParts(long);
  assert.ok(parts.length > 1);
  assert.ok(parts.every((p) => Buffer.byteLength(p) <= PART_BYTES));
  assert.equal(parts.join(''), long);
  assert.deepEqual(splitParts(''), []);
});

test('fields are cut to the server limit at a character boundary', () => {
  const cut = field('é'.repeat(MAX_FIELD));
  assert.equal(Buffer.byteLength(cut), MAX_FIELD);
  assert.equal(field(7), '');
  const inv = buildInventory({ cpu: { modelName: 'x'.repeat(5000), numOfProcessors: -3 } });
  assert.equal(inv.hardware.cpu_model.length, MAX_FIELD);
  assert.equal(inv.hardware.cpu_count, 0);
});
