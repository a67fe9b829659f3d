// Draws rooms of computers (free, in use, offline) for the availability
// page and the corridor screen; no dependence on the console's layout.

/**
 * @typedef {object} Computer
 * @property {number} [id]
 * @property {string} name
 * @property {'free' | 'in_use' | 'offline'} status
 * @property {string} [user] staff view only
 */

/**
 * @typedef {object} Room
 * @property {number} [id]
 * @property {string} name
 * @property {number} free
 * @property {number} in_use
 * @property {number} offline
 * @property {Computer[]} computers
 */

/** What each status is called. */
const WORDS = { free: 'Free', in_use: 'In use', offline: 'Offline' };

/**
 * An element with a class and text.
 * @param {string} tag
 * @param {string} className
 * @param {string} [text]
 * @returns {HTMLElement}
 */
function make(tag, className, text) {
  const node = document.createElement(tag);
  node.className = className;
  if (text !== undefined) node.textContent = text;
  return node;
}

/**
 * One count: a big number and its word.
 * @param {number} n
 * @param {'free' | 'in_use' | 'offline'} status
 * @returns {HTMLElement}
 */
function count(n, status) {
  const c = make('span', `av-count ${status}`);
  c.append(make('strong', '', String(n)), ` ${WORDS[status].toLowerCase()}`);
  return c;
}

/**
 * One room's section.
 * @param {Room} room
 * @param {number} index
 * @returns {HTMLElement}
 */
function roomSection(room, index) {
  const s = make('section', 'av-room');
  const headingId = `av-room-${index}`;
  s.setAttribute('aria-labelledby', headingId);
  const head = make('div', 'av-room-head');
  const h = make('h3', 'av-room-name', room.name);
  h.id = headingId;
  const counts = make('p', 'av-counts');
  counts.append(count(room.free, 'free'), count(room.in_use, 'in_use'), count(room.offline, 'offline'));
  head.append(h, counts);
  const tiles = make('ul', 'av-tiles');
  tiles.setAttribute('aria-label', `Computers in ${room.name}`);
  for (const c of room.computers) {
    const li = make('li', `av-tile ${c.status}`);
    li.append(make('span', 'av-tile-name', c.name), make('span', 'av-tile-status', WORDS[c.status]));
    if (c.user) li.append(make('span', 'av-tile-user', c.user));
    tiles.append(li);
  }
  s.append(head);
  if (room.computers.length) s.append(tiles);
  else s.append(make('p', 'av-empty', 'No computers in this room.'));
  return s;
}

/**
 * Draws `rooms` into `container`.
 * @param {HTMLElement} container
 * @param {Room[]} rooms
 */
export function drawRooms(container, rooms) {
  if (!rooms.length) {
    container.replaceChildren(make('p', 'av-empty', 'No rooms to show.'));
    return;
  }
  container.replaceChildren(...rooms.map(roomSection));
}

/**
 * Totals over rooms, in words.
 * @param {Room[]} rooms
 * @returns {string}
 */
export function totals(rooms) {
  const sum = (/** @type {'free' | 'in_use' | 'offline'} */ k) => rooms.reduce((n, r) => n + r[k], 0);
  return `${sum('free')} free, ${sum('in_use')} in use, ${sum('offline')} offline`;
}
