// Timetable page: a week grid (periods × days) of room bookings and
// scheduled lessons, with forms to book a room, schedule a lesson (once or
// weekly) and, for administrators, edit the periods. The server judges
// every request; the sections show by the user's rights (data-right).

import { api } from './api.js';
import { $, el, fillSelect, hideNotice, holds, initPage, showNotice } from './page.js';

/**
 * @typedef {object} Period
 * @property {number} id
 * @property {string} name
 * @property {string} start
 * @property {string} end
 * @property {number[]} days
 *
 * @typedef {object} Booking
 * @property {number} id
 * @property {number} group_id
 * @property {string} room
 * @property {string} day
 * @property {number} period_id
 * @property {string} booked_by
 * @property {string} note
 * @property {boolean} can_cancel
 *
 * @typedef {object} Occurrence
 * @property {number} id
 * @property {string} class
 * @property {string} day
 * @property {number} period_id
 * @property {string} teacher
 * @property {string} status
 * @property {{repeat: string}} repeat
 * @property {boolean} can_cancel
 *
 * @typedef {object} Week
 * @property {string} start
 * @property {string} today
 * @property {{day: string, weekday: number}[]} days
 * @property {Period[]} periods
 * @property {{id: number, name: string}[]} rooms
 * @property {{id: number, name: string}[]} classes
 * @property {Booking[]} bookings
 * @property {Occurrence[]} lessons
 */

const WEEKDAYS = ['Monday', 'Tuesday', 'Wednesday', 'Thursday', 'Friday', 'Saturday', 'Sunday'];
const SHORT = ['Mon', 'Tue', 'Wed', 'Thu', 'Fri', 'Sat', 'Sun'];
/** How often the grid reloads (lessons start and end by themselves). */
const REFRESH_MS = 30_000;
/** What each status reads as. */
const STATUS = /** @type {Record<string, string>} */ ({
  planned: 'Planned',
  running: 'Running now',
  ended: 'Done',
  cancelled: 'Cancelled',
  clash: 'Not started: the class had a lesson',
  missed: 'Missed',
  refused: 'Not started: the teacher may no longer run it',
  due: 'Starting',
  started: 'Running now',
});

/** @type {Week | null} */
let week = null;
/** The week shown: its first day, or null for the current week. @type {string | null} */
let shownStart = null;

const grid = /** @type {HTMLTableElement} */ ($('week-grid'));

/**
 * "Tue 8 Jan" for a YYYY-MM-DD day.
 * @param {string} day
 * @param {number} weekday
 * @returns {string}
 */
function dayLabel(day, weekday) {
  const [y, m, d] = day.split('-').map(Number);
  const month = new Date(y, m - 1, d).toLocaleDateString(undefined, { month: 'short' });
  return `${SHORT[weekday]} ${d} ${month}`;
}

/**
 * A YYYY-MM-DD day moved by `n` days.
 * @param {string} day
 * @param {number} n
 * @returns {string}
 */
function addDays(day, n) {
  const [y, m, d] = day.split('-').map(Number);
  const t = new Date(Date.UTC(y, m - 1, d + n));
  return t.toISOString().slice(0, 10);
}

/**
 * A small button inside a grid entry.
 * @param {string} text
 * @param {string} label the accessible name
 * @param {() => void} onClick
 * @returns {HTMLButtonElement}
 */
function entryButton(text, label, onClick) {
  const b = /** @type {HTMLButtonElement} */ (el('button', 'danger', text));
  b.type = 'button';
  b.setAttribute('aria-label', label);
  b.addEventListener('click', onClick);
  return b;
}

/**
 * A booking in a grid cell.
 * @param {Booking} b
 * @param {string} when e.g. "Tue 8 Jan, Period 1"
 * @returns {HTMLElement}
 */
function bookingEntry(b, when) {
  const e = el('div', 'entry booking');
  e.dataset.bookingId = String(b.id);
  e.append(el('span', 'what', b.room), el('span', 'by', `booked by ${b.booked_by}`));
  if (b.note) e.append(el('span', 'note', `· ${b.note}`));
  if (b.can_cancel) {
    e.append(entryButton('Cancel', `Cancel the booking of ${b.room} on ${when}`, () => cancelBooking(b)));
  }
  return e;
}

/**
 * A scheduled lesson's occurrence in a grid cell.
 * @param {Occurrence} l
 * @param {string} when
 * @returns {HTMLElement}
 */
function lessonEntry(l, when) {
  const e = el('div', 'entry lesson');
  e.dataset.scheduleId = String(l.id);
  e.dataset.status = l.status;
  const weekly = l.repeat.repeat === 'weekly' ? ' (weekly)' : '';
  e.append(
    el('span', 'what', `Lesson: ${l.class}`),
    el('span', 'by', `${l.teacher}${weekly}`),
    el('span', 'status', STATUS[l.status] || l.status),
  );
  if (l.can_cancel && (l.status === 'planned' || l.status === 'running')) {
    e.append(entryButton('Cancel', `Cancel ${l.class}’s lesson on ${when}`, () => cancelOccurrence(l)));
    if (l.repeat.repeat === 'weekly') {
      e.append(entryButton('Cancel series', `Cancel every week of ${l.class}’s lesson`, () => cancelSeries(l)));
    }
  }
  return e;
}

/** Redraws the week grid. */
function renderGrid() {
  if (!week) return;
  const w = week;
  $('week-heading').textContent = `Week of ${dayLabel(w.days[0].day, w.days[0].weekday)} – ${dayLabel(w.days[6].day, w.days[6].weekday)}`;
  const head = grid.tHead?.rows[0];
  if (!head) return;
  const corner = el('th', '', 'Period');
  corner.setAttribute('scope', 'col');
  head.replaceChildren(corner, ...w.days.map((d) => {
    const th = el('th', d.day === w.today ? 'today' : '', dayLabel(d.day, d.weekday));
    th.setAttribute('scope', 'col');
    return th;
  }));
  const rows = w.periods.map((p) => {
    const tr = /** @type {HTMLTableRowElement} */ (el('tr'));
    tr.dataset.periodId = String(p.id);
    const th = el('th', '', p.name);
    th.setAttribute('scope', 'row');
    th.append(el('span', 'times', `${p.start}–${p.end}`));
    tr.append(th);
    for (const d of w.days) {
      const td = el('td', d.day === w.today ? 'today' : '');
      td.dataset.day = d.day;
      if (p.days.includes(d.weekday)) {
        const when = `${dayLabel(d.day, d.weekday)}, ${p.name}`;
        const slot = el('div', 'slot');
        slot.append(
          ...w.bookings.filter((b) => b.day === d.day && b.period_id === p.id).map((b) => bookingEntry(b, when)),
          ...w.lessons.filter((l) => l.day === d.day && l.period_id === p.id).map((l) => lessonEntry(l, when)),
        );
        td.append(slot);
      } else {
        td.append(el('span', 'visually-hidden', 'No period'));
      }
      tr.append(td);
    }
    return tr;
  });
  grid.tBodies[0].replaceChildren(...rows);
  grid.hidden = w.periods.length === 0;
  $('week-empty').hidden = w.periods.length > 0;
}

/** Fills the forms' choices from the week. */
function renderChoices() {
  if (!week) return;
  const periods = week.periods.map((p) => /** @type {[string, string]} */ ([String(p.id), `${p.name} (${p.start}–${p.end})`]));
  for (const id of ['book-period', 'schedule-period']) {
    const select = /** @type {HTMLSelectElement} */ ($(id));
    fillSelect(select, [['', 'Choose a period…'], ...periods], select.value);
  }
  const room = /** @type {HTMLSelectElement} */ ($('book-room'));
  fillSelect(room, [['', 'Choose a room…'], ...week.rooms.map((r) => /** @type {[string, string]} */ ([String(r.id), r.name]))], room.value);
  const cls = /** @type {HTMLSelectElement} */ ($('schedule-class'));
  fillSelect(cls, [['', 'Choose a class…'], ...week.classes.map((c) => /** @type {[string, string]} */ ([String(c.id), c.name]))], cls.value);
  for (const id of ['book-day', 'schedule-day', 'schedule-from']) {
    const input = /** @type {HTMLInputElement} */ ($(id));
    if (!input.value) input.value = week.today;
  }
  const until = /** @type {HTMLInputElement} */ ($('schedule-until'));
  if (!until.value) until.value = addDays(week.today, 7 * 12);
  renderPeriods();
}

/** The administrators' list of periods. */
function renderPeriods() {
  if (!week) return;
  const table = /** @type {HTMLTableElement} */ ($('periods-table'));
  table.tBodies[0].replaceChildren(...week.periods.map((p) => {
    const tr = /** @type {HTMLTableRowElement} */ (el('tr'));
    tr.dataset.periodId = String(p.id);
    const cell = el('td', 'row-actions');
    cell.append(entryButton('Delete', `Delete ${p.name}`, () => deletePeriod(p)));
    tr.append(
      el('td', '', p.name),
      el('td', '', `${p.start}–${p.end}`),
      el('td', '', p.days.map((d) => SHORT[d]).join(' ')),
      cell,
    );
    return tr;
  }));
  table.hidden = week.periods.length === 0;
}

/**
 * Loads the shown week.
 * @param {boolean} [quiet] no notice when it fails
 */
async function loadWeek(quiet = false) {
  try {
    const query = shownStart ? `?start=${encodeURIComponent(shownStart)}` : '';
    week = /** @type {Week} */ (await api('GET', `/api/v1/timetable/week${query}`));
    shownStart = week.start;
    renderGrid();
    renderChoices();
  } catch (err) {
    if (!quiet) showNotice(`Could not load the timetable: ${err.message}`);
  }
}

/**
 * Runs a change, then reloads the week; shows the server's sentence if it
 * is refused.
 * @param {() => Promise<unknown>} run
 * @param {string} done the notice on success
 * @param {() => void} [cleared] clears the form, at once with the notice:
 *   after the week's reload it would wipe what the user typed meanwhile
 * @returns {Promise<boolean>}
 */
async function change(run, done, cleared) {
  hideNotice();
  try {
    await run();
  } catch (err) {
    showNotice(err.message);
    return false;
  }
  showNotice(done, 'info');
  cleared?.();
  await loadWeek(true);
  return true;
}

/** @param {Booking} b */
function cancelBooking(b) {
  if (!confirm(`Cancel the booking of ${b.room} on ${b.day}?`)) return;
  change(() => api('DELETE', `/api/v1/timetable/bookings/${b.id}`), `The booking of ${b.room} is cancelled.`);
}

/** @param {Occurrence} l */
function cancelOccurrence(l) {
  if (!confirm(`Cancel ${l.class}’s lesson on ${l.day}?`)) return;
  change(() => api('POST', `/api/v1/timetable/lessons/${l.id}/cancel`, { day: l.day }), `${l.class}’s lesson on ${l.day} is cancelled.`);
}

/** @param {Occurrence} l */
function cancelSeries(l) {
  if (!confirm(`Cancel every week of ${l.class}’s lesson?`)) return;
  change(() => api('DELETE', `/api/v1/timetable/lessons/${l.id}`), `${l.class}’s weekly lesson is cancelled.`);
}

/** @param {Period} p */
function deletePeriod(p) {
  if (!confirm(`Delete ${p.name}?`)) return;
  change(() => api('DELETE', `/api/v1/timetable/periods/${p.id}`), `${p.name} is deleted.`);
}

/**
 * A select's value as a number, or a notice naming what to choose.
 * @param {string} id
 * @param {string} what
 * @returns {number | null}
 */
function chosen(id, what) {
  const value = Number(/** @type {HTMLSelectElement} */ ($(id)).value);
  if (!value) {
    showNotice(`Choose ${what}.`);
    $(id).focus();
    return null;
  }
  return value;
}

/** @param {SubmitEvent} ev */
async function book(ev) {
  ev.preventDefault();
  const room = chosen('book-room', 'a room');
  const period = room && chosen('book-period', 'a period');
  if (!room || !period) return;
  const day = /** @type {HTMLInputElement} */ ($('book-day')).value;
  const note = /** @type {HTMLInputElement} */ ($('book-note')).value;
  const ok = await change(
    () => api('POST', '/api/v1/timetable/bookings', { group_id: room, day, period_id: period, note }),
    'The room is booked.',
  );
  if (ok) /** @type {HTMLInputElement} */ ($('book-note')).value = '';
}

/** @param {SubmitEvent} ev */
async function schedule(ev) {
  ev.preventDefault();
  const cls = chosen('schedule-class', 'a class');
  const period = cls && chosen('schedule-period', 'a period');
  if (!cls || !period) return;
  /** @type {Record<string, unknown>} */
  const restrictions = {};
  if (/** @type {HTMLInputElement} */ ($('schedule-lock')).checked) restrictions.screen_locked = true;
  if (/** @type {HTMLInputElement} */ ($('schedule-internet')).checked) restrictions.internet_blocked = true;
  /** @type {Record<string, unknown>} */
  const body = { group_id: cls, period_id: period, restrictions };
  const value = (/** @type {string} */ id) => /** @type {HTMLInputElement} */ ($(id)).value;
  if (value('schedule-repeat') === 'weekly') {
    body.weekday = Number(value('schedule-weekday'));
    body.from = value('schedule-from');
    body.until = value('schedule-until');
  } else {
    body.day = value('schedule-day');
  }
  await change(() => api('POST', '/api/v1/timetable/lessons', body), 'The lesson is scheduled.');
}

/** @param {SubmitEvent} ev */
async function addPeriod(ev) {
  ev.preventDefault();
  const value = (/** @type {string} */ id) => /** @type {HTMLInputElement} */ ($(id)).value;
  const days = [...document.querySelectorAll('#period-days input:checked')].map((c) => Number(/** @type {HTMLInputElement} */ (c).value));
  await change(
    () => api('POST', '/api/v1/timetable/periods', { name: value('period-name'), start: value('period-start'), end: value('period-end'), days }),
    `${value('period-name')} is added.`,
    () => { /** @type {HTMLInputElement} */ ($('period-name')).value = ''; },
  );
}

/** Shows the fields of the chosen repeat. */
function showRepeat() {
  const weekly = /** @type {HTMLSelectElement} */ ($('schedule-repeat')).value === 'weekly';
  for (const n of document.querySelectorAll('.weekly-only')) /** @type {HTMLElement} */ (n).hidden = !weekly;
  for (const n of document.querySelectorAll('.once-only')) /** @type {HTMLElement} */ (n).hidden = weekly;
}

/** The weekday check boxes and the weekday choice. */
function buildDayControls() {
  $('period-days').replaceChildren(...WEEKDAYS.map((name, i) => {
    const label = el('label', 'checkbox');
    const box = /** @type {HTMLInputElement} */ (el('input'));
    box.type = 'checkbox';
    box.value = String(i);
    box.checked = i < 5;
    label.append(box, ` ${name}`);
    return label;
  }));
  fillSelect(/** @type {HTMLSelectElement} */ ($('schedule-weekday')), WEEKDAYS.map((n, i) => /** @type {[string, string]} */ ([String(i), n])), '0');
}

/**
 * Moves the grid by `n` weeks (0: this week).
 * @param {number} n
 */
function moveWeek(n) {
  shownStart = n === 0 || !week ? null : addDays(week.start, 7 * n);
  loadWeek();
}

/** Wires the page up and loads the week. */
async function main() {
  initPage('Timetable');
  buildDayControls();
  showRepeat();
  $('week-prev').addEventListener('click', () => moveWeek(-1));
  $('week-this').addEventListener('click', () => moveWeek(0));
  $('week-next').addEventListener('click', () => moveWeek(1));
  $('book-form').addEventListener('submit', book);
  $('schedule-form').addEventListener('submit', schedule);
  $('period-form').addEventListener('submit', addPeriod);
  $('schedule-repeat').addEventListener('change', showRepeat);
  if (!holds('timetable.manage')) $('periods-table').hidden = true;
  await loadWeek();
  setInterval(() => {
    if (document.visibilityState !== 'hidden') loadWeek(true);
  }, REFRESH_MS);
}

main();
