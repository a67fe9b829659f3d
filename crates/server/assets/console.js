// The teacher console: wires the class grid, the toolbar, the command results,
// the live view, the tabs and web lists dialogs and the live stream together.

import './alerts.js';
import { api } from './api.js';
import { Commands } from './commands.js';
import { Grid } from './grid.js';
import { LiveView } from './liveview.js';
import { $, hideNotice, initPage, showNotice } from './page.js';
import { Stream } from './stream.js';
import { TabsDialog } from './tabs.js';
import { WebListsDialog } from './weblists.js';

/** Thumbnail width asked from the server, in pixels. */
const THUMB_WIDTH = 320;

const commandText = /** @type {HTMLInputElement} */ ($('command-text'));
const streamStatus = $('stream-status');

const grid = new Grid($('grid'), {
  onSelectionChange: updateSelectionCount,
  onWatchChange: scheduleWatch,
  onEmptyChange: (empty) => {
    $('grid-empty').hidden = !empty;
  },
  onLiveView: (device) => liveView.open(device),
  onTabs: (device) => tabsDialog.open(device),
  onThumbnail: (id, url) => liveView.onThumbnail(id, url),
});

/** The device in the live view, streamed larger and faster, or null. @type {number | null} */
let liveId = null;

const liveView = new LiveView({
  dialog: /** @type {HTMLDialogElement} */ ($('live-view')),
  title: $('live-view-title'),
  decision: $('live-view-decision'),
  screen: $('live-view-screen'),
  image: /** @type {HTMLImageElement} */ ($('live-view-image')),
  canvas: /** @type {HTMLCanvasElement} */ ($('live-view-canvas')),
  close: /** @type {HTMLButtonElement} */ ($('live-view-close')),
  previous: /** @type {HTMLButtonElement} */ ($('live-view-previous')),
  next: /** @type {HTMLButtonElement} */ ($('live-view-next')),
  screenshot: /** @type {HTMLButtonElement} */ ($('live-view-screenshot')),
  shotStatus: $('live-view-shot'),
}, grid, (id) => {
  liveId = id;
  scheduleWatch();
});

const commands = new Commands(grid, {
  panel: $('results'),
  label: $('results-command'),
  summary: $('results-summary'),
});

const tabsDialog = new TabsDialog({
  dialog: /** @type {HTMLDialogElement} */ ($('tabs-dialog')),
  title: $('tabs-title'),
  list: $('tabs-list'),
  empty: $('tabs-empty'),
  status: $('tabs-status'),
  close: /** @type {HTMLButtonElement} */ ($('tabs-close')),
}, grid);

const webLists = new WebListsDialog({
  dialog: /** @type {HTMLDialogElement} */ ($('web-lists')),
  target: $('web-lists-target'),
  mode: /** @type {HTMLSelectElement} */ ($('web-lists-mode')),
  allow: /** @type {HTMLTextAreaElement} */ ($('web-lists-allow')),
  block: /** @type {HTMLTextAreaElement} */ ($('web-lists-block')),
  error: $('web-lists-error'),
  apply: /** @type {HTMLButtonElement} */ ($('web-lists-apply')),
  cancel: /** @type {HTMLButtonElement} */ ($('web-lists-cancel')),
}, async (command, ids) => {
  hideNotice();
  await commands.send(command, ids);
});

/** The watch list last sent to the server, as a string, or null. @type {string | null} */
let lastWatch = null;
let watchQueued = false;

/** Whether the stream has been open before (so an open is a reconnect). */
let streamOpened = false;

const stream = new Stream('/api/v1/stream', {
  onOpen() {
    setStreamStatus('live', 'Live');
    lastWatch = null;
    sendWatch();
    // Catch up on changes missed while disconnected.
    if (streamOpened) refreshDevices();
    streamOpened = true;
  },
  onClose() {
    setStreamStatus('connecting', 'Reconnecting…');
    // Also notices an ended session: the API answers 401 and we go to /login.
    refreshDevices(true);
  },
  onDevice: (device) => {
    grid.update(device);
    tabsDialog.onDevice(device);
  },
  onResult: (result) => {
    commands.onResult(result);
    tabsDialog.onResult(result);
  },
  onThumbnail: (id, jpeg) => grid.setThumbnail(id, jpeg),
  onVideo: (id, picture) => liveView.onVideo(id, picture),
});

/** Sends the watch list soon, once per burst of changes. */
function scheduleWatch() {
  if (watchQueued) return;
  watchQueued = true;
  setTimeout(() => {
    watchQueued = false;
    sendWatch();
  }, 50);
}

/**
 * Tells the server which thumbnails we want and which device is live, if that
 * changed. The live device is always watched too (the server requires it).
 */
function sendWatch() {
  const hidden = document.visibilityState === 'hidden';
  const ids = hidden ? [] : grid.watchIds();
  const live = hidden ? null : liveId;
  if (live !== null && !ids.includes(live)) ids.push(live);
  const key = `${ids.join(',')}|${live}|${liveView.codecs.join(',')}`;
  if (key === lastWatch) return;
  /** @type {{watch: number[], width: number, live?: number, codecs?: string[]}} */
  const message = { watch: ids, width: THUMB_WIDTH };
  if (live !== null) message.live = live;
  // The live view comes as H.264 where this browser decodes it.
  if (liveView.codecs.length) message.codecs = liveView.codecs;
  if (stream.send(message)) lastWatch = key;
}

/**
 * Shows the stream's state in the header.
 * @param {'live' | 'connecting'} state
 * @param {string} text
 */
function setStreamStatus(state, text) {
  streamStatus.className = `stream-status ${state}`;
  streamStatus.textContent = text;
}

/**
 * Reloads the device list (initial load and after the stream reconnects).
 * @param {boolean} [quiet] do not show a notice when the server is unreachable
 */
async function refreshDevices(quiet = false) {
  try {
    const devices = await api('GET', '/api/v1/devices');
    grid.sync(Array.isArray(devices) ? devices : []);
    tabsDialog.render();
    updateSelectionCount();
  } catch (err) {
    if (!(quiet && err.status === 0)) showNotice(`Could not load the computers: ${err.message}`);
  }
}

/** Updates the "N selected" label. */
function updateSelectionCount() {
  $('selection-count').textContent = `${grid.selectedIds().length} selected`;
}

/**
 * Builds the command for a toolbar button, or explains why it cannot.
 * @param {string} buttonId
 * @param {number} count how many devices are selected
 * @returns {{type: string, [key: string]: unknown} | string} the command, or a notice
 */
function commandFor(buttonId, count) {
  const text = commandText.value.trim();
  switch (buttonId) {
    case 'cmd-message':
      return text ? { type: 'message', text } : 'Type the message to send first';
    case 'cmd-launch-url':
      return text ? { type: 'launch_url', url: withScheme(text) } : 'Type the website address first';
    case 'cmd-lock':
      return text ? { type: 'lock', text } : { type: 'lock' };
    case 'cmd-unlock':
      return { type: 'unlock' };
    case 'cmd-block-internet':
      return { type: 'block_internet' };
    case 'cmd-unblock-internet':
      return { type: 'unblock_internet' };
    case 'cmd-close-all-tabs':
      return confirm(`Close every browser tab but the school home page on ${count} computer${count === 1 ? '' : 's'}?`)
        ? { type: 'close_all_tabs' }
        : '';
    case 'cmd-logout':
      return confirm(`Log out the students on ${count} computer${count === 1 ? '' : 's'}? Unsaved work may be lost.`)
        ? { type: 'logout' }
        : '';
    default:
      return '';
  }
}

/**
 * Adds `https://` to an address typed without a scheme.
 * @param {string} address
 * @returns {string}
 */
function withScheme(address) {
  return /^[a-z][a-z0-9+.-]*:/i.test(address) ? address : `https://${address}`;
}

/**
 * Runs the command of a toolbar button on the selected devices.
 * @param {HTMLButtonElement} button
 */
async function runCommand(button) {
  const ids = grid.selectedIds();
  if (ids.length === 0) {
    showNotice('Select at least one computer first', 'info');
    return;
  }
  const command = commandFor(button.id, ids.length);
  if (typeof command === 'string') {
    if (command) showNotice(command, 'info');
    return;
  }
  hideNotice();
  const buttons = document.querySelectorAll('.toolbar button[id^="cmd-"]');
  buttons.forEach((b) => { /** @type {HTMLButtonElement} */ (b).disabled = true; });
  try {
    await commands.send(command, ids);
    if (command.type === 'message' || command.type === 'launch_url') commandText.value = '';
  } catch (err) {
    showNotice(err.message);
  } finally {
    buttons.forEach((b) => { /** @type {HTMLButtonElement} */ (b).disabled = false; });
  }
}

/** Hooks up the page and starts loading. */
function main() {
  initPage();

  $('select-all').addEventListener('click', () => grid.selectAll(true));
  $('select-none').addEventListener('click', () => grid.selectAll(false));
  $('web-lists-button').addEventListener('click', () => {
    const ids = grid.selectedIds();
    if (ids.length === 0) {
      showNotice('Select at least one computer first', 'info');
      return;
    }
    webLists.open(ids);
  });
  for (const button of document.querySelectorAll('.toolbar button[id^="cmd-"]')) {
    button.addEventListener('click', () => runCommand(/** @type {HTMLButtonElement} */ (button)));
  }
  commandText.addEventListener('keydown', (event) => {
    if (event.key === 'Enter') {
      event.preventDefault();
      runCommand(/** @type {HTMLButtonElement} */ ($('cmd-message')));
    }
  });
  document.addEventListener('visibilitychange', () => sendWatch());

  refreshDevices();
  stream.start();
}

main();
