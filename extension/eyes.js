// "Eyes on me" (close_all_tabs) in standalone mode: closes every tab of the
// normal windows but the school's home page (the managed `home_page`), which
// is opened when none shows it, so the browser never ends up without a window.
// Lock pages stay while locked. planCloseAll is pure (test/eyes.test.mjs).

/**
 * Whether `url` shows the school's home page: same origin, and a path under
 * the home page's path.
 * @param {string} url
 * @param {string} home
 */
export function isHomePage(url, home) {
  if (!home || !url) return false;
  try {
    const u = new URL(url);
    const h = new URL(home);
    const base = h.pathname.endsWith('/') ? h.pathname : `${h.pathname}/`;
    return u.origin === h.origin && (u.pathname === h.pathname || u.pathname.startsWith(base));
  } catch {
    return false;
  }
}

/**
 * Which tabs to close, and whether to open the home page first.
 * @param {{id: number, url: string}[]} tabs tabs of normal windows
 * @param {string} home the school's home page ('' when none is configured)
 * @param {(url: string) => boolean} keepAlso tabs kept besides the home page (lock pages)
 * @returns {{open: boolean, close: number[]}}
 */
export function planCloseAll(tabs, home, keepAlso = () => false) {
  const keep = tabs.filter((t) => isHomePage(t.url, home) || keepAlso(t.url));
  const close = tabs.filter((t) => !keep.includes(t)).map((t) => t.id);
  return { open: !tabs.some((t) => isHomePage(t.url, home)), close };
}

/**
 * Runs close_all_tabs.
 * @param {string} home a checked http(s) URL, or ''
 * @param {(url: string) => boolean} keepAlso
 * @returns {Promise<number>} how many tabs were closed
 */
export async function closeAllTabs(home, keepAlso) {
  const tabs = (await chrome.tabs.query({ windowType: 'normal' }))
    .filter((t) => typeof t.id === 'number')
    .map((t) => ({ id: /** @type {number} */ (t.id), url: t.url || t.pendingUrl || '' }));
  const plan = planCloseAll(tabs, home, keepAlso);
  // A home page to stay on (or an empty tab when the school has none), opened
  // before the others close so the last window survives.
  if (plan.open) await chrome.tabs.create(home ? { url: home, active: true } : { active: true });
  if (plan.close.length) await chrome.tabs.remove(plan.close);
  return plan.close.length;
}
