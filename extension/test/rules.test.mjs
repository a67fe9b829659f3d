// Unit tests of rules.js: pattern semantics, the rules built for each kind of
// policy, and what those rules do to requests under a small model of
// declarativeNetRequest's matching (priority, action order, requestDomains,
// regexFilter, resourceTypes, allowAllRequests).
//
// Run: node --test extension/test/

import assert from 'node:assert/strict';
import { createHash } from 'node:crypto';
import { readFileSync } from 'node:fs';
import { test } from 'node:test';

import {
  DEFAULT_LIMITS, OPEN_POLICY, PRIORITY, blockPageUrl, buildRules, globToRegex, hostMatches,
  normalizePattern, parseBlockHash, parseWebPolicy, urlRegexFor, verdict,
} from '../rules.js';

const BLOCK_PAGE = 'chrome-extension://fjidkjddendcfbjfghhdjlahgpcbiaek/blocked.html';

/** @returns {import('../rules.js').WebPolicy} */
const policy = (over) => ({ ...OPEN_POLICY, allow: [], block: [], always_allowed: ['lectern.school.example'], set_by: 'Ms Khan', ...over });

// ---------------------------------------------------------------------------
// A model of declarativeNetRequest's matching, enough for these rules.

const ACTION_ORDER = ['allow', 'allowAllRequests', 'block', 'upgradeScheme', 'redirect'];

function ruleMatches(rule, { url, type }) {
  const c = rule.condition;
  const host = new URL(url).hostname;
  if (c.resourceTypes) {
    if (!c.resourceTypes.includes(type)) return false;
  } else if (type === 'main_frame') {
    return false;
  }
  if (c.requestDomains && !c.requestDomains.some((d) => host === d || host.endsWith(`.${d}`))) return false;
  if (c.regexFilter) {
    // RE2 and JS agree on the syntax the rules use.
    const re = new RegExp(c.regexFilter, c.isUrlFilterCaseSensitive === false ? 'i' : '');
    if (!re.test(url)) return false;
  }
  return true;
}

function best(rules, req) {
  const hits = rules.filter((r) => ruleMatches(r, req));
  hits.sort((a, b) => b.priority - a.priority || ACTION_ORDER.indexOf(a.action.type) - ACTION_ORDER.indexOf(b.action.type));
  return hits[0] || null;
}

/**
 * What happens to a request: 'allow', 'block' or the redirect target.
 * @param {object[]} rules
 * @param {{url: string, type: string, frame?: string}} req frame: URL of the
 *   top-level page the request belongs to (subresources and sub frames)
 */
function outcome(rules, req) {
  let floor = -1;
  if (req.type !== 'main_frame') {
    const top = best(rules, { url: req.frame || req.url, type: 'main_frame' });
    if (top && top.action.type === 'allowAllRequests') floor = top.priority;
  }
  const r = best(rules, req);
  if (!r || r.priority <= floor) return 'allow';
  switch (r.action.type) {
    case 'allow':
    case 'allowAllRequests':
      return 'allow';
    case 'block':
      return 'block';
    case 'redirect': {
      const re = new RegExp(r.condition.regexFilter, 'i');
      return req.url.replace(re, r.action.redirect.regexSubstitution.replace(/\\0/g, () => '$&'));
    }
    default:
      throw new Error(`unexpected action ${r.action.type}`);
  }
}

const page = (url) => ({ url, type: 'main_frame' });
const sub = (url, frame, type = 'xmlhttprequest') => ({ url, type, frame });
const isBlockPage = (o, reason) => typeof o === 'string' && o.startsWith(`${BLOCK_PAGE}#reason=${reason}&`);

// ---------------------------------------------------------------------------

test('patterns are normalized or refused', () => {
  assert.equal(normalizePattern(' Example.ORG. '), 'example.org');
  assert.equal(normalizePattern('*.example.org'), '*.example.org');
  assert.equal(normalizePattern('lectern.school.example:30016'), 'lectern.school.example');
  assert.equal(normalizePattern('https://www.example.org/'), 'www.example.org');
  assert.equal(normalizePattern('127.0.0.1:8443'), '127.0.0.1');
  for (const bad of ['', '  ', 'a..b', '.example.org', 'exa mple.org', 'example.org/path', 'ex_ample.org', 'ünï.example', 42, null]) {
    assert.equal(normalizePattern(bad), null, JSON.stringify(bad));
  }
});

test('a plain pattern matches the host and its subdomains', () => {
  assert.ok(hostMatches('example.org', 'example.org'));
  assert.ok(hostMatches('example.org', 'www.example.org'));
  assert.ok(hostMatches('example.org', 'a.b.example.org'));
  assert.ok(!hostMatches('example.org', 'badexample.org'));
  assert.ok(!hostMatches('example.org', 'example.org.evil.test'));
});

test('a wildcard pattern is a glob over the whole host', () => {
  assert.ok(hostMatches('*.example.org', 'a.example.org'));
  assert.ok(hostMatches('*.example.org', 'a.b.example.org'));
  assert.ok(!hostMatches('*.example.org', 'example.org'));
  assert.ok(!hostMatches('*.example.org', 'example.org.evil.test'));
  assert.ok(hostMatches('ex*ample.com', 'example.com'));
  assert.ok(hostMatches('ex*ample.com', 'ex-ample.com'));
  assert.ok(!hostMatches('ex*ample.com', 'www.example.com'));
  assert.ok(hostMatches('games.*', 'games.example'));
  assert.equal(globToRegex('*.a-b.org'), '[^/:?#@]*\\.a-b\\.org');
});

test('wildcard URL regexes stop at the port and path', () => {
  const re = new RegExp(urlRegexFor('*.example.org'));
  assert.ok(re.test('https://a.example.org/'));
  assert.ok(re.test('http://a.b.example.org:8080/x?y#z'));
  assert.ok(re.test('wss://a.example.org/socket'));
  assert.ok(!re.test('https://example.org/'));
  assert.ok(!re.test('https://evil.test/a.example.org'));
  assert.ok(!re.test('https://evil.test/?u=https://a.example.org/'));
  assert.ok(!re.test('https://a.example.org.evil.test/'));
  assert.ok(!re.test('chrome-extension://abc/a.example.org'));
  // The whole URL is matched, so \0 in a substitution is the full address.
  assert.equal('https://a.example.org/p?q=1'.match(re)[0], 'https://a.example.org/p?q=1');
});

test('no restriction, no rules', () => {
  const r = buildRules(policy({}), { blockPage: BLOCK_PAGE });
  assert.equal(r.ok, true);
  assert.deepEqual(r.rules, []);
  // Lists without their mode do nothing either.
  assert.deepEqual(buildRules(policy({ block: ['games.example'], allow: ['x.org'] }), { blockPage: BLOCK_PAGE }).rules, []);
});

test('internet blocked: every page goes to the block page but the server', () => {
  const { ok, rules } = buildRules(policy({ internet_blocked: true, mode: 'allow_list', allow: ['allowed.test'] }), { blockPage: BLOCK_PAGE });
  assert.ok(ok);
  const o = outcome(rules, page('https://blocked.test/path?a=1&b=2'));
  assert.ok(isBlockPage(o, 'internet'), o);
  assert.deepEqual(parseBlockHash(new URL(o).hash), { reason: 'internet', by: 'Ms Khan', url: 'https://blocked.test/path?a=1&b=2' });
  // internet_blocked takes precedence over the allow list.
  assert.ok(isBlockPage(outcome(rules, page('http://allowed.test/')), 'internet'));
  // The server and its subdomains load, with whatever they load.
  assert.equal(outcome(rules, page('https://lectern.school.example:30016/')), 'allow');
  assert.equal(outcome(rules, sub('https://cdn.elsewhere.test/app.js', 'https://lectern.school.example/', 'script')), 'allow');
  assert.equal(outcome(rules, sub('wss://lectern.school.example:30016/agent/v1', 'https://lectern.school.example/', 'websocket')), 'allow');
  // Everything else that is not a page is simply blocked.
  for (const type of ['sub_frame', 'xmlhttprequest', 'script', 'image', 'websocket', 'other']) {
    const url = type === 'websocket' ? 'wss://blocked.test/s' : 'https://blocked.test/x';
    assert.equal(outcome(rules, sub(url, 'https://blocked.test/', type)), 'block', type);
  }
});

test('allow list: listed sites load whole, others go to the block page', () => {
  const { ok, rules } = buildRules(policy({ mode: 'allow_list', allow: ['allowed.test', '*.wiki.test'] }), { blockPage: BLOCK_PAGE });
  assert.ok(ok);
  assert.equal(outcome(rules, page('http://allowed.test/')), 'allow');
  assert.equal(outcome(rules, page('http://www.allowed.test/')), 'allow');
  assert.equal(outcome(rules, page('https://en.wiki.test/Main')), 'allow');
  assert.ok(isBlockPage(outcome(rules, page('https://wiki.test/')), 'not_allowed'), 'the glob needs a subdomain');
  assert.ok(isBlockPage(outcome(rules, page('http://other.test/')), 'not_allowed'));
  // An allowed page's images from elsewhere load; a blocked page's don't.
  assert.equal(outcome(rules, sub('https://img.cdn.test/a.png', 'http://allowed.test/', 'image')), 'allow');
  assert.equal(outcome(rules, sub('https://img.cdn.test/a.png', 'http://other.test/', 'image')), 'block');
  assert.equal(outcome(rules, page('https://lectern.school.example/')), 'allow');
});

test('block list: only listed sites are blocked, never the server', () => {
  const { ok, rules } = buildRules(policy({
    mode: 'block_list',
    block: ['blocked.test', '*.games.test', 'lectern.school.example'],
    allow: ['blocked.test'],
  }), { blockPage: BLOCK_PAGE });
  assert.ok(ok);
  const o = outcome(rules, page('http://blocked.test/play?level=2'));
  assert.ok(isBlockPage(o, 'blocked'), o);
  assert.equal(parseBlockHash(new URL(o).hash).url, 'http://blocked.test/play?level=2');
  assert.ok(isBlockPage(outcome(rules, page('https://www.blocked.test/')), 'blocked'));
  assert.ok(isBlockPage(outcome(rules, page('https://x.games.test/')), 'blocked'));
  assert.equal(outcome(rules, page('https://games.test/')), 'allow');
  assert.equal(outcome(rules, page('http://other.test/')), 'allow');
  assert.equal(outcome(rules, sub('http://blocked.test/frame', 'http://other.test/', 'sub_frame')), 'block');
  assert.equal(outcome(rules, sub('https://x.games.test/api', 'http://other.test/')), 'block');
  assert.equal(outcome(rules, page('https://lectern.school.example/')), 'allow', 'always allowed wins over the block list');
});

test('rule ids are small, stable and independent of list order', () => {
  const a = buildRules(policy({ mode: 'block_list', block: ['b.test', '*.c.test', 'a.test'] }), { blockPage: BLOCK_PAGE });
  const b = buildRules(policy({ mode: 'block_list', block: ['*.c.test', 'a.test', 'b.test', 'A.test'] }), { blockPage: BLOCK_PAGE });
  assert.deepEqual(a.rules, b.rules);
  assert.deepEqual(a.rules.map((r) => r.id), a.rules.map((_, i) => i + 1));
  // requestDomains rules need valid lower-case domains.
  for (const r of a.rules) for (const d of r.condition.requestDomains || []) assert.match(d, /^[a-z0-9.-]+$/);
});

test('rules are valid declarativeNetRequest rules', () => {
  const all = [
    policy({ internet_blocked: true }),
    policy({ mode: 'allow_list', allow: ['a.test', '*.b.test'] }),
    policy({ mode: 'block_list', block: ['a.test', '*.b.test'] }),
  ];
  for (const p of all) {
    for (const r of buildRules(p, { blockPage: BLOCK_PAGE }).rules) {
      assert.ok(Number.isInteger(r.id) && r.id >= 1);
      assert.ok(Number.isInteger(r.priority) && r.priority >= 1);
      assert.ok(!('urlFilter' in r.condition && 'regexFilter' in r.condition));
      if (r.action.type === 'allowAllRequests') assert.ok(r.condition.resourceTypes.every((t) => t === 'main_frame' || t === 'sub_frame'));
      if (r.action.type === 'redirect') {
        assert.ok(r.condition.regexFilter, 'regexSubstitution needs a regexFilter');
        assert.ok(r.action.redirect.regexSubstitution.startsWith(`${BLOCK_PAGE}#reason=`));
        assert.deepEqual(r.condition.resourceTypes, ['main_frame']);
      }
      // No rule can match the extension's own pages.
      if (r.condition.regexFilter) assert.ok(!new RegExp(r.condition.regexFilter).test(`${BLOCK_PAGE}#x`));
    }
  }
  assert.ok(Object.values(PRIORITY).every(Number.isInteger));
});

test('set_by reaches the block page safely encoded', () => {
  const nasty = 'Ms O\'Brien \\1 & co #2 <b>';
  const { rules } = buildRules(policy({ internet_blocked: true, set_by: nasty }), { blockPage: BLOCK_PAGE });
  const o = outcome(rules, page('https://x.test/'));
  const got = parseBlockHash(new URL(o).hash);
  assert.equal(got.by, nasty);
  assert.equal(got.reason, 'internet');
  const redirect = rules.find((r) => r.action.type === 'redirect');
  assert.ok(!/\\[1-9]/.test(redirect.action.redirect.regexSubstitution), 'no stray group references');
});

test('the block page fragment parses with and without a URL', () => {
  assert.deepEqual(parseBlockHash('#reason=blocked&by=school%20policy'), { reason: 'blocked', by: 'school policy', url: null });
  assert.deepEqual(parseBlockHash(blockPageUrl('', 'internet', 'T', 'https://a.test/?x=1&url=2').replace(/^#?/, '#').slice(0)),
    { reason: 'internet', by: 'T', url: 'https://a.test/?x=1&url=2' });
  assert.deepEqual(parseBlockHash(''), { reason: '', by: '', url: null });
});

test('too many wildcard patterns are refused, not half-applied', () => {
  const many = Array.from({ length: 600 }, (_, i) => `*.site${i}.test`);
  const r = buildRules(policy({ mode: 'block_list', block: many }), { blockPage: BLOCK_PAGE });
  assert.equal(r.ok, false);
  assert.deepEqual(r.rules, []);
  assert.match(r.errors.join(' '), /regex rules/);
  // 5000 plain patterns are fine: they share two rules.
  const plain = Array.from({ length: 5000 }, (_, i) => `site${i}.test`);
  const p = buildRules(policy({ mode: 'block_list', block: plain }), { blockPage: BLOCK_PAGE });
  assert.equal(p.ok, true);
  assert.ok(p.rules.length <= 4, `${p.rules.length} rules`);
  // Past the server's own cap.
  const over = buildRules(policy({ mode: 'block_list', block: [...plain, 'x.test'] }), { blockPage: BLOCK_PAGE });
  assert.equal(over.ok, false);
  // A browser with lower limits.
  const low = buildRules(policy({ mode: 'block_list', block: ['*.a.test', '*.b.test'] }), { blockPage: BLOCK_PAGE, limits: { regexRules: 3 } });
  assert.equal(low.ok, false);
  assert.equal(DEFAULT_LIMITS.regexRules, 1000);
});

test('bad patterns are skipped with a warning', () => {
  const r = buildRules(policy({ mode: 'block_list', block: ['good.test', 'bad pattern', ''] }), { blockPage: BLOCK_PAGE });
  assert.equal(r.ok, true);
  assert.equal(r.warnings.length, 2);
  assert.ok(r.rules.some((x) => (x.condition.requestDomains || []).includes('good.test')));
});

test('verdict agrees with the rules', () => {
  const cases = [
    policy({ internet_blocked: true }),
    policy({ mode: 'allow_list', allow: ['allowed.test', '*.wiki.test'] }),
    policy({ mode: 'block_list', block: ['blocked.test', '*.games.test'] }),
    policy({}),
  ];
  const urls = ['https://allowed.test/', 'http://blocked.test/', 'https://a.wiki.test/', 'https://x.games.test/', 'https://games.test/',
    'https://other.test/', 'https://lectern.school.example/', 'https://sub.lectern.school.example/'];
  for (const p of cases) {
    const { rules } = buildRules(p, { blockPage: BLOCK_PAGE });
    for (const url of urls) {
      const o = outcome(rules, page(url));
      const v = verdict(p, url);
      assert.equal(v.allowed, o === 'allow', `${JSON.stringify(p)} ${url}`);
      if (!v.allowed) assert.ok(isBlockPage(o, v.reason));
    }
  }
  assert.deepEqual(verdict(policy({ internet_blocked: true }), 'chrome://settings'), { allowed: true });
  assert.deepEqual(verdict(policy({ internet_blocked: true }), 'not a url'), { allowed: true });
});

test('host policy messages are checked', () => {
  assert.deepEqual(parseWebPolicy({ internet_blocked: true }).ok, true);
  const full = parseWebPolicy({ internet_blocked: false, mode: 'allow_list', allow: ['a.test'], block: [], always_allowed: ['s.test'], set_by: 'T', extra: 1 });
  assert.ok(full.ok);
  assert.equal(full.web.mode, 'allow_list');
  for (const bad of [null, [], 'x', { internet_blocked: 'yes' }, { mode: 'deny_all' }, { allow: 'a.test' }, { allow: [1] }, { set_by: 5 },
    { block: Array.from({ length: 5001 }, () => 'a.test') }]) {
    assert.equal(parseWebPolicy(bad).ok, false, JSON.stringify(bad).slice(0, 80));
  }
});

test('the manifest declares what the rules and pages need', () => {
  const manifest = JSON.parse(readFileSync(new URL('../manifest.json', import.meta.url), 'utf8'));
  assert.equal(manifest.manifest_version, 3);
  for (const p of ['nativeMessaging', 'declarativeNetRequest', 'tabs', 'storage', 'webNavigation', 'alarms']) {
    assert.ok(manifest.permissions.includes(p), p);
  }
  assert.deepEqual(manifest.host_permissions, ['<all_urls>']);
  assert.ok(manifest.web_accessible_resources.some((w) => w.resources.includes('blocked.html')));
  assert.equal(manifest.storage.managed_schema, 'schema.json');
  const id = readFileSync(new URL('../EXTENSION_ID', import.meta.url), 'utf8').trim();
  assert.match(id, /^[a-p]{32}$/);
  // The ID Chrome derives from the key: sha256 of the DER key, first 32 hex digits as a-p.
  const hex = createHash('sha256').update(Buffer.from(manifest.key, 'base64')).digest('hex').slice(0, 32);
  assert.equal([...hex].map((c) => String.fromCharCode(97 + parseInt(c, 16))).join(''), id);
});
