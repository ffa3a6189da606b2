// The control server end to end: a real server on 127.0.0.1:0 over a temp config file, driven
// by raw grpc-js streams that speak the protocol module's codec.
import { after, afterEach, describe, it } from 'node:test';
import assert from 'node:assert/strict';
import { writeFileSync } from 'node:fs';
import * as grpc from '@grpc/grpc-js';
import {
  byName,
  ENDPOINT_SET_TYPE_URL,
  eventually,
  REGISTRATION_TYPE_URL,
  SERVICE_TYPE_URL,
  startServer,
  TestClient,
  type TestServer,
} from './helpers.js';
import { MemoryStore, type ClientRecord, type StoredRegistration } from '../src/store.js';

const CONFIG = `
services:
  users:
    endpoints: ['127.0.0.1:4001', { address: '127.0.0.1:4002', weight: 2, zone: a }]
    retry: { maxAttempts: 2 }
  orders:
    endpoints: ['127.0.0.1:5001']
    routes:
      - backends: [{ service: orders }]
`;

const open: Array<{ close(): unknown }> = [];
function track<T extends { close(): unknown }>(x: T): T {
  open.push(x);
  return x;
}
afterEach(async () => {
  // Clients first, then servers.
  for (const x of open.splice(0).reverse()) await x.close();
});

async function server(text = CONFIG, options = {}): Promise<TestServer> {
  return track(await startServer(text, options));
}

function client(s: TestServer): TestClient {
  return track(new TestClient(s.server.address.port));
}

describe('control server: snapshot, ACK, NACK', () => {
  it('answers a subscription with the current snapshot: Service without endpoints, EndpointSet with them', async () => {
    const s = await server();
    const c = client(s);
    c.subscribe('node-1');
    const svc = await c.next(SERVICE_TYPE_URL);
    assert.equal(svc.response.versionInfo, '1');
    assert.notEqual(svc.response.nonce, '');
    const services = byName(svc);
    assert.deepEqual(Object.keys(services).sort(), ['orders', 'users']);
    assert.deepEqual(services.users, { retry: { maxAttempts: 2 } });
    assert.deepEqual(services.orders, { routes: [{ backends: [{ service: 'orders' }] }] });

    const eps = await c.next(ENDPOINT_SET_TYPE_URL);
    assert.equal(eps.response.versionInfo, '1');
    assert.notEqual(eps.response.nonce, svc.response.nonce);
    const sets = byName(eps) as Record<string, Array<{ address: string; weight?: number; zone?: string }>>;
    assert.deepEqual(
      sets.users!.map((e) => [e.address, e.weight ?? 1, e.zone ?? '']),
      [
        ['127.0.0.1:4001', 1, ''],
        ['127.0.0.1:4002', 2, 'a'],
      ],
    );
    assert.deepEqual(
      sets.orders!.map((e) => e.address),
      ['127.0.0.1:5001'],
    );
    const connect = s.lines.find((l) => l.event === 'connect');
    assert.equal(connect?.nodeId, 'node-1');
    assert.equal(connect?.service, 'tester');
  });

  it('records an ACK per type in /clients; a client that has not ACKed is behind after the grace time', async () => {
    const s = await server(CONFIG, { behindGraceMs: 100 });
    const c = client(s);
    c.subscribe('node-ack', 'orders');
    const svc = await c.next(SERVICE_TYPE_URL);
    const eps = await c.next(ENDPOINT_SET_TYPE_URL);
    c.ack(svc);
    const clients = await eventually(async () => {
      const { body } = await s.admin('/clients');
      return body[0]?.acked?.[SERVICE_TYPE_URL] === '1' ? body : undefined;
    });
    assert.equal(clients.length, 1);
    assert.equal(clients[0].nodeId, 'node-ack');
    assert.equal(clients[0].service, 'orders');
    assert.match(clients[0].peer, /127\.0\.0\.1/);
    assert.equal(clients[0].lastNack, null);
    // EndpointSet is not ACKed yet: behind once the grace time has passed.
    await eventually(async () => (await s.admin('/clients')).body[0].behind === true);
    c.ack(eps);
    await eventually(async () => {
      const [view] = (await s.admin('/clients')).body;
      return view.acked[ENDPOINT_SET_TYPE_URL] === '1' && view.behind === false;
    });
    assert.ok(s.lines.some((l) => l.event === 'ack' && l.nodeId === 'node-ack' && l.version === '1'));
  });

  it('records a NACK with its reason and does not send the same version again', async () => {
    const s = await server();
    const c = client(s);
    c.subscribe('node-nack');
    c.ack(await c.next(SERVICE_TYPE_URL));
    const eps = await c.next(ENDPOINT_SET_TYPE_URL);
    c.send({
      typeUrl: ENDPOINT_SET_TYPE_URL,
      versionInfo: '',
      responseNonce: eps.response.nonce,
      errorDetail: {
        code: 3,
        message: 'users: weight too large',
        details: [{ name: 'users', reason: 'weight too large' }],
      },
    });
    // A registration after the NACK: its reply comes after anything the NACK could have caused.
    c.send({ typeUrl: REGISTRATION_TYPE_URL, registrations: [], registrationRevision: 1 });
    const reply = await c.next(REGISTRATION_TYPE_URL);
    assert.equal(reply.response.versionInfo, '1');
    assert.deepEqual(c.pending(), []);

    const [view] = (await s.admin('/clients')).body;
    assert.equal(view.lastNack.version, '1');
    assert.equal(view.lastNack.typeUrl, ENDPOINT_SET_TYPE_URL);
    assert.equal(view.lastNack.reason, 'users: weight too large');
    const log = s.lines.find((l) => l.event === 'nack');
    assert.equal(log?.reason, 'users: weight too large');
    assert.equal(log?.nodeId, 'node-nack');
  });

  it('ignores a stale nonce (xDS): an ACK of an older response changes nothing', async () => {
    const s = await server();
    const c = client(s);
    c.subscribe('node-stale');
    const svc1 = await c.next(SERVICE_TYPE_URL);
    await c.next(ENDPOINT_SET_TYPE_URL);
    await s.writeConfig(CONFIG.replace('maxAttempts: 2', 'maxAttempts: 3'));
    const svc2 = await c.nextOf(SERVICE_TYPE_URL);
    assert.equal(svc2.response.versionInfo, '2');
    // A NACK carrying the first response's nonce is stale: not recorded.
    c.send({
      typeUrl: SERVICE_TYPE_URL,
      versionInfo: '',
      responseNonce: svc1.response.nonce,
      errorDetail: { code: 3, message: 'late' },
    });
    c.ack(svc2);
    await eventually(async () => (await s.admin('/clients')).body[0].acked[SERVICE_TYPE_URL] === '2');
    assert.equal((await s.admin('/clients')).body[0].lastNack, null);
  });
});

describe('control server: re-subscription', () => {
  it('answers a repeated subscription with the current version again, under a new nonce', async () => {
    const s = await server();
    const c = client(s);
    c.subscribe('node-resub');
    const first = await c.next(SERVICE_TYPE_URL);
    await c.next(ENDPOINT_SET_TYPE_URL);
    c.send({ typeUrl: SERVICE_TYPE_URL, versionInfo: '1' });
    const again = await c.next(SERVICE_TYPE_URL);
    assert.equal(again.response.versionInfo, '1');
    assert.notEqual(again.response.nonce, first.response.nonce);
    assert.deepEqual(byName(again), byName(first));
    // The first nonce is stale now; the new one is ACKed.
    c.send({
      typeUrl: SERVICE_TYPE_URL,
      versionInfo: '',
      responseNonce: first.response.nonce,
      errorDetail: { code: 3, message: 'stale' },
    });
    c.ack(again);
    await eventually(async () => (await s.admin('/clients')).body[0].acked[SERVICE_TYPE_URL] === '1');
    assert.equal((await s.admin('/clients')).body[0].lastNack, null);
  });
});

describe('control server: named subscriptions', () => {
  it('serves only the named resources, follows a change of names, and keeps pushing new versions', async () => {
    const s = await server();
    const c = client(s);
    c.send({ node: { id: 'named' }, typeUrl: ENDPOINT_SET_TYPE_URL, resourceNames: ['users', 'nobody'] });
    const first = await c.next(ENDPOINT_SET_TYPE_URL);
    assert.equal(first.response.versionInfo, '1');
    assert.deepEqual(Object.keys(byName(first)), ['users']);
    // The ACK widens the subscription: the same version again, for the new names.
    c.send({
      typeUrl: ENDPOINT_SET_TYPE_URL,
      versionInfo: '1',
      responseNonce: first.response.nonce,
      resourceNames: ['users', 'orders'],
    });
    const widened = await c.next(ENDPOINT_SET_TYPE_URL);
    assert.equal(widened.response.versionInfo, '1');
    assert.notEqual(widened.response.nonce, first.response.nonce);
    assert.deepEqual(Object.keys(byName(widened)).sort(), ['orders', 'users']);
    c.send({
      typeUrl: ENDPOINT_SET_TYPE_URL,
      versionInfo: '1',
      responseNonce: widened.response.nonce,
      resourceNames: ['users', 'orders'],
    });
    // A registration-only service appears: not named, so not sent; the new version still is.
    c.send({
      typeUrl: REGISTRATION_TYPE_URL,
      registrationRevision: 1,
      registrations: [{ service: 'billing', endpoint: { address: '127.0.0.1:6001' } }],
    });
    const next = await c.nextOf(ENDPOINT_SET_TYPE_URL);
    assert.equal(next.response.versionInfo, '2');
    assert.deepEqual(Object.keys(byName(next)).sort(), ['orders', 'users']);
    // '*' is a wildcard again.
    c.send({
      typeUrl: ENDPOINT_SET_TYPE_URL,
      versionInfo: '2',
      responseNonce: next.response.nonce,
      resourceNames: ['*'],
    });
    const all = await c.next(ENDPOINT_SET_TYPE_URL);
    assert.deepEqual(Object.keys(byName(all)).sort(), ['billing', 'orders', 'users']);
  });
});

describe('control server: config file', () => {
  it('pushes a new version after an edit; in-place writes within the debounce window make one version', async () => {
    const s = await server(CONFIG, { debounceMs: 300, fileDebounceMs: 1500 });
    const c = client(s);
    c.subscribe('node-edit');
    await c.next(SERVICE_TYPE_URL);
    await c.next(ENDPOINT_SET_TYPE_URL);
    // Two in-place writes 100 ms apart, well inside the 1.5 s window: one version, with the second
    // write's content. The writes are synchronous so that a loaded machine cannot stretch the gap
    // between them past the window (CI once saw an async pair more than 300 ms apart). Without
    // the debounce the first write alone would be read and pushed during the 100 ms pause. (An
    // atomic save, a rename into place, is complete when its event arrives and is read at once:
    // two of them are two versions, see file-watch.test.ts.)
    writeFileSync(s.configPath, CONFIG.replace("'127.0.0.1:5001'", "'127.0.0.1:5009'"));
    await new Promise((r) => setTimeout(r, 100));
    writeFileSync(s.configPath, CONFIG.replace("'127.0.0.1:5001'", "'127.0.0.1:5001', '127.0.0.1:5002'"));
    const eps = await c.nextOf(ENDPOINT_SET_TYPE_URL);
    assert.equal(eps.response.versionInfo, '2');
    const sets = byName(eps) as Record<string, Array<{ address: string }>>;
    assert.deepEqual(
      sets.orders!.map((e) => e.address),
      ['127.0.0.1:5001', '127.0.0.1:5002'],
    );
    // Only endpoints changed: no Service response.
    assert.deepEqual(
      c.pending().filter((r) => r.response.typeUrl === SERVICE_TYPE_URL),
      [],
    );
    assert.equal((await s.admin('/config')).body.version, '2');
    assert.ok(s.lines.some((l) => l.event === 'reload'));
  });

  it('keeps the last good config after an invalid edit and shows the error on /config', async () => {
    const s = await server();
    const c = client(s);
    c.subscribe('node-bad');
    await c.next(SERVICE_TYPE_URL);
    await c.next(ENDPOINT_SET_TYPE_URL);
    await s.writeConfig(CONFIG.replace('maxAttempts: 2', 'maxAttempts: -1'));
    const config = await eventually(async () => {
      const { body } = await s.admin('/config');
      return body.lastReloadError !== null ? body : undefined;
    });
    assert.match(config.lastReloadError.message, /mesh\.yaml/);
    assert.match(config.lastReloadError.message, /services\.users\.retry\.maxAttempts/);
    assert.equal(config.version, '1');
    assert.equal(config.services, 2);
    const log = s.lines.find((l) => l.event === 'reload_error');
    assert.match(String(log?.err), /services\.users\.retry\.maxAttempts/);
    assert.deepEqual(c.pending(), []);
    // Still serving version 1 to new clients.
    const c2 = client(s);
    c2.subscribe('node-bad-2');
    const svc = await c2.next(SERVICE_TYPE_URL);
    assert.equal(svc.response.versionInfo, '1');
    assert.deepEqual((byName(svc).users as any).retry, { maxAttempts: 2 });
    // Fixing the file clears the error and pushes.
    await s.writeConfig(CONFIG.replace('maxAttempts: 2', 'maxAttempts: 4'));
    const next = await c.nextOf(SERVICE_TYPE_URL);
    assert.equal(next.response.versionInfo, '2');
    assert.equal((await s.admin('/config')).body.lastReloadError, null);
  });

  it('refuses to start on an invalid file, naming the file and the path', async () => {
    await assert.rejects(
      startServer('services:\n  users:\n    endpoints: [nope]\n'),
      (err: Error & { code?: string }) => {
        assert.match(err.message, /mesh\.yaml/);
        assert.match(err.message, /services\.users\.endpoints\[0\]/);
        return true;
      },
    );
  });
});

describe('control server: registrations', () => {
  function register(c: TestClient, revision: number, regs: Array<{ service: string; address: string; zone?: string }>) {
    c.send({
      typeUrl: REGISTRATION_TYPE_URL,
      registrationRevision: revision,
      registrations: regs.map((r) => ({ service: r.service, endpoint: { address: r.address, zone: r.zone ?? '' } })),
    });
  }

  it('adds registered endpoints to the EndpointSet; a registration-only service gets an EndpointSet and no Service', async () => {
    const s = await server();
    const watcher = client(s);
    watcher.subscribe('watcher');
    await watcher.next(SERVICE_TYPE_URL);
    await watcher.next(ENDPOINT_SET_TYPE_URL);

    const backend = client(s);
    backend.send({
      node: { id: 'backend-1', cluster: 'users' },
      typeUrl: REGISTRATION_TYPE_URL,
      registrationRevision: 1,
      registrations: [],
    });
    assert.equal((await backend.next(REGISTRATION_TYPE_URL)).response.versionInfo, '1');
    register(backend, 2, [
      { service: 'users', address: '127.0.0.1:4003', zone: 'b' },
      { service: 'billing', address: '127.0.0.1:6001' },
    ]);
    const reply = await backend.next(REGISTRATION_TYPE_URL);
    assert.equal(reply.response.versionInfo, '2');
    assert.equal(reply.response.errorDetail, null);

    const eps = await watcher.nextOf(ENDPOINT_SET_TYPE_URL);
    const sets = byName(eps) as Record<string, Array<{ address: string; zone?: string }>>;
    assert.deepEqual(
      sets.users!.map((e) => e.address),
      ['127.0.0.1:4001', '127.0.0.1:4002', '127.0.0.1:4003'],
    );
    assert.deepEqual(
      sets.billing!.map((e) => e.address),
      ['127.0.0.1:6001'],
    );
    // No Service resource for billing: the mesh applies default policies.
    assert.deepEqual(
      watcher.pending().filter((r) => r.response.typeUrl === SERVICE_TYPE_URL),
      [],
    );
    const view = (await s.admin('/endpoints/users')).body;
    assert.deepEqual(
      view.endpoints.map((e: any) => [e.address, e.source, e.nodeId ?? null]),
      [
        ['127.0.0.1:4001', 'static', null],
        ['127.0.0.1:4002', 'static', null],
        ['127.0.0.1:4003', 'registration', 'backend-1'],
      ],
    );
    assert.equal((await s.admin('/endpoints/billing')).body.configured, false);
    assert.equal((await s.admin('/endpoints/nope')).status, 404);
    assert.ok(s.lines.some((l) => l.event === 'registration' && l.address === '127.0.0.1:4003'));
  });

  it('refuses invalid registrations in errorDetail and applies the valid ones', async () => {
    const s = await server();
    const c = client(s);
    c.send({
      node: { id: 'bad-reg' },
      typeUrl: REGISTRATION_TYPE_URL,
      registrationRevision: 7,
      registrations: [
        { service: 'users', endpoint: { address: 'not an address' } },
        { service: 'Bad Name!', endpoint: { address: '127.0.0.1:1' } },
        { service: 'users', endpoint: { address: '127.0.0.1:4009' } },
      ],
    });
    const reply = await c.next(REGISTRATION_TYPE_URL);
    assert.equal(reply.response.versionInfo, '7');
    const details = reply.response.errorDetail!.details.map((d) => d.name);
    assert.deepEqual(details, ['users/not an address', 'Bad Name!/127.0.0.1:1']);
    assert.match(reply.response.errorDetail!.message, /users\/not an address: .*registrations\[0\]/);
    await eventually(async () =>
      (await s.admin('/endpoints/users')).body.endpoints.some((e: any) => e.address === '127.0.0.1:4009'),
    );
  });

  it('caps the registrations of one node, refusing the excess in one entry', async () => {
    const s = await server(CONFIG, { maxRegistrationsPerNode: 2 });
    const c = client(s);
    c.send({
      node: { id: 'greedy' },
      typeUrl: REGISTRATION_TYPE_URL,
      registrationRevision: 1,
      registrations: [1, 2, 3, 4, 5].map((i) => ({ service: 'users', endpoint: { address: `127.0.0.1:${7000 + i}` } })),
    });
    const reply = await c.next(REGISTRATION_TYPE_URL);
    assert.deepEqual(
      reply.response.errorDetail!.details.map((d) => d.name),
      ['registrations[2..4]'],
    );
    assert.match(reply.response.errorDetail!.message, /at most 2 registrations; 3 refused/);
    await eventually(async () => (await s.admin('/endpoints/users')).body.endpoints.length === 4);
  });

  it("withdraws a dropped stream's registrations after the grace period", async () => {
    const s = await server(CONFIG, { registrationGraceMs: 200 });
    const watcher = client(s);
    watcher.subscribe('watcher');
    await watcher.next(SERVICE_TYPE_URL);
    await watcher.next(ENDPOINT_SET_TYPE_URL);
    const backend = new TestClient(s.server.address.port);
    backend.send({
      node: { id: 'backend-2' },
      typeUrl: REGISTRATION_TYPE_URL,
      registrationRevision: 1,
      registrations: [{ service: 'users', endpoint: { address: '127.0.0.1:4010' } }],
    });
    await backend.next(REGISTRATION_TYPE_URL);
    const added = await watcher.nextOf(ENDPOINT_SET_TYPE_URL);
    assert.ok((byName(added).users as any[]).some((e) => e.address === '127.0.0.1:4010'));

    const endedAt = Date.now();
    backend.close();
    const removed = await watcher.nextOf(ENDPOINT_SET_TYPE_URL);
    assert.ok(Date.now() - endedAt >= 150, 'withdrawn only after the grace period');
    assert.ok(!(byName(removed).users as any[]).some((e) => e.address === '127.0.0.1:4010'));
    assert.ok(
      s.lines.some((l) => l.event === 'withdrawal' && l.address === '127.0.0.1:4010' && l.reason === 'stream ended'),
    );
  });

  it('keeps the registrations when the same node reconnects and re-registers within the grace period', async () => {
    const s = await server(CONFIG, { registrationGraceMs: 1000 });
    const reg = { service: 'users', endpoint: { address: '127.0.0.1:4011' } };
    const first = new TestClient(s.server.address.port);
    first.send({
      node: { id: 'backend-3' },
      typeUrl: REGISTRATION_TYPE_URL,
      registrationRevision: 1,
      registrations: [reg],
    });
    await first.next(REGISTRATION_TYPE_URL);
    first.close();
    await eventually(async () => (await s.admin('/clients')).body.length === 0);
    const endedAt = Date.now();

    const second = client(s);
    second.send({
      node: { id: 'backend-3' },
      typeUrl: REGISTRATION_TYPE_URL,
      registrationRevision: 1,
      registrations: [reg],
    });
    await second.next(REGISTRATION_TYPE_URL);
    // Past the grace period of the first stream: still registered, never withdrawn.
    await new Promise((r) => setTimeout(r, Math.max(0, endedAt + 1300 - Date.now())));
    const view = (await s.admin('/endpoints/users')).body;
    assert.ok(view.endpoints.some((e: any) => e.address === '127.0.0.1:4011'));
    assert.ok(!s.lines.some((l) => l.event === 'withdrawal'));
  });

  it('coalesces changes within debounceMs into one version', async () => {
    const s = await server(CONFIG, { debounceMs: 1000 });
    const watcher = client(s);
    watcher.subscribe('watcher');
    await watcher.next(SERVICE_TYPE_URL);
    await watcher.next(ENDPOINT_SET_TYPE_URL);
    const backend = client(s);
    backend.send({
      node: { id: 'backend-4' },
      typeUrl: REGISTRATION_TYPE_URL,
      registrationRevision: 1,
      registrations: [{ service: 'users', endpoint: { address: '127.0.0.1:4020' } }],
    });
    backend.send({
      typeUrl: REGISTRATION_TYPE_URL,
      registrationRevision: 2,
      registrations: [
        { service: 'users', endpoint: { address: '127.0.0.1:4020' } },
        { service: 'users', endpoint: { address: '127.0.0.1:4021' } },
      ],
    });
    await backend.next(REGISTRATION_TYPE_URL);
    await backend.next(REGISTRATION_TYPE_URL);
    const eps = await watcher.nextOf(ENDPOINT_SET_TYPE_URL);
    assert.equal(eps.response.versionInfo, '2');
    const addresses = (byName(eps).users as any[]).map((e) => e.address);
    assert.ok(addresses.includes('127.0.0.1:4020') && addresses.includes('127.0.0.1:4021'));
  });
});

describe('control server: robustness and lifecycle', () => {
  it('ends a stream whose first request has no node id, and keeps serving others', async () => {
    const s = await server();
    const bad = client(s);
    bad.send({ typeUrl: SERVICE_TYPE_URL });
    await bad.waitEnd();
    assert.equal(bad.error?.code ?? bad.status?.code, grpc.status.INVALID_ARGUMENT);
    assert.match(String(bad.error?.details ?? bad.status?.details), /node\.id/);
    const good = client(s);
    good.subscribe('after-bad');
    assert.equal((await good.next(SERVICE_TYPE_URL)).response.versionInfo, '1');
  });

  it('survives undecodable bytes and unknown types', async () => {
    const s = await server();
    // A client whose serializer sends garbage.
    const Raw = grpc.makeGenericClientConstructor(
      {
        StreamResources: {
          path: '/meshlet.v1.AggregatedDiscoveryService/StreamResources',
          requestStream: true,
          responseStream: true,
          requestSerialize: (b: Buffer) => b,
          requestDeserialize: (b: Buffer) => b,
          responseSerialize: (b: Buffer) => b,
          responseDeserialize: (b: Buffer) => b,
        },
      },
      'Raw',
    );
    const raw = new Raw(`127.0.0.1:${s.server.address.port}`, grpc.credentials.createInsecure());
    const call = (raw as any).StreamResources();
    const ended = new Promise<grpc.StatusObject>((resolve) => call.on('status', resolve));
    call.on('error', () => {});
    call.write(Buffer.from([0xff, 0xff, 0xff, 0xff, 0x0f, 0x01]));
    const status = await ended;
    assert.notEqual(status.code, grpc.status.OK);
    raw.close();

    const c = client(s);
    c.subscribe('survivor');
    c.send({ typeUrl: 'type.example/Unknown' });
    assert.equal((await c.next(SERVICE_TYPE_URL)).response.versionInfo, '1');
    await c.next(ENDPOINT_SET_TYPE_URL);
    assert.equal((await s.admin('/healthz')).status, 200);
  });

  it('logs failed writes of an asynchronous store instead of crashing', async () => {
    class FailingStore extends MemoryStore {
      override putClient(client: ClientRecord): Promise<void> {
        super.putClient(client);
        return Promise.reject(new Error('etcd unavailable'));
      }
      override replaceRegistrations(nodeId: string, regs: readonly StoredRegistration[]): Promise<void> {
        super.replaceRegistrations(nodeId, regs);
        return Promise.reject(new Error('etcd unavailable'));
      }
    }
    const s = await server(CONFIG, { store: new FailingStore() });
    const c = client(s);
    c.subscribe('etcd-less');
    c.ack(await c.next(SERVICE_TYPE_URL));
    c.send({
      typeUrl: REGISTRATION_TYPE_URL,
      registrationRevision: 1,
      registrations: [{ service: 'users', endpoint: { address: '127.0.0.1:4999' } }],
    });
    await c.nextOf(REGISTRATION_TYPE_URL);
    await eventually(() => s.lines.filter((l) => l.event === 'store_error').length >= 2);
    assert.ok(s.lines.some((l) => l.event === 'store_error' && l.op === 'replaceRegistrations'));
    assert.equal((await s.admin('/healthz')).status, 200);
  });

  it('serves /healthz, /readyz, /config and JSON 404/405', async () => {
    const s = await server();
    assert.deepEqual(await s.admin('/healthz'), { status: 200, body: { status: 'ok' } });
    assert.equal((await s.admin('/readyz')).status, 200);
    const config = (await s.admin('/config')).body;
    assert.equal(config.path, s.configPath);
    assert.equal(config.version, '1');
    assert.equal(config.services, 2);
    assert.equal(config.lastReloadError, null);
    assert.equal((await s.admin('/nope')).status, 404);
    const res = await fetch(`http://127.0.0.1:${s.server.adminAddress.port}/clients`, { method: 'POST' });
    assert.equal(res.status, 405);
    assert.match(((await res.json()) as { error: string }).error, /use GET/);
  });

  it('stop() ends every stream cleanly and closes both ports', async () => {
    const s = await startServer(CONFIG);
    const c = new TestClient(s.server.address.port);
    c.subscribe('stopper');
    await c.next(SERVICE_TYPE_URL);
    const adminPort = s.server.adminAddress.port;
    await s.close();
    await c.waitEnd();
    assert.equal(c.status?.code ?? c.error?.code, grpc.status.OK);
    c.close();
    await assert.rejects(fetch(`http://127.0.0.1:${adminPort}/healthz`));
    assert.ok(s.lines.some((l) => l.event === 'stopped'));
  });
});

after(() => {
  // Nothing global to release: every server and client is closed in afterEach.
});
