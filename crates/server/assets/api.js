// Small wrapper around fetch for the console's JSON API.

/** An API call that did not succeed; `message` is fit to show to the teacher. */
export class ApiError extends Error {
  /**
   * @param {number} status HTTP status, or 0 when the server could not be reached
   * @param {string} message
   */
  constructor(status, message) {
    super(message);
    this.name = 'ApiError';
    this.status = status;
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
    throw new ApiError(0, 'Cannot reach the server');
  }
  if (res.status === 401) {
    location.assign('/login');
    throw new ApiError(401, 'Your session has ended; please sign in again');
  }
  const text = await res.text();
  if (!res.ok) throw new ApiError(res.status, errorMessage(res.status, text));
  return text;
}

/**
 * The message to show for a failed request.
 * @param {number} status
 * @param {string} text the reply's body
 * @returns {string}
 */
function errorMessage(status, text) {
  try {
    const data = JSON.parse(text);
    if (data && typeof data.error === 'string') return data.error;
  } catch {
    if (text && text.length < 300) return text;
  }
  return `Request failed (${status})`;
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
