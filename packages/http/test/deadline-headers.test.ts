// The headers one mesh process sends another (meshlet-timeout, meshlet-caller), and outbound calls
// bound by the inbound request they are made for. Real undici, a real server on 127.0.0.1.
import { describe, it, before, after } from 'node:test';
import assert from 'node:assert/strict';
import http from 'node:http';
import type { AddressInfo } from 'node:net';
import { createMesh, runWithInbound, type Mesh } from '@meshlet/core';
import { createMeshFetch } from '../src/index.js';

interface Seen {
  timeout: string | undefined;
  caller: string | undefined;
}

describe('meshlet-timeout and meshlet-caller on the wire', () => {
  let server: http.Server;
  let port = 0;
  const seen: Seen[] = [];
  let connections = 0;
  let fail503 = 0;
  const meshes: Mesh[] = [];

  before(async () => {
    server = http.createServer((req, res) => {
      seen.push({
        timeout: req.headers['meshlet-timeout'] as string | undefined,
        caller: req.headers['meshlet-caller'] as string | undefined,
      });
      if (fail503 > 0) {
        fail503--;
        res.writeHead(503).end();
        return;
      }
      res.end('ok');
    });
    server.on('connection', () => connections++);
    await new Promise<void>((r) => server.listen(0, '127.0.0.1', r));
    port = (server.address() as AddressInfo).port;
  });
  after(async () => {
    await Promise.all(meshes.map((m) => m.close()));
    server.closeAllConnections();
    await new Promise((r) => server.close(r));
  });

  function mesh(service: string | undefined, requestMs = 15_000): Mesh {
    const m = createMesh({
      ...(service !== undefined ? { service } : {}),
      services: { users: { endpoints: [`127.0.0.1:${port}`], timeout: { requestMs } } },
    });
    meshes.push(m);
    return m;
  }

  it('sends the remaining budget and this process’s service name, and drops the caller’s own copies', async () => {
    const fetch = createMeshFetch(mesh('web'));
    seen.length = 0;
    const res = await fetch('http://users/', {
      headers: { 'meshlet-timeout': '1H', 'meshlet-caller': 'spoofed', 'x-other': '1' },
    });
    assert.equal(res.status, 200);
    await res.text();
    assert.equal(seen.length, 1);
    assert.equal(seen[0]!.caller, 'web');
    const ms = Number(seen[0]!.timeout!.slice(0, -1));
    assert.match(seen[0]!.timeout!, /^\d+m$/);
    assert.ok(ms <= 15_000 && ms > 14_000, seen[0]!.timeout);
  });

  it('sends no meshlet-caller when the mesh has no service name', async () => {
    const fetch = createMeshFetch(mesh(undefined));
    seen.length = 0;
    await (await fetch('http://users/')).text();
    assert.equal(seen[0]!.caller, undefined);
    assert.match(seen[0]!.timeout!, /^\d+m$/);
  });

  it('sends the inbound request’s remaining budget when it is the shorter, and a smaller one on each retry', async () => {
    const fetch = createMeshFetch(mesh('web'));
    seen.length = 0;
    fail503 = 1;
    const res = await runWithInbound({ deadlineAt: performance.now() + 2000, signal: undefined, caller: 'x' }, () =>
      fetch('http://users/'),
    );
    assert.equal(res.status, 200);
    await res.text();
    assert.equal(seen.length, 2, 'a retry after the 503');
    const [first, second] = seen.map((s) => Number(s.timeout!.slice(0, -1)));
    assert.ok(first! <= 2000 && first! > 1000, String(first));
    assert.ok(second! <= first!, `${second} <= ${first}`);
  });

  it('fails at once with MESHLET_ERR_DEADLINE and opens no connection when the inbound deadline has passed', async () => {
    const fetch = createMeshFetch(mesh('web'));
    seen.length = 0;
    const before = connections;
    const err = await runWithInbound({ deadlineAt: performance.now() - 1, signal: undefined, caller: undefined }, () =>
      fetch('http://users/'),
    ).catch((e: unknown) => e);
    // fetch wraps dispatcher errors in a TypeError whose cause is the mesh's error.
    const cause = (err as { cause?: { code?: string } }).cause ?? err;
    assert.equal((cause as { code?: string }).code, 'MESHLET_ERR_DEADLINE', String(err));
    assert.equal(seen.length, 0);
    assert.equal(connections, before);
  });
});
