// Scenario: a push with one invalid resource, under steady load on two services. The real control
// server validates its file and never sends such a push, so a hand-made server (grpc-js with the
// protocol module's codec) drives a real client mesh: the response is NACKed naming the invalid
// resource and why, the valid resource in the same response applies (its traffic moves), and the
// invalid one keeps its last good version, which goes on serving traffic. No request fails.
import { after, before, describe, it } from 'node:test';
import assert from 'node:assert/strict';
import * as grpc from '@grpc/grpc-js';
import { createMesh } from '@meshlet/core';
import { controlPlane } from '@meshlet/discovery';
import {
  ENDPOINT_SET_TYPE_URL,
  SERVICE_TYPE_URL,
  discoveryService,
  encodeEndpointSet,
  encodeService,
  type DiscoveryRequest,
  type DiscoveryResponseInput,
} from '@meshlet/discovery/protocol';
import { createMeshFetch } from '@meshlet/http';
import { ServerSet, type TestServer } from './helpers/servers.ts';
import type { Mesh } from './helpers/load.ts';
import { Load, describeSamples, servedBy, waitFor } from './fixtures/control.ts';

/** A control server that sends only what the test writes, and records what the client sends. */
class HandMadeServer {
  readonly requests: DiscoveryRequest[] = [];
  private call: grpc.ServerDuplexStream<DiscoveryRequest, DiscoveryResponseInput> | undefined;
  private server: grpc.Server | undefined;
  port = 0;

  async start(): Promise<this> {
    const server = new grpc.Server();
    server.addService(discoveryService, {
      StreamResources: (call: grpc.ServerDuplexStream<DiscoveryRequest, DiscoveryResponseInput>) => {
        this.call = call;
        call.on('data', (req: DiscoveryRequest) => this.requests.push(req));
        call.on('error', () => {});
      },
    });
    this.port = await new Promise<number>((resolve, reject) =>
      server.bindAsync('127.0.0.1:0', grpc.ServerCredentials.createInsecure(), (err, port) =>
        err ? reject(err) : resolve(port),
      ),
    );
    this.server = server;
    return this;
  }

  get address(): string {
    return `127.0.0.1:${this.port}`;
  }

  /** Sends a response on the (first) stream, once it is open. */
  async send(res: DiscoveryResponseInput): Promise<void> {
    await waitFor('the client to open its stream', () => this.call !== undefined);
    this.call!.write(res);
  }

  /** The client's reply (ACK or NACK) to the response with `nonce`. */
  reply(nonce: string): Promise<DiscoveryRequest> {
    return waitFor(`the reply to nonce ${nonce}`, () => this.requests.find((r) => r.responseNonce === nonce));
  }

  stop(): void {
    this.server?.forceShutdown();
  }
}

describe('a push with one invalid resource (hand-made control server)', () => {
  const servers = new ServerSet();
  let users1: TestServer;
  let users2: TestServer;
  let orders1: TestServer;
  let orders2: TestServer;
  let control: HandMadeServer;
  let mesh: Mesh;
  let fetch: ReturnType<typeof createMeshFetch>;

  before(async () => {
    [users1, users2, orders1, orders2] = await Promise.all(
      ['users-1', 'users-2', 'orders-1', 'orders-2'].map((id) => servers.start(id)),
    );
    control = await new HandMadeServer().start();
    mesh = createMesh({ service: 'front', discovery: [controlPlane({ address: control.address })] });
    fetch = createMeshFetch(mesh);
    await control.send({
      typeUrl: SERVICE_TYPE_URL,
      versionInfo: '1',
      nonce: 's1',
      resources: [encodeService('users', { retry: { maxAttempts: 3 } }), encodeService('orders', {})],
    });
    await control.send({
      typeUrl: ENDPOINT_SET_TYPE_URL,
      versionInfo: '1',
      nonce: 'e1',
      resources: [encodeEndpointSet('users', [users1.address]), encodeEndpointSet('orders', [orders1.address])],
    });
    await mesh.ready({ timeoutMs: 10_000 });
  });

  after(async () => {
    await mesh?.close();
    control?.stop();
    await servers.closeAll();
  });

  it('NACKs the invalid resource with its reason, applies the valid one, and the last good one keeps serving', async () => {
    for (const nonce of ['s1', 'e1']) {
      const ack = await control.reply(nonce);
      assert.equal(ack.errorDetail, null, `nonce ${nonce} was NACKed: ${JSON.stringify(ack.errorDetail)}`);
      assert.equal(ack.versionInfo, '1');
    }
    const usersLoad = new Load(fetch, 'http://users/', 2);
    const ordersLoad = new Load(fetch, 'http://orders/', 2);
    try {
      await usersLoad.more(50);

      // Endpoints: users gets an address with an impossible port (invalid), orders moves to orders-2.
      const pushedAt = performance.now();
      await control.send({
        typeUrl: ENDPOINT_SET_TYPE_URL,
        versionInfo: '2',
        nonce: 'e2',
        resources: [encodeEndpointSet('users', ['127.0.0.1:99999']), encodeEndpointSet('orders', [orders2.address])],
      });
      const nack = await control.reply('e2');
      assert.equal(nack.typeUrl, ENDPOINT_SET_TYPE_URL);
      assert.equal(nack.versionInfo, '1', 'a NACK carries the last accepted version');
      assert.ok(nack.errorDetail !== null, 'the response was ACKed');
      assert.deepEqual(
        nack.errorDetail.details.map((d) => d.name),
        ['users'],
      );
      assert.match(nack.errorDetail.details[0].reason, /99999/);
      await waitFor('orders traffic on orders-2', () =>
        ordersLoad.since(pushedAt).some((s) => servedBy(s) === 'orders-2'),
      );
      const e2At = performance.now();
      await Promise.all([usersLoad.more(100), ordersLoad.more(100)]);
      assert.ok(
        ordersLoad.since(e2At).every((s) => servedBy(s) === 'orders-2'),
        'the valid EndpointSet in the NACKed response applied',
      );
      assert.ok(
        usersLoad.since(pushedAt).every((s) => servedBy(s) === 'users-1'),
        "users' last good EndpointSet kept serving",
      );

      // Services: users gets an invalid policy, orders a valid change; then users' endpoints move.
      await control.send({
        typeUrl: SERVICE_TYPE_URL,
        versionInfo: '2',
        nonce: 's2',
        resources: [
          encodeService('users', { retry: { maxAttempts: -1 } }),
          encodeService('orders', { retry: { maxAttempts: 2 } }),
        ],
      });
      const nack2 = await control.reply('s2');
      assert.equal(nack2.versionInfo, '1');
      assert.deepEqual(
        nack2.errorDetail?.details.map((d) => d.name),
        ['users'],
      );
      assert.match(nack2.errorDetail!.details[0].reason, /retry\.maxAttempts/);
      // A later valid EndpointSet for users applies on top of its last good Service.
      const e3At = performance.now();
      await control.send({
        typeUrl: ENDPOINT_SET_TYPE_URL,
        versionInfo: '3',
        nonce: 'e3',
        resources: [encodeEndpointSet('users', [users2.address]), encodeEndpointSet('orders', [orders2.address])],
      });
      const ack3 = await control.reply('e3');
      assert.equal(ack3.errorDetail, null);
      assert.equal(ack3.versionInfo, '3');
      await waitFor('users traffic on users-2', () => usersLoad.since(e3At).some((s) => servedBy(s) === 'users-2'));
      await usersLoad.more(50);
    } finally {
      await Promise.all([usersLoad.stop(), ordersLoad.stop()]);
    }
    for (const load of [usersLoad, ordersLoad]) {
      assert.deepEqual(load.failures(), [], `failed requests: ${describeSamples(load.failures())}`);
    }
    assert.equal(users1.count + users2.count, usersLoad.samples.length);
    assert.equal(orders1.count + orders2.count, ordersLoad.samples.length);
    assert.match(mesh.discoveryStatus()[0].description, /NACK/);
  });
});
