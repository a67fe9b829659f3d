#!/usr/bin/env node
// Helpers for scripts/package-extension.sh and scripts/test-extension-packages.sh
// (Node's standard library only):
//
//   id-of-key KEY.pem              print the Chrome extension ID of a private key
//   pubkey-of-key KEY.pem          print the base64 DER public key (manifest "key")
//   set-key MANIFEST PUBKEY_B64    write the public key into a staged manifest
//   firefox-manifest SRC DEST GECKO_ID
//                                  the Firefox manifest made from the Chromium one
//   update-xml ID VERSION CRX_URL  print a gupdate manifest for ExtensionInstallForcelist
//   verify-crx FILE.crx [ID]       check a CRX3 (magic, version, signature, ID);
//                                  print its ID
//
// Chrome derives an extension's ID from its public key: the first 16 bytes
// of SHA-256 over the DER SubjectPublicKeyInfo, each hex digit 0-f written a-p.

import { createHash, createPublicKey, createPrivateKey, createVerify } from 'node:crypto';
import { readFileSync, writeFileSync } from 'node:fs';

const die = (msg) => {
  console.error(`extension-pack: ${msg}`);
  process.exit(1);
};

/** The ID Chrome gives an extension with this DER public key. */
export function idOfPublicKey(der) {
  const hex = createHash('sha256').update(der).digest('hex').slice(0, 32);
  return [...hex].map((c) => String.fromCharCode(97 + parseInt(c, 16))).join('');
}

function publicDerOfKeyFile(path) {
  const key = createPrivateKey(readFileSync(path));
  if (key.asymmetricKeyType !== 'rsa') die(`${path}: not an RSA key`);
  return createPublicKey(key).export({ type: 'spki', format: 'der' });
}

/**
 * The Firefox manifest: same sources, with the differences Firefox needs.
 * Chrome-only keys and permissions are dropped (Firefox would warn about each).
 */
export function firefoxManifest(chromium, geckoId) {
  const m = structuredClone(chromium);
  delete m.key;
  delete m.minimum_chrome_version;
  // Firefox ignores managed_schema (policies.json carries managed storage).
  if (m.storage) delete m.storage;
  if (m.background && m.background.service_worker) {
    // Firefox MV3 runs the background as an event page, not a service worker.
    m.background = { scripts: [m.background.service_worker], type: m.background.type || 'module' };
  }
  const chromeOnly = new Set(['offscreen', 'identity.email', 'enterprise.deviceAttributes', 'enterprise.platformKeys',
    'loginState', 'login', 'wallpaper', 'tabCapture', 'desktopCapture', 'system.display', 'system.cpu',
    'system.memory', 'system.storage']);
  if (Array.isArray(m.permissions)) m.permissions = m.permissions.filter((p) => !chromeOnly.has(p));
  if (Array.isArray(m.optional_permissions)) m.optional_permissions = m.optional_permissions.filter((p) => !chromeOnly.has(p));
  m.browser_specific_settings = {
    gecko: {
      id: geckoId,
      // 128 is the ESR schools run; DNR redirects with regexSubstitution and
      // MV3 host permissions granted at install are there.
      strict_min_version: '128.0',
      // Mozilla's add-on site asks every new add-on to declare what it
      // sends: browsing activity and typed text go to the school's server.
      data_collection_permissions: { required: ['browsingActivity', 'websiteContent'] },
    },
  };
  return m;
}

/** A gupdate manifest naming one CRX. */
export function updateXml(id, version, crxUrl) {
  const esc = (s) => String(s).replace(/&/g, '&amp;').replace(/'/g, '&apos;').replace(/</g, '&lt;');
  return `<?xml version='1.0' encoding='UTF-8'?>
<gupdate xmlns='http://www.google.com/update2/response' protocol='2.0'>
  <app appid='${esc(id)}'>
    <updatecheck codebase='${esc(crxUrl)}' version='${esc(version)}' />
  </app>
</gupdate>
`;
}

/** Reads protobuf fields (wire types 0 and 2 only, as in CRX headers). */
function protoFields(buf) {
  const out = [];
  let i = 0;
  const varint = () => {
    let v = 0n;
    let shift = 0n;
    for (;;) {
      if (i >= buf.length) throw new Error('truncated varint');
      const b = buf[i++];
      v |= BigInt(b & 0x7f) << shift;
      if (!(b & 0x80)) return v;
      shift += 7n;
    }
  };
  while (i < buf.length) {
    const tag = Number(varint());
    const field = tag >>> 3;
    const wire = tag & 7;
    if (wire === 0) out.push({ field, value: varint() });
    else if (wire === 2) {
      const len = Number(varint());
      if (i + len > buf.length) throw new Error('truncated field');
      out.push({ field, bytes: buf.subarray(i, i + len) });
      i += len;
    } else throw new Error(`unexpected wire type ${wire}`);
  }
  return out;
}

/**
 * Checks a CRX3 file: magic, version 3, the signed crx_id, and every
 * RSA-SHA256 proof over the signed data and the archive; the ID must be
 * that of a proof's key. Returns the ID.
 */
export function verifyCrx(buf) {
  if (buf.length < 12 || buf.subarray(0, 4).toString('latin1') !== 'Cr24') throw new Error('not a CRX (no Cr24 magic)');
  const version = buf.readUInt32LE(4);
  if (version !== 3) throw new Error(`CRX version ${version}, expected 3`);
  const headerLen = buf.readUInt32LE(8);
  const header = buf.subarray(12, 12 + headerLen);
  const archive = buf.subarray(12 + headerLen);
  if (archive.subarray(0, 4).toString('latin1') !== 'PK\x03\x04') throw new Error('no zip archive after the header');
  const fields = protoFields(header);
  const signedData = fields.find((f) => f.field === 10000)?.bytes;
  if (!signedData) throw new Error('no signed_header_data');
  const crxId = protoFields(signedData).find((f) => f.field === 1)?.bytes;
  if (!crxId || crxId.length !== 16) throw new Error('no 16-byte crx_id');
  const id = [...crxId.toString('hex')].map((c) => String.fromCharCode(97 + parseInt(c, 16))).join('');
  const lenLe = Buffer.alloc(4);
  lenLe.writeUInt32LE(signedData.length);
  const message = Buffer.concat([Buffer.from('CRX3 SignedData\x00', 'latin1'), lenLe, signedData, archive]);
  const proofs = fields.filter((f) => f.field === 2).map((f) => protoFields(f.bytes));
  if (!proofs.length) throw new Error('no sha256_with_rsa proof');
  let idKeyFound = false;
  for (const proof of proofs) {
    const pub = proof.find((f) => f.field === 1)?.bytes;
    const sig = proof.find((f) => f.field === 2)?.bytes;
    if (!pub || !sig) throw new Error('incomplete proof');
    const v = createVerify('sha256');
    v.update(message);
    if (!v.verify(createPublicKey({ key: Buffer.from(pub), format: 'der', type: 'spki' }), Buffer.from(sig))) {
      throw new Error('a signature does not verify');
    }
    if (idOfPublicKey(pub) === id) idKeyFound = true;
  }
  if (!idKeyFound) throw new Error(`no proof's key gives the ID ${id}`);
  return id;
}

const [cmd, ...args] = process.argv.slice(2);
if (import.meta.url === `file://${process.argv[1]}`) {
  try {
    switch (cmd) {
      case 'id-of-key':
        console.log(idOfPublicKey(publicDerOfKeyFile(args[0])));
        break;
      case 'pubkey-of-key':
        console.log(publicDerOfKeyFile(args[0]).toString('base64'));
        break;
      case 'set-key': {
        const m = JSON.parse(readFileSync(args[0], 'utf8'));
        m.key = args[1];
        writeFileSync(args[0], `${JSON.stringify(m, null, 2)}\n`);
        break;
      }
      case 'firefox-manifest': {
        const m = JSON.parse(readFileSync(args[0], 'utf8'));
        writeFileSync(args[1], `${JSON.stringify(firefoxManifest(m, args[2]), null, 2)}\n`);
        break;
      }
      case 'update-xml':
        process.stdout.write(updateXml(args[0], args[1], args[2]));
        break;
      case 'verify-crx': {
        const id = verifyCrx(readFileSync(args[0]));
        if (args[1] && id !== args[1]) die(`${args[0]}: ID ${id}, expected ${args[1]}`);
        console.log(id);
        break;
      }
      default:
        die(`unknown command ${cmd ?? '(none)'}`);
    }
  } catch (err) {
    die(err.message);
  }
}
