// The corridor screen: rooms and their free / in-use / offline computers for
// anyone, without signing in, while the school has turned it on. Refreshes
// every 15 s (the server allows 30 requests a minute per address) and waits
// as long as the server asks when told to slow down.

import { drawRooms, totals } from './availability-view.js';

/** Normal refresh, in milliseconds. */
const REFRESH_MS = 15000;

/**
 * An element that the page is known to have.
 * @param {string} id
 * @returns {HTMLElement}
 */
function $(id) {
  const node = document.getElementById(id);
  if (!node) throw new Error(`this page lacks #${id}`);
  return node;
}

/**
 * Shows why nothing is shown.
 * @param {string} text
 */
function off(text) {
  $('av-off').textContent = text;
  $('av-off').hidden = false;
  $('av-rooms').replaceChildren();
  $('av-summary').textContent = '';
}

/**
 * Fetches and draws; returns when to fetch again, in milliseconds.
 * @returns {Promise<number>}
 */
async function load() {
  try {
    // The school named in the screen's own address (one server may host several).
    const school = new URLSearchParams(location.search).get('school');
    const url = school && /^\d+$/.test(school)
      ? `/api/v1/public/availability?school=${school}`
      : '/api/v1/public/availability';
    const r = await fetch(url, { cache: 'no-store', credentials: 'omit' });
    if (r.status === 429) return Number(r.headers.get('retry-after') ?? 60) * 1000;
    if (r.status === 409) {
      off('This screen is turned off. An administrator can turn it on in the console.');
      return REFRESH_MS;
    }
    if (!r.ok) {
      off('Availability is not available right now.');
      return REFRESH_MS;
    }
    const v = await r.json();
    $('av-off').hidden = true;
    $('av-school').textContent = `${v.school}: computer availability`;
    document.title = `Computer availability · ${v.school}`;
    drawRooms($('av-rooms'), v.rooms);
    $('av-summary').textContent = `${totals(v.rooms)}.`;
    $('av-updated').textContent = `Updated ${new Date().toLocaleTimeString(undefined, { hour: '2-digit', minute: '2-digit' })}`;
  } catch {
    off('Cannot reach the server; trying again.');
  }
  return REFRESH_MS;
}

async function loop() {
  const wait = await load();
  setTimeout(() => { void loop(); }, wait);
}

void loop();
