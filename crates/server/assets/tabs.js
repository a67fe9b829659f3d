// The "Tabs" dialog: one device's open browser tabs, as its browser
// extension reports them, kept live from the stream, with a Close button per
// tab that sends `close_tab` to that device and shows the outcome.

import { api } from './api.js';
import { el } from './page.js';

/** How often a close command is polled while its result is pending. */
const POLL_MS = 1000;
/** Polls before giving up on a result. */
const POLL_LIMIT = 30;

/**
 * @typedef {object} BrowserTab
 * @property {number} id
 * @property {number} window_id
 * @property {string} title
 * @property {string} url
 * @property {boolean} active
 */

/**
 * @typedef {object} TabsElements
 * @property {HTMLDialogElement} dialog `#tabs-dialog`
 * @property {HTMLElement} title `#tabs-title`
 * @property {HTMLElement} list `#tabs-list`
 * @property {HTMLElement} empty `#tabs-empty`
 * @property {HTMLElement} status `#tabs-status`
 * @property {HTMLButtonElement} close `#tabs-close`
 */

/**
 * The host of a URL, or the URL itself when it has none.
 * @param {string} url
 * @returns {string}
 */
export function hostOf(url) {
  try {
    const u = new URL(url);
    return u.host || url;
  } catch {
    return url;
  }
}

/**
 * The tab a device shows: the first active one, if any.
 * @param {import('./grid.js').DeviceState | null | undefined} state
 * @returns {BrowserTab | null}
 */
export function activeTab(state) {
  const tabs = state && Array.isArray(state.tabs) ? state.tabs : [];
  return tabs.find((t) => t && t.active) || null;
}

export class TabsDialog {
  /**
   * @param {TabsElements} els
   * @param {import('./grid.js').Grid} grid where devices come from
   */
  constructor(els, grid) {
    this.els = els;
    this.grid = grid;
    /** The device shown. @type {number | null} */
    this.deviceId = null;
    /** Close commands sent from here: command id → tab. @type {Map<number, {tabId: number, title: string}>} */
    this.pending = new Map();
    els.close.addEventListener('click', () => this.close());
    els.dialog.addEventListener('close', () => {
      this.deviceId = null;
    });
    els.list.addEventListener('click', (event) => {
      const button = /** @type {HTMLElement} */ (event.target).closest('button.close-tab');
      if (button) this.#closeTab(/** @type {HTMLButtonElement} */ (button));
    });
  }

  /**
   * Opens the dialog for a device.
   * @param {import('./grid.js').Device} device
   */
  open(device) {
    this.deviceId = device.id;
    this.els.dialog.dataset.deviceId = String(device.id);
    this.#setStatus('', '');
    this.render();
    if (!this.els.dialog.open) this.els.dialog.showModal();
  }

  /** Closes the dialog. */
  close() {
    if (this.els.dialog.open) this.els.dialog.close();
    this.deviceId = null;
  }

  /**
   * A device changed (from the stream): re-renders if it is on view.
   * @param {import('./grid.js').Device} device
   */
  onDevice(device) {
    if (device.id === this.deviceId && this.els.dialog.open) this.render();
  }

  /**
   * A command result from the stream: shows it if it is one of ours.
   * @param {{command_id: number, device_id: number, status: string, reason: string | null}} msg
   */
  onResult(msg) {
    const sent = this.pending.get(msg.command_id);
    if (!sent || msg.status === 'pending') return;
    this.pending.delete(msg.command_id);
    this.#showOutcome(sent, msg.status, msg.reason);
  }

  /** Draws the device's tabs. */
  render() {
    const device = this.deviceId === null ? null : this.grid.device(this.deviceId);
    const { title, list, empty } = this.els;
    if (!device) {
      title.textContent = 'Tabs';
      list.replaceChildren();
      empty.hidden = false;
      empty.textContent = 'This computer is no longer listed.';
      return;
    }
    const s = device.state || {};
    const tabs = Array.isArray(s.tabs) ? s.tabs : [];
    title.textContent = `Tabs · ${device.hostname}`;
    empty.hidden = tabs.length > 0 && device.online;
    if (!device.online) empty.textContent = 'This computer is offline.';
    else if (s.extension === 'disconnected') empty.textContent = 'The browser extension is off on this computer, so its tabs are unknown.';
    else empty.textContent = 'No browser tabs are open.';
    const rows = device.online ? tabs.map((tab) => this.#row(tab)) : [];
    list.replaceChildren(...rows);
  }

  /**
   * One tab's row.
   * @param {BrowserTab} tab
   * @returns {HTMLElement}
   */
  #row(tab) {
    const row = el('li', `tab-row${tab.active ? ' active' : ''}`);
    row.dataset.tabId = String(tab.id);
    const text = el('div', 'tab-text');
    const name = el('span', 'tab-title', tab.title || hostOf(tab.url) || 'Untitled');
    name.title = tab.title || '';
    const url = el('span', 'tab-url', tab.url);
    url.title = tab.url;
    text.append(name, url);
    if (tab.active) text.append(el('span', 'badge active-tab', 'Active'));
    const close = /** @type {HTMLButtonElement} */ (el('button', 'close-tab', 'Close'));
    close.type = 'button';
    close.dataset.right = 'command.tabs';
    close.dataset.tabId = String(tab.id);
    close.setAttribute('aria-label', `Close tab ${tab.title || tab.url}`);
    row.append(text, close);
    return row;
  }

  /**
   * Sends close_tab for a row's tab.
   * @param {HTMLButtonElement} button
   */
  async #closeTab(button) {
    const deviceId = this.deviceId;
    if (deviceId === null) return;
    const tabId = Number(button.dataset.tabId);
    const row = button.closest('.tab-row');
    const title = row?.querySelector('.tab-title')?.textContent || `tab ${tabId}`;
    button.disabled = true;
    this.#setStatus(`Closing “${title}”…`, 'pending');
    let res;
    try {
      res = await api('POST', '/api/v1/commands', { devices: [deviceId], command: { type: 'close_tab', tab_id: tabId } });
    } catch (err) {
      button.disabled = false;
      this.#setStatus(`Could not close “${title}”: ${err.message}`, 'failed');
      return;
    }
    const sent = { tabId, title };
    const target = (res.targets || []).find((t) => t.device_id === deviceId);
    if (target && target.status !== 'pending') {
      this.#showOutcome(sent, target.status, target.reason ?? null);
      return;
    }
    this.pending.set(res.id, sent);
    this.#poll(res.id, deviceId, 0);
  }

  /**
   * Polls a close command until it is no longer pending (the stream usually
   * answers first).
   * @param {number} id
   * @param {number} deviceId
   * @param {number} tries
   */
  async #poll(id, deviceId, tries) {
    await new Promise((ok) => setTimeout(ok, POLL_MS));
    const sent = this.pending.get(id);
    if (!sent) return;
    try {
      const res = await api('GET', `/api/v1/commands/${id}`);
      const target = (res.targets || []).find((t) => t.device_id === deviceId);
      if (target && target.status !== 'pending') {
        this.pending.delete(id);
        this.#showOutcome(sent, target.status, target.reason ?? null);
        return;
      }
    } catch {
      // Try again below.
    }
    if (tries + 1 >= POLL_LIMIT) {
      this.pending.delete(id);
      this.#setStatus(`No answer about “${sent.title}” yet`, 'failed');
      return;
    }
    this.#poll(id, deviceId, tries + 1);
  }

  /**
   * Shows a close command's outcome.
   * @param {{tabId: number, title: string}} sent
   * @param {string} status
   * @param {string | null} reason
   */
  #showOutcome(sent, status, reason) {
    if (status === 'done') this.#setStatus(`Closed “${sent.title}”`, 'done');
    else if (status === 'offline') this.#setStatus(`Not closed: the computer is offline`, 'failed');
    else this.#setStatus(`Could not close “${sent.title}”: ${reason || status}`, 'failed');
    const button = this.els.list.querySelector(`button.close-tab[data-tab-id="${sent.tabId}"]`);
    if (button && status !== 'done') /** @type {HTMLButtonElement} */ (button).disabled = false;
  }

  /**
   * @param {string} text
   * @param {'' | 'pending' | 'done' | 'failed'} status
   */
  #setStatus(text, status) {
    this.els.status.textContent = text;
    this.els.status.dataset.status = status;
    this.els.status.hidden = !text;
  }
}
