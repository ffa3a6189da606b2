// Scenario: grpc-js clients on meshlet:/// targets are balanced by core's balancers over real
// grpc-js servers on loopback.
// - round-robin over 4 backends: 400 unary calls, each backend within ±10% of an even share;
// - bad apple: one of 3 backends answers UNAVAILABLE to everything; with the defaults (p2c-ewma,
//   retry on UNAVAILABLE, outlier detection) at least 99.9% of 1000 calls succeed;
// - ring-hash on the `x-user` metadata key: a key always lands on the same backend, keys spread;
// - routes match the method path (`/package.Service/Method`, exact or prefix) and metadata headers.
// And transport faults, where grpc-js alone answers UNAVAILABLE:
// - An endpoint nobody listens on (connection refused) next to a healthy one: every call succeeds
//   (the refused attempt is retried elsewhere) and the dead endpoint is taken out of rotation.
// - One of 3 backends dies (every connection cut, then connection refused) while 8 callers run:
//   no call started after the death fails; of those in flight, only a call whose response message
//   had arrived (committed, A44) may fail, with UNAVAILABLE.
// - A backend that accepts calls and never answers, with a per-try timeout: every call succeeds
//   on the other backend within the deadline.
import { after, describe, it } from 'node:test';
import assert from 'node:assert/strict';
import net from 'node:net';
import { setTimeout as sleep } from 'node:timers/promises';
import * as grpc from '@grpc/grpc-js';
import { waitFor } from './fixtures/control.ts';
import { runConcurrent } from './helpers/load.ts';
import { clientStream, describeFailed, tallyOutcomes, unary, type GrpcOutcome } from './fixtures/grpc/client.ts';
import { DualPort } from './fixtures/grpc/dual.ts';
import { GrpcHarness } from './fixtures/grpc/harness.ts';
import { totalCalls } from './fixtures/grpc/servers.ts';

/** A port that was free a moment ago on 127.0.0.1: nothing listens there. */
async function deadAddress(): Promise<string> {
  const server = net.createServer();
  await new Promise<void>((resolve) => server.listen(0, '127.0.0.1', () => resolve()));
  const port = (server.address() as net.AddressInfo).port;
  await new Promise<void>((resolve) => server.close(() => resolve()));
  return `127.0.0.1:${port}`;
}

describe('gRPC balancing', () => {
  const h = new GrpcHarness();
  after(() => h.close());

  it('round-robin: 400 calls over 4 backends, each within ±10% of 100', async () => {
    const backends = await h.servers.startMany('rr-', 4);
    const mesh = h.mesh({
      services: {
        echo: { protocol: 'grpc', loadBalancer: 'round-robin', endpoints: backends.map((s) => s.address) },
      },
    });
    const client = h.client(mesh, 'echo');

    const outcomes = await runConcurrent(400, 8, (i) => unary(client, { payload: `p${i}` }));
    assert.deepEqual(tallyOutcomes(outcomes), { ok: 400 }, describeFailed(outcomes));
    for (const [i, o] of outcomes.entries()) {
      assert.ok(o.ok);
      assert.equal(o.reply.payload, `p${i}`);
    }
    const counts = backends.map((s) => s.countOf('Unary'));
    assert.equal(totalCalls(backends), 400, `no retries expected, got ${totalCalls(backends)} attempts`);
    for (const [i, n] of counts.entries()) {
      assert.ok(n >= 90 && n <= 110, `backend ${i} got ${n} of 400 calls (want 90..110); all: ${counts.join(', ')}`);
    }
    // Which backend answered agrees with what the servers counted.
    for (const s of backends) {
      assert.equal(outcomes.filter((o) => o.ok && o.reply.server === s.id).length, s.countOf('Unary'));
    }
    const stats = mesh.stats().services.echo;
    assert.equal(stats.requests, 400);
    assert.equal(stats.successes, 400);
    assert.equal(stats.failures, 0);
    assert.deepEqual(stats.endpoints.map((e) => e.address).sort(), backends.map((s) => s.address).sort());
  });

  it('bad apple: one of 3 backends answers UNAVAILABLE to everything; >= 99.9% of 1000 calls succeed (defaults)', async (t) => {
    const good = await h.servers.startMany('good-', 2);
    const bad = await h.servers.start('bad', { failCode: grpc.status.UNAVAILABLE });
    const mesh = h.mesh({
      services: { echo: { protocol: 'grpc', endpoints: [good[0].address, bad.address, good[1].address] } },
    });
    const client = h.client(mesh, 'echo');

    const outcomes = await runConcurrent(1000, 16, (i) => unary(client, { payload: `p${i}` }));
    const ok = outcomes.filter((o) => o.ok).length;
    t.diagnostic(`${ok} of 1000 calls succeeded; the bad backend got ${bad.count} attempts`);
    assert.ok(
      ok >= 999,
      `${ok} of 1000 calls succeeded (want >= 999): ${JSON.stringify(tallyOutcomes(outcomes))}; ${describeFailed(outcomes)}`,
    );
    assert.ok(bad.count >= 1, 'the bad backend was never tried: the test proves nothing');
    for (const o of outcomes) if (o.ok) assert.notEqual(o.reply.server, 'bad');
    const stats = mesh.stats().services.echo;
    assert.equal(stats.requests, 1000);
    assert.ok(stats.retries >= 1, `the UNAVAILABLE answers should have been retried (retries ${stats.retries})`);
    // The bad backend was taken out of rotation rather than tried on a large share of the calls.
    assert.ok(bad.count < 100, `the bad backend got ${bad.count} attempts`);
  });

  it('ring-hash on the x-user metadata key: the same key always lands on the same backend, keys spread', async () => {
    const backends = await h.servers.startMany('ring-', 5);
    const mesh = h.mesh({
      services: {
        profiles: {
          protocol: 'grpc',
          loadBalancer: 'ring-hash',
          hashKey: { header: 'x-user' },
          endpoints: backends.map((s) => s.address),
        },
      },
    });
    const client = h.client(mesh, 'profiles');
    const keys = Array.from({ length: 100 }, (_, i) => `user-${i}`);

    const placement = async (): Promise<string[]> => {
      const outcomes = await runConcurrent(keys.length, 8, (i) => {
        const metadata = new grpc.Metadata();
        metadata.set('x-user', keys[i]);
        return unary(client, { payload: keys[i] }, { metadata });
      });
      assert.deepEqual(tallyOutcomes(outcomes), { ok: keys.length }, describeFailed(outcomes));
      return outcomes.map((o) => (o.ok ? o.reply.server : ''));
    };
    const rounds = [await placement(), await placement(), await placement()];
    for (let i = 0; i < keys.length; i++) {
      assert.equal(rounds[1][i], rounds[0][i], `${keys[i]} moved between rounds 1 and 2`);
      assert.equal(rounds[2][i], rounds[0][i], `${keys[i]} moved between rounds 1 and 3`);
    }
    const used = new Set(rounds[0]);
    assert.ok(used.size >= 4, `100 keys landed on only ${used.size} of 5 backends`);
    // Every server saw the key it was picked for in the call's metadata.
    for (const s of backends) {
      for (const c of s.calls) assert.match(String(c.metadata.get('x-user')[0]), /^user-\d+$/);
    }
  });

  it('routes match the gRPC method path and metadata headers', async () => {
    const v1 = await h.servers.start('route-v1');
    const v2 = await h.servers.start('route-v2');
    const canary = await h.servers.start('route-canary');
    const mesh = h.mesh({
      services: {
        echo: {
          protocol: 'grpc',
          routes: [
            { match: { headers: { 'x-canary': 'yes' } }, backends: [{ service: 'echo-canary' }] },
            { match: { path: '/meshlet.test.Echo/Unary' }, backends: [{ service: 'echo-v2' }] },
            { match: { pathPrefix: '/meshlet.test.Echo/' }, backends: [{ service: 'echo-v1' }] },
          ],
        },
        'echo-v1': { protocol: 'grpc', endpoints: [v1.address] },
        'echo-v2': { protocol: 'grpc', endpoints: [v2.address] },
        'echo-canary': { protocol: 'grpc', endpoints: [canary.address] },
      },
    });
    const client = h.client(mesh, 'echo');

    const u = await unary(client, { payload: 'u' });
    assert.ok(u.ok && u.reply.server === 'route-v2', u.ok ? u.reply.server : u.error.details);
    const cs = await clientStream(client, ['c']);
    assert.ok(cs.ok && cs.reply.server === 'route-v1', cs.ok ? cs.reply.server : cs.error.details);
    const metadata = new grpc.Metadata();
    metadata.set('x-canary', 'yes');
    const c = await unary(client, { payload: 'c' }, { metadata });
    assert.ok(c.ok && c.reply.server === 'route-canary', c.ok ? c.reply.server : c.error.details);
    assert.equal(mesh.stats().services['echo-v2'].requests, 1);
    assert.equal(mesh.stats().services['echo-v1'].requests, 1);
    assert.equal(mesh.stats().services['echo-canary'].requests, 1);
  });
});

describe('gRPC transport faults', () => {
  const h = new GrpcHarness();
  const fronts: DualPort[] = [];
  after(async () => {
    await h.close();
    await Promise.all(fronts.map((f) => f.close()));
  });

  it('an endpoint refusing connections: every call succeeds elsewhere, the endpoint leaves the rotation', async () => {
    const good = await h.servers.start('alive');
    const dead = await deadAddress();
    const mesh = h.mesh({ services: { echo: { protocol: 'grpc', endpoints: [dead, good.address] } } });
    const client = h.client(mesh, 'echo');

    const outcomes = await runConcurrent(200, 4, (i) => unary(client, { payload: `p${i}` }));
    assert.deepEqual(tallyOutcomes(outcomes), { ok: 200 }, describeFailed(outcomes));
    assert.equal(good.count, 200);
    const stats = mesh.stats().services.echo;
    assert.ok(stats.retries >= 1, 'the refused attempts should have been retried');
    assert.ok(stats.retries < 50, `${stats.retries} retries: the dead endpoint stayed in rotation`);
    const deadRow = stats.endpoints.find((e) => e.address === dead);
    assert.ok(deadRow, 'the dead endpoint is still listed');
  });

  it('one of 3 backends dies while 8 callers run: no call started after it fails', async () => {
    const backends = await h.servers.startMany('kill-', 3, { sleepMs: 2 });
    // Each backend behind a TCP front: closing the front is the process dying, as its clients see it.
    for (const b of backends) fronts.push(await new DualPort(b.port, b.port).listen());
    const mesh = h.mesh({ services: { echo: { protocol: 'grpc', endpoints: fronts.map((f) => f.address) } } });
    const client = h.client(mesh, 'echo');

    const outcomes: GrpcOutcome[] = [];
    const startedAfterKill: GrpcOutcome[] = [];
    let killed = false;
    let stop = false;
    const load = Promise.all(
      Array.from({ length: 8 }, async (_, w) => {
        for (let i = 0; !stop; i++) {
          const late = killed;
          const o = await unary(client, { payload: `w${w}-${i}` });
          outcomes.push(o);
          if (late) startedAfterKill.push(o);
        }
      }),
    );
    await sleep(300); // traffic on every backend before the kill
    const victim = backends[1];
    // On a loaded machine 300 ms may not be enough for the channels to connect: wait for it.
    await waitFor('the victim to get traffic before it is killed', () => victim.count > 0, 10_000, 5);
    await fronts[1].close();
    killed = true;
    await waitFor('200 calls after the death', () => startedAfterKill.length >= 200, 10_000, 5);
    stop = true;
    await load;

    // Calls started after the death: none fails (an attempt on the dead endpoint fails before any
    // response and is retried on another one).
    assert.deepEqual(
      tallyOutcomes(startedAfterKill),
      { ok: startedAfterKill.length },
      describeFailed(startedAfterKill),
    );
    // Calls in flight at the death: one whose response message had already arrived is committed
    // (A44) and surfaces the dropped connection; at most the 8 in flight, each UNAVAILABLE.
    const failed = outcomes.filter((o) => !o.ok);
    assert.ok(failed.length <= 8, `${failed.length} calls failed: ${describeFailed(failed)}`);
    for (const f of failed) assert.equal(f.ok ? -1 : f.code, grpc.status.UNAVAILABLE, describeFailed([f]));
    assert.ok(startedAfterKill.every((o) => o.ok && o.reply.server !== victim.id));
  });

  it('a backend that never answers, with perTryMs: every call succeeds on the other backend', async () => {
    const hang = await h.servers.start('hang', { sleepMs: 60_000 });
    const good = await h.servers.start('answers');
    const mesh = h.mesh({
      services: {
        echo: {
          protocol: 'grpc',
          loadBalancer: 'round-robin',
          endpoints: [hang.address, good.address],
          // 1 s per try: the answering backend's reply must come within one, and a stalled loaded
          // machine was seen to delay an in-process reply past 100 ms.
          timeout: { requestMs: 5000, perTryMs: 1000 },
        },
      },
    });
    const client = h.client(mesh, 'echo');

    const outcomes = await runConcurrent(6, 3, (i) => unary(client, { payload: `p${i}` }));
    assert.deepEqual(tallyOutcomes(outcomes), { ok: 6 }, describeFailed(outcomes));
    for (const o of outcomes) assert.ok(o.ok && o.reply.server === 'answers');
    assert.ok(hang.count >= 1, 'round-robin should have tried the hanging backend');
    // The attempts cut by the per-try timeout were cancelled at the server, not left running.
    await waitFor('every attempt cut by perTryMs to be cancelled at the server (not left running)', () =>
      hang.calls.every((c) => c.cancelled),
    );
  });
});
