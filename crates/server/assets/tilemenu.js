// A tile's context menu (right-click, the context-menu key or Shift+F10) and
// its properties panel: user, groups, resultant settings in the catalogue's
// words, open tabs and recent activity, each section only when the user may
// see it (the server checks again).

import { api } from './api.js';
import { el, formatTime } from './page.js';

/**
 * @typedef {{all?: boolean, features?: string[]}} Rights
 * @typedef {{key: string, label?: string, value_labels?: Record<string, string>}} CatalogueEntry
 */

/**
 * Whether `rights` hold a feature.
 * @param {Rights} rights
 * @param {string} feature
 * @returns {boolean}
 */
export function holds(rights, feature) {
  return Boolean(rights.all) || (rights.features || []).includes(feature);
}

export class TileMenu {
  /**
   * @param {{menu: HTMLElement, dialog: HTMLDialogElement, title: HTMLElement, body: HTMLElement, close: HTMLButtonElement}} view
   * @param {{grid: import('./grid.js').Grid, groupsOf: (id: number) => string[], rights: () => Rights, run: (action: string, ids: number[], device: import('./grid.js').Device) => void}} deps
   */
  constructor(view, deps) {
    this.view = view;
    this.deps = deps;
    /** The device the menu was opened on. @type {import('./grid.js').Device | null} */
    this.device = null;
    /** Where focus goes back when the menu closes. @type {HTMLElement | null} */
    this.returnFocus = null;
    /** @type {Map<string, CatalogueEntry> | null} */
    this.catalogue = null;
    view.menu.addEventListener('click', (event) => {
      const item = /** @type {HTMLElement} */ (event.target).closest('[role="menuitem"]');
      if (item) this.#choose(/** @type {HTMLElement} */ (item).dataset.action || '');
    });
    view.menu.addEventListener('keydown', (event) => this.#onKey(event));
    view.menu.addEventListener('focusout', (event) => {
      if (!view.menu.contains(/** @type {Node | null} */ (event.relatedTarget))) this.close(false);
    });
    document.addEventListener('pointerdown', (event) => {
      if (!view.menu.hidden && !view.menu.contains(/** @type {Node} */ (event.target))) this.close(false);
    });
    view.close.addEventListener('click', () => view.dialog.close());
  }

  /**
   * The devices an action applies to: the selection when the tile is part of
   * it, else the tile alone.
   * @param {number} id
   * @returns {number[]}
   */
  targets(id) {
    const grid = this.deps.grid;
    return grid.isSelected(id) ? grid.selectedIds() : [id];
  }

  /**
   * Opens the menu for a device at a point.
   * @param {import('./grid.js').Device} device
   * @param {{x: number, y: number}} at
   */
  open(device, at) {
    this.device = device;
    this.returnFocus = /** @type {HTMLElement | null} */ (document.activeElement);
    const menu = this.view.menu;
    const rights = this.deps.rights();
    const caps = device.capabilities || [];
    /** @type {Record<string, boolean>} */
    const show = {
      live: holds(rights, 'live_view') && device.online,
      tabs: holds(rights, 'command.tabs') && device.online && caps.includes('tabs'),
      message: holds(rights, 'command.message'),
      clear_message: holds(rights, 'command.message'),
      lock: holds(rights, 'command.lock'),
      lock5: holds(rights, 'command.lock'),
      unlock: holds(rights, 'command.lock'),
      // The server checks control of each computer again when sending.
      // Safeguarding leads read the chat history (read-only).
      chat: holds(rights, 'command.chat') || holds(rights, 'activity.view'),
      answer_hand: holds(rights, 'command.chat') && this.deps.grid.hasHand(device.id),
      properties: true,
    };
    const n = this.targets(device.id).length;
    for (const item of menu.querySelectorAll('[role="menuitem"]')) {
      const action = /** @type {HTMLElement} */ (item).dataset.action || '';
      /** @type {HTMLElement} */ (item).hidden = !show[action];
    }
    menu.setAttribute('aria-label', n > 1 ? `Actions for ${n} selected computers` : `Actions for ${device.hostname}`);
    menu.hidden = false;
    // Kept inside the window.
    const r = menu.getBoundingClientRect();
    menu.style.left = `${Math.max(4, Math.min(at.x, window.innerWidth - r.width - 4))}px`;
    menu.style.top = `${Math.max(4, Math.min(at.y, window.innerHeight - r.height - 4))}px`;
    this.#items()[0]?.focus();
  }

  /**
   * Closes the menu.
   * @param {boolean} refocus give focus back to where it was
   */
  close(refocus) {
    if (this.view.menu.hidden) return;
    this.view.menu.hidden = true;
    if (refocus) this.returnFocus?.focus();
  }

  /** @returns {HTMLElement[]} the visible menu items */
  #items() {
    return /** @type {HTMLElement[]} */ ([...this.view.menu.querySelectorAll('[role="menuitem"]')]
      .filter((i) => !(/** @type {HTMLElement} */ (i).hidden)));
  }

  /**
   * Up, Down, Home, End move; Escape closes; Enter and Space choose (buttons).
   * @param {KeyboardEvent} event
   */
  #onKey(event) {
    const items = this.#items();
    const i = items.indexOf(/** @type {HTMLElement} */ (document.activeElement));
    /** @type {Record<string, number>} */
    const moves = { ArrowDown: i + 1, ArrowUp: i - 1, Home: 0, End: items.length - 1 };
    if (event.key === 'Escape' || event.key === 'Tab') {
      event.preventDefault();
      this.close(true);
    } else if (event.key in moves) {
      event.preventDefault();
      items[(moves[event.key] + items.length) % items.length]?.focus();
    }
  }

  /**
   * Runs a menu item.
   * @param {string} action
   */
  #choose(action) {
    const device = this.device;
    this.close(action !== 'properties');
    if (!device) return;
    if (action === 'properties') this.showProperties(device);
    else this.deps.run(action, this.targets(device.id), device);
  }

  /**
   * Opens the properties panel of a device.
   * @param {import('./grid.js').Device} device
   */
  async showProperties(device) {
    const { dialog, title, body } = this.view;
    title.textContent = `Properties of ${device.hostname}`;
    const rights = this.deps.rights();
    const s = device.state || {};
    const person = this.deps.grid.personName(device.id);
    /** @type {HTMLElement[]} */
    const sections = [];
    sections.push(section('Computer', [
      ['Name', device.hostname],
      ['Status', device.online ? 'Online' : `Offline${device.last_seen ? ` since ${formatTime(device.last_seen)}` : ''}`],
      ['System', [device.os, device.agent_version && `agent ${device.agent_version}`].filter(Boolean).join(' · ') || 'not reported'],
    ]));
    sections.push(section('User', [
      ['Signed in', s.user ? (person && person !== s.user ? `${person} (${s.user})` : s.user) : 'nobody'],
      ['Open', s.window_title || s.url || s.focused_app || '—'],
    ]));
    const groups = this.deps.groupsOf(device.id);
    sections.push(listSection('Groups', groups.length ? groups : ['No group you can see']));
    const tabs = Array.isArray(s.tabs) ? s.tabs : [];
    if (tabs.length) sections.push(listSection('Open tabs', tabs.map((t) => `${t.active ? '▸ ' : ''}${t.title || t.url} — ${t.url}`)));
    const settings = el('section', 'prop-section');
    const activity = el('section', 'prop-section');
    if (holds(rights, 'groups.view')) sections.push(settings);
    if (holds(rights, 'activity.view')) sections.push(activity);
    body.replaceChildren(...sections);
    if (!dialog.open) dialog.showModal();
    if (holds(rights, 'groups.view')) this.#fillSettings(settings, device.id);
    if (holds(rights, 'activity.view')) this.#fillActivity(activity, device.id);
  }

  /**
   * The resultant settings, labelled from the catalogue.
   * @param {HTMLElement} target
   * @param {number} id
   */
  async #fillSettings(target, id) {
    target.replaceChildren(el('h3', '', 'Settings in force'), el('p', 'hint', 'Loading…'));
    try {
      if (!this.catalogue) {
        const cat = await api('GET', '/api/v1/settings/catalogue');
        this.catalogue = new Map((Array.isArray(cat) ? cat : []).map((c) => [c.key, c]));
      }
      const res = await api('GET', `/api/v1/resultant?device=${id}`);
      const rows = Object.entries(res.settings || {}).map(([key, entry]) => {
        const c = this.catalogue?.get(key);
        const from = entry.source ? ` (from ${entry.source.group_name})` : ' (default)';
        return /** @type {[string, string]} */ ([c?.label || key, `${describeValue(entry.value, c)}${from}`]);
      });
      target.replaceChildren(...section('Settings in force', rows).childNodes);
    } catch (err) {
      target.replaceChildren(el('h3', '', 'Settings in force'), el('p', 'hint', `Could not load the settings: ${messageOf(err)}`));
    }
  }

  /**
   * The device's latest activity.
   * @param {HTMLElement} target
   * @param {number} id
   */
  async #fillActivity(target, id) {
    target.replaceChildren(el('h3', '', 'Recent activity'), el('p', 'hint', 'Loading…'));
    try {
      const rows = await api('GET', `/api/v1/activity?device=${id}&limit=10`);
      const lines = (Array.isArray(rows) ? rows : []).map((r) =>
        `${formatTime(r.at)} · ${r.user || 'nobody'} · ${r.title || r.url || r.app || r.kind}`);
      target.replaceChildren(...listSection('Recent activity', lines.length ? lines : ['Nothing recorded yet']).childNodes);
    } catch (err) {
      target.replaceChildren(el('h3', '', 'Recent activity'), el('p', 'hint', `Could not load the activity: ${messageOf(err)}`));
    }
  }
}

/**
 * What went wrong, in words.
 * @param {unknown} err
 * @returns {string}
 */
function messageOf(err) {
  return err instanceof Error ? err.message : String(err);
}

/**
 * A setting value in the catalogue's words.
 * @param {unknown} value
 * @param {CatalogueEntry | undefined} c
 * @returns {string}
 */
function describeValue(value, c) {
  if (value === undefined || value === null) return 'none';
  if (Array.isArray(value)) return value.length ? value.join(', ') : 'none';
  if (typeof value === 'boolean') return value ? 'Yes' : 'No';
  if (typeof value === 'object') return JSON.stringify(value);
  return c?.value_labels?.[String(value)] || String(value);
}

/**
 * A titled list of label: value rows.
 * @param {string} heading
 * @param {[string, string][]} rows
 * @returns {HTMLElement}
 */
function section(heading, rows) {
  const s = el('section', 'prop-section');
  const dl = el('dl', 'prop-list');
  for (const [k, v] of rows) dl.append(el('dt', '', k), el('dd', '', v));
  s.append(el('h3', '', heading), dl);
  return s;
}

/**
 * A titled bulleted list.
 * @param {string} heading
 * @param {string[]} items
 * @returns {HTMLElement}
 */
function listSection(heading, items) {
  const s = el('section', 'prop-section');
  const ul = el('ul', 'prop-items');
  for (const i of items) ul.append(el('li', '', i));
  s.append(el('h3', '', heading), ul);
  return s;
}
