// The class grid: one tile per enrolled (non-revoked) device with a live
// thumbnail, state badges, a selection checkbox, a "Live view" button, a
// "Tabs" button, what the student has open and the last command's outcome.
//
// It scales to hundreds of devices: updates are batched into one animation
// frame (each changed tile is rendered once, the order is rebuilt once). The
// shown tiles sit, in order, in "pages" of PAGE_ROWS full rows, each page its
// own grid with `content-visibility: auto` (CSS), so Chromium styles, lays
// out and paints only the pages near the view, not all 500 tiles each frame.
// The column count is computed here (from the grid's width and the tile
// size) and given to the CSS, so a page always holds whole rows and arrows
// move by the real column count. Only tiles on pages near the view ask for
// thumbnails. Tiles outside the chosen class or the search are detached
// from the DOM (their state still updates, off the page).
//
// Keyboard: the grid is one tab stop (ARIA grid, roving tabindex); arrows,
// Home and End move between tiles, Space toggles, Shift+arrows extend, the
// context-menu key or Shift+F10 opens the tile's menu.

import { activeTab, hostOf } from './tabs.js';

/**
 * @typedef {object} DeviceState
 * @property {string | null} [user]
 * @property {boolean} [locked]
 * @property {number | null} [locked_until] end of a timed lock (ms since the epoch)
 * @property {boolean} [internet_blocked]
 * @property {string | null} [focused_app]
 * @property {string | null} [window_title]
 * @property {string | null} [url]
 * @property {boolean} [message_shown]
 * @property {boolean} [printing_disabled] by policy
 * @property {boolean} [removable_media_disabled] by policy
 * @property {boolean} [sound_muted] by policy
 * @property {string[]} [unsupported] policy settings the device cannot enforce
 * @property {import('./tabs.js').BrowserTab[]} [tabs] open browser tabs, from the extension
 * @property {'unknown' | 'connected' | 'disconnected'} [extension] the browser extension's link
 */

/**
 * @typedef {object} Device
 * @property {number} id
 * @property {string} hostname
 * @property {boolean} online
 * @property {string} [os]
 * @property {string} [agent_version]
 * @property {boolean} revoked
 * @property {number | null} [last_seen] milliseconds since the epoch
 * @property {string[]} [capabilities]
 * @property {DeviceState | null} [state]
 * @property {{id: number, display_name: string} | null} [person] the person
 *   the reported user is an alias of (device list only)
 */

/**
 * What the server's class tree says about a device's settings (`GET /classes`).
 * @typedef {{web_filter?: string, remote_view?: string, thumbnails_allowed?: boolean, lesson?: string | null}} TileFacts
 */

/** What each capability lets a teacher do, as the tile names it. */
const CAPABILITY_NAMES = [
  ['thumbnails', 'screen'],
  ['lock', 'lock'],
  ['message', 'messages'],
  ['launch_url', 'open websites'],
  ['internet_block', 'internet block'],
  ['web_filter', 'web lists'],
  ['tabs', 'tabs'],
  ['logout', 'log out'],
];

/** The orders the grid offers. */
export const SORTS = /** @type {const} */ (['name', 'user', 'status']);

/**
 * @typedef {object} Tile
 * @property {Device} device
 * @property {HTMLElement} el
 * @property {HTMLImageElement} img
 * @property {HTMLElement} name
 * @property {HTMLElement} user
 * @property {HTMLElement} badges
 * @property {HTMLElement} activity
 * @property {HTMLElement} caps
 * @property {HTMLElement} result
 * @property {HTMLInputElement} checkbox
 * @property {HTMLButtonElement} live the "Live view" button
 * @property {HTMLButtonElement} tabs the "Tabs" button
 * @property {string | null} url current thumbnail Blob URL
 * @property {boolean} shown in the chosen class and the search
 * @property {{user: string, name: string} | null} [person] the person behind
 *   the reported user, from the device list (stream updates do not carry it)
 */

/**
 * Rows of tiles per page. Chromium renders every
 * `content-visibility: auto` box within half a screen of the view, so
 * smaller pages render fewer tiles beyond it (and a page is then exactly an
 * ARIA row).
 */
const PAGE_ROWS = 1;

/** A tile's height before any page has been measured (medium size). */
const TILE_HEIGHT_GUESS = 190;

const collator = new Intl.Collator(undefined, { numeric: true, sensitivity: 'base' });

/**
 * Creates an element with a class and optional text.
 * @param {string} tag
 * @param {string} className
 * @param {string} [text]
 * @returns {HTMLElement}
 */
function el(tag, className, text) {
  const node = document.createElement(tag);
  node.className = className;
  if (text !== undefined) node.textContent = text;
  return node;
}

/**
 * Sets a node's text only when it changed: a stream update of 500 tiles
 * then touches only what differs (no needless style and layout work).
 * @param {HTMLElement} node
 * @param {string} text
 */
function setText(node, text) {
  if (node.textContent !== text) node.textContent = text;
}

/**
 * Sets an attribute only when it changed.
 * @param {HTMLElement} node
 * @param {string} name
 * @param {string} value
 */
function setAttr(node, name, value) {
  if (node.getAttribute(name) !== value) node.setAttribute(name, value);
}

/**
 * Formats a "last seen" time for the offline tooltip.
 * @param {number | null | undefined} ms
 * @returns {string}
 */
function lastSeen(ms) {
  return ms ? `last seen ${new Date(ms).toLocaleString()}` : 'never seen';
}

/**
 * "Locked", or "Locked · 4 min left" for a timed lock.
 * @param {number | null | undefined} until
 * @returns {string}
 */
export function lockLabel(until) {
  if (!until) return 'Locked';
  const minutes = Math.max(1, Math.ceil((until - Date.now()) / 60000));
  return `Locked · ${minutes} min left`;
}

/**
 * Shows what an online device cannot do (the server fails those commands for
 * it), and the whole list in the tooltip and `data-capabilities`.
 * @param {Tile} tile
 * @param {Device} d
 */
function renderCapabilities(tile, d) {
  const caps = d.capabilities || [];
  setAttr(tile.el, 'data-capabilities', caps.join(' '));
  const missing = CAPABILITY_NAMES.filter(([c]) => !caps.includes(c)).map(([, name]) => name);
  setText(tile.caps, d.online && caps.length && missing.length ? `Cannot: ${missing.join(', ')}` : '');
  setAttr(tile.caps, 'title', d.online ? `Can: ${CAPABILITY_NAMES.filter(([c]) => caps.includes(c)).map(([, n]) => n).join(', ') || 'nothing reported'}` : '');
}

/**
 * The text a search matches against: host name, user and person, app,
 * window title, URL and open tabs.
 * @param {Tile} tile
 * @returns {string}
 */
function searchText(tile) {
  const d = tile.device;
  const s = d.state || {};
  const tabs = Array.isArray(s.tabs) ? s.tabs.flatMap((t) => [t.title, t.url]) : [];
  return [d.hostname, s.user, tile.person?.name, s.focused_app, s.window_title, s.url, ...tabs]
    .filter(Boolean)
    .join('\n')
    .toLowerCase();
}

/**
 * The status order: online before offline, then locked, then by name.
 * @param {Device} d
 * @returns {number}
 */
function statusRank(d) {
  if (!d.online) return 2;
  return d.state?.locked ? 1 : 0;
}

export class Grid {
  /**
   * @param {HTMLElement} container the element that holds the tiles (role grid)
   * @param {{onSelectionChange?: () => void, onWatchChange?: () => void, onEmptyChange?: (empty: boolean) => void, onLiveView?: (device: Device) => void, onTabs?: (device: Device) => void, onThumbnail?: (id: number, url: string) => void, onContextMenu?: (device: Device, at: {x: number, y: number}) => void, onShownChange?: (shown: number, total: number) => void}} [hooks]
   */
  constructor(container, hooks = {}) {
    this.container = container;
    this.hooks = hooks;
    /**
     * The pages that hold the shown tiles, PAGE_ROWS rows each (ARIA grid >
     * row > gridcell: a page is one row of the ARIA grid).
     * @type {HTMLElement[]}
     */
    this.pages = [];
    container.replaceChildren();
    /** Columns of the grid now (from its width and the tile size). */
    this.cols = 1;
    /** The grid's content width the columns were computed for. */
    this.width = 0;
    /** The gap between tiles now (CSS `--tile-gap`), in pixels. */
    this.gap = 10;
    /** Measured height of one tile, for the size of pages not rendered yet. */
    this.tileHeight = TILE_HEIGHT_GUESS;
    /**
     * Every tile in the chosen order, or null when it must be sorted again:
     * a new search or class only filters it.
     * @type {Tile[] | null}
     */
    this.sorted = null;
    /** @type {Map<number, Tile>} */
    this.tiles = new Map();
    /** Shown tiles in display order. @type {Tile[]} */
    this.order = [];
    /** Pages currently on (or near) the screen. @type {Set<Element>} */
    this.visiblePages = new Set();
    /** Devices whose tiles wait to be rendered. @type {Set<number>} */
    this.dirty = new Set();
    this.layoutDirty = false;
    this.frame = 0;
    /** Only these device ids (a class), or all. @type {Set<number> | null} */
    this.only = null;
    /** Lower-case search text. */
    this.query = '';
    /** @type {typeof SORTS[number]} */
    this.sort = 'name';
    /** Per-device facts from the class tree. @type {Map<number, TileFacts>} */
    this.facts = new Map();
    /** The tile keyboard focus stays on (the grid's one tab stop). @type {number | null} */
    this.focusId = null;
    /** Where a Shift-click range starts. @type {number | null} */
    this.anchorId = null;
    // Relative to the grid's own scroll box (the page itself does not
    // scroll): tiles on pages within 300 px of it count as on screen.
    const root = container.closest('.grid-scroll');
    this.observer = 'IntersectionObserver' in window
      ? new IntersectionObserver((entries) => this.#onIntersect(entries), { root, rootMargin: '300px 0px' })
      : null;
    // A new width may change the column count; a rendered page tells the
    // real tile height (for the placeholder size of pages not rendered yet).
    this.resizer = 'ResizeObserver' in window
      ? new ResizeObserver((entries) => this.#onResize(entries))
      : null;
    this.resizer?.observe(container);
    container.addEventListener('click', (event) => this.#onClick(event));
    container.addEventListener('keydown', (event) => this.#onKey(event));
    container.addEventListener('contextmenu', (event) => this.#onContextMenu(event));
    container.addEventListener('focusin', (event) => this.#onFocus(event));
  }

  /**
   * Replaces the whole set of devices (initial load or resync): adds and
   * updates the given ones, removes tiles of devices no longer listed.
   * @param {Device[]} devices
   */
  sync(devices) {
    const seen = new Set(devices.map((d) => d.id));
    for (const id of [...this.tiles.keys()]) {
      if (!seen.has(id)) this.remove(id);
    }
    for (const device of devices) this.update(device);
  }

  /**
   * Adds or refreshes the tile for `device` (rendered in the next frame); a
   * revoked device loses its tile.
   * @param {Device} device
   */
  update(device) {
    if (device.revoked) {
      this.remove(device.id);
      return;
    }
    let tile = this.tiles.get(device.id);
    const wasOnline = tile ? tile.device.online : null;
    if (!tile) {
      tile = this.#create(device);
      this.tiles.set(device.id, tile);
      this.layoutDirty = true;
      this.sorted = null;
    }
    // Anything the order or the search depends on may have changed.
    const old = tile.device;
    const orderChanged = old !== device && (old.hostname !== device.hostname || old.online !== device.online
      || old.state?.user !== device.state?.user || old.state?.locked !== device.state?.locked);
    if (orderChanged) this.sorted = null;
    if (orderChanged || (old !== device && this.query)) this.layoutDirty = true;
    tile.device = device;
    if (device.person && device.state?.user) tile.person = { user: device.state.user, name: device.person.display_name };
    this.dirty.add(device.id);
    this.#schedule();
    if (wasOnline !== device.online) this.hooks.onWatchChange?.();
  }

  /**
   * Removes a device's tile (and frees its thumbnail).
   * @param {number} id
   */
  remove(id) {
    const tile = this.tiles.get(id);
    if (!tile) return;
    if (tile.url) URL.revokeObjectURL(tile.url);
    tile.el.remove();
    this.tiles.delete(id);
    this.dirty.delete(id);
    this.layoutDirty = true;
    this.sorted = null;
    this.#schedule();
    this.hooks.onWatchChange?.();
    this.hooks.onSelectionChange?.();
  }

  /**
   * Shows only these devices (a class), or all (`null`).
   * @param {Set<number> | null} ids
   */
  setClass(ids) {
    this.only = ids;
    this.layoutDirty = true;
    this.#schedule();
  }

  /**
   * Shows only tiles whose host name, user, app, window title, URL or tabs
   * contain `text` (case-insensitive).
   * @param {string} text
   */
  setSearch(text) {
    this.query = text.trim().toLowerCase();
    this.layoutDirty = true;
    this.#schedule();
  }

  /**
   * Orders the tiles.
   * @param {typeof SORTS[number]} key
   */
  setSort(key) {
    this.sort = SORTS.includes(key) ? key : 'name';
    this.sorted = null;
    this.layoutDirty = true;
    this.#schedule();
  }

  /**
   * Per-device facts from the class tree (badges for lesson, web filter, privacy).
   * @param {Map<number, TileFacts>} facts
   */
  setFacts(facts) {
    this.facts = facts;
    for (const id of this.tiles.keys()) this.dirty.add(id);
    this.#schedule();
  }

  /** Re-renders every tile (e.g. so "4 min left" counts down). */
  refreshAll() {
    for (const [id, t] of this.tiles) if (t.device.state?.locked_until) this.dirty.add(id);
    this.#schedule();
  }

  /**
   * Re-lays out the pages after the tile size changed (the column count
   * depends on it).
   */
  relayout() {
    this.tileHeight = TILE_HEIGHT_GUESS;
    this.layoutDirty = true;
    this.#schedule();
  }

  /**
   * Applies pending renders and the order now (tests and measurements call
   * it; normally the next animation frame does).
   */
  flush() {
    if (this.frame) cancelAnimationFrame(this.frame);
    this.frame = 0;
    for (const id of this.dirty) {
      const tile = this.tiles.get(id);
      if (tile) this.#render(tile);
    }
    this.dirty.clear();
    if (this.layoutDirty) this.#layout();
  }

  /**
   * Shows a new JPEG thumbnail in a device's tile.
   * @param {number} id
   * @param {Blob} jpeg
   */
  setThumbnail(id, jpeg) {
    const tile = this.tiles.get(id);
    if (!tile) return;
    const old = tile.url;
    tile.url = URL.createObjectURL(jpeg);
    tile.img.src = tile.url;
    this.hooks.onThumbnail?.(id, tile.url);
    if (old) URL.revokeObjectURL(old);
  }

  /**
   * The device of a tile, if it has one.
   * @param {number} id
   * @returns {Device | null}
   */
  device(id) {
    return this.tiles.get(id)?.device ?? null;
  }

  /**
   * The person's name behind a device's user, if known.
   * @param {number} id
   * @returns {string | null}
   */
  personName(id) {
    const t = this.tiles.get(id);
    return t && t.person && t.person.user === t.device.state?.user ? t.person.name : null;
  }

  /**
   * The Blob URL of a device's latest thumbnail, if any.
   * @param {number} id
   * @returns {string | null}
   */
  thumbnailUrl(id) {
    return this.tiles.get(id)?.url ?? null;
  }

  /**
   * Ids of the shown devices in display order (for next/previous in dialogs).
   * @returns {number[]}
   */
  shownIds() {
    this.flush();
    return this.order.map((t) => t.device.id);
  }

  /**
   * Sets the last command's outcome on a tile.
   * @param {number} id
   * @param {string} status pending | done | failed | offline
   * @param {string | null} [reason] why it failed
   */
  setResult(id, status, reason) {
    const tile = this.tiles.get(id);
    if (!tile) return;
    const text = status === 'failed' ? `failed: ${reason || 'unknown error'}` : status;
    tile.result.textContent = text;
    tile.result.title = text;
    tile.result.dataset.status = status;
  }

  /** Clears every tile's command outcome. */
  clearResults() {
    for (const tile of this.tiles.values()) {
      if (!tile.result.dataset.status) continue;
      tile.result.textContent = '';
      tile.result.title = '';
      delete tile.result.dataset.status;
    }
  }

  /**
   * Ids of the selected devices that are shown, in grid order: commands act
   * only on what the teacher sees.
   * @returns {number[]}
   */
  selectedIds() {
    this.flush();
    return this.order.filter((t) => t.checkbox.checked).map((t) => t.device.id);
  }

  /**
   * Whether a device's tile is selected.
   * @param {number} id
   * @returns {boolean}
   */
  isSelected(id) {
    return Boolean(this.tiles.get(id)?.checkbox.checked);
  }

  /**
   * Selects or deselects every shown tile.
   * @param {boolean} selected
   */
  selectAll(selected) {
    this.flush();
    for (const tile of selected ? this.order : this.tiles.values()) this.#setSelected(tile, selected);
    this.hooks.onSelectionChange?.();
  }

  /**
   * Ids of the devices whose thumbnails we want: online, shown and on screen.
   * @returns {number[]}
   */
  watchIds() {
    this.flush();
    return this.order
      .filter((t) => t.device.online && this.#nearView(t))
      .map((t) => t.device.id);
  }

  /**
   * Moves keyboard focus to the grid's current tile.
   */
  focus() {
    this.flush();
    const tile = this.#focusTile();
    tile?.el.focus();
  }

  /** Runs pending work in the next animation frame. */
  #schedule() {
    if (this.frame) return;
    this.frame = requestAnimationFrame(() => {
      this.frame = 0;
      this.flush();
    });
  }

  /**
   * Builds the DOM of a new tile.
   * @param {Device} device
   * @returns {Tile}
   */
  #create(device) {
    const root = el('div', 'tile');
    root.dataset.deviceId = String(device.id);
    root.setAttribute('role', 'gridcell');
    root.tabIndex = -1;
    root.setAttribute('aria-selected', 'false');
    // No aria-label: the cell's name is its visible text (name, user,
    // badges, activity), so what is seen and what is read agree (WCAG 2.5.3).

    const screen = el('div', 'screen');
    const img = /** @type {HTMLImageElement} */ (el('img', 'thumb'));
    img.alt = '';
    img.decoding = 'async';
    img.draggable = false;
    img.addEventListener('load', () => img.classList.add('loaded'));
    const placeholder = el('span', 'placeholder', 'No picture yet');
    placeholder.setAttribute('aria-hidden', 'true');
    const live = /** @type {HTMLButtonElement} */ (el('button', 'live-view', 'Live view'));
    live.type = 'button';
    live.dataset.right = 'live_view';
    live.tabIndex = -1;
    const tabs = /** @type {HTMLButtonElement} */ (el('button', 'tabs-button', 'Tabs'));
    tabs.type = 'button';
    tabs.tabIndex = -1;
    screen.append(img, placeholder, live, tabs);

    const head = el('div', 'head');
    const checkbox = /** @type {HTMLInputElement} */ (el('input', 'select'));
    checkbox.type = 'checkbox';
    checkbox.tabIndex = -1;
    const name = el('span', 'name');
    const user = el('span', 'user');
    head.append(checkbox, name, user);

    const badges = el('div', 'badges');
    const activity = el('div', 'activity');
    const result = el('div', 'result');
    const caps = el('div', 'caps');

    root.append(screen, head, badges, activity, caps, result);
    return { device, el: root, img, name, user, badges, activity, caps, result, checkbox, live, tabs, url: null, shown: true };
  }

  /**
   * Refreshes a tile's text, badges and classes from its device.
   * @param {Tile} tile
   */
  #render(tile) {
    const d = tile.device;
    const s = d.state || {};
    setText(tile.name, d.hostname);
    setAttr(tile.name, 'title', d.hostname);
    setAttr(tile.img, 'alt', `Screen of ${d.hostname}`);
    setAttr(tile.checkbox, 'aria-label', `Select ${d.hostname}`);
    // Each name starts with the button's visible text (WCAG 2.5.3).
    setAttr(tile.live, 'aria-label', `Live view: ${d.hostname}`);
    tile.live.disabled = !d.online;
    const tabList = Array.isArray(s.tabs) ? s.tabs : [];
    const hasTabs = (d.capabilities || []).includes('tabs') || tabList.length > 0 || (s.extension != null && s.extension !== 'unknown');
    tile.tabs.hidden = !hasTabs;
    tile.tabs.disabled = !d.online;
    const tabsText = tabList.length ? `Tabs ${tabList.length}` : 'Tabs';
    setText(tile.tabs, tabsText);
    setAttr(tile.tabs, 'aria-label', `${tabsText}: ${d.hostname}`);
    // Kept while the device reports the same user; a new user shows as reported.
    const person = tile.person && tile.person.user === s.user ? tile.person.name : null;
    setText(tile.user, person || s.user || 'nobody signed in');
    setAttr(tile.user, 'title', person && person !== s.user ? `${person}, signed in as ${s.user}` : (s.user || ''));
    tile.user.classList.toggle('none', !s.user);
    tile.el.classList.toggle('offline', !d.online);
    setAttr(tile.el, 'title', [d.hostname, d.os, d.agent_version && `agent ${d.agent_version}`, !d.online && lastSeen(d.last_seen)]
      .filter(Boolean)
      .join(' · '));
    const badges = this.#badges(d);
    const key = JSON.stringify(badges);
    if (tile.badges.dataset.key !== key) {
      tile.badges.dataset.key = key;
      tile.badges.replaceChildren(...badges.map(([text, kind, title]) => {
        const b = el('span', `badge ${kind}`, text);
        if (title) b.title = title;
        return b;
      }));
    }
    renderCapabilities(tile, d);
    this.#renderActivity(tile);
  }

  /**
   * The badges of a device: state flags, then what its settings say.
   * @param {Device} d
   * @returns {[string, string, string?][]} text, kind, tooltip
   */
  #badges(d) {
    const s = d.state || {};
    const f = this.facts.get(d.id) || {};
    /** @type {[string, string, string?][]} */
    const flags = [];
    if (!d.online) {
      flags.push(['Offline', 'offline']);
    } else {
      if (s.locked) flags.push([lockLabel(s.locked_until), 'locked', s.locked_until ? `Unlocks by itself at ${new Date(s.locked_until).toLocaleTimeString()}` : '']);
      if (s.internet_blocked) flags.push(['Internet blocked', 'blocked']);
      if (s.message_shown) flags.push(['Message shown', 'message']);
      if (s.printing_disabled) flags.push(['Printing disabled', 'printing']);
      if (s.removable_media_disabled) flags.push(['USB disabled', 'usb']);
      if (s.sound_muted) flags.push(['Muted', 'muted']);
      if (s.extension === 'disconnected') flags.push(['Extension off', 'extension-off']);
    }
    if (f.lesson) flags.push(['Lesson', 'lesson', `In the lesson for ${f.lesson}`]);
    if (f.web_filter === 'allow_list') flags.push(['Allowed sites only', 'filter', 'Web filter: only the allowed sites open']);
    if (f.web_filter === 'block_list') flags.push(['Sites blocked', 'filter', 'Web filter: the blocked sites do not open']);
    if (f.thumbnails_allowed === false) flags.push(['Screen private', 'privacy', 'Pictures of this screen are not allowed']);
    else if (f.remote_view && f.remote_view !== 'allow') {
      flags.push([f.remote_view === 'deny' ? 'Screen private' : 'Asks to view', 'privacy', f.remote_view === 'deny' ? 'Live view is denied on this computer' : 'The student is asked before live view']);
    }
    const unsupported = Array.isArray(s.unsupported) ? s.unsupported : [];
    if (d.online && unsupported.length) flags.push(['Unsupported', 'unsupported', `This computer cannot enforce: ${unsupported.join(', ')}`]);
    return flags;
  }

  /**
   * What the student has open: the active browser tab (title · host), else
   * the focused browser page or app.
   * @param {Tile} tile
   */
  #renderActivity(tile) {
    const d = tile.device;
    const s = d.state || {};
    const tab = activeTab(s);
    let doing = '';
    let detail = '';
    if (tab) {
      const host = hostOf(tab.url);
      doing = tab.title ? `${tab.title} · ${host}` : host;
      detail = tab.url;
    } else {
      doing = s.url || s.focused_app || '';
      detail = s.window_title || '';
    }
    setText(tile.activity, d.online ? doing : '');
    setAttr(tile.activity, 'title', d.online ? detail : '');
    tile.activity.classList.toggle('web', d.online && Boolean(tab));
  }

  /**
   * Decides which tiles are shown and in what order, and puts them into
   * pages; a page's DOM is touched only where its tiles changed.
   */
  #layout() {
    this.layoutDirty = false;
    this.sorted ??= [...this.tiles.values()].sort((a, b) => this.#compare(a, b));
    for (const t of this.sorted) {
      t.shown = (!this.only || this.only.has(t.device.id))
        && (!this.query || searchText(t).includes(this.query));
    }
    const order = this.sorted.filter((t) => t.shown);
    const cols = this.#columns();
    // New columns put other tiles on the pages near the view.
    const changed = cols !== this.cols || order.length !== this.order.length
      || order.some((t, i) => this.order[i] !== t);
    this.order = order;
    this.cols = cols;
    this.#paginate();
    this.#updateTabStop();
    if (changed) this.hooks.onWatchChange?.();
    this.hooks.onEmptyChange?.(this.tiles.size === 0);
    this.hooks.onShownChange?.(this.order.length, this.tiles.size);
    this.hooks.onSelectionChange?.();
  }

  /**
   * Puts the shown tiles, in order, into pages of PAGE_ROWS full rows and
   * detaches the others. Keeps keyboard focus on a tile that moved.
   */
  #paginate() {
    const active = document.activeElement;
    const per = this.cols * PAGE_ROWS;
    const count = Math.ceil(this.order.length / per);
    while (this.pages.length < count) this.pages.push(this.#newPage());
    while (this.pages.length > count) this.#dropPage(/** @type {HTMLElement} */ (this.pages.pop()));
    for (const t of this.tiles.values()) if (!t.shown && t.el.parentNode) t.el.remove();
    this.pages.forEach((page, j) => this.#fillPage(page, this.order.slice(j * per, (j + 1) * per)));
    if (active instanceof HTMLElement && active !== document.activeElement && active.isConnected
      && this.container.contains(active)) active.focus({ preventScroll: true });
  }

  /**
   * Gives a page these tiles in this order, moving only the tiles not
   * already in place (a search that hides one tile moves about one tile per
   * row, not all of them), and the size it takes while not rendered. Tiles
   * left after its own belong to later pages, which take them in turn.
   * @param {HTMLElement} page
   * @param {Tile[]} tiles
   */
  #fillPage(page, tiles) {
    const kids = page.children;
    tiles.forEach((t, i) => {
      if (kids[i] !== t.el) page.insertBefore(t.el, kids[i] ?? null);
    });
    const rows = Math.ceil(tiles.length / this.cols);
    // `auto`: once rendered, the page keeps its real height while skipped.
    const size = `auto ${Math.round(rows * this.tileHeight + (rows - 1) * this.gap)}px`;
    if (page.style.containIntrinsicSize !== size) page.style.containIntrinsicSize = size;
  }

  /** @returns {HTMLElement} a new, empty page at the end of the grid */
  #newPage() {
    const page = el('div', 'grid-row');
    page.setAttribute('role', 'row');
    this.container.append(page);
    this.observer?.observe(page);
    this.resizer?.observe(page);
    return page;
  }

  /** @param {HTMLElement} page a page no longer needed */
  #dropPage(page) {
    this.observer?.unobserve(page);
    this.resizer?.unobserve(page);
    this.visiblePages.delete(page);
    page.remove();
  }

  /**
   * Whether a tile is on a page on (or near) the screen.
   * @param {Tile} tile
   * @returns {boolean}
   */
  #nearView(tile) {
    const page = tile.el.parentElement;
    return !this.observer || (page !== null && this.visiblePages.has(page));
  }

  /**
   * @param {Tile} a
   * @param {Tile} b
   * @returns {number}
   */
  #compare(a, b) {
    const byName = collator.compare(a.device.hostname, b.device.hostname);
    if (this.sort === 'user') {
      const ua = a.device.state?.user || '';
      const ub = b.device.state?.user || '';
      // Signed-in users first, by name.
      if (!ua !== !ub) return ua ? -1 : 1;
      return collator.compare(ua, ub) || byName;
    }
    if (this.sort === 'status') return statusRank(a.device) - statusRank(b.device) || byName;
    return byName || a.device.id - b.device.id;
  }

  /** The tile that holds the grid's tab stop: the focused one if shown, else the first. */
  #focusTile() {
    const t = this.focusId !== null ? this.tiles.get(this.focusId) : null;
    return t && t.shown ? t : (this.order[0] || null);
  }

  /** Gives the tab stop (tabindex 0) to one shown tile, -1 to the others. */
  #updateTabStop() {
    const keep = this.#focusTile();
    for (const t of this.tiles.values()) {
      const want = t === keep ? 0 : -1;
      if (t.el.tabIndex !== want) t.el.tabIndex = want;
    }
    if (keep) this.focusId = keep.device.id;
  }

  /**
   * @param {Tile} tile
   * @param {boolean} selected
   */
  #setSelected(tile, selected) {
    if (tile.checkbox.checked === selected && tile.el.classList.contains('selected') === selected) return;
    tile.checkbox.checked = selected;
    tile.el.classList.toggle('selected', selected);
    tile.el.setAttribute('aria-selected', String(selected));
  }

  /**
   * Selects the shown tiles from the anchor to `tile` (inclusive).
   * @param {Tile} tile
   */
  #selectRange(tile) {
    const anchor = this.anchorId !== null ? this.tiles.get(this.anchorId) : null;
    const from = anchor && anchor.shown ? this.order.indexOf(anchor) : this.order.indexOf(tile);
    const to = this.order.indexOf(tile);
    const [lo, hi] = from <= to ? [from, to] : [to, from];
    for (let i = lo; i <= hi; i += 1) this.#setSelected(this.order[i], true);
  }

  /**
   * The tile an event happened in.
   * @param {Event} event
   * @returns {Tile | null}
   */
  #tileOf(event) {
    const root = /** @type {HTMLElement} */ (event.target).closest?.('.tile');
    if (!root) return null;
    return this.tiles.get(Number(/** @type {HTMLElement} */ (root).dataset.deviceId)) || null;
  }

  /**
   * A click anywhere on a tile toggles its selection (a click on the
   * checkbox has already toggled it); Shift-click selects the range from the
   * last clicked tile. The "Live view" and "Tabs" buttons open their dialogs
   * and leave the selection alone.
   * @param {MouseEvent} event
   */
  #onClick(event) {
    const target = /** @type {HTMLElement} */ (event.target);
    const tile = this.#tileOf(event);
    if (!tile) return;
    if (target.closest('.live-view')) {
      if (!tile.live.disabled) this.hooks.onLiveView?.(tile.device);
      return;
    }
    if (target.closest('.tabs-button')) {
      if (!tile.tabs.disabled) this.hooks.onTabs?.(tile.device);
      return;
    }
    this.focusId = tile.device.id;
    this.#updateTabStop();
    if (event.shiftKey) {
      if (target === tile.checkbox) tile.checkbox.checked = !tile.checkbox.checked;
      this.#selectRange(tile);
      // A Shift-click would otherwise select the tiles' text.
      window.getSelection()?.removeAllRanges();
    } else {
      const selected = target === tile.checkbox ? tile.checkbox.checked : !tile.checkbox.checked;
      this.#setSelected(tile, selected);
      this.anchorId = tile.device.id;
    }
    this.hooks.onSelectionChange?.();
  }

  /**
   * Keeps the tab stop on the tile that has focus.
   * @param {FocusEvent} event
   */
  #onFocus(event) {
    const tile = this.#tileOf(event);
    if (!tile || this.focusId === tile.device.id) return;
    this.focusId = tile.device.id;
    this.#updateTabStop();
  }

  /**
   * A length custom property of the grid (set per tile size in the CSS).
   * @param {string} name
   * @param {number} fallback
   * @returns {number}
   */
  #cssPx(name, fallback) {
    const v = parseFloat(getComputedStyle(this.container).getPropertyValue(name));
    return Number.isFinite(v) ? v : fallback;
  }

  /**
   * How many tiles one row holds at the grid's width, as CSS `auto-fill`
   * would place them; written to `--grid-cols` so the pages use exactly it.
   * Reads the CSS once, before the layout changes the DOM (a read after a
   * change would force a style pass).
   * @returns {number}
   */
  #columns() {
    const width = this.width || this.container.clientWidth;
    const min = this.#cssPx('--tile-min', 170);
    const gap = this.#cssPx('--tile-gap', 10);
    this.gap = gap;
    const cols = Math.max(1, Math.floor((width + gap) / (min + gap)));
    if (this.container.style.getPropertyValue('--grid-cols') !== String(cols)) {
      this.container.style.setProperty('--grid-cols', String(cols));
    }
    return cols;
  }

  /**
   * Arrow keys, Home, End move focus; Space toggles; Shift extends; the
   * context-menu key and Shift+F10 open the tile's menu; Enter opens live view.
   * @param {KeyboardEvent} event
   */
  #onKey(event) {
    const tile = this.#tileOf(event);
    if (!tile || event.target !== tile.el) return;
    if (event.key === 'ContextMenu' || (event.key === 'F10' && event.shiftKey)) {
      event.preventDefault();
      const r = tile.el.getBoundingClientRect();
      this.hooks.onContextMenu?.(tile.device, { x: r.left + 16, y: r.top + 16 });
      return;
    }
    if (event.key === ' ') {
      event.preventDefault();
      this.#setSelected(tile, !tile.checkbox.checked);
      this.anchorId = tile.device.id;
      this.hooks.onSelectionChange?.();
      return;
    }
    const i = this.order.indexOf(tile);
    const cols = this.cols;
    /** @type {Record<string, number>} */
    const moves = {
      ArrowRight: i + 1, ArrowLeft: i - 1, ArrowDown: i + cols, ArrowUp: i - cols, Home: 0, End: this.order.length - 1,
    };
    if (!(event.key in moves)) return;
    event.preventDefault();
    const next = this.order[Math.min(Math.max(moves[event.key], 0), this.order.length - 1)];
    if (!next) return;
    this.focusId = next.device.id;
    this.#updateTabStop();
    next.el.focus();
    if (event.shiftKey) {
      this.#selectRange(next);
      this.hooks.onSelectionChange?.();
    } else {
      this.anchorId = next.device.id;
    }
  }

  /**
   * A right-click on a tile opens its menu instead of the browser's.
   * @param {MouseEvent} event
   */
  #onContextMenu(event) {
    const tile = this.#tileOf(event);
    if (!tile || !this.hooks.onContextMenu) return;
    event.preventDefault();
    this.focusId = tile.device.id;
    this.#updateTabStop();
    this.hooks.onContextMenu(tile.device, { x: event.clientX, y: event.clientY });
  }

  /**
   * Keeps the set of on-screen pages up to date.
   * @param {IntersectionObserverEntry[]} entries
   */
  #onIntersect(entries) {
    let changed = false;
    for (const { target, isIntersecting } of entries) {
      if (!this.pages.includes(/** @type {HTMLElement} */ (target))) continue;
      const had = this.visiblePages.has(target);
      if (isIntersecting === had) continue;
      if (isIntersecting) this.visiblePages.add(target);
      else this.visiblePages.delete(target);
      changed = true;
    }
    if (changed) this.hooks.onWatchChange?.();
  }

  /**
   * The grid's width changed (new columns), or a page was rendered (its
   * height tells the tile height).
   * @param {ResizeObserverEntry[]} entries
   */
  #onResize(entries) {
    for (const { target, contentRect } of entries) {
      if (target === this.container) {
        if (contentRect.width === this.width) continue;
        this.width = contentRect.width;
        this.layoutDirty = true;
        this.#schedule();
        continue;
      }
      const page = /** @type {HTMLElement} */ (target);
      const rows = Math.ceil(page.childElementCount / this.cols);
      // A skipped page reports its placeholder size, which is no measure.
      if (!rows || !this.visiblePages.has(page)) continue;
      const height = (contentRect.height - (rows - 1) * this.gap) / rows;
      if (height > 0) this.tileHeight = height;
    }
  }
}
