// Lock and unlock in standalone (Chromebook) mode. A teacher's lock and a
// policy lock (`screen_locked`, lesson locks) hold independently, as on the
// desktop agents; the state lives in chrome.storage.local so a lock survives
// a browser restart and an offline period. While locked, every normal window
// shows the lock page (lock.html) as its active tab, new tabs become lock
// pages, and a closed lock page or a new window gets one again.
//
// The state machine is pure (tested by extension/test/lock.test.mjs); the
// enforcement below it needs chrome.*.

/** What an extension cannot lock: reported in DeviceState.unsupported while locked. */
export const LOCK_LIMITS = 'lock covers browser windows only (not the ChromeOS shelf, other apps or other browsers)';
/** The desktop agents' wording for an unlock a policy overrides. */
export const LOCKED_BY_POLICY = 'the screen stays locked by policy (a group or lesson locks it)';

/**
 * @typedef {object} LockState
 * @property {{text: string | null, until?: number | null} | null} teacher a
 *   teacher's lock, if any; `until` (ms since the epoch) ends a timed lock
 * @property {boolean} policy the policy's `screen_locked`
 * @property {string} school the school's name (from the welcome)
 */

/** @type {LockState} */
export const UNLOCKED = Object.freeze({ teacher: null, policy: false, school: '' });

/** @param {LockState} s */
export const isLocked = (s) => Boolean(s.teacher) || s.policy;

/**
 * Reads a stored state, tolerating anything (a corrupt value unlocks nothing
 * it should not: it is read as unlocked only when it has no lock at all).
 * @param {unknown} raw
 * @returns {LockState}
 */
export function parseLockState(raw) {
  if (!raw || typeof raw !== 'object') return { ...UNLOCKED };
  const o = /** @type {Record<string, any>} */ (raw);
  const teacher = o.teacher && typeof o.teacher === 'object'
    ? {
      text: typeof o.teacher.text === 'string' ? o.teacher.text : null,
      ...(Number.isSafeInteger(o.teacher.until) && o.teacher.until > 0 ? { until: o.teacher.until } : {}),
    }
    : null;
  return { teacher, policy: o.policy === true, school: typeof o.school === 'string' ? o.school : '' };
}

/** The longest timed lock, in minutes (as the server and desktop agents). */
export const MAX_LOCK_MINUTES = 600;

/**
 * A teacher's command. A lock with `minutes` ends by itself then (see
 * `expire`), counted on this device, so it ends while offline too.
 * @param {LockState} s
 * @param {{type: 'lock', text?: string | null, minutes?: number | null} | {type: 'unlock'}} cmd
 * @param {number} [now] ms since the epoch
 * @returns {{state: LockState, result: {status: 'done'} | {status: 'failed', reason: string}}}
 */
export function onCommand(s, cmd, now = Date.now()) {
  if (cmd.type === 'lock') {
    const m = cmd.minutes;
    if (m != null && !(Number.isInteger(m) && m >= 1 && m <= MAX_LOCK_MINUTES)) {
      return { state: s, result: { status: 'failed', reason: `a timed lock lasts 1 to ${MAX_LOCK_MINUTES} minutes, not ${m}` } };
    }
    const teacher = m != null ? { text: cmd.text ?? null, until: now + m * 60_000 } : { text: cmd.text ?? null };
    return { state: { ...s, teacher }, result: { status: 'done' } };
  }
  const state = { ...s, teacher: null };
  if (state.policy) return { state, result: { status: 'failed', reason: LOCKED_BY_POLICY } };
  return { state, result: { status: 'done' } };
}

/**
 * The state once a timed lock's end has passed (unchanged otherwise).
 * @param {LockState} s
 * @param {number} now ms since the epoch
 * @returns {LockState}
 */
export function expire(s, now) {
  if (s.teacher && s.teacher.until && now >= s.teacher.until) return { ...s, teacher: null };
  return s;
}

/**
 * A new policy: its `screen_locked` holds alongside the teacher's lock.
 * @param {LockState} s
 * @param {boolean} screenLocked
 * @returns {LockState}
 */
export const onPolicy = (s, screenLocked) => ({ ...s, policy: Boolean(screenLocked) });

/**
 * The text the lock page shows.
 * @param {LockState} s
 */
export function lockMessage(s) {
  if (s.teacher && s.teacher.text) return s.teacher.text;
  if (s.policy && !s.teacher) return 'This computer is locked by your school.';
  return 'Your teacher has locked this computer.';
}

/**
 * What to do with one window while locked. A lock tab is `live` when the lock
 * page really runs in it: a tab the browser restored at startup before the
 * extension was loaded has the lock page's URL but shows the browser's "blocked"
 * error page, and is reloaded. One still loading is given time (`wait`: look
 * again soon).
 * @param {{id: number, url: string, active: boolean, live?: boolean, loading?: boolean}[]} tabs the window's tabs
 *   (`live` defaults to true where the browser cannot tell)
 * @param {(url: string) => boolean} isLockPage
 * @returns {{create: boolean, activate: number | null, close: number[], reload: number | null, wait: boolean}}
 */
export function planWindow(tabs, isLockPage) {
  const locks = tabs.filter((t) => isLockPage(t.url));
  if (!locks.length) return { create: true, activate: null, close: [], reload: null, wait: false };
  const usable = (t) => t.live !== false || t.loading === true;
  const keep = locks.find((t) => t.active && usable(t)) || locks.find(usable) || locks.find((t) => t.active) || locks[0];
  return {
    create: false,
    activate: keep.active ? null : keep.id,
    close: locks.filter((t) => t !== keep).map((t) => t.id),
    reload: usable(keep) ? null : keep.id,
    wait: keep.live === false,
  };
}

// ---------------------------------------------------------------------------
// Enforcement (service worker).

const STORAGE_KEY = 'lockState';
/** The alarm that ends a timed lock. */
export const EXPIRY_ALARM = 'lectern-lock-expiry';
/** How often one tab's dead lock page is reloaded before it is left alone. */
const MAX_RELOADS = 3;
/**
 * While a lock tab is loading or reloading, cover() looks again this often,
 * this many times in a row (its load may end before this worker listens).
 */
const RECHECK_MS = 500;
const MAX_RECHECKS = 20;

/**
 * Makes the lock controller. `changed` runs after every change of the locked
 * state (to report the device state).
 * @param {() => void} changed
 * @param {(...a: unknown[]) => void} [warn]
 */
export function createLock(changed, warn = () => {}) {
  /** @type {LockState} */
  let state = { ...UNLOCKED };
  let chain = Promise.resolve();
  const lockBase = () => chrome.runtime.getURL('lock.html');
  const isLockPage = (url) => typeof url === 'string' && url.startsWith(lockBase());
  /** Runs enforcement steps one at a time (events arrive in bursts). */
  const serial = (fn) => {
    const p = chain.then(fn, fn);
    chain = p.catch((err) => warn(`lock: ${err && err.message ? err.message : err}`));
    return p;
  };

  async function save() {
    await chrome.storage.local.set({ [STORAGE_KEY]: state });
  }

  /**
   * The tabs in which the lock page runs, or null where the browser cannot
   * say (runtime.getContexts: Chrome 116+, not Firefox).
   * @returns {Promise<Set<number> | null>}
   */
  async function liveLockTabs() {
    if (typeof chrome.runtime.getContexts !== 'function') return null;
    const contexts = await chrome.runtime.getContexts({ contextTypes: ['TAB'] });
    return new Set(contexts.filter((c) => isLockPage(c.documentUrl)).map((c) => c.tabId));
  }

  /**
   * Lock tabs that were already open, without a running lock page, when this
   * worker started (restored by the browser, perhaps before the extension
   * was loaded). Only these can be dead: a lock tab this worker opened is
   * given all the time it needs to load.
   * @type {Set<number>}
   */
  const suspects = new Set();

  async function suspectOpenLockTabs() {
    const live = await liveLockTabs();
    if (!live) return;
    for (const t of await chrome.tabs.query({})) {
      if (typeof t.id === 'number' && isLockPage(t.url || t.pendingUrl) && !live.has(t.id)) suspects.add(t.id);
    }
  }

  /** Reloads of dead lock tabs, per tab: a few, so a lock page that cannot load never loops. */
  const reloads = new Map();
  const revive = (tabId) => {
    const n = reloads.get(tabId) || 0;
    reloads.set(tabId, n + 1);
    return n < MAX_RELOADS;
  };

  let rechecks = 0;
  let recheckTimer = null;
  /** Runs cover() again soon while a lock tab is not yet showing the lock page. */
  function recheckLater(waiting) {
    if (!waiting) {
      rechecks = 0;
      return;
    }
    if (recheckTimer !== null || rechecks >= MAX_RECHECKS) return;
    rechecks += 1;
    recheckTimer = setTimeout(() => {
      recheckTimer = null;
      if (isLocked(state)) serial(cover);
    }, RECHECK_MS);
  }

  /** Puts a lock page in front in every normal window. */
  async function cover() {
    if (!isLocked(state)) return;
    const windows = await chrome.windows.getAll({ populate: true, windowTypes: ['normal'] });
    const live = await liveLockTabs();
    let waiting = false;
    for (const w of windows) {
      const tabs = (w.tabs || []).map((t) => ({
        id: /** @type {number} */ (t.id),
        url: t.url || t.pendingUrl || '',
        active: t.active,
        live: !live || live.has(/** @type {number} */ (t.id)) || !suspects.has(/** @type {number} */ (t.id)),
        loading: t.status === 'loading',
      }));
      for (const t of tabs) if (t.live) suspects.delete(t.id);
      const plan = planWindow(tabs, isLockPage);
      // Not pinned: Chromium reopens pinned tabs at startup before extensions
      // load, and such a tab shows an error page under the lock page's URL.
      if (plan.create) await chrome.tabs.create({ windowId: w.id, url: lockBase(), active: true, index: 0 });
      if (plan.reload !== null && revive(plan.reload)) await chrome.tabs.reload(plan.reload);
      if (plan.activate !== null) await chrome.tabs.update(plan.activate, { active: true });
      if (plan.close.length) await chrome.tabs.remove(plan.close);
      waiting ||= plan.wait;
    }
    recheckLater(waiting);
  }

  /** Removes every lock page. */
  async function uncover() {
    const tabs = await chrome.tabs.query({});
    const ids = tabs.filter((t) => isLockPage(t.url || t.pendingUrl)).map((t) => /** @type {number} */ (t.id));
    if (!ids.length) return;
    // Keep each window alive: a window whose only tab is the lock page gets a new tab first.
    const byWindow = new Map();
    for (const t of tabs) byWindow.set(t.windowId, (byWindow.get(t.windowId) || 0) + 1);
    for (const t of tabs) {
      if (isLockPage(t.url || t.pendingUrl) && byWindow.get(t.windowId) === 1) await chrome.tabs.create({ windowId: t.windowId });
    }
    await chrome.tabs.remove(ids);
  }

  async function set(next) {
    const was = isLocked(state);
    state = next;
    await save();
    if (isLocked(state)) await cover();
    else if (was) await uncover();
    scheduleExpiry();
    changed();
  }

  /** Ends a timed lock whose time is up. */
  async function checkExpiry() {
    const next = expire(state, Date.now());
    if (next !== state) await set(next);
  }

  let expiryTimer = null;
  /**
   * Wakes up when a timed lock ends: a timer while this worker lives, and an
   * alarm that starts the worker again if the browser stopped it.
   */
  function scheduleExpiry() {
    if (expiryTimer !== null) clearTimeout(expiryTimer);
    expiryTimer = null;
    const until = state.teacher && state.teacher.until;
    if (chrome.alarms) chrome.alarms.clear(EXPIRY_ALARM).catch(() => {});
    if (!until) return;
    expiryTimer = setTimeout(() => {
      expiryTimer = null;
      serial(checkExpiry);
    }, Math.max(0, until - Date.now()) + 50);
    if (chrome.alarms) chrome.alarms.create(EXPIRY_ALARM, { when: until + 50 });
  }

  return {
    /** Restores the stored state (at every worker start) and enforces it. */
    restore: () => serial(async () => {
      const { [STORAGE_KEY]: raw } = await chrome.storage.local.get(STORAGE_KEY);
      state = parseLockState(raw);
      // A timed lock that ended while the browser was closed ends now.
      await checkExpiry();
      scheduleExpiry();
      if (!isLocked(state)) return;
      await suspectOpenLockTabs();
      await cover();
    }),
    /** @param {{type: 'lock', text?: string | null, minutes?: number | null} | {type: 'unlock'}} cmd */
    command: (cmd) => serial(async () => {
      const r = onCommand(state, cmd);
      await set(r.state);
      return r.result;
    }),
    /** @param {boolean} screenLocked */
    policy: (screenLocked) => serial(async () => {
      if (state.policy !== Boolean(screenLocked)) await set(onPolicy(state, screenLocked));
    }),
    /** @param {string} school */
    school: (school) => serial(async () => {
      if (state.school !== school) {
        state = { ...state, school };
        await save();
      }
    }),
    /** The expiry alarm fired (the worker may have been restarted for it). */
    expire: () => serial(checkExpiry),
    /** A tab or window event: re-cover if locked. */
    enforce: () => (isLocked(state) ? serial(cover) : Promise.resolve()),
    /**
     * A tab was created or navigated while locked: it becomes a lock page
     * (then cover() keeps one per window). With `ifInFront`, only if it is
     * still the window's active tab when its turn comes: a navigation that
     * raced the lock (a page still loading when it came) keeps its tab
     * behind the lock page, rather than becoming a second lock page that
     * cover() then closes with the student's tab.
     * @param {number} tabId
     * @param {string} url
     * @param {{ifInFront?: boolean}} [opts]
     */
    replace: (tabId, url, { ifInFront = false } = {}) => {
      if (!isLocked(state) || isLockPage(url)) return Promise.resolve();
      return serial(async () => {
        try {
          if (!ifInFront || (await chrome.tabs.get(tabId)).active) await chrome.tabs.update(tabId, { url: lockBase() });
        } catch { /* tab gone */ }
        await cover();
      });
    },
    get locked() { return isLocked(state); },
    get state() { return state; },
    isLockPage,
  };
}
