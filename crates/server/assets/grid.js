// The class grid: one tile per enrolled (non-revoked) device, sorted by
// hostname, with a live thumbnail, state badges, a selection checkbox, a
// "Live view" button, a "Tabs" button, what the student has open (the active
// browser tab, else the focused app) and the last command's outcome.

import { activeTab, hostOf } from './tabs.js';

/**
 * @typedef {object} DeviceState
 * @property {string | null} [user]
 * @property {boolean} [locked]
 * @property {boolean} [internet_blocked]
 * @property {string | null} [focused_app]
 * @property {string | null} [window_title]
 * @property {string | null} [url]
 * @property {boolean} [message_shown]
 * @property {boolean} [printing_disabled] by policy
 * @property {boolean} [removable_media_disabled] by policy
 * @property {boolean} [sound_muted] by policy
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

/**
 * Shows what an online device cannot do (the server fails those commands for
 * it), and the whole list in the tooltip and `data-capabilities`.
 * @param {Tile} tile
 * @param {Device} d
 */
function renderCapabilities(tile, d) {
  const caps = d.capabilities || [];
  tile.el.dataset.capabilities = caps.join(' ');
  const missing = CAPABILITY_NAMES.filter(([c]) => !caps.includes(c)).map(([, name]) => name);
  tile.caps.textContent = d.online && caps.length && missing.length ? `Cannot: ${missing.join(', ')}` : '';
  tile.caps.title = d.online ? `Can: ${CAPABILITY_NAMES.filter(([c]) => caps.includes(c)).map(([, n]) => n).join(', ') || 'nothing reported'}` : '';
}

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
 * @property {{user: string, name: string} | null} [person] the person behind
 *   the reported user, from the device list (stream updates do not carry it)
 */

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
 * Formats a "last seen" time for the offline tooltip.
 * @param {number | null | undefined} ms
 * @returns {string}
 */
function lastSeen(ms) {
  return ms ? `last seen ${new Date(ms).toLocaleString()}` : 'never seen';
}

export class Grid {
  /**
   * @param {HTMLElement} container the element that holds the tiles
   * @param {{onSelectionChange?: () => void, onWatchChange?: () => void, onEmptyChange?: (empty: boolean) => void, onLiveView?: (device: Device) => void, onTabs?: (device: Device) => void, onThumbnail?: (id: number, url: string) => void}} [hooks]
   */
  constructor(container, hooks = {}) {
    this.container = container;
    this.hooks = hooks;
    /** @type {Map<number, Tile>} */
    this.tiles = new Map();
    /** Ids of tiles currently on (or near) the screen. @type {Set<number>} */
    this.visible = new Set();
    this.observer = 'IntersectionObserver' in window
      ? new IntersectionObserver((entries) => this.#onIntersect(entries), { rootMargin: '200px' })
      : null;
    container.addEventListener('click', (event) => this.#onClick(event));
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
   * Adds or refreshes the tile for `device`; a revoked device loses its tile.
   * @param {Device} device
   */
  update(device) {
    if (device.revoked) {
      this.remove(device.id);
      return;
    }
    let tile = this.tiles.get(device.id);
    const wasOnline = tile ? tile.device.online : null;
    const moved = !tile || tile.device.hostname !== device.hostname;
    if (!tile) {
      tile = this.#create(device);
      this.tiles.set(device.id, tile);
      if (this.observer) this.observer.observe(tile.el);
      else this.visible.add(device.id);
    }
    tile.device = device;
    this.#render(tile);
    if (moved) this.#place(tile);
    if (wasOnline !== device.online) this.hooks.onWatchChange?.();
    this.hooks.onEmptyChange?.(this.tiles.size === 0);
  }

  /**
   * Removes a device's tile (and frees its thumbnail).
   * @param {number} id
   */
  remove(id) {
    const tile = this.tiles.get(id);
    if (!tile) return;
    this.observer?.unobserve(tile.el);
    if (tile.url) URL.revokeObjectURL(tile.url);
    tile.el.remove();
    this.tiles.delete(id);
    this.visible.delete(id);
    this.hooks.onWatchChange?.();
    this.hooks.onSelectionChange?.();
    this.hooks.onEmptyChange?.(this.tiles.size === 0);
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
   * The Blob URL of a device's latest thumbnail, if any.
   * @param {number} id
   * @returns {string | null}
   */
  thumbnailUrl(id) {
    return this.tiles.get(id)?.url ?? null;
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
      tile.result.textContent = '';
      tile.result.title = '';
      delete tile.result.dataset.status;
    }
  }

  /**
   * Ids of the selected devices, in grid order.
   * @returns {number[]}
   */
  selectedIds() {
    return this.#ordered().filter((t) => t.checkbox.checked).map((t) => t.device.id);
  }

  /**
   * Selects or deselects every tile.
   * @param {boolean} selected
   */
  selectAll(selected) {
    for (const tile of this.tiles.values()) this.#setSelected(tile, selected);
    this.hooks.onSelectionChange?.();
  }

  /**
   * Ids of the devices whose thumbnails we want: online and on screen.
   * @returns {number[]}
   */
  watchIds() {
    return this.#ordered()
      .filter((t) => t.device.online && this.visible.has(t.device.id))
      .map((t) => t.device.id);
  }

  /**
   * Builds the DOM of a new tile.
   * @param {Device} device
   * @returns {Tile}
   */
  #create(device) {
    const root = el('div', 'tile');
    root.dataset.deviceId = String(device.id);

    const screen = el('div', 'screen');
    const img = /** @type {HTMLImageElement} */ (el('img', 'thumb'));
    img.alt = `Screen of ${device.hostname}`;
    img.decoding = 'async';
    img.draggable = false;
    img.addEventListener('load', () => img.classList.add('loaded'));
    const placeholder = el('span', 'placeholder', 'No picture yet');
    placeholder.setAttribute('aria-hidden', 'true');
    const live = /** @type {HTMLButtonElement} */ (el('button', 'live-view', 'Live view'));
    live.type = 'button';
    live.dataset.right = 'live_view';
    const tabs = /** @type {HTMLButtonElement} */ (el('button', 'tabs-button', 'Tabs'));
    tabs.type = 'button';
    screen.append(img, placeholder, live, tabs);

    const head = el('div', 'head');
    const checkbox = /** @type {HTMLInputElement} */ (el('input', 'select'));
    checkbox.type = 'checkbox';
    const name = el('span', 'name');
    const user = el('span', 'user');
    head.append(checkbox, name, user);

    const badges = el('div', 'badges');
    const activity = el('div', 'activity');
    const result = el('div', 'result');
    const caps = el('div', 'caps');

    root.append(screen, head, badges, activity, caps, result);
    return { device, el: root, img, name, user, badges, activity, caps, result, checkbox, live, tabs, url: null };
  }

  /**
   * Refreshes a tile's text, badges and classes from its device.
   * @param {Tile} tile
   */
  #render(tile) {
    const d = tile.device;
    const s = d.state || {};
    tile.name.textContent = d.hostname;
    tile.img.alt = `Screen of ${d.hostname}`;
    tile.checkbox.setAttribute('aria-label', `Select ${d.hostname}`);
    tile.live.setAttribute('aria-label', `Live view of ${d.hostname}`);
    tile.live.disabled = !d.online;
    const tabList = Array.isArray(s.tabs) ? s.tabs : [];
    const hasTabs = (d.capabilities || []).includes('tabs') || tabList.length > 0 || (s.extension != null && s.extension !== 'unknown');
    tile.tabs.hidden = !hasTabs;
    tile.tabs.disabled = !d.online;
    tile.tabs.textContent = tabList.length ? `Tabs ${tabList.length}` : 'Tabs';
    tile.tabs.setAttribute('aria-label', `Browser tabs of ${d.hostname}`);
    // Kept while the device reports the same user; a new user shows as reported.
    if (d.person && s.user) tile.person = { user: s.user, name: d.person.display_name };
    const person = tile.person && tile.person.user === s.user ? tile.person.name : null;
    tile.user.textContent = person || s.user || 'nobody signed in';
    tile.user.title = person && person !== s.user ? `${person}, signed in as ${s.user}` : '';
    tile.user.classList.toggle('none', !s.user);
    tile.el.classList.toggle('offline', !d.online);
    tile.el.title = [d.hostname, d.os, d.agent_version && `agent ${d.agent_version}`, !d.online && lastSeen(d.last_seen)]
      .filter(Boolean)
      .join(' · ');

    /** @type {[string, string][]} */
    const flags = [];
    if (!d.online) {
      flags.push(['Offline', 'offline']);
    } else {
      if (s.locked) flags.push(['Locked', 'locked']);
      if (s.internet_blocked) flags.push(['Internet blocked', 'blocked']);
      if (s.message_shown) flags.push(['Message shown', 'message']);
      if (s.printing_disabled) flags.push(['Printing disabled', 'printing']);
      if (s.removable_media_disabled) flags.push(['USB disabled', 'usb']);
      if (s.sound_muted) flags.push(['Muted', 'muted']);
      if (s.extension === 'disconnected') flags.push(['Extension off', 'extension-off']);
    }
    tile.badges.replaceChildren(...flags.map(([text, kind]) => el('span', `badge ${kind}`, text)));
    renderCapabilities(tile, d);

    // What the student has open: the active browser tab (title · host), else
    // the focused browser page or app.
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
    tile.activity.textContent = d.online ? doing : '';
    tile.activity.title = d.online ? detail : '';
    tile.activity.classList.toggle('web', d.online && Boolean(tab));
  }

  /**
   * Moves a tile to its place in hostname order.
   * @param {Tile} tile
   */
  #place(tile) {
    const name = tile.device.hostname;
    let before = null;
    for (const other of this.container.children) {
      const id = Number(/** @type {HTMLElement} */ (other).dataset.deviceId);
      const o = this.tiles.get(id);
      if (o && o !== tile && collator.compare(o.device.hostname, name) > 0) {
        before = other;
        break;
      }
    }
    this.container.insertBefore(tile.el, before);
  }

  /**
   * Tiles in display (hostname) order.
   * @returns {Tile[]}
   */
  #ordered() {
    return [...this.tiles.values()].sort((a, b) => collator.compare(a.device.hostname, b.device.hostname));
  }

  /**
   * @param {Tile} tile
   * @param {boolean} selected
   */
  #setSelected(tile, selected) {
    tile.checkbox.checked = selected;
    tile.el.classList.toggle('selected', selected);
  }

  /**
   * A click anywhere on a tile toggles its selection; a click on the
   * checkbox itself has already toggled it. The "Live view" and "Tabs"
   * buttons open their dialogs and leave the selection alone.
   * @param {MouseEvent} event
   */
  #onClick(event) {
    const target = /** @type {HTMLElement} */ (event.target);
    const root = target.closest('.tile');
    if (!root) return;
    const tile = this.tiles.get(Number(/** @type {HTMLElement} */ (root).dataset.deviceId));
    if (!tile) return;
    if (target.closest('.live-view')) {
      if (!tile.live.disabled) this.hooks.onLiveView?.(tile.device);
      return;
    }
    if (target.closest('.tabs-button')) {
      if (!tile.tabs.disabled) this.hooks.onTabs?.(tile.device);
      return;
    }
    const selected = target === tile.checkbox ? tile.checkbox.checked : !tile.checkbox.checked;
    this.#setSelected(tile, selected);
    this.hooks.onSelectionChange?.();
  }

  /**
   * Keeps the set of on-screen tiles up to date.
   * @param {IntersectionObserverEntry[]} entries
   */
  #onIntersect(entries) {
    let changed = false;
    for (const entry of entries) {
      const id = Number(/** @type {HTMLElement} */ (entry.target).dataset.deviceId);
      if (!this.tiles.has(id)) continue;
      const had = this.visible.has(id);
      if (entry.isIntersecting && !had) this.visible.add(id);
      else if (!entry.isIntersecting && had) this.visible.delete(id);
      else continue;
      changed = true;
    }
    if (changed) this.hooks.onWatchChange?.();
  }
}
