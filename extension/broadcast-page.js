// The broadcast window (Chromebook mode): shows the frames the service
// worker passes on its "broadcast" port, one at a time. Each frame is
// acknowledged once drawn, and the worker sends only the newest frame then,
// so a slow device drops frames rather than queueing them.

const title = /** @type {HTMLElement} */ (document.getElementById('broadcast-title'));
const img = /** @type {HTMLImageElement} */ (document.getElementById('broadcast-frame'));
const waiting = /** @type {HTMLElement} */ (document.getElementById('broadcast-waiting'));

const port = chrome.runtime.connect({ name: 'broadcast' });
port.onMessage.addListener(async (msg) => {
  if (msg && msg.type === 'title' && typeof msg.title === 'string') {
    // Text only: never parsed as HTML.
    title.textContent = `Broadcast: ${msg.title}`;
    document.title = `${msg.title} · Lectern`;
  } else if (msg && msg.type === 'frame' && typeof msg.jpeg === 'string') {
    await show(msg.jpeg);
    port.postMessage({ type: 'ready' });
  }
});

/**
 * Shows one JPEG (base64); a frame that does not decode is skipped.
 * @param {string} base64
 */
async function show(base64) {
  const next = new Image();
  next.src = `data:image/jpeg;base64,${base64}`;
  try {
    await next.decode();
  } catch {
    return;
  }
  img.src = next.src;
  img.hidden = false;
  waiting.hidden = true;
}
