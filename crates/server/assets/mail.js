// The Safeguarding mail page: the school's SMTP settings (the password is
// never shown back), a test message, and the rules that say which
// severities and categories go to whom, at once or in the daily digest.
// The server validates and judges everything.

import { api } from './api.js';
import { $, el, formatTime, hideNotice, initPage, showNotice } from './page.js';

/**
 * @typedef {object} MailConfig
 * @property {string} host
 * @property {number} port
 * @property {string} [security]
 * @property {string | null} [ca_pem]
 * @property {string | null} [username]
 * @property {string} from
 * @property {string} console_url
 * @property {number} [per_hour]
 * @property {string | null} [digest_time]
 */

/**
 * @typedef {object} Rule
 * @property {number[]} severities
 * @property {string[]} categories
 * @property {{address: string, user?: string | null}[]} recipients
 * @property {'immediate' | 'digest'} mode
 */

/** @type {Rule[]} */
let rules = [];

/** @param {string} id */
const input = (id) => /** @type {HTMLInputElement} */ ($(id));

/** @param {MailConfig} c */
function fill(c) {
  input('mail-host').value = c.host;
  input('mail-port').value = String(c.port);
  input('mail-security').value = c.security || 'starttls';
  input('mail-ca').value = c.ca_pem || '';
  input('mail-user').value = c.username || '';
  input('mail-from').value = c.from;
  input('mail-console').value = c.console_url;
  input('mail-per-hour').value = String(c.per_hour ?? 10);
  input('mail-digest').value = c.digest_time || '';
}

/** The form as the API's body. */
function body() {
  const text = (/** @type {string} */ id) => input(id).value.trim();
  /** @type {Record<string, unknown>} */
  const b = {
    config: {
      host: text('mail-host'),
      port: Number(text('mail-port') || 0),
      security: input('mail-security').value,
      ca_pem: text('mail-ca') || null,
      username: text('mail-user') || null,
      from: text('mail-from'),
      console_url: text('mail-console'),
      per_hour: Number(text('mail-per-hour') || 0),
      digest_time: text('mail-digest') || null,
    },
  };
  const pw = input('mail-password').value;
  if (input('mail-password-clear').checked) b.password = '';
  else if (pw) b.password = pw;
  return b;
}

/** Loads the settings and rules. */
async function load() {
  const got = await api('GET', '/api/v1/mail/settings');
  if (got.configured) fill(got.config);
  else input('mail-console').value = location.origin;
  input('mail-password').placeholder = got.password_error
    ? 'Must be entered again'
    : got.password_set ? 'Set (leave empty to keep)' : 'Not set';
  input('mail-password-clear').checked = false;
  input('mail-password-clear').disabled = !got.password_set;
  if (got.password_error) showNotice(got.password_error);
  $('mail-digest-hint').textContent = got.next_digest
    ? `Next digest: ${formatTime(got.next_digest)}. It counts what happened since the previous one.`
    : 'Empty: no digest. The digest counts what happened since the previous one.';
  rules = (await api('GET', '/api/v1/mail/rules')).rules;
  showRules();
}

/** @param {Rule['recipients'][number]} r */
function recipientText(r) {
  return r.user ? `${r.address} (counts what ${r.user} may see)` : r.address;
}

/** Draws the rules table. */
function showRules() {
  const rows = rules.map((r, i) => {
    const tr = el('tr');
    const remove = el('button', 'danger', 'Remove');
    remove.setAttribute('type', 'button');
    remove.setAttribute('aria-label', `Remove rule ${i + 1}`);
    remove.addEventListener('click', () => act(async () => {
      await saveRules(rules.filter((_, j) => j !== i));
      showNotice('Rule removed.', 'info');
    }));
    const cell = el('td');
    cell.append(remove);
    tr.append(
      el('td', '', r.severities.join(', ')),
      el('td', '', r.categories.length ? r.categories.join(', ') : 'Every category'),
      el('td', '', r.recipients.map(recipientText).join('; ')),
      el('td', '', r.mode === 'digest' ? 'Daily digest' : 'At once'),
      cell,
    );
    return tr;
  });
  if (!rows.length) {
    const tr = el('tr');
    const td = el('td', 'hint', 'No rules yet: nobody is told.');
    td.setAttribute('colspan', '5');
    tr.append(td);
    rows.push(tr);
  }
  $('mail-rules').querySelector('tbody').replaceChildren(...rows);
}

/**
 * Stores the whole list of rules, then shows what was stored.
 * @param {Rule[]} next
 */
async function saveRules(next) {
  await api('PUT', '/api/v1/mail/rules', { rules: next });
  rules = (await api('GET', '/api/v1/mail/rules')).rules;
  showRules();
}

/**
 * The rule in the new-rule form.
 * @returns {Rule}
 */
function newRule() {
  const severities = [...document.querySelectorAll('#rule-severities input')]
    .filter((c) => /** @type {HTMLInputElement} */ (c).checked)
    .map((c) => Number(/** @type {HTMLInputElement} */ (c).value));
  const categories = input('rule-categories').value.split(',').map((c) => c.trim()).filter(Boolean);
  const recipients = input('rule-recipients').value.split('\n').map((l) => l.trim()).filter(Boolean).map((line) => {
    const [address, user] = line.split(',').map((p) => p.trim());
    return user ? { address, user } : { address };
  });
  const mode = input('rule-mode').value === 'digest' ? 'digest' : 'immediate';
  return { severities, categories, recipients, mode };
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

$('mail-form').addEventListener('submit', (e) => {
  e.preventDefault();
  act(async () => {
    await api('PUT', '/api/v1/mail/settings', body());
    input('mail-password').value = '';
    await load();
    // Said once the form shows what was stored.
    showNotice('Mail settings saved.', 'info');
  });
});

$('mail-test-form').addEventListener('submit', (e) => {
  e.preventDefault();
  act(async () => {
    const result = $('mail-test-result');
    result.textContent = 'Sending…';
    try {
      const r = await api('POST', '/api/v1/mail/test', { to: input('mail-test-to').value.trim() });
      result.textContent = r.ok ? 'Sent. Check the mailbox.' : `Not sent: ${r.error}`;
    } catch (err) {
      result.textContent = '';
      throw err;
    }
  });
});

$('rule-form').addEventListener('submit', (e) => {
  e.preventDefault();
  act(async () => {
    await saveRules([...rules, newRule()]);
    input('rule-categories').value = '';
    input('rule-recipients').value = '';
    showNotice('Rule added.', 'info');
  });
});

initPage('Safeguarding mail');
load().catch((e) => showNotice(e instanceof Error ? e.message : String(e)));
