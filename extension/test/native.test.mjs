// Native-host presence (issue 10.6): only "not installed" / "forbidden"
// lets the extension enroll by itself; an installed agent that does not
// answer is waited for.
import { test } from 'node:test';
import assert from 'node:assert/strict';
import { nativeHostMissing } from '../native.js';

test('the browser saying no host is installed or allowed means missing', () => {
  for (const e of [
    'Specified native messaging host not found.',
    'Access to the specified native messaging host is forbidden.',
    'No such native application org.lectern.agent',
    'This extension does not have permission to use native application org.lectern.agent (or the application is not installed)',
  ]) assert.equal(nativeHostMissing(e), true, e);
});

test('an installed host that exits or fails is not missing', () => {
  for (const e of [
    'Native host has exited.',
    'Failed to start native messaging host.',
    'Error when communicating with the native messaging host.',
    'disconnected',
    '',
    undefined,
  ]) assert.equal(nativeHostMissing(e), false, String(e));
});
