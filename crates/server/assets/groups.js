// Groups page: lists the groups, creates computer and user groups, and edits
// a group's name, priority, members and settings (driven by the settings
// catalogue). Built-in groups can only be changed where the server allows:
// restriction groups only in their members, "Entire Network" only in its
// priority and settings.

import { api } from './api.js';
import { $, el, fillSelect, hideNotice, initPage, showNotice } from './page.js';
import { parsePatterns } from './weblists.js';
import { loadDirectoryGroups, offerDirectoryGroups } from './dirgroups.js';

/**
 * @typedef {{type: string, value: string}} Member
 * @typedef {object} Group
 * @property {number} id
 * @property {string} name
 * @property {string} kind entire_network | restriction | computer | user
 * @property {string} priority low | medium | high
 * @property {boolean} builtin
 * @property {Member[]} members
 * @property {Record<string, unknown>} settings
 * @typedef {object} SettingSpec
 * @property {string} key
 * @property {string} [label] what the console shows instead of the key
 * @property {Record<string, string>} [value_labels] enum values in words
 * @property {string} type bool | enum | domains | apps
 * @property {string[]} [values] for enums
 * @property {unknown} [default]
 * @property {string} [description]
 */

const KIND_LABELS = {
  entire_network: 'Entire network',
  restriction: 'Restriction',
  computer: 'Computers',
  user: 'Users',
};
const PRIORITY_LABELS = { low: 'Low', medium: 'Medium', high: 'High' };
const MEMBER_LABELS = { hostname: 'Host name', user: 'User', directory_group: 'Directory group' };
const MEMBER_PLACEHOLDERS = {
  hostname: 'e.g. LAB1-PC* (* matches anything)',
  user: 'user name, e.g. amara',
  directory_group: 'e.g. Year 9',
};

/** @type {SettingSpec[]} */
let catalogue = [];
/** @type {Group[]} */
let groups = [];

/**
 * A setting's human label from the catalogue (its key when the catalogue has none).
 * @param {string} key
 * @returns {string}
 */
function settingLabel(key) {
  return catalogue.find((s) => s.key === key)?.label || key;
}
/** The group in the editor, as the server last sent it. @type {Group | null} */
let current = null;

const table = /** @type {HTMLTableElement} */ ($('groups-table'));
const editor = $('group-editor');
const nameInput = /** @type {HTMLInputElement} */ ($('group-name'));
const prioritySelect = /** @type {HTMLSelectElement} */ ($('group-priority'));
const membersBox = $('group-members');
/** The live "matches N devices now" line under the member list. */
const matchesLine = el('p', 'hint group-matches');
matchesLine.id = 'group-matches';
matchesLine.setAttribute('aria-live', 'polite');
membersBox.after(matchesLine);

/**
 * @typedef {object} Matches
 * @property {number} count devices the caller may see that the members match now
 * @property {{id: number, hostname: string, user?: string | null}[]} devices
 */

/** Each listed group's devices matched now. @type {Map<number, Matches>} */
const matchesOf = new Map();

/**
 * "3 devices: A, B, C" (the first 20 names), fit for a table cell or a hint.
 * @param {Matches} m
 * @returns {string}
 */
function matchesText(m) {
  const names = m.devices.slice(0, 20).map((d) => d.hostname);
  const more = m.count > names.length ? `, and ${m.count - names.length} more` : '';
  const n = `${m.count} ${m.count === 1 ? 'device' : 'devices'}`;
  return names.length ? `${n}: ${names.join(', ')}${more}` : n;
}

/**
 * Fills a list cell with a group's matched devices (the count, the names
 * as its title).
 * @param {HTMLElement} cell
 * @param {Matches | undefined} m
 * @param {Group} g
 */
function showMatches(cell, m, g) {
  if (!m) return;
  cell.textContent = `${m.count} ${m.count === 1 ? 'device' : 'devices'}`;
  const rules = g.kind === 'entire_network' ? 'everyone' : `${(g.members || []).length} member rules`;
  cell.title = `${rules}; now ${matchesText(m)}`;
}

/** Fetches what every listed group matches now, and shows it. */
async function loadMatches() {
  await Promise.all(groups.map(async (g) => {
    try {
      matchesOf.set(g.id, await api('GET', `/api/v1/groups/${g.id}/members`));
    } catch {
      matchesOf.delete(g.id);
    }
    const cell = table.querySelector(`tr[data-group-id="${g.id}"] td.members`);
    if (cell) showMatches(/** @type {HTMLElement} */ (cell), matchesOf.get(g.id), g);
  }));
}

/** @type {ReturnType<typeof setTimeout> | null} */
let previewTimer = null;
/** Counts previews, so a slow old answer never replaces a newer one. */
let previewSeq = 0;

/** Asks for a preview of the members being typed, 300 ms after the last change. */
function schedulePreview() {
  if (previewTimer) clearTimeout(previewTimer);
  previewTimer = setTimeout(preview, 300);
}

/** Shows which devices the editor's members match now (the server judges). */
async function preview() {
  previewTimer = null;
  if (!current) return;
  const seq = ++previewSeq;
  const members = [];
  for (const row of membersBox.querySelectorAll('.member-row')) {
    const type = /** @type {HTMLSelectElement} */ (row.querySelector('.member-type')).value;
    const value = /** @type {HTMLInputElement} */ (row.querySelector('.member-value')).value.trim();
    if (value) members.push({ type, value });
  }
  try {
    const m = await api('POST', '/api/v1/groups/preview', { kind: current.kind, members });
    if (seq === previewSeq) matchesLine.textContent = `Matches ${matchesText(m)} now.`;
  } catch (err) {
    if (seq === previewSeq) matchesLine.textContent = `Cannot preview: ${err.message}`;
  }
}
const settingsBody = /** @type {HTMLTableSectionElement} */ ($('group-settings').querySelector('tbody'));

/**
 * Member types a group of this kind accepts.
 * @param {string} kind
 * @returns {string[]}
 */
function memberTypesFor(kind) {
  switch (kind) {
    case 'computer': return ['hostname'];
    case 'user': return ['user', 'directory_group'];
    case 'restriction': return ['hostname', 'user', 'directory_group'];
    default: return [];
  }
}

/**
 * What may be changed in a group.
 * @param {Group} group
 */
function editable(group) {
  const restriction = group.kind === 'restriction';
  return {
    name: !group.builtin,
    priority: !restriction,
    members: group.kind !== 'entire_network',
    settings: !restriction,
  };
}

/**
 * A setting value in words, for the "Default" column.
 * @param {unknown} value
 * @returns {string}
 */
function describe(value) {
  if (value === undefined || value === null) return '';
  if (Array.isArray(value)) return value.length ? value.join(', ') : '(none)';
  return String(value);
}

/** Redraws the list of groups. */
function renderList() {
  const rows = groups.map((g) => {
    const tr = /** @type {HTMLTableRowElement} */ (el('tr'));
    tr.dataset.groupId = String(g.id);
    tr.classList.toggle('selected', current !== null && current.id === g.id);

    const name = el('td', 'group-name');
    const open = /** @type {HTMLButtonElement} */ (el('button', 'link group-edit', g.name));
    open.type = 'button';
    open.title = `Edit ${g.name}`;
    open.addEventListener('click', () => openEditor(g));
    name.append(open);
    if (g.builtin) name.append(' ', el('span', 'badge builtin', 'Built-in'));

    // What the patterns match now, not how many patterns there are: one
    // wildcard may hold ten devices.
    const members = el('td', 'members', '…');
    showMatches(members, matchesOf.get(g.id), g);
    tr.append(
      name,
      el('td', 'kind', KIND_LABELS[g.kind] || g.kind),
      el('td', 'priority', PRIORITY_LABELS[g.priority] || g.priority),
      members,
    );
    return tr;
  });
  table.tBodies[0].replaceChildren(...rows);
  $('groups-loading').hidden = true;
}

/**
 * One editable member line.
 * @param {Member} member
 * @param {string[]} types allowed types
 * @returns {HTMLElement}
 */
function memberRow(member, types) {
  const row = el('div', 'member-row');
  const type = /** @type {HTMLSelectElement} */ (el('select', 'member-type'));
  type.setAttribute('aria-label', 'Member type');
  const choices = types.includes(member.type) || !member.type ? types : [member.type, ...types];
  fillSelect(type, choices.map((t) => [t, MEMBER_LABELS[t] || t]), member.type || types[0]);
  const value = /** @type {HTMLInputElement} */ (el('input', 'member-value'));
  value.type = 'text';
  value.autocomplete = 'off';
  value.spellcheck = false;
  value.value = member.value || '';
  value.setAttribute('aria-label', 'Member');
  const placeholder = () => {
    value.placeholder = MEMBER_PLACEHOLDERS[type.value] || '';
    if (!offerDirectoryGroups(value, type.value)) value.removeAttribute('list');
  };
  placeholder();
  type.addEventListener('change', placeholder);
  const remove = /** @type {HTMLButtonElement} */ (el('button', 'member-remove', 'Remove'));
  remove.type = 'button';
  remove.addEventListener('click', () => row.remove());
  row.append(type, value, remove);
  return row;
}

/**
 * One line of the settings editor.
 * @param {SettingSpec} spec
 * @param {Record<string, unknown>} settings the group's settings
 * @param {boolean} locked whether the group's settings cannot be changed
 * @returns {HTMLTableRowElement}
 */
function settingRow(spec, settings, locked) {
  const isSet = Object.prototype.hasOwnProperty.call(settings, spec.key);
  const value = isSet ? settings[spec.key] : spec.default;
  const tr = /** @type {HTMLTableRowElement} */ (el('tr', 'setting-row'));
  tr.dataset.key = spec.key;
  tr.dataset.type = spec.type;

  const head = el('td', 'setting-name');
  const set = /** @type {HTMLInputElement} */ (el('input', 'setting-set'));
  set.type = 'checkbox';
  set.id = `set-${spec.key}`;
  set.checked = isSet;
  set.disabled = locked;
  const label = el('label');
  label.setAttribute('for', set.id);
  label.append(set, ' ', el('strong', '', spec.label || spec.key), ' ', el('code', 'hint', spec.key));
  head.append(label);
  if (spec.description) head.append(el('div', 'hint', spec.description));

  /** @type {HTMLInputElement | HTMLSelectElement | HTMLTextAreaElement} */
  let control;
  const cell = el('td', 'setting-control');
  if (spec.type === 'bool') {
    const box = /** @type {HTMLInputElement} */ (el('input', 'setting-value'));
    box.type = 'checkbox';
    box.id = `val-${spec.key}`;
    box.checked = value === true;
    const on = el('label', 'checkbox');
    on.setAttribute('for', box.id);
    on.append(box, ' On');
    cell.append(on);
    control = box;
  } else if (spec.type === 'enum') {
    const select = /** @type {HTMLSelectElement} */ (el('select', 'setting-value'));
    const values = spec.values || [];
    fillSelect(select, values.map((v) => [v, spec.value_labels?.[v] || v]), typeof value === 'string' ? value : values[0]);
    cell.append(select);
    control = select;
  } else if (spec.type === 'domains' || spec.type === 'apps') {
    const area = /** @type {HTMLTextAreaElement} */ (el('textarea', 'setting-value'));
    area.rows = 3;
    area.spellcheck = false;
    area.placeholder = spec.type === 'apps' ? 'One program a line, e.g. firefox' : 'One pattern a line, e.g. *.example.org';
    area.value = Array.isArray(value) ? value.join('\n') : '';
    cell.append(area);
    control = area;
  } else {
    const input = /** @type {HTMLInputElement} */ (el('input', 'setting-value'));
    input.type = 'text';
    input.value = value === undefined ? '' : JSON.stringify(value);
    input.title = 'JSON value';
    cell.append(input);
    control = input;
  }
  control.setAttribute('aria-label', `Value of ${spec.label || spec.key}`);

  const sync = () => {
    control.disabled = locked || !set.checked;
    tr.classList.toggle('unset', !set.checked);
  };
  set.addEventListener('change', sync);
  sync();

  tr.append(head, cell, el('td', 'setting-default', describe(spec.default)));
  return tr;
}

/**
 * Shows a group in the editor.
 * @param {Group} group
 */
function openEditor(group) {
  current = group;
  const can = editable(group);
  editor.hidden = false;
  editor.dataset.groupId = String(group.id);
  $('group-editor-title').textContent = group.name;

  let hint = `${KIND_LABELS[group.kind] || group.kind} group`;
  if (group.kind === 'restriction') hint = 'Built-in restriction group: only its members can be changed.';
  else if (group.kind === 'entire_network') hint = 'Built-in group of every computer and user: its priority and settings can be changed.';
  else if (group.builtin) hint = `Built-in ${hint.toLowerCase()}`;
  $('group-editor-hint').textContent = hint;

  nameInput.value = group.name;
  nameInput.disabled = !can.name;
  prioritySelect.value = group.priority;
  prioritySelect.disabled = !can.priority;

  const types = memberTypesFor(group.kind);
  let membersHint = '';
  if (!can.members) membersHint = 'Everyone is a member of this group.';
  else if (group.kind === 'computer') membersHint = 'Host names; * matches any characters, e.g. LAB1-PC*.';
  else if (group.kind === 'user') membersHint = 'User names and directory groups.';
  else membersHint = 'Host names (* matches any characters), user names and directory groups.';
  $('group-members-hint').textContent = membersHint;
  membersBox.hidden = !can.members;
  $('member-add').hidden = !can.members;
  membersBox.replaceChildren(...(can.members ? (group.members || []).map((m) => memberRow(m, types)) : []));
  matchesLine.textContent = '';
  schedulePreview();

  $('group-settings-hint').textContent = can.settings
    ? 'Tick a setting to set it for this group; unticked settings come from other groups or the default.'
    : 'The settings of a built-in restriction group are fixed.';
  const settings = group.settings || {};
  settingsBody.replaceChildren(...catalogue.map((spec) => settingRow(spec, settings, !can.settings)));

  $('group-delete').hidden = group.builtin;
  history.replaceState(null, '', `#group-${group.id}`);
  for (const tr of table.tBodies[0].rows) {
    tr.classList.toggle('selected', tr.dataset.groupId === String(group.id));
  }
}

/** Hides the editor. */
function closeEditor() {
  current = null;
  editor.hidden = true;
  delete editor.dataset.groupId;
  history.replaceState(null, '', location.pathname);
  renderList();
}

/**
 * The members in the editor, or a message saying what is wrong.
 * @returns {Member[] | string}
 */
function readMembers() {
  /** @type {Member[]} */
  const members = [];
  for (const row of membersBox.querySelectorAll('.member-row')) {
    const type = /** @type {HTMLSelectElement} */ (row.querySelector('.member-type')).value;
    const value = /** @type {HTMLInputElement} */ (row.querySelector('.member-value')).value.trim();
    if (!value) return 'Fill in or remove the empty member line';
    members.push({ type, value });
  }
  return members;
}

/**
 * The settings ticked in the editor, or a message saying what is wrong.
 * @returns {Record<string, unknown> | string}
 */
function readSettings() {
  /** @type {Record<string, unknown>} */
  const settings = {};
  for (const tr of settingsBody.querySelectorAll('tr.setting-row')) {
    const row = /** @type {HTMLTableRowElement} */ (tr);
    const set = /** @type {HTMLInputElement} */ (row.querySelector('.setting-set'));
    if (!set.checked) continue;
    const key = /** @type {string} */ (row.dataset.key);
    const control = /** @type {HTMLInputElement} */ (row.querySelector('.setting-value'));
    switch (row.dataset.type) {
      case 'bool':
        settings[key] = control.checked;
        break;
      case 'enum':
        settings[key] = control.value;
        break;
      case 'domains': {
        // One pattern per line, each line whole (the server checks again).
        const { patterns, bad } = parsePatterns(control.value);
        if (bad.length) return `Could not save: ${settingLabel(key)}, ${bad[0]} is not a site pattern; use names like example.org or *.example.org, one a line`;
        settings[key] = patterns;
        break;
      }
      case 'apps':
        // One program name a line; the server checks each and names a bad line.
        settings[key] = control.value.split('\n').map((l) => l.trim()).filter((l) => l);
        break;
      default:
        try {
          settings[key] = JSON.parse(control.value);
        } catch {
          return `The value of ${settingLabel(key)} is not valid JSON`;
        }
    }
  }
  return settings;
}

/**
 * Disables the editor's buttons while a request runs.
 * @param {boolean} busy
 */
function setBusy(busy) {
  for (const id of ['group-save', 'group-revert', 'group-delete', 'new-group-create']) {
    /** @type {HTMLButtonElement} */ ($(id)).disabled = busy;
  }
}

/**
 * Puts a group the server sent into the list (replacing its old copy).
 * @param {Group} group
 */
function remember(group) {
  const i = groups.findIndex((g) => g.id === group.id);
  if (i >= 0) groups[i] = group;
  else groups.push(group);
}

/**
 * Saves the editor's changes.
 * @param {SubmitEvent} event
 */
async function save(event) {
  event.preventDefault();
  if (!current) return;
  const group = current;
  const can = editable(group);
  /** @type {Record<string, unknown>} */
  const body = {};
  if (can.name) {
    const name = nameInput.value.trim();
    if (!name) {
      showNotice('Give the group a name');
      nameInput.focus();
      return;
    }
    body.name = name;
  }
  if (can.priority) body.priority = prioritySelect.value;
  if (can.members) {
    const members = readMembers();
    if (typeof members === 'string') {
      showNotice(members);
      return;
    }
    body.members = members;
  }
  if (can.settings) {
    const settings = readSettings();
    if (typeof settings === 'string') {
      showNotice(settings);
      return;
    }
    body.settings = settings;
  }
  hideNotice();
  setBusy(true);
  try {
    const path = `/api/v1/groups/${group.id}`;
    const saved = (await api('PUT', path, body)) || (await api('GET', path));
    remember(saved);
    renderList();
    loadMatches();
    if (current && current.id === saved.id) openEditor(saved);
    showNotice(`Saved “${saved.name}”`, 'info');
  } catch (err) {
    showNotice(`Could not save “${group.name}”: ${err.message}`);
  } finally {
    setBusy(false);
  }
}

/** Deletes the group in the editor, after asking. */
async function remove() {
  if (!current || current.builtin) return;
  const group = current;
  if (!confirm(`Delete the group “${group.name}”? Its members lose its settings.`)) return;
  hideNotice();
  setBusy(true);
  try {
    await api('DELETE', `/api/v1/groups/${group.id}`);
    groups = groups.filter((g) => g.id !== group.id);
    closeEditor();
    showNotice(`Deleted “${group.name}”`, 'info');
  } catch (err) {
    showNotice(`Could not delete “${group.name}”: ${err.message}`);
  } finally {
    setBusy(false);
  }
}

/**
 * Creates a group from the "New group" form and opens it in the editor.
 * @param {SubmitEvent} event
 */
async function create(event) {
  event.preventDefault();
  const nameField = /** @type {HTMLInputElement} */ ($('new-group-name'));
  const name = nameField.value.trim();
  if (!name) {
    showNotice('Type a name for the new group');
    nameField.focus();
    return;
  }
  const body = {
    name,
    kind: /** @type {HTMLSelectElement} */ ($('new-group-kind')).value,
    priority: /** @type {HTMLSelectElement} */ ($('new-group-priority')).value,
    members: [],
    settings: {},
  };
  hideNotice();
  setBusy(true);
  try {
    const group = await api('POST', '/api/v1/groups', body);
    remember(group);
    nameField.value = '';
    renderList();
    loadMatches();
    openEditor(group);
    showNotice(`Created “${group.name}”: add its members and settings, then save`, 'info');
  } catch (err) {
    showNotice(`Could not create the group: ${err.message}`);
  } finally {
    setBusy(false);
  }
}

/** Adds an empty member line to the editor. */
function addMember() {
  if (!current) return;
  const types = memberTypesFor(current.kind);
  if (!types.length) return;
  const row = memberRow({ type: types[0], value: '' }, types);
  membersBox.append(row);
  /** @type {HTMLInputElement} */ (row.querySelector('.member-value')).focus();
}

/** Loads the catalogue and the groups. */
async function load() {
  try {
    const [cat, list] = await Promise.all([
      api('GET', '/api/v1/settings/catalogue'),
      api('GET', '/api/v1/groups'),
    ]);
    catalogue = Array.isArray(cat) ? cat : [];
    groups = Array.isArray(list) ? list : [];
  } catch (err) {
    $('groups-loading').textContent = 'Could not load the groups.';
    showNotice(`Could not load the groups: ${err.message}`);
    return;
  }
  renderList();
  loadMatches();
  const m = /^#group-(\d+)$/.exec(location.hash);
  const wanted = m ? groups.find((g) => g.id === Number(m[1])) : undefined;
  if (wanted) openEditor(wanted);
}

/** Hooks up the page and starts loading. */
function main() {
  initPage('Groups');
  loadDirectoryGroups();
  $('group-create').addEventListener('submit', create);
  $('group-form').addEventListener('submit', save);
  $('group-revert').addEventListener('click', () => {
    if (current) openEditor(current);
    hideNotice();
  });
  $('group-delete').addEventListener('click', remove);
  $('member-add').addEventListener('click', addMember);
  membersBox.addEventListener('input', schedulePreview);
  membersBox.addEventListener('change', schedulePreview);
  new MutationObserver(schedulePreview).observe(membersBox, { childList: true });
  load();
}

main();
