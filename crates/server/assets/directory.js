// The Directory page: the LDAP / Active Directory connection (administrators
// change it; the bind password is never shown back), a test, a dry run or a
// sync now, and the last syncs. The server validates and judges everything.

import { api } from './api.js';
import { $, el, formatTime, hideNotice, initPage, showNotice } from './page.js';

/**
 * @typedef {object} DirConfig
 * @property {string} url
 * @property {boolean} [starttls]
 * @property {string | null} [ca_pem]
 * @property {string} bind_dn
 * @property {string} user_base
 * @property {string | null} [user_filter]
 * @property {string} group_base
 * @property {string | null} [group_filter]
 * @property {string} [flavour]
 * @property {string | null} [login_attribute]
 * @property {string | null} [disabled_filter]
 * @property {string | null} [disabled_ou]
 * @property {{group: string, role: string}[]} [signin]
 * @property {number} [sync_minutes]
 */

/**
 * @typedef {object} Plan
 * @property {number} users
 * @property {number} groups
 * @property {string[]} added
 * @property {number} added_total
 * @property {string[]} removed
 * @property {number} removed_total
 * @property {string[]} disabled
 * @property {number} disabled_total
 * @property {string[]} enabled
 * @property {number} enabled_total
 * @property {{username: string, added: string[], removed: string[]}[]} memberships
 * @property {number} memberships_total
 * @property {string[]} local_names
 * @property {number} local_names_total
 */

/** Text inputs and the config field each holds ('' sends null). */
const TEXT_FIELDS = /** @type {const} */ ([
  ['dir-url', 'url'],
  ['dir-bind-dn', 'bind_dn'],
  ['dir-user-base', 'user_base'],
  ['dir-user-filter', 'user_filter'],
  ['dir-login', 'login_attribute'],
  ['dir-group-base', 'group_base'],
  ['dir-group-filter', 'group_filter'],
  ['dir-disabled-filter', 'disabled_filter'],
  ['dir-disabled-ou', 'disabled_ou'],
  ['dir-ca', 'ca_pem'],
]);
/** Fields that are required (sent as '' rather than null). */
const REQUIRED = new Set(['url', 'bind_dn', 'user_base', 'group_base']);

/** @param {string} id */
const input = (id) => /** @type {HTMLInputElement} */ ($(id));

/** @param {DirConfig} c */
function fill(c) {
  for (const [id, key] of TEXT_FIELDS) input(id).value = /** @type {string} */ (c[key] ?? '');
  input('dir-starttls').checked = Boolean(c.starttls);
  input('dir-flavour').value = c.flavour || 'openldap';
  input('dir-minutes').value = String(c.sync_minutes ?? 0);
  input('dir-signin').value = (c.signin || []).map((r) => `${r.group}, ${r.role}`).join('\n');
}

/**
 * The sign-in rules typed one per line as "group, role".
 * @returns {{group: string, role: string}[]}
 */
function signinRules() {
  return input('dir-signin').value.split('\n').map((l) => l.trim()).filter(Boolean).map((line, i) => {
    const at = line.lastIndexOf(',');
    if (at < 0) throw new Error(`Sign-in line ${i + 1}: write “group, teacher” or “group, admin”.`);
    return { group: line.slice(0, at).trim(), role: line.slice(at + 1).trim().toLowerCase() };
  });
}

/** The form as the API's body. */
function body() {
  /** @type {Record<string, unknown>} */
  const config = {};
  for (const [id, key] of TEXT_FIELDS) {
    const v = input(id).value.trim();
    config[key] = v || (REQUIRED.has(key) ? '' : null);
  }
  config.starttls = input('dir-starttls').checked;
  config.flavour = input('dir-flavour').value;
  config.sync_minutes = Number(input('dir-minutes').value || 0);
  config.signin = signinRules();
  /** @type {Record<string, unknown>} */
  const b = { config };
  const pw = input('dir-bind-pw').value;
  if (pw) b.bind_password = pw;
  return b;
}

/** Loads the settings; a non-administrator sees them read-only. */
async function load() {
  const [got, me] = await Promise.all([api('GET', '/api/v1/directory/config'), api('GET', '/api/v1/session')]);
  if (got.configured) fill(got.config);
  input('dir-bind-pw').placeholder = got.bind_password_error
    ? 'Must be entered again'
    : got.bind_password_set ? 'Set (leave empty to keep)' : 'Not set';
  // The stored password no longer decrypts on this server (key lost, or a
  // backup restored elsewhere): say so, or every sync just fails.
  if (got.bind_password_error) showNotice(got.bind_password_error);
  const admin = me.user && me.user.role === 'admin';
  for (const f of /** @type {NodeListOf<HTMLInputElement>} */ (document.querySelectorAll('#dir-form input, #dir-form select, #dir-form textarea'))) {
    f.disabled = !admin;
  }
  input('dir-save').disabled = !admin;
  $('dir-admin-only').hidden = admin;
  await loadRuns();
}

/** The last syncs. */
async function loadRuns() {
  /** @type {{at: number, trigger: string, dry_run: boolean, outcome: string, summary: any}[]} */
  const runs = await api('GET', '/api/v1/directory/sync');
  const rows = runs.map((r) => {
    const tr = el('tr');
    const what = r.outcome === 'ok'
      ? counts(r.summary.plan)
      : `Failed: ${r.summary.error || 'unknown error'}`;
    tr.append(el('td', '', formatTime(r.at)), el('td', '', `${r.dry_run ? 'Dry run' : 'Sync'} (${r.trigger})`), el('td', '', what));
    return tr;
  });
  if (!rows.length) {
    const tr = el('tr');
    const td = el('td', 'hint', 'No sync yet.');
    td.setAttribute('colspan', '3');
    tr.append(td);
    rows.push(tr);
  }
  $('dir-runs').querySelector('tbody').replaceChildren(...rows);
}

/**
 * One line of counts for a plan.
 * @param {Plan} p
 */
function counts(p) {
  return `${p.users} users, ${p.groups} groups: ${p.added_total} new, ${p.removed_total} gone, ${p.disabled_total} disabled, ${p.enabled_total} enabled again, ${p.memberships_total} with group changes`;
}

/**
 * A labelled list of names, or nothing when empty.
 * @param {string} title
 * @param {string[]} names
 * @param {number} total
 */
function nameList(title, names, total) {
  if (!total) return [];
  const more = total > names.length ? ` and ${total - names.length} more` : '';
  const p = el('p', '');
  p.append(el('strong', '', `${title}: `), `${names.join(', ')}${more}`);
  return [p];
}

/**
 * Shows a plan: what changed, or what a dry run would change.
 * @param {Plan} p
 * @param {boolean} dryRun
 * @param {number} ended
 */
function showPlan(p, dryRun, ended) {
  const head = el('p', 'summary', `${dryRun ? 'A sync would find' : 'Synced'}: ${counts(p)}.${ended ? ` ${ended} console sessions ended.` : ''}`);
  const parts = [
    head,
    ...nameList('New accounts', p.added, p.added_total),
    ...nameList('No longer in the directory (lose access)', p.removed, p.removed_total),
    ...nameList('Disabled (lose access)', p.disabled, p.disabled_total),
    ...nameList('Enabled again', p.enabled, p.enabled_total),
    ...nameList('Left alone: a local account has the name', p.local_names, p.local_names_total),
  ];
  if (p.memberships_total) {
    const table = el('table', 'data compact');
    table.setAttribute('aria-label', 'Group membership changes');
    const thead = el('thead');
    const hr = el('tr');
    for (const h of ['User', 'Joins', 'Leaves']) {
      const th = el('th', '', h);
      th.setAttribute('scope', 'col');
      hr.append(th);
    }
    thead.append(hr);
    const tbody = el('tbody');
    for (const m of p.memberships) {
      const tr = el('tr');
      tr.append(el('td', '', m.username), el('td', '', m.added.join(', ')), el('td', '', m.removed.join(', ')));
      tbody.append(tr);
    }
    table.append(thead, tbody);
    parts.push(table);
  }
  $('dir-plan').replaceChildren(...parts);
}

/**
 * Runs `f`, showing its error in the notice line.
 * @param {() => Promise<void>} f
 */
async function act(f) {
  hideNotice();
  try {
    await f();
  } catch (e) {
    showNotice(e instanceof Error ? e.message : String(e));
  }
}

$('dir-form').addEventListener('submit', (e) => {
  e.preventDefault();
  act(async () => {
    await api('PUT', '/api/v1/directory/config', body());
    input('dir-bind-pw').value = '';
    await load();
    // Said once the form shows what was stored.
    showNotice('Directory settings saved.', 'info');
  });
});

$('dir-test').addEventListener('click', () => {
  act(async () => {
    const result = $('dir-test-result');
    result.textContent = 'Testing…';
    // Administrators test what is in the form; others the saved settings.
    const unsaved = !input('dir-save').disabled;
    const r = await api('POST', '/api/v1/directory/test', unsaved ? body() : undefined);
    result.textContent = r.ok
      ? `Connected: ${r.users} users and ${r.groups} groups found.`
      : `Test failed: ${r.error}`;
  });
});

/** @param {boolean} dryRun */
function sync(dryRun) {
  act(async () => {
    $('dir-plan').replaceChildren(el('p', 'summary', dryRun ? 'Working out what would change…' : 'Syncing…'));
    try {
      const r = await api('POST', `/api/v1/directory/sync?dry_run=${dryRun}`);
      showPlan(r.plan, dryRun, r.sessions_ended);
    } catch (e) {
      $('dir-plan').replaceChildren();
      throw e;
    } finally {
      await loadRuns().catch(() => {});
    }
  });
}

$('dir-dry-run').addEventListener('click', () => sync(true));
$('dir-sync').addEventListener('click', () => sync(false));

initPage('Directory');
load().catch((e) => showNotice(e instanceof Error ? e.message : String(e)));
