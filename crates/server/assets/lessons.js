// Lessons page: starts a timed lesson for a class (a group) with
// restrictions, lists the running lessons with "End now", and the recent
// ended ones.

import { api, ApiError } from './api.js';
import { $, el, fillSelect, formatTime, hideNotice, initPage, showNotice } from './page.js';
import { parsePatterns } from './weblists.js';

/**
 * @typedef {object} Lesson
 * @property {number} id
 * @property {number} group_id
 * @property {string} group_name
 * @property {string} teacher
 * @property {number} starts_at
 * @property {number} ends_at
 * @property {number | null} ended_at
 * @property {boolean} active
 * @property {Record<string, unknown>} restrictions
 */

/** How often the lists are reloaded (lessons also end on their own). */
const REFRESH_MS = 15_000;
/** How many ended lessons are listed. */
const RECENT_LIMIT = 20;
/** Longest lesson, in minutes. */
const MAX_MINUTES = 1440;

/** @type {Lesson[]} */
let lessons = [];

const groupSelect = /** @type {HTMLSelectElement} */ ($('lesson-group'));
const minutesInput = /** @type {HTMLInputElement} */ ($('lesson-minutes'));
const filterSelect = /** @type {HTMLSelectElement} */ ($('lesson-filter'));
const domainsArea = /** @type {HTMLTextAreaElement} */ ($('lesson-domains'));
const activeTable = /** @type {HTMLTableElement} */ ($('lessons-active'));
const recentTable = /** @type {HTMLTableElement} */ ($('lessons-recent'));

/**
 * A lesson's restrictions in words.
 * @param {Record<string, unknown>} r
 * @returns {string}
 */
function describeRestrictions(r) {
  const parts = [];
  if (r.screen_locked) parts.push('Screens locked');
  if (r.internet_blocked) parts.push('Internet blocked');
  const list = (key) => (Array.isArray(r[key]) && r[key].length ? `: ${r[key].join(', ')}` : '');
  if (r.web_filter_mode === 'allow_list') parts.push(`Allow list${list('allow_list')}`);
  else if (r.web_filter_mode === 'block_list') parts.push(`Block list${list('block_list')}`);
  return parts.length ? parts.join(' · ') : 'None';
}

/**
 * "in 12 min" for an end time.
 * @param {number} ms
 * @returns {string}
 */
function remaining(ms) {
  const min = Math.max(0, Math.ceil((ms - Date.now()) / 60_000));
  return min >= 60 ? `in ${Math.floor(min / 60)} h ${min % 60} min` : `in ${min} min`;
}

/**
 * A table row for a lesson.
 * @param {Lesson} lesson
 * @param {boolean} active
 * @returns {HTMLTableRowElement}
 */
function lessonRow(lesson, active) {
  const tr = /** @type {HTMLTableRowElement} */ (el('tr'));
  tr.dataset.lessonId = String(lesson.id);
  tr.dataset.groupId = String(lesson.group_id);
  const ends = el('td', 'ends');
  if (active) {
    ends.textContent = `${formatTime(lesson.ends_at)} (${remaining(lesson.ends_at)})`;
  } else {
    ends.textContent = formatTime(lesson.ended_at || lesson.ends_at);
  }
  tr.append(
    el('td', 'group', lesson.group_name),
    el('td', 'teacher', lesson.teacher),
    el('td', 'starts', formatTime(lesson.starts_at)),
    ends,
    el('td', 'restrictions', describeRestrictions(lesson.restrictions || {})),
  );
  if (active) {
    const cell = el('td', 'row-actions');
    const end = /** @type {HTMLButtonElement} */ (el('button', 'lesson-end danger', 'End now'));
    end.type = 'button';
    end.addEventListener('click', () => endLesson(lesson, end));
    cell.append(end);
    tr.append(cell);
  }
  return tr;
}

/** Redraws both lists. */
function render() {
  const active = lessons.filter((l) => l.active).sort((a, b) => a.ends_at - b.ends_at);
  const recent = lessons
    .filter((l) => !l.active)
    .sort((a, b) => (b.ended_at || b.ends_at) - (a.ended_at || a.ends_at))
    .slice(0, RECENT_LIMIT);
  activeTable.tBodies[0].replaceChildren(...active.map((l) => lessonRow(l, true)));
  recentTable.tBodies[0].replaceChildren(...recent.map((l) => lessonRow(l, false)));
  activeTable.hidden = active.length === 0;
  recentTable.hidden = recent.length === 0;
  $('lessons-active-empty').hidden = active.length > 0;
  $('lessons-recent-empty').hidden = recent.length > 0;
}

/**
 * Reloads the lessons.
 * @param {boolean} [quiet] no notice when it fails
 */
async function loadLessons(quiet = false) {
  try {
    const list = await api('GET', '/api/v1/lessons');
    lessons = Array.isArray(list) ? list : [];
    render();
  } catch (err) {
    if (!quiet) showNotice(`Could not load the lessons: ${err.message}`);
  }
}

/**
 * The groups a lesson can be for: every group but the restriction groups,
 * or, for a teacher who may not list groups (a rostered teacher holds only
 * what their classes need), the classes of their classroom tree.
 * @returns {Promise<{id: number, name: string}[]>}
 */
async function lessonClasses() {
  try {
    const groups = await api('GET', '/api/v1/groups');
    return (Array.isArray(groups) ? groups : []).filter((g) => g.kind !== 'restriction');
  } catch (err) {
    if (!(err instanceof ApiError) || err.status !== 403) throw err;
    const tree = await api('GET', '/api/v1/classes');
    return (tree && Array.isArray(tree.groups) ? tree.groups : []).map((g) => ({ id: g.id, name: g.name || '' }));
  }
}

/** Fills the class list with the groups a lesson can be for. */
async function loadGroups() {
  try {
    const classes = await lessonClasses();
    // "Start lesson" in the classroom tree's "My classes" links here with ?group=.
    const wanted = new URLSearchParams(location.search).get('group') || '';
    const chosen = classes.some((g) => String(g.id) === wanted) ? wanted : '';
    fillSelect(groupSelect, [['', 'Choose a class…'], ...classes.map((g) => /** @type {[string, string]} */ ([String(g.id), g.name]))], chosen);
  } catch (err) {
    showNotice(`Could not load the groups: ${err.message}`);
  }
}

/**
 * The restrictions ticked in the form, or a message saying what is wrong.
 * Only restrictions that are on are sent.
 * @returns {Record<string, unknown> | string}
 */
function readRestrictions() {
  /** @type {Record<string, unknown>} */
  const r = {};
  if (/** @type {HTMLInputElement} */ ($('lesson-lock')).checked) r.screen_locked = true;
  if (/** @type {HTMLInputElement} */ ($('lesson-internet')).checked) r.internet_blocked = true;
  const mode = filterSelect.value;
  if (mode !== 'off') {
    const { patterns: domains, bad } = parsePatterns(domainsArea.value);
    if (bad.length) return `Not a site pattern: ${bad[0]}; use names like example.org or *.example.org, one a line`;
    if (!domains.length) return `Type the sites for the ${mode === 'allow_list' ? 'allow' : 'block'} list, one a line`;
    r.web_filter_mode = mode;
    r[mode] = domains;
  }
  return r;
}

/**
 * Starts a lesson from the form.
 * @param {SubmitEvent} event
 */
async function start(event) {
  event.preventDefault();
  const groupId = Number(groupSelect.value);
  if (!groupId) {
    showNotice('Choose the class first');
    groupSelect.focus();
    return;
  }
  const minutes = Number(minutesInput.value);
  if (!Number.isInteger(minutes) || minutes < 1 || minutes > MAX_MINUTES) {
    showNotice(`The duration is a whole number of minutes from 1 to ${MAX_MINUTES}`);
    minutesInput.focus();
    return;
  }
  const restrictions = readRestrictions();
  if (typeof restrictions === 'string') {
    showNotice(restrictions);
    return;
  }
  // A lesson with nothing ticked would change nothing (the server refuses it too).
  if (!Object.keys(restrictions).length) {
    showNotice('Tick at least one restriction: lock screens, block the internet, or a web filter');
    return;
  }
  hideNotice();
  const button = /** @type {HTMLButtonElement} */ ($('lesson-start'));
  button.disabled = true;
  try {
    const lesson = await api('POST', '/api/v1/lessons', { group_id: groupId, minutes, restrictions });
    lessons = lessons.filter((l) => l.id !== lesson.id);
    lessons.push(lesson);
    render();
    showNotice(`Lesson started for ${lesson.group_name}, until ${formatTime(lesson.ends_at)}`, 'info');
  } catch (err) {
    // 409: the class already has a lesson (the message names it); show the
    // running lessons as they are now.
    if (err instanceof ApiError && err.status === 409) loadLessons(true);
    showNotice(`Could not start the lesson: ${err.message}`);
  } finally {
    button.disabled = false;
  }
}

/**
 * Ends a running lesson now.
 * @param {Lesson} lesson
 * @param {HTMLButtonElement} button
 */
async function endLesson(lesson, button) {
  hideNotice();
  button.disabled = true;
  try {
    const ended = await api('POST', `/api/v1/lessons/${lesson.id}/end`);
    if (ended && typeof ended === 'object') {
      lessons = lessons.map((l) => (l.id === lesson.id ? ended : l));
      render();
    } else {
      await loadLessons();
    }
    showNotice(`Lesson for ${lesson.group_name} ended`, 'info');
  } catch (err) {
    button.disabled = false;
    showNotice(`Could not end the lesson: ${err.message}`);
  }
}

/** Enables the sites box only with a web filter. */
function onFilterChange() {
  domainsArea.disabled = filterSelect.value === 'off';
}

/** Hooks up the page and starts loading. */
function main() {
  initPage('Lessons');
  $('lesson-form').addEventListener('submit', start);
  filterSelect.addEventListener('change', onFilterChange);
  onFilterChange();
  loadGroups();
  loadLessons();
  setInterval(() => {
    if (document.visibilityState !== 'hidden') loadLessons(true);
  }, REFRESH_MS);
}

main();
