// Computer availability page (staff): each room the user may see with its
// computers free, in use (and by whom) or offline, refreshed every 10 s; an
// administrator's switch for the anonymous corridor screen.

import { api } from './api.js';
import { $, formatTime, hideNotice, initPage, showNotice } from './page.js';
import { drawRooms, totals } from './availability-view.js';

/** How often the rooms are fetched again, in milliseconds. */
const REFRESH_MS = 10000;

const publicBox = /** @type {HTMLInputElement} */ ($('av-public-on'));

/**
 * The error's text.
 * @param {unknown} e
 * @returns {string}
 */
function message(e) {
  return e instanceof Error ? e.message : String(e);
}

/** Fetches and draws the rooms. */
async function load() {
  try {
    const v = await api('GET', '/api/v1/availability');
    drawRooms($('av-rooms'), v.rooms);
    $('av-summary').textContent = `${v.rooms.length} room${v.rooms.length === 1 ? '' : 's'}: ${totals(v.rooms)}.`;
  } catch (e) {
    showNotice(message(e));
  }
}

/**
 * Shows the switch's state.
 * @param {{public: boolean, changed_by?: string | null, changed_at?: number | null}} s
 */
function showSwitch(s) {
  publicBox.checked = s.public;
  const by = s.changed_by ? ` Last changed by ${s.changed_by}, ${formatTime(s.changed_at)}.` : '';
  $('av-public-state').textContent = (s.public
    ? 'On: anyone who can reach the server sees this screen.'
    : 'Off: the screen asks visitors to sign in.') + ' Never user names, windows or screens.' + by;
}

/** Shows the corridor-screen switch to administrators. */
async function loadSwitch() {
  try {
    const s = await api('GET', '/api/v1/availability/settings');
    $('av-public').hidden = !s.may_change;
    if (s.screen) {
      const link = /** @type {HTMLAnchorElement} */ ($('av-public-link'));
      link.href = s.screen;
      link.textContent = s.screen;
    }
    showSwitch(s);
  } catch (e) {
    showNotice(message(e));
  }
}

publicBox.addEventListener('change', async () => {
  try {
    await api('PUT', '/api/v1/availability/settings', { public: publicBox.checked });
    hideNotice();
    await loadSwitch();
  } catch (e) {
    publicBox.checked = !publicBox.checked;
    showNotice(message(e));
  }
});

initPage('Computer availability');
void loadSwitch();
void load();
setInterval(() => { void load(); }, REFRESH_MS);
