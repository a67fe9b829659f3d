// Access rights page: lists the access rules and creates, edits and deletes
// them. A rule names a principal (console user, console computer address or
// directory group), the features it grants, its access to each group and
// whether it may bypass client privacy.

import { api, ApiError } from './api.js';
import { $, el, fillSelect, hideNotice, initPage, showNotice } from './page.js';
import { loadDirectoryGroups, offerDirectoryGroups } from './dirgroups.js';

/**
 * @typedef {object} Rule
 * @property {number} id
 * @property {{type: string, value: string}} principal
 * @property {string[]} features
 * @property {Record<string, string>} group_access group id → none | view | control
 * @property {boolean} bypass_privacy
 */

const PRINCIPAL_LABELS = { user: 'User', computer: 'Computer', directory_group: 'Directory group' };
const PRINCIPAL_PLACEHOLDERS = {
  user: 'console user name, e.g. ms.khan',
  computer: 'IP address or CIDR, e.g. 10.0.5.0/24',
  directory_group: 'e.g. Science teachers',
};
/** @type {[string, string][]} value and label pairs */
const ACCESS_LEVELS = [['none', 'None'], ['view', 'View'], ['control', 'Control']];

/** @type {Rule[]} */
let rules = [];
/** @type {{key: string, description?: string}[]} */
let features = [];
/** @type {{id: number, name: string}[]} */
let groups = [];
/** The rule being edited, or null for a new one. @type {Rule | null} */
let editing = null;
/** Console account names, lower case. @type {Set<string>} */
let accounts = new Set();

const table = /** @type {HTMLTableElement} */ ($('access-table'));
const typeSelect = /** @type {HTMLSelectElement} */ ($('access-principal-type'));
const valueInput = /** @type {HTMLInputElement} */ ($('access-principal-value'));
const featuresBox = $('access-features');
const groupsBody = /** @type {HTMLTableSectionElement} */ ($('access-groups').querySelector('tbody'));
const bypass = /** @type {HTMLInputElement} */ ($('access-bypass'));

/**
 * A group's name, or its id when unknown.
 * @param {string | number} id
 * @returns {string}
 */
function groupName(id) {
  return groups.find((g) => String(g.id) === String(id))?.name ?? `group ${id}`;
}

/** Redraws the table of rules. */
function renderRules() {
  const rows = rules.map((rule) => {
    const tr = /** @type {HTMLTableRowElement} */ (el('tr'));
    tr.dataset.ruleId = String(rule.id);
    tr.classList.toggle('selected', editing !== null && editing.id === rule.id);
    const who = el('td', 'principal');
    who.append(el('span', 'hint', `${PRINCIPAL_LABELS[rule.principal.type] || rule.principal.type} `), el('strong', '', rule.principal.value));
    const granted = [...(rule.features || [])];
    const access = Object.entries(rule.group_access || {})
      .filter(([, level]) => level && level !== 'none')
      .map(([id, level]) => `${groupName(id)}: ${level}`);
    const actions = el('td', 'row-actions');
    const edit = /** @type {HTMLButtonElement} */ (el('button', 'rule-edit', 'Edit'));
    edit.type = 'button';
    edit.addEventListener('click', () => openEditor(rule));
    const del = /** @type {HTMLButtonElement} */ (el('button', 'rule-delete danger', 'Delete'));
    del.type = 'button';
    del.addEventListener('click', () => removeRule(rule));
    actions.append(edit, ' ', del);
    tr.append(
      who,
      el('td', 'features', granted.length ? granted.join(', ') : '(none)'),
      el('td', 'groups', access.length ? access.join(', ') : '(none)'),
      el('td', 'bypass', rule.bypass_privacy ? 'Bypass' : ''),
      actions,
    );
    return tr;
  });
  table.tBodies[0].replaceChildren(...rows);
  $('access-empty').hidden = rules.length > 0;
}

/** Updates the "Who" field's hint and suggestions for the principal type. */
function onTypeChange() {
  valueInput.placeholder = PRINCIPAL_PLACEHOLDERS[typeSelect.value] || '';
  if (typeSelect.value === 'user') valueInput.setAttribute('list', 'access-users');
  else if (!offerDirectoryGroups(valueInput, typeSelect.value)) valueInput.removeAttribute('list');
}

/**
 * Fills the form with a rule, or empties it for a new one.
 * @param {Rule | null} rule
 */
function openEditor(rule) {
  editing = rule;
  $('access-editor-title').textContent = rule ? `Edit rule for ${rule.principal.value}` : 'New rule';
  /** @type {HTMLButtonElement} */ ($('access-save')).textContent = rule ? 'Save rule' : 'Create rule';
  typeSelect.value = rule ? rule.principal.type : 'user';
  valueInput.value = rule ? rule.principal.value : '';
  onTypeChange();

  const granted = new Set(rule ? rule.features : []);
  featuresBox.replaceChildren(...features.map((f) => {
    const box = /** @type {HTMLInputElement} */ (el('input'));
    box.type = 'checkbox';
    box.name = 'feature';
    box.value = f.key;
    box.id = `feature-${f.key}`;
    box.checked = granted.has(f.key);
    const label = el('label', 'checkbox');
    label.setAttribute('for', box.id);
    label.append(box, ' ', el('code', '', f.key));
    if (f.description) label.append(' ', el('span', 'hint', f.description));
    return label;
  }));

  const access = rule ? rule.group_access || {} : {};
  groupsBody.replaceChildren(...groups.map((g) => {
    const tr = el('tr');
    const select = /** @type {HTMLSelectElement} */ (el('select', 'group-access'));
    select.dataset.groupId = String(g.id);
    select.id = `group-access-${g.id}`;
    fillSelect(select, ACCESS_LEVELS, access[String(g.id)] || 'none');
    const label = el('label', '', g.name);
    label.setAttribute('for', select.id);
    const name = el('td');
    name.append(label);
    const cell = el('td');
    cell.append(select);
    tr.append(name, cell);
    return tr;
  }));
  if (!groups.length) {
    const tr = el('tr');
    tr.append(el('td', 'hint', 'No groups could be loaded.'));
    groupsBody.replaceChildren(tr);
  }
  bypass.checked = rule ? Boolean(rule.bypass_privacy) : false;
  for (const tr of table.tBodies[0].rows) {
    tr.classList.toggle('selected', rule !== null && tr.dataset.ruleId === String(rule.id));
  }
}

/**
 * The form as a rule body, or a message saying what is missing.
 * @returns {Omit<Rule, 'id'> | string}
 */
function readForm() {
  const value = valueInput.value.trim();
  if (!value) {
    return typeSelect.value === 'computer' ? 'Type the console computer’s IP address or CIDR' : 'Type who the rule applies to';
  }
  /** @type {Record<string, string>} */
  const groupAccess = {};
  for (const node of groupsBody.querySelectorAll('select.group-access')) {
    const select = /** @type {HTMLSelectElement} */ (node);
    if (select.value !== 'none') groupAccess[/** @type {string} */ (select.dataset.groupId)] = select.value;
  }
  return {
    principal: { type: typeSelect.value, value },
    features: [...featuresBox.querySelectorAll('input[name="feature"]:checked')].map((b) => /** @type {HTMLInputElement} */ (b).value),
    group_access: groupAccess,
    bypass_privacy: bypass.checked,
  };
}

/**
 * @param {boolean} busy
 */
function setBusy(busy) {
  /** @type {HTMLButtonElement} */ ($('access-save')).disabled = busy;
  for (const b of table.querySelectorAll('button')) /** @type {HTMLButtonElement} */ (b).disabled = busy;
}

/**
 * Creates or saves the rule in the form.
 * @param {SubmitEvent} event
 */
async function save(event) {
  event.preventDefault();
  const body = readForm();
  if (typeof body === 'string') {
    showNotice(body);
    valueInput.focus();
    return;
  }
  hideNotice();
  setBusy(true);
  try {
    try {
      await write(body);
    } catch (err) {
      // The server refuses a rule for a user it has never seen (most likely
      // a typo) unless told it is meant: ask, then say so.
      if (!maybeUnknownUser(err, body)) throw err;
      if (!confirm(`${err.message}\n\nWrite the rule anyway, for a user not seen yet?`)) {
        showNotice(`Not saved: ${err.message}`);
        return;
      }
      await write({ ...body, allow_unknown: true });
    }
    openEditor(null);
    renderRules();
  } catch (err) {
    showNotice(`Could not save the rule: ${err.message}`);
  } finally {
    setBusy(false);
  }
}

/**
 * Whether a refusal may be the server's "no such user" (a 400 for a user
 * principal with no console account of that name).
 * @param {unknown} err
 * @param {{principal: {type: string, value: string}}} body
 * @returns {err is ApiError}
 */
function maybeUnknownUser(err, body) {
  return err instanceof ApiError && err.status === 400 && body.principal.type === 'user'
    && !accounts.has(body.principal.value.toLowerCase());
}

/**
 * Creates or saves a rule, and shows it saved.
 * @param {object & {principal: {type: string, value: string}}} body
 */
async function write(body) {
  if (editing) {
    const path = `/api/v1/access-rules/${editing.id}`;
    const saved = (await api('PUT', path, body)) || { ...body, id: editing.id };
    rules = rules.map((r) => (r.id === saved.id ? saved : r));
    showNotice(`Saved the rule for ${saved.principal.value}`, 'info');
  } else {
    const created = await api('POST', '/api/v1/access-rules', body);
    rules.push(created);
    showNotice(`Created a rule for ${created.principal.value}`, 'info');
  }
}

/**
 * Deletes a rule, after asking.
 * @param {Rule} rule
 */
async function removeRule(rule) {
  if (!confirm(`Delete the access rule for ${rule.principal.value}?`)) return;
  hideNotice();
  setBusy(true);
  try {
    await api('DELETE', `/api/v1/access-rules/${rule.id}`);
    rules = rules.filter((r) => r.id !== rule.id);
    if (editing && editing.id === rule.id) openEditor(null);
    renderRules();
    showNotice(`Deleted the rule for ${rule.principal.value}`, 'info');
  } catch (err) {
    showNotice(`Could not delete the rule: ${err.message}`);
  } finally {
    setBusy(false);
  }
}

/** Suggests console user names in the "Who" field (optional). */
async function loadUsers() {
  try {
    const users = await api('GET', '/api/v1/users');
    accounts = new Set((Array.isArray(users) ? users : []).map((u) => String(u.username).toLowerCase()));
    $('access-users').replaceChildren(...(Array.isArray(users) ? users : []).map((u) => {
      const o = /** @type {HTMLOptionElement} */ (el('option'));
      o.value = u.username;
      if (u.role) o.label = `${u.username} (${u.role})`;
      return o;
    }));
  } catch {
    // Suggestions only.
  }
}

/** Loads rules, features and groups. */
async function load() {
  try {
    const [list, feats, grps] = await Promise.all([
      api('GET', '/api/v1/access-rules'),
      api('GET', '/api/v1/access-rules/features'),
      api('GET', '/api/v1/groups').catch(() => []),
    ]);
    rules = Array.isArray(list) ? list : [];
    features = Array.isArray(feats) ? feats : [];
    groups = (Array.isArray(grps) ? grps : []).map((g) => ({ id: g.id, name: g.name }));
  } catch (err) {
    showNotice(`Could not load the access rules: ${err.message}`);
    return;
  }
  openEditor(null);
  renderRules();
}

/** Hooks up the page and starts loading. */
function main() {
  initPage('Access rights');
  loadDirectoryGroups();
  typeSelect.addEventListener('change', onTypeChange);
  $('access-form').addEventListener('submit', save);
  $('access-cancel').addEventListener('click', () => {
    openEditor(null);
    hideNotice();
  });
  $('access-new').addEventListener('click', () => {
    openEditor(null);
    valueInput.focus();
  });
  onTypeChange();
  load();
  loadUsers();
}

main();
