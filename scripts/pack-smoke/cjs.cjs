// CommonJS smoke test: the packages are ESM only, and CommonJS users on Node >= 20.19
// load them with require(esm), which needs no top-level await anywhere in their graph.
// Same checks as esm.mjs: a real call through the mesh, shared errors, a clean exit; and
// @meshlet/discovery (with its ./protocol subpath) and @meshlet/control load and expose
// controlPlane and createControlServer.
'use strict';
const assert = require('node:assert/strict');
const { once } = require('node:events');
const http = require('node:http');

assert.equal(process.features.require_module, true, `require(esm) is not enabled on Node ${process.version}`);
const { createMesh, MeshError, MeshConfigError } = require('@meshlet/core');
const { createMeshFetch } = require('@meshlet/http');
assert.equal(typeof createMesh, 'function');
assert.equal(typeof createMeshFetch, 'function');
// The control-plane packages load the same way (grpc-js, protobufjs, pino, yaml in their graph).
const { controlPlane, watchFile, readConfigFile } = require('@meshlet/discovery');
const { discoveryService, SERVICE_TYPE_URL } = require('@meshlet/discovery/protocol');
const { createControlServer, MemoryStore } = require('@meshlet/control');
for (const [name, value] of Object.entries({
  controlPlane,
  watchFile,
  readConfigFile,
  createControlServer,
  MemoryStore,
})) {
  assert.equal(typeof value, 'function', `${name} is ${typeof value}, expected a function`);
}
assert.equal(typeof discoveryService, 'object');
assert.match(SERVICE_TYPE_URL, /meshlet\.v1\.Service$/);
// discovery throws core's MeshConfigError: one copy of core across the packages.
assert.throws(
  () => controlPlane({ address: 'no-port' }),
  (e) => e instanceof MeshConfigError && e.path === 'controlPlane.address',
);

async function main() {
  const server = http.createServer((req, res) => {
    res.setHeader('content-type', 'text/plain');
    res.end(`hello ${req.method} ${req.url} host=${req.headers.host}`);
  });
  server.listen(0, '127.0.0.1');
  await once(server, 'listening');
  const { port } = server.address();

  const mesh = createMesh({
    services: {
      hello: { endpoints: [`127.0.0.1:${port}`] },
      empty: { endpoints: [] },
    },
  });
  const fetch = createMeshFetch(mesh);

  const res = await fetch('http://hello/from-cjs', { method: 'POST', body: 'ping' });
  assert.equal(res.status, 200);
  assert.equal(await res.text(), 'hello POST /from-cjs host=hello');

  const err = await fetch('http://empty/').then(
    () => assert.fail('a service without endpoints must reject'),
    (e) => e,
  );
  assert.ok(err instanceof MeshError, `expected a MeshError, got ${err}`);
  assert.equal(err.code, 'MESHLET_ERR_NO_ENDPOINTS');
  assert.throws(
    () => createMesh({ services: { hello: { retry: { maxAttempts: 0 } } } }),
    (e) => e instanceof MeshConfigError && e.path === 'services.hello.retry.maxAttempts',
  );
  assert.equal(mesh.stats().services.hello.successes, 1);

  await mesh.close();
  server.close();
  await once(server, 'close');
  console.log(
    `pack-smoke: CJS ok on Node ${process.version}: require(esm) of core, http, discovery, control; fetch through the mesh, shared MeshError`,
  );
}

main().catch((err) => {
  console.error(err);
  process.exitCode = 1;
});
