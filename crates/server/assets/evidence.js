// A violation's evidence on the logs page: the screenshots shown large in a
// viewer (previous/next, arrow keys, a full-size view at the picture's own
// resolution, the picture on its own in a new tab) over a strip of all of
// them, and the matched text highlighted in its context.
//
// Student text (context, matched) only ever reaches the page as text nodes:
// the highlight is a <mark> element around a span of it, never HTML.

import { $, el } from './page.js';

/**
 * @typedef {object} Evidence
 * @property {number} id the violation
 * @property {number} screenshots how many, oldest first; the last is the moment of the match
 */

/** The violation shown, and the screenshot shown large. */
let shown = { id: 0, count: 0, host: '', n: 0 };

/**
 * The URL of a violation's screenshot.
 * @param {number} id
 * @param {number} n 0 = oldest
 * @returns {string}
 */
export function screenshotUrl(id, n) {
  return `/api/v1/violations/${encodeURIComponent(id)}/screenshots/${n}`;
}

/**
 * Where `matched` occurs in `text`, as [start, end) spans of `text`: as
 * written first; else ignoring case, where lowering keeps each character's
 * length (so a span of the lowered text is the same span of the original).
 * @param {string} text
 * @param {string} matched
 * @returns {[number, number][]}
 */
export function matchSpans(text, matched) {
  if (!matched) return [];
  const find = (/** @type {string} */ hay, /** @type {string} */ needle) => {
    /** @type {[number, number][]} */
    const spans = [];
    for (let at = hay.indexOf(needle); at >= 0; at = hay.indexOf(needle, at + needle.length)) {
      spans.push([at, at + needle.length]);
    }
    return spans;
  };
  const exact = find(text, matched);
  if (exact.length) return exact;
  const lower = text.toLowerCase();
  const needle = matched.toLowerCase();
  if (lower.length !== text.length || needle.length !== matched.length) return [];
  return find(lower, needle);
}

/**
 * `context` as text nodes, with each occurrence of `matched` in a <mark>.
 * @param {string} context
 * @param {string} matched
 * @returns {(string | HTMLElement)[]}
 */
export function highlighted(context, matched) {
  const text = context || '';
  /** @type {(string | HTMLElement)[]} */
  const out = [];
  let from = 0;
  for (const [start, end] of matchSpans(text, matched)) {
    if (start > from) out.push(text.slice(from, start));
    out.push(el('mark', 'match', text.slice(start, end)));
    from = end;
  }
  if (from < text.length || out.length === 0) out.push(text.slice(from));
  return out;
}

/**
 * What screenshot `n` of `count` is, in words.
 * @param {number} n
 * @param {number} count
 * @returns {string}
 */
function shotName(n, count) {
  return `Screenshot ${n + 1} of ${count}${n === count - 1 ? ', the moment of the match' : ''}`;
}

/**
 * Shows screenshot `n` (wrapped into range) large.
 * @param {number} n
 */
function showShot(n) {
  const { id, count, host } = shown;
  if (count === 0) return;
  n = ((n % count) + count) % count;
  shown.n = n;
  const url = screenshotUrl(id, n);
  const large = /** @type {HTMLImageElement} */ ($('violation-shot-large'));
  large.alt = `${shotName(n, count)} on ${host}`;
  $('violation-shot-caption').textContent = shotName(n, count).replace(', the', ' · the');
  $('evidence-size').textContent = '';
  large.src = url;
  /** @type {HTMLAnchorElement} */ ($('evidence-open')).href = url;
  $('evidence-position').textContent = `${n + 1} / ${count}`;
  for (const button of [$('evidence-prev'), $('evidence-next')]) {
    /** @type {HTMLButtonElement} */ (button).disabled = count < 2;
  }
  for (const item of $('violation-strip').children) {
    const button = /** @type {HTMLButtonElement} */ (item.firstElementChild);
    const current = Number(/** @type {HTMLElement} */ (item).dataset.n) === n;
    item.classList.toggle('current', current);
    button.setAttribute('aria-pressed', String(current));
    if (current) item.scrollIntoView({ block: 'nearest', inline: 'nearest' });
  }
}

/**
 * The resolution of the picture shown, once it has loaded.
 * @param {HTMLImageElement} large
 */
function showSize(large) {
  if (large.naturalWidth > 0) {
    $('evidence-size').textContent = `${large.naturalWidth} × ${large.naturalHeight} px`;
  }
}

/**
 * Shows the picture at its own resolution (scrolling) or fitted to the view.
 * @param {boolean} full
 */
function setFullSize(full) {
  const button = $('evidence-full');
  button.setAttribute('aria-pressed', String(full));
  button.textContent = full ? 'Fit to view' : 'Full size';
  $('evidence-frame').classList.toggle('full-size', full);
}

/**
 * A thumbnail button of the strip.
 * @param {number} n
 * @param {number} count
 * @returns {HTMLLIElement}
 */
function stripItem(n, count) {
  const trigger = n === count - 1;
  const item = /** @type {HTMLLIElement} */ (el('li', `shot${trigger ? ' trigger' : ''}`));
  item.dataset.n = String(n);
  const button = /** @type {HTMLButtonElement} */ (el('button', 'shot-button'));
  button.type = 'button';
  const img = /** @type {HTMLImageElement} */ (el('img', 'screenshot'));
  img.loading = 'lazy';
  img.decoding = 'async';
  img.alt = shotName(n, count);
  img.addEventListener('error', () => item.classList.add('failed'), { once: true });
  img.src = screenshotUrl(shown.id, n);
  button.append(img);
  if (trigger) button.append(el('span', 'shot-label', 'Match'));
  button.addEventListener('click', () => showShot(n));
  item.append(button);
  return item;
}

/**
 * Shows a violation's screenshots: the strip, oldest first, and the last
 * (the moment of the match) large, fitted to the view. The same violation
 * again (more screenshots arrived) keeps the one being looked at.
 * @param {Evidence} v
 * @param {string} host its computer's name, for the pictures' text
 */
export function showEvidence(v, host) {
  const count = Math.max(0, Number(v.screenshots) || 0);
  // The dialog still open on it: a refresh, not a new look.
  const open = /** @type {HTMLDialogElement | null} */ (document.getElementById('violation-dialog'))?.open;
  const same = Boolean(open) && shown.id === v.id && shown.count > 0;
  const keep = same && shown.n < shown.count - 1 ? shown.n : count - 1;
  shown = { id: v.id, count, host, n: 0 };
  $('violation-shots-empty').hidden = count > 0;
  $('violation-shots').hidden = count === 0;
  const strip = $('violation-strip');
  strip.replaceChildren();
  for (let n = 0; n < count; n += 1) strip.append(stripItem(n, count));
  if (!same) setFullSize(false);
  if (count > 0) showShot(keep);
  else /** @type {HTMLImageElement} */ ($('violation-shot-large')).removeAttribute('src');
}

/**
 * Arrow keys step through the screenshots while the focus is in the viewer
 * (not in a text field).
 * @param {KeyboardEvent} event
 */
function onKey(event) {
  if (event.altKey || event.ctrlKey || event.metaKey) return;
  const step = { ArrowLeft: -1, ArrowRight: 1 }[event.key];
  if (!step || shown.count === 0) return;
  event.preventDefault();
  showShot(shown.n + step);
}

/** Hooks up the viewer's controls (once, at page start). */
export function initEvidenceViewer() {
  $('evidence-prev').addEventListener('click', () => showShot(shown.n - 1));
  $('evidence-next').addEventListener('click', () => showShot(shown.n + 1));
  $('evidence-full').addEventListener('click', () => {
    setFullSize($('evidence-full').getAttribute('aria-pressed') !== 'true');
  });
  const large = /** @type {HTMLImageElement} */ ($('violation-shot-large'));
  large.addEventListener('load', () => showSize(large));
  // A frame the server refused or retention removed: said, not a broken image.
  large.addEventListener('error', () => {
    if (large.getAttribute('src')) $('evidence-size').textContent = 'not available';
  });
  // A click on the fitted picture opens it full size, and back.
  large.addEventListener('click', () => $('evidence-full').click());
  $('violation-shots').addEventListener('keydown', onKey);
}
