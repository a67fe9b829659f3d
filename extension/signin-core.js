// Student sign-in on a shared browser (lectern-proto signin): the picture
// grid, the frames the extension sends, and reading the server's answer.
// No chrome.* calls: Node tests it (extension/test/signin.test.mjs), and
// checks the grid against lectern-proto's (test/fixtures/pictures.json).

/**
 * The picture grid in order, as lectern-proto's PICTURES: the picture and
 * what a screen reader says.
 */
export const PICTURES = Object.freeze([
  ['🐶', 'dog'], ['🐱', 'cat'], ['🐸', 'frog'], ['🦊', 'fox'],
  ['🐻', 'bear'], ['🐼', 'panda'], ['🦁', 'lion'], ['🐷', 'pig'],
  ['🍎', 'apple'], ['🍌', 'banana'], ['🍓', 'strawberry'], ['🍕', 'pizza'],
  ['⚽', 'ball'], ['🚗', 'car'], ['🚀', 'rocket'], ['⭐', 'star'],
].map((p) => Object.freeze(p)));

/** Fewest and most pictures in a picture password. */
export const PICTURE_MIN = 3;
export const PICTURE_MAX = 4;
/** Shortest and longest text password (characters). */
export const TEXT_MIN = 6;
export const TEXT_MAX = 128;
/** Longest user name (characters). */
export const MAX_NAME_CHARS = 128;

/** Refusal reasons the server gives (lectern-proto SignInRefusal). */
export const REFUSALS = Object.freeze(['wrong_credentials', 'rate_limited', 'not_offered', 'malformed']);

/**
 * The StudentSignIn frame for what the student entered, or why it cannot
 * be sent (said to the student).
 * @param {unknown} name
 * @param {{picture?: unknown, password?: unknown}} entered pictures by index, or a password
 * @returns {{ok: true, frame: Record<string, unknown>} | {ok: false, error: string}}
 */
export function signInFrame(name, entered) {
  const n = typeof name === 'string' ? name.trim() : '';
  if (!n) return { ok: false, error: 'Type your user name.' };
  if ([...n].length > MAX_NAME_CHARS) return { ok: false, error: 'That user name is too long.' };
  if (entered.picture !== undefined) {
    const p = entered.picture;
    if (!Array.isArray(p) || p.length < PICTURE_MIN) return { ok: false, error: `Choose ${PICTURE_MIN} or ${PICTURE_MAX} pictures.` };
    if (p.length > PICTURE_MAX || !p.every((i) => Number.isInteger(i) && i >= 0 && i < PICTURES.length)) {
      return { ok: false, error: `Choose ${PICTURE_MIN} or ${PICTURE_MAX} pictures.` };
    }
    return { ok: true, frame: { type: 'student_sign_in', name: n, secret: { kind: 'picture', picture: p.slice() } } };
  }
  const pw = entered.password;
  if (typeof pw !== 'string' || [...pw].length < TEXT_MIN || [...pw].length > TEXT_MAX) {
    return { ok: false, error: `Type your password (${TEXT_MIN} characters or more).` };
  }
  return { ok: true, frame: { type: 'student_sign_in', name: n, secret: { kind: 'text', password: pw } } };
}

/**
 * Reads a student_sign_in frame from the server.
 * @param {Record<string, unknown>} m
 * @returns {{ok: true, msg: {type: 'student_sign_in', outcome: string, name?: string, display_name?: string, reason?: string, retry_after_secs?: number}} | {ok: false, error: string}}
 */
export function parseSignInFrame(m) {
  switch (m.outcome) {
    case 'signed_in':
      if (typeof m.name !== 'string' || typeof m.display_name !== 'string' || !m.name) {
        return { ok: false, error: 'student_sign_in: signed_in without name or display_name' };
      }
      return { ok: true, msg: { type: 'student_sign_in', outcome: 'signed_in', name: m.name.slice(0, 256), display_name: m.display_name.slice(0, 200) } };
    case 'signed_out':
      return { ok: true, msg: { type: 'student_sign_in', outcome: 'signed_out' } };
    case 'refused': {
      if (!REFUSALS.includes(/** @type {string} */ (m.reason))) return { ok: false, error: 'student_sign_in: unknown refusal' };
      const wait = Number.isSafeInteger(m.retry_after_secs) && /** @type {number} */ (m.retry_after_secs) > 0 ? m.retry_after_secs : 0;
      return { ok: true, msg: { type: 'student_sign_in', outcome: 'refused', reason: /** @type {string} */ (m.reason), retry_after_secs: /** @type {number} */ (wait) } };
    }
    default:
      return { ok: false, error: 'student_sign_in: unknown outcome' };
  }
}

/**
 * What the sign-in page says about an answer (empty when signed in).
 * @param {{outcome: string, reason?: string, retry_after_secs?: number}} a
 * @returns {string}
 */
export function answerSentence(a) {
  if (a.outcome === 'signed_in' || a.outcome === 'signed_out') return '';
  switch (a.reason) {
    case 'wrong_credentials':
      return 'That user name and password do not match. Try again, or ask your teacher.';
    case 'rate_limited': {
      const s = a.retry_after_secs || 60;
      return `Too many tries. Wait ${s} second${s === 1 ? '' : 's'}, then try again.`;
    }
    case 'not_offered':
      return 'Signing in here is not turned on for this computer. Ask your teacher.';
    case 'offline':
      return 'This computer cannot reach the school right now. Try again in a moment.';
    default:
      return 'Something went wrong. Try again, or ask your teacher.';
  }
}
