// Scenario (issue 9): gRPC applications with no meshlet code, started with `node --import
// meshlet/register` and configured by environment only, are meshed: three real grpc-js servers on
// 127.0.0.1 (a CommonJS app and an ESM app with a plain `new grpc.Server()`, and an ESM app that
// also passes meshServerInterceptors itself) are the endpoints of `greeter` (`protocol: grpc`);
// client apps (CommonJS `new grpc.Client('meshlet:///greeter', …)` with a worker thread doing the
// same, ESM generated client from proto-loader's loadPackageDefinition, and one that also passes
// meshGrpcOptions) call it. Checked: calls succeed and are balanced over the endpoints (the
// client's /stats rows per endpoint), with the client's MESHLET_SERVICE as caller; an unknown
// `meshlet:///nope` fails with UNAVAILABLE / MESHLET_ERR_UNKNOWN_SERVICE; a `127.0.0.1:port` target
// is untouched; each server's /stats has one inbound row per method and caller, counted once per
// call (also on the server and client that pass meshlet's options themselves); a worker thread
// meshes its own grpc-js; MESHLET_GRPC=off leaves `meshlet:///greeter` to grpc-js (which cannot
// resolve it) and servers without interceptors; an invalid MESHLET_GRPC stops the start; an
// application that resolves another copy of grpc-js is warned once. Needs `npm run build`
// (meshlet/register loads from dist).
import { after, before, describe, it } from 'node:test';
import assert from 'node:assert/strict';
import { existsSync } from 'node:fs';
import { mkdir, writeFile } from 'node:fs/promises';
import { createRequire } from 'node:module';
import { dirname, join } from 'node:path';
import { pathToFileURL } from 'node:url';
import type { InboundStats, MeshStats } from '@meshlet/core';
import { freePort, waitFor } from './fixtures/control.ts';
import {
  REGISTER,
  roundRobinGrpcService,
  runApp,
  startApp,
  stopApps,
  TempDir,
  type Child,
} from '../packages/meshlet/test/helpers.ts';

const require = createRequire(import.meta.url);
/** grpc-js and proto-loader as the repository resolves them (the copy @meshlet/grpc meshes), for apps in a temp dir. */
const GRPC_PATH = require.resolve('@grpc/grpc-js');
const PROTO_LOADER_PATH = require.resolve('@grpc/proto-loader');
const GRPC_DIR = dirname(require.resolve('@grpc/grpc-js/package.json'));
const MESHLET_URL = pathToFileURL(join(dirname(REGISTER), 'index.js')).href;
const ROUTE = '/demo.Greeter/SayHello';
const CALLS = 30;

const PROTO = `syntax = "proto3";
package demo;
service Greeter { rpc SayHello (HelloRequest) returns (HelloReply); }
message HelloRequest { string name = 1; }
message HelloReply { string from = 1; string hello = 2; string caller = 3; }
`;

/** The greeter service from greeter.proto, loaded as any proto-loader app loads it (CommonJS). */
const LOAD_CJS = `const grpc = require(${JSON.stringify(GRPC_PATH)});
const protoLoader = require(${JSON.stringify(PROTO_LOADER_PATH)});
const demo = grpc.loadPackageDefinition(protoLoader.loadSync(require('node:path').join(__dirname, 'greeter.proto'))).demo;
`;
/** The same from ESM. */
const LOAD_ESM = `import * as grpc from ${JSON.stringify(pathToFileURL(GRPC_PATH).href)};
import protoLoader from ${JSON.stringify(pathToFileURL(PROTO_LOADER_PATH).href)};
const demo = grpc.loadPackageDefinition(protoLoader.loadSync(new URL('./greeter.proto', import.meta.url).pathname)).demo;
`;

/** A plain grpc-js server: answers with its NAME and the meshlet-caller metadata it got. */
const SERVE = (options: string): string => `const server = new grpc.Server(${options});
server.addService(demo.Greeter.service, {
  sayHello(call, callback) {
    callback(null, { from: process.env.NAME, hello: call.request.name, caller: call.metadata.get('meshlet-caller')[0] ?? '' });
  },
});
server.bindAsync('127.0.0.1:0', grpc.ServerCredentials.createInsecure(), (err, port) => {
  if (err) throw err;
  console.log(JSON.stringify({ event: 'listening', port }));
});
`;

/**
 * The body of a client app: CALLS calls through \`client\`, then one to meshlet:///nope and one to
 * DIRECT (a plain address), then its own /stats; prints all as JSON (\`out\`). Needs \`call(client,
 * name)\` and \`makeClient(target)\`.
 */
const CLIENT_BODY = `
const creds = grpc.credentials.createInsecure();
async function calls(client, n) {
  const counts = {};
  const callers = new Set();
  for (let i = 0; i < n; i++) {
    const res = await call(client, 'n' + i);
    if (res.hello !== 'n' + i) throw new Error('wrong answer ' + JSON.stringify(res));
    counts[res.from] = (counts[res.from] ?? 0) + 1;
    callers.add(res.caller);
  }
  return { counts, callers: [...callers] };
}
async function main() {
  const client = makeClient('meshlet:///greeter');
  const out = await calls(client, Number(process.env.CALLS));
  out.channel = client.getChannel().constructor.name;
  client.close();
  const nope = makeClient('meshlet:///nope');
  out.unknown = await call(nope, 'x').then(
    () => 'answered',
    (err) => ({ code: err.code, details: err.details, meshletCode: err.meshletCode }),
  );
  nope.close();
  const direct = makeClient(process.env.DIRECT);
  out.direct = await call(direct, 'direct');
  out.directChannel = direct.getChannel().constructor.name;
  direct.close();
  if (typeof extra === 'function') await extra(out);
  out.stats = await (await fetch('http://127.0.0.1:' + process.env.MESHLET_ADMIN_PORT + '/stats')).json();
  console.log(JSON.stringify(out));
}
function run() {
  main().catch((err) => {
    console.log(JSON.stringify({ failed: { code: err.code, details: err.details, meshletCode: err.meshletCode ?? null } }));
    process.exitCode = 2;
  });
}
`;

/** CommonJS client: \`new grpc.Client(target, creds)\` and makeUnaryRequest; a worker thread does the same. */
const CLIENT_CJS = `${LOAD_CJS}
const { Worker, isMainThread, parentPort } = require('node:worker_threads');
const method = demo.Greeter.service.SayHello;
const makeClient = (target) => new grpc.Client(target, creds);
const call = (client, name) =>
  new Promise((resolve, reject) =>
    client.makeUnaryRequest(method.path, method.requestSerialize, method.responseDeserialize, { name }, (err, res) =>
      err ? reject(err) : resolve(res),
    ),
  );
${CLIENT_BODY}
async function extra(out) {
  if (!process.env.WORKER_CALLS) return;
  // A worker thread: its own modules, so its own grpc-js, meshed by its own run of meshlet/register.
  const worker = new Worker(__filename);
  out.worker = await new Promise((resolve, reject) => {
    worker.once('message', resolve);
    worker.once('error', reject);
  });
  await worker.terminate();
}
if (isMainThread) run();
else {
  const client = makeClient('meshlet:///greeter');
  calls(client, Number(process.env.WORKER_CALLS)).then((res) => {
    res.channel = client.getChannel().constructor.name;
    client.close();
    parentPort.postMessage(res);
  });
}
`;

/** ESM client: the generated client class of loadPackageDefinition. */
const CLIENT_ESM = `${LOAD_ESM}
const makeClient = (target) => new demo.Greeter(target, creds);
const call = (client, name) =>
  new Promise((resolve, reject) => client.sayHello({ name }, (err, res) => (err ? reject(err) : resolve(res))));
const extra = undefined;
${CLIENT_BODY}
run();
`;

/** ESM client that also builds a client with meshGrpcOptions(mesh) of meshlet/register: one mesh call per call. */
const CLIENT_ALSO = `${LOAD_ESM}
import { meshGrpcOptions } from ${JSON.stringify(MESHLET_URL)};
import { mesh } from ${JSON.stringify(pathToFileURL(REGISTER).href)};
const makeClient = (target) => new demo.Greeter(target, creds);
const call = (client, name) =>
  new Promise((resolve, reject) => client.sayHello({ name }, (err, res) => (err ? reject(err) : resolve(res))));
async function extra(out) {
  const own = new demo.Greeter('meshlet:///greeter', creds, meshGrpcOptions(mesh));
  out.own = await calls(own, Number(process.env.CALLS));
  out.own.channel = own.getChannel().constructor.name;
  own.close();
}
${CLIENT_BODY}
run();
`;

/** A server that also passes meshlet's interceptors itself (and one of its own after them). */
const SERVER_EXPLICIT = `${LOAD_ESM}
import { meshServerInterceptors } from ${JSON.stringify(MESHLET_URL)};
import { mesh } from ${JSON.stringify(pathToFileURL(REGISTER).href)};
const own = (method, call) => new grpc.ServerInterceptingCall(call);
${SERVE('{ interceptors: [...meshServerInterceptors(mesh), own] }')}`;

/**
 * A server that calls itself once with a plain client (meshlet-caller "self") and prints its own
 * /stats inbound rows, then stops: what a server under MESHLET_GRPC records.
 */
const SELF_SERVE = `${LOAD_CJS}
const server = new grpc.Server();
server.addService(demo.Greeter.service, { sayHello: (call, callback) => callback(null, { from: 'self' }) });
server.bindAsync('127.0.0.1:0', grpc.ServerCredentials.createInsecure(), (err, port) => {
  if (err) throw err;
  const client = new demo.Greeter('127.0.0.1:' + port, grpc.credentials.createInsecure());
  const md = new grpc.Metadata();
  md.set('meshlet-caller', 'self');
  client.sayHello({ name: 'me' }, md, async (err) => {
    if (err) throw err;
    client.close();
    // The admin endpoint listens soon after start; wait for it if this was quicker.
    let stats;
    for (let i = 0; !stats; i++) {
      stats = await fetch('http://127.0.0.1:' + process.env.MESHLET_ADMIN_PORT + '/stats').then((r) => r.json(), (e) => {
        if (i > 200) throw e;
        return new Promise((resolve) => setTimeout(resolve, 25));
      });
    }
    console.log(JSON.stringify({ inbound: stats.inbound.map(({ route, caller, requests }) => ({ route, caller, requests })) }));
    server.forceShutdown();
  });
});
`;

interface Backend {
  name: string;
  app: Child;
  address: string;
  adminPort: number;
}

interface CallsOut {
  counts: Record<string, number>;
  callers: string[];
  channel: string;
}

interface ClientOut extends CallsOut {
  unknown: { code: number; details: string; meshletCode?: string } | 'answered';
  direct: { from: string; hello: string; caller: string };
  directChannel: string;
  stats: MeshStats;
  worker?: CallsOut;
  own?: CallsOut;
}

describe('zero-code gRPC: node --import meshlet/register with unmodified grpc-js apps', () => {
  let dir: TempDir;
  const backends: Backend[] = [];

  before(async () => {
    if (!existsSync(REGISTER)) throw new Error(`${REGISTER} is missing: run "npm run build" first (npm test does)`);
    dir = await TempDir.create();
    await dir.write('greeter.proto', PROTO);
    await dir.write('server.cjs', `${LOAD_CJS}${SERVE('')}`);
    await dir.write('server.mjs', `${LOAD_ESM}${SERVE('')}`);
    await dir.write('server-explicit.mjs', SERVER_EXPLICIT);
    await dir.write('client.cjs', CLIENT_CJS);
    await dir.write('client.mjs', CLIENT_ESM);
    await dir.write('client-also.mjs', CLIENT_ALSO);
    await dir.write('self-serve.cjs', SELF_SERVE);
    await dir.write('empty.yaml', 'services: {}\n');

    for (const [name, script] of [
      ['g1', 'server.cjs'],
      ['g2', 'server.mjs'],
      ['g3', 'server-explicit.mjs'],
    ] as const) {
      const adminPort = await freePort();
      const app = startApp(dir.path, script, {
        NAME: name,
        MESHLET_SERVICE: 'greeter',
        MESHLET_CONFIG: 'empty.yaml',
        MESHLET_ADMIN_PORT: String(adminPort),
      });
      const line = await app.line(/"event":"listening"/);
      const { port } = JSON.parse(line) as { port: number };
      backends.push({ name, app, address: `127.0.0.1:${port}`, adminPort });
    }
    await dir.write(
      'mesh.yaml',
      roundRobinGrpcService(
        'greeter',
        backends.map((b) => b.address),
      ),
    );
  });

  after(async () => {
    await stopApps(backends.map((b) => b.app));
    await dir?.remove();
  });

  /** Runs a client app under meshlet/register as service `caller`; its parsed output. */
  async function runClient(script: string, caller: string, env: Record<string, string> = {}): Promise<ClientOut> {
    const adminPort = await freePort();
    const { code, stdout, stderr } = await runApp(dir.path, script, {
      MESHLET_SERVICE: caller,
      MESHLET_CONFIG: 'mesh.yaml',
      MESHLET_ADMIN_PORT: String(adminPort),
      CALLS: String(CALLS),
      DIRECT: backends[0]!.address,
      ...env,
    });
    assert.equal(code, 0, `${script} ran and exited by itself; stderr: ${stderr}`);
    assert.equal(stderr, '', `${script} wrote nothing to stderr`);
    return JSON.parse(stdout) as ClientOut;
  }

  /** The inbound rows a backend's /stats has for `caller`. */
  async function inbound(b: Backend, caller: string): Promise<Array<Pick<InboundStats, 'route' | 'requests'>>> {
    const stats = await waitFor(`${b.name}'s /stats`, async () => {
      const res = await fetch(`http://127.0.0.1:${b.adminPort}/stats`);
      return res.ok ? ((await res.json()) as MeshStats) : undefined;
    });
    return stats.inbound.filter((r) => r.caller === caller).map(({ route, requests }) => ({ route, requests }));
  }

  /**
   * The client's calls were balanced over the three backends, `perBackend` mesh calls each in its
   * /stats, and each backend recorded `inboundPerBackend` calls from `caller`, once each.
   */
  async function assertMeshed(
    out: ClientOut,
    caller: string,
    perBackend: number,
    inboundPerBackend = perBackend,
  ): Promise<void> {
    assert.deepEqual(out.counts, { g1: CALLS / 3, g2: CALLS / 3, g3: CALLS / 3 }, 'round robin over the three');
    assert.deepEqual(out.callers, [caller], 'meshlet-caller is the client app MESHLET_SERVICE');
    assert.equal(out.channel, 'MeshChannel');

    const greeter = out.stats.services.greeter;
    assert.ok(greeter, `the client's /stats has the gRPC service: ${JSON.stringify(out.stats.services)}`);
    assert.equal(greeter.requests, perBackend * 3, 'one mesh call per call');
    assert.equal(greeter.successes, perBackend * 3);
    assert.deepEqual(
      greeter.endpoints.map((e) => [e.address, e.requests]).sort(),
      backends.map((b) => [b.address, perBackend]).sort(),
      'the client mesh rows per endpoint',
    );

    // Server side: the inbound interceptor of every server, plain or explicit, recorded each call once.
    for (const b of backends) {
      assert.deepEqual(
        await inbound(b, caller),
        [{ route: ROUTE, requests: inboundPerBackend }],
        `${b.name}'s inbound rows`,
      );
    }

    assert.notEqual(out.unknown, 'answered', 'meshlet:///nope fails');
    if (out.unknown !== 'answered') {
      assert.equal(out.unknown.code, 14, 'UNAVAILABLE');
      assert.equal(out.unknown.meshletCode, 'MESHLET_ERR_UNKNOWN_SERVICE');
      assert.match(out.unknown.details, /^MESHLET_ERR_UNKNOWN_SERVICE: .*"nope"/);
    }

    // A plain address: grpc-js's own channel, no meshlet-caller, not a mesh call.
    assert.deepEqual(out.direct, { from: 'g1', hello: 'direct', caller: '' });
    assert.equal(out.directChannel, 'ChannelImplementation');
    assert.equal(out.stats.services.nope, undefined);
  }

  it('a CommonJS app with new grpc.Client(meshlet:///greeter) is meshed, in its main thread and in a worker', async () => {
    const out = await runClient('client.cjs', 'web-cjs', { WORKER_CALLS: '6' });
    // The worker's calls went through its own mesh (the main thread's stats count only its own).
    assert.deepEqual(out.worker, {
      counts: { g1: 2, g2: 2, g3: 2 },
      callers: ['web-cjs'],
      channel: 'MeshChannel',
    });
    // The servers saw the worker's calls too.
    await assertMeshed(out, 'web-cjs', CALLS / 3, CALLS / 3 + 2);
  });

  it('an ESM app with a generated client (loadPackageDefinition) is meshed', async () => {
    const out = await runClient('client.mjs', 'web-esm');
    await assertMeshed(out, 'web-esm', CALLS / 3);
  });

  it('an app that also passes meshGrpcOptions(mesh) makes one mesh call per call', async () => {
    const out = await runClient('client-also.mjs', 'web-also');
    assert.deepEqual(out.own, {
      counts: { g1: CALLS / 3, g2: CALLS / 3, g3: CALLS / 3 },
      callers: ['web-also'],
      channel: 'MeshChannel',
    });
    // The plain client's CALLS and the meshGrpcOptions client's CALLS: 2 × CALLS / 3 per backend.
    await assertMeshed(out, 'web-also', (2 * CALLS) / 3);
  });

  it('MESHLET_GRPC=off leaves grpc-js alone: meshlet:///greeter is left to grpc-js, servers get no interceptors', async () => {
    const adminPort = await freePort();
    const client = await runApp(dir.path, 'client.mjs', {
      MESHLET_SERVICE: 'web-off',
      MESHLET_CONFIG: 'mesh.yaml',
      MESHLET_ADMIN_PORT: String(adminPort),
      MESHLET_GRPC: 'off',
      CALLS: '1',
      DIRECT: backends[0]!.address,
    });
    assert.equal(client.code, 2, `the first call fails: grpc-js has no resolver for meshlet:; ${client.stderr}`);
    const { failed } = JSON.parse(client.stdout) as { failed: { code: number; details: string; meshletCode: null } };
    assert.equal(failed.code, 14, 'UNAVAILABLE');
    assert.match(failed.details, /meshlet:\/\/\/greeter/, "grpc-js's own failure to resolve it");
    assert.equal(failed.meshletCode, null, 'not the mesh');

    for (const grpcMode of ['off', 'auto']) {
      const serverAdmin = await freePort();
      const self = await runApp(dir.path, 'self-serve.cjs', {
        MESHLET_CONFIG: 'empty.yaml',
        MESHLET_ADMIN_PORT: String(serverAdmin),
        MESHLET_GRPC: grpcMode,
      });
      assert.equal(self.code, 0, self.stderr);
      assert.deepEqual(
        JSON.parse(self.stdout),
        { inbound: grpcMode === 'off' ? [] : [{ route: ROUTE, caller: 'self', requests: 1 }] },
        `MESHLET_GRPC=${grpcMode}`,
      );
    }
  });

  it('an invalid MESHLET_GRPC stops the start, naming the variable and its values', async () => {
    const res = await runApp(dir.path, 'client.cjs', { MESHLET_CONFIG: 'mesh.yaml', MESHLET_GRPC: 'sometimes' });
    assert.equal(res.code, 1, res.stderr);
    assert.match(res.stderr, /cannot start: MESHLET_GRPC: expected "auto" .* or "off" .*, got "sometimes"/);
    assert.equal(res.stdout, '', 'the app did not run');
  });

  it('warns once, naming both paths, when the application resolves another copy of grpc-js', async () => {
    const app = join(dir.path, 'other-copy');
    const copy = join(app, 'node_modules/@grpc/grpc-js');
    await mkdir(copy, { recursive: true });
    await writeFile(
      join(copy, 'package.json'),
      '{ "name": "@grpc/grpc-js", "version": "1.12.0", "main": "index.js" }\n',
    );
    await writeFile(join(copy, 'index.js'), 'module.exports = {};\n');
    await writeFile(join(app, 'app.cjs'), "console.log('ran');\n");
    const res = await runApp(app, 'app.cjs', { MESHLET_CONFIG: '../empty.yaml' });
    assert.equal(res.code, 0, res.stderr);
    assert.equal(res.stdout, 'ran\n');
    const warnings = res.stderr.split('\n').filter((l) => l.includes('@grpc/grpc-js'));
    assert.equal(warnings.length, 1, res.stderr);
    assert.ok(warnings[0]!.includes(copy), `names the application's copy: ${warnings[0]}`);
    assert.ok(warnings[0]!.includes(GRPC_DIR), `names the meshed copy: ${warnings[0]}`);
  });
});
