// The Safeguarding section's landing page: for a period (7, 30 or 90 days,
// or chosen dates) and a group, violations per day by category and by
// severity, the most-flagged users and sites, activity by hour of the day,
// and (once violations have a review status) cases by status. Every bar
// leads to the log filtered to it; each chart downloads as PNG or CSV, and
// the page prints one chart per block for a governors' report.
//
// The period and group live in the address (`/safeguarding?period=7&group=3`,
// `?period=custom&from=2026-11-01&to=2026-11-30`), so a view can be shared.

import { api } from './api.js';
import { chart, download, toPng } from './charts.js';
import { $, el, fillSelect, hideNotice, showNotice } from './page.js';
import { SEVERITY_LABELS, initSafetyPage } from './safety.js';

/**
 * @typedef {object} Summary
 * @property {number} from
 * @property {number} to
 * @property {number | null} group
 * @property {{id: number, name: string, kind: string}[]} groups
 * @property {number} violations
 * @property {number} activity
 * @property {{day: string, category: string, severity: number, count: number}[]} by_day
 * @property {{name: string | null, count: number}[]} top_users
 * @property {{name: string | null, count: number}[]} top_sites
 * @property {number[]} by_hour
 * @property {{name: string | null, count: number}[]} by_status
 */

const DAY_MS = 24 * 60 * 60 * 1000;
/** Above this many days, bars are weeks. */
const MAX_DAY_BARS = 92;
const CATEGORY_COLORS = ['#1f5fd1', '#c8283c', '#d99500', '#00798c', '#6c4ab6', '#3f8f3a', '#b85c00', '#5b6577'];
const SEVERITY_COLORS = ['', '#8a93a6', '#4a7fd6', '#e3bc12', '#e06c00', '#b3202a'];
const STATUS_LABELS = {
  new: 'New', in_review: 'In review', no_concern: 'No concern', escalated: 'Escalated', closed: 'Closed',
};

const form = /** @type {HTMLFormElement} */ ($('dash-form'));
const periodSelect = /** @type {HTMLSelectElement} */ ($('dash-period'));
const fromInput = /** @type {HTMLInputElement} */ ($('dash-from'));
const toInput = /** @type {HTMLInputElement} */ ($('dash-to'));
const groupSelect = /** @type {HTMLSelectElement} */ ($('dash-group'));

/** The drawn charts by name, for PNG and CSV. @type {Map<string, {svg: SVGElement, csv: () => string}>} */
const drawn = new Map();
/** Ignores answers to older loads. */
let loadSerial = 0;
/** The figures drawn (redrawn at a new width). @type {Summary | null} */
let shown = null;
/** The pending redraw after a resize. @type {number | undefined} */
let resizeTimer;

/**
 * `YYYY-MM-DD` of a local date.
 * @param {Date} d
 * @returns {string}
 */
function isoDay(d) {
  const pad = (/** @type {number} */ n) => String(n).padStart(2, '0');
  return `${d.getFullYear()}-${pad(d.getMonth() + 1)}-${pad(d.getDate())}`;
}

/**
 * `YYYY-MM-DDTHH:MM` of a moment, local time (what the log's filters take).
 * @param {number} ms
 * @returns {string}
 */
function localMinute(ms) {
  const d = new Date(ms);
  return `${isoDay(d)}T${String(d.getHours()).padStart(2, '0')}:${String(d.getMinutes()).padStart(2, '0')}`;
}

/**
 * Local midnight starting the day `YYYY-MM-DD`.
 * @param {string} day
 * @returns {number}
 */
function dayStart(day) {
  const [y, m, d] = day.split('-').map(Number);
  return new Date(y, m - 1, d).getTime();
}

/**
 * The period the form asks for, ms (to exclusive), or an error sentence.
 * @returns {{from: number, to: number} | string}
 */
function period() {
  if (periodSelect.value !== 'custom') {
    // The last N days: whole days, today included, so there are N day bars.
    const today = new Date();
    const from = new Date(today.getFullYear(), today.getMonth(), today.getDate() - Number(periodSelect.value) + 1).getTime();
    return { from, to: Date.now() };
  }
  if (!fromInput.value || !toInput.value) return 'Choose both dates.';
  const from = dayStart(fromInput.value);
  const last = new Date(dayStart(toInput.value));
  const to = new Date(last.getFullYear(), last.getMonth(), last.getDate() + 1).getTime();
  if (!(from < to)) return 'The first date must be on or before the last.';
  if (to - from > 366 * DAY_MS) return 'Choose at most 366 days.';
  return { from, to };
}

/**
 * A link into the safeguarding log with these filters and the page's group.
 * @param {Record<string, string | null | undefined>} filters
 * @returns {string}
 */
function logsUrl(filters) {
  const q = new URLSearchParams();
  for (const [k, v] of Object.entries(filters)) if (v) q.set(k, v);
  if (groupSelect.value) q.set('group', groupSelect.value);
  return `/logs?${q}`;
}

/**
 * The bars of the time charts: days, or weeks (from Monday) for long
 * periods, each with its first day and the day after its last.
 * @param {number} from
 * @param {number} to
 * @returns {{key: string, label: string, start: string, end: string}[]}
 */
function timeBuckets(from, to) {
  const first = new Date(from);
  const last = new Date(to - 1);
  const days = [];
  for (let d = new Date(first.getFullYear(), first.getMonth(), first.getDate()); d <= last;
    d = new Date(d.getFullYear(), d.getMonth(), d.getDate() + 1)) {
    days.push(new Date(d));
  }
  const weeks = days.length > MAX_DAY_BARS;
  /** @type {{key: string, label: string, start: string, end: string}[]} */
  const out = [];
  for (const d of days) {
    const startOf = weeks ? new Date(d.getFullYear(), d.getMonth(), d.getDate() - ((d.getDay() + 6) % 7)) : d;
    const key = isoDay(startOf);
    const next = new Date(d.getFullYear(), d.getMonth(), d.getDate() + 1);
    const prev = out[out.length - 1];
    if (prev && prev.key === key) {
      prev.end = isoDay(next);
      continue;
    }
    const label = startOf.toLocaleDateString(undefined, { day: 'numeric', month: 'short' });
    out.push({ key, label: weeks ? `w/c ${label}` : label, start: isoDay(d), end: isoDay(next) });
  }
  return out;
}

/**
 * The bucket index of each day of the period.
 * @param {{key: string, start: string, end: string}[]} buckets
 * @returns {Map<string, number>}
 */
function dayIndex(buckets) {
  const index = new Map();
  buckets.forEach((b, i) => {
    for (let t = dayStart(b.start); t < dayStart(b.end); t = dayStart(isoDay(new Date(t + 36 * 60 * 60 * 1000)))) {
      index.set(isoDay(new Date(t)), i);
    }
  });
  return index;
}

/**
 * Puts a chart in its card.
 * @param {string} name
 * @param {import('./charts.js').ChartSpec} spec
 */
function place(name, spec) {
  // Drawn at the width it is shown at, so its text is the page's size.
  const width = $(`chart-${name}`).clientWidth;
  const made = chart({ ...spec, width: Math.max(360, Math.min(1400, width || 640)) });
  drawn.set(name, made);
  $(`chart-${name}`).replaceChildren(made.figure);
}

/**
 * An empty chart's sentence.
 * @param {string} name
 * @param {string} text
 */
function empty(name, text) {
  drawn.delete(name);
  $(`chart-${name}`).replaceChildren(el('p', 'chart-empty', text));
}

/**
 * Violations per bucket, stacked by category and by severity.
 * @param {Summary} s
 */
function drawTime(s) {
  const buckets = timeBuckets(s.from, s.to);
  const index = dayIndex(buckets);
  const labels = buckets.map((b) => b.label);
  const byCategory = new Map();
  const bySeverity = new Map();
  for (const row of s.by_day) {
    const i = index.get(row.day);
    if (i === undefined) continue;
    for (const [map, key] of /** @type {[Map<string | number, number[]>, string | number][]} */ ([[byCategory, row.category], [bySeverity, row.severity]])) {
      if (!map.has(key)) map.set(key, new Array(buckets.length).fill(0));
      /** @type {number[]} */ (map.get(key))[i] += row.count;
    }
  }
  const unit = buckets.length && buckets[0].label.startsWith('w/c') ? 'week' : 'day';
  if (!s.violations) {
    empty('category', 'No violations in this period.');
    empty('severity', 'No violations in this period.');
    return;
  }
  const categories = [...byCategory.entries()]
    .sort((a, b) => b[1].reduce((x, y) => x + y, 0) - a[1].reduce((x, y) => x + y, 0) || String(a[0]).localeCompare(String(b[0])));
  place('category', {
    id: 'svg-category',
    title: `Violations per ${unit} by category`,
    description: `${s.violations.toLocaleString()} violations, stacked by category: ${categories.map(([c, v]) => `${c} ${v.reduce((x, y) => x + y, 0)}`).join(', ')}.`,
    labels,
    labelHeading: unit === 'week' ? 'Week' : 'Day',
    series: categories.map(([name, values], i) => ({ name: String(name), values, color: CATEGORY_COLORS[i % CATEGORY_COLORS.length] })),
    href: (i, si) => logsUrl({ category: String(categories[si][0]), from: buckets[i].start, to: buckets[i].end }),
  });
  const severities = [...bySeverity.entries()].sort((a, b) => Number(a[0]) - Number(b[0]));
  place('severity', {
    id: 'svg-severity',
    title: `Violations per ${unit} by severity`,
    description: `Stacked by severity: ${severities.map(([n, v]) => `${n} ${SEVERITY_LABELS[Number(n)]} ${v.reduce((x, y) => x + y, 0)}`).join(', ')}.`,
    labels,
    labelHeading: unit === 'week' ? 'Week' : 'Day',
    series: severities.map(([n, values]) => ({ name: `${n} ${SEVERITY_LABELS[Number(n)]}`, values, color: SEVERITY_COLORS[Number(n)] })),
    href: (i, si) => logsUrl({ severity: String(severities[si][0]), from: buckets[i].start, to: buckets[i].end }),
  });
}

/**
 * A top-10 list as horizontal bars.
 * @param {string} name
 * @param {string} title
 * @param {{name: string | null, count: number}[]} rows
 * @param {string} nobody the label of rows without a name
 * @param {(row: {name: string | null}) => string} href
 * @param {string} color
 */
function drawTop(name, title, rows, nobody, href, color) {
  if (!rows.length) {
    empty(name, 'No violations in this period.');
    return;
  }
  const labels = rows.map((r) => r.name ?? nobody);
  place(name, {
    id: `svg-${name}`,
    title,
    description: rows.map((r, i) => `${labels[i]}: ${r.count}`).join(', '),
    labels,
    labelHeading: title.includes('users') ? 'User' : 'Site',
    direction: 'horizontal',
    series: [{ name: 'Violations', values: rows.map((r) => r.count), color }],
    href: (i) => href(rows[i]),
  });
}

/**
 * Activity events per hour of the day.
 * @param {Summary} s
 */
function drawHours(s) {
  if (!s.activity) {
    empty('hours', 'No activity in this period.');
    return;
  }
  const busiest = s.by_hour.indexOf(Math.max(...s.by_hour));
  place('hours', {
    id: 'svg-hours',
    title: 'Activity events by hour of the day',
    description: `${s.activity.toLocaleString()} events; the busiest hour starts at ${String(busiest).padStart(2, '0')}:00.`,
    labels: s.by_hour.map((_, h) => String(h).padStart(2, '0')),
    labelHeading: 'Hour',
    series: [{ name: 'Events', values: s.by_hour, color: '#00798c' }],
    // The log cannot filter by hour of the day: each bar opens the period's activity.
    href: () => logsUrl({ tab: 'activity', from: localMinute(s.from), to: localMinute(s.to + 59_999) }),
  });
}

/**
 * Cases by review status; each bar opens the log of that status.
 * @param {Summary} s
 */
function drawStatus(s) {
  const rows = s.by_status;
  if (!rows.length) {
    empty('status', 'No cases in this period.');
    return;
  }
  const labels = rows.map((r) => STATUS_LABELS[/** @type {keyof typeof STATUS_LABELS} */ (r.name ?? '')] ?? r.name ?? 'None');
  place('status', {
    id: 'svg-status',
    title: 'Cases by status',
    description: rows.map((r, i) => `${labels[i]}: ${r.count}`).join(', '),
    labels,
    labelHeading: 'Status',
    direction: 'horizontal',
    series: [{ name: 'Cases', values: rows.map((r) => r.count), color: '#6c4ab6' }],
    href: (i) => logsUrl({ status: rows[i].name, from: localMinute(s.from), to: localMinute(s.to + 59_999) }),
  });
}

/**
 * The line above the charts.
 * @param {Summary} s
 */
function describe(s) {
  const fmt = (/** @type {number} */ ms) => new Date(ms).toLocaleDateString(undefined, { dateStyle: 'medium' });
  const group = s.groups.find((g) => g.id === s.group);
  $('dash-summary').textContent = `${s.violations.toLocaleString()} violation${s.violations === 1 ? '' : 's'} and `
    + `${s.activity.toLocaleString()} activity event${s.activity === 1 ? '' : 's'}, ${fmt(s.from)} to ${fmt(s.to - 1)}, `
    + `${group ? group.name : 'everyone you can see'}.`;
}

/**
 * Fills the group choice (keeping the current one).
 * @param {Summary} s
 */
function fillGroups(s) {
  const keep = groupSelect.value || (s.group === null ? '' : String(s.group));
  fillSelect(groupSelect, [['', 'Everyone I can see'],
    ...s.groups.map((g) => /** @type {[string, string]} */ ([String(g.id), `${g.name} (${g.kind === 'user' ? 'users' : 'computers'})`]))]);
  groupSelect.value = s.groups.some((g) => String(g.id) === keep) ? keep : '';
}

/** Puts the period and group in the address bar (without reloading). */
function saveToAddress() {
  const q = new URLSearchParams();
  q.set('period', periodSelect.value);
  if (periodSelect.value === 'custom') {
    if (fromInput.value) q.set('from', fromInput.value);
    if (toInput.value) q.set('to', toInput.value);
  }
  if (groupSelect.value) q.set('group', groupSelect.value);
  history.replaceState(null, '', `${location.pathname}?${q}`);
}

/** Sets the form from the address bar. */
function loadFromAddress() {
  const q = new URLSearchParams(location.search);
  const p = q.get('period');
  if (p && [...periodSelect.options].some((o) => o.value === p)) periodSelect.value = p;
  const day = /^\d{4}-\d{2}-\d{2}$/;
  if (day.test(q.get('from') || '')) fromInput.value = /** @type {string} */ (q.get('from'));
  if (day.test(q.get('to') || '')) toInput.value = /** @type {string} */ (q.get('to'));
  const g = q.get('group');
  if (g && /^\d+$/.test(g)) {
    fillSelect(groupSelect, [['', 'Everyone I can see'], [g, '…']], g);
  }
  showCustom();
}

/** Shows the date fields for a custom period. */
function showCustom() {
  const custom = periodSelect.value === 'custom';
  for (const node of form.querySelectorAll('[data-custom]')) /** @type {HTMLElement} */ (node).hidden = !custom;
  if (custom && !fromInput.value) {
    const now = new Date();
    toInput.value = isoDay(now);
    fromInput.value = isoDay(new Date(now.getFullYear(), now.getMonth(), now.getDate() - 29));
  }
}

/**
 * Draws every chart.
 * @param {Summary} s
 */
function drawAll(s) {
  drawStatus(s);
  drawTime(s);
  drawTop('users', 'Most-flagged users', s.top_users, 'No one signed in',
    (r) => logsUrl({ user: r.name, from: localMinute(s.from), to: localMinute(s.to + 59_999) }), '#c8283c');
  drawTop('sites', 'Most-flagged sites', s.top_sites, 'No website open',
    (r) => (r.name ? logsUrl({ tab: 'activity', kind: 'web', q: r.name, from: localMinute(s.from), to: localMinute(s.to + 59_999) }) : ''), '#1f5fd1');
  drawHours(s);
}

/** Loads the figures and draws every chart. */
async function load() {
  const p = period();
  if (typeof p === 'string') {
    showNotice(p);
    return;
  }
  saveToAddress();
  const serial = ++loadSerial;
  const q = new URLSearchParams({ from: String(p.from), to: String(p.to) });
  if (groupSelect.value) q.set('group', groupSelect.value);
  document.body.setAttribute('aria-busy', 'true');
  try {
    const s = /** @type {Summary} */ (await api('GET', `/api/v1/safeguarding/summary?${q}`));
    if (serial !== loadSerial) return;
    hideNotice();
    fillGroups(s);
    describe(s);
    shown = s;
    drawAll(s);
    document.body.dataset.loaded = String(serial);
  } catch (e) {
    if (serial === loadSerial) showNotice(/** @type {Error} */ (e).message);
  } finally {
    if (serial === loadSerial) document.body.removeAttribute('aria-busy');
  }
}

/**
 * Downloads a chart as PNG or its numbers as CSV.
 * @param {string} name
 * @param {'png' | 'csv'} kind
 */
async function save(name, kind) {
  const made = drawn.get(name);
  if (!made) {
    showNotice('This chart has nothing to save for this period.');
    return;
  }
  const stamp = `${name}-${isoDay(new Date())}`;
  try {
    if (kind === 'csv') download(new Blob([made.csv()], { type: 'text/csv;charset=utf-8' }), `safeguarding-${stamp}.csv`);
    else download(await toPng(made.svg), `safeguarding-${stamp}.png`);
  } catch (e) {
    showNotice(/** @type {Error} */ (e).message);
  }
}

initSafetyPage('Safeguarding overview');
loadFromAddress();
periodSelect.addEventListener('change', () => {
  showCustom();
  if (periodSelect.value !== 'custom') load();
});
groupSelect.addEventListener('change', () => load());
form.addEventListener('submit', (event) => {
  event.preventDefault();
  load();
});
$('dash-print').addEventListener('click', () => window.print());
window.addEventListener('resize', () => {
  clearTimeout(resizeTimer);
  resizeTimer = window.setTimeout(() => { if (shown) drawAll(shown); }, 150);
});
document.addEventListener('click', (event) => {
  const button = /** @type {HTMLElement} */ (event.target).closest('[data-png], [data-csv]');
  if (!(button instanceof HTMLElement)) return;
  if (button.dataset.png) save(button.dataset.png, 'png');
  else if (button.dataset.csv) save(button.dataset.csv, 'csv');
});
load();
