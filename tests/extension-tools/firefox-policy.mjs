// Firefox deployment end to end (issue 10.7, 10.8), as docs/extension-deployment.md
// describes it: a real lectern-server serves the unsigned XPI from its data
// directory; a private copy of Debian's Firefox ESR, with signature checking
// turned off (xpinstall.signatures.required) and a policies.json (ExtensionSettings force_installed from the
// server's URL, 3rdparty managed storage, the server's certificate), installs
// it by itself, and the extension, finding no agent, enrolls with the server
// in standalone mode over WSS.
//
// The Firefox copy keeps the policy away from the system's Firefox.
//
// Usage: node firefox-policy.mjs LECTERN_XPI GECKO_ID LECTERN_SERVER_BIN [FIREFOX_DIR]
// Exit 0: passed; 1: failed; 77: Firefox or the driver is not available here.

import { spawn, execFileSync } from 'node:child_process';
import { copyFileSync, cpSync, mkdirSync, mkdtempSync, readFileSync, rmSync, writeFileSync, existsSync } from 'node:fs';
import https from 'node:https';
import net from 'node:net';
import { tmpdir } from 'node:os';
import { join } from 'node:path';

const [xpi, geckoId, serverBin, firefoxDir = '/usr/lib/firefox-esr'] = process.argv.slice(2);
if (!xpi || !geckoId || !serverBin) {
  console.error('usage: node firefox-policy.mjs LECTERN_XPI GECKO_ID LECTERN_SERVER_BIN [FIREFOX_DIR]');
  process.exit(2);
}
if (!existsSync(join(firefoxDir, 'firefox-esr'))) {
  console.error(`SKIP: no Firefox ESR in ${firefoxDir}`);
  process.exit(77);
}
let puppeteer;
try {
  puppeteer = (await import('puppeteer-core')).default;
} catch (err) {
  console.error(`SKIP: puppeteer-core is not installed (${err.message})`);
  process.exit(77);
}

const PASSWORD = 'firefox policy test';
const HOSTNAME = 'FF-POLICY-01';
const step = (s) => console.log(`firefox-policy: ${s}`);
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

/** On failure: what Firefox made of the policy and which add-ons it has. */
async function diagnose(b, dir, port) {
  try {
    const page = await b.newPage();
    await page.goto(`https://127.0.0.1:${port}/healthz`, { waitUntil: 'domcontentloaded', timeout: 5_000 }).catch((e) => console.error(`healthz: ${e.message}`));
    await sleep(500);
    console.error(`healthz page: ${(await page.evaluate(() => document.body.innerText)).slice(0, 300)}`);
  } catch (err) {
    console.error(`healthz: ${err.message}`);
  }
  try {
    const page = await b.newPage();
    await page.goto('about:policies#errors', { waitUntil: 'domcontentloaded', timeout: 5_000 }).catch(() => {});
    await sleep(1000);
    console.error(`about:policies#errors: ${(await page.evaluate(() => document.body.innerText)).slice(0, 2000)}`);
  } catch (err) {
    console.error(`about:policies: ${err.message}`);
  }
  const ext = join(dir, 'profile', 'extensions.json');
  if (existsSync(ext)) {
    const addons = JSON.parse(readFileSync(ext, 'utf8')).addons || [];
    console.error(`add-ons: ${JSON.stringify(addons.map((a) => ({ id: a.id, active: a.active, signedState: a.signedState, userDisabled: a.userDisabled, appDisabled: a.appDisabled })))}`);
  } else console.error('no extensions.json in the profile');
}

const work = mkdtempSync(join(tmpdir(), 'lectern-ffpol-'));
const data = join(work, 'data');
let server;
let browser;
let failed = false;
try {
  const port = await freePort();
  execFileSync(serverBin, ['init', '--data-dir', data, '--school', 'Firefox School', '--password', PASSWORD,
    '--name', '127.0.0.1', '--listen', `127.0.0.1:${port}`], { stdio: 'pipe' });
  const token = execFileSync(serverBin, ['token', 'create', '--data-dir', data, '--uses', '1', '--label', 'firefox'], { encoding: 'utf8' })
    .split(/\s+/).find((w) => /^[A-Za-z0-9_-]{16,}$/.test(w));
  if (!token) throw new Error('no token printed');
  mkdirSync(join(data, 'extension'));
  copyFileSync(xpi, join(data, 'extension', 'lectern.xpi'));
  server = spawn(serverBin, ['serve', '--data-dir', data], { stdio: ['ignore', 'pipe', 'pipe'] });
  const serverLog = [];
  for (const s of [server.stdout, server.stderr]) s.on('data', (b) => serverLog.push(String(b)));
  const ca = readFileSync(join(data, 'cert.pem'));
  const api = (method, path, body, auth) => new Promise((ok, fail) => {
    const req = https.request({ host: '127.0.0.1', port, path, method, ca, servername: undefined, checkServerIdentity: () => undefined,
      headers: { 'content-type': 'application/json', ...(auth ? { authorization: `Bearer ${auth}` } : {}) } }, (res) => {
      let text = '';
      res.on('data', (c) => { text += c; });
      res.on('end', () => ok({ status: res.statusCode, text }));
    });
    req.on('error', fail);
    req.end(body ? JSON.stringify(body) : undefined);
  });
  await until('the server', async () => (await api('GET', '/healthz')).status === 200, 30_000);
  const served = await api('GET', '/extension/lectern.xpi');
  if (served.status !== 200) throw new Error(`the server does not serve the XPI: ${served.status}`);
  step(`server on 127.0.0.1:${port} serves /extension/lectern.xpi`);

  // A private Firefox ESR with the school's policy; signature checking is
  // turned off by the profile preference below (ESR honours it, release
  // Firefox does not).
  const ff = join(work, 'firefox');
  // Dereferenced: Debian links distribution/ and prefs to /usr/share and /etc.
  cpSync(firefoxDir, ff, { recursive: true, dereference: true });
  rmSync(join(ff, "distribution"), { recursive: true, force: true });
  mkdirSync(join(ff, 'distribution'), { recursive: true });
  writeFileSync(join(ff, 'distribution', 'policies.json'), JSON.stringify({
    policies: {
      ExtensionSettings: {
        [geckoId]: { installation_mode: 'force_installed', install_url: `https://127.0.0.1:${port}/extension/lectern.xpi` },
      },
      '3rdparty': { Extensions: { [geckoId]: { server: `127.0.0.1:${port}`, enrollment_token: token, hostname: HOSTNAME } } },
      Certificates: { Install: [join(data, 'cert.pem')] },
    },
  }, null, 2));

  try {
    browser = await puppeteer.launch({ browser: 'firefox', executablePath: join(ff, 'firefox-esr'), headless: true,
      userDataDir: join(work, 'profile'), extraPrefsFirefox: { 'xpinstall.signatures.required': false } });
  } catch (err) {
    console.error(`SKIP: cannot start Firefox with WebDriver BiDi: ${err.message}`);
    process.exitCode = 77;
    throw null;
  }
  step(`started ${await browser.version()} with the policy`);

  const session = JSON.parse((await api('POST', '/api/v1/session', { username: 'admin', password: PASSWORD })).text).token;
  const device = await until('the extension to install, enroll and connect', async () => {
    const r = await api('GET', '/api/v1/devices', null, session);
    const list = JSON.parse(r.text);
    return (Array.isArray(list) ? list : list.devices || []).find((d) => d.hostname === HOSTNAME && d.online);
  }, 90_000).catch(async (err) => {
    console.error(serverLog.join('').split('\n').slice(-30).join('\n'));
    await diagnose(browser, work, port);
    throw err;
  });
  if (!/^extension /.test(device.agent_version)) throw new Error(`agent_version ${device.agent_version}`);
  step(`force-installed unsigned XPI enrolled as device ${device.id} (${device.os}, ${device.agent_version})`);
  step('PASS');
} catch (err) {
  if (err) {
    failed = true;
    console.error(`firefox-policy: FAIL: ${err.stack || err}`);
  }
} finally {
  if (browser) await browser.close().catch(() => {});
  if (server) server.kill('SIGTERM');
  await sleep(300);
  rmSync(work, { recursive: true, force: true });
}
if (failed) process.exitCode = 1;
