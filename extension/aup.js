// The acceptable use policy in standalone (Chromebook) mode: while the
// server says the signed-in student has a policy to accept, every normal
// window shows the policy page (aup.html) in front, new tabs and
// navigations in front become it, and nothing else can be browsed until the
// student presses "I accept"; then the answer goes to the server (which
// records it for this device and the user it reports) and the pages close.
// A teacher's lock goes over it: while locked this controller leaves the
// windows to the lock. The pending policy lives in chrome.storage.local so
// the policy page can read it and a restarted worker still enforces it.

import { planWindow } from './lock.js';

/** Where the pending policy is kept (the page reads it from there). */
export const AUP_KEY = 'aupPending';

/**
 * @typedef {object} Aup
 * @property {number} version_id
 * @property {number} version
 * @property {string} title
 * @property {string} text
 * @property {number} published_at
 */

/**
 * A stored pending policy, or null for anything malformed.
 * @param {unknown} raw
 * @returns {Aup | null}
 */
export function parseAup(raw) {
  if (!raw || typeof raw !== 'object') return null;
  const o = /** @type {Record<string, any>} */ (raw);
  if (!Number.isSafeInteger(o.version_id) || !Number.isSafeInteger(o.version)) return null;
  if (typeof o.title !== 'string' || typeof o.text !== 'string') return null;
  return {
    version_id: o.version_id,
    version: o.version,
    title: o.title,
    text: o.text,
    published_at: Number.isSafeInteger(o.published_at) ? o.published_at : 0,
  };
}

/**
 * The paragraphs of a policy's text (blank lines separate them).
 * @param {string} text
 * @returns {string[]}
 */
export function paragraphs(text) {
  return text.replace(/\r\n/g, '\n').split(/\n\s*\n/).map((p) => p.trim()).filter(Boolean);
}

/**
 * Makes the controller.
 * @param {(frame: Record<string, unknown>) => boolean} send sends a frame to the server
 * @param {() => boolean} locked whether a lock covers the windows now
 * @param {(...a: unknown[]) => void} [warn]
 */
export function createAup(send, locked, warn = () => {}) {
  /** @type {Aup | null} */
  let pending = null;
  let chain = Promise.resolve();
  const base = () => chrome.runtime.getURL('aup.html');
  const isAupPage = (url) => typeof url === 'string' && url.startsWith(base());
  const serial = (fn) => {
    const p = chain.then(fn, fn);
    chain = p.catch((err) => warn(`aup: ${err && err.message ? err.message : err}`));
    return p;
  };

  /** Puts the policy page in front in every normal window. */
  async function cover() {
    if (!pending || locked()) return;
    const windows = await chrome.windows.getAll({ populate: true, windowTypes: ['normal'] });
    for (const w of windows) {
      const tabs = (w.tabs || []).map((t) => ({
        id: /** @type {number} */ (t.id), url: t.url || t.pendingUrl || '', active: t.active,
      }));
      const plan = planWindow(tabs, isAupPage);
      if (plan.create) await chrome.tabs.create({ windowId: w.id, url: base(), active: true, index: 0 });
      if (plan.activate !== null) await chrome.tabs.update(plan.activate, { active: true });
      if (plan.close.length) await chrome.tabs.remove(plan.close);
    }
  }

  /** Closes every policy page (a window left empty gets a new tab first). */
  async function uncover() {
    const tabs = await chrome.tabs.query({});
    const ids = tabs.filter((t) => isAupPage(t.url || t.pendingUrl)).map((t) => /** @type {number} */ (t.id));
    if (!ids.length) return;
    const byWindow = new Map();
    for (const t of tabs) byWindow.set(t.windowId, (byWindow.get(t.windowId) || 0) + 1);
    for (const t of tabs) {
      if (isAupPage(t.url || t.pendingUrl) && byWindow.get(t.windowId) === 1) await chrome.tabs.create({ windowId: t.windowId });
    }
    await chrome.tabs.remove(ids);
  }

  /** @param {Aup | null} next */
  async function set(next) {
    pending = next;
    if (next) await chrome.storage.local.set({ [AUP_KEY]: next });
    else await chrome.storage.local.remove(AUP_KEY);
    if (next) await cover();
    else await uncover();
  }

  return {
    /** Restores a pending policy at worker start and enforces it. */
    restore: () => serial(async () => {
      const { [AUP_KEY]: raw } = await chrome.storage.local.get(AUP_KEY);
      pending = parseAup(raw);
      await cover();
    }),
    /** The server's `acceptable_use`: this policy must be accepted. @param {Aup} policy */
    show: (policy) => serial(() => set(policy)),
    /** The server's `acceptable_use_clear`: nothing to accept. */
    clear: () => serial(() => set(null)),
    /**
     * The student pressed "I accept" on the page for `versionId`: only the
     * version pending counts, and only if the server hears it.
     * @param {number} versionId
     */
    accept: (versionId) => serial(async () => {
      if (!pending || pending.version_id !== versionId) return false;
      if (!send({ type: 'aup_answer', version_id: versionId, answer: 'accepted' })) return false;
      await set(null);
      return true;
    }),
    /** A tab or window event, or the lock went: re-cover if pending. */
    enforce: () => (pending ? serial(cover) : Promise.resolve()),
    /**
     * A tab was created or navigated in front while pending: it becomes
     * the policy page.
     * @param {number} tabId
     * @param {string} url
     * @param {{ifInFront?: boolean}} [opts]
     */
    replace: (tabId, url, { ifInFront = false } = {}) => {
      if (!pending || locked() || isAupPage(url)) return Promise.resolve();
      return serial(async () => {
        try {
          if (!ifInFront || (await chrome.tabs.get(tabId)).active) await chrome.tabs.update(tabId, { url: base() });
        } catch { /* tab gone */ }
        await cover();
      });
    },
    get pending() { return pending; },
    isAupPage,
  };
}
