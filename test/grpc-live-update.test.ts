// Scenario: the endpoints of a gRPC service change under load and no call fails.
// - mesh.update replaces every endpoint while 16 concurrent callers run: zero failed calls, and
//   calls started after the update only reach the new servers.
// - A control server (createControlServer, in process) serves the config file to a mesh with the
//   controlPlane discovery source; the file is edited to other endpoints under load: the change is
//   pushed, the calls move to the new servers, zero failed calls.
// - DNS discovery (SRV records from a programmable resolver): the records change under load, the
//   calls move at the next resolution, zero failed calls.
import { after, describe, it } from 'node:test';
import assert from 'node:assert/strict';
import { setTimeout as sleep } from 'node:timers/promises';
import { pino } from 'pino';
import { createControlServer, type ControlServer } from '@meshlet/control';
import type { Mesh } from '@meshlet/core';
import { controlPlane } from '@meshlet/discovery';
import { ConfigDir, waitFor } from './fixtures/control.ts';
import { describeFailed, unary, type EchoClient, type GrpcOutcome } from './fixtures/grpc/client.ts';
import { GrpcHarness } from './fixtures/grpc/harness.ts';
import type { GrpcTestServer } from './fixtures/grpc/servers.ts';

/** `loops` callers making unary calls one after another until `stop()`; each outcome stamped. */
class GrpcLoad {
  readonly samples: Array<{ at: number; started: number; outcome: GrpcOutcome }> = [];
  private stopped = false;
  private readonly running: Promise<void>[];

  constructor(client: EchoClient, loops: number) {
    this.running = Array.from({ length: loops }, async (_, w) => {
      for (let i = 0; !this.stopped; i++) {
        const started = performance.now();
        const outcome = await unary(client, { payload: `w${w}-${i}` });
        this.samples.push({ at: performance.now(), started, outcome });
      }
    });
  }

  /** Asserts that every call so far succeeded. */
  assertNoFailures(): void {
    const failed = this.samples.filter((s) => !s.outcome.ok).map((s) => s.outcome);
    assert.equal(
      failed.length,
      0,
      `${failed.length} of ${this.samples.length} calls failed: ${describeFailed(failed)}`,
    );
  }

  /** At least 100 calls started after `t`, and the last 100 of them were served by servers whose id starts with `prefix`. */
  movedTo(prefix: string, t: number): boolean {
    const recent = this.startedAfter(t);
    return recent.length >= 100 && recent.slice(-100).every((s) => servedBy(s.outcome).startsWith(prefix));
  }

  /** Samples of calls started after `t` (performance.now()). */
  startedAfter(t: number): Array<{ outcome: GrpcOutcome }> {
    return this.samples.filter((s) => s.started > t);
  }

  async stop(): Promise<void> {
    this.stopped = true;
    await Promise.all(this.running);
  }
}

function servedBy(o: GrpcOutcome): string {
  return o.ok ? o.reply.server : `error ${o.code}`;
}

function count(servers: readonly GrpcTestServer[]): number {
  return servers.reduce((n, s) => n + s.count, 0);
}

/** The mesh's echo endpoints are exactly `servers`, and each of them got traffic. */
function assertServedBy(mesh: Mesh, servers: readonly GrpcTestServer[]): void {
  for (const s of servers) assert.ok(s.count > 0, `${s.id} got no traffic`);
  const endpoints = mesh.stats().services.echo.endpoints;
  assert.deepEqual(endpoints.map((e) => e.address).sort(), servers.map((s) => s.address).sort());
}

describe('gRPC live endpoint updates under load', () => {
  const h = new GrpcHarness();
  let control: ControlServer | undefined;
  let config: ConfigDir | undefined;
  after(async () => {
    await h.close();
    await control?.stop();
    await config?.remove();
  });

  it('mesh.update replacing every endpoint while 16 callers run: zero failed calls', async () => {
    const old = await h.servers.startMany('old-', 2, { sleepMs: 3 });
    const fresh = await h.servers.startMany('new-', 2, { sleepMs: 3 });
    const mesh = h.mesh({ services: { echo: { protocol: 'grpc', endpoints: old.map((s) => s.address) } } });
    const client = h.client(mesh, 'echo');

    const load = new GrpcLoad(client, 16);
    let updatedAt = 0;
    try {
      await sleep(300); // traffic on the old servers before the update
      // On a loaded machine 300 ms may not be enough for the channels to connect: wait for it.
      await waitFor('the old servers to get traffic before the update', () => count(old) > 0, 10_000, 5);
      mesh.update({ services: { echo: { protocol: 'grpc', endpoints: fresh.map((s) => s.address) } } });
      updatedAt = performance.now();
      // The old servers finish what they have in flight, then go away.
      await Promise.all(old.map((s) => s.close({ graceful: true })));
      await waitFor('200 calls started after the update', () => load.startedAfter(updatedAt).length >= 200, 10_000, 5);
    } finally {
      await load.stop();
    }

    load.assertNoFailures();
    const afterUpdate = load.startedAfter(updatedAt);
    const strays = afterUpdate.filter((s) => !servedBy(s.outcome).startsWith('new-'));
    assert.equal(
      strays.length,
      0,
      `${strays.length} calls started after the update went to ${strays.slice(0, 5).map((s) => servedBy(s.outcome))}`,
    );
    assertServedBy(mesh, fresh);
    assert.equal(mesh.stats().services.echo.failures, 0);
  });

  it('a control-server-driven endpoint change under load: the calls move, zero failed calls', async () => {
    const v1 = await h.servers.startMany('cp-v1-', 2, { sleepMs: 2 });
    const v2 = await h.servers.startMany('cp-v2-', 2, { sleepMs: 2 });
    const yaml = (servers: readonly GrpcTestServer[]): string =>
      `services:\n  echo:\n    protocol: grpc\n    endpoints: [${servers.map((s) => `"${s.address}"`).join(', ')}]\n`;
    config = await ConfigDir.create(yaml(v1));
    control = createControlServer({
      configPath: config.configPath,
      host: '127.0.0.1',
      port: 0,
      adminPort: 0,
      logger: pino({ level: 'silent' }),
    });
    await control.start();
    const mesh = h.mesh({
      service: 'grpc-front',
      discovery: [controlPlane({ address: `127.0.0.1:${control.address.port}`, node: { id: 'grpc-front-1' } })],
    });
    await mesh.ready({ timeoutMs: 10_000 });
    const client = h.client(mesh, 'echo');

    const load = new GrpcLoad(client, 8);
    let editedAt = 0;
    let movedAt = 0;
    try {
      await waitFor('calls on v1', () => load.samples.length >= 100, 10_000, 5);
      editedAt = performance.now();
      await config.write(yaml(v2));
      // Moved: the last 100 calls all went to v2.
      movedAt = await waitFor(
        'the calls to move to v2',
        () => (load.movedTo('cp-v2-', editedAt) ? performance.now() : undefined),
        10_000,
        5,
      );
      const v1Count = count(v1);
      await waitFor('200 more calls', () => load.samples.filter((s) => s.started > movedAt).length >= 200, 10_000, 5);
      assert.equal(count(v1), v1Count, 'v1 got calls after the change had been applied');
    } finally {
      await load.stop();
    }
    load.assertNoFailures();
    assert.ok(
      load.samples.filter((s) => s.at < editedAt).every((s) => servedBy(s.outcome).startsWith('cp-v1-')),
      'before the edit every call went to v1',
    );
    assertServedBy(mesh, v2);
    assert.equal(mesh.stats().services.echo.failures, 0);
  });

  it('a DNS (SRV) record change under load: the calls move, zero failed calls', async () => {
    const v1 = await h.servers.startMany('dns-v1-', 2, { sleepMs: 2 });
    const v2 = await h.servers.startMany('dns-v2-', 2, { sleepMs: 2 });
    let records = v1;
    const srv = (servers: readonly GrpcTestServer[]) =>
      servers.map((s) => ({ name: '127.0.0.1', port: s.port, priority: 0, weight: 1 }));
    const mesh = h.mesh({
      services: { echo: { protocol: 'grpc', dns: { name: '_grpc._tcp.echo.test', type: 'SRV', refreshMs: 1000 } } },
      dnsResolver: {
        resolve4: async () => [],
        resolve6: async () => [],
        resolveSrv: async () => srv(records),
      },
    });
    await mesh.ready({ timeoutMs: 5000 });
    const client = h.client(mesh, 'echo');

    const load = new GrpcLoad(client, 8);
    let changedAt = 0;
    try {
      await waitFor('calls on v1', () => load.samples.length >= 100, 10_000, 5);
      changedAt = performance.now();
      records = v2;
      // The next resolution (refreshMs 1 s) moves the calls: the last 100 all on v2.
      await waitFor('the calls to move to v2', () => load.movedTo('dns-v2-', changedAt), 10_000, 5);
    } finally {
      await load.stop();
    }
    load.assertNoFailures();
    assertServedBy(mesh, v2);
  });
});
