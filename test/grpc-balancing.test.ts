// Scenario: grpc-js clients on meshlet:/// targets are balanced by core's balancers over real
// grpc-js servers on loopback.
// - round-robin over 4 backends: 400 unary calls, each backend within ±10% of an even share;
// - bad apple: one of 3 backends answers UNAVAILABLE to everything; with the defaults (p2c-ewma,
//   retry on UNAVAILABLE, outlier detection) at least 99.9% of 1000 calls succeed;
// - ring-hash on the `x-user` metadata key: a key always lands on the same backend, keys spread.
import { after, describe, it } from 'node:test';
import assert from 'node:assert/strict';
import * as grpc from '@grpc/grpc-js';
import { runConcurrent } from './helpers/load.ts';
import { describeFailed, tallyOutcomes, unary } from './fixtures/grpc/client.ts';
import { GrpcHarness } from './fixtures/grpc/harness.ts';
import { totalCalls } from './fixtures/grpc/servers.ts';

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

  it('bad apple: one of 3 backends answers UNAVAILABLE to everything; >= 99.9% of 1000 calls succeed (defaults)', async () => {
    const good = await h.servers.startMany('good-', 2);
    const bad = await h.servers.start('bad', { failCode: grpc.status.UNAVAILABLE });
    const mesh = h.mesh({
      services: { echo: { protocol: 'grpc', endpoints: [good[0].address, bad.address, good[1].address] } },
    });
    const client = h.client(mesh, 'echo');

    const outcomes = await runConcurrent(1000, 16, (i) => unary(client, { payload: `p${i}` }));
    const ok = outcomes.filter((o) => o.ok).length;
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
});
