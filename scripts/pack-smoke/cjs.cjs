// CommonJS smoke test: the packages are ESM only, and CommonJS users on Node >= 20.19
// load them with require(esm), which needs no top-level await anywhere in their graph.
// Same checks as esm.mjs: a real call through the mesh, shared errors, a clean exit.
'use strict';
const assert = require('node:assert/strict');
const { once } = require('node:events');
const http = require('node:http');

assert.equal(process.features.require_module, true, `require(esm) is not enabled on Node ${process.version}`);
const { createMesh, MeshError, MeshConfigError } = require('@meshlet/core');
const { createMeshFetch } = require('@meshlet/http');
assert.equal(typeof createMesh, 'function');
assert.equal(typeof createMeshFetch, 'function');

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
  console.log(`pack-smoke: CJS ok on Node ${process.version}: require(esm), fetch through the mesh, shared MeshError`);
}

main().catch((err) => {
  console.error(err);
  process.exitCode = 1;
});
