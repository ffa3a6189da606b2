#!/usr/bin/env node
// Runs every *.test.ts under the given roots (default: packages/*/test and test/) with
// node's test runner and tsx. Node 20's --test takes no globs, so files are listed here.
import { spawnSync } from 'node:child_process';
import { readdirSync, statSync } from 'node:fs';
import { join } from 'node:path';

const roots = process.argv.slice(2);
const defaults = [...readdirSync('packages').map((p) => join('packages', p, 'test')), 'test'];
const files = [];
function walk(dir) {
  let entries;
  try {
    entries = readdirSync(dir);
  } catch {
    return;
  }
  for (const name of entries.sort()) {
    if (name === 'node_modules' || name === 'dist') continue;
    const path = join(dir, name);
    if (statSync(path).isDirectory()) walk(path);
    else if (name.endsWith('.test.ts')) files.push(path);
  }
}
for (const root of roots.length ? roots : defaults) walk(root);
if (files.length === 0) {
  console.error('no test files found');
  process.exit(1);
}
// Two files at a time: most tests wait on sockets and timers, so on the 2-core CI machine this takes
// ~3 min instead of ~4.5 (Node's default is one file at a time when it sees 2 cores).
const result = spawnSync(
  process.execPath,
  ['--import', 'tsx', '--test', '--test-concurrency=2', '--test-reporter=spec', ...files],
  {
    stdio: 'inherit',
  },
);
process.exit(result.status ?? 1);
