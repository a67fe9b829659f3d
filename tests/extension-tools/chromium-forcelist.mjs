// Chromium deployment end to end (issue 10.6, 10.8), as docs/extension-deployment.md
// describes it: a real lectern-server serves update.xml and the signed CRX
// from its data directory; Chromium, with a managed policy file
// (ExtensionInstallForcelist naming the server's update URL, 3rdparty
// managed storage), downloads and installs the CRX by itself, and the
// extension, finding no agent, enrolls with the server in standalone mode.
//
// Chromium reads policies only from /etc/chromium/policies/managed (and
// native hosts from /etc/chromium/native-messaging-hosts), so this runs
// inside a private mount namespace where a temporary folder is bound over
// /etc/chromium (scripts/test-extension-packages.sh does
// that with `unshare -m`); other browsers on the machine never see it.
//
// Then (issue 10.6) a second browser on the same "computer" finds the Lectern
// agent's native host installed but not answering (the agent service
// stopped: the host exits at once): it must keep retrying the host and never
// enroll the browser as a second device, although the same policy names the
// server and a token with uses left.
//
// Usage: node chromium-forcelist.mjs PACKAGES_DIR LECTERN_SERVER_BIN ETC_DIR
//   PACKAGES_DIR: output of scripts/package-extension.sh (lectern.crx, EXTENSION_ID)
//   ETC_DIR: the folder bound over /etc/chromium
// Exit 0: passed; 1: failed; 77: cannot run here.

import { execFileSync, spawn } from 'node:child_process';
import { createHash, X509Certificate } from 'node:crypto';
import { copyFileSync, mkdirSync, mkdtempSync, readFileSync, rmSync, writeFileSync } from 'node:fs';
import https from 'node:https';
import net from 'node:net';
import { tmpdir } from 'node:os';
import { join } from 'node:path';
import { updateXml } from '../../scripts/extension-pack.mjs';

const [pkgs, serverBin, etcDir] = process.argv.slice(2);
const policyDir = etcDir && join(etcDir, 'policies');
if (!pkgs || !serverBin || !etcDir) {
  console.error('usage: node chromium-forcelist.mjs PACKAGES_DIR LECTERN_SERVER_BIN ETC_DIR');
  process.exit(2);
}
// The policy folder must be this namespace's own mount, never the machine's.
const mountPoints = readFileSync('/proc/self/mountinfo', 'utf8').split('\n').map((l) => l.split(' ')[4]);
if (!mountPoints.includes('/etc/chromium')) {
  console.error('SKIP: /etc/chromium is not a private bind mount (run through unshare -m)');
  process.exit(77);
}
let puppeteer;
try {
  puppeteer = (await import('puppeteer-core')).default;
} catch (err) {
  console.error(`SKIP: puppeteer-core is not installed (${err.message})`);
  process.exit(77);
}

const PASSWORD = 'chromium policy test';
const HOSTNAME = 'CR-POLICY-01';
const step = (s) => console.log(`chromium-forcelist: ${s}`);
const sleep = (ms) => new Promise((r) => setTimeout(r, ms));
const until = async (what, fn, ms = 60_000) => {
  const end = Date.now() + ms;
  for (;;) {
    const v = await fn().catch(() => undefined);
    if (v) return v;
    if (Date.now() > end) throw new Error(`timed out waiting for ${what}`);
    await sleep(300);
  }
};
const freePort = () => new Promise((ok, fail) => {
  const s = net.createServer();
  s.once('error', fail);
  s.listen(0, '127.0.0.1', () => {
    const { port } = s.address();
    s.close(() => ok(port));
  });
});

const id = readFileSync(join(pkgs, 'EXTENSION_ID'), 'utf8').trim();
const version = JSON.parse(readFileSync(new URL('../../extension/manifest.json', import.meta.url), 'utf8')).version;
const work = mkdtempSync(join(tmpdir(), 'lectern-crpol-'));
const data = join(work, 'data');
let server;
let browser;
let failed = false;
const serverLog = [];
try {
  const port = await freePort();
  execFileSync(serverBin, ['init', '--data-dir', data, '--school', 'Chromium School', '--password', PASSWORD,
    '--name', '127.0.0.1', '--listen', `127.0.0.1:${port}`], { stdio: 'pipe' });
  const token = execFileSync(serverBin, ['token', 'create', '--data-dir', data, '--uses', '5', '--label', 'chromium'], { encoding: 'utf8' })
    .split(/\s+/).find((w) => /^[A-Za-z0-9_-]{16,}$/.test(w));
  if (!token) throw new Error('no token printed');
  const base = `https://127.0.0.1:${port}`;
  mkdirSync(join(data, 'extension'));
  copyFileSync(join(pkgs, 'lectern.crx'), join(data, 'extension', 'lectern.crx'));
  writeFileSync(join(data, 'extension', 'update.xml'), updateXml(id, version, `${base}/extension/lectern.crx`));
  server = spawn(serverBin, ['serve', '--data-dir', data], { stdio: ['ignore', 'pipe', 'pipe'] });
  for (const s of [server.stdout, server.stderr]) s.on('data', (b) => serverLog.push(String(b)));
  const certPem = readFileSync(join(data, 'cert.pem'));
  const api = (method, path, body, auth) => new Promise((ok, fail) => {
    const req = https.request({ host: '127.0.0.1', port, path, method, ca: certPem, checkServerIdentity: () => undefined,
      headers: { 'content-type': 'application/json', ...(auth ? { authorization: `Bearer ${auth}` } : {}) } }, (res) => {
      let text = '';
      res.on('data', (c) => { text += c; });
      res.on('end', () => ok({ status: res.statusCode, text }));
    });
    req.on('error', fail);
    req.end(body ? JSON.stringify(body) : undefined);
  });
  await until('the server', async () => (await api('GET', '/healthz')).status === 200, 30_000);
  step(`server on 127.0.0.1:${port} serves update.xml and lectern.crx (${id})`);

  mkdirSync(join(policyDir, 'managed'), { recursive: true });
  writeFileSync(join(policyDir, 'managed', 'lectern.json'), JSON.stringify({
    ExtensionInstallForcelist: [`${id};${base}/extension/update.xml`],
    '3rdparty': { extensions: { [id]: { server: `127.0.0.1:${port}`, enrollment_token: token, hostname: HOSTNAME } } },
  }, null, 2));

  // Trust the server's self-signed certificate for this browser only.
  const spki = createHash('sha256').update(new X509Certificate(certPem).publicKey.export({ type: 'spki', format: 'der' })).digest('base64');
  const launchOpts = {
    executablePath: process.env.CHROMIUM || '/usr/bin/chromium',
    headless: true,
    userDataDir: join(work, 'profile'),
    // Puppeteer's defaults turn extensions off; the forcelist needs them.
    // and background networking (which includes extension downloads).
    ignoreDefaultArgs: ['--disable-extensions', '--disable-component-extensions-with-background-pages', '--disable-background-networking'],
    args: ['--no-sandbox', `--ignore-certificate-errors-spki-list=${spki}`, ...(process.env.CR_DEBUG ? ['--enable-logging=stderr', '--vmodule=*extension*=2,*policy*=1,*downloader*=2'] : [])],
    dumpio: Boolean(process.env.CR_DEBUG),
  };
  browser = await puppeteer.launch(launchOpts);
  step(`started ${await browser.version()} with the policy`);
  await until('the force-installed extension\'s worker', async () =>
    browser.targets().some((t) => t.url().startsWith(`chrome-extension://${id}/`)), 60_000);
  step(`Chromium downloaded and installed ${id} from ${base}/extension/update.xml`);

  const session = JSON.parse((await api('POST', '/api/v1/session', { username: 'admin', password: PASSWORD })).text).token;
  const device = await until('the extension to enroll and connect', async () => {
    const list = JSON.parse((await api('GET', '/api/v1/devices', null, session)).text);
    return (Array.isArray(list) ? list : list.devices || []).find((d) => d.hostname === HOSTNAME && d.online);
  }, 60_000);
  if (!/^extension /.test(device.agent_version)) throw new Error(`agent_version ${device.agent_version}`);
  step(`enrolled standalone as device ${device.id} (${device.os}, ${device.agent_version})`);
  await browser.close();
  browser = null;

  // The agent installed but its service stopped: the host exits at once.
  const calls = join(work, 'host-calls');
  const host = join(work, 'native-host.sh');
  writeFileSync(host, `#!/bin/sh\necho started >> '${calls}'\nexit 1\n`, { mode: 0o755 });
  mkdirSync(join(etcDir, 'native-messaging-hosts'), { recursive: true });
  writeFileSync(join(etcDir, 'native-messaging-hosts', 'org.lectern.agent.json'), JSON.stringify({
    name: 'org.lectern.agent', description: 'Lectern (test: agent service stopped)', path: host, type: 'stdio',
    allowed_origins: [`chrome-extension://${id}/`],
  }));
  browser = await puppeteer.launch({ ...launchOpts, userDataDir: join(work, 'profile-agent') });
  const worker = await (await until('the extension\'s worker with an agent installed', async () =>
    browser.targets().find((t) => t.type() === 'service_worker' && t.url().startsWith(`chrome-extension://${id}/`)), 60_000)).worker();
  // Two starts of the host: the first failure was handled, and retried.
  await until('the extension to retry the native host', async () =>
    (readFileSync(calls, 'utf8').match(/started/g) || []).length >= 2, 60_000);
  const mode = await worker.evaluate(() => globalThis.lectern.mode);
  if (mode === 'chromebook') throw new Error('the browser went standalone although the agent is installed');
  const devices = JSON.parse((await api('GET', '/api/v1/devices', null, session)).text);
  const list = Array.isArray(devices) ? devices : devices.devices || [];
  if (list.length !== 1) throw new Error(`${list.length} devices enrolled; expected only the first browser`);
  step(`agent installed but stopped: host retried, mode "${mode}", no second enrollment`);
  step('PASS');
} catch (err) {
  failed = true;
  console.error(`chromium-forcelist: FAIL: ${err.stack || err}`);
  if (browser) {
    for (const url of ['chrome://policy', 'chrome://extensions-internals']) {
      try {
        const page = await browser.newPage();
        await page.goto(url, { waitUntil: 'load', timeout: 10_000 });
        await sleep(1000);
        console.error(`${url}: ${(await page.evaluate(() => document.body.innerText)).slice(0, 3000)}`);
      } catch (e) {
        console.error(`${url}: ${e.message}`);
      }
    }
  }
  console.error(serverLog.join('').split('\n').slice(-20).join('\n'));
} finally {
  if (browser) await browser.close().catch(() => {});
  if (server) server.kill('SIGTERM');
  await sleep(300);
  rmSync(work, { recursive: true, force: true });
}
if (failed) process.exitCode = 1;
