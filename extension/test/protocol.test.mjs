// Unit tests of protocol.js: native-host and server messages in and out,
// Chromebook mode's merging of a teacher's and the school's restrictions,
// tab trimming and reconnect backoff.
//
// Run: node --test extension/test/

import assert from 'node:assert/strict';
import { test } from 'node:test';

import {
  BLOCKED_BY_POLICY, CHROMEBOOK_CAPABILITIES, DEFAULT_SERVER_POLICY, MAX_SERVER_FRAME, NO_TEACHER, TABS_BUDGET,
  backoffDelay, checkMessageText, checkUrl, deviceState, effectiveWebPolicy, helloAuth, helloFrame, limitTabs, normalizeSchoolCode, parseHostMessage,
  parseServer, parseServerFrame, parseServerPolicy, parseWebFilterCommand, tabsFromChrome, unsupported, unsupportedSettings,
} from '../protocol.js';
import { buildRules, verdict } from '../rules.js';

test('native host messages are validated', () => {
  const ok = [
    [{ type: 'policy', web: { internet_blocked: true, mode: 'off', allow: [], block: [], always_allowed: ['s.test'], set_by: 'T' } }, 'policy'],
    [{ type: 'close_tab', tab_id: 12 }, 'close_tab'],
    [{ type: 'get_tabs' }, 'get_tabs'],
    [{ type: 'open_url', url: 'https://example.org/a' }, 'open_url'],
  ];
  for (const [m, type] of ok) {
    const r = parseHostMessage(m);
    assert.ok(r.ok, JSON.stringify(r));
    assert.equal(r.msg.type, type);
  }
  const bad = [null, 'x', [], {}, { type: 'format_disk' }, { type: 'close_tab' }, { type: 'close_tab', tab_id: '3' },
    { type: 'close_tab', tab_id: 1.5 }, { type: 'policy' }, { type: 'policy', web: { mode: 'everything' } },
    { type: 'open_url', url: 'file:///etc/passwd' }, { type: 'open_url', url: 'javascript:alert(1)' },
    { type: 'open_url', url: 'https://user:pw@example.org/' }, { type: 'open_url', url: 'https://a.test/ x' }];
  for (const m of bad) assert.equal(parseHostMessage(m).ok, false, JSON.stringify(m));
});

test('URLs and message texts are checked as the agent checks them', () => {
  assert.deepEqual(checkUrl('https://example.org'), { ok: true, url: 'https://example.org/' });
  assert.equal(checkUrl(`https://example.org/${'a'.repeat(2100)}`).ok, false);
  assert.equal(checkUrl('ftp://example.org/').ok, false);
  assert.equal(checkUrl('example.org').ok, false);
  assert.equal(checkMessageText('Eyes to the front\nplease'), null);
  assert.match(checkMessageText('   '), /empty/);
  assert.match(checkMessageText('x'.repeat(2001)), /longer/);
  assert.match(checkMessageText('evil \u202e txt'), /control/);
  assert.match(checkMessageText('bell \u0007'), /control/);
});

test('server frames are validated', () => {
  const good = [
    { type: 'welcome', device_id: 3, school: 'Hill', heartbeat_secs: 15 },
    { type: 'welcome', device_id: 3, school: 'Hill', heartbeat_secs: 15, credential: { device_id: 3, secret: 's' } },
    { type: 'command', command_id: 9, command: { type: 'block_internet' } },
    { type: 'policy', policy: { version: 4, internet_blocked: true, web_filter_mode: 'allow_list', allow_list: ['a.test'], block_list: [], remote_view: 'allow' } },
    { type: 'view_request', request_id: 1, teacher: 't', timeout_secs: 10 },
    { type: 'error', code: 'bad_token', message: 'no' },
    { type: 'start_thumbnails', width: 320, interval_ms: 1000 },
  ];
  for (const f of good) assert.ok(parseServerFrame(JSON.stringify(f)).ok, JSON.stringify(f));
  const p = parseServerFrame(JSON.stringify(good[3]));
  assert.equal(p.msg.policy.web_filter_mode, 'allow_list');
  assert.equal(p.msg.policy.activity_logging, true, 'defaults fill what is missing');
  const bad = ['', 'null', '{}', '[1]', '{"type":"nope"}', '{"type":"welcome","device_id":"1"}',
    '{"type":"welcome","device_id":1,"school":"s","heartbeat_secs":15,"credential":{"secret":1}}',
    '{"type":"command","command_id":1}', '{"type":"policy","policy":{"internet_blocked":"yes"}}',
    `{"type":"heartbeat","pad":"${'x'.repeat(MAX_SERVER_FRAME)}"}`];
  for (const f of bad) assert.equal(parseServerFrame(f).ok, false, f.slice(0, 60));
  assert.equal(parseServerFrame(new ArrayBuffer(4)).ok, false);
});

test('the hello has the shape lectern-proto expects', () => {
  const h = helloFrame({ kind: 'enroll', token: 'tok' }, { hostname: 'cb-1', os: 'chromeos', agent_version: 'extension 0.1.0' }, { user: null });
  assert.deepEqual(Object.keys(h).sort(), ['auth', 'capabilities', 'info', 'protocol_version', 'state', 'type']);
  assert.equal(h.type, 'hello');
  assert.equal(h.protocol_version, 1);
  // Auth is tagged by `kind` (serde tag = "kind", deny_unknown_fields).
  assert.deepEqual(h.auth, { kind: 'enroll', token: 'tok' });
  assert.deepEqual(CHROMEBOOK_CAPABILITIES, ['message', 'launch_url', 'internet_block', 'tabs', 'web_filter', 'thumbnails', 'lock', 'broadcast', 'student_sign_in']);
});

test('Chromebook state is a DeviceState', () => {
  const web = effectiveWebPolicy({ ...DEFAULT_SERVER_POLICY, version: 7, sound_muted: true }, { ...NO_TEACHER, internet_blocked: true }, ['s.test']);
  const tabs = [
    { id: 1, window_id: 1, title: 'Docs', url: 'https://docs.test/', active: false },
    { id: 2, window_id: 1, title: 'Maths', url: 'https://maths.test/q', active: true },
  ];
  const s = deviceState({ web, policy: { ...DEFAULT_SERVER_POLICY, version: 7, sound_muted: true }, tabs, messageShown: true });
  assert.equal(s.internet_blocked, true);
  assert.equal(s.url, 'https://maths.test/q');
  assert.equal(s.window_title, 'Maths');
  assert.equal(s.policy_version, 7);
  assert.deepEqual(s.unsupported, ['sound_muted']);
  assert.equal(s.extension, 'connected');
  assert.equal(s.message_shown, true);
  assert.deepEqual(s.tabs, tabs);
  const none = deviceState({ web, policy: DEFAULT_SERVER_POLICY, tabs: [], messageShown: false });
  assert.equal(none.url, null);
});

test("a teacher's restrictions and the school's policy merge", () => {
  const policy = { ...DEFAULT_SERVER_POLICY, web_filter_mode: 'block_list', block_list: ['games.test'] };
  // Policy lists apply while the teacher sets none.
  let web = effectiveWebPolicy(policy, NO_TEACHER, ['s.test']);
  assert.equal(web.mode, 'block_list');
  assert.deepEqual(web.block, ['games.test']);
  assert.equal(web.set_by, 'your school');
  assert.deepEqual(web.always_allowed, ['s.test']);
  // The teacher's lists replace them while set.
  const teacher = { internet_blocked: false, filter: { mode: 'allow_list', allow: ['allowed.test'], block: [] } };
  web = effectiveWebPolicy(policy, teacher, ['s.test']);
  assert.equal(web.mode, 'allow_list');
  assert.deepEqual(web.allow, ['allowed.test']);
  assert.equal(web.set_by, 'your teacher');
  assert.equal(verdict(web, 'https://other.test/').allowed, false);
  assert.equal(verdict(web, 'https://s.test/').allowed, true);
  // A block from either side blocks; the policy's is named.
  web = effectiveWebPolicy({ ...policy, internet_blocked: true }, { ...teacher, internet_blocked: false }, []);
  assert.equal(web.internet_blocked, true);
  assert.equal(web.set_by, 'your school');
  web = effectiveWebPolicy(DEFAULT_SERVER_POLICY, { ...NO_TEACHER, internet_blocked: true }, []);
  assert.equal(web.internet_blocked, true);
  assert.equal(web.set_by, 'your teacher');
  assert.ok(buildRules(web, { blockPage: 'chrome-extension://x/blocked.html' }).rules.length > 0);
  assert.equal(BLOCKED_BY_POLICY, 'the internet stays blocked by policy (a group or lesson blocks it)');
});

test('set_web_filter commands are checked like the server does', () => {
  assert.deepEqual(parseWebFilterCommand({ type: 'set_web_filter', mode: 'allow_list', allow: ['*.Example.org', 'wikipedia.org'] }),
    { ok: true, filter: { mode: 'allow_list', allow: ['*.example.org', 'wikipedia.org'], block: [] } });
  assert.deepEqual(parseWebFilterCommand({ mode: 'off', allow: ['a.test'] }), { ok: true, filter: { mode: 'off', allow: [], block: [] } });
  assert.equal(parseWebFilterCommand({ mode: 'everything' }).ok, false);
  assert.equal(parseWebFilterCommand({ mode: 'block_list', block: ['no spaces.test'] }).ok, false);
  assert.equal(parseWebFilterCommand({ mode: 'block_list', block: 'a.test' }).ok, false);
});

test('policy settings a Chromebook cannot enforce are reported', () => {
  assert.deepEqual(unsupportedSettings(DEFAULT_SERVER_POLICY), []);
  assert.deepEqual(unsupportedSettings({ ...DEFAULT_SERVER_POLICY, screen_locked: true, printing_disabled: true }), ['printing_disabled']);
  // An application list (a group's or an exam's) cannot be enforced by a
  // browser extension: reported, not silently ignored.
  const exam = parseServerPolicy({ app_mode: 'allow_list', app_allow_list: ['libreoffice'] });
  assert.ok(exam.ok);
  assert.deepEqual(unsupportedSettings(exam.policy), ['app_mode']);
  assert.deepEqual(unsupportedSettings(parseServerPolicy({ app_mode: 'off' }).policy), []);
  assert.equal(parseServerPolicy({ app_mode: 'sometimes' }).ok, false);
  assert.equal(unsupported('logging out'), 'not supported on this device: logging out');
  assert.equal(parseServerPolicy({ version: -1 }).ok, false);
  assert.equal(parseServerPolicy({ allow_list: [3] }).ok, false);
});

test('tab lists are trimmed to fit a frame, active tabs first', () => {
  const tabs = Array.from({ length: 300 }, (_, i) => ({
    id: i, window_id: 1, title: 't'.repeat(500), url: `https://a.test/${'p'.repeat(3000)}`, active: i === 250,
  }));
  const out = limitTabs(tabs);
  assert.ok(JSON.stringify(out).length <= TABS_BUDGET);
  assert.ok(out.some((t) => t.id === 250 && t.active), 'the active tab is kept');
  assert.ok(out.every((t) => t.title.length <= 200 && t.url.length <= 1024));
  const ids = out.map((t) => t.id);
  assert.deepEqual(ids, [...ids].sort((a, b) => a - b), 'browser order kept');
  const mapped = tabsFromChrome([
    { id: 5, windowId: 2, title: 'A', url: 'https://a.test/', active: true, index: 0 },
    { id: -1, windowId: 2, title: 'devtools', url: 'devtools://x', active: false, index: 1 },
    { id: 6, windowId: 2, pendingUrl: 'https://b.test/', active: false, index: 2 },
  ]);
  assert.deepEqual(mapped, [
    { id: 5, window_id: 2, title: 'A', url: 'https://a.test/', active: true },
    { id: 6, window_id: 2, title: '', url: 'https://b.test/', active: false },
  ]);
});

test('reconnect backoff grows from 1 s to 60 s with jitter', () => {
  assert.equal(backoffDelay(0, () => 0), 500);
  assert.equal(backoffDelay(0, () => 1), 1000);
  assert.equal(backoffDelay(3, () => 1), 8000);
  assert.equal(backoffDelay(10, () => 1), 60_000);
  assert.equal(backoffDelay(100, () => 0), 30_000);
});

test('the managed server setting is read as host:port', () => {
  assert.deepEqual(parseServer('lectern.school.example'), { host: 'lectern.school.example', port: 30016, authority: 'lectern.school.example:30016' });
  assert.deepEqual(parseServer(' 127.0.0.1:4443 '), { host: '127.0.0.1', port: 4443, authority: '127.0.0.1:4443' });
  assert.deepEqual(parseServer('wss://Lectern.Example:9/agent/v1'), { host: 'lectern.example', port: 9, authority: 'lectern.example:9' });
  assert.equal(parseServer('[::1]:30016').authority, '[::1]:30016');
  for (const bad of ['', 'a b', 'host:0', 'host:99999', 42, null]) assert.equal(parseServer(bad), null, String(bad));
});

test('every frame the server sends to the extension is parsed', async () => {
  // Written by lectern-proto (crates/proto/tests/extension_frames.rs): one of
  // each type the extension gets.
  const { readFile } = await import('node:fs/promises');
  const frames = JSON.parse(await readFile(new URL('./fixtures/server-frames.json', import.meta.url), 'utf8'));
  assert.ok(frames.length >= 22);
  for (const frame of frames) {
    const parsed = parseServerFrame(JSON.stringify(frame));
    assert.ok(parsed.ok, `${frame.type}: ${parsed.ok ? '' : parsed.error}`);
    assert.equal(parsed.msg.type, frame.type);
  }
  const look = frames.find((/** @type {any} */ f) => f.type === 'school_look');
  assert.deepEqual(parseServerFrame(JSON.stringify(look)), { ok: true, msg: look });
  assert.deepEqual(parseServerFrame(JSON.stringify({ type: 'school_look', name: 'X' })),
    { ok: true, msg: { type: 'school_look', name: 'X', logo_sha256: null } });
  assert.equal(parseServerFrame('{"type":"school_look"}').ok, false);
  assert.equal(parseServerFrame('{"type":"school_logo","sha256":"ab"}').ok, false);
});

test('a Chromebook enrolls with its token, else the school code, and then connects with its credential', () => {
  const none = { token: '', schoolCode: '' };
  assert.deepEqual(helloAuth({ device_id: 4, secret: 's' }, { token: 't', schoolCode: 'c' }), { kind: 'device', device_id: 4, secret: 's' });
  assert.deepEqual(helloAuth(null, { token: 'lct_x', schoolCode: '7KQ2M-XH4PD' }), { kind: 'enroll', token: 'lct_x' });
  assert.deepEqual(helloAuth(undefined, { ...none, schoolCode: '7kq2m xh4pd' }), { kind: 'school_code', code: '7kq2m xh4pd' });
});

test('a typed school code is read as lectern-proto reads it', () => {
  assert.deepEqual(normalizeSchoolCode('il0o1-abcde'), { ok: true, code: '11001ABCDE' });
  assert.deepEqual(normalizeSchoolCode(' 7kq2m xh4pd '), { ok: true, code: '7KQ2MXH4PD' });
  assert.equal(normalizeSchoolCode('7KQ2M-XH4P').ok, false);
  assert.deepEqual(normalizeSchoolCode('7KQ2M-XH4PU'), { ok: false, error: 'A school code has only letters and digits.' });
  assert.equal(normalizeSchoolCode('7KQ2M-XH4PDé').ok, false);
  assert.equal(normalizeSchoolCode('-'.repeat(100)).ok, false);
  assert.equal(normalizeSchoolCode(undefined).ok, false);
});
