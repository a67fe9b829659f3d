// Exits 0 when every package named in package.json is in node_modules (the
// test scripts run `npm install` otherwise: a checkout that had
// node_modules before a dependency was added still gets it).
const { existsSync } = require('node:fs');
const { join } = require('node:path');
const pkg = require('./package.json');
const names = Object.keys({ ...pkg.dependencies, ...pkg.devDependencies });
const missing = names.filter((n) => !existsSync(join(__dirname, 'node_modules', n, 'package.json')));
if (missing.length) console.error(`e2e: npm packages missing: ${missing.join(' ')}`);
process.exit(missing.length ? 1 : 0);
