// Message shapes the extension speaks, checked on the way in, plus the pure
// parts of Chromebook mode (merging a teacher's restrictions with the
// school's policy, the agent's state). No chrome.* calls: Node tests it
// (extension/test/protocol.test.mjs).
//
// Two peers:
// - the native host (`lectern-agent native-host`, host name
//   org.lectern.agent) over Chrome native messaging;
// - in Chromebook mode, the Lectern server itself at wss://SERVER/agent/v1,
//   speaking the agent protocol of crates/proto (AgentMsg / ServerMsg).

import { MODES, normalizePattern, parseWebPolicy } from './rules.js';
import { parseSignInFrame } from './signin-core.js';

/** Name of the native messaging host. */
export const NATIVE_HOST = 'org.lectern.agent';
/** Agent protocol version (lectern-proto PROTOCOL_VERSION). */
export const PROTOCOL_VERSION = 1;
/** Largest text frame the server accepts (lectern-proto MAX_TEXT_FRAME). */
export const MAX_SERVER_FRAME = 64 * 1024;
/** Largest text frame the server sends (lectern-proto MAX_SERVER_TEXT_FRAME: it may carry the keyword library). */
export const MAX_SERVER_TEXT_FRAME = 1024 * 1024;
/** Largest message a native host may send an extension. */
export const MAX_NATIVE_MESSAGE = 1024 * 1024;
/** Most activity events in one frame (lectern-proto MAX_ACTIVITY_BATCH). */
export const MAX_ACTIVITY_BATCH = 500;
/** Activity events kept while the server is unreachable. */
export const MAX_ACTIVITY_QUEUE = 1000;
/** Longest message text (lectern-policy MAX_MESSAGE_CHARS). */
export const MAX_MESSAGE_CHARS = 2000;
/** Longest URL the agent opens (lectern-policy MAX_URL_LEN). */
export const MAX_URL_LEN = 2048;
/** Budget for the tab list in one frame, leaving room for the rest of the state. */
export const TABS_BUDGET = 40 * 1024;
/** Longest tab title and URL reported. */
export const MAX_TAB_TITLE = 200;
export const MAX_TAB_URL = 1024;
/** What Chromebook mode can do (lectern-proto Capability). */
export const CHROMEBOOK_CAPABILITIES = ['message', 'launch_url', 'internet_block', 'tabs', 'web_filter', 'thumbnails', 'lock', 'broadcast', 'student_sign_in'];

/** Text of the agent's Unsupported error (crates/agent DesktopError). */
export const unsupported = (what) => `not supported on this device: ${what}`;
/** The headless/X11 agents' wording, kept identical for the console. */
export const BLOCKED_BY_POLICY = 'the internet stays blocked by policy (a group or lesson blocks it)';

const isObj = (v) => v !== null && typeof v === 'object' && !Array.isArray(v);
const isInt = (v) => Number.isSafeInteger(v);

/**
 * Checks a message from the native host.
 * @param {unknown} msg
 * @returns {{ok: true, msg: {type: string, [k: string]: unknown}} | {ok: false, error: string}}
 */
export function parseHostMessage(msg) {
  if (!isObj(msg)) return { ok: false, error: 'not a JSON object' };
  const m = /** @type {Record<string, unknown>} */ (msg);
  switch (m.type) {
    case 'policy': {
      const r = parseWebPolicy(m.web);
      if (!r.ok) return { ok: false, error: `policy: ${r.error}` };
      return { ok: true, msg: { type: 'policy', web: r.web } };
    }
    case 'close_tab':
      if (!isInt(m.tab_id)) return { ok: false, error: 'close_tab: tab_id is not an integer' };
      return { ok: true, msg: { type: 'close_tab', tab_id: m.tab_id } };
    case 'get_tabs':
      return { ok: true, msg: { type: 'get_tabs' } };
    case 'open_url': {
      const url = checkUrl(m.url);
      if (!url.ok) return { ok: false, error: `open_url: ${url.error}` };
      return { ok: true, msg: { type: 'open_url', url: url.url } };
    }
    default:
      return { ok: false, error: `unknown message type ${JSON.stringify(m.type)}` };
  }
}

/**
 * The checks lectern-policy's check_url makes before a URL is opened.
 * @param {unknown} raw
 * @returns {{ok: true, url: string} | {ok: false, error: string}}
 */
export function checkUrl(raw) {
  if (typeof raw !== 'string') return { ok: false, error: 'url is not a string' };
  if (raw.length > MAX_URL_LEN) return { ok: false, error: `url is longer than ${MAX_URL_LEN} bytes` };
  // eslint-disable-next-line no-control-regex
  if (/[\s\u0000-\u001f\u007f]/.test(raw)) return { ok: false, error: 'url contains whitespace or control characters' };
  let u;
  try {
    u = new URL(raw);
  } catch {
    return { ok: false, error: 'url is not an absolute URL' };
  }
  if (u.protocol !== 'http:' && u.protocol !== 'https:') return { ok: false, error: `url scheme ${u.protocol} is not http or https` };
  if (!u.hostname) return { ok: false, error: 'url has no host' };
  if (u.username || u.password) return { ok: false, error: 'credentials in URLs are not allowed' };
  return { ok: true, url: u.href };
}

/**
 * The checks lectern-policy makes on a teacher's message.
 * @param {unknown} text
 * @returns {string | null} what is wrong, or null
 */
export function checkMessageText(text) {
  if (typeof text !== 'string' || text.trim() === '') return 'message text is empty';
  if ([...text].length > MAX_MESSAGE_CHARS) return `message text is longer than ${MAX_MESSAGE_CHARS} characters`;
  // eslint-disable-next-line no-control-regex
  if (/[\u0000-\u0008\u000b-\u001f\u007f-\u009f\u202a-\u202e]/.test(text)) return 'message text contains control characters';
  return null;
}

/**
 * Trims the tab list to fit a frame: long titles and URLs are cut, and when
 * the list is still too large, active tabs are kept first.
 * @param {{id: number, window_id: number, title: string, url: string, active: boolean}[]} tabs
 * @param {number} [budget] bytes of JSON
 * @returns {typeof tabs}
 */
export function limitTabs(tabs, budget = TABS_BUDGET) {
  const cut = tabs.map((t) => ({
    id: t.id,
    window_id: t.window_id,
    title: String(t.title || '').slice(0, MAX_TAB_TITLE),
    url: String(t.url || '').slice(0, MAX_TAB_URL),
    active: Boolean(t.active),
  }));
  const ordered = [...cut.filter((t) => t.active), ...cut.filter((t) => !t.active)];
  const out = [];
  let size = 2;
  for (const t of ordered) {
    const n = JSON.stringify(t).length + 1;
    if (size + n > budget) break;
    size += n;
    out.push(t);
  }
  // Back in the browser's order.
  const keep = new Set(out);
  return cut.filter((t) => keep.has(t));
}

/**
 * Maps chrome.tabs.Tab objects to the reported shape.
 * @param {{id?: number, windowId: number, title?: string, url?: string, pendingUrl?: string, active: boolean}[]} tabs
 */
export function tabsFromChrome(tabs) {
  return limitTabs(tabs
    .filter((t) => typeof t.id === 'number' && t.id >= 0)
    .map((t) => ({ id: /** @type {number} */ (t.id), window_id: t.windowId, title: t.title || '', url: t.url || t.pendingUrl || '', active: t.active })));
}

// ---------------------------------------------------------------------------
// Chromebook mode: the extension is the agent.

/**
 * @typedef {object} ServerPolicy the web-relevant part of lectern-proto Policy
 * @property {number} version
 * @property {boolean} internet_blocked
 * @property {'off' | 'allow_list' | 'block_list'} web_filter_mode
 * @property {string[]} allow_list
 * @property {string[]} block_list
 * @property {boolean} screen_locked
 * @property {boolean} printing_disabled
 * @property {boolean} removable_media_disabled
 * @property {boolean} sound_muted
 * @property {'off' | 'allow_list' | 'block_list'} app_mode applications' list (not enforceable here)
 * @property {boolean} activity_logging
 * @property {boolean} require_sign_in
 * @property {boolean} [student_sign_in]
 * @property {boolean} [school_switch] a Chromebook in several schools offers the others
 * @property {'allow' | 'deny' | 'ask_then_allow' | 'ask_then_deny'} remote_view
 * @property {boolean} thumbnails_allowed
 */

/** lectern-proto Policy::default(). @type {ServerPolicy} */
export const DEFAULT_SERVER_POLICY = Object.freeze({
  version: 0,
  internet_blocked: false,
  web_filter_mode: 'off',
  allow_list: [],
  block_list: [],
  screen_locked: false,
  printing_disabled: false,
  removable_media_disabled: false,
  sound_muted: false,
  app_mode: 'off',
  activity_logging: true,
  keyword_policies: true,
  require_sign_in: false,
  student_sign_in: false,
  school_switch: false,
  remote_view: 'allow',
  thumbnails_allowed: true,
});

/**
 * @typedef {object} TeacherState restrictions a teacher set by command
 * @property {boolean} internet_blocked
 * @property {{mode: 'off' | 'allow_list' | 'block_list', allow: string[], block: string[]}} filter
 */

/** @type {TeacherState} */
export const NO_TEACHER = Object.freeze({ internet_blocked: false, filter: { mode: 'off', allow: [], block: [] } });

/**
 * Reads the `policy` of a server Policy frame; unknown fields are ignored
 * and missing ones take lectern-proto's defaults.
 * @param {unknown} raw
 * @returns {{ok: true, policy: ServerPolicy} | {ok: false, error: string}}
 */
export function parseServerPolicy(raw) {
  if (!isObj(raw)) return { ok: false, error: 'policy is not an object' };
  const o = /** @type {Record<string, unknown>} */ (raw);
  const p = { ...DEFAULT_SERVER_POLICY, allow_list: [], block_list: [] };
  if ('version' in o) {
    if (!isInt(o.version) || /** @type {number} */ (o.version) < 0) return { ok: false, error: 'version is not a number' };
    p.version = /** @type {number} */ (o.version);
  }
  if ('remote_view' in o) {
    if (!['allow', 'deny', 'ask_then_allow', 'ask_then_deny'].includes(/** @type {string} */ (o.remote_view))) return { ok: false, error: 'remote_view is not allow, deny, ask_then_allow or ask_then_deny' };
    p.remote_view = /** @type {ServerPolicy['remote_view']} */ (o.remote_view);
  }
  for (const k of ['internet_blocked', 'screen_locked', 'printing_disabled', 'removable_media_disabled', 'sound_muted', 'activity_logging', 'keyword_policies', 'require_sign_in', 'student_sign_in', 'school_switch', 'thumbnails_allowed']) {
    if (!(k in o)) continue;
    if (typeof o[k] !== 'boolean') return { ok: false, error: `${k} is not true or false` };
    p[k] = o[k];
  }
  if ('app_mode' in o) {
    if (typeof o.app_mode !== 'string' || !MODES.includes(o.app_mode)) return { ok: false, error: 'app_mode is not off, allow_list or block_list' };
    p.app_mode = /** @type {ServerPolicy['app_mode']} */ (o.app_mode);
  }
  if ('web_filter_mode' in o) {
    if (typeof o.web_filter_mode !== 'string' || !MODES.includes(o.web_filter_mode)) return { ok: false, error: 'web_filter_mode is not off, allow_list or block_list' };
    p.web_filter_mode = /** @type {ServerPolicy['web_filter_mode']} */ (o.web_filter_mode);
  }
  for (const k of ['allow_list', 'block_list']) {
    if (!(k in o)) continue;
    const v = o[k];
    if (!Array.isArray(v) || !v.every((s) => typeof s === 'string')) return { ok: false, error: `${k} is not a list of strings` };
    p[k] = v.slice();
  }
  return { ok: true, policy: p };
}

/**
 * The web policy in force: the teacher's block or the policy's; the
 * teacher's lists while set, else the policy's.
 * @param {ServerPolicy} policy
 * @param {TeacherState} teacher
 * @param {string[]} alwaysAllowed the server's host
 * @returns {import('./rules.js').WebPolicy}
 */
export function effectiveWebPolicy(policy, teacher, alwaysAllowed) {
  const teacherLists = teacher.filter.mode !== 'off';
  const mode = teacherLists ? teacher.filter.mode : policy.web_filter_mode;
  // The same words the agent service uses (crates/agent service registry).
  let setBy = 'your school';
  if (teacher.internet_blocked) setBy = 'your teacher';
  else if (!policy.internet_blocked && teacherLists) setBy = 'your teacher';
  return {
    internet_blocked: teacher.internet_blocked || policy.internet_blocked,
    mode,
    allow: teacherLists ? teacher.filter.allow.slice() : policy.allow_list.slice(),
    block: teacherLists ? teacher.filter.block.slice() : policy.block_list.slice(),
    always_allowed: alwaysAllowed.slice(),
    set_by: setBy,
  };
}

/**
 * Settings of a policy this device cannot enforce (DeviceState.unsupported).
 * @param {ServerPolicy} policy
 * @returns {string[]}
 */
export function unsupportedSettings(policy) {
  const out = ['printing_disabled', 'removable_media_disabled', 'sound_muted'].filter((k) => policy[k]);
  // A browser extension cannot close other applications (an exam's or a
  // group's application list): said, so the console shows it on the tile.
  if (policy.app_mode !== 'off') out.push('app_mode');
  return out;
}

/**
 * Reads one ServerMsg frame.
 * @param {unknown} text
 * @returns {{ok: true, msg: Record<string, any>} | {ok: false, error: string}}
 */
export function parseServerFrame(text) {
  if (typeof text !== 'string') return { ok: false, error: 'binary frame (only broadcast frames are binary; see broadcast.js)' };
  if (text.length > MAX_SERVER_TEXT_FRAME) return { ok: false, error: `frame of ${text.length} bytes is over ${MAX_SERVER_TEXT_FRAME}` };
  let m;
  try {
    m = JSON.parse(text);
  } catch {
    return { ok: false, error: 'frame is not JSON' };
  }
  if (!isObj(m) || typeof m.type !== 'string') return { ok: false, error: 'frame has no type' };
  switch (m.type) {
    case 'welcome':
      if (!isInt(m.device_id) || typeof m.school !== 'string' || !isInt(m.heartbeat_secs)) return { ok: false, error: 'welcome: missing device_id, school or heartbeat_secs' };
      if (m.credential !== undefined && m.credential !== null
        && !(isObj(m.credential) && isInt(m.credential.device_id) && typeof m.credential.secret === 'string')) {
        return { ok: false, error: 'welcome: malformed credential' };
      }
      return { ok: true, msg: m };
    case 'command':
      if (!isInt(m.command_id) || !isObj(m.command) || typeof m.command.type !== 'string') return { ok: false, error: 'command: missing command_id or command' };
      return { ok: true, msg: m };
    case 'policy': {
      const r = parseServerPolicy(m.policy);
      if (!r.ok) return { ok: false, error: `policy: ${r.error}` };
      return { ok: true, msg: { type: 'policy', policy: r.policy } };
    }
    case 'view_request':
      if (!isInt(m.request_id)) return { ok: false, error: 'view_request: no request_id' };
      return { ok: true, msg: m };
    case 'error':
      return { ok: true, msg: { type: 'error', code: String(m.code ?? ''), message: String(m.message ?? '') } };
    case 'activity_ack':
      if (!isInt(m.up_to) || m.up_to < 0) return { ok: false, error: 'activity_ack: no up_to' };
      return { ok: true, msg: { type: 'activity_ack', up_to: m.up_to } };
    case 'refused':
      if (!isObj(m.frame) || typeof m.frame.kind !== 'string' || !isInt(m.retry_after_ms) || m.retry_after_ms < 0) {
        return { ok: false, error: 'refused: missing frame or retry_after_ms' };
      }
      if (m.frame.kind === 'activity' && !(m.frame.first_seq === null || m.frame.first_seq === undefined || isInt(m.frame.first_seq))) {
        return { ok: false, error: 'refused: bad first_seq' };
      }
      return {
        ok: true,
        msg: {
          type: 'refused',
          code: String(m.code ?? ''),
          // Activity refusals are normalised; others (violation, evidence) keep their ids.
          frame: m.frame.kind === 'activity' ? { kind: 'activity', first_seq: m.frame.first_seq ?? null } : m.frame,
          retry_after_ms: m.retry_after_ms,
          message: String(m.message ?? ''),
        },
      };
    case 'keywords':
      if (!isObj(m.library)) return { ok: false, error: 'keywords: library is not an object' };
      return { ok: true, msg: m };
    case 'evidence_request':
      if (!isInt(m.violation_id)) return { ok: false, error: 'evidence_request: no violation_id' };
      return { ok: true, msg: m };
    case 'start_thumbnails':
      if (!isInt(m.width) || !isInt(m.interval_ms)) return { ok: false, error: 'start_thumbnails: missing width or interval_ms' };
      return { ok: true, msg: { type: m.type, width: m.width, interval_ms: m.interval_ms, privacy_bypass: m.privacy_bypass === true } };
    case 'stop_thumbnails':
    case 'inventory_request':
    case 'broadcast_start':
    case 'broadcast_stop':
    case 'hand_raised':
      return { ok: true, msg: m };
    case 'acceptable_use': {
      const p = m.policy;
      if (!isObj(p) || !isInt(p.version_id) || !isInt(p.version) || typeof p.title !== 'string'
        || typeof p.text !== 'string' || p.text.length > MAX_AUP_TEXT || p.title.length > MAX_AUP_TITLE) {
        return { ok: false, error: 'acceptable_use: malformed policy' };
      }
      return {
        ok: true,
        msg: { type: 'acceptable_use', policy: { version_id: p.version_id, version: p.version, title: p.title, text: p.text, published_at: isInt(p.published_at) ? p.published_at : 0 } },
      };
    }
    case 'acceptable_use_clear':
      return { ok: true, msg: { type: 'acceptable_use_clear' } };
    case 'hand_closed':
      if (!(m.answer === undefined || m.answer === null || typeof m.answer === 'string')) return { ok: false, error: 'hand_closed: bad answer' };
      return { ok: true, msg: { type: 'hand_closed', answer: m.answer ?? null } };
    case 'chat':
      if (!isChatLine(m.line)) {
        return { ok: false, error: 'chat: malformed line' };
      }
      return { ok: true, msg: { type: 'chat', line: { from_teacher: m.line.from_teacher, author: m.line.author, text: m.line.text } } };
    case 'chat_history': {
      // The newest lines of the device's chat after a (re)connect: they
      // replace what the popup shows. A malformed line drops the frame.
      if (!Array.isArray(m.lines) || !m.lines.every(isChatLine)) return { ok: false, error: 'chat_history: malformed lines' };
      const lines = m.lines.slice(-CHAT_HISTORY_LINES).map((l) => ({ from_teacher: l.from_teacher, author: l.author, text: l.text }));
      return { ok: true, msg: { type: 'chat_history', lines } };
    }
    case 'school_look':
      // The name is checked where it is shown (school-look.js); a missing
      // or malformed hash means "no logo".
      if (typeof m.name !== 'string') return { ok: false, error: 'school_look: no name' };
      return { ok: true, msg: { type: 'school_look', name: m.name, logo_sha256: typeof m.logo_sha256 === 'string' ? m.logo_sha256 : null } };
    case 'school_logo':
      if (typeof m.sha256 !== 'string' || typeof m.png !== 'string') return { ok: false, error: 'school_logo: missing sha256 or png' };
      return { ok: true, msg: { type: 'school_logo', sha256: m.sha256, png: m.png } };
    case 'student_sign_in':
      return parseSignInFrame(m);
    default:
      return { ok: false, error: `unknown frame type ${JSON.stringify(m.type)}` };
  }
}

/** Longest acceptable use text taken (the server's MAX_TEXT_BYTES; UTF-16 units never exceed UTF-8 bytes). */
export const MAX_AUP_TEXT = 32 * 1024;
/** Longest acceptable use title taken (the server's 120 characters, in UTF-16 units). */
export const MAX_AUP_TITLE = 240;

/** Most lines a chat_history frame is taken with (the server's HISTORY_LINES). */
export const CHAT_HISTORY_LINES = 20;

/**
 * Whether `l` is a chat line as the server sends it.
 * @param {unknown} l
 * @returns {l is {from_teacher: boolean, author: string, text: string}}
 */
function isChatLine(l) {
  return isObj(l) && typeof l.text === 'string' && typeof l.author === 'string' && typeof l.from_teacher === 'boolean';
}

/**
 * A teacher's set_web_filter command, checked as lectern-policy does.
 * @param {Record<string, unknown>} cmd
 * @returns {{ok: true, filter: TeacherState['filter']} | {ok: false, error: string}}
 */
export function parseWebFilterCommand(cmd) {
  if (typeof cmd.mode !== 'string' || !MODES.includes(cmd.mode)) return { ok: false, error: 'mode is not off, allow_list or block_list' };
  /** @type {Record<string, string[]>} */
  const lists = { allow: [], block: [] };
  for (const k of ['allow', 'block']) {
    const v = cmd[k] ?? [];
    if (!Array.isArray(v)) return { ok: false, error: `the ${k} list is not a list` };
    if (v.length > 5000) return { ok: false, error: `the ${k} list has more than 5000 patterns` };
    for (const raw of v) {
      const p = normalizePattern(raw);
      if (p === null) return { ok: false, error: `pattern ${JSON.stringify(raw)} is not a domain like *.example.org` };
      lists[k].push(p);
    }
  }
  const mode = /** @type {TeacherState['filter']['mode']} */ (cmd.mode);
  if (mode === 'off') return { ok: true, filter: { mode, allow: [], block: [] } };
  return { ok: true, filter: { mode, allow: lists.allow, block: lists.block } };
}

/** Symbols of a school code (lectern-proto's schoolcode::ALPHABET). */
const SCHOOL_CODE_ALPHABET = '0123456789ABCDEFGHJKMNPQRSTVWXYZ';

/**
 * A school code in canonical form from what a person typed, read as
 * lectern-proto's `schoolcode::normalize` reads it: case, spaces and dashes
 * do not matter, I and L are 1, O is 0.
 * @param {unknown} input
 * @returns {{ok: true, code: string} | {ok: false, error: string}}
 */
export function normalizeSchoolCode(input) {
  const length = { ok: /** @type {const} */ (false), error: 'A school code has 10 letters and digits.' };
  if (typeof input !== 'string' || input.length > 64) return length;
  let code = '';
  for (const raw of input.toUpperCase()) {
    if (raw === ' ' || raw === '-' || raw === '\t') continue;
    const c = raw === 'I' || raw === 'L' ? '1' : raw === 'O' ? '0' : raw;
    if (!SCHOOL_CODE_ALPHABET.includes(c)) return { ok: false, error: 'A school code has only letters and digits.' };
    code += c;
  }
  return code.length === 10 ? { ok: true, code } : length;
}

/**
 * How a Chromebook proves who it is: its stored credential; else, to
 * enroll, the policy's enrollment token, or else the school's code (the
 * server normalizes the code as typed).
 * @param {{device_id: number, secret: string} | null | undefined} cred
 * @param {{token: string, schoolCode: string}} config
 * @returns {HelloAuth}
 */
export function helloAuth(cred, config) {
  if (cred) return { kind: 'device', device_id: cred.device_id, secret: cred.secret };
  if (config.token) return { kind: 'enroll', token: config.token };
  return { kind: 'school_code', code: config.schoolCode };
}

/**
 * @typedef {{kind: 'enroll', token: string} | {kind: 'school_code', code: string} | {kind: 'device', device_id: number, secret: string}} HelloAuth
 */

/**
 * The hello frame of a Chromebook-mode session.
 * @param {HelloAuth} auth
 * @param {{hostname: string, os: string, agent_version: string}} info
 * @param {Record<string, unknown>} state
 * @param {string[]} [extraCapabilities] capabilities this browser adds (keyword_scan once the engine runs)
 */
export function helloFrame(auth, info, state, extraCapabilities = []) {
  return {
    type: 'hello',
    protocol_version: PROTOCOL_VERSION,
    auth,
    info,
    capabilities: [...CHROMEBOOK_CAPABILITIES, ...extraCapabilities],
    state,
  };
}

/**
 * A DeviceState for Chromebook mode.
 * @param {{web: import('./rules.js').WebPolicy, policy: ServerPolicy, tabs: ReturnType<typeof limitTabs>, messageShown: boolean, user?: string | null, locked?: boolean, limits?: string[], lockedUntil?: number | null, broadcastShown?: boolean}} s
 */
export function deviceState({ web, policy, tabs, messageShown, user = null, locked = false, limits = [], lockedUntil = null, broadcastShown = false }) {
  const active = tabs.find((t) => t.active) || null;
  return {
    user,
    locked,
    locked_until: locked && lockedUntil ? lockedUntil : null,
    internet_blocked: web.internet_blocked,
    focused_app: active ? 'Browser' : null,
    window_title: active ? active.title || null : null,
    url: active && /^https?:/.test(active.url) ? active.url : null,
    message_shown: messageShown,
    printing_disabled: false,
    removable_media_disabled: false,
    sound_muted: false,
    policy_version: policy.version,
    unsupported: [...unsupportedSettings(policy), ...limits],
    broadcast_shown: broadcastShown,
    tabs,
    extension: 'connected',
  };
}

/**
 * Reconnect delays: 1 s doubling to 60 s, each drawn from the upper half of
 * the current ceiling (jitter), as the Rust agent does.
 * @param {number} failures consecutive failures so far (0 for the first retry)
 * @param {() => number} [random]
 * @returns {number} milliseconds
 */
export function backoffDelay(failures, random = Math.random) {
  const ceiling = Math.min(60_000, 1000 * 2 ** Math.min(failures, 16));
  return Math.round(ceiling / 2 + (ceiling / 2) * random());
}

/**
 * `host:port` from the managed `server` key, or null when it is not one.
 * @param {unknown} raw
 * @returns {{host: string, port: number, authority: string} | null}
 */
export function parseServer(raw) {
  if (typeof raw !== 'string') return null;
  let s = raw.trim().replace(/^wss?:\/\//, '').replace(/^https?:\/\//, '').replace(/\/.*$/, '');
  if (!s) return null;
  let host;
  let port = 30016;
  const v6 = /^\[([0-9a-fA-F:.]+)\](?::(\d+))?$/.exec(s);
  if (v6) {
    host = `[${v6[1]}]`;
    if (v6[2]) port = Number(v6[2]);
  } else {
    const m = /^([A-Za-z0-9.-]+)(?::(\d+))?$/.exec(s);
    if (!m) return null;
    host = m[1].toLowerCase();
    if (m[2]) port = Number(m[2]);
  }
  if (!(port > 0 && port < 65536)) return null;
  s = `${host}:${port}`;
  return { host, port, authority: s };
}

// ---------------------------------------------------------------------------
// Chromebook mode's activity queue. Every visit gets a sequence number and
// stays queued until the server acknowledges it (`activity_ack {up_to}`, sent
// after it committed); a batch the server refuses (`refused`, e.g. over the
// device's rate) is sent again after `retry_after_ms`, and the server keeps
// each (device, seq) once, so a resend never doubles a visit. As the desktop
// agent's queue does.

/**
 * @typedef {{seq: number, event: object}} Queued
 * @typedef {{next_seq: number, pending: Queued[]}} ActivityQueue
 */

/** An empty queue. @returns {ActivityQueue} */
export function newActivityQueue() {
  return { next_seq: 1, pending: [] };
}

/**
 * A queue read back from storage (anything malformed starts afresh, keeping
 * the sequence number so the server never mistakes new visits for replays).
 * @param {unknown} raw
 * @returns {ActivityQueue}
 */
export function loadActivityQueue(raw) {
  const q = newActivityQueue();
  if (!isObj(raw)) return q;
  if (isInt(raw.next_seq) && raw.next_seq > 0) q.next_seq = raw.next_seq;
  if (Array.isArray(raw.pending)) {
    q.pending = raw.pending.filter((e) => isObj(e) && isInt(e.seq) && e.seq > 0 && e.seq < q.next_seq && isObj(e.event));
  }
  return q;
}

/**
 * Queues a visit under the next sequence number. When more than `max` wait,
 * the oldest not yet sent on this session (numbered above `sent`) goes, or
 * else this one: a batch the server refused is never dropped, since the
 * server accepts nothing after it until it comes again.
 * @param {ActivityQueue} q
 * @param {object} event
 * @param {number} [max]
 * @param {number} [sent]
 */
export function enqueueActivity(q, event, max = MAX_ACTIVITY_QUEUE, sent = 0) {
  q.pending.push({ seq: q.next_seq, event });
  q.next_seq += 1;
  while (q.pending.length > max) {
    const i = q.pending.findIndex((e) => e.seq > sent);
    q.pending.splice(i, 1);
  }
}

/**
 * Forgets what the server committed.
 * @param {ActivityQueue} q
 * @param {number} upTo
 */
export function ackActivity(q, upTo) {
  q.pending = q.pending.filter((e) => e.seq > upTo);
}

/**
 * Activity frames for the queued visits numbered above `after`: runs of
 * consecutive numbers, each within the server's batch and frame limits.
 * @param {ActivityQueue} q
 * @param {number} after
 * @returns {{type: 'activity', first_seq: number, events: object[]}[]}
 */
export function activityFrames(q, after) {
  const frames = [];
  let run = [];
  const flush = () => {
    if (!run.length) return;
    let rest = run;
    while (rest.length) {
      let n = Math.min(rest.length, MAX_ACTIVITY_BATCH);
      const frame = (k) => ({ type: 'activity', first_seq: rest[0].seq, events: rest.slice(0, k).map((e) => e.event) });
      while (n > 1 && JSON.stringify(frame(n)).length > MAX_SERVER_FRAME - 1024) n = Math.ceil(n / 2);
      frames.push(frame(n));
      rest = rest.slice(n);
    }
    run = [];
  };
  for (const e of q.pending) {
    if (e.seq <= after) continue;
    if (run.length && e.seq !== run[run.length - 1].seq + 1) flush();
    run.push(e);
  }
  flush();
  return frames;
}

/**
 * How long to hold activity after a refusal: the server's wait, at least
 * 100 ms and at most 10 minutes (0, "never", does not happen for activity;
 * it would otherwise stop the queue for good).
 * @param {number} retryAfterMs
 */
export function activityRetryDelay(retryAfterMs) {
  return Math.min(600_000, Math.max(100, retryAfterMs || 0));
}

/**
 * One session's view of the queue: what was sent on it, and whether a
 * refusal holds it. The caller sends what [`take`] returns, persists `queue`
 * after changes, and calls `release` when a refusal's wait is over.
 */
export class ActivityOutbox {
  /** @param {ActivityQueue} queue */
  constructor(queue) {
    this.queue = queue;
    /** Where sending goes on from: the highest number sent on this session,
     * or just before a refused batch. */
    this.sentUpTo = 0;
    /** The highest number ever sent on this session (kept when full). */
    this.sentMax = 0;
    /** A refusal asked us to wait. */
    this.held = false;
  }

  /** A new session: everything unacknowledged goes again. */
  restart() {
    this.sentUpTo = 0;
    this.sentMax = 0;
    this.held = false;
  }

  /** @param {object} event */
  add(event) {
    enqueueActivity(this.queue, event, MAX_ACTIVITY_QUEUE, this.sentMax);
  }

  /** Frames to send now (none while held); counted as sent. */
  take() {
    if (this.held) return [];
    const frames = activityFrames(this.queue, this.sentUpTo);
    const last = frames[frames.length - 1];
    if (last) this.sentUpTo = last.first_seq + last.events.length - 1;
    this.sentMax = Math.max(this.sentMax, this.sentUpTo);
    return frames;
  }

  /** @param {number} upTo the server committed every visit up to here */
  ack(upTo) {
    ackActivity(this.queue, upTo);
  }

  /**
   * The server refused the batch from `firstSeq` and (until it comes again)
   * those after it: hold, and send again from there once released.
   * @param {number | null} firstSeq
   * @param {number} retryAfterMs
   * @returns {number} ms to wait before `release`
   */
  refused(firstSeq, retryAfterMs) {
    this.sentUpTo = Math.min(this.sentUpTo, (firstSeq ?? 1) - 1);
    this.held = true;
    return activityRetryDelay(retryAfterMs);
  }

  /** The wait is over. */
  release() {
    this.held = false;
  }
}
