// Turns a web policy into declarativeNetRequest dynamic rules.
//
// A pure module: no chrome.* calls, so Node's test runner can check it
// (extension/test/rules.test.mjs). The service worker feeds the result to
// chrome.declarativeNetRequest.updateDynamicRules in one call.
//
// Pattern semantics (the same as the server's lectern-policy crate):
// - a pattern without `*` (`example.org`) matches that host and every
//   subdomain (`www.example.org`, `a.b.example.org`); such patterns share one
//   rule through `requestDomains`;
// - a pattern with `*` is a glob over the whole host, `*` standing for any
//   run of characters other than `/`, `:`, `?`, `#` and `@` (so never across
//   the port or the path): `*.example.org` matches `a.example.org` and
//   `a.b.example.org` but not `example.org`; `ex*ample.com` matches
//   `example.com` and `ex-ample.com`. Each such pattern becomes a regex rule.
//
// Precedence: hosts in `always_allowed` (the Lectern server) are never
// blocked; then `internet_blocked` blocks every http(s)/ws(s) request; else
// `allow_list` mode blocks everything off the allow list and `block_list` mode
// blocks the block list. Top-level pages that are blocked are redirected to
// the extension's block page; everything else (frames, scripts, XHR, web
// sockets…) is simply blocked. An allowed page is allowed as a whole
// (`allowAllRequests`): the images and scripts it loads from other hosts load
// too, as teachers expect when they allow a site.

/** Filter modes, as the agent and the server spell them. */
export const MODES = ['off', 'allow_list', 'block_list'];

/** Why a page is blocked, as passed to blocked.html. */
export const REASONS = /** @type {const} */ ({
  internet: 'internet',
  notAllowed: 'not_allowed',
  blocked: 'blocked',
});

/**
 * Chrome's limits for dynamic rules (chrome.declarativeNetRequest constants;
 * the service worker passes the live values where the browser has them).
 */
export const DEFAULT_LIMITS = Object.freeze({
  /** MAX_NUMBER_OF_REGEX_RULES */
  regexRules: 1000,
  /** MAX_NUMBER_OF_DYNAMIC_RULES (Chrome ≥ 121; 5000 before) */
  dynamicRules: 5000,
  /** MAX_NUMBER_OF_UNSAFE_DYNAMIC_RULES: redirects count as unsafe */
  unsafeDynamicRules: 5000,
  /** The server's own cap on one list (lectern-policy MAX_DOMAINS). */
  patternsPerList: 5000,
});

/** Rule priorities: a higher one wins. */
export const PRIORITY = Object.freeze({
  always: 100,
  allowList: 50,
  blockList: 10,
  catchAll: 1,
});

/** Longest `set_by` text carried to the block page. */
export const MAX_SET_BY = 200;

/** Characters `*` may stand for in a host glob. */
const STAR = '[^/:?#@]*';
/** What may follow the host in a URL (port, then path/query or nothing). */
const AFTER_HOST = '(?::[0-9]+)?(?:[/?#].*)?$';
/** Schemes whose requests the rules see. */
const SCHEMES = '(?:https?|wss?)';

/**
 * Normalizes a domain pattern: trimmed, lower-case, no trailing dot, no port;
 * letters, digits, `-`, `.` and `*` only. Returns null when it is not a
 * pattern (the server refuses those too; the extension skips them).
 * @param {unknown} raw
 * @returns {string | null}
 */
export function normalizePattern(raw) {
  if (typeof raw !== 'string') return null;
  let p = raw.trim().toLowerCase();
  // Tolerate "host:port" (always_allowed may name the server with its port)
  // and a pasted URL's scheme.
  p = p.replace(/^[a-z][a-z0-9+.-]*:\/\//, '');
  p = p.replace(/\/$/, '');
  p = p.replace(/:[0-9]*$/, '');
  p = p.replace(/\.+$/, '');
  if (p.length === 0 || p.length > 253) return null;
  if (!/^[a-z0-9.*-]+$/.test(p)) return null;
  if (p.includes('..') || p.startsWith('.')) return null;
  return p;
}

/**
 * Escapes a host glob into a regex (RE2 and JS agree on this subset).
 * @param {string} pattern a normalized pattern containing `*`
 * @returns {string} regex source for the host alone (no anchors)
 */
export function globToRegex(pattern) {
  let out = '';
  for (const c of pattern) {
    if (c === '*') out += STAR;
    else if (c === '.') out += '\\.';
    else out += c; // letters, digits and '-' need no escape
  }
  return out;
}

/**
 * The regexFilter for a wildcard pattern: any http(s)/ws(s) URL on a
 * matching host, whole URL matched (so `\0` is the full URL).
 * @param {string} pattern
 * @returns {string}
 */
export function urlRegexFor(pattern) {
  return `^${SCHEMES}://${globToRegex(pattern)}${AFTER_HOST}`;
}

/**
 * Whether `host` matches `pattern` under the semantics above.
 * @param {string} pattern normalized
 * @param {string} host lower-case host, no port
 * @returns {boolean}
 */
export function hostMatches(pattern, host) {
  if (!pattern.includes('*')) return host === pattern || host.endsWith(`.${pattern}`);
  return new RegExp(`^${globToRegex(pattern)}$`).test(host);
}

/**
 * Sorted, de-duplicated, normalized patterns, with complaints about the rest.
 * @param {unknown} list
 * @param {string} name for messages
 * @param {string[]} warnings appended to
 * @returns {string[]}
 */
function cleanList(list, name, warnings) {
  if (!Array.isArray(list)) return [];
  const out = new Set();
  for (const raw of list) {
    const p = normalizePattern(raw);
    if (p === null) warnings.push(`${name}: ignoring ${JSON.stringify(raw)}, not a domain pattern`);
    else out.add(p);
  }
  return [...out].sort();
}

/**
 * @typedef {object} WebPolicy
 * @property {boolean} internet_blocked
 * @property {'off' | 'allow_list' | 'block_list'} mode
 * @property {string[]} allow
 * @property {string[]} block
 * @property {string[]} always_allowed hosts never blocked (the Lectern server)
 * @property {string} set_by who set the restriction, for the block page
 */

/** The policy that blocks nothing. @type {WebPolicy} */
export const OPEN_POLICY = Object.freeze({
  internet_blocked: false,
  mode: 'off',
  allow: [],
  block: [],
  always_allowed: [],
  set_by: '',
});

/**
 * Checks the `web` object of a host `policy` message (or a stored one).
 * Missing fields take the open policy's values; wrong types are an error.
 * @param {unknown} raw
 * @returns {{ok: true, web: WebPolicy} | {ok: false, error: string}}
 */
export function parseWebPolicy(raw) {
  if (raw === null || typeof raw !== 'object' || Array.isArray(raw)) return { ok: false, error: 'web policy is not an object' };
  const o = /** @type {Record<string, unknown>} */ (raw);
  const web = { ...OPEN_POLICY, allow: [], block: [], always_allowed: [] };
  if ('internet_blocked' in o) {
    if (typeof o.internet_blocked !== 'boolean') return { ok: false, error: 'internet_blocked is not true or false' };
    web.internet_blocked = o.internet_blocked;
  }
  if ('mode' in o) {
    if (typeof o.mode !== 'string' || !MODES.includes(o.mode)) return { ok: false, error: `mode ${JSON.stringify(o.mode)} is not one of ${MODES.join(', ')}` };
    web.mode = /** @type {WebPolicy['mode']} */ (o.mode);
  }
  for (const key of /** @type {const} */ (['allow', 'block', 'always_allowed'])) {
    if (!(key in o) || o[key] === null) continue;
    const v = o[key];
    if (!Array.isArray(v) || !v.every((s) => typeof s === 'string')) return { ok: false, error: `${key} is not a list of strings` };
    if (v.length > DEFAULT_LIMITS.patternsPerList) return { ok: false, error: `${key} has ${v.length} patterns, more than ${DEFAULT_LIMITS.patternsPerList}` };
    web[key] = v.slice();
  }
  if ('set_by' in o && o.set_by !== null) {
    if (typeof o.set_by !== 'string') return { ok: false, error: 'set_by is not a string' };
    web.set_by = o.set_by.slice(0, MAX_SET_BY);
  }
  return { ok: true, web };
}

/**
 * What the block page is told for a reason.
 * @param {string} base `chrome-extension://<id>/blocked.html`
 * @param {string} reason one of REASONS
 * @param {string} setBy
 * @param {string} [url] the blocked URL (or `\0` in a regexSubstitution)
 * @returns {string}
 */
export function blockPageUrl(base, reason, setBy, url) {
  let s = `${base}#reason=${encodeURIComponent(reason)}&by=${encodeURIComponent(setBy.slice(0, MAX_SET_BY))}`;
  if (url !== undefined) s += `&url=${url}`;
  return s;
}

/**
 * Parses the fragment blocked.html was opened with. `url` is last and taken
 * verbatim (it may itself contain `&`).
 * @param {string} hash `location.hash`, with or without the leading `#`
 * @returns {{reason: string, by: string, url: string | null}}
 */
export function parseBlockHash(hash) {
  let h = hash.startsWith('#') ? hash.slice(1) : hash;
  let url = null;
  const at = h.indexOf('url=');
  if (at === 0 || (at > 0 && h[at - 1] === '&')) {
    url = h.slice(at + 4);
    h = h.slice(0, Math.max(0, at - 1));
  }
  const params = new URLSearchParams(h);
  const decode = (s) => {
    try {
      return decodeURIComponent(s);
    } catch {
      return s;
    }
  };
  return { reason: params.get('reason') || '', by: params.get('by') || '', url: url === null || url === '' ? null : decode(url) };
}

/**
 * Decides what the rules built from `web` do to a URL (for launch_url checks
 * and tests; the browser itself enforces the rules).
 * @param {WebPolicy} web
 * @param {string} url
 * @returns {{allowed: true} | {allowed: false, reason: string}}
 */
export function verdict(web, url) {
  let u;
  try {
    u = new URL(url);
  } catch {
    return { allowed: true };
  }
  if (!['http:', 'https:', 'ws:', 'wss:'].includes(u.protocol)) return { allowed: true };
  const host = u.hostname.toLowerCase().replace(/\.$/, '');
  const warnings = [];
  const any = (list) => cleanList(list, '', warnings).some((p) => hostMatches(p, host));
  if (any(web.always_allowed)) return { allowed: true };
  if (web.internet_blocked) return { allowed: false, reason: REASONS.internet };
  if (web.mode === 'allow_list') return any(web.allow) ? { allowed: true } : { allowed: false, reason: REASONS.notAllowed };
  if (web.mode === 'block_list' && any(web.block)) return { allowed: false, reason: REASONS.blocked };
  return { allowed: true };
}

/**
 * @typedef {object} BuildResult
 * @property {boolean} ok false when the rules would exceed a limit (then `rules` is empty and must not be applied)
 * @property {object[]} rules declarativeNetRequest rules, ids 1..n
 * @property {string[]} errors why it is not ok
 * @property {string[]} warnings patterns skipped
 * @property {{rules: number, regex: number, unsafe: number}} counts
 */

/**
 * Builds the dynamic rules enforcing `web`.
 * @param {WebPolicy} web
 * @param {{blockPage: string, limits?: Partial<typeof DEFAULT_LIMITS>}} opts
 *   blockPage: the absolute URL of blocked.html
 * @returns {BuildResult}
 */
export function buildRules(web, { blockPage, limits = {} }) {
  const lim = { ...DEFAULT_LIMITS, ...limits };
  /** @type {string[]} */
  const warnings = [];
  /** @type {string[]} */
  const errors = [];
  /** @type {object[]} */
  const rules = [];
  const setBy = web.set_by || '';

  /** @type {string | null} */
  let reason = null;
  if (web.internet_blocked) reason = REASONS.internet;
  else if (web.mode === 'allow_list') reason = REASONS.notAllowed;
  else if (web.mode === 'block_list') reason = REASONS.blocked;
  if (reason === null) return { ok: true, rules, errors, warnings, counts: { rules: 0, regex: 0, unsafe: 0 } };

  for (const [name, list] of [['allow', web.allow], ['block', web.block], ['always_allowed', web.always_allowed]]) {
    if (Array.isArray(list) && list.length > lim.patternsPerList) {
      errors.push(`the ${name} list has ${list.length} patterns; at most ${lim.patternsPerList} are supported`);
    }
  }

  const add = (priority, action, condition) => {
    rules.push({ id: rules.length + 1, priority, action, condition });
  };
  const redirectTo = (why) => ({ type: 'redirect', redirect: { regexSubstitution: blockPageUrl(blockPage, why, setBy, '\\0') } });

  /**
   * Allow rules for a list: the page as a whole (main and sub frames with
   * what they load) and the list's hosts for any request.
   */
  const allowAll = (patterns, priority) => {
    const plain = patterns.filter((p) => !p.includes('*'));
    const globs = patterns.filter((p) => p.includes('*'));
    if (plain.length) {
      add(priority, { type: 'allowAllRequests' }, { requestDomains: plain, resourceTypes: ['main_frame', 'sub_frame'] });
      add(priority, { type: 'allow' }, { requestDomains: plain });
    }
    for (const g of globs) {
      const regexFilter = urlRegexFor(g);
      add(priority, { type: 'allowAllRequests' }, { regexFilter, isUrlFilterCaseSensitive: false, resourceTypes: ['main_frame', 'sub_frame'] });
      add(priority, { type: 'allow' }, { regexFilter, isUrlFilterCaseSensitive: false });
    }
  };

  const always = cleanList(web.always_allowed, 'always_allowed', warnings);
  allowAll(always, PRIORITY.always);

  if (reason === REASONS.internet || reason === REASONS.notAllowed) {
    if (reason === REASONS.notAllowed) allowAll(cleanList(web.allow, 'allow', warnings), PRIORITY.allowList);
    add(PRIORITY.catchAll, redirectTo(reason), { regexFilter: '^https?://.*$', isUrlFilterCaseSensitive: false, resourceTypes: ['main_frame'] });
    // Without resourceTypes a rule matches every type except main_frame.
    add(PRIORITY.catchAll, { type: 'block' }, { regexFilter: `^${SCHEMES}://`, isUrlFilterCaseSensitive: false });
  } else {
    const block = cleanList(web.block, 'block', warnings);
    const plain = block.filter((p) => !p.includes('*'));
    const globs = block.filter((p) => p.includes('*'));
    if (plain.length) {
      add(PRIORITY.blockList, redirectTo(reason), { requestDomains: plain, regexFilter: '^https?://.*$', isUrlFilterCaseSensitive: false, resourceTypes: ['main_frame'] });
      add(PRIORITY.blockList, { type: 'block' }, { requestDomains: plain });
    }
    for (const g of globs) {
      const regexFilter = urlRegexFor(g);
      add(PRIORITY.blockList, redirectTo(reason), { regexFilter, isUrlFilterCaseSensitive: false, resourceTypes: ['main_frame'] });
      add(PRIORITY.blockList, { type: 'block' }, { regexFilter, isUrlFilterCaseSensitive: false });
    }
  }

  const counts = {
    rules: rules.length,
    regex: rules.filter((r) => 'regexFilter' in r.condition).length,
    unsafe: rules.filter((r) => r.action.type === 'redirect').length,
  };
  if (counts.regex > lim.regexRules) {
    errors.push(`the lists need ${counts.regex} regex rules (one pair per pattern with *); the browser allows ${lim.regexRules}`);
  }
  if (counts.rules > lim.dynamicRules) errors.push(`the lists need ${counts.rules} rules; the browser allows ${lim.dynamicRules}`);
  if (counts.unsafe > lim.unsafeDynamicRules) errors.push(`the lists need ${counts.unsafe} redirect rules; the browser allows ${lim.unsafeDynamicRules}`);
  if (errors.length) return { ok: false, rules: [], errors, warnings, counts };
  return { ok: true, rules, errors, warnings, counts };
}
