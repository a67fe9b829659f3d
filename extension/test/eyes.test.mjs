// close_all_tabs (eyes.js): which tabs close, and when the home page opens.

import assert from 'node:assert/strict';
import test from 'node:test';
import { isHomePage, planCloseAll } from '../eyes.js';

const HOME = 'https://school.example/home';

test('the home page is matched by origin and path', () => {
  assert.ok(isHomePage('https://school.example/home', HOME));
  assert.ok(isHomePage('https://school.example/home/news?x=1', HOME));
  assert.ok(!isHomePage('https://school.example/homework', HOME));
  assert.ok(!isHomePage('http://school.example/home', HOME));
  assert.ok(!isHomePage('https://evil.example/home', HOME));
  assert.ok(!isHomePage('https://school.example/home', ''));
});

test('every tab but the home page closes; the home page opens when missing', () => {
  const tabs = [{ id: 1, url: 'https://games.example/' }, { id: 2, url: HOME }, { id: 3, url: 'chrome://newtab/' }];
  assert.deepEqual(planCloseAll(tabs, HOME), { open: false, close: [1, 3] });
  assert.deepEqual(planCloseAll([{ id: 1, url: 'https://games.example/' }], HOME), { open: true, close: [1] });
  assert.deepEqual(planCloseAll([{ id: 1, url: 'https://a/' }], ''), { open: true, close: [1] });
  const lock = (u) => u.startsWith('chrome-extension://x/lock.html');
  assert.deepEqual(planCloseAll([{ id: 1, url: 'chrome-extension://x/lock.html' }, { id: 2, url: 'https://a/' }], HOME, lock), { open: true, close: [2] });
});
