// Small SVG charts for the console: vertical bars (plain or stacked) and
// horizontal bars, with axes and a legend, drawn with presentation
// attributes only (no stylesheet), so a chart saved as PNG looks as it does
// on the page. Each chart is an image to assistive technology (`role="img"`,
// `<title>`, `<desc>`) with a table of its numbers beside it; the table's
// numbers are the links (keyboard and screen readers), and a click on a bar
// follows the same link.

const SVG = 'http://www.w3.org/2000/svg';
const FONT = 'system-ui, -apple-system, "Segoe UI", Roboto, "Noto Sans", sans-serif';
const TEXT = '#1d2433';
const MUTED = '#5b6577';
const GRID = '#d3d9e2';

/**
 * @typedef {object} Series
 * @property {string} name shown in the legend and table
 * @property {string} color fill
 * @property {number[]} values one per label
 */

/**
 * @typedef {object} ChartSpec
 * @property {string} id unique on the page (element ids)
 * @property {string} title what the chart shows
 * @property {string} description one sentence: what a reader should see
 * @property {string[]} labels the bars (or groups of stacked bars)
 * @property {Series[]} series one for plain bars, several to stack
 * @property {'vertical' | 'horizontal'} [direction] default vertical
 * @property {(label: number, series: number) => string | null} [href] where a bar leads
 * @property {string} [labelHeading] the table's first column heading
 * @property {number} [width] drawing width in px (default 640)
 */

/**
 * An SVG element.
 * @param {string} tag
 * @param {Record<string, string | number>} [attrs]
 * @param {string} [text]
 * @returns {SVGElement}
 */
function svg(tag, attrs = {}, text) {
  const node = /** @type {SVGElement} */ (document.createElementNS(SVG, tag));
  for (const [k, v] of Object.entries(attrs)) node.setAttribute(k, String(v));
  if (text !== undefined) node.textContent = text;
  return node;
}

/**
 * A "nice" axis maximum and step for values up to `max`.
 * @param {number} max
 * @returns {{top: number, step: number}}
 */
export function niceScale(max) {
  if (!(max > 0)) return { top: 1, step: 1 };
  const rough = max / 4;
  const mag = 10 ** Math.floor(Math.log10(rough));
  const step = [1, 2, 5, 10].map((m) => m * mag).find((s) => s >= rough) || 10 * mag;
  const whole = Math.max(1, Math.round(step));
  return { top: Math.ceil(max / whole) * whole, step: whole };
}

/**
 * The total of each label over all series.
 * @param {ChartSpec} spec
 * @returns {number[]}
 */
function totals(spec) {
  return spec.labels.map((_, i) => spec.series.reduce((sum, s) => sum + (s.values[i] || 0), 0));
}

/**
 * A text label.
 * @param {number} x
 * @param {number} y
 * @param {string} text
 * @param {Record<string, string | number>} [attrs]
 * @returns {SVGElement}
 */
function label(x, y, text, attrs = {}) {
  return svg('text', { x, y, fill: MUTED, 'font-size': 12, 'font-family': FONT, ...attrs }, text);
}

/**
 * Makes a bar follow its link on click.
 * @param {SVGElement} bar
 * @param {string | null | undefined} url
 * @param {string} tip
 */
function linkBar(bar, url, tip) {
  bar.append(svg('title', {}, tip));
  if (!url) return;
  bar.setAttribute('data-href', url);
  bar.setAttribute('cursor', 'pointer');
  bar.addEventListener('click', () => { location.assign(url); });
}

/**
 * The legend, in a row under the plot.
 * @param {Series[]} series
 * @param {number} y
 * @param {number} left
 * @returns {SVGElement}
 */
function legend(series, y, left) {
  const g = svg('g', { class: 'legend' });
  let x = left;
  for (const s of series) {
    g.append(svg('rect', { x, y: y - 10, width: 12, height: 12, rx: 2, fill: s.color }));
    g.append(label(x + 17, y, s.name, { fill: TEXT }));
    x += 30 + s.name.length * 7;
  }
  return g;
}

/**
 * Vertical bars, stacked when there are several series.
 * @param {ChartSpec} spec
 * @returns {SVGElement}
 */
function verticalBars(spec) {
  const width = spec.width || 640;
  const legendRows = spec.series.length > 1 ? 24 : 0;
  const height = 260 + legendRows;
  const pad = { left: 44, right: 12, top: 12, bottom: 40 + legendRows };
  const plotW = width - pad.left - pad.right;
  const plotH = height - pad.top - pad.bottom;
  const sums = totals(spec);
  const { top, step } = niceScale(Math.max(0, ...sums));
  const root = svg('svg', { viewBox: `0 0 ${width} ${height}`, width, height });
  const y = (/** @type {number} */ v) => pad.top + plotH - (v / top) * plotH;
  for (let v = 0; v <= top; v += step) {
    root.append(svg('line', { x1: pad.left, x2: width - pad.right, y1: y(v), y2: y(v), stroke: GRID, 'stroke-width': 1 }));
    root.append(label(pad.left - 6, y(v) + 4, v.toLocaleString(), { 'text-anchor': 'end' }));
  }
  const slot = plotW / Math.max(1, spec.labels.length);
  const barW = Math.max(1, Math.min(48, slot * 0.72));
  // Label as many bars as fit (about one per 44 px), always the first.
  const every = Math.max(1, Math.ceil(44 / slot));
  spec.labels.forEach((name, i) => {
    const x = pad.left + i * slot + (slot - barW) / 2;
    let base = 0;
    spec.series.forEach((s, si) => {
      const v = s.values[i] || 0;
      if (v <= 0) return;
      const bar = svg('rect', {
        x, y: y(base + v), width: barW, height: Math.max(1, y(base) - y(base + v)), fill: s.color, class: 'bar',
      });
      const what = spec.series.length > 1 ? `${s.name}, ${name}` : name;
      linkBar(bar, spec.href?.(i, si), `${what}: ${v.toLocaleString()}`);
      root.append(bar);
      base += v;
    });
    if (i % every === 0) {
      root.append(label(pad.left + i * slot + slot / 2, pad.top + plotH + 16, name, { 'text-anchor': 'middle' }));
    }
  });
  root.append(svg('line', { x1: pad.left, x2: width - pad.right, y1: y(0), y2: y(0), stroke: MUTED, 'stroke-width': 1 }));
  if (legendRows) root.append(legend(spec.series, height - 10, pad.left));
  return root;
}

/**
 * Horizontal bars (top lists), one series, the value at the end of each bar.
 * @param {ChartSpec} spec
 * @returns {SVGElement}
 */
function horizontalBars(spec) {
  const width = spec.width || 640;
  const row = 26;
  const labelW = 170;
  const height = Math.max(1, spec.labels.length) * row + 16;
  const plotW = width - labelW - 60;
  const sums = totals(spec);
  const { top } = niceScale(Math.max(0, ...sums));
  const root = svg('svg', { viewBox: `0 0 ${width} ${height}`, width, height });
  spec.labels.forEach((name, i) => {
    const v = sums[i];
    const yTop = 8 + i * row;
    const shown = name.length > 24 ? `${name.slice(0, 23)}…` : name;
    root.append(label(labelW - 8, yTop + 16, shown, { 'text-anchor': 'end', fill: TEXT }));
    const bar = svg('rect', {
      x: labelW, y: yTop + 3, width: Math.max(2, (v / top) * plotW), height: row - 8, rx: 3,
      fill: spec.series[0].color, class: 'bar',
    });
    linkBar(bar, spec.href?.(i, 0), `${name}: ${v.toLocaleString()}`);
    root.append(bar);
    root.append(label(labelW + Math.max(2, (v / top) * plotW) + 6, yTop + 16, v.toLocaleString(), { fill: TEXT }));
  });
  return root;
}

/**
 * The chart's numbers as a table (the accessible alternative and the CSV).
 * @param {ChartSpec} spec
 * @returns {HTMLTableElement}
 */
function numbersTable(spec) {
  const table = document.createElement('table');
  table.className = 'data chart-table';
  const caption = document.createElement('caption');
  caption.textContent = spec.title;
  caption.className = 'visually-hidden';
  const head = document.createElement('tr');
  const cell = (/** @type {string} */ tag, /** @type {string} */ text, /** @type {string} */ scope = '') => {
    const c = document.createElement(tag);
    c.textContent = text;
    if (scope) c.setAttribute('scope', scope);
    return c;
  };
  head.append(cell('th', spec.labelHeading || '', 'col'));
  for (const s of spec.series) head.append(cell('th', s.name, 'col'));
  if (spec.series.length > 1) head.append(cell('th', 'Total', 'col'));
  const thead = document.createElement('thead');
  thead.append(head);
  const tbody = document.createElement('tbody');
  const sums = totals(spec);
  spec.labels.forEach((name, i) => {
    const tr = document.createElement('tr');
    tr.append(cell('th', name, 'row'));
    spec.series.forEach((s, si) => {
      const td = document.createElement('td');
      const v = s.values[i] || 0;
      const url = v > 0 ? spec.href?.(i, si) : null;
      if (url) {
        const a = document.createElement('a');
        a.href = url;
        a.textContent = v.toLocaleString();
        td.append(a);
      } else {
        td.textContent = v.toLocaleString();
      }
      tr.append(td);
    });
    if (spec.series.length > 1) tr.append(cell('td', sums[i].toLocaleString()));
    tbody.append(tr);
  });
  table.append(caption, thead, tbody);
  return table;
}

/**
 * A chart as a figure: the SVG image and, in a disclosure, its numbers.
 * @param {ChartSpec} spec
 * @returns {{figure: HTMLElement, svg: SVGElement, csv: () => string}}
 */
export function chart(spec) {
  const root = spec.direction === 'horizontal' ? horizontalBars(spec) : verticalBars(spec);
  root.setAttribute('xmlns', SVG);
  root.setAttribute('role', 'img');
  root.setAttribute('aria-labelledby', `${spec.id}-title ${spec.id}-desc`);
  root.setAttribute('class', 'chart');
  root.setAttribute('font-family', FONT);
  root.prepend(svg('title', { id: `${spec.id}-title` }, spec.title), svg('desc', { id: `${spec.id}-desc` }, spec.description));
  const figure = document.createElement('figure');
  figure.className = 'chart-figure';
  const details = document.createElement('details');
  details.className = 'chart-numbers';
  const summary = document.createElement('summary');
  summary.textContent = 'Show the numbers';
  details.append(summary, numbersTable(spec));
  figure.append(root, details);
  return { figure, svg: root, csv: () => toCsv(spec) };
}

/**
 * A CSV cell: quoted when needed; text that a spreadsheet would run as a
 * formula (starting with equals, plus, minus, at sign, tab or CR) is prefixed with a quote, as the server does.
 * @param {string | number} value
 * @returns {string}
 */
export function csvCell(value) {
  let text = String(value);
  if (typeof value === 'string' && /^[=+\-@\t\r]/.test(text)) text = `'${text}`;
  return /[",\n\r]/.test(text) ? `"${text.replaceAll('"', '""')}"` : text;
}

/**
 * The chart's numbers as CSV (a header row, then one row per label).
 * @param {ChartSpec} spec
 * @returns {string}
 */
function toCsv(spec) {
  const rows = [[spec.labelHeading || 'label', ...spec.series.map((s) => s.name)]];
  spec.labels.forEach((name, i) => rows.push([name, ...spec.series.map((s) => String(s.values[i] || 0))]));
  return `${rows.map((r) => r.map((c, ci) => csvCell(ci === 0 ? c : Number(c))).join(',')).join('\r\n')}\r\n`;
}

/**
 * Saves `blob` as a file named `name`.
 * @param {Blob} blob
 * @param {string} name
 */
export function download(blob, name) {
  const url = URL.createObjectURL(blob);
  const a = document.createElement('a');
  a.href = url;
  a.download = name;
  document.body.append(a);
  a.click();
  a.remove();
  setTimeout(() => URL.revokeObjectURL(url), 10_000);
}

/**
 * Draws an SVG chart onto a canvas at twice its size, on white, and gives
 * it back as a PNG.
 * @param {SVGElement} root
 * @returns {Promise<Blob>}
 */
export async function toPng(root) {
  const width = Number(root.getAttribute('width'));
  const height = Number(root.getAttribute('height'));
  const copy = /** @type {SVGElement} */ (root.cloneNode(true));
  const xml = new XMLSerializer().serializeToString(copy);
  const img = new Image();
  img.width = width;
  img.height = height;
  await new Promise((resolve, reject) => {
    img.onload = resolve;
    img.onerror = () => reject(new Error('the chart could not be drawn'));
    img.src = `data:image/svg+xml;charset=utf-8,${encodeURIComponent(xml)}`;
  });
  const scale = 2;
  const canvas = document.createElement('canvas');
  canvas.width = width * scale;
  canvas.height = height * scale;
  const ctx = /** @type {CanvasRenderingContext2D} */ (canvas.getContext('2d'));
  ctx.fillStyle = '#ffffff';
  ctx.fillRect(0, 0, canvas.width, canvas.height);
  ctx.drawImage(img, 0, 0, canvas.width, canvas.height);
  return new Promise((resolve, reject) => {
    canvas.toBlob((b) => (b ? resolve(b) : reject(new Error('the PNG could not be made'))), 'image/png');
  });
}
