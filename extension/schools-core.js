// A Chromebook registered with several schools (issue 16 point 2), with no
// browser API so every rule is unit-tested (test/schools.test.mjs). The
// first school is the one the extension enrolled with (`cbCredential`);
// each further one comes from the managed `school_codes` and waits in a
// stash (`cbSchools`) with what belongs to it alone: its credential, its
// last policy and the activity it has not acknowledged, so nothing of one
// school reaches another's server. A switch swaps the school in use with
// one of the stash.

import { normalizeSchoolCode } from './protocol.js';

/** Most schools one Chromebook registers with (as the desktop agent). */
export const MAX_SCHOOLS = 4;

/**
 * @typedef {object} Stashed a school this Chromebook is registered with
 * @property {string} school its name, as its server said
 * @property {{device_id: number, secret: string, server: string}} credential
 * @property {unknown} policy its last policy (the raw frame's), or null
 * @property {unknown} activity its activity queue as stored (protocol.js
 *   `loadActivityQueue` reads it: the sequence numbers go on from there)
 */

/**
 * The further codes of the managed `school_codes`, canonical, each once,
 * without `first` (the code the Chromebook enrolled with); malformed ones
 * are reported, not used.
 * @param {unknown} raw
 * @param {string} [first]
 * @returns {{codes: string[], errors: string[]}}
 */
export function furtherCodes(raw, first = '') {
  const codes = [];
  const errors = [];
  const firstCode = normalizeSchoolCode(first);
  for (const item of Array.isArray(raw) ? raw : []) {
    const n = normalizeSchoolCode(item);
    if (!n.ok) {
      errors.push(`${JSON.stringify(String(item).slice(0, 40))}: ${n.error}`);
      continue;
    }
    if ((firstCode.ok && n.code === firstCode.code) || codes.includes(n.code)) continue;
    codes.push(n.code);
  }
  return { codes: codes.slice(0, MAX_SCHOOLS - 1), errors };
}

/**
 * Reads the stash as stored; anything malformed is dropped.
 * @param {unknown} raw
 * @returns {Stashed[]}
 */
export function loadStash(raw) {
  if (!Array.isArray(raw)) return [];
  return raw.filter((s) => s && typeof s === 'object'
    && typeof s.school === 'string' && s.school.trim()
    && s.credential && Number.isSafeInteger(s.credential.device_id)
    && typeof s.credential.secret === 'string' && typeof s.credential.server === 'string')
    .map((s) => ({
      school: s.school.trim().slice(0, 100),
      credential: { device_id: s.credential.device_id, secret: s.credential.secret, server: s.credential.server },
      policy: s.policy ?? null,
      activity: s.activity && typeof s.activity === 'object' ? s.activity : null,
    }))
    .slice(0, MAX_SCHOOLS - 1);
}

/**
 * The schools the sign-in page offers: the stash's names (not the current
 * school's), each once, when the school in use allows switching and its
 * sign-in is on screen (nobody signed in, so nobody is carried over).
 * @param {{school_switch?: boolean}} policy the current school's
 * @param {Stashed[]} stash
 * @param {string} current the current school's name
 * @param {boolean} signInShown
 * @returns {string[]}
 */
export function offeredSchools(policy, stash, current, signInShown) {
  if (!policy.school_switch || !signInShown) return [];
  const names = [];
  for (const s of stash) if (s.school !== current && !names.includes(s.school)) names.push(s.school);
  return names;
}

/**
 * Swaps the school in use for the stashed one called `name`: the new stash
 * (with the current school's state in it) and the school to use; `null`
 * when `name` is not offered.
 * @param {Stashed[]} stash
 * @param {Stashed} current
 * @param {string} name
 * @param {string[]} offered what the page offers now
 * @returns {{next: Stashed, stash: Stashed[]} | null}
 */
export function switchTo(stash, current, name, offered) {
  if (!offered.includes(name)) return null;
  const i = stash.findIndex((s) => s.school === name);
  if (i < 0) return null;
  const rest = stash.filter((_, j) => j !== i);
  return { next: stash[i], stash: [...rest, current] };
}

/**
 * The school in use refused this Chromebook for good (revoked, no longer
 * known): the first stashed school takes over, and the refused one is
 * dropped (its credential is worthless; its code stays registered, so it
 * is not registered again). `null` when nothing is stashed.
 * @param {Stashed[]} stash
 * @returns {{next: Stashed, stash: Stashed[]} | null}
 */
export function fallBack(stash) {
  if (!stash.length) return null;
  return { next: stash[0], stash: stash.slice(1) };
}
