// Who is using this browser (Chromebook / standalone mode), and the school's
// "require sign-in" gate.
//
// The user is the e-mail of the profile signed in to the browser
// (chrome.identity.getProfileUserInfo, permissions `identity` and
// `identity.email`), or else the `user` an administrator sets in the
// extension's managed storage. The server resolves the name through its
// people's aliases; it trusts it only as what this device says.
//
// When the policy's `require_sign_in` is on and no user is known, every web
// navigation is redirected (a declarativeNetRequest *session* rule, apart
// from the web filter's dynamic rules) to signin.html, which asks the student
// to sign in to the browser with their school account. Sign-in pages of the
// account providers and the Lectern server stay reachable.
//
// The first half of this file is pure (tested with node --test); the second
// talks to the browser.

/** Longest user name reported (lectern-proto caps DeviceState.user too). */
export const MAX_USER_LEN = 256;

/** The session rule's id: unique to this module. */
export const SIGNIN_RULE_ID = 4_242_001;

/** Above every web-filter rule (rules.js priorities are small). */
export const SIGNIN_RULE_PRIORITY = 1_000_000;

/** The page shown instead of browsing. */
export const SIGNIN_PAGE = '/signin.html';

/** Where a student signs in to the browser: never redirected. */
export const SIGNIN_DOMAINS = Object.freeze([
  'accounts.google.com',
  'accounts.youtube.com',
  'login.microsoftonline.com',
  'login.live.com',
]);

/**
 * A user name as reported: trimmed, printable, at most MAX_USER_LEN
 * characters; anything else is "unknown".
 * @param {unknown} raw
 * @returns {string | null}
 */
export function normalizeUser(raw) {
  if (typeof raw !== 'string') return null;
  const v = raw.trim();
  if (!v || [...v].length > MAX_USER_LEN) return null;
  // eslint-disable-next-line no-control-regex
  if (/[\u0000-\u001f\u007f-\u009f]/.test(v)) return null;
  return v;
}

/**
 * The user to report: the browser's signed-in e-mail, else the managed value.
 * @param {{profileEmail?: unknown, managedUser?: unknown}} sources
 * @returns {string | null}
 */
export function pickUser({ profileEmail, managedUser }) {
  return normalizeUser(profileEmail) ?? normalizeUser(managedUser);
}

/**
 * Whether browsing is gated behind the sign-in page.
 * @param {{user: string | null, requireSignIn: boolean}} s
 * @returns {boolean}
 */
export function gated({ user, requireSignIn }) {
  return requireSignIn === true && !user;
}

/**
 * The session rule that sends web pages to the sign-in page.
 * @param {string[]} alsoAllowed hosts never redirected (the Lectern server)
 * @returns {chrome.declarativeNetRequest.Rule}
 */
export function signinRule(alsoAllowed = []) {
  const hosts = alsoAllowed
    .map((h) => String(h).toLowerCase().replace(/^\[|\]$/g, ''))
    .filter((h) => h && /^[a-z0-9.:-]+$/.test(h));
  return {
    id: SIGNIN_RULE_ID,
    priority: SIGNIN_RULE_PRIORITY,
    action: { type: 'redirect', redirect: { extensionPath: SIGNIN_PAGE } },
    condition: {
      regexFilter: '^https?://',
      resourceTypes: ['main_frame'],
      excludedRequestDomains: [...SIGNIN_DOMAINS, ...hosts],
    },
  };
}

/**
 * Whether an open tab must be moved to the sign-in page when the gate closes.
 * @param {string | undefined} url
 * @param {string[]} alsoAllowed
 * @returns {boolean}
 */
export function tabNeedsSignin(url, alsoAllowed = []) {
  if (typeof url !== 'string' || !/^https?:\/\//i.test(url)) return false;
  let host;
  try {
    host = new URL(url).hostname.toLowerCase().replace(/^\[|\]$/g, '');
  } catch {
    return false;
  }
  const allowed = [...SIGNIN_DOMAINS, ...alsoAllowed.map((h) => String(h).toLowerCase())];
  return !allowed.some((d) => host === d || host.endsWith(`.${d}`));
}

// ---------------------------------------------------------------------------
// Browser side.

const state = {
  /** @type {string | null} */
  user: null,
  /** A student signed in with Lectern's own sign-in (signin.html), as the
   * server confirmed; kept in session storage, so it ends with the browser
   * session or a sign-out. @type {{name: string, display_name: string} | null} */
  student: null,
  requireSignIn: false,
  /** The policy offers Lectern's student sign-in. */
  offerStudent: false,
  /** @type {string[]} */
  allowed: [],
  /** Whether the session rule is installed. */
  ruleOn: false,
  /** @type {(user: string | null) => void} */
  onChange: () => {},
};

/** The user known now: the browser's, else a signed-in student's (null: unidentified). */
export function currentUser() {
  return state.user ?? state.student?.name ?? null;
}

/** The student signed in with Lectern's sign-in, if any. */
export function currentStudent() {
  return state.student;
}

/**
 * Whether `name` is the student this browser session signed in (kept in
 * session storage, which a browser restart empties).
 * @param {unknown} name
 * @returns {Promise<boolean>}
 */
export async function sameSessionStudent(name) {
  try {
    const { identityStudent } = await chrome.storage.session.get('identityStudent');
    return typeof name === 'string' && identityStudent?.name === name;
  } catch {
    return false;
  }
}

/** Whether the policy offers Lectern's student sign-in. */
export function studentSignInOffered() {
  return state.offerStudent;
}

/**
 * Records the student the server says is signed in (null: nobody), and
 * opens or closes the gate.
 * @param {{name: string, display_name: string} | null} student
 */
export async function setStudent(student) {
  const before = currentUser();
  state.student = student ? { name: student.name, display_name: student.display_name } : null;
  try {
    await chrome.storage.session.set({ identityStudent: state.student });
  } catch { /* no session storage: kept in memory */ }
  await applyGate();
  if (currentUser() !== before) state.onChange(currentUser());
}

/** Reads the user from the browser profile and managed storage. */
async function readUser() {
  let profileEmail = null;
  try {
    if (chrome.identity?.getProfileUserInfo) {
      const info = await chrome.identity.getProfileUserInfo({ accountStatus: 'ANY' });
      profileEmail = info?.email || null;
    }
  } catch { /* no identity API here (e.g. another browser) */ }
  let managedUser = null;
  try {
    managedUser = (await chrome.storage.managed.get('user'))?.user ?? null;
  } catch { /* no managed storage */ }
  return pickUser({ profileEmail, managedUser });
}

/** Installs or removes the redirect, and moves open pages when it closes. */
async function applyGate() {
  const on = gated({ user: currentUser(), requireSignIn: state.requireSignIn || state.offerStudent });
  if (on === state.ruleOn) return;
  await chrome.declarativeNetRequest.updateSessionRules({
    removeRuleIds: [SIGNIN_RULE_ID],
    addRules: on ? [signinRule(state.allowed)] : [],
  });
  state.ruleOn = on;
  if (!on) return;
  const tabs = await chrome.tabs.query({});
  const page = chrome.runtime.getURL(SIGNIN_PAGE);
  await Promise.all(tabs
    .filter((t) => t.id !== undefined && tabNeedsSignin(t.url, state.allowed))
    .map((t) => chrome.tabs.update(/** @type {number} */ (t.id), { url: page }).catch(() => {})));
}

/** Re-reads the user; calls the change hook when it changed. */
export async function refresh() {
  const before = currentUser();
  state.user = await readUser();
  try {
    const { identityStudent } = await chrome.storage.session.get('identityStudent');
    if (identityStudent && typeof identityStudent.name === 'string') state.student = identityStudent;
  } catch { /* no session storage */ }
  await applyGate();
  if (currentUser() !== before) state.onChange(currentUser());
}

/**
 * Sets the policy's `require_sign_in` and `student_sign_in` and the hosts
 * that stay reachable.
 * @param {boolean} required
 * @param {string[]} alsoAllowed
 * @param {boolean} [offerStudent] Lectern's student sign-in is offered (and gates too)
 */
export async function setRequired(required, alsoAllowed = [], offerStudent = false) {
  const allowedChanged = alsoAllowed.join(',') !== state.allowed.join(',');
  state.requireSignIn = required === true;
  state.offerStudent = offerStudent === true;
  state.allowed = alsoAllowed.slice();
  if (allowedChanged && state.ruleOn) state.ruleOn = false; // rebuild the rule
  await applyGate();
}

/**
 * Starts watching sign-in changes. Call synchronously at the worker's top
 * level (MV3 wakes the worker only for listeners added there).
 * @param {(user: string | null) => void} onChange
 */
export function init(onChange) {
  state.onChange = onChange;
  chrome.identity?.onSignInChanged?.addListener(() => { refresh().catch(() => {}); });
  chrome.storage.onChanged.addListener((changes, area) => {
    if (area === 'managed' && 'user' in changes) refresh().catch(() => {});
  });
}

/**
 * Remembers the school's name for the sign-in page.
 * @param {unknown} name
 */
export async function rememberSchool(name) {
  if (typeof name !== 'string' || !name.trim()) return;
  await chrome.storage.local.set({ identitySchool: name.trim().slice(0, 100) });
}
