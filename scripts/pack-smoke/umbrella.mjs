// Smoke test of the umbrella package `meshlet`, run inside the fresh app that installed the
// tarballs, the way a user meets it after `npm install meshlet`:
//   - `import { createMesh, createMeshFetch, controlPlane, … } from 'meshlet'` and a real call;
//   - `require('meshlet')` (require(esm): no top-level await anywhere in its graph) gives the
//     same functions;
//   - `node --import meshlet/register app.mjs` (and a CommonJS app.cjs): an unmodified app's
//     global fetch reaches a local server through the mesh from MESHLET_CONFIG, and its admin
//     endpoint serves /metrics, /stats and /readyz; a bad MESHLET_ADMIN_PORT stops it at start;
//   - the same start for a gRPC client: `new Client('meshlet:///greeter', creds,
//     meshGrpcOptions(mesh))` with `mesh` from meshlet/register reaches a local grpc-js server, and
//     so does a CommonJS client that never imports meshlet (register patches grpc-js);
//   - `npx --no -- meshlet --version` and the package's own bin file.
// Nothing may stay open: the caller's timeout fails a process that does not exit.
import assert from 'node:assert/strict';
import { spawn } from 'node:child_process';
import { once } from 'node:events';
import { readFileSync, writeFileSync } from 'node:fs';
import http from 'node:http';
import { createRequire } from 'node:module';
import * as grpc from '@grpc/grpc-js';
import { delimiter, dirname } from 'node:path';
import * as meshlet from 'meshlet';
import greeterModule from './greeter.cjs';

const require = createRequire(import.meta.url);
const STEP_TIMEOUT_MS = 20_000;
const env = {
  ...process.env,
  PATH: `${dirname(process.execPath)}${delimiter}${process.env.PATH ?? ''}`,
  npm_config_update_notifier: 'false',
};
const version = JSON.parse(readFileSync(require.resolve('meshlet/package.json'), 'utf8')).version;

// The API, from ESM and from CommonJS.
const names = [
  'createMesh',
  'createMeshFetch',
  'createMeshDispatcher',
  'controlPlane',
  'watchFile',
  'readConfigFile',
  'createControlServer',
  'MemoryStore',
  'startAdminServer',
  'createAdminMeterProvider',
  'meshGrpcOptions',
  'meshServerInterceptors',
  'MeshError',
  'MeshConfigError',
];
const cjs = require('meshlet');
for (const name of names) {
  assert.equal(typeof meshlet[name], 'function', `import { ${name} } from 'meshlet'`);
  assert.equal(cjs[name], meshlet[name], `require('meshlet').${name} is the same function`);
}
assert.equal(meshlet.createMesh, (await import('@meshlet/core')).createMesh, 'one copy of @meshlet/core');

const server = http.createServer((req, res) => {
  res.setHeader('content-type', 'text/plain');
  res.end(`hello ${req.method} ${req.url} host=${req.headers.host}`);
});
server.listen(0, '127.0.0.1');
await once(server, 'listening');
const address = `127.0.0.1:${server.address().port}`;

const mesh = meshlet.createMesh({ services: { hello: { endpoints: [address] } } });
const res = await meshlet.createMeshFetch(mesh)('http://hello/from-import');
assert.equal(await res.text(), 'hello GET /from-import host=hello');
await mesh.close();

/** Runs a child to its end: { code, signal, stdout, stderr, shown }. */
async function run(cmd, args, extraEnv = {}) {
  const child = spawn(cmd, args, { env: { ...env, ...extraEnv }, stdio: ['ignore', 'pipe', 'pipe'] });
  let stdout = '';
  let stderr = '';
  child.stdout.setEncoding('utf8').on('data', (d) => (stdout += d));
  child.stderr.setEncoding('utf8').on('data', (d) => (stderr += d));
  const timer = setTimeout(() => child.kill('SIGKILL'), STEP_TIMEOUT_MS);
  const [code, signal] = await once(child, 'close');
  clearTimeout(timer);
  return {
    code,
    signal,
    stdout,
    stderr,
    shown: `${cmd} ${args.join(' ')} (exit ${code ?? signal})\nstdout: ${stdout}\nstderr: ${stderr}`,
  };
}

// Zero-code start: plain apps, configured only by the environment.
writeFileSync('umbrella-mesh.yaml', `services:\n  hello:\n    endpoints: ["${address}"]\n`);
writeFileSync(
  'umbrella-app.mjs',
  `import { admin } from 'meshlet/register';
const res = await fetch('http://hello/zero-code');
const body = await res.text();
const { port } = (await admin).address;
const metrics = await (await fetch('http://127.0.0.1:' + port + '/metrics')).text();
const stats = await (await fetch('http://127.0.0.1:' + port + '/stats')).json();
const ready = (await fetch('http://127.0.0.1:' + port + '/readyz')).status;
console.log(JSON.stringify({ body, histogram: metrics.includes('# TYPE http_client_request_duration histogram'), requests: stats.services.hello.requests, ready }));
`,
);
const esmApp = await run(process.execPath, ['--import', 'meshlet/register', 'umbrella-app.mjs'], {
  MESHLET_CONFIG: 'umbrella-mesh.yaml',
  MESHLET_SERVICE: 'smoke',
  MESHLET_ADMIN_PORT: '0',
});
assert.equal(esmApp.code, 0, esmApp.shown);
assert.deepEqual(JSON.parse(esmApp.stdout), {
  body: 'hello GET /zero-code host=hello',
  histogram: true,
  requests: 1,
  ready: 200,
});

writeFileSync(
  'umbrella-app.cjs',
  `fetch('http://hello/from-cjs').then((r) => r.text()).then((t) => console.log(t));\n`,
);
const cjsApp = await run(process.execPath, ['--import', 'meshlet/register', 'umbrella-app.cjs'], {
  MESHLET_CONFIG: 'umbrella-mesh.yaml',
});
assert.equal(cjsApp.code, 0, cjsApp.shown);
assert.equal(cjsApp.stdout.trim(), 'hello GET /from-cjs host=hello');

const refused = await run(process.execPath, ['--import', 'meshlet/register', 'umbrella-app.cjs'], {
  MESHLET_CONFIG: 'umbrella-mesh.yaml',
  MESHLET_ADMIN_PORT: 'nine',
});
assert.equal(refused.code, 1, refused.shown);
assert.match(refused.stderr, /MESHLET_ADMIN_PORT: expected a port number/, refused.shown);
assert.equal(refused.stdout, '', 'the app did not run');

// Zero-code gRPC: the app builds its client with the mesh meshlet/register made.
const greeter = greeterModule.greeter;
const grpcServer = new grpc.Server();
grpcServer.addService(greeter, {
  sayHello: (call, callback) =>
    callback(null, { hello: call.request.name, caller: call.metadata.get('meshlet-caller')[0] ?? null }),
});
const grpcPort = await new Promise((resolve, reject) =>
  grpcServer.bindAsync('127.0.0.1:0', grpc.ServerCredentials.createInsecure(), (e, p) => (e ? reject(e) : resolve(p))),
);
writeFileSync(
  'umbrella-grpc.yaml',
  `services:\n  greeter:\n    protocol: grpc\n    endpoints: ["127.0.0.1:${grpcPort}"]\n`,
);
writeFileSync(
  'umbrella-grpc.mjs',
  `import * as grpc from '@grpc/grpc-js';
import { meshGrpcOptions } from 'meshlet';
import { mesh } from 'meshlet/register';
import greeterModule from './greeter.cjs';
const Greeter = grpc.makeGenericClientConstructor(greeterModule.greeter, 'Greeter');
const client = new Greeter('meshlet:///greeter', grpc.credentials.createInsecure(), meshGrpcOptions(mesh));
client.sayHello({ name: 'zero-code' }, (err, res) => {
  client.close();
  if (err) throw err;
  console.log(JSON.stringify({ ...res, requests: mesh.stats().services.greeter.requests }));
});
`,
);
const grpcApp = await run(process.execPath, ['--import', 'meshlet/register', 'umbrella-grpc.mjs'], {
  MESHLET_CONFIG: 'umbrella-grpc.yaml',
  MESHLET_SERVICE: 'smoke',
});
assert.equal(grpcApp.code, 0, grpcApp.shown);
assert.deepEqual(JSON.parse(grpcApp.stdout), { hello: 'zero-code', caller: 'smoke', requests: 1 });

// No code change at all: a client app that never imports meshlet (meshlet/register patches grpc-js,
// MESHLET_GRPC=auto): its meshlet:/// call goes through the mesh, so the server sees the caller name.
writeFileSync(
  'umbrella-grpc-plain.cjs',
  `const grpc = require('@grpc/grpc-js');
const { greeter } = require('./greeter.cjs');
const Greeter = grpc.makeGenericClientConstructor(greeter, 'Greeter');
const client = new Greeter('meshlet:///greeter', grpc.credentials.createInsecure());
client.sayHello({ name: 'no-code' }, (err, res) => {
  client.close();
  if (err) throw err;
  console.log(JSON.stringify(res));
});
`,
);
const plainApp = await run(process.execPath, ['--import', 'meshlet/register', 'umbrella-grpc-plain.cjs'], {
  MESHLET_CONFIG: 'umbrella-grpc.yaml',
  MESHLET_SERVICE: 'smoke',
});
assert.equal(plainApp.code, 0, plainApp.shown);
assert.deepEqual(JSON.parse(plainApp.stdout), { hello: 'no-code', caller: 'smoke' });
await new Promise((resolve) => grpcServer.tryShutdown(resolve));

// The CLI, through npx and as the package's own bin.
const viaNpx = await run('npx', ['--no', '--', 'meshlet', '--version']);
assert.equal(viaNpx.code, 0, viaNpx.shown);
assert.equal(viaNpx.stdout.trim(), version);
const ownBin = await run(process.execPath, [
  require.resolve('meshlet/package.json').replace(/package\.json$/, 'bin/meshlet.js'),
  'help',
  'status',
]);
assert.equal(ownBin.code, 0, ownBin.shown);
assert.match(ownBin.stdout, /meshlet status --admin <host:port>/);

server.close();
console.log(
  `pack-smoke: umbrella ok on Node ${process.version}: import and require('meshlet'), ` +
    '--import meshlet/register (ESM and CommonJS apps, a gRPC client with and without meshlet code, /metrics /stats /readyz, a bad variable refused), npx meshlet',
);
