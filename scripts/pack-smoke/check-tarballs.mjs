#!/usr/bin/env node
// Checks the packed tarballs before anything is installed from them:
//   node check-tarballs.mjs <repo root> <extract dir> <tarball ...>
// Each tarball must hold package.json, README.md, LICENSE (the repository's), dist/ with
// the `exports` and `bin` targets, and src/ (the sources its maps point to); nothing else
// but the extra directories its package is known to ship (PACKAGES below), and no
// .tsbuildinfo. Every source map and declaration map must resolve inside the tarball.
// Each @meshlet dependency must be the version packed next to it. Per package:
//   @meshlet/core       schema/mesh.schema.json (valid JSON, exported)
//   @meshlet/grpc       @grpc/grpc-js a peer, never a dependency (the app's copy is the mesh's)
//   @meshlet/discovery  proto/meshlet/v1/discovery.proto (read at run time by the protocol)
//   @meshlet/control    bin/meshlet.js: executable in the tarball, a `#!/usr/bin/env node`
//                       shebang, and what it imports is in the tarball
//   meshlet             dist/register.js (the `./register` export); bin/meshlet.js as above,
//                       importing the CLI from @meshlet/control (a dependency); @grpc/grpc-js
//                       a peer, as for @meshlet/grpc
import { execFileSync } from 'node:child_process';
import { existsSync, mkdirSync, readFileSync } from 'node:fs';
import { gunzipSync } from 'node:zlib';
import { basename, join, posix } from 'node:path';

const [root, extractRoot, ...tarballs] = process.argv.slice(2);
if (!root || !extractRoot || tarballs.length === 0) {
  console.error('usage: check-tarballs.mjs <repo root> <extract dir> <tarball ...>');
  process.exit(2);
}

/** What each package ships besides package.json, README.md, LICENSE, dist/ and src/. */
const PACKAGES = {
  '@meshlet/core': { extraTop: ['schema'], files: ['schema/mesh.schema.json'], meshletDeps: [] },
  '@meshlet/http': { extraTop: [], files: [], meshletDeps: ['@meshlet/core'] },
  '@meshlet/grpc': { extraTop: [], files: [], meshletDeps: ['@meshlet/core'] },
  '@meshlet/discovery': {
    extraTop: ['proto'],
    files: ['proto/meshlet/v1/discovery.proto', 'dist/protocol/index.js'],
    meshletDeps: ['@meshlet/core'],
  },
  '@meshlet/control': {
    extraTop: ['bin'],
    files: ['bin/meshlet.js', 'dist/cli.js'],
    meshletDeps: ['@meshlet/core', '@meshlet/discovery'],
  },
  meshlet: {
    extraTop: ['bin'],
    files: ['bin/meshlet.js', 'dist/register.js', 'dist/admin.js'],
    meshletDeps: ['@meshlet/core', '@meshlet/http', '@meshlet/grpc', '@meshlet/discovery', '@meshlet/control'],
  },
};
/** Packages that talk to OpenTelemetry: the API must be a peer, never a dependency. */
const OTEL_PEERS = ['@meshlet/core', '@meshlet/http', '@meshlet/grpc', 'meshlet'];
/** Packages whose API takes the application's grpc-js objects: grpc-js must be a peer (one copy). */
const GRPC_PEERS = ['@meshlet/grpc', 'meshlet'];

const problems = [];
const manifests = new Map();
const rootLicense = readFileSync(join(root, 'LICENSE'), 'utf8');
const workspaceDirs = workspaces(root);

for (const tarball of tarballs) {
  const name = basename(tarball);
  const entries = readTar(tarball);
  const files = [...entries.keys()];
  const has = new Set(files);
  const before = problems.length;
  const bad = (msg) => problems.push(`${name}: ${msg}`);

  const dir = join(extractRoot, name.replace(/\.tgz$/, ''));
  mkdirSync(dir, { recursive: true });
  execFileSync('tar', ['-xzf', tarball, '-C', dir]);
  const pkgDir = join(dir, 'package');
  const manifest = JSON.parse(readFileSync(join(pkgDir, 'package.json'), 'utf8'));
  manifests.set(manifest.name, manifest);
  const expected = PACKAGES[manifest.name];
  if (!expected) {
    bad(
      `packs ${manifest.name}, which this check does not know; add it to PACKAGES in scripts/pack-smoke/check-tarballs.mjs`,
    );
    continue;
  }
  const allowedTop = new Set(['package.json', 'README.md', 'LICENSE', 'dist', 'src', ...expected.extraTop]);

  for (const f of files) {
    if (f.endsWith('.tsbuildinfo')) bad(`ships ${f} (build state, not for users)`);
    if (!allowedTop.has(f.split('/')[0])) bad(`ships ${f}, outside ${[...allowedTop].join(', ')}`);
  }
  for (const f of ['package.json', 'README.md', 'LICENSE', 'dist/index.js', 'dist/index.d.ts', ...expected.files]) {
    if (!has.has(f)) bad(`lacks ${f}`);
  }

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

  if (manifest.name === '@meshlet/core' && has.has('schema/mesh.schema.json')) {
    try {
      JSON.parse(readFileSync(join(pkgDir, 'schema/mesh.schema.json'), 'utf8'));
    } catch (err) {
      bad(`schema/mesh.schema.json is not valid JSON: ${err.message}`);
    }
  }
  if (manifest.name === '@meshlet/control' || manifest.name === 'meshlet') checkBin(manifest, entries, pkgDir, bad);

  // A map whose sources are missing makes debuggers and editors show nothing useful.
  let maps = 0;
  for (const f of files.filter((x) => x.endsWith('.map'))) {
    maps++;
    const map = JSON.parse(readFileSync(join(pkgDir, f), 'utf8'));
    for (const source of map.sources ?? []) {
      const resolved = posix.normalize(posix.join(posix.dirname(f), map.sourceRoot ?? '', source));
      if (has.has(resolved)) continue;
      const ws = workspaceDirs.get(manifest.name);
      const stale = ws !== undefined && !existsSync(join(root, ws, resolved));
      bad(
        `${f} points to ${source} (${resolved}), which is not in the tarball` +
          (stale
            ? `; it is not in ${ws}/ either, so ${f} is a build output left behind by a deleted source file: delete ${ws}/dist and run npm run build`
            : ''),
      );
    }
  }
  if (problems.length === before) {
    console.log(`pack-smoke: ${name}: ${files.length} files (${maps} maps, all sources present), LICENSE + README ok`);
  }
}

for (const want of Object.keys(PACKAGES)) {
  if (!manifests.has(want)) problems.push(`no tarball of ${want}`);
}
for (const [name, m] of manifests) {
  for (const dep of PACKAGES[name]?.meshletDeps ?? []) {
    const packed = manifests.get(dep);
    const spec = m.dependencies?.[dep];
    if (packed && spec !== packed.version && spec !== `^${packed.version}`) {
      problems.push(
        `${name} depends on ${dep} "${spec}", expected "${packed.version}" or "^${packed.version}" (the version packed next to it)`,
      );
    }
  }
  for (const dep of Object.keys({ ...m.dependencies, ...m.peerDependencies })) {
    if (dep.startsWith('@meshlet/') && !PACKAGES[name]?.meshletDeps.includes(dep)) {
      problems.push(`${name} depends on ${dep}, which this check does not expect (PACKAGES.meshletDeps)`);
    }
  }
  if (OTEL_PEERS.includes(name) && !m.peerDependencies?.['@opentelemetry/api']) {
    problems.push(`${name}: no @opentelemetry/api peer dependency`);
  }
  if (GRPC_PEERS.includes(name) && !m.peerDependencies?.['@grpc/grpc-js']) {
    problems.push(`${name}: no @grpc/grpc-js peer dependency (the application's grpc-js must be the mesh's)`);
  }
  if (GRPC_PEERS.includes(name) && m.dependencies?.['@grpc/grpc-js']) {
    problems.push(`${name}: @grpc/grpc-js must be a peer, not a dependency (one grpc-js per application)`);
  }
  if (m.dependencies?.['@opentelemetry/api']) {
    problems.push(`${name}: @opentelemetry/api must be a peer, not a dependency (one API per process)`);
  }
}

if (problems.length > 0) {
  for (const p of problems) console.error(`pack-smoke: FAIL ${p}`);
  process.exit(1);
}

/** The `meshlet` binary: declared, executable, a node shebang, and its imports shipped. */
function checkBin(manifest, entries, pkgDir, bad) {
  const bin = typeof manifest.bin === 'string' ? { [manifest.name]: manifest.bin } : (manifest.bin ?? {});
  if (bin.meshlet === undefined || posix.normalize(bin.meshlet) !== 'bin/meshlet.js') {
    bad(`package.json "bin" is ${JSON.stringify(manifest.bin)}, expected { "meshlet": "./bin/meshlet.js" }`);
  }
  const entry = entries.get('bin/meshlet.js');
  if (!entry) return;
  if ((entry.mode & 0o111) === 0) {
    bad(`bin/meshlet.js is not executable in the tarball (mode ${entry.mode.toString(8)}); chmod +x it`);
  }
  const text = readFileSync(join(pkgDir, 'bin/meshlet.js'), 'utf8');
  const firstLine = text.split('\n', 1)[0];
  if (firstLine !== '#!/usr/bin/env node') {
    bad(`bin/meshlet.js starts with ${JSON.stringify(firstLine)}, expected the shebang "#!/usr/bin/env node"`);
  }
  if (manifest.name === 'meshlet') {
    // The umbrella's bin runs @meshlet/control's CLI: that must be what it imports, and a dependency.
    if (!/\bfrom\s*['"]@meshlet\/control['"]/.test(text))
      bad("bin/meshlet.js does not import the CLI from '@meshlet/control'");
    if (!manifest.dependencies?.['@meshlet/control']) bad('bin/meshlet.js needs @meshlet/control as a dependency');
    return;
  }
  const imports = [...text.matchAll(/\bimport\s*(?:[^'"]*\sfrom\s*)?['"](\.{1,2}\/[^'"]+)['"]/g)].map((m) => m[1]);
  if (imports.length === 0) bad('bin/meshlet.js imports nothing relative (expected ../dist/cli.js)');
  for (const spec of imports) {
    const target = posix.normalize(posix.join('bin', spec));
    if (!entries.has(target)) bad(`bin/meshlet.js imports ${spec} (${target}), which is not in the tarball`);
  }
}

/**
 * Reads a .tgz's entries (ustar headers, with pax and GNU long names): regular files only,
 * path (without the leading `package/`) → { mode }. `tar -t` does not show modes portably.
 */
function readTar(file) {
  const buf = gunzipSync(readFileSync(file));
  const out = new Map();
  let longName;
  for (let off = 0; off + 512 <= buf.length;) {
    const header = buf.subarray(off, off + 512);
    if (header.every((b) => b === 0)) break;
    const field = (start, len) =>
      header
        .subarray(start, start + len)
        .toString('utf8')
        .replace(/\0.*$/s, '');
    const size = parseInt(field(124, 12).trim() || '0', 8);
    const type = String.fromCharCode(header[156] || 48);
    const body = buf.subarray(off + 512, off + 512 + size);
    off += 512 + Math.ceil(size / 512) * 512;
    if (type === 'x') {
      const m = /(?:^|\n)\d+ path=([^\n]*)\n/.exec(body.toString('utf8'));
      if (m) longName = m[1];
      continue;
    }
    if (type === 'L') {
      longName = body.toString('utf8').replace(/\0.*$/s, '');
      continue;
    }
    const prefix = field(345, 155);
    const path = longName ?? (prefix ? `${prefix}/${field(0, 100)}` : field(0, 100));
    longName = undefined;
    if (type !== '0') continue;
    out.set(path.replace(/^package\//, ''), { mode: parseInt(field(100, 8).trim() || '0', 8) });
  }
  return out;
}

/** Workspace package name → its directory, relative to the repository root. */
function workspaces(repo) {
  const out = new Map();
  for (const ws of JSON.parse(readFileSync(join(repo, 'package.json'), 'utf8')).workspaces ?? []) {
    try {
      out.set(JSON.parse(readFileSync(join(repo, ws, 'package.json'), 'utf8')).name, ws);
    } catch {
      // a workspace glob or a directory without a manifest: not a package of ours
    }
  }
  return out;
}

function* exportTargets(exp) {
  if (typeof exp === 'string') yield exp;
  else if (exp && typeof exp === 'object') for (const v of Object.values(exp)) yield* exportTargets(v);
}
