// `meshlet status --admin` against real admin endpoints of real meshes: a caller mesh ("web")
// calls a "users" Express app that records inbound requests with meshMiddleware; the CLI reads
// the caller's admin endpoint (outbound table) and the users process's (inbound per route and
// caller). Everything on 127.0.0.1, port 0.
import { after, before, describe, it } from 'node:test';
import assert from 'node:assert/strict';
import type { Server } from 'node:http';
import type { AddressInfo } from 'node:net';
import express from 'express';
import { main } from '@meshlet/control';
import { meshMiddleware } from '@meshlet/http/express';
import { createAdminMeterProvider, createMesh, createMeshFetch, startAdminServer, type Mesh } from '../src/index.ts';

function capture(): { out: string[]; err: string[]; stdout(s: string): void; stderr(s: string): void } {
  const out: string[] = [];
  const err: string[] = [];
  return { out, err, stdout: (s) => void out.push(s), stderr: (s) => void err.push(s) };
}

describe('meshlet status --admin with real meshes', () => {
  let usersMesh: Mesh;
  let webMesh: Mesh;
  let usersServer: Server;
  let usersAdmin: string;
  let webAdmin: string;

  before(async () => {
    usersMesh = createMesh({ service: 'users', services: {} });
    const app = express();
    app.use(meshMiddleware(usersMesh));
    app.get('/users/:id', (req, res) => void res.json({ id: req.params.id }));
    app.get('/broken', (_req, res) => void res.status(500).end());
    usersServer = await new Promise<Server>((resolve) => {
      const s = app.listen(0, '127.0.0.1', () => resolve(s));
    });
    const usersAddress = `127.0.0.1:${(usersServer.address() as AddressInfo).port}`;

    const meterProvider = createAdminMeterProvider();
    webMesh = createMesh({
      service: 'web',
      services: { users: { endpoints: [usersAddress], retry: { maxAttempts: 1 } } },
      telemetry: { meterProvider },
    });
    const u = await startAdminServer(usersMesh, { port: 0 });
    const w = await startAdminServer(webMesh, { port: 0, meterProvider });
    usersAdmin = `127.0.0.1:${u.address.port}`;
    webAdmin = `127.0.0.1:${w.address.port}`;

    const fetch = createMeshFetch(webMesh);
    for (let i = 0; i < 8; i++) await (await fetch(`http://users/users/${i}`)).text();
    for (let i = 0; i < 2; i++) await (await fetch('http://users/broken')).text();
  });
  after(async () => {
    await webMesh.close();
    await usersMesh.close();
    usersServer.closeAllConnections();
    await new Promise<void>((r) => usersServer.close(() => r()));
  });

  it("the caller's table: users with its success rate, latency and endpoints by state", async () => {
    const out = capture();
    assert.equal(await main(['status', '--admin', webAdmin, '--interval', '100ms'], out), 0, out.err.join('\n'));
    const text = out.out.join('\n');
    assert.match(text, /: ready · rates over/);
    const row = text.split('\n').find((l) => l.trimStart().startsWith('users'));
    assert.ok(row, text);
    // No traffic during the interval: the rate is 0 and the success rate is since start (8 of 10).
    assert.match(row, /^\s+users\s+0\.0\s+80\.00%\s+[\d.]+ms\s+[\d.]+ms\s+0\s+10\s+2\s+1 healthy$/);
    assert.match(text, /inbound: 0 route\/caller pairs/);
  });

  it("the called process's inbound section, per route and caller", async () => {
    const out = capture();
    assert.equal(await main(['status', '--admin', usersAdmin, '--json', '--interval', '100ms'], out), 0);
    const view = JSON.parse(out.out.join('')) as {
      services: unknown[];
      inbound: Array<{ route: string; caller: string; requests: number; failures: number; successRate: number }>;
    };
    assert.deepEqual(view.services, []);
    assert.deepEqual(
      view.inbound.map((i) => [i.route, i.caller, i.requests, i.failures, i.successRate]),
      [
        ['/broken', 'web', 2, 2, 0],
        ['/users/:id', 'web', 8, 0, 1],
      ],
    );
    const table = capture();
    assert.equal(await main(['status', '--admin', usersAdmin, '--interval', '100ms'], table), 0);
    assert.match(table.out.join('\n'), /\/users\/:id\s+web\s+[\d.]+\s+100%\s+[\d.]+ms\s+[\d.]+ms\s+8\s+0\s+0/);
  });
});
