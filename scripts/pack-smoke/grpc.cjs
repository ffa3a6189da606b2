// gRPC smoke test (CommonJS): @meshlet/grpc is ESM only; a CommonJS app on Node >= 20.19
// loads it with require(esm). One unary call through the mesh to a local grpc-js server (with
// meshServerInterceptors), a mesh error as a grpc-js status, and a clean exit; as grpc.mjs.
'use strict';
const assert = require('node:assert/strict');
const grpc = require('@grpc/grpc-js');

assert.equal(process.features.require_module, true, `require(esm) is not enabled on Node ${process.version}`);
const { createMesh, MeshError } = require('@meshlet/core');
const { meshGrpcOptions, meshServerInterceptors } = require('@meshlet/grpc');
assert.equal(typeof meshGrpcOptions, 'function');
assert.equal(typeof meshServerInterceptors, 'function');

const { greeter: definition } = require('./greeter.cjs');

function sayHello(client, name) {
  return new Promise((resolve, reject) => client.sayHello({ name }, (err, res) => (err ? reject(err) : resolve(res))));
}

async function main() {
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
    service: 'smoke-cjs',
    services: { greeter: { protocol: 'grpc', endpoints: [`127.0.0.1:${port}`] } },
  });
  const Greeter = grpc.makeGenericClientConstructor(definition, 'Greeter');
  const client = new Greeter('meshlet:///greeter', grpc.credentials.createInsecure(), meshGrpcOptions(mesh));
  assert.deepEqual(await sayHello(client, 'cjs'), { hello: 'cjs', caller: 'smoke-cjs' });

  // The endpoint list is empty now: the error names the service and keeps a gRPC status.
  mesh.update({ services: { greeter: { protocol: 'grpc', endpoints: [] } } });
  const err = await sayHello(client, 'x').then(
    () => assert.fail('a service without endpoints must fail'),
    (e) => e,
  );
  assert.equal(err.code, grpc.status.UNAVAILABLE, `expected UNAVAILABLE, got ${err.code}: ${err.details}`);
  assert.equal(err.meshletCode, 'MESHLET_ERR_NO_ENDPOINTS');
  assert.match(err.details, /^MESHLET_ERR_NO_ENDPOINTS: .*"greeter"/);
  assert.ok(err.cause instanceof MeshError, 'the status carries the MeshError of the one @meshlet/core');
  assert.equal(mesh.stats().services.greeter.successes, 1);

  client.close();
  await mesh.close();
  await serverMesh.close();
  await new Promise((resolve) => server.tryShutdown(resolve));
  console.log(
    `pack-smoke: gRPC CJS ok on Node ${process.version}: require(esm) of @meshlet/grpc, a unary call through the mesh, UNAVAILABLE + meshletCode`,
  );
}

main().catch((err) => {
  console.error(err);
  process.exitCode = 1;
});
