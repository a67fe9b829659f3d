// Native-host presence, for choosing between native and standalone mode.
//
// Browsers report why connectNative failed only as text (no error codes), so
// the text is all there is to go on. The distinction matters: a host that is
// installed but did not answer (the agent service stopped or restarting) means
// the Lectern agent manages this computer, and the extension must wait for it
// rather than enroll the browser as a second device.

/**
 * Whether a native-messaging failure means this browser cannot use any
 * Lectern agent: none is installed, or policy forbids native hosts.
 * Anything else (the host exited, failed to start, broke the framing) means
 * an agent is installed.
 * @param {string} error the browser's message (`runtime.lastError` / `port.error`)
 * @returns {boolean}
 */
export function nativeHostMissing(error) {
  const e = String(error || '');
  return [
    // Chromium (Chrome, Edge, ChromeOS)
    /specified native messaging host not found/i,
    /access to the specified native messaging host is forbidden/i,
    // Firefox
    /no such native application/i,
    /does not have permission to use native application/i,
  ].some((re) => re.test(e));
}
