// The Lectern extension's service worker.
//
// Native mode (a Linux/Windows/macOS PC with the Lectern agent): talks to
// `lectern-agent native-host` (org.lectern.agent) over native messaging,
// enforces the web policy the agent sends, reports tabs and visited pages,
// closes tabs and opens websites on the agent's request.
//
// Chromebook mode (no native host, and a server configured by enterprise
// policy in managed storage): the extension is the agent and speaks the agent
// protocol to wss://SERVER/agent/v1 itself.
//
// The last web policy is kept in chrome.storage.local and re-applied at every
// start, so enforcement survives browser restarts while offline. MV3 service
// workers are stopped when idle: an alarm every 30 s restarts this one and
// checks the connection; an open native port or WebSocket with regular
// traffic keeps it running in between.

import { OPEN_POLICY, buildRules, blockPageUrl, parseBlockHash, parseWebPolicy, verdict } from './rules.js';
import * as P from './protocol.js';
import { Safety } from './safety.js';
import * as Identity from './identity.js';
import { signInFrame } from './signin-core.js';
import { MAX_SCHOOLS, fallBack, furtherCodes, loadStash, offeredSchools, switchTo } from './schools-core.js';
import { createStreamer } from './screens.js';
import { captures } from './capture.js';
import { EXPIRY_ALARM, LOCK_LIMITS, createLock } from './lock.js';
import { createAup } from './aup.js';
import { createBroadcast } from './broadcast.js';
import { closeAllTabs } from './eyes.js';
import { nativeHostMissing } from './native.js';
import { createSchoolLook } from './school-look.js';
import * as Inventory from './inventory.js';

const KEEPALIVE_ALARM = 'lectern-keepalive';
/** Native heartbeat period; the agent counts 30 s of silence as gone. */
const NATIVE_HEARTBEAT_MS = 10_000;
/** Retry period for the native host when none is installed. */
const NATIVE_RETRY_MS = 30_000;
/** Tab reports are debounced by this much. */
const TABS_DEBOUNCE_MS = 300;
/** A Chromebook session must be welcomed within this time. */
const WELCOME_TIMEOUT_MS = 15_000;
/** Activity events kept for the native host while it is away. */
const NATIVE_ACTIVITY_QUEUE = 200;

const log = (...args) => console.log('[lectern]', ...args);
const warn = (...args) => console.warn('[lectern]', ...args);

/** @type {'starting' | 'native' | 'chromebook' | 'waiting'} */
let mode = 'starting';
/** The web policy in force. @type {import('./rules.js').WebPolicy} */
let currentWeb = { ...OPEN_POLICY };
/** Serializes rule updates. */
let applyChain = Promise.resolve();

// ---------------------------------------------------------------------------
// Web policy → declarativeNetRequest

/** Chrome's live limits where it exposes them. */
function dnrLimits() {
  const d = chrome.declarativeNetRequest;
  /** @type {Record<string, number>} */
  const lim = {};
  if (typeof d.MAX_NUMBER_OF_REGEX_RULES === 'number') lim.regexRules = d.MAX_NUMBER_OF_REGEX_RULES;
  if (typeof d.MAX_NUMBER_OF_DYNAMIC_RULES === 'number') lim.dynamicRules = d.MAX_NUMBER_OF_DYNAMIC_RULES;
  else if (typeof d.MAX_NUMBER_OF_DYNAMIC_AND_SESSION_RULES === 'number') lim.dynamicRules = d.MAX_NUMBER_OF_DYNAMIC_AND_SESSION_RULES;
  if (typeof d.MAX_NUMBER_OF_UNSAFE_DYNAMIC_RULES === 'number') lim.unsafeDynamicRules = d.MAX_NUMBER_OF_UNSAFE_DYNAMIC_RULES;
  return lim;
}

/**
 * Replaces every dynamic rule with the rules for `web`, atomically. A policy
 * the browser cannot hold (too many wildcard patterns) is refused: the
 * previous rules stay and the error is logged and returned.
 * @param {import('./rules.js').WebPolicy} web
 * @param {{persist?: boolean}} [opts]
 * @returns {Promise<{ok: boolean, errors: string[]}>}
 */
function applyWebPolicy(web, { persist = true } = {}) {
  const run = async () => {
    const built = buildRules(web, { blockPage: chrome.runtime.getURL('blocked.html'), limits: dnrLimits() });
    for (const w of built.warnings) warn(`web policy: ${w}`);
    if (!built.ok) {
      const errors = built.errors;
      console.error('[lectern] web policy refused:', errors.join('; '));
      await chrome.storage.local.set({ lastPolicyError: { at: Date.now(), errors } });
      return { ok: false, errors };
    }
    const existing = await chrome.declarativeNetRequest.getDynamicRules();
    try {
      await chrome.declarativeNetRequest.updateDynamicRules({ removeRuleIds: existing.map((r) => r.id), addRules: built.rules });
    } catch (err) {
      const errors = [`the browser refused the rules: ${err && err.message ? err.message : err}`];
      console.error('[lectern]', errors[0]);
      await chrome.storage.local.set({ lastPolicyError: { at: Date.now(), errors } });
      return { ok: false, errors };
    }
    const before = currentWeb;
    currentWeb = web;
    if (persist) await chrome.storage.local.set({ webPolicy: web });
    await chrome.storage.local.remove('lastPolicyError');
    log(`web policy applied: ${built.counts.rules} rules (internet ${web.internet_blocked ? 'blocked' : 'open'}, mode ${web.mode})`);
    if (JSON.stringify(before) !== JSON.stringify(web)) await refreshOpenTabs(web);
    return { ok: true, errors: [] };
  };
  const p = applyChain.then(run, run);
  applyChain = p.catch(() => {});
  return p;
}

/**
 * After a policy change: pages now blocked are reloaded (the rules send them
 * to the block page) and block pages whose site is now allowed go back to it.
 * @param {import('./rules.js').WebPolicy} web
 */
async function refreshOpenTabs(web) {
  const blockedBase = chrome.runtime.getURL('blocked.html');
  let tabs;
  try {
    tabs = await chrome.tabs.query({});
  } catch {
    return;
  }
  for (const tab of tabs) {
    if (typeof tab.id !== 'number' || !tab.url) continue;
    try {
      if (tab.url.startsWith(blockedBase)) {
        const { url } = parseBlockHash(new URL(tab.url).hash);
        if (url && /^https?:\/\//.test(url) && verdict(web, url).allowed) await chrome.tabs.update(tab.id, { url });
      } else if (/^https?:\/\//.test(tab.url) && !verdict(web, tab.url).allowed) {
        await chrome.tabs.reload(tab.id);
      }
    } catch (err) {
      warn(`could not refresh tab ${tab.id}: ${err && err.message ? err.message : err}`);
    }
  }
}

/** Re-applies the stored policy (at every service worker start). */
async function restorePolicy() {
  const { webPolicy } = await chrome.storage.local.get('webPolicy');
  if (webPolicy === undefined) return;
  const r = parseWebPolicy(webPolicy);
  if (!r.ok) {
    warn(`stored web policy ignored: ${r.error}`);
    return;
  }
  currentWeb = r.web;
  await applyWebPolicy(r.web, { persist: false });
}

// ---------------------------------------------------------------------------
// Tabs and activity

/**
 * Every tab, the focused window's first.
 * @returns {Promise<ReturnType<typeof P.limitTabs>>}
 */
async function currentTabs() {
  const tabs = await chrome.tabs.query({});
  let focused = -1;
  try {
    const w = await chrome.windows.getLastFocused();
    if (w && typeof w.id === 'number') focused = w.id;
  } catch { /* no window */ }
  tabs.sort((a, b) => Number(b.windowId === focused) - Number(a.windowId === focused) || a.windowId - b.windowId || a.index - b.index);
  return P.tabsFromChrome(tabs);
}

/** @type {ReturnType<typeof setTimeout> | null} */
let tabsTimer = null;

/** Reports tabs soon, once per burst of tab events. */
function scheduleTabs() {
  if (tabsTimer) clearTimeout(tabsTimer);
  tabsTimer = setTimeout(() => {
    tabsTimer = null;
    reportTabs().catch((err) => warn(`tab report failed: ${err.message}`));
  }, TABS_DEBOUNCE_MS);
}

/** Sends the tab list to whichever peer is connected. */
async function reportTabs() {
  if (mode === 'native' && native.port) {
    nativeSend({ type: 'tabs', tabs: await currentTabs() });
  } else if (mode === 'chromebook' && cb.welcomed) {
    await cbSendState();
  }
}

/**
 * A top-level page finished loading: an activity event.
 * @param {{tabId: number, frameId: number, url: string, timeStamp: number}} details
 */
async function onNavigationCompleted(details) {
  if (details.frameId !== 0 || !/^https?:\/\//.test(details.url)) return;
  let title = '';
  try {
    title = (await chrome.tabs.get(details.tabId)).title || '';
  } catch { /* tab gone */ }
  const event = { kind: 'web', url: details.url.slice(0, P.MAX_URL_LEN), title: title.slice(0, 500), at: Math.round(details.timeStamp || Date.now()) };
  if (mode === 'native') nativeActivity(event);
  else if (mode === 'chromebook') await cbActivity(event);
}

// ---------------------------------------------------------------------------
// Native mode

const native = {
  /** @type {chrome.runtime.Port | null} */
  port: null,
  /** Whether the current port has delivered a message (the host is real). */
  heard: false,
  /** Consecutive failures of a host that had worked. */
  failures: 0,
  /** @type {ReturnType<typeof setInterval> | null} */
  heartbeat: null,
  /** @type {ReturnType<typeof setTimeout> | null} */
  retry: null,
  /** Visits not yet delivered. @type {object[]} */
  queue: [],
};

/** The browser's brand, e.g. "Chromium", "Google Chrome", "Microsoft Edge". */
function browserBrand() {
  const brands = /** @type {any} */ (navigator).userAgentData?.brands || [];
  const named = brands.map((b) => b.brand).filter((b) => !/not.?a.?brand/i.test(b));
  const pick = named.find((b) => b !== 'Chromium') || named[0];
  if (pick) return pick;
  const m = /(Edg|OPR|Chrome|Chromium|Firefox)\/[\d.]+/.exec(navigator.userAgent);
  return m ? m[0] : navigator.userAgent.slice(0, 100);
}

/**
 * Sends a message to the native host, if connected.
 * @param {object} msg
 * @returns {boolean}
 */
function nativeSend(msg) {
  if (!native.port) return false;
  try {
    native.port.postMessage(msg);
    return true;
  } catch (err) {
    warn(`native host: send failed: ${err.message}`);
    return false;
  }
}

/** @param {object} event */
function nativeActivity(event) {
  if (nativeSend({ type: 'activity', ...event })) return;
  native.queue.push(event);
  if (native.queue.length > NATIVE_ACTIVITY_QUEUE) native.queue.shift();
}

/** Connects to org.lectern.agent; failures come back through onDisconnect. */
function connectNative() {
  if (native.port) return;
  if (native.retry) {
    clearTimeout(native.retry);
    native.retry = null;
  }
  let port;
  try {
    port = chrome.runtime.connectNative(P.NATIVE_HOST);
  } catch (err) {
    warn(`native host: cannot connect: ${err.message}`);
    onNativeGone(false, String(err.message));
    return;
  }
  native.port = port;
  native.heard = false;
  mode = 'native';
  port.onMessage.addListener((msg) => onNativeMessage(msg));
  port.onDisconnect.addListener(() => {
    // Chromium reports through lastError, Firefox through port.error.
    const error = chrome.runtime.lastError?.message || port.error?.message || '';
    if (native.port !== port) return;
    native.port = null;
    if (native.heartbeat) clearInterval(native.heartbeat);
    native.heartbeat = null;
    onNativeGone(native.heard, error || 'disconnected');
  });
  nativeSend({ type: 'hello', version: chrome.runtime.getManifest().version, browser: browserBrand() });
  native.heartbeat = setInterval(() => nativeSend({ type: 'heartbeat' }), NATIVE_HEARTBEAT_MS);
  // Tell the agent what is open now, and anything visited while it was away.
  reportTabs().catch(() => {});
  while (native.queue.length && native.port) nativeSend({ type: 'activity', ...native.queue.shift() });
}

/**
 * The native port closed. Only a host the browser says is not installed (or
 * is forbidden) is missing: Chromebook mode if a server is configured, else
 * another try in 30 s. An installed host, whether it had worked or exited
 * without answering (the agent service stopped or restarting), is retried
 * with backoff: the agent manages this computer, so the browser never
 * enrolls as a second device.
 * @param {boolean} heard
 * @param {string} error
 */
async function onNativeGone(heard, error) {
  if (heard || !nativeHostMissing(error)) {
    native.failures += 1;
    const delay = Math.min(NATIVE_RETRY_MS, P.backoffDelay(native.failures - 1));
    log(`native host disconnected (${error}); retrying in ${Math.round(delay / 1000)} s`);
    native.retry = setTimeout(connectNative, delay);
    return;
  }
  const config = await managedConfig();
  if (config.server) {
    log(`no native host (${error}); Chromebook mode with server ${config.server.authority}`);
    startChromebook();
    return;
  }
  mode = 'waiting';
  log(`no native host (${error}) and no server configured; retrying in 30 s`);
  native.retry = setTimeout(connectNative, NATIVE_RETRY_MS);
}

/**
 * One message from the native host.
 * @param {unknown} raw
 */
async function onNativeMessage(raw) {
  const parsed = P.parseHostMessage(raw);
  if (!parsed.ok) {
    warn(`native host: ignoring a message: ${parsed.error}`);
    return;
  }
  if (!native.heard) {
    native.heard = true;
    native.failures = 0;
    log('native host connected');
    // The agent knows the OS user: no sign-in gate in native mode.
    Identity.setRequired(false).catch(() => {});
  }
  const msg = /** @type {any} */ (parsed.msg);
  switch (msg.type) {
    case 'policy':
      await applyWebPolicy(msg.web);
      break;
    case 'close_tab':
      try {
        await chrome.tabs.remove(msg.tab_id);
      } catch (err) {
        warn(`close_tab ${msg.tab_id}: ${err.message}`);
      }
      await reportTabs();
      break;
    case 'get_tabs':
      await reportTabs();
      break;
    case 'open_url':
      try {
        await chrome.tabs.create({ url: msg.url, active: true });
      } catch (err) {
        warn(`open_url: ${err.message}`);
      }
      break;
    default:
      break;
  }
}

// ---------------------------------------------------------------------------
// Chromebook mode

/**
 * The managed (enterprise policy) configuration.
 * @returns {Promise<{server: ReturnType<typeof P.parseServer>, token: string, homePage: string, hostname: string}>}
 */
async function managedConfig() {
  /** @type {Record<string, unknown>} */
  let m = {};
  try {
    m = await chrome.storage.managed.get(null);
  } catch (err) {
    // No policy for this extension (or managed storage unavailable).
    m = {};
  }
  const str = (v) => (typeof v === 'string' ? v.trim() : '');
  return {
    server: P.parseServer(m.server),
    token: str(m.enrollment_token),
    schoolCode: str(m.school_code) || str((await chrome.storage.local.get('typedSchoolCode')).typedSchoolCode),
    typedCode: !str(m.school_code) && !str(m.enrollment_token),
    schoolCodes: m.school_codes,
    homePage: str(m.home_page),
    hostname: str(m.hostname),
  };
}

const cb = {
  /** @type {WebSocket | null} */
  ws: null,
  /** A hello was answered with welcome on the current socket. */
  welcomed: false,
  /** Further school codes are being registered (cbRegisterMore). */
  registering: false,
  /** The student's choice of another school is being carried out. */
  switching: false,
  failures: 0,
  /** This hello registers with a code typed on the registration page. */
  typedCode: false,
  /** @type {ReturnType<typeof setTimeout> | null} */
  timer: null,
  /** @type {ReturnType<typeof setInterval> | null} */
  heartbeat: null,
  /** Authority of the current connection. */
  authority: '',
  /** The server's latest policy. @type {import('./protocol.js').ServerPolicy} */
  policy: { ...P.DEFAULT_SERVER_POLICY },
  /** @type {import('./protocol.js').TeacherState} */
  teacher: { ...P.NO_TEACHER, filter: { ...P.NO_TEACHER.filter } },
  /** Message windows still open. @type {Set<number>} */
  messageWindows: new Set(),
  /** Visits not yet acknowledged by the server, and what this session sent. */
  outbox: new P.ActivityOutbox(P.newActivityQueue()),
  /** Set while a refusal holds activity. @type {ReturnType<typeof setTimeout> | null} */
  activityHold: null,
  loaded: false,
  /** The student's raised hand and chat, as the toolbar popup shows them. */
  student: {
    raised: false,
    /** The teacher's last answer. @type {string | null} */
    answer: null,
    /** Why the server refused the last request. @type {string | null} */
    status: null,
    /** The chat this session, newest last. @type {{mine: boolean, author: string, text: string}[]} */
    lines: [],
  },
};

/** Chat lines the popup keeps (the newest). */
const MAX_CHAT_LINES = 50;

/** Screens on demand (screens.js): frames only between start and stop. */
const streamer = createStreamer(cbSendBinary, log);
/** The lock (lock.js), kept in chrome.storage.local across restarts. */
const lock = createLock(() => {
  cbSendState().catch(() => {});
  // The lock went: a policy to accept covers the windows again.
  aup.enforce().catch(() => {});
}, warn);
/** The acceptable use policy to accept (aup.js), kept across restarts. */
const aup = createAup((frame) => cbSend(frame), () => lock.locked, warn);
/** Broadcasts (broadcast.js): a full-screen window of the frames the server sends. */
const broadcast = createBroadcast({
  changed: () => { cbSendState().catch(() => {}); },
  warn,
  windows: chrome.windows,
  pageUrl: chrome.runtime.getURL('broadcast.html'),
});
/** Open view requests: request id → the timer that gives up on the student. */
const viewRequests = new Map();

/** Loads the Chromebook state kept across restarts. */
async function cbLoad() {
  if (cb.loaded) return;
  const s = await chrome.storage.local.get(['cbPolicy', 'cbTeacher', 'cbMessageWindows', 'cbActivity', 'cbActivityQueue']);
  const p = P.parseServerPolicy(s.cbPolicy ?? {});
  if (p.ok) cb.policy = p.policy;
  if (s.cbTeacher && typeof s.cbTeacher === 'object') {
    const f = P.parseWebFilterCommand(s.cbTeacher.filter || { mode: 'off' });
    cb.teacher = { internet_blocked: s.cbTeacher.internet_blocked === true, filter: f.ok ? f.filter : { mode: 'off', allow: [], block: [] } };
  }
  if (Array.isArray(s.cbMessageWindows)) for (const id of s.cbMessageWindows) if (Number.isInteger(id)) cb.messageWindows.add(id);
  cb.outbox = new P.ActivityOutbox(P.loadActivityQueue(s.cbActivity));
  // Visits an older version queued unnumbered.
  if (Array.isArray(s.cbActivityQueue)) {
    for (const e of s.cbActivityQueue) cb.outbox.add(e);
    await chrome.storage.local.remove('cbActivityQueue');
    cbSaveActivity();
  }
  cb.loaded = true;
}

/** Enters Chromebook mode and connects. */
async function startChromebook() {
  mode = 'chromebook';
  await cbLoad();
  if (!safety) safety = new Safety(safetyIo);
  safety.setPolicy(cb.policy);
  await lock.policy(cb.policy.screen_locked);
  // Enforce what was in force, with the server always reachable.
  const config = await managedConfig();
  if (config.server) await cbApply(config.server.host);
  await cbIdentity(config.server ? config.server.host : '');
  cbConnect();
}

/**
 * Applies the merged web policy (the teacher's and the school's).
 * @param {string} [serverHost]
 * @returns {Promise<{ok: boolean, errors: string[]}>}
 */
async function cbApply(serverHost) {
  const host = (serverHost || cb.authority.replace(/:\d+$/, '')).replace(/^\[|\]$/g, '');
  const web = P.effectiveWebPolicy(cb.policy, cb.teacher, host ? [host] : []);
  return applyWebPolicy(web);
}

/**
 * Reads who is signed in and applies the policy's require_sign_in (identity.js).
 * @param {string} [serverHost]
 */
async function cbIdentity(serverHost) {
  const host = (serverHost || cb.authority.replace(/:\d+$/, '')).replace(/^\[|\]$/g, '');
  try {
    await Identity.refresh();
    await Identity.setRequired(cb.policy.require_sign_in, host ? [host] : [], cb.policy.student_sign_in);
  } catch (err) {
    warn(`sign-in: ${err.message}`);
  }
}

/** Persists the teacher's restrictions and the school's policy. */
async function cbSave() {
  await chrome.storage.local.set({ cbPolicy: cb.policy, cbTeacher: cb.teacher, cbMessageWindows: [...cb.messageWindows] });
}

/** Schedules a reconnect with backoff (or `delay` ms). */
function cbScheduleReconnect(delay) {
  if (cb.timer) clearTimeout(cb.timer);
  const wait = delay ?? P.backoffDelay(cb.failures);
  cb.failures += 1;
  log(`server: reconnecting in ${(wait / 1000).toFixed(1)} s`);
  cb.timer = setTimeout(() => {
    cb.timer = null;
    cbConnect();
  }, wait);
}

/**
 * Sends one frame to the server.
 * @param {object} frame
 * @returns {boolean}
 */
function cbSend(frame) {
  if (!cb.ws || cb.ws.readyState !== WebSocket.OPEN) return false;
  const text = JSON.stringify(frame);
  if (text.length > P.MAX_SERVER_FRAME) {
    warn(`server: dropping a ${frame.type} frame of ${text.length} bytes`);
    return false;
  }
  cb.ws.send(text);
  return true;
}

/**
 * Chromebook-mode safeguarding (safety.js): created when the mode starts.
 * @type {Safety | null}
 */
let safety = null;
/** What safety.js may do with the session. */
const safetyIo = {
  send: cbSend,
  sendBinary: cbSendBinary,
  connected: () => cb.welcomed,
  user: () => Identity.currentUser(),
  log,
  warn,
};

/**
 * Sends one binary media frame (a thumbnail).
 * @param {Uint8Array} bytes
 * @returns {boolean}
 */
function cbSendBinary(bytes) {
  if (!cb.welcomed || !cb.ws || cb.ws.readyState !== WebSocket.OPEN) return false;
  cb.ws.send(bytes);
  return true;
}

/**
 * Asks the student whether a teacher may watch (ViewRequest). No answer in
 * time sends none (null): the server applies the policy's default.
 * @param {{request_id: number, teacher?: string, timeout_secs?: number}} msg
 */
async function cbAskView(msg) {
  const id = msg.request_id;
  const secs = Math.max(1, Math.min(120, Number(msg.timeout_secs) || 10));
  const teacher = String(msg.teacher || '').slice(0, 200);
  let win = null;
  try {
    win = await chrome.windows.create({
      url: chrome.runtime.getURL(`ask.html#id=${id}&teacher=${encodeURIComponent(teacher)}`),
      type: 'popup', width: 480, height: 300, focused: true,
    });
  } catch (err) {
    warn(`view request: ${err.message}`);
  }
  const timer = setTimeout(() => cbViewAnswer(id, null), secs * 1000);
  viewRequests.set(id, { timer, windowId: win && typeof win.id === 'number' ? win.id : null });
}

/**
 * Sends the student's answer, once per request, and closes the question.
 * @param {number} id
 * @param {boolean | null} allowed
 */
function cbViewAnswer(id, allowed) {
  const r = viewRequests.get(id);
  if (!r) return;
  viewRequests.delete(id);
  clearTimeout(r.timer);
  if (r.windowId !== null) chrome.windows.remove(r.windowId).catch(() => {});
  cbSend({ type: 'view_answer', request_id: id, allowed });
}

/** The agent's DeviceState now. */
async function cbState() {
  let tabs = [];
  try {
    tabs = await currentTabs();
  } catch { /* no tabs API answer */ }
  return P.deviceState({
    web: currentWeb, policy: cb.policy, tabs, messageShown: cb.messageWindows.size > 0,
    user: Identity.currentUser(), locked: lock.locked, limits: lock.locked ? [LOCK_LIMITS] : [],
    lockedUntil: lock.state.teacher?.until ?? null,
    broadcastShown: broadcast.shown,
  });
}

/**
 * The sign-in page's question waiting for the server's answer (one at a
 * time). @type {((answer: Record<string, unknown>) => void) | null}
 */
let studentWaiter = null;
/** How long the sign-in page waits for the server. */
const STUDENT_ANSWER_MS = 15_000;

/**
 * The server said who is signed in (at each connection, and after a
 * sign-in or sign-out): the gate follows, and the page that asked hears.
 * @param {Record<string, any>} msg
 */
async function cbStudentAnswer(msg) {
  const waiter = studentWaiter;
  studentWaiter = null;
  // Told at connection that someone is signed in: only this browser
  // session's own student carries on. A new browser session (the last
  // student logged out of the Chromebook, session storage is empty) must
  // not inherit them: sign them out instead.
  if (msg.outcome === 'signed_in' && !waiter && !(await Identity.sameSessionStudent(msg.name))) {
    cbSend({ type: 'student_sign_out' });
    return;
  }
  if (msg.outcome === 'signed_in') await Identity.setStudent({ name: msg.name, display_name: msg.display_name });
  else if (msg.outcome === 'signed_out') await Identity.setStudent(null);
  if (msg.outcome !== 'refused') await cbSendState();
  if (waiter) waiter(msg);
}

/**
 * Sends a sign-in or sign-out; resolves with the server's answer, or an
 * `offline` refusal when there is no session or no answer in time.
 * @param {Record<string, unknown>} frame
 * @returns {Promise<Record<string, unknown>>}
 */
function cbStudentAsk(frame) {
  const offline = { outcome: 'refused', reason: 'offline' };
  if (!cb.welcomed || studentWaiter) return Promise.resolve(offline);
  return new Promise((resolve) => {
    const timer = setTimeout(() => {
      studentWaiter = null;
      resolve(offline);
    }, STUDENT_ANSWER_MS);
    studentWaiter = (answer) => {
      clearTimeout(timer);
      resolve(answer);
    };
    if (!cbSend(frame)) {
      clearTimeout(timer);
      studentWaiter = null;
      resolve(offline);
    }
  });
}

/** Sends the state if the session is up. */
/** This session's inventory report, offered by its hash at connect. @type {{json: string, hash: string, parts: string[]} | null} */
let cbInventory = null;

/**
 * Offers the hash of what Chrome tells of this machine (inventory.js); the
 * server asks for the report only when its stored hash differs.
 */
async function cbOfferInventory() {
  try {
    cbInventory = await Inventory.report(await Inventory.gather(chrome, /** @type {any} */ (navigator).userAgentData));
    cbSend({ type: 'inventory_hash', hash: cbInventory.hash });
  } catch (err) {
    warn(`inventory: ${err instanceof Error ? err.message : err}`);
  }
}

/** The report the server asked for, in parts. */
function cbSendInventory() {
  const parts = cbInventory?.parts ?? [];
  parts.forEach((data, index) => cbSend({ type: 'inventory_part', index, last: index === parts.length - 1, data }));
}

async function cbSendState() {
  if (!cb.welcomed) return;
  cbSend({ type: 'state', state: await cbState() });
}

/** This device's name: the managed one, or a stored random one. */
async function cbHostname(config) {
  if (config.hostname) return config.hostname.slice(0, 64);
  const { cbHostname: stored } = await chrome.storage.local.get('cbHostname');
  if (typeof stored === 'string' && stored) return stored;
  const bytes = crypto.getRandomValues(new Uint8Array(3));
  const name = `chromebook-${[...bytes].map((b) => b.toString(16).padStart(2, '0')).join('')}`;
  await chrome.storage.local.set({ cbHostname: name });
  return name;
}

/** Opens the session (enrolling first if there is no credential). */
async function cbConnect() {
  if (mode !== 'chromebook') return;
  if (cb.ws && (cb.ws.readyState === WebSocket.OPEN || cb.ws.readyState === WebSocket.CONNECTING)) return;
  if (cb.timer) {
    clearTimeout(cb.timer);
    cb.timer = null;
  }
  const config = await managedConfig();
  if (!config.server) {
    mode = 'waiting';
    log('server: no longer configured; waiting');
    return;
  }
  const authority = config.server.authority;
  let { cbCredential: cred } = await chrome.storage.local.get('cbCredential');
  if (cred && cred.server !== authority) {
    log(`server changed from ${cred.server} to ${authority}: enrolling again`);
    cred = null;
  }
  if (!cred && !config.token && !config.schoolCode) {
    // Someone types the school code on the registration page; its storage
    // change connects again.
    log('server: not enrolled and no enrollment_token or school_code in the policy: asking for the school code');
    await openRegistration();
    return;
  }
  cb.typedCode = !cred && config.typedCode;
  const auth = P.helloAuth(cred, config);
  const info = {
    hostname: await cbHostname(config),
    os: await osName(),
    agent_version: `extension ${chrome.runtime.getManifest().version}`,
  };

  let ws;
  try {
    ws = new WebSocket(`wss://${authority}/agent/v1`);
    // Broadcast frames arrive as binary messages.
    ws.binaryType = 'arraybuffer';
  } catch (err) {
    warn(`server: ${err.message}`);
    cbScheduleReconnect();
    return;
  }
  cb.ws = ws;
  cb.welcomed = false;
  cb.authority = authority;
  const welcomeTimer = setTimeout(() => {
    if (cb.ws === ws && !cb.welcomed) {
      warn('server: no welcome in time; closing');
      ws.close();
    }
  }, WELCOME_TIMEOUT_MS);
  let enrolled = false;

  ws.addEventListener('open', async () => {
    const caps = safety ? await safety.capabilities() : [];
    cbSend(P.helloFrame(auth, info, await cbState(), caps));
  });
  ws.addEventListener('message', async (event) => {
    if (typeof event.data !== 'string') {
      if (cb.ws === ws && cb.welcomed) broadcast.frame(event.data);
      return;
    }
    const parsed = P.parseServerFrame(event.data);
    if (!parsed.ok) {
      warn(`server: ignoring a frame: ${parsed.error}`);
      return;
    }
    const msg = parsed.msg;
    if (msg.type === 'welcome') {
      clearTimeout(welcomeTimer);
      if (msg.credential) {
        await chrome.storage.local.set({ cbCredential: { device_id: msg.credential.device_id, secret: msg.credential.secret, server: authority }, identitySchool: String(msg.school).trim().slice(0, 100) });
        await chrome.storage.local.remove(['typedSchoolCode', 'registerError']);
        enrolled = true;
        log(`enrolled as device ${msg.device_id} of ${msg.school}`);
        if (config.homePage && P.checkUrl(config.homePage).ok) {
          const { cbHomeOpened } = await chrome.storage.local.get('cbHomeOpened');
          if (cbHomeOpened !== authority) {
            await chrome.storage.local.set({ cbHomeOpened: authority });
            chrome.tabs.create({ url: config.homePage }).catch(() => {});
          }
        }
        ws.close();
        return;
      }
      cb.welcomed = true;
      cb.failures = 0;
      // What is pending now the server says again after this welcome.
      aup.clear().catch(() => {});
      log(`connected to ${msg.school} as device ${msg.device_id}`);
      if (safety) safety.onWelcome(msg);
      Identity.rememberSchool(msg.school).catch(() => {});
      await lock.school(msg.school);
      if (cb.heartbeat) clearInterval(cb.heartbeat);
      const secs = Math.max(1, Math.min(300, msg.heartbeat_secs || 15));
      cb.heartbeat = setInterval(() => cbSend({ type: 'heartbeat' }), secs * 1000);
      // A new session: everything unacknowledged goes again (the server
      // keeps each sequence number once).
      cbActivityResume();
      cbOfferInventory();
      cbRegisterMore().catch((err) => warn(`school_codes: ${err.message}`));
      return;
    }
    if (!cb.welcomed) {
      if (msg.type === 'error') cbRefused(msg);
      else warn(`server: ${msg.type} before welcome`);
      return;
    }
    await cbOnFrame(msg);
  });
  ws.addEventListener('error', () => {
    // The close event follows; the browser does not say why here.
  });
  ws.addEventListener('close', (event) => {
    clearTimeout(welcomeTimer);
    if (cb.ws !== ws) return;
    const was = cb.welcomed;
    cbDropSession();
    if (mode !== 'chromebook') return;
    if (enrolled) {
      cb.failures = 0;
      cbScheduleReconnect(100);
      return;
    }
    log(`server: connection closed (code ${event.code}${was ? ', was connected' : ''})`);
    cbScheduleReconnect();
  });
}

/**
 * Ends the session: the socket (closed if open), the screen stream, the
 * broadcast (no frozen picture while offline; the server starts it again on
 * reconnect), the heartbeat and the held activity.
 */
function cbDropSession() {
  const ws = cb.ws;
  cb.ws = null;
  cb.welcomed = false;
  streamer.stop();
  broadcast.stop().catch(() => {});
  if (cb.heartbeat) clearInterval(cb.heartbeat);
  cb.heartbeat = null;
  if (cb.activityHold) clearTimeout(cb.activityHold);
  cb.activityHold = null;
  try {
    ws?.close();
  } catch { /* closed already */ }
}

/** How long a registration with a further school code may take. */
const REGISTER_MS = 15_000;

/** The hex SHA-256 of `text` (codes registered with are kept only so). */
async function sha256Hex(text) {
  const d = await crypto.subtle.digest('SHA-256', new TextEncoder().encode(text));
  return [...new Uint8Array(d)].map((b) => b.toString(16).padStart(2, '0')).join('');
}

/**
 * Registers with each further school of the managed `school_codes` not
 * registered with yet, on the server of the current connection (see
 * schools-core.js); a code the server refuses for good is not tried again
 * (wrong codes count against the school's address).
 */
async function cbRegisterMore() {
  if (cb.registering || cb.switching || !cb.welcomed) return;
  cb.registering = true;
  try {
    const config = await managedConfig();
    const { codes, errors } = furtherCodes(config.schoolCodes, config.schoolCode);
    for (const e of errors) warn(`school_codes: ${e}`);
    const s = await chrome.storage.local.get(['cbSchools', 'cbSchoolCodes']);
    const stash = loadStash(s.cbSchools);
    const done = Array.isArray(s.cbSchoolCodes) ? s.cbSchoolCodes.filter((h) => typeof h === 'string') : [];
    for (const code of codes) {
      const hash = await sha256Hex(code);
      if (done.includes(hash)) continue;
      // Checked before registering: a device the server makes but the
      // Chromebook cannot keep would be left over at every start.
      if (stash.length >= MAX_SCHOOLS - 1) {
        warn(`school_codes: this Chromebook is registered with ${MAX_SCHOOLS} schools already, the most it takes`);
        break;
      }
      const r = await registerWith(cb.authority, code);
      if (r.ok) {
        stash.push({ school: r.school, credential: r.credential, policy: null, activity: [] });
        done.push(hash);
        log(`registered with ${r.school} too, as device ${r.credential.device_id}`);
      } else {
        warn(`cannot register with a further school code: ${r.error}`);
        if (r.permanent) done.push(hash);
      }
      await chrome.storage.local.set({ cbSchools: stash, cbSchoolCodes: done });
    }
  } finally {
    cb.registering = false;
  }
}

/**
 * One registration with `code` on its own connection, closed once the
 * server has answered.
 * @param {string} authority
 * @param {string} code
 * @returns {Promise<{ok: true, school: string, credential: {device_id: number, secret: string, server: string}} | {ok: false, permanent: boolean, error: string}>}
 */
function registerWith(authority, code) {
  return new Promise((resolve) => {
    let ws;
    try {
      ws = new WebSocket(`wss://${authority}/agent/v1`);
    } catch (err) {
      resolve({ ok: false, permanent: false, error: err.message });
      return;
    }
    const finish = (r) => {
      clearTimeout(timer);
      try {
        ws.close();
      } catch { /* closed */ }
      resolve(r);
    };
    const timer = setTimeout(() => finish({ ok: false, permanent: false, error: 'no answer in time' }), REGISTER_MS);
    ws.addEventListener('open', async () => {
      const info = { hostname: await cbHostname(await managedConfig()), os: await osName(), agent_version: `extension ${chrome.runtime.getManifest().version}` };
      // Nothing of the school in use (its tabs, its student) goes to the
      // other school: an empty state, as the desktop agent registers.
      const empty = P.deviceState({ web: { internet_blocked: false }, policy: P.DEFAULT_SERVER_POLICY, tabs: [], messageShown: false });
      ws.send(JSON.stringify(P.helloFrame({ kind: 'school_code', code }, info, empty)));
    });
    ws.addEventListener('message', (event) => {
      if (typeof event.data !== 'string') return;
      const parsed = P.parseServerFrame(event.data);
      if (!parsed.ok) return;
      const msg = parsed.msg;
      if (msg.type === 'welcome' && msg.credential) {
        finish({ ok: true, school: String(msg.school).trim().slice(0, 100),
          credential: { device_id: msg.credential.device_id, secret: msg.credential.secret, server: authority } });
      } else if (msg.type === 'error') {
        finish({ ok: false, permanent: msg.code === 'bad_token', error: `${msg.code}: ${msg.message}` });
      }
    });
    ws.addEventListener('close', () => finish({ ok: false, permanent: false, error: 'connection closed' }));
  });
}

/** The schools the sign-in page offers now (schools-core.js). */
async function cbOfferedSchools() {
  const { cbSchools, identitySchool } = await chrome.storage.local.get(['cbSchools', 'identitySchool']);
  const shown = cb.welcomed && Identity.studentSignInOffered() && !Identity.currentStudent();
  return offeredSchools(cb.policy, loadStash(cbSchools), String(identitySchool ?? ''), shown);
}

/**
 * The student chose another school on the sign-in page: the last
 * school's teacher restrictions, lock and broadcast go, its state waits in
 * the stash, and the Chromebook connects to the chosen school. Until that
 * school's policy arrives its stored one applies (or, never connected, the
 * sign-in gate as it was: the Chromebook is not left open meanwhile).
 * @param {string} name
 * @returns {Promise<{ok: boolean, school?: string, error?: string}>}
 */
async function cbSwitchSchool(name) {
  // Never out from under a teacher's lock; never while the stash is being
  // written, or while violations wait for the school in use.
  if (lock.locked) return { ok: false, error: 'This Chromebook is locked.' };
  if (cb.registering || cb.switching || (safety && safety.pending.length)) {
    return { ok: false, error: 'This Chromebook is busy with its school. Try again in a minute.' };
  }
  cb.switching = true;
  let r;
  try {
    const s = await chrome.storage.local.get(['cbSchools', 'cbCredential', 'identitySchool']);
    const current = { school: String(s.identitySchool ?? ''), credential: s.cbCredential, policy: cb.policy, activity: cb.outbox.queue };
    r = switchTo(loadStash(s.cbSchools), current, name, await cbOfferedSchools());
    if (!r) return { ok: false, error: 'That school is not offered on this Chromebook.' };
    await cbSwap(current, r, 'the student switched this Chromebook');
  } finally {
    cb.switching = false;
  }
  cb.failures = 0;
  cbScheduleReconnect(100);
  return { ok: true, school: r.next.school };
}

/**
 * The school in use refused this Chromebook for good: the next school it
 * is registered with takes over (see `fallBack`), rather than waiting on
 * one that has let it go. False when there is none (or a swap is under
 * way).
 * @returns {Promise<boolean>}
 */
async function cbFallBack() {
  if (cb.registering || cb.switching) return false;
  cb.switching = true;
  try {
    const s = await chrome.storage.local.get(['cbSchools', 'cbCredential', 'identitySchool']);
    const r = fallBack(loadStash(s.cbSchools));
    if (!r) return false;
    const current = { school: String(s.identitySchool ?? ''), credential: s.cbCredential, policy: cb.policy, activity: cb.outbox.queue };
    await cbSwap(current, r, `${current.school} refused this Chromebook; it moved`);
  } finally {
    cb.switching = false;
  }
  cb.failures = 0;
  cbScheduleReconnect(100);
  return true;
}

/**
 * Leaves `current` for `r.next`: the old school's session ends first, so
 * nothing of the next school reaches it and nothing of it arrives after.
 * @param {import('./schools-core.js').Stashed} current
 * @param {{next: import('./schools-core.js').Stashed, stash: import('./schools-core.js').Stashed[]}} r
 * @param {string} why for the log
 */
async function cbSwap(current, r, why) {
  cbDropSession();
  if (safety) safety.leaveSchool();
  const stored = r.next.policy ? P.parseServerPolicy(r.next.policy) : null;
  cb.policy = stored?.ok ? stored.policy : {
    ...P.DEFAULT_SERVER_POLICY, allow_list: [], block_list: [],
    require_sign_in: cb.policy.require_sign_in, student_sign_in: cb.policy.student_sign_in,
  };
  cb.teacher = { ...P.NO_TEACHER, filter: { ...P.NO_TEACHER.filter } };
  cb.outbox = new P.ActivityOutbox(P.loadActivityQueue(r.next.activity));
  await chrome.storage.local.set({ cbSchools: r.stash, cbCredential: r.next.credential, cbActivity: cb.outbox.queue });
  await Identity.rememberSchool(r.next.school);
  await cbSave();
  await lock.policy(cb.policy.screen_locked);
  await lock.school(r.next.school);
  if (safety) safety.setPolicy(cb.policy);
  await cbApply();
  await cbIdentity();
  log(`${why} from ${current.school} to ${r.next.school}`);
}

/** Opens the registration page (register.html), or brings an open one forward. */
async function openRegistration() {
  const url = chrome.runtime.getURL('register.html');
  const open = await chrome.tabs.query({ url });
  if (open.length) {
    await chrome.tabs.update(open[0].id, { active: true }).catch(() => {});
    return;
  }
  await chrome.tabs.create({ url }).catch((err) => warn(`cannot open the registration page: ${err.message}`));
}

/**
 * The server refused the hello.
 * @param {{code: string, message: string}} msg
 */
async function cbRefused(msg) {
  warn(`server refused: ${msg.code}: ${msg.message}`);
  if (cb.typedCode && (msg.code === 'bad_token' || msg.code === 'rate_limited')) {
    // A school code typed on the registration page: ask again, saying why.
    await chrome.storage.local.remove('typedSchoolCode');
    await chrome.storage.local.set({ registerError: `The server refused the school code: ${msg.message}.` });
    await openRegistration();
    return;
  }
  if ((msg.code === 'revoked' || msg.code === 'unauthorized') && await cbFallBack()) return;
  if (msg.code === 'bad_token' || msg.code === 'revoked' || msg.code === 'unauthorized') {
    // Nothing will change soon: wait the longest backoff.
    cb.failures = Math.max(cb.failures, 6);
  }
}

/** The OS name reported in the hello. */
async function osName() {
  try {
    const info = await chrome.runtime.getPlatformInfo();
    return info.os === 'cros' ? 'chromeos' : `${info.os === 'mac' ? 'macos' : info.os} (browser)`;
  } catch {
    return 'chromeos';
  }
}

/**
 * A frame of a welcomed session.
 * @param {Record<string, any>} msg
 */
async function cbOnFrame(msg) {
  if (safety && safety.onFrame(msg)) return;
  switch (msg.type) {
    case 'command': {
      let result;
      try {
        result = await cbRun(msg.command);
      } catch (err) {
        result = { status: 'failed', reason: String(err && err.message ? err.message : err) };
      }
      cbSend({ type: 'ack', command_id: msg.command_id, result, state: await cbState() });
      break;
    }
    case 'policy':
      cb.policy = msg.policy;
      if (safety) safety.setPolicy(cb.policy);
      await cbSave();
      streamer.policyChanged(cb.policy);
      await lock.policy(cb.policy.screen_locked);
      await cbApply();
      await cbIdentity();
      await cbSendState();
      break;
    case 'view_request':
      await cbAskView(msg);
      break;
    case 'start_thumbnails':
      streamer.start(msg, cb.policy);
      break;
    case 'stop_thumbnails':
      streamer.stop();
      break;
    case 'error':
      warn(`server: ${msg.code}: ${msg.message}`);
      break;
    case 'activity_ack':
      cb.outbox.ack(msg.up_to);
      cbSaveActivity();
      break;
    case 'refused':
      cbOnRefused(msg);
      break;
    case 'broadcast_start':
      await broadcast.start(msg.title);
      break;
    case 'broadcast_stop':
      await broadcast.stop();
      break;
    case 'inventory_request':
      cbSendInventory();
      break;
    case 'hand_raised':
    case 'hand_closed':
    case 'chat':
    case 'chat_history':
      studentFrame(msg);
      break;
    case 'acceptable_use':
      await aup.show(msg.policy);
      break;
    case 'acceptable_use_clear':
      await aup.clear();
      break;
    case 'school_look': {
      const name = await schoolLook.look(msg);
      if (name) await lock.school(name);
      break;
    }
    case 'school_logo':
      if (!(await schoolLook.logo(msg))) warn('server: a school logo that was not asked for, or not its hash; left out');
      break;
    case 'student_sign_in':
      await cbStudentAnswer(msg);
      break;
    default:
      break;
  }
}

/**
 * What the server said about the student's requests: kept for the popup
 * and told to an open one.
 * @param {Record<string, any>} msg
 */
function studentFrame(msg) {
  const s = cb.student;
  s.status = null;
  if (msg.type === 'hand_raised') {
    s.raised = true;
    s.answer = null;
  } else if (msg.type === 'hand_closed') {
    s.raised = false;
    s.answer = msg.answer;
  } else if (msg.type === 'chat_history') {
    s.lines = msg.lines.map((l) => ({ mine: !l.from_teacher, author: l.author, text: l.text })).slice(-MAX_CHAT_LINES);
  } else {
    s.lines.push({ mine: !msg.line.from_teacher, author: msg.line.author, text: msg.line.text });
    s.lines.splice(0, Math.max(0, s.lines.length - MAX_CHAT_LINES));
  }
  tellPopup();
}

/** The popup's view of the student's requests. */
function studentState() {
  if (mode !== 'chromebook') {
    return { available: false, why: 'On this computer, use the ✋ Raise hand button at the bottom right of the screen, or press Ctrl+Alt+H.', raised: false, answer: null, status: null, lines: [] };
  }
  if (!cb.welcomed) return { available: false, why: 'Not connected to your school right now.', raised: false, answer: null, status: null, lines: [] };
  return { available: true, ...cb.student };
}

function tellPopup() {
  chrome.runtime.sendMessage({ type: 'student_state', state: studentState() }).catch(() => {});
}

/**
 * A request from the toolbar popup: sent to the server as the device's own
 * (the server attributes it to this device and its signed-in user).
 * @param {Record<string, any>} msg
 */
function studentRequest(msg) {
  if (mode !== 'chromebook' || !cb.welcomed) return studentState();
  let frame = null;
  if (msg.op === 'raise_hand') frame = { type: 'raise_hand', note: String(msg.note ?? '').slice(0, 500) };
  else if (msg.op === 'lower_hand') frame = { type: 'lower_hand' };
  else if (msg.op === 'chat_send' && typeof msg.text === 'string' && msg.text.trim()) frame = { type: 'chat_send', text: msg.text.trim() };
  if (frame && !cbSend(frame)) cb.student.status = 'Not connected to your school right now.';
  return studentState();
}

/** The school's name and logo for the lock page (school-look.js). */
const schoolLook = createSchoolLook(chrome.storage.local, (frame) => cbSend(frame));

const done = { status: 'done' };
const failed = (reason) => ({ status: 'failed', reason });

/**
 * Runs a teacher's command.
 * @param {Record<string, any>} cmd
 * @returns {Promise<{status: 'done'} | {status: 'failed', reason: string}>}
 */
async function cbRun(cmd) {
  switch (cmd.type) {
    case 'message': {
      const bad = P.checkMessageText(cmd.text);
      if (bad) return failed(bad);
      const win = await chrome.windows.create({
        url: chrome.runtime.getURL(`message.html#${encodeURIComponent(cmd.text)}`),
        type: 'popup',
        width: 520,
        height: 360,
        focused: true,
      });
      if (win && typeof win.id === 'number') cb.messageWindows.add(win.id);
      await cbSave();
      return done;
    }
    case 'launch_url':
    case 'meeting': {
      // A meeting invite opens its link as a website does; the link must be
      // https (the server and lectern-policy check it too).
      const u = P.checkUrl(cmd.url);
      if (!u.ok) return failed(`url is not allowed: ${u.error}`);
      if (cmd.type === 'meeting' && !u.url.startsWith('https:')) return failed('a meeting link must start with https://');
      const v = verdict(currentWeb, u.url);
      if (!v.allowed) {
        return failed(v.reason === 'internet' ? 'internet is blocked on this device'
          : v.reason === 'not_allowed' ? 'the website is not on the allowed list' : 'the website is on the blocked list');
      }
      await chrome.tabs.create({ url: u.url, active: true });
      return done;
    }
    case 'block_internet':
    case 'unblock_internet': {
      cb.teacher = { ...cb.teacher, internet_blocked: cmd.type === 'block_internet' };
      await cbSave();
      const r = await cbApply();
      if (!r.ok) return failed(r.errors.join('; '));
      if (cmd.type === 'unblock_internet' && cb.policy.internet_blocked) return failed(P.BLOCKED_BY_POLICY);
      return done;
    }
    case 'set_web_filter': {
      const f = P.parseWebFilterCommand(cmd);
      if (!f.ok) return failed(f.error);
      const before = cb.teacher;
      cb.teacher = { ...cb.teacher, filter: f.filter };
      const r = await cbApply();
      if (!r.ok) {
        cb.teacher = before;
        return failed(r.errors.join('; '));
      }
      await cbSave();
      return done;
    }
    case 'close_tab': {
      if (!Number.isSafeInteger(cmd.tab_id)) return failed('tab_id is not a number');
      try {
        await chrome.tabs.remove(cmd.tab_id);
      } catch {
        return failed(`no tab ${cmd.tab_id} is open`);
      }
      return done;
    }
    case 'lock': {
      if (cmd.text != null && typeof cmd.text !== 'string') return failed('lock text is not text');
      return lock.command({ type: 'lock', text: cmd.text ?? null, minutes: cmd.minutes ?? null });
    }
    case 'clear_message': {
      // Every message window this extension opened; one already closed is fine.
      for (const id of [...cb.messageWindows]) {
        try {
          await chrome.windows.remove(id);
        } catch { /* closed by the student */ }
        cb.messageWindows.delete(id);
      }
      await cbSave();
      return done;
    }
    case 'unlock':
      return lock.command({ type: 'unlock' });
    case 'close_all_tabs': {
      const { homePage } = await managedConfig();
      const home = homePage && P.checkUrl(homePage).ok ? P.checkUrl(homePage).url : '';
      await closeAllTabs(home, lock.locked ? lock.isLockPage : () => false);
      return done;
    }
    case 'logout':
      // chrome.login ends a session only on managed-guest/kiosk ChromeOS
      // devices, not a student's own sign-in.
      return failed(P.unsupported('logging out (a browser extension cannot end a ChromeOS or computer session)'));
    default:
      return failed(P.unsupported(String(cmd.type)));
  }
}

/**
 * A visit: queued under its sequence number until the server acknowledges
 * it, and sent now if the session is up and not held by a refusal.
 * @param {{kind: string, url: string, title: string, at: number}} event
 */
async function cbActivity(event) {
  const e = { kind: 'web', user: Identity.currentUser(), url: event.url, title: event.title || null, app: 'Web browser', at: event.at };
  // Scanned on the device whether or not visits are logged, as on the desktop.
  if (safety) safety.activity(e).catch((err) => warn(`keyword scan: ${err.message}`));
  if (!cb.policy.activity_logging) return;
  cb.outbox.add(e);
  cbSaveActivity();
  cbFlushActivity();
}

/** Persists the queue (a restarted worker sends what was not acknowledged). */
function cbSaveActivity() {
  chrome.storage.local.set({ cbActivity: cb.outbox.queue }).catch((err) => warn(`activity: ${err.message}`));
}

/** Sends the queued visits this session has not sent yet. */
function cbFlushActivity() {
  if (!cb.welcomed) return;
  for (const frame of cb.outbox.take()) {
    // A failed send closes the session; the next one sends everything again.
    if (!cbSend(frame)) break;
  }
}

/** A new session: everything unacknowledged goes again. */
function cbActivityResume() {
  if (cb.activityHold) clearTimeout(cb.activityHold);
  cb.activityHold = null;
  cb.outbox.restart();
  cbFlushActivity();
}

/**
 * The server refused a frame and kept nothing of it. Activity is held for
 * the wait the server asks, then sent again from the refused batch.
 * @param {{code: string, frame: {kind: string, first_seq: number | null}, retry_after_ms: number, message: string}} msg
 */
function cbOnRefused(msg) {
  if (msg.frame.kind === 'hand' || msg.frame.kind === 'chat') {
    cb.student.status = msg.message;
    tellPopup();
    return;
  }
  if (msg.frame.kind !== 'activity') {
    warn(`server refused a ${msg.frame.kind} frame: ${msg.code}: ${msg.message}`);
    return;
  }
  const wait = cb.outbox.refused(msg.frame.first_seq, msg.retry_after_ms);
  log(`server: activity refused (${msg.code}: ${msg.message}); sending again in ${wait} ms`);
  if (cb.activityHold) clearTimeout(cb.activityHold);
  cb.activityHold = setTimeout(() => {
    cb.activityHold = null;
    cb.outbox.release();
    cbFlushActivity();
  }, wait);
}

// ---------------------------------------------------------------------------
// Start-up and events. Listeners are registered synchronously at the top
// level, as MV3 requires for events to wake the worker.

/** Makes sure some connection is up or being retried. */
function ensureConnected() {
  if (mode === 'native' || mode === 'starting') {
    if (!native.port && !native.retry) connectNative();
  } else if (mode === 'chromebook') {
    if (!cb.ws && !cb.timer) cbConnect();
  } else if (mode === 'waiting') {
    if (!native.retry) connectNative();
  }
}

chrome.alarms.onAlarm.addListener((alarm) => {
  if (alarm.name === KEEPALIVE_ALARM) ensureConnected();
  if (alarm.name === EXPIRY_ALARM) lock.expire().catch(() => {});
});

for (const ev of [chrome.tabs.onCreated, chrome.tabs.onRemoved, chrome.tabs.onActivated, chrome.tabs.onMoved,
  chrome.tabs.onAttached, chrome.tabs.onDetached, chrome.tabs.onReplaced]) {
  ev.addListener(() => scheduleTabs());
}
chrome.tabs.onUpdated.addListener((_id, change) => {
  if ('url' in change || 'title' in change || change.status === 'complete') scheduleTabs();
});
chrome.windows.onFocusChanged.addListener(() => scheduleTabs());
// The lock (lock.js): new tabs become lock pages, and every window keeps one
// in front; a closed lock page or a new window gets one again.
chrome.tabs.onCreated.addListener((tab) => {
  if (typeof tab.id === 'number') lock.replace(tab.id, tab.pendingUrl || tab.url || '').catch(() => {});
  if (typeof tab.id === 'number') aup.replace(tab.id, tab.pendingUrl || tab.url || '').catch(() => {});
});
// A window that closes needs no lock page (and re-covering it while the
// browser shuts down only fights the shutdown).
chrome.tabs.onRemoved.addListener((_id, info) => {
  if (!info.isWindowClosing) lock.enforce().catch(() => {});
  if (!info.isWindowClosing) aup.enforce().catch(() => {});
});
chrome.tabs.onActivated.addListener(() => {
  lock.enforce().catch(() => {});
  aup.enforce().catch(() => {});
});
chrome.windows.onCreated.addListener(() => {
  lock.enforce().catch(() => {});
  aup.enforce().catch(() => {});
});
chrome.webNavigation.onBeforeNavigate.addListener((d) => {
  // Only the tab in front: a background tab's own reloads keep the student's work.
  if (d.frameId !== 0) return;
  if (lock.locked) lock.replace(d.tabId, d.url, { ifInFront: true }).catch(() => {});
  else if (aup.pending) aup.replace(d.tabId, d.url, { ifInFront: true }).catch(() => {});
});
// The student accepted the acceptable use policy (aup.html).
chrome.runtime.onMessage.addListener((msg, sender, reply) => {
  if (sender.id !== chrome.runtime.id || !msg || msg.type !== 'aup_accept') return undefined;
  if (!String(sender.url || '').startsWith(chrome.runtime.getURL('aup.html'))) return undefined;
  if (!Number.isSafeInteger(msg.version_id)) return undefined;
  aup.accept(msg.version_id).then(reply, () => reply(false));
  return true;
});
// A lock page that has finished loading: cover() reloads it if it shows an
// error instead (a tab the browser restored before the extension was loaded).
chrome.tabs.onUpdated.addListener((_id, change, tab) => {
  if (change.status === 'complete' && lock.locked && lock.isLockPage(tab.url)) lock.enforce().catch(() => {});
});
// Student sign-in (signin.html) and sign-out (popup.html), and what
// either shows: whether sign-in is offered, who is signed in, the school.
chrome.runtime.onMessage.addListener((msg, sender, reply) => {
  if (sender.id !== chrome.runtime.id || !msg || typeof msg.type !== 'string') return undefined;
  const from = String(sender.url || '');
  const fromPage = (page) => from.startsWith(chrome.runtime.getURL(page));
  if (msg.type === 'signin_state' && (fromPage('signin.html') || fromPage('popup.html'))) {
    const state = { offered: Identity.studentSignInOffered(), student: Identity.currentStudent(), connected: cb.welcomed };
    cbOfferedSchools().then((schools) => reply({ ...state, schools }), () => reply({ ...state, schools: [] }));
    return true;
  }
  if (msg.type === 'switch_school' && fromPage('signin.html')) {
    cbSwitchSchool(String(msg.school ?? '')).then(reply, (err) => reply({ ok: false, error: err.message }));
    return true;
  }
  if (msg.type === 'student_sign_in' && fromPage('signin.html')) {
    const built = signInFrame(msg.name, msg.picture !== undefined ? { picture: msg.picture } : { password: msg.password });
    if (!built.ok) {
      reply({ outcome: 'refused', reason: 'malformed', error: built.error });
      return undefined;
    }
    cbStudentAsk(built.frame).then(reply, () => reply({ outcome: 'refused', reason: 'offline' }));
    return true;
  }
  if (msg.type === 'student_sign_out' && fromPage('popup.html')) {
    cbStudentAsk({ type: 'student_sign_out' }).then(reply, () => reply({ outcome: 'refused', reason: 'offline' }));
    return true;
  }
  return undefined;
});
// The student's answer to a view request (ask.html).
chrome.runtime.onMessage.addListener((msg, sender) => {
  if (sender.id !== chrome.runtime.id || !msg || msg.type !== 'view_answer') return;
  if (!String(sender.url || '').startsWith(chrome.runtime.getURL('ask.html'))) return;
  if (Number.isSafeInteger(msg.request_id) && typeof msg.allowed === 'boolean') cbViewAnswer(msg.request_id, msg.allowed);
});
chrome.windows.onRemoved.addListener((windowId) => {
  if (cb.messageWindows.delete(windowId)) {
    cbSave().then(cbSendState).catch(() => {});
  }
  broadcast.onWindowRemoved(windowId).catch(() => {});
});
// The broadcast page asks for its frames over a port.
chrome.runtime.onConnect.addListener((port) => broadcast.onConnect(port));
chrome.webNavigation.onCompleted.addListener((details) => {
  onNavigationCompleted(details).catch((err) => warn(`activity: ${err.message}`));
});
chrome.storage.onChanged.addListener((changes, area) => {
  if (area === 'local' && changes.typedSchoolCode?.newValue && mode === 'chromebook') {
    cb.failures = 0;
    cbConnect().catch((err) => warn(`server: ${err.message}`));
    return;
  }
  if (area !== 'managed') return;
  log('managed configuration changed');
  if (mode === 'chromebook' || mode === 'waiting') {
    if (cb.ws) cb.ws.close();
    else ensureConnected();
  }
});
// Text typed into pages (content script typed.js): scanned for keywords by the
// agent, never logged. Only from this extension's own content scripts in tabs.
chrome.runtime.onMessage.addListener((msg, sender) => {
  if (sender.id !== chrome.runtime.id || !sender.tab || !msg || msg.type !== 'typed') return;
  if (typeof msg.text !== 'string' || !msg.text.trim()) return;
  const url = typeof sender.url === 'string' && /^https?:\/\//.test(sender.url) ? sender.url.slice(0, P.MAX_URL_LEN) : null;
  if (mode === 'native') nativeSend({ type: 'typed', text: msg.text.slice(0, 1000), url, at: Date.now() });
  else if (mode === 'chromebook' && safety) safety.typed(msg.text, url, sender.tab.windowId).catch((err) => warn(`keyword scan: ${err.message}`));
});
// The toolbar popup (popup.html) raises a hand, withdraws it and chats.
chrome.runtime.onMessage.addListener((msg, sender, reply) => {
  if (sender.id !== chrome.runtime.id || !msg || msg.type !== 'student_request') return undefined;
  if (!String(sender.url || '').startsWith(chrome.runtime.getURL('popup.html'))) return undefined;
  reply(msg.op === 'get' ? studentState() : studentRequest(msg));
  return undefined;
});
// A change of the signed-in user is reported at once.
Identity.init(() => {
  if (mode === 'chromebook') cbSendState().catch(() => {});
});
chrome.runtime.onStartup.addListener(() => { /* the top-level start below runs */ });
chrome.runtime.onInstalled.addListener(() => { /* idem */ });

/** Runs at every service worker start. */
async function start() {
  chrome.alarms.create(KEEPALIVE_ALARM, { periodInMinutes: 0.5 });
  try {
    await lock.restore();
  } catch (err) {
    warn(`restoring the lock: ${err.message}`);
  }
  try {
    await aup.restore();
  } catch (err) {
    warn(`restoring the acceptable use policy: ${err.message}`);
  }
  try {
    await restorePolicy();
  } catch (err) {
    warn(`restoring the web policy: ${err.message}`);
  }
  connectNative();
}

// For tests and debugging from the worker's console.
globalThis.lectern = {
  get mode() { return mode; },
  get web() { return currentWeb; },
  get safety() { return safety; },
  get connected() { return mode === 'native' ? Boolean(native.port && native.heard) : cb.welcomed; },
  get locked() { return lock.locked; },
  get thumbnails() { return streamer.stats(); },
  get captures() { return captures.stats(); },
  applyWebPolicy: (web) => {
    const r = parseWebPolicy(web);
    return r.ok ? applyWebPolicy(r.web) : Promise.resolve({ ok: false, errors: [r.error] });
  },
};

start();
