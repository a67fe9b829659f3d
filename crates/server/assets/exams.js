// Exams page: plan an exam (computers, allowed websites and applications,
// paper, what to collect), start it (lock-down, paper handed out, notice),
// end it (answers collected, lock-down lifted), read its log and download
// the answers.

import { api } from './api.js';
import { $, el, formatTime, hideNotice, initPage, showNotice } from './page.js';
import { deviceNames, loadDevicePicks, pickedDevices, uploadFile } from './filepicks.js';
import { parsePatterns } from './weblists.js';

/** How often the list refreshes. */
const REFRESH_MS = 5_000;

const picks = /** @type {HTMLFieldSetElement} */ ($('exam-devices'));
/** The exam whose log is shown. */
let logExam = 0;

/**
 * Lines of a textarea, trimmed, without blanks.
 * @param {string} id
 * @returns {string[]}
 */
function lines(id) {
  return /** @type {HTMLTextAreaElement} */ ($(id)).value.split('\n').map((s) => s.trim()).filter(Boolean);
}

/**
 * A button for a row.
 * @param {string} text
 * @param {string} label for screen readers
 * @param {() => void} action
 * @returns {HTMLButtonElement}
 */
function button(text, label, action) {
  const b = /** @type {HTMLButtonElement} */ (el('button', '', text));
  b.type = 'button';
  b.setAttribute('aria-label', label);
  b.addEventListener('click', action);
  return b;
}

/**
 * The exam's lock-down in words.
 * @param {any} e
 * @returns {string}
 */
function lockdown(e) {
  const web = e.allowed_sites.length ? `Web: ${e.allowed_sites.join(', ')}` : 'No web';
  const apps = e.allowed_apps.length ? `Apps: ${e.allowed_apps.join(', ')}` : 'Any app';
  return `${web} · ${apps}`;
}

/**
 * A row of the exam list.
 * @param {any} e
 * @returns {HTMLTableRowElement}
 */
function examRow(e) {
  const tr = /** @type {HTMLTableRowElement} */ (el('tr'));
  tr.dataset.examId = String(e.id);
  const actions = el('td', 'row-actions');
  if (e.status === 'planned') actions.append(button('Start', `Start ${e.name}`, () => act(e, 'start')));
  if (e.status === 'running') actions.append(button('End', `End ${e.name}`, () => act(e, 'end')));
  actions.append(button('Log', `Log of ${e.name}`, () => showLog(e.id)));
  if (e.collection_id) {
    const link = /** @type {HTMLAnchorElement} */ (el('a', '', 'Answers (zip)'));
    link.href = `/api/v1/exams/${e.id}/zip`;
    link.setAttribute('download', `exam-${e.id}.zip`);
    link.setAttribute('aria-label', `Answers (zip) of ${e.name}`);
    actions.append(link);
  }
  let status = e.status;
  if (e.status === 'planned' && e.starts_at) status = `starts by itself at ${formatTime(e.starts_at)}`;
  if (e.status === 'running') status = `running since ${formatTime(e.started_at)}`;
  if (e.status === 'ended') status = e.started_at ? `ended ${formatTime(e.ended_at)}` : 'not started: its time passed';
  const name = el('td');
  name.append(el('strong', '', e.name));
  if (e.paper_name) name.append(el('div', 'hint', `Paper: ${e.paper_name}`));
  if (e.collect_path) name.append(el('div', 'hint', `Collects: ${e.collect_path}`));
  tr.append(
    name,
    el('td', '', status),
    el('td', '', e.devices.map((d) => deviceNames.get(d) || `Computer ${d}`).join(', ')),
    el('td', '', lockdown(e)),
    actions,
  );
  return tr;
}

/** Reloads the list (and the log shown). */
async function refresh() {
  try {
    const exams = await api('GET', '/api/v1/exams');
    const table = /** @type {HTMLTableElement} */ ($('exam-list'));
    table.tBodies[0].replaceChildren(...exams.map(examRow));
    table.hidden = exams.length === 0;
    $('exam-list-empty').hidden = exams.length > 0;
    if (logExam) await showLog(logExam);
  } catch (err) {
    showNotice(`Could not load the exams: ${err.message}`);
  }
}

/**
 * Shows an exam's log.
 * @param {number} id
 */
async function showLog(id) {
  logExam = id;
  const e = await api('GET', `/api/v1/exams/${id}`);
  const table = /** @type {HTMLTableElement} */ ($('exam-log'));
  table.tBodies[0].replaceChildren(...e.log.map((l) => {
    const tr = el('tr');
    tr.append(
      el('td', '', formatTime(l.at)),
      el('td', '', l.device_id ? deviceNames.get(l.device_id) || `Computer ${l.device_id}` : ''),
      el('td', '', l.kind),
      el('td', '', l.detail),
    );
    return tr;
  }));
  table.hidden = false;
  $('exam-log-hint').textContent = `Log of ${e.name}:`;
}

/**
 * Starts or ends an exam.
 * @param {any} e
 * @param {'start' | 'end'} what
 */
async function act(e, what) {
  hideNotice();
  try {
    await api('POST', `/api/v1/exams/${e.id}/${what}`);
    showNotice(what === 'start' ? `${e.name} started` : `${e.name} ended; collecting the answers`, 'info');
    logExam = e.id;
    refresh();
  } catch (err) {
    showNotice(`Could not ${what} the exam: ${err.message}`);
  }
}

/** @param {SubmitEvent} event */
async function create(event) {
  event.preventDefault();
  const name = /** @type {HTMLInputElement} */ ($('exam-name')).value.trim();
  const devices = pickedDevices(picks);
  if (!name) {
    showNotice('Name the exam');
    $('exam-name').focus();
    return;
  }
  if (!devices.length) {
    showNotice('Tick at least one computer');
    return;
  }
  const { patterns: sites, bad } = parsePatterns(/** @type {HTMLTextAreaElement} */ ($('exam-sites')).value);
  if (bad.length) {
    showNotice(`Not a site pattern: ${bad[0]}; use names like example.org or *.example.org, one a line`);
    return;
  }
  const end = /** @type {HTMLInputElement} */ ($('exam-end')).value;
  const start = /** @type {HTMLInputElement} */ ($('exam-start')).value;
  // The paper is uploaded after the exam is planned: a start already due
  // would hand out nothing.
  if (start && new Date(start).getTime() <= Date.now()) {
    showNotice('The start must be in the future; leave it empty to start the exam yourself');
    return;
  }
  const body = {
    name,
    devices,
    allowed_sites: sites,
    allowed_apps: lines('exam-apps'),
    collect_path: /** @type {HTMLInputElement} */ ($('exam-collect')).value.trim() || null,
    starts_at: start ? new Date(start).getTime() : null,
    ends_at: end ? new Date(end).getTime() : null,
  };
  hideNotice();
  try {
    const exam = await api('POST', '/api/v1/exams', body);
    const paper = /** @type {HTMLInputElement} */ ($('exam-paper')).files?.[0];
    if (paper) await uploadFile('PUT', `/api/v1/exams/${exam.id}/paper?${new URLSearchParams({ name: paper.name })}`, paper);
    showNotice(exam.starts_at
      ? `${exam.name} is planned; it starts by itself at ${formatTime(exam.starts_at)}`
      : `${exam.name} is planned; start it when the students are ready`, 'info');
    /** @type {HTMLFormElement} */ ($('exam-form')).reset();
    refresh();
  } catch (err) {
    showNotice(`Could not plan the exam: ${err.message}`);
  }
}

initPage('Exams');
$('exam-form').addEventListener('submit', create);
loadDevicePicks(picks, $('exam-devices-empty'), 'exam-device')
  .catch((err) => showNotice(`Could not load the computers: ${err.message}`))
  .then(refresh);
setInterval(refresh, REFRESH_MS);
