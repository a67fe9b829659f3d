// Small wrapper around fetch for the console's JSON API, and the one place
// that turns a failed request into a sentence for the teacher.

/** An API call that did not succeed; `message` is fit to show to the teacher. */
export class ApiError extends Error {
  /**
   * @param {number} status HTTP status, or 0 when the server could not be reached
   * @param {string} message
   * @param {{reason?: string, feature?: string, devices?: number[], retryAfter?: number}} [detail]
   *   reason: the server's stable name for why (never read meaning from the message)
   */
  constructor(status, message, detail = {}) {
    super(message);
    this.name = 'ApiError';
    this.status = status;
    /** @type {string} */
    this.reason = detail.reason || '';
    /** @type {string} */
    this.feature = detail.feature || '';
    /** @type {number[]} */
    this.devices = detail.devices || [];
    /** Seconds to wait before trying again (429), or 0. */
    this.retryAfter = detail.retryAfter || 0;
  }
}

/** "Ask your administrator." ends every refusal the user cannot fix. */
const ASK = 'Ask your administrator.';

/** @type {Record<string, string> | null} */
let refusalPhrases = null;

/**
 * What the user cannot do without `feature`, from the server's one table
 * (`FEATURE_REFUSALS`, rendered into the page's `data-refusals`).
 * @param {string} feature
 * @returns {string} e.g. "You can't open websites on these computers. Ask your administrator."
 */
export function refusalSentence(feature) {
  if (refusalPhrases === null) {
    try {
      refusalPhrases = JSON.parse(document.body?.dataset.refusals || '{}');
    } catch {
      refusalPhrases = {};
    }
  }
  const phrase = refusalPhrases?.[feature];
  return phrase ? `You can't ${phrase}. ${ASK}` : `You don't have the right to do this. ${ASK}`;
}

/**
 * The sentence for a refused (403) request, from its typed reason.
 * @param {{reason?: string, feature?: string, devices?: number[], error?: string}} body
 * @returns {string}
 */
function refusalMessage(body) {
  switch (body.reason) {
    case 'missing_right':
      return body.feature ? refusalSentence(body.feature) : `You don't have the right to do this. ${ASK}`;
    case 'no_control': {
      const n = Array.isArray(body.devices) ? body.devices.length : 0;
      const which = n === 1 ? 'one of these computers' : n > 1 ? `${n} of these computers` : 'these computers';
      return `You can't control ${which}. ${ASK}`;
    }
    case 'no_control_of_class':
      return `You can't control this class. ${ASK}`;
    case 'csrf':
      return 'This page is out of date: reload it and try again.';
    default:
      // Other refusals (delegation rules, privacy) explain themselves.
      return typeof body.error === 'string' && body.error ? body.error : `You don't have the right to do this. ${ASK}`;
  }
}

/**
 * Seconds from a Retry-After header, or 0.
 * @param {string | null} value
 * @returns {number}
 */
function retryAfterSeconds(value) {
  const n = Number(value);
  return Number.isFinite(n) && n > 0 ? Math.ceil(n) : 0;
}

/**
 * The sentence to show for a failed request, by status and typed reason.
 * @param {number} status
 * @param {any} body the reply's JSON (`{error, reason, feature, devices}`), or null
 * @param {string} text the reply's text when it was not JSON
 * @param {number} retryAfter seconds, from Retry-After
 * @returns {string}
 */
export function errorSentence(status, body, text, retryAfter) {
  const serverSays = body && typeof body.error === 'string' && body.error
    ? body.error
    : (text && text.length < 300 && !/^\s*</.test(text) ? text : '');
  switch (status) {
    case 0:
      return 'Cannot reach the server. Check the network connection, then try again.';
    case 403:
      return refusalMessage(body || {});
    case 409:
      return serverSays ? `That can't be done now: ${serverSays}` : 'That conflicts with a change made meanwhile. Reload the page and try again.';
    case 413:
      return 'That is too large to send. Send less at a time.';
    case 429:
      return retryAfter
        ? `Too many requests. Try again in ${retryAfter} second${retryAfter === 1 ? '' : 's'}.`
        : 'Too many requests. Wait a moment, then try again.';
    default:
      if (status >= 500) return 'The server had a problem with this request. Try again; if it keeps happening, tell your administrator.';
      return serverSays || `The request failed (error ${status}).`;
  }
}

/**
 * The CSRF token the server put in the page's `<meta name="csrf-token">`.
 * @returns {string}
 */
export function csrfToken() {
  const meta = /** @type {HTMLMetaElement | null} */ (document.querySelector('meta[name="csrf-token"]'));
  return meta ? meta.content : '';
}

/**
 * Sends one request: the CSRF token on state-changing requests, a 401 sends
 * the page back to the login form, and a failure carries the server's
 * `{"error": …}` message (or short plain-text reply).
 * @param {'GET' | 'POST' | 'PUT' | 'DELETE'} method
 * @param {string} path
 * @param {string} accept the Accept header
 * @param {{body: string, contentType: string}} [payload]
 * @returns {Promise<string>} the reply's text
 * @throws {ApiError}
 */
async function request(method, path, accept, payload) {
  /** @type {Record<string, string>} */
  const headers = { Accept: accept };
  if (method !== 'GET') headers['X-CSRF-Token'] = csrfToken();
  /** @type {RequestInit} */
  const init = { method, headers, credentials: 'same-origin', cache: 'no-store' };
  if (payload) {
    headers['Content-Type'] = payload.contentType;
    init.body = payload.body;
  }
  let res;
  try {
    res = await fetch(path, init);
  } catch {
    throw new ApiError(0, errorSentence(0, null, '', 0));
  }
  if (res.status === 401) {
    location.assign('/login');
    throw new ApiError(401, 'Your session has ended; please sign in again');
  }
  const text = await res.text();
  if (!res.ok) {
    const err = failure(res, text);
    // A reset password: the only thing left to do is choose a new one.
    if (err.reason === 'password_change_required') location.assign('/password');
    throw err;
  }
  return text;
}

/**
 * The ApiError for a failed reply: its sentence and typed details.
 * @param {Response} res
 * @param {string} text the reply's body
 * @returns {ApiError}
 */
function failure(res, text) {
  let body = null;
  try {
    body = JSON.parse(text);
  } catch { /* not JSON: a proxy's or the HTTP layer's reply */ }
  if (body === null || typeof body !== 'object') body = null;
  const retryAfter = retryAfterSeconds(res.headers.get('Retry-After'));
  return new ApiError(res.status, errorSentence(res.status, body, text, retryAfter), {
    reason: typeof body?.reason === 'string' ? body.reason : '',
    feature: typeof body?.feature === 'string' ? body.feature : '',
    devices: Array.isArray(body?.devices) ? body.devices : [],
    retryAfter,
  });
}

/**
 * Calls the API and returns the parsed JSON body (or null when empty).
 * @param {'GET' | 'POST' | 'PUT' | 'DELETE'} method
 * @param {string} path e.g. `/api/v1/devices`
 * @param {unknown} [body] sent as JSON when given
 * @returns {Promise<any>}
 * @throws {ApiError}
 */
export async function api(method, path, body) {
  const payload = body === undefined
    ? undefined
    : { body: JSON.stringify(body), contentType: 'application/json' };
  const text = await request(method, path, 'application/json', payload);
  if (!text) return null;
  try {
    return JSON.parse(text);
  } catch {
    return null;
  }
}

/**
 * Calls the API with a body that is not JSON (a CSV upload) or to read a
 * reply that is not JSON.
 * @param {'GET' | 'POST' | 'PUT' | 'DELETE'} method
 * @param {string} path
 * @param {{body?: string, contentType?: string}} [opts]
 * @returns {Promise<string>} the reply's text
 * @throws {ApiError}
 */
export async function apiRaw(method, path, opts = {}) {
  const payload = opts.body === undefined
    ? undefined
    : { body: opts.body, contentType: opts.contentType || 'text/plain; charset=utf-8' };
  return request(method, path, 'application/json, text/csv;q=0.9, */*;q=0.5', payload);
}
