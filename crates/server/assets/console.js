// The teacher console: wires the class tree, the grid, the toolbar, the
// command results, the live view, the tile menu and properties, the tabs,
// message and web lists dialogs and the live stream together.

import './alerts.js';
import { api } from './api.js';
import { ClassTree, loadPreferences, savePreferences } from './classtree.js';
import { Broadcasts } from './broadcast.js';
import { Commands } from './commands.js';
import { FilesDialog } from './filesdialog.js';
import { RemoteControl } from './control.js';
import { Requests } from './requests.js';
import { Grid } from './grid.js';
import { LiveView } from './liveview.js';
import { $, hideNotice, initPage, showNotice } from './page.js';
import { MeetingDialog } from './meeting.js';
import { PowerMenu } from './power.js';
import { Stream } from './stream.js';
import { TabsDialog } from './tabs.js';
import { TileMenu } from './tilemenu.js';
import { WebListsDialog } from './weblists.js';

/** Thumbnail width asked from the server, in pixels. */
const THUMB_WIDTH = 320;
/** The notice that asks for a selection (taken away once there is one). */
const SELECT_FIRST = 'Select at least one computer first';
/** Tile sizes, as CSS classes of the grid. */
const SIZES = ['small', 'medium', 'large'];

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
  onContextMenu: (device, at) => tileMenu.open(device, at),
  onShownChange: (shown, total) => {
    $('shown-count').textContent = shown === total ? `${total} computers` : `${shown} of ${total} computers`;
    $('grid-none-shown').hidden = shown > 0 || total === 0;
    tree.setTotal(total);
  },
});

const tree = new ClassTree($('class-tree'), (ids) => grid.setClass(ids), (facts) => grid.setFacts(facts));

/** The user's rights, from `/me` (buttons and menu items follow them). */
let rights = /** @type {import('./tilemenu.js').Rights} */ ({});

const tileMenu = new TileMenu({
  menu: $('tile-menu'),
  dialog: /** @type {HTMLDialogElement} */ ($('properties')),
  title: $('properties-title'),
  body: $('properties-body'),
  close: /** @type {HTMLButtonElement} */ ($('properties-close')),
}, {
  grid,
  groupsOf: (id) => tree.groupsOf(id),
  rights: () => rights,
  run: (action, ids, device) => runMenuAction(action, ids, device),
});

/** Raised hands and chat (the tile menu opens them too). */
const requests = new Requests(grid);

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
  control.show(id, id === null ? '' : grid.device(id)?.hostname);
});

const control = new RemoteControl({
  dialog: /** @type {HTMLDialogElement} */ ($('live-view')),
  screen: $('live-view-screen'),
  picture: () => liveView.pictureElement,
}, (message) => stream.send(message));

const commands = new Commands(grid, {
  panel: $('results'),
  label: $('results-command'),
  summary: $('results-summary'),
});

// eslint-disable-next-line no-new
new PowerMenu(grid, commands, showNotice);
new MeetingDialog(grid, commands);
// eslint-disable-next-line no-new
new FilesDialog(grid);

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
/** Whether the server refused the stream for good: nothing more to load. */
let accessGone = false;

const stream = new Stream('/api/v1/stream', {
  onOpen() {
    setStreamStatus('live', 'Live');
    lastWatch = null;
    sendWatch();
    // Catch up on changes missed while disconnected.
    if (streamOpened) refreshDevices();
    streamOpened = true;
  },
  // The server says this user may not see any computers (any more): say so,
  // once, instead of reconnecting forever.
  onRefused() {
    accessGone = true;
    setStreamStatus('refused', 'No access');
    hideNotice();
    grid.sync([]);
    const empty = $('grid-empty');
    empty.textContent = 'Your account has no access to any computers any more. Ask your administrator.';
    empty.hidden = false;
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
 * @param {'live' | 'connecting' | 'refused'} state
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
  if (accessGone) return;
  try {
    const devices = await api('GET', '/api/v1/devices');
    grid.sync(Array.isArray(devices) ? devices : []);
    tabsDialog.render();
    updateSelectionCount();
  } catch (err) {
    if (accessGone) return;
    if (!(quiet && err.status === 0)) showNotice(`Could not load the computers: ${err.message}`);
  }
}

/** Updates the "N selected" label; a selection takes the "select first" hint away. */
function updateSelectionCount() {
  const n = grid.selectedIds().length;
  $('selection-count').textContent = `${n} selected`;
  const notice = $('notice');
  if (n > 0 && !notice.hidden && notice.textContent === SELECT_FIRST) hideNotice();
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
      return lockCommand(text);
    case 'cmd-clear-message':
      return { type: 'clear_message' };
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
 * A lock with the toolbar's text and duration.
 * @param {string} text
 * @param {number} [minutes] overrides the duration chosen in the toolbar
 * @returns {{type: string, text?: string, minutes?: number}}
 */
function lockCommand(text, minutes) {
  const chosen = minutes ?? Number(/** @type {HTMLSelectElement} */ ($('lock-minutes')).value);
  /** @type {{type: string, text?: string, minutes?: number}} */
  const command = { type: 'lock' };
  if (text) command.text = text;
  if (chosen > 0) command.minutes = chosen;
  return command;
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
    showNotice(SELECT_FIRST, 'info');
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
      showNotice(SELECT_FIRST, 'info');
      return;
    }
    webLists.open(ids);
  });
  for (const button of document.querySelectorAll('.toolbar button[id^="cmd-"]')) {
    button.addEventListener('click', () => runCommand(/** @type {HTMLButtonElement} */ (button)));
  }
  // Enter never sends silently: the text box serves messages and websites
  // alike, so Enter asks which (the message dialog's Enter sends).
  commandText.addEventListener('keydown', (event) => {
    if (event.key === 'Enter' && !event.isComposing) {
      event.preventDefault();
      askWhatEnterDoes();
    }
  });
  wireEnterDialog();
  wireMessageDialog();
  wireViewBar();
  document.addEventListener('keydown', onPageKey);
  setInterval(() => grid.refreshAll(), 30_000);
  document.addEventListener('visibilitychange', () => sendWatch());

  loadRights();
  applyPreferences();
  refreshDevices();
  tree.start();
  stream.start();
  new Broadcasts(grid).init();
  requests.init();
}

/** Loads the user's rights for the menus (the server still checks each call). */
async function loadRights() {
  try {
    const me = await api('GET', '/api/v1/me');
    rights = me && me.rights ? me.rights : {};
  } catch {
    rights = {};
  }
}

/** Applies the user's stored tile size, sort and class. */
async function applyPreferences() {
  const prefs = await loadPreferences();
  if (prefs.tile_size && SIZES.includes(prefs.tile_size)) setTileSize(prefs.tile_size);
  if (prefs.sort) {
    /** @type {HTMLSelectElement} */ ($('grid-sort')).value = prefs.sort;
    grid.setSort(prefs.sort);
  }
  if (prefs.class) {
    tree.current = prefs.class;
    tree.select(prefs.class, false);
  }
}

/**
 * Sets the tiles' size.
 * @param {string} size small | medium | large
 */
function setTileSize(size) {
  const grid_ = $('grid');
  for (const s of SIZES) grid_.classList.toggle(`size-${s}`, s === size);
  grid.relayout();
  /** @type {HTMLSelectElement} */ ($('grid-size')).value = size;
}

/** Search, sort and tile size. */
function wireViewBar() {
  const search = /** @type {HTMLInputElement} */ ($('grid-search'));
  /** @type {ReturnType<typeof setTimeout> | null} */
  let searchTimer = null;
  search.addEventListener('input', () => {
    // One filter pass per pause in typing, not per key.
    if (searchTimer) clearTimeout(searchTimer);
    searchTimer = setTimeout(() => grid.setSearch(search.value), 120);
  });
  search.addEventListener('keydown', (event) => {
    if (event.key === 'Escape') {
      search.value = '';
      grid.setSearch('');
    }
  });
  const sort = /** @type {HTMLSelectElement} */ ($('grid-sort'));
  sort.addEventListener('change', () => {
    grid.setSort(/** @type {any} */ (sort.value));
    savePreferences({ sort: /** @type {any} */ (sort.value) });
  });
  const size = /** @type {HTMLSelectElement} */ ($('grid-size'));
  size.addEventListener('change', () => {
    setTileSize(size.value);
    savePreferences({ tile_size: /** @type {any} */ (size.value) });
  });
}

/**
 * Ctrl/Cmd+A selects every shown tile (outside text fields and dialogs).
 * @param {KeyboardEvent} event
 */
function onPageKey(event) {
  if (event.key.toLowerCase() !== 'a' || !(event.ctrlKey || event.metaKey) || event.altKey) return;
  const t = /** @type {HTMLElement} */ (event.target);
  if (t.closest('input, textarea, select, [contenteditable], dialog')) return;
  event.preventDefault();
  grid.selectAll(true);
}

/** The "what should Enter do?" dialog. */
function wireEnterDialog() {
  const dialog = /** @type {HTMLDialogElement} */ ($('enter-dialog'));
  $('enter-message').addEventListener('click', () => {
    dialog.close();
    runCommand(/** @type {HTMLButtonElement} */ ($('cmd-message')));
  });
  $('enter-website').addEventListener('click', () => {
    dialog.close();
    runCommand(/** @type {HTMLButtonElement} */ ($('cmd-launch-url')));
  });
  $('enter-cancel').addEventListener('click', () => dialog.close());
  dialog.addEventListener('close', () => commandText.focus());
}

/**
 * Enter in the toolbar's text box: asks whether the text is a message or a
 * website, the likelier answer first; nothing is sent until the teacher picks.
 */
function askWhatEnterDoes() {
  const text = commandText.value.trim();
  if (!text) {
    showNotice('Type a message or a website address first, then choose a button', 'info');
    return;
  }
  if (grid.selectedIds().length === 0) {
    showNotice(SELECT_FIRST, 'info');
    return;
  }
  const n = grid.selectedIds().length;
  $('enter-dialog-text').textContent = `“${text}” to ${n} computer${n === 1 ? '' : 's'}`;
  const looksLikeSite = /^(https?:\/\/)?[^\s/]+\.[a-z]{2,}(\/\S*)?$/i.test(text);
  const dialog = /** @type {HTMLDialogElement} */ ($('enter-dialog'));
  dialog.showModal();
  $(looksLikeSite ? 'enter-website' : 'enter-message').focus();
}

/** The message dialog (from a tile's menu): its Enter sends. */
function wireMessageDialog() {
  const dialog = /** @type {HTMLDialogElement} */ ($('message-dialog'));
  const text = /** @type {HTMLTextAreaElement} */ ($('message-dialog-text'));
  $('message-dialog-cancel').addEventListener('click', () => dialog.close());
  text.addEventListener('keydown', (event) => {
    if (event.key === 'Enter' && !event.shiftKey && !event.isComposing) {
      event.preventDefault();
      /** @type {HTMLFormElement} */ ($('message-form')).requestSubmit();
    }
  });
  $('message-form').addEventListener('submit', async (event) => {
    event.preventDefault();
    const body = text.value.trim();
    if (!body) {
      text.focus();
      return;
    }
    const ids = JSON.parse(dialog.dataset.targets || '[]');
    dialog.close();
    await sendTo({ type: 'message', text: body }, ids);
  });
}

/**
 * Sends a command to some devices, showing a failure as a notice.
 * @param {{type: string} & Record<string, unknown>} command
 * @param {number[]} ids
 */
async function sendTo(command, ids) {
  hideNotice();
  try {
    await commands.send(command, ids);
  } catch (err) {
    showNotice(err instanceof Error ? err.message : String(err));
  }
}

/**
 * Runs an item of a tile's menu.
 * @param {string} action
 * @param {number[]} ids the tile, or the selection it is part of
 * @param {import('./grid.js').Device} device the tile's device
 */
function runMenuAction(action, ids, device) {
  switch (action) {
    case 'live':
      liveView.open(device);
      break;
    case 'tabs':
      tabsDialog.open(device);
      break;
    case 'message': {
      const dialog = /** @type {HTMLDialogElement} */ ($('message-dialog'));
      dialog.dataset.targets = JSON.stringify(ids);
      $('message-dialog-target').textContent = ids.length === 1 ? `To ${device.hostname}` : `To ${ids.length} selected computers`;
      /** @type {HTMLTextAreaElement} */ ($('message-dialog-text')).value = '';
      dialog.showModal();
      break;
    }
    case 'clear_message':
      sendTo({ type: 'clear_message' }, ids);
      break;
    case 'lock':
      sendTo({ type: 'lock' }, ids);
      break;
    case 'lock5':
      sendTo(lockCommand('', 5), ids);
      break;
    case 'unlock':
      sendTo({ type: 'unlock' }, ids);
      break;
    case 'chat':
      requests.openChat(ids);
      break;
    case 'answer_hand':
      requests.answerHand(device.id);
      break;
    default:
      break;
  }
}

main();
