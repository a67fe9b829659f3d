// Every script of the extension must parse as an ES module: a service worker
// whose module fails to parse does nothing at all, and only an end-to-end test
// in a browser would notice (`node --check` on a .js file checks it as a
// CommonJS script, which misses module-only syntax errors).
import { test } from 'node:test';
import assert from 'node:assert/strict';
import { readFileSync, readdirSync } from 'node:fs';
import { spawnSync } from 'node:child_process';
import { dirname, join } from 'node:path';
import { fileURLToPath } from 'node:url';

const EXT = join(dirname(fileURLToPath(import.meta.url)), '..');

test('every extension script parses as a module', () => {
  const scripts = readdirSync(EXT).filter((f) => f.endsWith('.js'));
  assert.ok(scripts.includes('background.js'));
  for (const f of scripts) {
    const r = spawnSync(process.execPath, ['--input-type=module', '--check'], {
      input: readFileSync(join(EXT, f)),
      encoding: 'utf8',
    });
    assert.equal(r.status, 0, `${f} does not parse as a module:\n${r.stderr}`);
  }
});
