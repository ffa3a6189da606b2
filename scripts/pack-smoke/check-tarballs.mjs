#!/usr/bin/env node
// Checks the packed tarballs before anything is installed from them:
//   node check-tarballs.mjs <repo root> <extract dir> <tarball ...>
// Each tarball must hold package.json, README.md, LICENSE (the repository's), dist/ with
// the `exports` targets, and src/ (the sources its maps point to); nothing else, and no
// .tsbuildinfo. Every source map and declaration map must resolve inside the tarball.
// @meshlet/http must depend on the @meshlet/core version packed next to it.
import { execFileSync } from 'node:child_process';
import { mkdirSync, readFileSync } from 'node:fs';
import { basename, join, posix } from 'node:path';

const [root, extractRoot, ...tarballs] = process.argv.slice(2);
if (!root || !extractRoot || tarballs.length === 0) {
  console.error('usage: check-tarballs.mjs <repo root> <extract dir> <tarball ...>');
  process.exit(2);
}

const problems = [];
const manifests = new Map();
const rootLicense = readFileSync(join(root, 'LICENSE'), 'utf8');
const ALLOWED_TOP = new Set(['package.json', 'README.md', 'LICENSE', 'dist', 'src']);

for (const tarball of tarballs) {
  const name = basename(tarball);
  const files = execFileSync('tar', ['-tzf', tarball], { encoding: 'utf8' })
    .split('\n')
    .filter((f) => f !== '' && !f.endsWith('/'))
    .map((f) => f.replace(/^package\//, ''));
  const has = new Set(files);
  const before = problems.length;
  const bad = (msg) => problems.push(`${name}: ${msg}`);

  for (const f of files) {
    if (f.endsWith('.tsbuildinfo')) bad(`ships ${f} (build state, not for users)`);
    if (!ALLOWED_TOP.has(f.split('/')[0])) bad(`ships ${f}, outside dist/, src/, README.md, LICENSE, package.json`);
  }
  for (const f of ['package.json', 'README.md', 'LICENSE', 'dist/index.js', 'dist/index.d.ts']) {
    if (!has.has(f)) bad(`lacks ${f}`);
  }

  const dir = join(extractRoot, name.replace(/\.tgz$/, ''));
  mkdirSync(dir, { recursive: true });
  execFileSync('tar', ['-xzf', tarball, '-C', dir]);
  const pkgDir = join(dir, 'package');
  const manifest = JSON.parse(readFileSync(join(pkgDir, 'package.json'), 'utf8'));
  manifests.set(manifest.name, manifest);

  if (has.has('LICENSE') && readFileSync(join(pkgDir, 'LICENSE'), 'utf8') !== rootLicense) {
    bad('LICENSE differs from the repository LICENSE');
  }
  if (manifest.license !== 'Apache-2.0') bad(`license field is ${manifest.license}, expected Apache-2.0`);
  if (has.has('README.md') && !readFileSync(join(pkgDir, 'README.md'), 'utf8').includes(manifest.name)) {
    bad(`README.md does not mention ${manifest.name}`);
  }
  for (const target of exportTargets(manifest.exports)) {
    if (!has.has(posix.normalize(target))) bad(`exports points to ${target}, which is not in the tarball`);
  }
  // A map whose sources are missing makes debuggers and editors show nothing useful.
  let maps = 0;
  for (const f of files.filter((x) => x.endsWith('.map'))) {
    maps++;
    const map = JSON.parse(readFileSync(join(pkgDir, f), 'utf8'));
    for (const source of map.sources ?? []) {
      const resolved = posix.normalize(posix.join(posix.dirname(f), map.sourceRoot ?? '', source));
      if (!has.has(resolved)) bad(`${f} points to ${source} (${resolved}), which is not in the tarball`);
    }
  }
  if (problems.length === before) {
    console.log(`pack-smoke: ${name}: ${files.length} files (${maps} maps, all sources present), LICENSE + README ok`);
  }
}

const core = manifests.get('@meshlet/core');
const http = manifests.get('@meshlet/http');
if (!core || !http) problems.push('expected both @meshlet/core and @meshlet/http tarballs');
else {
  const spec = http.dependencies?.['@meshlet/core'];
  if (spec !== core.version && spec !== `^${core.version}`) {
    problems.push(`@meshlet/http depends on @meshlet/core "${spec}", expected "${core.version}" or "^${core.version}"`);
  }
  for (const m of [core, http]) {
    if (!m.peerDependencies?.['@opentelemetry/api']) problems.push(`${m.name}: no @opentelemetry/api peer dependency`);
    if (m.dependencies?.['@opentelemetry/api'])
      problems.push(`${m.name}: @opentelemetry/api must be a peer, not a dependency`);
  }
}

if (problems.length > 0) {
  for (const p of problems) console.error(`pack-smoke: FAIL ${p}`);
  process.exit(1);
}

function* exportTargets(exp) {
  if (typeof exp === 'string') yield exp;
  else if (exp && typeof exp === 'object') for (const v of Object.values(exp)) yield* exportTargets(v);
}
