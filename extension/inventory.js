// The Chromebook's inventory (standalone mode), reported as the agent does:
// the hex SHA-256 of the report's JSON goes to the server at connect
// (inventory_hash), and the JSON itself, in parts of at most 24 KiB, only
// when the server asks (inventory_request). The same report shape and limits
// as lectern_proto::inventory; the server checks them again.
//
// Chrome gives: the CPU model and count (chrome.system.cpu), the memory
// (chrome.system.memory), storage units (chrome.system.storage: on ChromeOS
// the internal disk, elsewhere only removable media, which are left out), the
// OS and architecture (chrome.runtime.getPlatformInfo, and the OS version
// from navigator.userAgentData), and on managed ChromeOS the serial number
// and asset id (chrome.enterprise.deviceAttributes). It does not give
// installed packages, network interfaces and their MAC addresses, batteries,
// the kernel, the boot time, or the disks of a machine that is not ChromeOS.

/** Largest slice of the JSON in one part, UTF-8 bytes (INVENTORY_PART_BYTES). */
export const PART_BYTES = 24 * 1024;
/** Longest text field, UTF-8 bytes (MAX_FIELD); longer ones are cut. */
export const MAX_FIELD = 1024;
/** Most disks reported (MAX_ITEMS). */
export const MAX_ITEMS = 256;
/** Free space is rounded down to this (FREE_SPACE_STEP, 1 GiB). */
export const FREE_SPACE_STEP = 1024 ** 3;

/** Names getPlatformInfo's `os` gets in the report (as os-release IDs). */
const OS_IDS = /** @type {Record<string, string>} */ ({ cros: 'chromeos', win: 'windows', mac: 'macos', linux: 'linux', android: 'android', fuchsia: 'fuchsia', openbsd: 'openbsd' });

/**
 * Cuts `s` to at most `max` UTF-8 bytes, at a character boundary.
 * @param {unknown} s
 * @param {number} [max]
 * @returns {string}
 */
export function field(s, max = MAX_FIELD) {
  if (typeof s !== 'string') return '';
  let out = '';
  let bytes = 0;
  for (const ch of s) {
    const n = new TextEncoder().encode(ch).length;
    if (bytes + n > max) break;
    out += ch;
    bytes += n;
  }
  return out;
}

/** A non-negative whole number, else 0. @param {unknown} n */
function count(n) {
  return typeof n === 'number' && Number.isFinite(n) && n > 0 ? Math.floor(n) : 0;
}

/**
 * @typedef {object} Facts what the Chrome APIs answered (each may be missing)
 * @property {{modelName?: string, numOfProcessors?: number, archName?: string}} [cpu]
 * @property {{capacity?: number}} [memory]
 * @property {{id?: string, name?: string, type?: string, capacity?: number, available?: number}[]} [storage]
 * @property {{os?: string, arch?: string}} [platform]
 * @property {{platform?: string, platformVersion?: string, model?: string}} [ua]
 * @property {{serial?: string, assetId?: string}} [device]
 */

/**
 * The report (lectern_proto::inventory::Inventory) from what Chrome said.
 * Fields Chrome cannot give stay empty, as the server's defaults are.
 * @param {Facts} f
 */
export function buildInventory(f) {
  const os = OS_IDS[f.platform?.os ?? ''] ?? field(f.platform?.os ?? '', 64);
  const version = field(f.ua?.platformVersion ?? '');
  const platformName = field(f.ua?.platform ?? '') || (os === 'chromeos' ? 'ChromeOS' : os);
  // Only the internal disk: removable media come and go, and elsewhere
  // than ChromeOS they are all Chrome lists.
  const disks = (os === 'chromeos' ? (f.storage ?? []) : [])
    .filter((u) => u.type === 'fixed')
    .slice(0, MAX_ITEMS)
    .map((u) => ({
      device: field(u.name || u.id || ''),
      mount: '',
      fs: '',
      size_bytes: count(u.capacity),
      free_bytes: count(u.available) - (count(u.available) % FREE_SPACE_STEP),
    }));
  const assetId = field(f.device?.assetId ?? '');
  return {
    hardware: {
      vendor: '',
      model: field(f.ua?.model ?? ''),
      serial: field(f.device?.serial ?? ''),
      // Left out when empty, as the agent leaves it out.
      ...(assetId ? { asset_id: assetId } : {}),
      cpu_model: field(f.cpu?.modelName ?? '').trim(),
      cpu_count: count(f.cpu?.numOfProcessors),
      memory_bytes: count(f.memory?.capacity),
    },
    disks,
    network: [],
    batteries: [],
    os: { id: field(os), name: field([platformName, version].filter(Boolean).join(' ')), version },
    kernel: '',
    boot_time_ms: 0,
    packages: [],
  };
}

/**
 * Splits the JSON into parts of at most `max` UTF-8 bytes, at character
 * boundaries (as split_parts does).
 * @param {string} json
 * @param {number} [max]
 * @returns {string[]}
 */
export function splitParts(json, max = PART_BYTES) {
  const parts = [];
  let part = '';
  let bytes = 0;
  const enc = new TextEncoder();
  for (const ch of json) {
    const n = enc.encode(ch).length;
    if (bytes + n > max) {
      parts.push(part);
      part = '';
      bytes = 0;
    }
    part += ch;
    bytes += n;
  }
  if (part) parts.push(part);
  return parts;
}

/**
 * Hex SHA-256 of the JSON's UTF-8 bytes (what the server hashes).
 * @param {string} json
 * @returns {Promise<string>}
 */
export async function sha256Hex(json) {
  const digest = await crypto.subtle.digest('SHA-256', new TextEncoder().encode(json));
  return [...new Uint8Array(digest)].map((b) => b.toString(16).padStart(2, '0')).join('');
}

/**
 * Calls an API that may be missing (not this platform, not managed) or may
 * fail; `undefined` then.
 * @template T
 * @param {() => Promise<T> | undefined} call
 * @returns {Promise<T | undefined>}
 */
async function maybe(call) {
  try {
    return await call();
  } catch {
    return undefined;
  }
}

/**
 * Asks Chrome for the facts. `chromeApi` is `chrome` (a fake in tests),
 * `uaData` is `navigator.userAgentData`.
 * @param {any} chromeApi
 * @param {any} uaData
 * @returns {Promise<Facts>}
 */
export async function gather(chromeApi, uaData) {
  const sys = chromeApi.system ?? {};
  const attrs = chromeApi.enterprise?.deviceAttributes;
  const [cpu, memory, units, platform, ua, serial, assetId] = await Promise.all([
    maybe(() => sys.cpu?.getInfo()),
    maybe(() => sys.memory?.getInfo()),
    maybe(() => sys.storage?.getInfo()),
    maybe(() => chromeApi.runtime?.getPlatformInfo()),
    maybe(() => uaData?.getHighEntropyValues(['platform', 'platformVersion', 'model'])),
    maybe(() => attrs && new Promise((ok) => attrs.getDeviceSerialNumber(ok))),
    maybe(() => attrs && new Promise((ok) => attrs.getDeviceAssetId(ok))),
  ]);
  const storage = [];
  for (const u of (Array.isArray(units) ? units : []).slice(0, MAX_ITEMS)) {
    const free = u.type === 'fixed' ? await maybe(() => sys.storage?.getAvailableCapacity?.(u.id)) : undefined;
    storage.push({ ...u, available: free?.availableCapacity });
  }
  return { cpu, memory, storage, platform, ua, device: { serial, assetId } };
}

/**
 * The report's JSON, its hash and its parts, ready to send.
 * @param {Facts} facts
 */
export async function report(facts) {
  const json = JSON.stringify(buildInventory(facts));
  return { json, hash: await sha256Hex(json), parts: splitParts(json) };
}
