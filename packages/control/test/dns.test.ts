// Services with `dns`: the control server resolves them (core's DnsWatcher, here over a fake
// resolver) and pushes the answers as endpoints; clients get no `dns` key, so they do not resolve.
import { afterEach, describe, it } from 'node:test';
import assert from 'node:assert/strict';
import type { DnsResolverLike } from '@meshlet/core';
import {
  byName,
  ENDPOINT_SET_TYPE_URL,
  eventually,
  SERVICE_TYPE_URL,
  startServer,
  TestClient,
  type TestServer,
} from './helpers.js';

class FakeResolver implements DnsResolverLike {
  answers: string[] = ['10.0.0.1', '10.0.0.2'];
  fail = false;
  async resolve4(name: string): Promise<Array<{ address: string; ttl: number }>> {
    if (this.fail) throw Object.assign(new Error(`queryA ESERVFAIL ${name}`), { code: 'ESERVFAIL' });
    return this.answers.map((address) => ({ address, ttl: 3600 }));
  }
  async resolve6(): Promise<Array<{ address: string; ttl: number }>> {
    return [];
  }
  async resolveSrv(): Promise<Array<{ name: string; port: number; priority: number; weight: number }>> {
    return [];
  }
}

const CONFIG = `
services:
  users:
    dns: { name: users.internal, port: 8080, type: A, refreshMs: 1000 }
    retry: { maxAttempts: 2 }
`;

let s: TestServer | undefined;
let c: TestClient | undefined;
afterEach(async () => {
  c?.close();
  await s?.close();
  c = s = undefined;
});

describe('control server: dns services', () => {
  it('pushes DNS answers as endpoints and leaves dns out of the Service resource', async () => {
    const resolver = new FakeResolver();
    s = await startServer(CONFIG, { dnsResolver: resolver });
    c = new TestClient(s.server.address.port);
    c.subscribe('dns-client');
    const svc = await c.next(SERVICE_TYPE_URL);
    assert.deepEqual(byName(svc).users, { retry: { maxAttempts: 2 } });
    // The first snapshot may be built before the first answer; wait for the endpoints.
    let eps = await c.next(ENDPOINT_SET_TYPE_URL);
    while ((byName(eps).users as unknown[]).length === 0) eps = await c.nextOf(ENDPOINT_SET_TYPE_URL);
    assert.deepEqual(
      (byName(eps).users as Array<{ address: string }>).map((e) => e.address),
      ['10.0.0.1:8080', '10.0.0.2:8080'],
    );
    const view = (await s.admin('/endpoints/users')).body;
    assert.deepEqual(
      view.endpoints.map((e: { source: string }) => e.source),
      ['dns', 'dns'],
    );

    // A failed lookup keeps the last good set and is shown on the admin endpoint.
    resolver.fail = true;
    await eventually(async () => (await s!.admin('/endpoints/users')).body.dnsError !== null, 5000);
    assert.equal((await s.admin('/endpoints/users')).body.endpoints.length, 2);
    assert.ok(s.lines.some((l) => l.event === 'dns_error'));
  });

  it('stops reporting a DNS error once resolution recovers with the same answer', async () => {
    const resolver = new FakeResolver();
    s = await startServer(CONFIG, { dnsResolver: resolver });
    await eventually(async () => (await s!.admin('/endpoints/users')).body.endpoints.length === 2, 5000);
    resolver.fail = true;
    await eventually(async () => (await s!.admin('/endpoints/users')).body.dnsError !== null, 5000);
    const version = s.server.version;
    // Same addresses as before the failure: the endpoint set does not change, no new version.
    resolver.fail = false;
    await eventually(async () => (await s!.admin('/endpoints/users')).body.dnsError === null, 8000);
    const view = (await s.admin('/endpoints/users')).body;
    assert.equal(view.endpoints.length, 2);
    assert.equal(s.server.version, version, 'an unchanged answer is not a new version');
  });
});
