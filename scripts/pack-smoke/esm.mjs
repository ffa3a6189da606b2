// ESM smoke test, run inside a fresh app that installed the packed tarballs: a real call
// through the mesh to a local server, the error contract across the two packages, and a
// clean exit (an open socket or timer left behind would keep the process alive, and the
// caller's timeout would fail the step).
import assert from 'node:assert/strict';
import { once } from 'node:events';
import http from 'node:http';
import { createMesh, MeshError, MeshConfigError } from '@meshlet/core';
import { createMeshFetch } from '@meshlet/http';

const server = http.createServer((req, res) => {
  res.setHeader('content-type', 'text/plain');
  res.end(`hello ${req.method} ${req.url} host=${req.headers.host}`);
});
server.listen(0, '127.0.0.1');
await once(server, 'listening');
const { port } = server.address();

const mesh = createMesh({
  services: {
    hello: { endpoints: [`127.0.0.1:${port}`], retry: { maxAttempts: 2 } },
    empty: { endpoints: [] },
  },
});
const fetch = createMeshFetch(mesh);

const res = await fetch('http://hello/greet?x=1');
assert.equal(res.status, 200);
assert.equal(await res.text(), 'hello GET /greet?x=1 host=hello');

// @meshlet/http must share the one @meshlet/core instance: a second copy would break instanceof.
const err = await fetch('http://empty/').then(
  () => assert.fail('a service without endpoints must reject'),
  (e) => e,
);
assert.ok(err instanceof MeshError, `expected a MeshError, got ${err}`);
assert.equal(err.code, 'MESHLET_ERR_NO_ENDPOINTS');

assert.throws(
  () => mesh.update({ services: { hello: { endpoints: ['127.0.0.1:0'] } } }),
  (e) => e instanceof MeshConfigError && e.code === 'MESHLET_ERR_CONFIG' && e.path.startsWith('services.hello'),
);
const stats = mesh.stats().services.hello;
assert.equal(stats.requests, 1);
assert.equal(stats.successes, 1);
assert.equal(stats.endpoints[0].address, `127.0.0.1:${port}`);

await mesh.close();
server.close();
await once(server, 'close');
console.log(`pack-smoke: ESM ok on Node ${process.version}: fetch through the mesh, shared MeshError, config errors`);
