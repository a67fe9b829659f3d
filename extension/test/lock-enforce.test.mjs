// The lock's enforcement (lock.js createLock) against a fake chrome.* with
// windows and tabs in memory: a lock puts one lock page in front of each
// window, and a page that was still loading when the lock came keeps its tab
// behind it (it is not turned into a second lock page and then closed, which
// lost the student's tab; seen in real Chromium by tests/e2e/chromebook.mjs).
import { test } from 'node:test';
import assert from 'node:assert/strict';

const LOCK = 'chrome-extension://ext/lock.html';

/** A browser: windows of tabs, each tab {id, windowId, url, active}. */
function browser() {
  let next = 100;
  const tabs = [];
  const stored = {};
  const activate = (t) => {
    for (const o of tabs) if (o.windowId === t.windowId) o.active = o === t;
  };
  const get = (id) => {
    const t = tabs.find((x) => x.id === id);
    if (!t) throw new Error(`No tab with id: ${id}`);
    return t;
  };
  globalThis.chrome = {
    runtime: { getURL: (p) => `chrome-extension://ext/${p}` },
    storage: { local: { get: async (k) => (k in stored ? { [k]: stored[k] } : {}), set: async (o) => Object.assign(stored, o) } },
    windows: {
      getAll: async () => [...new Set(tabs.map((t) => t.windowId))]
        .map((id) => ({ id, tabs: tabs.filter((t) => t.windowId === id).map((t) => ({ ...t, status: 'complete' })) })),
    },
    tabs: {
      get: async (id) => ({ ...get(id) }),
      query: async () => tabs.map((t) => ({ ...t })),
      create: async ({ windowId, url, active }) => {
        const t = { id: next++, windowId, url, active: false };
        tabs.push(t);
        if (active) activate(t);
        return { ...t };
      },
      update: async (id, { url, active }) => {
        const t = get(id);
        if (url) t.url = url;
        if (active) activate(t);
        return { ...t };
      },
      remove: async (ids) => {
        for (const id of [ids].flat()) tabs.splice(tabs.indexOf(get(id)), 1);
      },
      reload: async () => {},
    },
  };
  return {
    tabs,
    open: (windowId, url) => {
      const t = { id: next++, windowId, url, active: false };
      tabs.push(t);
      activate(t);
      return t.id;
    },
  };
}

test('a lock puts one lock page in front of every window, and unlock removes them', async () => {
  const b = browser();
  b.open(1, 'https://red.test/');
  b.open(2, 'https://other.test/');
  const { createLock } = await import('../lock.js');
  const lock = createLock(() => {});
  assert.deepEqual(await lock.command({ type: 'lock', text: 'Eyes up' }), { status: 'done' });
  for (const w of [1, 2]) {
    const front = b.tabs.filter((t) => t.windowId === w && t.active);
    assert.equal(front.length, 1);
    assert.equal(front[0].url, LOCK);
  }
  assert.equal(b.tabs.length, 4, 'the student\'s tabs stay');
  await lock.command({ type: 'unlock' });
  assert.deepEqual(b.tabs.map((t) => t.url).sort(), ['https://other.test/', 'https://red.test/']);
});

test('a navigation that raced the lock keeps its tab behind the lock page', async () => {
  const b = browser();
  const student = b.open(2, 'https://other.test/second');
  const { createLock } = await import('../lock.js');
  const lock = createLock(() => {});
  // The page's navigation event was sent while its tab was in front, before
  // the lock, and is handled after it: by then the lock page is in front.
  await lock.command({ type: 'lock', text: null });
  await lock.replace(student, 'https://other.test/second', { ifInFront: true });
  const mine = b.tabs.find((t) => t.id === student);
  assert.ok(mine, 'the student\'s tab is still open');
  assert.equal(mine.url, 'https://other.test/second');
  assert.ok(!mine.active);
  assert.deepEqual(b.tabs.filter((t) => t.url === LOCK).length, 1);
  // A navigation in the front tab while locked still becomes the lock page.
  const front = b.tabs.find((t) => t.active);
  await lock.replace(front.id, 'https://sneaky.test/', { ifInFront: true });
  assert.equal(b.tabs.find((t) => t.active).url, LOCK);
});
