// Keyword libraries on the Keywords page: the built-in default (read-only,
// can be copied), the school's own and imported packs; each enabled or
// disabled per group with five severity actions (or the school's). The
// server checks every change: editing needs keywords.manage, and assigning
// a library to a group also needs control of that group.

import { api, apiRaw } from './api.js';
import { $, el, fillSelect, hideNotice, showNotice } from './page.js';

/**
 * @typedef {object} Assignment
 * @property {number} id
 * @property {number} library_id
 * @property {number} group_id
 * @property {boolean} enabled
 * @property {string[] | null} actions
 *
 * @typedef {object} LibraryInfo
 * @property {number} id
 * @property {'default' | 'own' | 'imported'} kind
 * @property {string} name
 * @property {string | null} source
 * @property {boolean} read_only
 * @property {number} terms
 * @property {Assignment[]} assignments
 */

const KIND_LABELS = { default: 'Built-in', own: 'School', imported: 'Imported' };
const SEVERITIES = [1, 2, 3, 4, 5];
/** Largest CSV pack offered to the server (its limit). */
const MAX_PACK_BYTES = 1024 * 1024;

/** @type {{libraries: LibraryInfo[], groups: {id: number, name: string, kind: string}[], actions: string[], school_actions: string[]}} */
let data = { libraries: [], groups: [], actions: [], school_actions: [] };
/** @type {(libs: LibraryInfo[]) => void} */
let onChange = () => {};

/**
 * A button that does not submit.
 * @param {string} text
 * @param {string} className
 * @param {string} label for screen readers
 * @returns {HTMLButtonElement}
 */
function button(text, className, label) {
  const b = /** @type {HTMLButtonElement} */ (el('button', className, text));
  b.type = 'button';
  b.setAttribute('aria-label', label);
  return b;
}

/** @param {number} id */
function groupName(id) {
  const g = data.groups.find((x) => x.id === id);
  return g ? g.name : `group ${id}`;
}

/**
 * One assignment as words, with a Remove button.
 * @param {Assignment} a
 * @param {LibraryInfo} lib
 */
function assignmentItem(a, lib) {
  const li = el('li', a.enabled ? 'kw-on' : 'kw-off');
  const what = a.enabled ? 'on' : 'off';
  const actions = a.actions ? a.actions.join(' · ') : 'school’s actions';
  li.append(el('span', '', `${groupName(a.group_id)}: ${what}${a.enabled ? ` (${actions})` : ''}`));
  const remove = button('Remove', 'link', `Remove ${lib.name} from ${groupName(a.group_id)}`);
  remove.addEventListener('click', () => act(() => api('DELETE', `/api/v1/keywords/assignments/${a.id}`), `${lib.name} removed from ${groupName(a.group_id)}`));
  li.append(' ', remove);
  return li;
}

/**
 * A library's row: name, kind, terms, where it is enabled, and actions.
 * @param {LibraryInfo} lib
 */
function libraryRow(lib) {
  const tr = el('tr');
  tr.dataset.id = String(lib.id);
  const name = el('td');
  name.append(el('strong', '', lib.name));
  if (lib.source) name.append(el('div', 'hint', lib.source));
  tr.append(name, el('td', '', KIND_LABELS[lib.kind] || lib.kind), el('td', 'num', String(lib.terms)));
  const where = el('td');
  if (lib.assignments.length) {
    const ul = el('ul', 'plain');
    ul.append(...lib.assignments.map((a) => assignmentItem(a, lib)));
    where.append(ul);
  } else {
    where.append(el('span', 'hint', 'Not enabled for any group'));
  }
  const buttons = el('td');
  if (!lib.read_only) {
    const rename = button('Rename…', '', `Rename ${lib.name}`);
    rename.addEventListener('click', () => {
      const to = prompt(`New name for ${lib.name}`, lib.name);
      if (to && to.trim() && to !== lib.name) {
        act(() => api('PUT', `/api/v1/keywords/libraries/${lib.id}`, { name: to.trim() }), `Renamed to ${to.trim()}`);
      }
    });
    const del = button('Delete', 'danger', `Delete ${lib.name}`);
    del.addEventListener('click', () => {
      if (confirm(`Delete ${lib.name}? It stops applying to every group it is enabled for.`)) {
        act(() => api('DELETE', `/api/v1/keywords/libraries/${lib.id}`), `${lib.name} deleted`);
      }
    });
    buttons.append(rename, ' ', del);
  } else {
    buttons.append(el('span', 'hint', 'Read-only: copy it to change it'));
  }
  tr.append(where, buttons);
  return tr;
}

/**
 * Runs a change, shows its outcome and reloads.
 * @param {() => Promise<unknown>} call
 * @param {string} done
 */
async function act(call, done) {
  hideNotice();
  try {
    await call();
    showNotice(done, 'info');
  } catch (err) {
    showNotice(`Not changed: ${err.message}`);
  }
  await loadLibraries();
}

/**
 * @param {string} id
 * @returns {HTMLSelectElement}
 */
function select(id) {
  return /** @type {HTMLSelectElement} */ ($(id));
}

/** Fills the selects that name libraries and groups. */
function fillForms() {
  /** @type {[string, string][]} */
  const libs = data.libraries.map((l) => [String(l.id), l.name]);
  fillSelect(select('kwl-copy'), [['', 'Empty'], ...libs], select('kwl-copy').value || '');
  fillSelect(select('kwa-library'), libs, select('kwa-library').value || undefined);
  /** @type {[string, string][]} */
  const groups = data.groups.map((g) => [String(g.id), g.name]);
  fillSelect(select('kwa-group'), groups, select('kwa-group').value || undefined);
  for (const s of SEVERITIES) {
    const sel = select(`kwa-sev${s}`);
    /** @type {[string, string][]} */
    const actions = data.actions.map((a) => [a, a]);
    fillSelect(sel, actions, sel.value || data.school_actions[s - 1]);
  }
}

/** Loads libraries, groups and actions. */
export async function loadLibraries() {
  try {
    data = await api('GET', '/api/v1/keywords/libraries');
  } catch (err) {
    showNotice(`Could not load the keyword libraries: ${err.message}`);
    return;
  }
  $('kwl-table').querySelector('tbody').replaceChildren(...data.libraries.map(libraryRow));
  fillForms();
  onChange(data.libraries);
}

/** Creates a library, empty or copied. */
async function create(event) {
  event.preventDefault();
  const name = /** @type {HTMLInputElement} */ ($('kwl-name')).value.trim();
  const copy = select('kwl-copy').value;
  const body = copy ? { name, copy_from: Number(copy) } : { name };
  await act(() => api('POST', '/api/v1/keywords/libraries', body), `Library ${name} created`);
  /** @type {HTMLInputElement} */ ($('kwl-name')).value = '';
}

/** Imports a CSV pack as a new library. */
async function importPack(event) {
  event.preventDefault();
  const input = /** @type {HTMLInputElement} */ ($('kwl-pack-file'));
  const file = input.files && input.files[0];
  if (!file) {
    showNotice('Choose a CSV file to import');
    return;
  }
  if (file.size > MAX_PACK_BYTES) {
    showNotice(`${file.name} is too large; a pack is at most 1 MiB`);
    return;
  }
  const name = /** @type {HTMLInputElement} */ ($('kwl-pack-name')).value.trim() || file.name.replace(/\.csv$/i, '');
  const q = new URLSearchParams({ name, file: file.name });
  const text = await file.text();
  await act(() => apiRaw('POST', `/api/v1/keywords/libraries/import?${q}`, { body: text, contentType: 'text/csv; charset=utf-8' }), `Imported ${file.name} as ${name}`);
  input.value = '';
}

/** Enables or disables a library for a group. */
async function assign(event) {
  event.preventDefault();
  const own = /** @type {HTMLInputElement} */ ($('kwa-own')).checked;
  const body = {
    library_id: Number(select('kwa-library').value),
    group_id: Number(select('kwa-group').value),
    enabled: /** @type {HTMLInputElement} */ ($('kwa-enabled')).checked,
    actions: own ? SEVERITIES.map((s) => select(`kwa-sev${s}`).value) : null,
  };
  await act(() => api('PUT', '/api/v1/keywords/assignments', body), 'Saved');
}

/** Shows the severity selects only when the library has actions of its own. */
function toggleActions() {
  $('kwa-actions').hidden = !/** @type {HTMLInputElement} */ ($('kwa-own')).checked;
}

/**
 * Hooks up the libraries section.
 * @param {(libs: LibraryInfo[]) => void} changed called after every load
 */
export function initLibraries(changed) {
  onChange = changed;
  $('kwl-create').addEventListener('submit', create);
  $('kwl-import').addEventListener('submit', importPack);
  $('kwa-form').addEventListener('submit', assign);
  $('kwa-own').addEventListener('change', toggleActions);
  toggleActions();
  return loadLibraries();
}
