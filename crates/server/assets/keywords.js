// Keyword libraries page: the libraries and the groups they are enabled for
// (keyword-libraries.js), and the terms of the chosen library, each with its
// category, severity, match type and exceptions, edited in place; "Save"
// sends the whole library, "Import CSV" replaces it with a file (the server
// says which line is wrong), "Export CSV" downloads it. "School library" is
// the school's own (the routes /api/v1/keywords); the built-in one is
// read-only.

import { api, apiRaw } from './api.js';
import { $, el, fillSelect, hideNotice, showNotice } from './page.js';
import { SEVERITY_LABELS, initSafetyPage } from './safety.js';
import { initLibraries, loadLibraries } from './keyword-libraries.js';
import { initRescan, refreshRescan } from './rescan.js';

/**
 * @typedef {object} Term
 * @property {string} term
 * @property {string} category
 * @property {number} severity 1 to 5
 * @property {'whole_word' | 'phrase' | 'contains'} match_type
 * @property {string[]} [exceptions]
 */

/** A term being edited, with a key that identifies its row. @typedef {Term & {key: number}} Row */

const MATCH_TYPES = [['whole_word', 'Whole word'], ['phrase', 'Phrase'], ['contains', 'Contains']];
/** Largest CSV file offered to the server. */
const MAX_IMPORT_BYTES = 4 * 1024 * 1024;

/** @type {Row[]} */
let rows = [];
/** The library as last loaded or saved, to tell unsaved changes. */
let savedJson = '[]';
let nextKey = 1;
let busy = false;
/** The library being edited: 'own' (the school's) or a library id. */
let source = 'own';
/** Whether it is the read-only built-in one. */
let readOnly = false;

/** @returns {string} where the chosen library's terms are read and written */
function libraryPath() {
  return source === 'own' ? '/api/v1/keywords' : `/api/v1/keywords/libraries/${source}`;
}

/** @returns {string} where its CSV is read and written */
function csvPath() {
  return `${libraryPath()}/csv`;
}

const table = /** @type {HTMLTableElement} */ ($('kw-table'));
const categorySelect = /** @type {HTMLSelectElement} */ ($('kw-category'));
const searchInput = /** @type {HTMLInputElement} */ ($('kw-search'));
const fileInput = /** @type {HTMLInputElement} */ ($('kw-import-file'));
const errorLine = $('kw-error');

/**
 * The library as the API takes it.
 * @returns {Term[]}
 */
function library() {
  return rows.map((r) => {
    /** @type {Term} */
    const t = { term: r.term.trim(), category: r.category.trim(), severity: r.severity, match_type: r.match_type };
    const exceptions = (r.exceptions || []).map((e) => e.trim()).filter(Boolean);
    if (exceptions.length) t.exceptions = exceptions;
    return t;
  });
}

/** @returns {boolean} whether there are unsaved changes */
function dirty() {
  return JSON.stringify(library()) !== savedJson;
}

/** Shows whether there are unsaved changes, and enables Save and Discard. */
function updateDirty() {
  const d = dirty();
  $('kw-dirty').hidden = !d;
  /** @type {HTMLButtonElement} */ ($('kw-save')).disabled = busy || !d || readOnly;
  /** @type {HTMLButtonElement} */ ($('kw-revert')).disabled = busy || !d;
}

/**
 * Shows an error that stays until the next action (unlike the notice).
 * @param {string} text
 */
function showError(text) {
  errorLine.textContent = text;
  errorLine.hidden = false;
}

function hideError() {
  errorLine.hidden = true;
  for (const tr of table.querySelectorAll('tr.invalid')) tr.classList.remove('invalid');
}

/**
 * A labelled input bound to a field of a row.
 * @param {Row} row
 * @param {'term' | 'category' | 'exceptions'} field
 * @param {string} label
 * @returns {HTMLInputElement}
 */
function textInput(row, field, label) {
  const input = /** @type {HTMLInputElement} */ (el('input', `kw-${field}`));
  input.type = 'text';
  input.autocomplete = 'off';
  input.spellcheck = false;
  input.maxLength = field === 'exceptions' ? 2000 : 200;
  input.value = field === 'exceptions' ? (row.exceptions || []).join(' | ') : row[field];
  input.setAttribute('aria-label', label);
  if (field === 'category') input.setAttribute('list', 'kw-categories');
  if (field === 'exceptions') input.placeholder = 'none';
  input.addEventListener('input', () => {
    if (field === 'exceptions') row.exceptions = input.value.split('|').map((e) => e.trim()).filter(Boolean);
    else row[field] = input.value;
    updateDirty();
  });
  if (field === 'category') input.addEventListener('change', updateCategories);
  return input;
}

/**
 * A table row for a term.
 * @param {Row} row
 * @returns {HTMLTableRowElement}
 */
function termRow(row) {
  const tr = /** @type {HTMLTableRowElement} */ (el('tr', 'kw-row'));
  tr.dataset.key = String(row.key);
  const name = row.term || 'new term';
  const cell = (/** @type {HTMLElement} */ child, /** @type {string} */ cls) => {
    const td = el('td', cls);
    td.append(child);
    return td;
  };

  const severity = /** @type {HTMLSelectElement} */ (el('select', 'kw-severity'));
  fillSelect(severity, [1, 2, 3, 4, 5].map((n) => [String(n), `${n} ${SEVERITY_LABELS[n]}`]), String(row.severity));
  severity.setAttribute('aria-label', `Severity of ${name}`);
  severity.addEventListener('change', () => {
    row.severity = Number(severity.value);
    updateDirty();
  });

  const match = /** @type {HTMLSelectElement} */ (el('select', 'kw-match'));
  fillSelect(match, /** @type {[string, string][]} */ (MATCH_TYPES), row.match_type);
  match.setAttribute('aria-label', `Match type of ${name}`);
  match.addEventListener('change', () => {
    row.match_type = /** @type {Row['match_type']} */ (match.value);
    updateDirty();
  });

  const remove = /** @type {HTMLButtonElement} */ (el('button', 'kw-delete danger', 'Delete'));
  remove.type = 'button';
  remove.setAttribute('aria-label', `Delete ${name}`);
  remove.addEventListener('click', () => {
    rows = rows.filter((r) => r !== row);
    tr.remove();
    updateCategories();
    updateSummary();
    updateDirty();
  });

  tr.append(
    cell(textInput(row, 'term', row.term ? `Term ${row.term}` : 'New term'), 'kw-term-cell'),
    cell(textInput(row, 'category', `Category of ${name}`), 'kw-category-cell'),
    cell(severity, 'kw-severity-cell'),
    cell(match, 'kw-match-cell'),
    cell(textInput(row, 'exceptions', `Exceptions of ${name}`), 'kw-exceptions-cell'),
    cell(remove, 'row-actions'),
  );
  return tr;
}

/**
 * Whether a row passes the category and search filters.
 * @param {Row} row
 * @returns {boolean}
 */
function shown(row) {
  const category = categorySelect.value;
  if (category && row.category.trim() !== category) return false;
  const q = searchInput.value.trim().toLowerCase();
  if (!q) return true;
  return row.term.toLowerCase().includes(q) || (row.exceptions || []).some((e) => e.toLowerCase().includes(q));
}

/** Hides the rows the filters leave out, and says how many are shown. */
function applyFilters() {
  const byKey = new Map(rows.map((r) => [String(r.key), r]));
  for (const tr of table.tBodies[0].rows) {
    const row = byKey.get(tr.dataset.key || '');
    // A new, still empty row stays visible whatever the filters.
    tr.hidden = row ? !(shown(row) || !row.term.trim()) : true;
  }
  updateSummary();
}

/** "298 terms in 8 categories (12 shown)". */
function updateSummary() {
  const categories = new Set(rows.map((r) => r.category.trim()).filter(Boolean));
  const visible = [...table.tBodies[0].rows].filter((tr) => !tr.hidden).length;
  let text = `${rows.length} term${rows.length === 1 ? '' : 's'} in ${categories.size} categor${categories.size === 1 ? 'y' : 'ies'}`;
  if (visible !== rows.length) text += ` (${visible} shown)`;
  $('kw-summary').textContent = `${text}.`;
  table.hidden = rows.length === 0;
}

/** Refreshes the category filter and the categories offered when typing. */
function updateCategories() {
  const categories = [...new Set(rows.map((r) => r.category.trim()).filter(Boolean))].sort();
  const keep = categorySelect.value;
  fillSelect(categorySelect, [['', 'All categories'], ...categories.map((c) => /** @type {[string, string]} */ ([c, c]))]);
  categorySelect.value = categories.includes(keep) ? keep : '';
  $('kw-categories').replaceChildren(...categories.map((c) => {
    const o = /** @type {HTMLOptionElement} */ (el('option'));
    o.value = c;
    return o;
  }));
}

/**
 * Replaces the table with a library.
 * @param {Term[]} terms
 */
function setLibrary(terms) {
  rows = terms.map((t) => ({
    key: nextKey++,
    term: String(t.term ?? ''),
    category: String(t.category ?? ''),
    severity: Number(t.severity) || 1,
    match_type: t.match_type || 'whole_word',
    exceptions: Array.isArray(t.exceptions) ? t.exceptions.map(String) : [],
  }));
  savedJson = JSON.stringify(library());
  table.tBodies[0].replaceChildren(...rows.map(termRow));
  updateCategories();
  applyFilters();
  updateDirty();
}

/**
 * Loads the library from the server.
 * @returns {Promise<boolean>} whether it loaded
 */
async function load() {
  try {
    const data = await api('GET', libraryPath());
    const lib = source === 'own' ? data : data && data.library;
    setLibrary(lib && Array.isArray(lib.terms) ? lib.terms : []);
    /** @type {HTMLAnchorElement} */ ($('kw-export')).href = csvPath();
    return true;
  } catch (err) {
    $('kw-summary').textContent = 'Could not load the keyword library.';
    showNotice(`Could not load the keyword library: ${err.message}`);
    return false;
  }
}

/** Adds an empty term at the top, in the category being shown, and focuses it. */
function addTerm() {
  /** @type {Row} */
  const row = {
    key: nextKey++,
    term: '',
    category: categorySelect.value,
    severity: 3,
    match_type: 'whole_word',
    exceptions: [],
  };
  rows.unshift(row);
  const tr = termRow(row);
  tr.classList.add('new');
  table.tBodies[0].prepend(tr);
  updateSummary();
  updateDirty();
  /** @type {HTMLInputElement} */ (tr.querySelector('input.kw-term')).focus();
}

/**
 * The row a server's message names ("term 12 (…): …", counting from 0).
 * @param {string} message
 * @returns {number | null}
 */
function indexIn(message) {
  const m = /\bterm (\d+)\b/.exec(message);
  return m ? Number(m[1]) : null;
}

/**
 * Marks a row as the one with the problem, showing it even when the filters
 * hide it.
 * @param {number | null} index in `rows`
 */
function markInvalid(index) {
  if (index === null) return;
  const row = rows[index];
  const tr = row && table.querySelector(`tr[data-key="${row.key}"]`);
  if (!tr) return;
  if (/** @type {HTMLElement} */ (tr).hidden) {
    categorySelect.value = '';
    searchInput.value = '';
    applyFilters();
  }
  tr.classList.add('invalid');
  tr.scrollIntoView({ block: 'center' });
}

/**
 * What is obviously wrong with the library before sending it (the server
 * checks the rest), or null.
 * @returns {{index: number, message: string} | null}
 */
function check() {
  for (const [index, r] of rows.entries()) {
    const term = r.term.trim();
    if (!term) return { index, message: `row ${index + 1} has no term: type it or delete the row` };
    if (!r.category.trim()) return { index, message: `“${term}” needs a category` };
    if (r.match_type === 'whole_word' && /\s/.test(term)) {
      return { index, message: `“${term}” has several words, so its match type must be “Phrase”` };
    }
  }
  return null;
}

/**
 * Disables the buttons while a request runs.
 * @param {boolean} on
 */
function setBusy(on) {
  busy = on;
  for (const id of ['kw-add', 'kw-import']) /** @type {HTMLButtonElement} */ ($(id)).disabled = on || readOnly;
  updateDirty();
}

/** Saves the whole library. */
async function save() {
  hideNotice();
  hideError();
  const problem = check();
  if (problem) {
    showError(`Not saved: ${problem.message}`);
    markInvalid(problem.index);
    return;
  }
  setBusy(true);
  try {
    const terms = library();
    await api('PUT', libraryPath(), source === 'own' ? { terms } : { library: { terms } });
    savedJson = JSON.stringify(terms);
    for (const tr of table.querySelectorAll('tr.new')) tr.classList.remove('new');
    showNotice(`Keyword library saved: ${terms.length} term${terms.length === 1 ? '' : 's'}`, 'info');
    loadLibraries();
    refreshRescan();
  } catch (err) {
    showError(`Not saved: ${err.message}`);
    markInvalid(indexIn(err.message));
  } finally {
    setBusy(false);
  }
}

/** Throws away unsaved changes. */
async function revert() {
  if (!dirty() || confirm('Discard your unsaved changes to the keyword library?')) {
    hideError();
    hideNotice();
    await load();
  }
}

/** Sends the chosen CSV file, replacing the library. */
async function importCsv() {
  const file = fileInput.files && fileInput.files[0];
  fileInput.value = '';
  if (!file) return;
  hideNotice();
  hideError();
  if (file.size > MAX_IMPORT_BYTES) {
    showError(`${file.name} is too large (${Math.round(file.size / 1024)} KiB); a keyword library is at most ${MAX_IMPORT_BYTES / 1024 / 1024} MiB`);
    return;
  }
  const warning = dirty()
    ? `Import ${file.name}? It replaces the whole keyword library, and your unsaved changes are lost.`
    : `Import ${file.name}? It replaces the whole keyword library.`;
  if (!confirm(warning)) return;
  setBusy(true);
  try {
    const text = await file.text();
    await apiRaw('PUT', csvPath(), { body: text, contentType: 'text/csv; charset=utf-8' });
    categorySelect.value = '';
    searchInput.value = '';
    if (await load()) showNotice(`Imported ${file.name}: ${rows.length} term${rows.length === 1 ? '' : 's'}`, 'info');
    refreshRescan();
  } catch (err) {
    showError(`Could not import ${file.name}: ${err.message}. The library was not changed.`);
  } finally {
    setBusy(false);
  }
}

/**
 * Lists the libraries one can edit. Until the school has a library of its
 * own, "School library" stands for it (the routes /api/v1/keywords): it shows
 * the built-in terms and the first save creates it in their place.
 * @param {import('./keyword-libraries.js').LibraryInfo[]} libs
 */
function fillLibraryChoice(libs) {
  const select = /** @type {HTMLSelectElement} */ ($('kw-library'));
  const own = libs.find((l) => l.kind === 'own');
  /** @type {[string, string][]} */
  const options = own ? [] : [['own', 'School library (starts from the built-in terms)']];
  for (const l of libs) options.push([String(l.id), l.kind === 'default' ? `${l.name} (read-only)` : l.name]);
  let chosen = select.value || 'own';
  // The school's library now exists: keep editing it under its id.
  if (chosen === 'own' && own) chosen = String(own.id);
  if (!options.some(([v]) => v === chosen)) chosen = own ? String(own.id) : 'own';
  fillSelect(select, options, chosen);
  select.dataset.defaultId = String((libs.find((l) => l.kind === 'default') || { id: '' }).id);
  if (chosen !== source) {
    source = chosen;
    readOnly = source === select.dataset.defaultId;
    $('kw-readonly').hidden = !readOnly;
    /** @type {HTMLAnchorElement} */ ($('kw-export')).href = csvPath();
    if (!dirty()) load();
  }
}

/** Switches the editor to the chosen library. */
async function chooseLibrary() {
  const select = /** @type {HTMLSelectElement} */ ($('kw-library'));
  if (dirty() && !confirm('Discard your unsaved changes to this library?')) {
    select.value = source;
    return;
  }
  source = select.value;
  readOnly = source === select.dataset.defaultId;
  $('kw-readonly').hidden = !readOnly;
  categorySelect.value = '';
  searchInput.value = '';
  setBusy(false);
  await load();
}

/** Hooks up the page and starts loading. */
function main() {
  initSafetyPage('Keyword libraries');
  initLibraries(fillLibraryChoice);
  $('kw-library').addEventListener('change', chooseLibrary);
  $('kw-add').addEventListener('click', addTerm);
  $('kw-save').addEventListener('click', save);
  $('kw-revert').addEventListener('click', revert);
  $('kw-import').addEventListener('click', () => fileInput.click());
  fileInput.addEventListener('change', importCsv);
  categorySelect.addEventListener('change', applyFilters);
  searchInput.addEventListener('input', applyFilters);
  $('kw-export').addEventListener('click', (event) => {
    if (dirty() && !confirm('The export has the library as saved, without your unsaved changes. Export anyway?')) {
      event.preventDefault();
    }
  });
  window.addEventListener('beforeunload', (event) => {
    if (dirty()) event.preventDefault();
  });
  load();
  initRescan();
}

main();
