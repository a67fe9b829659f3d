// The classroom's Power menu (issue 13.6): shut down, restart or log off the
// selected computers after a countdown the students see (0 to 600 s), cancel
// a running countdown, wake them (Wake-on-LAN, results per computer), and
// the school's scheduled power-offs of a room. Builds its own toolbar button
// and dialog, shown to holders of command.power only.

import { api } from './api.js';
import { el, h } from './page.js';

const ACTIONS = /** @type {const} */ ([
  ['shutdown', 'Shut down'],
  ['restart', 'Restart'],
  ['logoff', 'Log off'],
]);
const DAYS = ['Mon', 'Tue', 'Wed', 'Thu', 'Fri', 'Sat', 'Sun'];
const MAX_COUNTDOWN = 600;

/**
 * "16:30" for a minute of the day.
 * @param {number} m
 */
function hhmm(m) {
  return `${String(Math.floor(m / 60)).padStart(2, '0')}:${String(m % 60).padStart(2, '0')}`;
}

export class PowerMenu {
  /**
   * @param {import('./grid.js').Grid} grid
   * @param {import('./commands.js').Commands} commands
   * @param {(e: unknown) => void} onError
   */
  constructor(grid, commands, onError) {
    this.grid = grid;
    this.commands = commands;
    this.onError = onError;
    document.head.append(h('link', { rel: 'stylesheet', href: '/assets/power.css' }));
    this.#buildButton();
    this.dialog = this.#buildDialog();
    document.body.append(this.dialog);
  }

  #buildButton() {
    const toolbar = document.querySelector('.toolbar');
    const button = h('button', { id: 'power-button', type: 'button', 'data-right': 'command.power', 'aria-haspopup': 'dialog' }, ['Power…']);
    button.addEventListener('click', () => { void this.open(); });
    toolbar?.append(h('div', { class: 'group', 'data-right-group': '' }, [button]));
  }

  /** @returns {HTMLDialogElement} */
  #buildDialog() {
    const actions = h('fieldset', { class: 'power-actions' }, [h('legend', {}, ['What to do'])]);
    for (const [value, label] of [...ACTIONS, ['wake', 'Wake (Wake-on-LAN)']]) {
      const input = h('input', { type: 'radio', name: 'power-action', id: `power-${value}`, value });
      if (value === 'shutdown') input.setAttribute('checked', '');
      actions.append(h('label', { class: 'checkbox', for: `power-${value}` }, [input, ` ${label}`]));
    }
    const countdown = h('input', { id: 'power-countdown', type: 'number', min: '0', max: String(MAX_COUNTDOWN), step: '1', value: '60', inputmode: 'numeric' });
    const form = h('form', { method: 'dialog', id: 'power-form', novalidate: '' }, [
      h('p', { id: 'power-target', class: 'hint' }),
      actions,
      h('div', { class: 'fields' }, [h('label', { for: 'power-countdown' }, ['Countdown (seconds, 0–600)']), countdown]),
      h('p', { class: 'hint' }, ['Students see the countdown and can save their work; you can cancel it until it ends.']),
      h('p', { id: 'power-error', class: 'form-error', role: 'alert', hidden: '' }),
      h('div', { class: 'actions' }, [
        h('button', { id: 'power-go', type: 'submit', class: 'primary' }, ['Do it']),
        h('button', { id: 'power-cancel-countdown', type: 'button' }, ['Cancel countdown']),
        h('button', { id: 'power-close', type: 'button' }, ['Close']),
      ]),
      h('ul', { id: 'power-results', class: 'power-results', 'aria-live': 'polite', 'aria-label': 'Results per computer' }),
    ]);
    const schedules = h('section', { 'aria-labelledby': 'power-schedules-heading' }, [
      h('h3', { id: 'power-schedules-heading' }, ['Scheduled power-offs']),
      h('table', { id: 'power-schedules', class: 'data' }, [
        h('thead', {}, [h('tr', {}, ['Room', 'Time', 'Days', 'Action', 'Countdown', ''].map((t, i) => h('th', { scope: 'col' }, [i === 5 ? h('span', { class: 'visually-hidden' }, ['Delete']) : t])))]),
        h('tbody'),
      ]),
      this.#buildScheduleForm(),
    ]);
    const dialog = /** @type {HTMLDialogElement} */ (h('dialog', { id: 'power-dialog', class: 'modal power-dialog', 'aria-labelledby': 'power-title' }, [
      h('div', { class: 'modal-head' }, [h('h2', { id: 'power-title' }, ['Power'])]),
      form,
      schedules,
    ]));
    form.addEventListener('submit', (ev) => { ev.preventDefault(); void this.#go(); });
    dialog.querySelector('#power-cancel-countdown')?.addEventListener('click', () => { void this.#cancel(); });
    dialog.querySelector('#power-close')?.addEventListener('click', () => dialog.close());
    return dialog;
  }

  #buildScheduleForm() {
    const days = h('fieldset', { class: 'power-days' }, [h('legend', {}, ['Days'])]);
    DAYS.forEach((d, i) => {
      const input = h('input', { type: 'checkbox', id: `power-day-${i}`, value: String(i) });
      if (i < 5) input.setAttribute('checked', '');
      days.append(h('label', { class: 'checkbox', for: `power-day-${i}` }, [input, ` ${d}`]));
    });
    const action = h('select', { id: 'power-schedule-action' }, ACTIONS.map(([v, l]) => h('option', { value: v }, [l])));
    const form = h('form', { id: 'power-schedule-form', class: 'power-schedule-form', novalidate: '' }, [
      h('div', { class: 'fields' }, [
        h('label', { for: 'power-schedule-group' }, ['Room']), h('select', { id: 'power-schedule-group' }),
        h('label', { for: 'power-schedule-time' }, ['Time']), h('input', { id: 'power-schedule-time', type: 'time', value: '16:30', required: '' }),
        h('label', { for: 'power-schedule-action' }, ['Action']), action,
        h('label', { for: 'power-schedule-countdown' }, ['Countdown (seconds)']),
        h('input', { id: 'power-schedule-countdown', type: 'number', min: '0', max: String(MAX_COUNTDOWN), value: '120', inputmode: 'numeric' }),
      ]),
      days,
      h('div', { class: 'actions' }, [h('button', { id: 'power-schedule-add', type: 'submit' }, ['Add schedule'])]),
    ]);
    form.addEventListener('submit', (ev) => { ev.preventDefault(); void this.#addSchedule(); });
    return form;
  }

  /** @param {string} id */
  #el(id) {
    return /** @type {HTMLElement} */ (this.dialog.querySelector(`#${id}`));
  }

  /** @param {string} text */
  #error(text) {
    const e = this.#el('power-error');
    e.textContent = text;
    e.hidden = !text;
  }

  /** Opens the dialog for the selected computers. */
  async open() {
    const n = this.grid.selectedIds().length;
    this.#el('power-target').textContent = n
      ? `${n} selected computer${n === 1 ? '' : 's'}.`
      : 'Select computers first to shut them down, restart, log off or wake them.';
    /** @type {HTMLButtonElement} */ (this.#el('power-go')).disabled = n === 0;
    /** @type {HTMLButtonElement} */ (this.#el('power-cancel-countdown')).disabled = n === 0;
    this.#error('');
    this.#el('power-results').replaceChildren();
    this.dialog.showModal();
    await this.#loadSchedules();
  }

  async #go() {
    const ids = this.grid.selectedIds();
    const action = /** @type {HTMLInputElement | null} */ (this.dialog.querySelector('input[name="power-action"]:checked'))?.value;
    const secs = Number(/** @type {HTMLInputElement} */ (this.#el('power-countdown')).value);
    if (!Number.isInteger(secs) || secs < 0 || secs > MAX_COUNTDOWN) {
      this.#error(`The countdown must be a whole number of seconds from 0 to ${MAX_COUNTDOWN}.`);
      return;
    }
    this.#error('');
    try {
      if (action === 'wake') {
        const res = await api('POST', '/api/v1/power/wake', { devices: ids });
        this.#showWake(res.results);
      } else {
        await this.commands.send({ type: 'power', action, countdown_secs: secs }, ids);
        this.#el('power-results').replaceChildren(el('li', '', 'Sent: the results are on the tiles and in the command line above the grid.'));
      }
    } catch (e) {
      this.#error(e instanceof Error ? e.message : String(e));
    }
  }

  async #cancel() {
    try {
      await this.commands.send({ type: 'cancel_power' }, this.grid.selectedIds());
      this.#el('power-results').replaceChildren(el('li', '', 'Cancel sent.'));
    } catch (e) {
      this.#error(e instanceof Error ? e.message : String(e));
    }
  }

  /** @param {{device_id: number, status: string, via: string | null, reason: string | null}[]} results */
  #showWake(results) {
    const names = new Map((this.grid.order ?? []).map((t) => [t.device.id, t.device.hostname]));
    this.#el('power-results').replaceChildren(...results.map((r) => {
      const name = names.get(r.device_id) ?? `#${r.device_id}`;
      const text = r.status === 'sent'
        ? `${name}: woken by ${r.via}${r.reason ? ` (${r.reason})` : ''}`
        : `${name}: not woken: ${r.reason}`;
      return el('li', r.status === 'sent' ? 'ok' : 'failed', text);
    }));
  }

  async #loadSchedules() {
    try {
      const [schedules, groups] = await Promise.all([api('GET', '/api/v1/power/schedules'), api('GET', '/api/v1/groups')]);
      const rooms = groups.filter((g) => g.kind === 'computer');
      const names = new Map(groups.map((g) => [g.id, g.name]));
      const select = /** @type {HTMLSelectElement} */ (this.#el('power-schedule-group'));
      select.replaceChildren(...rooms.map((g) => h('option', { value: String(g.id) }, [g.name])));
      const tbody = /** @type {HTMLTableElement} */ (this.#el('power-schedules')).tBodies[0];
      tbody.replaceChildren(...schedules.map((s) => {
        const del = h('button', { type: 'button', class: 'danger', 'aria-label': `Delete the schedule of ${names.get(s.group_id) ?? s.group_id} at ${hhmm(s.minute_of_day)}` }, ['Delete']);
        del.addEventListener('click', () => { void this.#deleteSchedule(s.id); });
        const days = DAYS.filter((_, i) => s.days & (1 << i)).join(' ');
        const label = ACTIONS.find(([v]) => v === s.action)?.[1] ?? s.action;
        return h('tr', {}, [names.get(s.group_id) ?? String(s.group_id), hhmm(s.minute_of_day), days, label, `${s.countdown_secs} s`]
          .map((t) => h('td', {}, [t])).concat([h('td', {}, [del])]));
      }));
      if (!schedules.length) tbody.append(h('tr', {}, [h('td', { colspan: '6', class: 'hint' }, ['No power-off is scheduled.'])]));
    } catch (e) {
      this.#error(e instanceof Error ? e.message : String(e));
    }
  }

  async #addSchedule() {
    const time = /** @type {HTMLInputElement} */ (this.#el('power-schedule-time')).value;
    const [hh, mm] = time.split(':').map(Number);
    if (!time || Number.isNaN(hh) || Number.isNaN(mm)) {
      this.#error('Choose the time of day.');
      return;
    }
    let days = 0;
    this.dialog.querySelectorAll('.power-days input:checked').forEach((i) => { days |= 1 << Number(/** @type {HTMLInputElement} */ (i).value); });
    const body = {
      group_id: Number(/** @type {HTMLSelectElement} */ (this.#el('power-schedule-group')).value),
      action: /** @type {HTMLSelectElement} */ (this.#el('power-schedule-action')).value,
      minute_of_day: hh * 60 + mm,
      days,
      countdown_secs: Number(/** @type {HTMLInputElement} */ (this.#el('power-schedule-countdown')).value),
    };
    try {
      await api('POST', '/api/v1/power/schedules', body);
      this.#error('');
      await this.#loadSchedules();
    } catch (e) {
      this.#error(e instanceof Error ? e.message : String(e));
    }
  }

  /** @param {number} id */
  async #deleteSchedule(id) {
    try {
      await api('DELETE', `/api/v1/power/schedules/${id}`);
      await this.#loadSchedules();
    } catch (e) {
      this.#error(e instanceof Error ? e.message : String(e));
    }
  }
}
