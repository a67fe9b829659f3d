// The Keywords page's "Rescan stored activity" card: the changed terms
// offered for a rescan, "Rescan for all terms" over a number of days, and
// the running job's progress (rows scanned of the total, matches found),
// polled once a second while a job runs, with "Cancel rescan".

import { api } from './api.js';
import { $, formatTime } from './page.js';

/**
 * @typedef {object} RetroScan
 * @property {number} id
 * @property {number} terms
 * @property {'changed' | 'on_demand'} reason
 * @property {string} started_by
 * @property {'queued' | 'running' | 'done' | 'cancelled' | 'failed'} state
 * @property {number} rows_scanned
 * @property {number} rows_total
 * @property {number} hits
 * @property {number} pauses
 * @property {number} cpu_percent
 * @property {string} note
 * @property {number} started_at ms
 * @property {number | null} finished_at ms
 */

/**
 * @typedef {object} RescanStatus
 * @property {RetroScan | null} active
 * @property {RetroScan[]} recent
 * @property {{terms: number, sample: string[], by: string, at: number} | null} offer
 * @property {number} cpu_percent
 * @property {number} auto_days
 * @property {number} activity_days
 */

/** How often progress is read while a job runs, in milliseconds. */
const POLL_MS = 1000;

/** @type {ReturnType<typeof setTimeout> | null} */
let timer = null;
/** The job whose end is still to be announced. */
let watching = 0;
let daysTouched = false;

const daysInput = /** @type {HTMLInputElement} */ ($('rescan-days'));
const progress = /** @type {HTMLProgressElement} */ ($('rescan-progress'));
const errorLine = $('rescan-error');

/**
 * A count with its noun.
 * @param {number} n
 * @param {string} one
 * @param {string} [many]
 * @returns {string}
 */
function count(n, one, many = `${one}s`) {
  return `${n.toLocaleString()} ${n === 1 ? one : many}`;
}

/**
 * What a job is looking for.
 * @param {RetroScan} job
 * @returns {string}
 */
function what(job) {
  return job.reason === 'changed' ? count(job.terms, 'changed term') : `all ${count(job.terms, 'term')}`;
}

/**
 * The line under the card about the newest finished job.
 * @param {RetroScan | undefined} job
 * @returns {string}
 */
function lastLine(job) {
  if (!job) return 'No rescans yet.';
  const when = job.finished_at ? formatTime(job.finished_at) : formatTime(job.started_at);
  const found = count(job.hits, 'new match', 'new matches');
  switch (job.state) {
    case 'done':
      return `Last rescan (${what(job)}, by ${job.started_by}) finished ${when}: ${count(job.rows_scanned, 'event')} scanned, ${found}.${job.note ? ` ${job.note}.` : ''}`;
    case 'cancelled':
      return `Last rescan (${what(job)}) was cancelled ${when} after ${count(job.rows_scanned, 'event')} of ${job.rows_total.toLocaleString()}: ${found}.`;
    case 'failed':
      return `Last rescan (${what(job)}) failed ${when}: ${job.note}`;
    default:
      return '';
  }
}

/**
 * Shows the running job, or hides the progress.
 * @param {RetroScan | null} job
 */
function showJob(job) {
  $('rescan-job').hidden = !job;
  for (const id of ['rescan-all', 'rescan-changed']) {
    /** @type {HTMLButtonElement} */ ($(id)).disabled = Boolean(job);
  }
  if (!job) return;
  const total = Math.max(job.rows_total, job.rows_scanned, 1);
  progress.max = total;
  progress.value = job.rows_scanned;
  const state = job.state === 'queued' ? 'Waiting to start' : 'Rescanning';
  $('rescan-label').textContent = `${state} for ${what(job)}: ${job.rows_scanned.toLocaleString()} of ${job.rows_total.toLocaleString()} events, ${count(job.hits, 'match', 'matches')} so far`;
}

/**
 * Shows the offer of changed terms.
 * @param {RescanStatus['offer']} offer
 */
function showOffer(offer) {
  $('rescan-offer').hidden = !offer;
  if (!offer) return;
  const names = offer.sample.map((t) => `“${t}”`).join(', ');
  const more = offer.terms > offer.sample.length ? ` and ${offer.terms - offer.sample.length} more` : '';
  $('rescan-offer-text').textContent = `${count(offer.terms, 'term')} changed since the last rescan (${names}${more}). Look for ${offer.terms === 1 ? 'it' : 'them'} in the stored activity?`;
}

/** Reads the status and shows it; polls again while a job runs. */
export async function refreshRescan() {
  if (timer) clearTimeout(timer);
  timer = null;
  /** @type {RescanStatus} */
  let st;
  try {
    st = await api('GET', '/api/v1/keywords/rescan');
  } catch (err) {
    showError(`Could not read the rescan's progress: ${err.message}`);
    return;
  }
  $('rescan-cpu').textContent = String(st.cpu_percent);
  if (!daysTouched) daysInput.value = String(st.activity_days > 0 ? st.activity_days : 365);
  showOffer(st.offer);
  showJob(st.active);
  const last = st.recent.find((j) => j.state !== 'queued' && j.state !== 'running');
  $('rescan-last').textContent = lastLine(last);
  if (st.active) {
    watching = st.active.id;
    timer = setTimeout(refreshRescan, POLL_MS);
  } else if (watching) {
    watching = 0;
  }
}

/**
 * Shows an error that stays until the next action.
 * @param {string} text
 */
function showError(text) {
  errorLine.textContent = text;
  errorLine.hidden = false;
}

/**
 * Starts a rescan.
 * @param {'all' | 'changed'} terms
 */
async function start(terms) {
  errorLine.hidden = true;
  const days = Number(daysInput.value);
  if (!Number.isInteger(days) || days < 1 || days > 3650) {
    showError('Days of history must be a whole number from 1 to 3650.');
    daysInput.focus();
    return;
  }
  try {
    await api('POST', '/api/v1/keywords/rescan', { terms, days });
  } catch (err) {
    showError(`Rescan not started: ${err.message}`);
  }
  await refreshRescan();
}

/** Cancels the running job. */
async function cancel() {
  if (!watching || !confirm('Cancel the rescan? Matches found so far are kept.')) return;
  errorLine.hidden = true;
  try {
    await api('POST', `/api/v1/keywords/rescan/${watching}/cancel`);
  } catch (err) {
    showError(`Could not cancel: ${err.message}`);
  }
  await refreshRescan();
}

/** Hooks up the card and reads the status. */
export function initRescan() {
  $('rescan-all').addEventListener('click', () => start('all'));
  $('rescan-changed').addEventListener('click', () => start('changed'));
  $('rescan-cancel').addEventListener('click', cancel);
  daysInput.addEventListener('input', () => {
    daysTouched = true;
  });
  refreshRescan();
}
