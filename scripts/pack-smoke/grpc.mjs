// gRPC smoke test (ESM), run inside a fresh app that installed the packed tarballs: a real
// grpc-js server on 127.0.0.1 behind meshServerInterceptors, and one unary call to it through
// the mesh (`new Client('meshlet:///greeter', creds, meshGrpcOptions(mesh))`), with the app's
// own @grpc/grpc-js (the peer @meshlet/grpc resolves to). Checks the answer, the caller name
// the server saw, a mesh error as a grpc-js status (UNAVAILABLE + meshletCode), both meshes'
// stats, and a clean exit (the caller's timeout fails a process something keeps alive).
import assert from 'node:assert/strict';
import { createRequire } from 'node:module';
import * as grpc from '@grpc/grpc-js';
import { createMesh, MeshError } from '@meshlet/core';
import { meshGrpcOptions, meshServerInterceptors } from '@meshlet/grpc';
import greeterModule from './greeter.cjs';

// One copy of grpc-js: the one the app imports is the one @meshlet/grpc was linked to.
const require = createRequire(import.meta.url);
const meshletGrpcRequire = createRequire(require.resolve('@meshlet/grpc'));
assert.equal(
  meshletGrpcRequire.resolve('@grpc/grpc-js'),
  require.resolve('@grpc/grpc-js'),
  '@meshlet/grpc uses the application’s @grpc/grpc-js',
);

const definition = greeterModule.greeter;

const serverMesh = createMesh({ service: 'greeter', services: {} });
const server = new grpc.Server({ interceptors: meshServerInterceptors(serverMesh) });
server.addService(definition, {
  sayHello(call, callback) {
    callback(null, { hello: call.request.name, caller: call.metadata.get('meshlet-caller')[0] ?? null });
  },
});
const port = await new Promise((resolve, reject) =>
  server.bindAsync('127.0.0.1:0', grpc.ServerCredentials.createInsecure(), (err, p) =>
    err ? reject(err) : resolve(p),
  ),
);

const mesh = createMesh({
  service: 'smoke',
  services: { greeter: { protocol: 'grpc', endpoints: [`127.0.0.1:${port}`] } },
});
const Greeter = grpc.makeGenericClientConstructor(definition, 'Greeter');
const client = new Greeter('meshlet:///greeter', grpc.credentials.createInsecure(), meshGrpcOptions(mesh));
const sayHello = (c, name) =>
  new Promise((resolve, reject) => c.sayHello({ name }, (err, res) => (err ? reject(err) : resolve(res))));

assert.deepEqual(await sayHello(client, 'esm'), { hello: 'esm', caller: 'smoke' });

const unknown = new Greeter('meshlet:///nope', grpc.credentials.createInsecure(), meshGrpcOptions(mesh));
const err = await sayHello(unknown, 'x').then(
  () => assert.fail('a call to a service the mesh does not know must fail'),
  (e) => e,
);
assert.equal(err.code, grpc.status.UNAVAILABLE, `expected UNAVAILABLE, got ${err.code}: ${err.details}`);
assert.equal(err.meshletCode, 'MESHLET_ERR_UNKNOWN_SERVICE');
assert.match(err.details, /^MESHLET_ERR_UNKNOWN_SERVICE: /);
assert.ok(err.cause instanceof MeshError, 'the status carries the MeshError of the one @meshlet/core');

const stats = mesh.stats().services.greeter;
assert.equal(stats.requests, 1);
assert.equal(stats.successes, 1);
assert.equal(stats.endpoints[0].address, `127.0.0.1:${port}`);
const inbound = serverMesh.stats().inbound.find((r) => r.route === '/smoke.Greeter/SayHello');
assert.ok(inbound, `an inbound row for the method: ${JSON.stringify(serverMesh.stats().inbound)}`);
assert.equal(inbound.caller, 'smoke');
assert.equal(inbound.successes, 1);

client.close();
unknown.close();
await mesh.close();
await serverMesh.close();
await new Promise((resolve) => server.tryShutdown(resolve));
console.log(
  `pack-smoke: gRPC ESM ok on Node ${process.version} (@grpc/grpc-js ${require('@grpc/grpc-js/package.json').version}): ` +
    'a unary call through the mesh, meshServerInterceptors, UNAVAILABLE + meshletCode',
);
