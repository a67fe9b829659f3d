// The school's look on the lock page (issue 13 point 1), in Chromebook
// mode: the server names the school and its logo by the SHA-256 of a PNG
// (`school_look`); the logo's bytes are asked for (`want_logo`) only when
// the stored one has another hash, and kept only if they have the hash they
// came with and fit the size limit. The lock page shows the stored logo.

/** Largest logo PNG, in bytes (the server's limit too). */
export const MAX_LOGO_BYTES = 512 * 1024;
/** Longest school name shown, in characters. */
export const MAX_SCHOOL_NAME = 100;
/** Where the logo is kept in chrome.storage.local: `{sha256, dataUrl}`. */
export const LOGO_KEY = 'schoolLogo';

/**
 * The name to show from a `school_look` frame, or null to keep the one shown.
 * @param {unknown} name
 * @returns {string | null}
 */
export function schoolName(name) {
  if (typeof name !== 'string') return null;
  const n = name.trim();
  // eslint-disable-next-line no-control-regex
  if (!n || [...n].length > MAX_SCHOOL_NAME || /[\u0000-\u001f\u007f]/.test(n)) return null;
  return n;
}

/**
 * Whether `s` is a SHA-256 in lower-case hex.
 * @param {unknown} s
 * @returns {s is string}
 */
export function isSha256(s) {
  return typeof s === 'string' && /^[0-9a-f]{64}$/.test(s);
}

/**
 * The SHA-256 of `bytes`, lower-case hex.
 * @param {Uint8Array} bytes
 * @returns {Promise<string>}
 */
async function sha256Hex(bytes) {
  const digest = new Uint8Array(await crypto.subtle.digest('SHA-256', bytes));
  return [...digest].map((b) => b.toString(16).padStart(2, '0')).join('');
}

/**
 * The school's look for one browser: `storage` is chrome.storage.local (or
 * a stand-in), `send` sends a frame to the server.
 * @param {{get: (k: string) => Promise<Record<string, any>>, set: (o: Record<string, any>) => Promise<void>, remove: (k: string) => Promise<void>}} storage
 * @param {(frame: Record<string, unknown>) => void} send
 */
export function createSchoolLook(storage, send) {
  /** The logo asked for and not yet received. @type {string | null} */
  let wanted = null;

  return {
    /**
     * A `school_look` frame: returns the name to show (or null), and asks for
     * the logo when it is not the one stored.
     * @param {Record<string, any>} msg
     * @returns {Promise<string | null>}
     */
    async look(msg) {
      const sha = msg.logo_sha256;
      const stored = (await storage.get(LOGO_KEY))[LOGO_KEY];
      if (!isSha256(sha)) {
        wanted = null;
        if (stored) await storage.remove(LOGO_KEY);
      } else if (!stored || stored.sha256 !== sha) {
        wanted = sha;
        send({ type: 'want_logo', sha256: sha });
      }
      return schoolName(msg.name);
    },
    /**
     * A `school_logo` frame: keeps the logo if it is the one asked for.
     * @param {Record<string, any>} msg
     * @returns {Promise<boolean>} whether it was kept
     */
    async logo(msg) {
      if (!isSha256(msg.sha256) || msg.sha256 !== wanted || typeof msg.png !== 'string') return false;
      if (msg.png.length > Math.ceil(MAX_LOGO_BYTES / 3) * 4) return false;
      let bytes;
      try {
        bytes = Uint8Array.from(atob(msg.png), (c) => c.charCodeAt(0));
      } catch {
        return false;
      }
      if (bytes.length > MAX_LOGO_BYTES || (await sha256Hex(bytes)) !== msg.sha256) return false;
      wanted = null;
      await storage.set({ [LOGO_KEY]: { sha256: msg.sha256, dataUrl: `data:image/png;base64,${msg.png}` } });
      return true;
    },
  };
}
