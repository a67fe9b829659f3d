// Sending commands and following the latest one's per-device results, both
// from the live stream and by polling the command until nothing is pending.

import { api } from './api.js';

/** How often the latest command is polled while some target is pending. */
const POLL_MS = 1000;
/** Consecutive poll failures after which polling gives up. */
const POLL_MAX_ERRORS = 10;
/** Result events kept for commands whose POST has not answered yet. */
const EARLY_LIMIT = 8;

/** What the results panel calls each command type. */
const LABELS = {
  message: 'Message',
  launch_url: 'Open website',
  lock: 'Lock',
  unlock: 'Unlock',
  clear_message: 'Clear message',
  block_internet: 'Block internet',
  unblock_internet: 'Allow internet',
  logout: 'Log out students',
  close_tab: 'Close tab',
  close_all_tabs: 'Close all tabs',
  set_web_filter: 'Web lists',
  power: 'Power',
  cancel_power: 'Cancel power countdown',
  meeting: 'Meeting invite',
};

/** Power actions, as the command line names them. */
const POWER_LABELS = { shutdown: 'Shut down', restart: 'Restart', logoff: 'Log off' };

/** The statuses counted in the summary, in display order. */
const STATUSES = ['done', 'failed', 'offline', 'pending'];

/**
 * @typedef {{status: string, reason: string | null}} Outcome
 * @typedef {{id: number, type: string, targets: Map<number, Outcome>}} Tracked
 */

export class Commands {
  /**
   * @param {import('./grid.js').Grid} grid
   * @param {{panel: HTMLElement, label: HTMLElement, summary: HTMLElement}} view
   */
  constructor(grid, view) {
    this.grid = grid;
    this.view = view;
    /** The latest command sent from this page. @type {Tracked | null} */
    this.current = null;
    /** Results that arrived before their command's POST answered. @type {Map<number, Map<number, Outcome>>} */
    this.early = new Map();
    /** @type {ReturnType<typeof setTimeout> | null} */
    this.pollTimer = null;
  }

  /**
   * Sends a command to some devices and makes it the one the panel follows.
   * @param {{type: string} & Record<string, unknown>} command
   * @param {number[]} deviceIds
   * @returns {Promise<void>}
   * @throws {import('./api.js').ApiError}
   */
  async send(command, deviceIds) {
    const res = await api('POST', '/api/v1/commands', { devices: deviceIds, command });
    /** @type {Tracked} */
    const tracked = { id: res.id, type: command.type, targets: new Map() };
    for (const t of res.targets || []) tracked.targets.set(t.device_id, { status: t.status, reason: t.reason ?? null });
    for (const [deviceId, outcome] of this.early.get(res.id) || []) this.#apply(tracked, deviceId, outcome);
    this.early.clear();

    this.current = tracked;
    this.view.panel.dataset.commandId = String(tracked.id);
    this.view.panel.dataset.commandType = tracked.type;
    const what = command.type === 'lock' && command.minutes ? `Lock for ${command.minutes} min`
      : command.type === 'power' ? `${POWER_LABELS[String(command.action)] ?? 'Power'} in ${command.countdown_secs} s`
        : (LABELS[tracked.type] || tracked.type);
    this.view.label.textContent = `${what} → ${tracked.targets.size} computer${tracked.targets.size === 1 ? '' : 's'}`;
    this.grid.clearResults();
    for (const [deviceId, o] of tracked.targets) this.grid.setResult(deviceId, o.status, o.reason);
    this.#renderSummary();
    this.#schedulePoll(tracked.id, 0);
  }

  /**
   * Applies a result event from the stream.
   * @param {{command_id: number, device_id: number, status: string, reason: string | null}} msg
   */
  onResult(msg) {
    const outcome = { status: msg.status, reason: msg.reason ?? null };
    if (this.current && msg.command_id === this.current.id) {
      if (this.#apply(this.current, msg.device_id, outcome)) this.#renderSummary();
      return;
    }
    if (this.current && msg.command_id < this.current.id) return;
    // Possibly for a command we just posted whose answer has not arrived yet.
    let pending = this.early.get(msg.command_id);
    if (!pending) {
      if (this.early.size >= EARLY_LIMIT) this.early.delete(this.early.keys().next().value);
      pending = new Map();
      this.early.set(msg.command_id, pending);
    }
    pending.set(msg.device_id, outcome);
  }

  /**
   * Records one device's outcome; a final status is never taken back to
   * pending (a poll answer may be older than a stream event).
   * @param {Tracked} tracked
   * @param {number} deviceId
   * @param {Outcome} outcome
   * @returns {boolean} whether anything changed
   */
  #apply(tracked, deviceId, outcome) {
    const old = tracked.targets.get(deviceId);
    if (old && old.status !== 'pending' && outcome.status === 'pending') return false;
    if (old && old.status === outcome.status && old.reason === outcome.reason) return false;
    tracked.targets.set(deviceId, outcome);
    if (tracked === this.current) this.grid.setResult(deviceId, outcome.status, outcome.reason);
    return true;
  }

  /** Writes the counts line, e.g. `done 30 · failed 0 · offline 0 · pending 0`. */
  #renderSummary() {
    const counts = Object.fromEntries(STATUSES.map((s) => [s, 0]));
    for (const { status } of this.current ? this.current.targets.values() : []) {
      if (status in counts) counts[status] += 1;
    }
    this.view.summary.textContent = STATUSES.map((s) => `${s} ${counts[s]}`).join(' · ');
    this.view.panel.classList.toggle('busy', counts.pending > 0);
    this.view.panel.classList.toggle('has-failures', counts.failed > 0);
  }

  /**
   * Polls the command after `delay` ms, unless a newer command replaced it.
   * @param {number} id
   * @param {number} errors consecutive failed polls so far
   * @param {number} [delay]
   */
  #schedulePoll(id, errors, delay = POLL_MS) {
    if (this.pollTimer) clearTimeout(this.pollTimer);
    this.pollTimer = setTimeout(() => this.#poll(id, errors), delay);
  }

  /**
   * Fetches the command's targets; polls again while any is pending.
   * @param {number} id
   * @param {number} errors
   */
  async #poll(id, errors) {
    this.pollTimer = null;
    if (!this.current || this.current.id !== id) return;
    if (![...this.current.targets.values()].some((o) => o.status === 'pending')) return;
    try {
      const res = await api('GET', `/api/v1/commands/${id}`);
      if (!this.current || this.current.id !== id) return;
      let changed = false;
      for (const t of res.targets || []) {
        changed = this.#apply(this.current, t.device_id, { status: t.status, reason: t.reason ?? null }) || changed;
      }
      if (changed) this.#renderSummary();
      errors = 0;
    } catch (err) {
      errors += 1;
      if (errors >= POLL_MAX_ERRORS || (err && err.status >= 400 && err.status < 500)) return;
    }
    if (this.current && this.current.id === id) this.#schedulePoll(id, errors);
  }
}
