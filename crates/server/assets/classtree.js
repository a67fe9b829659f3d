// The left-hand tree of classes (running lessons, rooms, user groups) the
// user may see, from `GET /api/v1/classes`, and the user's display
// preferences (`/api/v1/me/preferences`, kept on the server per school and
// user, so they follow the teacher to any computer).

import { api } from './api.js';
import { el } from './page.js';

/**
 * @typedef {{id: number, name: string | null, kind?: string, mine?: boolean, group_id?: number, teacher?: string, ends_at?: number, devices: number[]}} TreeEntry
 * @typedef {{groups: TreeEntry[], lessons: TreeEntry[], devices: Record<string, import('./grid.js').TileFacts>}} Tree
 * @typedef {{tile_size?: 'small' | 'medium' | 'large', sort?: 'name' | 'user' | 'status', class?: string}} Preferences
 */

/** How often the tree is reloaded (group members follow users and names). */
const REFRESH_MS = 30_000;

export class ClassTree {
  /**
   * @param {HTMLElement} nav the tree's `<nav>`
   * @param {(ids: Set<number> | null, key: string) => void} onSelect a class
   *   was chosen (null: all devices)
   * @param {(facts: Map<number, import('./grid.js').TileFacts>) => void} onFacts
   */
  constructor(nav, onSelect, onFacts) {
    this.nav = nav;
    this.onSelect = onSelect;
    this.onFacts = onFacts;
    /** The chosen entry: `all`, `group:<id>` or `lesson:<id>`. */
    this.current = 'all';
    /** Device ids per entry key. @type {Map<string, Set<number>>} */
    this.members = new Map();
    /** Group names per device id (for the properties panel). @type {Map<number, string[]>} */
    this.groupNames = new Map();
    /** @type {ReturnType<typeof setInterval> | null} */
    this.timer = null;
    nav.addEventListener('click', (event) => {
      const item = /** @type {HTMLElement} */ (event.target).closest('.tree-item');
      if (item) this.select(/** @type {HTMLElement} */ (item).dataset.class || 'all', true);
    });
  }

  /** Loads the tree now and every half minute. */
  start() {
    this.load();
    if (!this.timer) this.timer = setInterval(() => this.load(), REFRESH_MS);
  }

  /** Reloads the tree; keeps the old one when the server cannot be reached. */
  async load() {
    /** @type {Tree} */
    let tree;
    try {
      tree = await api('GET', '/api/v1/classes');
    } catch {
      return;
    }
    if (!tree || !Array.isArray(tree.groups)) return;
    this.#render(tree);
    /** @type {Map<number, import('./grid.js').TileFacts>} */
    const facts = new Map();
    for (const [id, f] of Object.entries(tree.devices || {})) facts.set(Number(id), { ...f, lesson: null });
    for (const l of tree.lessons) {
      for (const id of l.devices) facts.set(id, { ...(facts.get(id) || {}), lesson: l.name || 'a class' });
    }
    this.onFacts(facts);
    // The chosen class may have gone (deleted, access removed): back to all.
    if (!this.members.has(this.current)) this.current = 'all';
    this.select(this.current, false);
  }

  /**
   * Chooses an entry of the tree.
   * @param {string} key
   * @param {boolean} byUser whether the user chose it (then it is remembered)
   * @returns {boolean} whether the entry exists (else all devices are shown)
   */
  select(key, byUser) {
    const exists = key === 'all' || this.members.has(key);
    this.current = exists ? key : 'all';
    for (const item of this.nav.querySelectorAll('.tree-item')) {
      const on = /** @type {HTMLElement} */ (item).dataset.class === this.current;
      if (on) item.setAttribute('aria-current', 'true');
      else item.removeAttribute('aria-current');
    }
    this.onSelect(this.current === 'all' ? null : this.members.get(this.current) || new Set(), this.current);
    if (byUser) savePreferences({ class: this.current });
    return exists;
  }

  /**
   * Names of the tree's groups a device is in.
   * @param {number} id
   * @returns {string[]}
   */
  groupsOf(id) {
    return this.groupNames.get(id) || [];
  }

  /**
   * Sets the "All devices" count.
   * @param {number} total
   */
  setTotal(total) {
    const count = this.nav.querySelector('[data-class="all"] .count');
    if (count) count.textContent = String(total);
  }

  /**
   * Draws the lessons, rooms and user groups.
   * @param {Tree} tree
   */
  #render(tree) {
    this.members = new Map();
    this.groupNames = new Map();
    const rooms = tree.groups.filter((g) => g.kind === 'computer');
    // A rostered teacher's own classes come first, with a way to start a lesson.
    const mine = tree.groups.filter((g) => g.kind === 'user' && g.mine);
    const users = tree.groups.filter((g) => g.kind === 'user' && !g.mine);
    for (const g of tree.groups) {
      this.members.set(`group:${g.id}`, new Set(g.devices));
      for (const d of g.devices) this.groupNames.set(d, [...(this.groupNames.get(d) || []), g.name || '']);
    }
    for (const l of tree.lessons) this.members.set(`lesson:${l.id}`, new Set(l.devices));
    this.#fill('mine', mine.map((g) => [`group:${g.id}`, g.name || '', g.devices.length, '', g.id]));
    this.#fill('lessons', tree.lessons.map((l) => [`lesson:${l.id}`, l.name || 'Lesson', l.devices.length, lessonTitle(l)]));
    this.#fill('rooms', rooms.map((g) => [`group:${g.id}`, g.name || '', g.devices.length, '']));
    this.#fill('users', users.map((g) => [`group:${g.id}`, g.name || '', g.devices.length, '']));
  }

  /**
   * Fills one section; hides it when empty.
   * @param {string} section mine | lessons | rooms | users
   * @param {([string, string, number, string] | [string, string, number, string, number])[]} items key,
   *   name, count, tooltip, and for "My classes" the group a lesson can be started for
   */
  #fill(section, items) {
    const list = this.nav.querySelector(`#tree-${section}`);
    const head = this.nav.querySelector(`#tree-${section}-head`);
    if (!list || !head) return;
    list.replaceChildren(...items.map(([key, name, count, title, lessonGroup]) => {
      const button = el('button', 'tree-item');
      button.setAttribute('type', 'button');
      button.dataset.class = key;
      if (title) button.title = title;
      button.append(el('span', 'tree-name', name), el('span', 'count', String(count)));
      const li = el('li');
      li.append(button);
      if (lessonGroup) li.append(lessonLink(lessonGroup, name));
      return li;
    }));
    /** @type {HTMLElement} */ (list).hidden = items.length === 0;
    /** @type {HTMLElement} */ (head).hidden = items.length === 0;
  }
}

/**
 * The "Start lesson" link of one of the teacher's classes: the lessons page
 * with the class chosen.
 * @param {number} group
 * @param {string} name
 * @returns {HTMLAnchorElement}
 */
function lessonLink(group, name) {
  const a = /** @type {HTMLAnchorElement} */ (el('a', 'tree-action', 'Start lesson'));
  a.href = `/lessons?group=${group}`;
  a.dataset.right = 'lessons.manage';
  a.append(el('span', 'visually-hidden', ` for ${name}`));
  return a;
}

/**
 * "Lesson by ms.khan until 10:30".
 * @param {TreeEntry} l
 * @returns {string}
 */
function lessonTitle(l) {
  const until = l.ends_at ? ` until ${new Date(l.ends_at).toLocaleTimeString(undefined, { hour: '2-digit', minute: '2-digit' })}` : '';
  return `Lesson${l.teacher ? ` by ${l.teacher}` : ''}${until}`;
}

/**
 * The user's stored preferences ({} when none or unreachable).
 * @returns {Promise<Preferences>}
 */
export async function loadPreferences() {
  try {
    const p = await api('GET', '/api/v1/me/preferences');
    return p && typeof p === 'object' ? p : {};
  } catch {
    return {};
  }
}

/** Saves in flight, one after the other, so they arrive in the order made. */
let saving = Promise.resolve();

/**
 * Stores some preferences; a failure only costs the memory of the choice.
 * @param {Preferences} prefs
 * @returns {Promise<void>}
 */
export function savePreferences(prefs) {
  saving = saving.then(async () => {
    try {
      await api('PUT', '/api/v1/me/preferences', prefs);
    } catch {
      // Not worth a notice: the choice still applies on this page.
    }
  });
  return saving;
}
