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
 * Calls the API and returns the parsed JSON body (or null when empty).
 * State-changing requests carry the CSRF token. A 401 means the session is
 * gone, so the page goes back to the login form.
 * @param {'GET' | 'POST' | 'PUT' | 'DELETE'} method
 * @param {string} path e.g. `/api/v1/devices`
 * @param {unknown} [body] sent as JSON when given
 * @returns {Promise<any>}
 * @throws {ApiError}
 */
export async function api(method, path, body) {
  /** @type {Record<string, string>} */
  const headers = { Accept: 'application/json' };
  if (method !== 'GET') headers['X-CSRF-Token'] = csrfToken();
  /** @type {RequestInit} */
  const init = { method, headers, credentials: 'same-origin', cache: 'no-store' };
  if (body !== undefined) {
    headers['Content-Type'] = 'application/json';
    init.body = JSON.stringify(body);
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
  let data = null;
  if (text) {
    try {
      data = JSON.parse(text);
    } catch {
      data = null;
    }
  }
  if (!res.ok) {
    const message = data && typeof data.error === 'string' ? data.error : `Request failed (${res.status})`;
    throw new ApiError(res.status, message);
  }
  return data;
}
