// The class grid: one tile per enrolled (non-revoked) device with a live
// thumbnail, state badges, a selection checkbox, a "Live view" button, a
// "Tabs" button, what the student has open and the last command's outcome.
//
// It scales to hundreds of devices by windowing: the model (every device,
// its selection, its last result, its thumbnail) lives here, and only the
// rows of tiles near the view (the visible rows and up to WINDOW_SCREENS
// screens either side) exist in the DOM. The grid's padding stands in for
// the rows above and below, at their measured (or estimated) height, so the
// scroll height stays right. Scrolling (a passive listener, one update per
// animation frame), a new width or tile size (ResizeObserver), a search, a
// class or a sort recompute the ordered list of shown tiles and rebuild only
// the window; a frame builds at most FRAME_TILES tiles beyond the visible
// rows and finishes the margin in later frames, so no frame stalls long.
// Stream updates of tiles outside the window change the model only; a tile
// renders when it enters the window. Only tiles near the view ask for
// thumbnails.
//
// Keyboard: the grid is one tab stop (ARIA grid with aria-rowcount and
// aria-rowindex, roving tabindex); arrows, Home, End, PageUp and PageDown
// move between the shown tiles in visual order, bringing the target's row
// into the window first; Space toggles, Shift extends, the context-menu key
// or Shift+F10 opens the tile's menu. When the tile holding the tab stop is
// not in the window, the grid element itself holds it and hands focus on.

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
 * The DOM of a tile, made when the tile first enters the window.
 * @typedef {object} TileView
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
 */

/**
 * One device in the grid's model.
 * @typedef {object} Tile
 * @property {Device} device
 * @property {TileView | null} view its DOM, once it has been in the window
 * @property {boolean} attached its view is in the window now
 * @property {boolean} selected
 * @property {{status: string, text: string} | null} result the last command's outcome
 * @property {string | null} url current thumbnail Blob URL
 * @property {boolean} shown in the chosen class and the search
 * @property {{user: string, name: string} | null} [person] the person behind
 *   the reported user, from the device list (stream updates do not carry it)
 */

/** A tile's height before any row has been measured (medium size). */
const TILE_HEIGHT_GUESS = 190;

/** Screens of rows kept in the DOM above and below the visible ones. */
const WINDOW_SCREENS = 1;

/**
 * Tiles one frame builds beyond the visible rows; the rest of the margin
 * follows in the next frames (a long task per frame is what we avoid).
 */
const FRAME_TILES = 12;

/** Rows within this many pixels of the view ask for thumbnails. */
const WATCH_MARGIN = 300;

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
 * @param {TileView} view
 * @param {Device} d
 */
function renderCapabilities(view, d) {
  const caps = d.capabilities || [];
  setAttr(view.el, 'data-capabilities', caps.join(' '));
  const missing = CAPABILITY_NAMES.filter(([c]) => !caps.includes(c)).map(([, name]) => name);
  setText(view.caps, d.online && caps.length && missing.length ? `Cannot: ${missing.join(', ')}` : '');
  setAttr(view.caps, 'title', d.online ? `Can: ${CAPABILITY_NAMES.filter(([c]) => caps.includes(c)).map(([, n]) => n).join(', ') || 'nothing reported'}` : '');
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

/**
 * Builds the DOM of a tile (filled in by `Grid.#render`).
 * @param {Device} device
 * @returns {TileView}
 */
function createView(device) {
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
  return { el: root, img, name, user, badges, activity, caps, result, checkbox, live, tabs };
}

export class Grid {
  /**
   * @param {HTMLElement} container the element that holds the rows (role grid)
   * @param {{onSelectionChange?: () => void, onWatchChange?: () => void, onEmptyChange?: (empty: boolean) => void, onLiveView?: (device: Device) => void, onTabs?: (device: Device) => void, onThumbnail?: (id: number, url: string) => void, onContextMenu?: (device: Device, at: {x: number, y: number}) => void, onShownChange?: (shown: number, total: number) => void}} [hooks]
   */
  constructor(container, hooks = {}) {
    this.container = container;
    this.hooks = hooks;
    container.replaceChildren();
    /** The box that scrolls the grid (the page itself does not scroll). */
    this.scroller = /** @type {HTMLElement | null} */ (container.closest('.grid-scroll'));
    /** Columns of the grid now (from its width and the tile size). */
    this.cols = 1;
    /** The grid's content width the columns were computed for. */
    this.width = 0;
    /** The gap between rows and tiles now (CSS `--tile-gap`), in pixels. */
    this.gap = 10;
    /** Height of a row not measured yet (the last full row measured). */
    this.rowHeight = TILE_HEIGHT_GUESS;
    /** Measured heights of rows of the current order and columns. @type {Map<number, number>} */
    this.heights = new Map();
    /** The scroll box's height, and where the grid starts in its content. */
    this.viewHeight = 0;
    this.origin = 0;
    this.originDirty = true;
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
    /** The rows in the DOM, by row index (contiguous, in order). @type {Map<number, HTMLElement>} */
    this.rows = new Map();
    /** Row elements out of the window, kept for reuse. @type {HTMLElement[]} */
    this.pool = [];
    /** Rows of the window that must be filled again (the order changed). */
    this.refill = false;
    /** Rows (first, last) whose tiles ask for thumbnails. */
    this.watched = [0, -1];
    /** Devices whose tiles wait to be rendered. @type {Set<number>} */
    this.dirty = new Set();
    this.layoutDirty = false;
    this.windowDirty = false;
    this.frame = 0;
    /** Only these device ids (a class), or all. @type {Set<number> | null} */
    this.only = null;
    /** Lower-case search text. */
    this.query = '';
    /** @type {typeof SORTS[number]} */
    this.sort = 'name';
    /** Per-device facts from the class tree. @type {Map<number, TileFacts>} */
    this.facts = new Map();
    /** Computers whose students have a hand raised (requests.js). @type {Set<number>} */
    this.hands = new Set();
    /** The tile keyboard focus stays on (the grid's one tab stop). @type {number | null} */
    this.focusId = null;
    /** Where a Shift-click range starts. @type {number | null} */
    this.anchorId = null;
    /** Set while the grid itself takes focus from a tile leaving the window. */
    this.parking = false;
    // A new width may change the column count, a new height the window; a
    // row's height, once laid out, stands for the rows not in the DOM.
    this.resizer = 'ResizeObserver' in window
      ? new ResizeObserver((entries) => this.#onResize(entries))
      : null;
    this.resizer?.observe(container);
    if (this.scroller) {
      this.resizer?.observe(this.scroller);
      this.scroller.addEventListener('scroll', () => this.#onScroll(), { passive: true });
    }
    container.addEventListener('click', (event) => this.#onClick(event));
    container.addEventListener('keydown', (event) => this.#onKey(event));
    container.addEventListener('contextmenu', (event) => this.#onContextMenu(event));
    container.addEventListener('focusin', (event) => this.#onFocus(event));
    // The skip link, or Tab while the current tile is out of the window,
    // lands on the grid itself: focus goes on to the current tile.
    container.addEventListener('focus', () => { if (!this.parking) this.focus(); });
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
   * Adds or refreshes the tile for `device` (rendered in the next frame if
   * it is in the window); a revoked device loses its tile.
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
      tile = { device, view: null, attached: false, selected: false, result: null, url: null, shown: true };
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
    if (tile.attached) this.dirty.add(device.id);
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
    tile.view?.el.remove();
    tile.attached = false;
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
    this.#dirtyAttached(() => true);
  }

  /**
   * Whether the student at a computer has a hand raised.
   * @param {number} id
   * @returns {boolean}
   */
  hasHand(id) {
    return Boolean(this.hands?.has(id));
  }

  /**
   * The computers whose students have a hand raised (a badge on each).
   * @param {Set<number>} ids
   */
  setHands(ids) {
    const before = this.hands || new Set();
    this.hands = ids;
    this.#dirtyAttached((t) => before.has(t.device.id) !== ids.has(t.device.id));
  }

  /** Re-renders the tiles of timed locks (so "4 min left" counts down). */
  refreshAll() {
    this.#dirtyAttached((t) => Boolean(t.device.state?.locked_until));
  }

  /**
   * Re-lays out the rows after the tile size changed (the column count and
   * the row height depend on it).
   */
  relayout() {
    this.rowHeight = TILE_HEIGHT_GUESS;
    this.heights.clear();
    this.originDirty = true;
    this.layoutDirty = true;
    this.#schedule();
  }

  /**
   * Applies pending renders, the order and the window now (tests and
   * measurements call it; normally the next animation frame does).
   */
  flush() {
    if (this.frame) cancelAnimationFrame(this.frame);
    this.frame = 0;
    if (this.layoutDirty) this.#layout();
    else if (this.windowDirty) this.#renderWindow();
    this.#renderDirty();
  }

  /**
   * Applies a pending order (and its first window) and renders, so that
   * what the model says is current; the window's growth stays with the
   * animation frames (a getter never builds more of it).
   */
  #settle() {
    if (this.layoutDirty) this.#layout();
    this.#renderDirty();
  }

  /** Renders the changed tiles that are in the window. */
  #renderDirty() {
    for (const id of this.dirty) {
      const tile = this.tiles.get(id);
      if (tile?.attached) this.#render(tile);
    }
    this.dirty.clear();
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
    if (tile.view) tile.view.img.src = tile.url;
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
    this.#settle();
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
    tile.result = { status, text };
    if (tile.view) this.#renderResult(tile, tile.view);
  }

  /** Clears every tile's command outcome. */
  clearResults() {
    for (const tile of this.tiles.values()) {
      if (!tile.result) continue;
      tile.result = null;
      if (tile.view) this.#renderResult(tile, tile.view);
    }
  }

  /**
   * Ids of the selected devices that are shown, in grid order: commands act
   * only on what the teacher sees.
   * @returns {number[]}
   */
  selectedIds() {
    this.#settle();
    return this.order.filter((t) => t.selected).map((t) => t.device.id);
  }

  /**
   * Whether a device's tile is selected.
   * @param {number} id
   * @returns {boolean}
   */
  isSelected(id) {
    return Boolean(this.tiles.get(id)?.selected);
  }

  /**
   * Selects every shown tile, or deselects every tile (in the DOM or not).
   * @param {boolean} selected
   */
  selectAll(selected) {
    this.#settle();
    for (const tile of selected ? this.order : this.tiles.values()) this.#setSelected(tile, selected);
    this.hooks.onSelectionChange?.();
  }

  /**
   * Ids of the devices whose thumbnails we want: online, shown and near the view.
   * @returns {number[]}
   */
  watchIds() {
    this.#settle();
    const [first, last] = this.watched;
    return this.order
      .slice(first * this.cols, (last + 1) * this.cols)
      .filter((t) => t.device.online && t.attached)
      .map((t) => t.device.id);
  }

  /**
   * Moves keyboard focus to the grid's current tile, bringing it into the
   * window first.
   */
  focus() {
    this.#settle();
    const tile = this.#focusTile();
    if (tile) this.#reveal(tile);
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
   * Marks the attached tiles that match for rendering in the next frame
   * (tiles outside the window render when they enter it).
   * @param {(tile: Tile) => boolean} which
   */
  #dirtyAttached(which) {
    for (const [id, t] of this.tiles) if (t.attached && which(t)) this.dirty.add(id);
    this.#schedule();
  }

  /**
   * Refreshes a tile's text, badges, selection and classes from its model.
   * @param {Tile} tile
   */
  #render(tile) {
    const view = /** @type {TileView} */ (tile.view);
    const d = tile.device;
    const s = d.state || {};
    setText(view.name, d.hostname);
    setAttr(view.name, 'title', d.hostname);
    setAttr(view.img, 'alt', `Screen of ${d.hostname}`);
    setAttr(view.checkbox, 'aria-label', `Select ${d.hostname}`);
    // Each name starts with the button's visible text (WCAG 2.5.3).
    setAttr(view.live, 'aria-label', `Live view: ${d.hostname}`);
    view.live.disabled = !d.online;
    const tabList = Array.isArray(s.tabs) ? s.tabs : [];
    const hasTabs = (d.capabilities || []).includes('tabs') || tabList.length > 0 || (s.extension != null && s.extension !== 'unknown');
    view.tabs.hidden = !hasTabs;
    view.tabs.disabled = !d.online;
    const tabsText = tabList.length ? `Tabs ${tabList.length}` : 'Tabs';
    setText(view.tabs, tabsText);
    setAttr(view.tabs, 'aria-label', `${tabsText}: ${d.hostname}`);
    // Kept while the device reports the same user; a new user shows as reported.
    const person = tile.person && tile.person.user === s.user ? tile.person.name : null;
    setText(view.user, person || s.user || 'nobody signed in');
    setAttr(view.user, 'title', person && person !== s.user ? `${person}, signed in as ${s.user}` : (s.user || ''));
    view.user.classList.toggle('none', !s.user);
    view.el.classList.toggle('offline', !d.online);
    setAttr(view.el, 'title', [d.hostname, d.os, d.agent_version && `agent ${d.agent_version}`, !d.online && lastSeen(d.last_seen)]
      .filter(Boolean)
      .join(' · '));
    const badges = this.#badges(d);
    const key = JSON.stringify(badges);
    if (view.badges.dataset.key !== key) {
      view.badges.dataset.key = key;
      view.badges.replaceChildren(...badges.map(([text, kind, title]) => {
        const b = el('span', `badge ${kind}`, text);
        if (title) b.title = title;
        return b;
      }));
    }
    renderCapabilities(view, d);
    this.#renderActivity(tile, view);
    this.#renderSelected(tile, view);
    this.#renderResult(tile, view);
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
    if (this.hands?.has(d.id)) flags.push(['✋ Hand raised', 'hand', 'The student asks for help']);
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
   * @param {TileView} view
   */
  #renderActivity(tile, view) {
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
    setText(view.activity, d.online ? doing : '');
    setAttr(view.activity, 'title', d.online ? detail : '');
    view.activity.classList.toggle('web', d.online && Boolean(tab));
  }

  /**
   * @param {Tile} tile
   * @param {TileView} view
   */
  #renderSelected(tile, view) {
    if (view.checkbox.checked !== tile.selected) view.checkbox.checked = tile.selected;
    view.el.classList.toggle('selected', tile.selected);
    setAttr(view.el, 'aria-selected', String(tile.selected));
  }

  /**
   * @param {Tile} tile
   * @param {TileView} view
   */
  #renderResult(tile, view) {
    const r = tile.result;
    setText(view.result, r ? r.text : '');
    setAttr(view.result, 'title', r ? r.text : '');
    if (r) view.result.dataset.status = r.status;
    else delete view.result.dataset.status;
  }

  /**
   * Decides which tiles are shown and in what order, then rebuilds the
   * window's rows from it.
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
    // New columns put other tiles in the rows near the view.
    const changed = cols !== this.cols || order.length !== this.order.length
      || order.some((t, i) => this.order[i] !== t);
    this.order = order;
    this.cols = cols;
    if (changed) {
      // Rows now hold other tiles: their measured heights no longer apply.
      this.heights.clear();
      this.refill = true;
    }
    const rows = Math.ceil(order.length / cols);
    setAttr(this.container, 'aria-rowcount', String(rows));
    setAttr(this.container, 'aria-colcount', String(Math.min(cols, order.length)));
    this.windowDirty = true;
    this.#renderWindow();
    if (changed) this.hooks.onWatchChange?.();
    this.hooks.onEmptyChange?.(this.tiles.size === 0);
    this.hooks.onShownChange?.(this.order.length, this.tiles.size);
    this.hooks.onSelectionChange?.();
  }

  /**
   * The height of row `r` (measured, else the estimate).
   * @param {number} r
   * @returns {number}
   */
  #rowH(r) {
    return this.heights.get(r) ?? this.rowHeight;
  }

  /**
   * The first row whose bottom is below `y` (pixels from the grid's top).
   * @param {number} y
   * @param {number} rows
   * @returns {number}
   */
  #rowAt(y, rows) {
    let top = 0;
    for (let r = 0; r < rows; r += 1) {
      top += this.#rowH(r) + this.gap;
      if (top > y) return r;
    }
    return Math.max(0, rows - 1);
  }

  /**
   * The top of row `r`, in pixels from the grid's top.
   * @param {number} r
   * @returns {number}
   */
  #rowTop(r) {
    let top = 0;
    for (let i = 0; i < r; i += 1) top += this.#rowH(i) + this.gap;
    return top;
  }

  /**
   * Where the view is, in pixels from the grid's top. Reads the scroll box
   * before the window changes the DOM (a read after a change would force a
   * layout).
   * @returns {{top: number, height: number}}
   */
  #viewport() {
    const box = this.scroller;
    if (!box) return { top: 0, height: Infinity };
    if (this.originDirty) {
      this.originDirty = false;
      this.viewHeight = box.clientHeight;
      this.origin = this.container.getBoundingClientRect().top - box.getBoundingClientRect().top + box.scrollTop;
    }
    return { top: box.scrollTop - this.origin, height: this.viewHeight };
  }

  /**
   * Puts into the DOM the rows near the view, and only those: the visible
   * rows always, the margin of WINDOW_SCREENS screens either side up to
   * FRAME_TILES new tiles per frame (the next frame goes on). The padding
   * stands for the rows left out.
   */
  #renderWindow() {
    this.windowDirty = false;
    const rows = Math.ceil(this.order.length / this.cols);
    const view = this.#viewport();
    const height = Number.isFinite(view.height) ? view.height : this.#rowTop(rows);
    const margin = height * WINDOW_SCREENS;
    const v0 = this.#rowAt(Math.max(0, view.top), rows);
    const v1 = this.#rowAt(Math.max(0, view.top + height), rows);
    const t0 = this.#rowAt(Math.max(0, view.top - margin), rows);
    const t1 = this.#rowAt(Math.max(0, view.top + height + margin), rows);
    let [first, last] = this.#keptRows(v0, v1, t0, t1);
    let budget = FRAME_TILES;
    let grew = true;
    // Grow the window towards the margin, nearest rows first, both ways.
    while (rows > 0 && budget > 0 && grew) {
      grew = false;
      if (last < t1) { last += 1; budget -= this.#rowFresh(last) ? this.cols : 0; grew = true; }
      if (first > t0 && budget > 0) { first -= 1; budget -= this.#rowFresh(first) ? this.cols : 0; grew = true; }
    }
    if (rows === 0) [first, last] = [0, -1];
    this.#placeRows(first, last);
    this.container.style.paddingTop = `${first > 0 ? this.#rowTop(first) : 0}px`;
    this.container.style.paddingBottom = `${last >= 0 && last < rows - 1 ? this.#rowTop(rows) - this.#rowTop(last + 1) : 0}px`;
    this.#updateTabStop();
    if (first > t0 || last < t1) {
      this.windowDirty = true;
      this.#schedule();
    }
    this.#updateWatched(view, height, rows, first, last);
  }

  /**
   * The rows already in the DOM that stay, widened to the visible rows.
   * @param {number} v0 first visible row
   * @param {number} v1 last visible row
   * @param {number} t0 first row of the full window
   * @param {number} t1 last row of the full window
   * @returns {[number, number]}
   */
  #keptRows(v0, v1, t0, t1) {
    // A new order refills the visible rows now and the margin in frames.
    if (this.rows.size === 0 || this.refill) return [v0, v1];
    const keys = [...this.rows.keys()];
    const b0 = Math.min(...keys);
    const b1 = Math.max(...keys);
    // A jump far away: start again from what is visible.
    if (b1 < v0 || b0 > v1) return [v0, v1];
    return [Math.max(t0, Math.min(b0, v0)), Math.min(t1, Math.max(b1, v1))];
  }

  /**
   * Whether row `r` would be built now (not in the DOM, or to be refilled).
   * @param {number} r
   * @returns {boolean}
   */
  #rowFresh(r) {
    return this.refill || !this.rows.has(r);
  }

  /**
   * Makes the DOM hold exactly rows `first`..`last`, filled with their
   * tiles in order; rows that leave go to the pool, tiles that leave are
   * detached. Keeps keyboard focus on a tile that moved, and moves it to
   * the grid itself when its tile leaves.
   * @param {number} first
   * @param {number} last
   */
  #placeRows(first, last) {
    const active = document.activeElement;
    const hadFocus = active instanceof HTMLElement && active !== this.container && this.container.contains(active);
    for (const [r, row] of this.rows) {
      if (r >= first && r <= last) continue;
      this.rows.delete(r);
      row.remove();
      this.pool.push(row);
    }
    /** @type {Set<Tile>} */
    const inWindow = new Set(this.order.slice(first * this.cols, (last + 1) * this.cols));
    for (const t of this.tiles.values()) {
      if (t.attached && !inWindow.has(t)) this.#detach(t);
    }
    /** @type {HTMLElement | null} */
    let next = null;
    for (let r = last; r >= first; r -= 1) {
      let row = this.rows.get(r);
      const fresh = !row || this.refill;
      if (!row) {
        row = this.#newRow();
        this.container.insertBefore(row, next);
        this.rows.set(r, row);
      }
      if (fresh) this.#fillRow(row, r);
      next = row;
    }
    this.refill = false;
    if (!hadFocus || active === document.activeElement) return;
    if (active.isConnected) active.focus({ preventScroll: true });
    else this.#park();
  }

  /**
   * Gives row `r` its tiles in order, moving only those not in place (a
   * search that hides one tile moves about one tile per row).
   * @param {HTMLElement} row
   * @param {number} r
   */
  #fillRow(row, r) {
    setAttr(row, 'aria-rowindex', String(r + 1));
    const tiles = this.order.slice(r * this.cols, (r + 1) * this.cols);
    const kids = row.children;
    tiles.forEach((t, i) => {
      if (!t.view) t.view = createView(t.device);
      if (kids[i] !== t.view.el) row.insertBefore(t.view.el, kids[i] ?? null);
      if (!t.attached) {
        t.attached = true;
        this.#render(t);
        if (t.url && t.view.img.getAttribute('src') !== t.url) t.view.img.src = t.url;
      }
    });
    while (kids.length > tiles.length) /** @type {Element} */ (row.lastElementChild).remove();
  }

  /**
   * Takes a tile's view out of the DOM (the model keeps its state).
   * @param {Tile} tile
   */
  #detach(tile) {
    tile.attached = false;
    tile.view?.el.remove();
    this.dirty.delete(tile.device.id);
  }

  /** @returns {HTMLElement} a row element (from the pool, or new) */
  #newRow() {
    const pooled = this.pool.pop();
    if (pooled) return pooled;
    const row = el('div', 'grid-row');
    row.setAttribute('role', 'row');
    this.resizer?.observe(row);
    return row;
  }

  /**
   * Keeps the focus in the grid when the focused tile leaves the window:
   * the grid itself takes it, and the keys go on from the current tile.
   */
  #park() {
    this.parking = true;
    this.container.tabIndex = 0;
    this.container.focus({ preventScroll: true });
    this.parking = false;
  }

  /**
   * Tells the console when the rows near the view that are in the DOM (the
   * tiles that want thumbnails) changed.
   * @param {{top: number}} view
   * @param {number} height
   * @param {number} rows
   * @param {number} first first row in the DOM
   * @param {number} last last row in the DOM
   */
  #updateWatched(view, height, rows, first, last) {
    const w = rows === 0 ? [0, -1] : [
      Math.max(first, this.#rowAt(Math.max(0, view.top - WATCH_MARGIN), rows)),
      Math.min(last, this.#rowAt(Math.max(0, view.top + height + WATCH_MARGIN), rows)),
    ];
    if (w[0] === this.watched[0] && w[1] === this.watched[1]) return;
    this.watched = w;
    this.hooks.onWatchChange?.();
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

  /**
   * Gives the tab stop (tabindex 0) to the current tile when it is in the
   * window, else to the grid itself (which hands focus on); -1 to the rest.
   */
  #updateTabStop() {
    const keep = this.#focusTile();
    for (const t of this.tiles.values()) {
      if (!t.attached || !t.view) continue;
      const want = t === keep ? 0 : -1;
      if (t.view.el.tabIndex !== want) t.view.el.tabIndex = want;
    }
    if (keep) this.focusId = keep.device.id;
    // Focus parked on the grid goes back to its tile once it is in the
    // window again (one tab stop, never two).
    if (keep?.attached && keep.view && document.activeElement === this.container) {
      keep.view.el.focus({ preventScroll: true });
    }
    const own = keep && !keep.attached ? 0 : -1;
    if (this.container.tabIndex !== own && document.activeElement !== this.container) this.container.tabIndex = own;
  }

  /**
   * Scrolls a tile's row into view, builds the window there and focuses
   * the tile.
   * @param {Tile} tile
   */
  #reveal(tile) {
    const i = this.order.indexOf(tile);
    if (i < 0) return;
    const r = Math.floor(i / this.cols);
    const box = this.scroller;
    if (box) {
      const view = this.#viewport();
      const top = this.#rowTop(r);
      const bottom = top + this.#rowH(r);
      if (top < view.top) box.scrollTop = this.origin + top;
      else if (bottom > view.top + view.height) box.scrollTop = this.origin + bottom - view.height;
    }
    this.#renderWindow();
    this.#updateTabStop();
    const target = tile.view?.el;
    if (!target) return;
    // The row's real height may differ from the estimate: let the browser
    // scroll the rest of the way.
    target.focus();
    if (this.container.tabIndex !== -1) this.container.tabIndex = -1;
  }

  /**
   * @param {Tile} tile
   * @param {boolean} selected
   */
  #setSelected(tile, selected) {
    if (tile.selected === selected) return;
    tile.selected = selected;
    if (tile.attached && tile.view) this.#renderSelected(tile, tile.view);
  }

  /**
   * Selects the shown tiles from the anchor to `tile` (inclusive), in the
   * DOM or not.
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
    if (!tile || !tile.view) return;
    const view = tile.view;
    if (target.closest('.live-view')) {
      if (!view.live.disabled) this.hooks.onLiveView?.(tile.device);
      return;
    }
    if (target.closest('.tabs-button')) {
      if (!view.tabs.disabled) this.hooks.onTabs?.(tile.device);
      return;
    }
    this.focusId = tile.device.id;
    this.#updateTabStop();
    if (event.shiftKey) {
      this.#selectRange(tile);
      // The checkbox toggled itself; the model decides.
      this.#renderSelected(tile, view);
      // A Shift-click would otherwise select the tiles' text.
      window.getSelection()?.removeAllRanges();
    } else {
      this.#setSelected(tile, target === view.checkbox ? view.checkbox.checked : !tile.selected);
      this.#renderSelected(tile, view);
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
   * would place them; written to `--grid-cols` so the rows use exactly it.
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
   * Arrow keys, Home, End, PageUp and PageDown move focus; Space toggles;
   * Shift extends; the context-menu key and Shift+F10 open the tile's menu.
   * Keys on the grid itself (its tile left the window) go on from the
   * current tile.
   * @param {KeyboardEvent} event
   */
  #onKey(event) {
    const onGrid = event.target === this.container;
    const tile = onGrid ? this.#focusTile() : this.#tileOf(event);
    if (!tile || (!onGrid && event.target !== tile.view?.el)) return;
    if (event.key === 'ContextMenu' || (event.key === 'F10' && event.shiftKey)) {
      event.preventDefault();
      if (onGrid || !tile.view) return;
      const r = tile.view.el.getBoundingClientRect();
      this.hooks.onContextMenu?.(tile.device, { x: r.left + 16, y: r.top + 16 });
      return;
    }
    if (event.key === ' ') {
      event.preventDefault();
      this.#setSelected(tile, !tile.selected);
      this.anchorId = tile.device.id;
      this.hooks.onSelectionChange?.();
      return;
    }
    const i = this.order.indexOf(tile);
    const cols = this.cols;
    const page = cols * Math.max(1, Math.floor((this.viewHeight || 0) / (this.rowHeight + this.gap)));
    /** @type {Record<string, number>} */
    const moves = {
      ArrowRight: i + 1,
      ArrowLeft: i - 1,
      ArrowDown: i + cols,
      ArrowUp: i - cols,
      PageDown: i + page,
      PageUp: i - page,
      Home: 0,
      End: this.order.length - 1,
    };
    if (!(event.key in moves)) return;
    event.preventDefault();
    const next = this.order[Math.min(Math.max(moves[event.key], 0), this.order.length - 1)];
    if (!next) return;
    this.focusId = next.device.id;
    this.#reveal(next);
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

  /** The view moved: the window follows in the next frame. */
  #onScroll() {
    this.windowDirty = true;
    this.#schedule();
  }

  /**
   * The grid's width changed (new columns), the scroll box's height (a new
   * window), or a row was laid out (its height stands for the rows not in
   * the DOM).
   * @param {ResizeObserverEntry[]} entries
   */
  #onResize(entries) {
    for (const { target, contentRect } of entries) {
      if (target === this.container) {
        if (contentRect.width === this.width) continue;
        this.width = contentRect.width;
        this.originDirty = true;
        this.layoutDirty = true;
        this.#schedule();
      } else if (target === this.scroller) {
        this.originDirty = true;
        this.windowDirty = true;
        this.#schedule();
      } else {
        this.#measureRow(/** @type {HTMLElement} */ (target), contentRect.height);
      }
    }
  }

  /**
   * Records a laid-out row's height; a full row's height becomes the
   * estimate for rows not in the DOM (the padding follows in a frame).
   * @param {HTMLElement} row
   * @param {number} height
   */
  #measureRow(row, height) {
    if (!row.isConnected || height <= 0) return;
    const r = Number(row.getAttribute('aria-rowindex')) - 1;
    if (this.rows.get(r) !== row || this.heights.get(r) === height) return;
    this.heights.set(r, height);
    if (row.childElementCount === this.cols && Math.abs(this.rowHeight - height) > 0.5) this.rowHeight = height;
    this.windowDirty = true;
    this.#schedule();
  }
}
