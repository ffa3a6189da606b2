// Incremental responses (discovery.proto `incremental`): a stream that ACKed exactly the previous
// version of a type gets only the change, encoded once per version; every other stream (first
// response, resubscription, not ACKed yet, NACKed, named subscription) gets the state of the world.
import { afterEach, describe, it } from 'node:test';
import assert from 'node:assert/strict';
import { decodeResource, decodeResponse, encodeEndpointSet } from '@meshlet/discovery/protocol';
import {
  byName,
  ENDPOINT_SET_TYPE_URL,
  SERVICE_TYPE_URL,
  startServer,
  TestClient,
  type Received,
  type TestServer,
} from './helpers.js';
import { buildResources } from '../src/resources.js';
import { SnapshotBuilder } from '../src/snapshot.js';

const CONFIG = `
services:
  users:
    endpoints: ['127.0.0.1:4001', '127.0.0.1:4002']
    retry: { maxAttempts: 2 }
  orders:
    endpoints: ['127.0.0.1:5001']
  billing:
    endpoints: ['127.0.0.1:6001']
`;

/** users removed, orders' endpoints changed, billing's retry changed. */
const EDIT_1 = `
services:
  orders:
    endpoints: ['127.0.0.1:5001', '127.0.0.1:5002']
  billing:
    endpoints: ['127.0.0.1:6001']
    retry: { maxAttempts: 3 }
`;

/** Only orders' endpoints change again. */
const EDIT_2 = EDIT_1.replace("'127.0.0.1:5002'", "'127.0.0.1:5003'");
const EDIT_3 = EDIT_1.replace("'127.0.0.1:5002'", "'127.0.0.1:5004'");

const open: Array<{ close(): unknown }> = [];
afterEach(async () => {
  for (const x of open.splice(0).reverse()) await x.close();
});

async function server(): Promise<TestServer> {
  const s = await startServer(CONFIG);
  open.push(s);
  return s;
}

function client(s: TestServer): TestClient {
  const c = new TestClient(s.server.address.port);
  open.push(c);
  return c;
}

/** Subscribes and returns the first response of each type, ACKing them when `ack`. */
async function subscribed(c: TestClient, node: string, ack: boolean): Promise<{ svc: Received; eps: Received }> {
  c.subscribe(node);
  const svc = await c.next(SERVICE_TYPE_URL);
  const eps = await c.next(ENDPOINT_SET_TYPE_URL);
  if (ack) {
    c.ack(svc);
    c.ack(eps);
  }
  return { svc, eps };
}

function addresses(r: Received, name: string): string[] {
  return (byName(r)[name] as Array<{ address: string }>).map((e) => e.address);
}

describe('control server: incremental responses', () => {
  it('sends the change to a stream that ACKed the previous version, the whole set to one that did not', async () => {
    const s = await server();
    const upToDate = client(s);
    const stale = client(s);
    const first = await subscribed(upToDate, 'up-to-date', true);
    assert.equal(first.svc.response.incremental, false, 'the first response of a stream is state of the world');
    assert.equal(first.eps.response.incremental, false);
    await subscribed(stale, 'stale', false);
    // The server has both ACKs before the edit.
    await waitFor(() => s.lines.filter((l) => l.event === 'ack' && l.nodeId === 'up-to-date').length === 2);

    await s.writeConfig(EDIT_1);
    const svc = await upToDate.nextOf(SERVICE_TYPE_URL);
    const eps = await upToDate.nextOf(ENDPOINT_SET_TYPE_URL);
    assert.equal(svc.response.versionInfo, '2');
    assert.equal(svc.response.incremental, true);
    assert.deepEqual(Object.keys(byName(svc)), ['billing']);
    assert.deepEqual(byName(svc).billing, { retry: { maxAttempts: 3 } });
    assert.deepEqual(svc.response.removedResources, ['users']);
    assert.equal(eps.response.incremental, true);
    assert.deepEqual(Object.keys(byName(eps)), ['orders']);
    assert.deepEqual(addresses(eps, 'orders'), ['127.0.0.1:5001', '127.0.0.1:5002']);
    assert.deepEqual(eps.response.removedResources, ['users']);

    // The stream that has not ACKed gets the state of the world of version 2.
    const fullSvc = await stale.nextOf(SERVICE_TYPE_URL);
    const fullEps = await stale.nextOf(ENDPOINT_SET_TYPE_URL);
    assert.equal(fullSvc.response.versionInfo, '2');
    assert.equal(fullSvc.response.incremental, false);
    assert.deepEqual(fullSvc.response.removedResources, []);
    assert.deepEqual(Object.keys(byName(fullSvc)).sort(), ['billing', 'orders']);
    assert.equal(fullEps.response.incremental, false);
    assert.deepEqual(Object.keys(byName(fullEps)).sort(), ['billing', 'orders']);

    // Each change is encoded once: every up-to-date stream gets the same response (same nonce).
    assert.equal(eps.response.nonce, `${fullEps.response.nonce}d`);
  });

  it('sends the whole set after a NACK, and the change again once the client ACKs', async () => {
    const s = await server();
    const c = client(s);
    await subscribed(c, 'nacker', true);
    await waitFor(() => s.lines.filter((l) => l.event === 'ack').length === 2);
    await s.writeConfig(EDIT_1);
    const eps2 = await c.nextOf(ENDPOINT_SET_TYPE_URL);
    assert.equal(eps2.response.incremental, true);
    c.send({
      typeUrl: ENDPOINT_SET_TYPE_URL,
      versionInfo: '1',
      responseNonce: eps2.response.nonce,
      errorDetail: { code: 3, message: 'orders: no', details: [{ name: 'orders', reason: 'no' }] },
    });
    await waitFor(() => s.lines.some((l) => l.event === 'nack'));
    await s.writeConfig(EDIT_2);
    const eps3 = await c.nextOf(ENDPOINT_SET_TYPE_URL);
    assert.equal(eps3.response.versionInfo, '3');
    assert.equal(eps3.response.incremental, false, 'a NACKing client gets the state of the world');
    assert.deepEqual(Object.keys(byName(eps3)).sort(), ['billing', 'orders']);
    c.ack(eps3);
    await waitFor(() => s.lines.some((l) => l.event === 'ack' && l.version === '3'));
    await s.writeConfig(EDIT_3);
    const eps4 = await c.nextOf(ENDPOINT_SET_TYPE_URL);
    assert.equal(eps4.response.versionInfo, '4');
    assert.equal(eps4.response.incremental, true);
    assert.deepEqual(Object.keys(byName(eps4)), ['orders']);
    assert.deepEqual(eps4.response.removedResources, []);
  });

  it('sends the whole set when the client skipped a version (its ACK of the previous one had not arrived)', async () => {
    const s = await server();
    const c = client(s);
    await subscribed(c, 'gap', true);
    await waitFor(() => s.lines.filter((l) => l.event === 'ack').length === 2);
    await s.writeConfig(EDIT_1);
    const eps2 = await c.nextOf(ENDPOINT_SET_TYPE_URL);
    assert.equal(eps2.response.incremental, true);
    // No ACK of version 2: version 3 cannot be sent as a change on top of it.
    await s.writeConfig(EDIT_2);
    const eps3 = await c.nextOf(ENDPOINT_SET_TYPE_URL);
    assert.equal(eps3.response.versionInfo, '3');
    assert.equal(eps3.response.incremental, false);
    assert.deepEqual(addresses(eps3, 'orders'), ['127.0.0.1:5001', '127.0.0.1:5003']);
  });

  it('answers a resubscription and a new stream (a reconnect) with the state of the world', async () => {
    const s = await server();
    const c = client(s);
    await subscribed(c, 'resub', true);
    await waitFor(() => s.lines.filter((l) => l.event === 'ack').length === 2);
    await s.writeConfig(EDIT_1);
    const eps2 = await c.nextOf(ENDPOINT_SET_TYPE_URL);
    assert.equal(eps2.response.incremental, true);
    c.ack(eps2);
    await waitFor(() =>
      s.lines.some((l) => l.event === 'ack' && l.typeUrl === ENDPOINT_SET_TYPE_URL && l.version === '2'),
    );
    // A request without a nonce is a (re)subscription: the whole set again.
    c.send({ typeUrl: ENDPOINT_SET_TYPE_URL, versionInfo: '2' });
    const again = await c.nextOf(ENDPOINT_SET_TYPE_URL);
    assert.equal(again.response.versionInfo, '2');
    assert.equal(again.response.incremental, false);
    assert.deepEqual(Object.keys(byName(again)).sort(), ['billing', 'orders']);

    // The same node on a new stream, claiming version 2: state of the world first.
    const c2 = client(s);
    c2.send({ node: { id: 'resub' }, typeUrl: ENDPOINT_SET_TYPE_URL, versionInfo: '2' });
    const fresh = await c2.next(ENDPOINT_SET_TYPE_URL);
    assert.equal(fresh.response.incremental, false);
    assert.deepEqual(Object.keys(byName(fresh)).sort(), ['billing', 'orders']);
  });

  it('sends a subscription by name the state of the world of its names', async () => {
    const s = await server();
    const c = client(s);
    c.send({ node: { id: 'named' }, typeUrl: ENDPOINT_SET_TYPE_URL, resourceNames: ['orders'] });
    const first = await c.next(ENDPOINT_SET_TYPE_URL);
    c.send({
      typeUrl: ENDPOINT_SET_TYPE_URL,
      versionInfo: first.response.versionInfo,
      responseNonce: first.response.nonce,
      resourceNames: ['orders'],
    });
    await waitFor(() => s.lines.some((l) => l.event === 'ack'));
    await s.writeConfig(EDIT_1);
    const next = await c.next(ENDPOINT_SET_TYPE_URL);
    assert.equal(next.response.incremental, false);
    assert.deepEqual(Object.keys(byName(next)), ['orders']);
  });
});

describe('SnapshotBuilder: deltas', () => {
  it('encodes the change from the previous version once: changed and added resources, removed names', () => {
    const b = new SnapshotBuilder(() => 0);
    const v1 = {
      a: { endpoints: ['10.0.0.1:80'] },
      b: { endpoints: ['10.0.0.2:80'] },
      c: { endpoints: ['10.0.0.3:80'] },
    };
    b.update(buildResources(v1, new Map(), []), new Map(Object.entries(v1)));
    assert.equal(b.type(ENDPOINT_SET_TYPE_URL).delta, undefined, 'no delta for the first version');
    const v2 = { a: v1.a, b: { endpoints: ['10.0.0.9:80'] }, d: { endpoints: ['10.0.0.4:80'] } };
    b.update(buildResources(v2, new Map(), []), new Map(Object.entries(v2)));
    const delta = b.type(ENDPOINT_SET_TYPE_URL).delta!;
    assert.equal(delta.from, '1');
    assert.equal(delta.changed, 2);
    assert.deepEqual(delta.removed, ['c']);
    assert.equal(delta.nonce, 'E2d');
    // The response bytes decode to exactly that.
    const res = decodeResponse(delta.response);
    assert.equal(res.incremental, true);
    assert.equal(res.versionInfo, '2');
    assert.deepEqual(res.removedResources, ['c']);
    assert.deepEqual(
      res.resources.map((r) => {
        const d = decodeResource(r);
        return d.ok ? d.name : d.reason;
      }),
      ['b', 'd'],
    );
    assert.deepEqual(res.resources[0]!.value, encodeEndpointSet('b', [{ address: '10.0.0.9:80', weight: 1 }]).value);
  });
});

async function waitFor(cond: () => boolean, timeoutMs = 10_000): Promise<void> {
  const deadline = Date.now() + timeoutMs;
  while (!cond()) {
    if (Date.now() > deadline) throw new Error(`condition not met within ${timeoutMs} ms`);
    await new Promise((r) => setTimeout(r, 10));
  }
}

describe('control server + controlPlane client: incremental end to end', () => {
  it('a real client follows edits through incremental responses and holds the same view as a fresh client', async () => {
    const { controlPlane } = await import('@meshlet/discovery');
    const s = await server();
    const views: Array<Record<string, unknown>> = [];
    const sink = {
      update: (snap: { services: Record<string, unknown> }) => void views.push(snap.services),
      error: () => {},
    };
    const source = controlPlane({ address: `127.0.0.1:${s.server.address.port}`, node: { id: 'real-inc' } });
    open.push({ close: () => source.close() });
    source.start(sink, { service: 'tester' });
    const acked = (v: string) =>
      s.lines.filter((l) => l.event === 'ack' && l.nodeId === 'real-inc' && l.version === v).length === 2;
    await waitFor(() => acked('1'));
    await s.writeConfig(EDIT_1);
    await waitFor(() => acked('2'));
    await s.writeConfig(EDIT_2);
    await waitFor(() => s.lines.some((l) => l.event === 'ack' && l.nodeId === 'real-inc' && l.version === '3'));
    assert.ok(!s.lines.some((l) => l.event === 'nack'), 'no NACK');

    // A fresh client gets version 3 as a state of the world: both must hold the same.
    const fresh: Array<Record<string, unknown>> = [];
    const other = controlPlane({ address: `127.0.0.1:${s.server.address.port}`, node: { id: 'real-fresh' } });
    open.push({ close: () => other.close() });
    other.start({ update: (snap) => void fresh.push(snap.services), error: () => {} }, { service: 'tester' });
    await waitFor(() => fresh.length > 0);
    const last = JSON.parse(JSON.stringify(views.at(-1)));
    assert.deepEqual(last, JSON.parse(JSON.stringify(fresh.at(-1))));
    assert.deepEqual(Object.keys(last).sort(), ['billing', 'orders']);
    assert.deepEqual(
      last.orders.endpoints.map((e: { address: string }) => e.address),
      ['127.0.0.1:5001', '127.0.0.1:5003'],
    );
    assert.deepEqual(last.billing.retry, { maxAttempts: 3 });
  });
});
