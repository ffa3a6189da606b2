// Scenario: the mesh's own errors reach a grpc-js caller as the status code a grpc-js user expects,
// with details that start with the meshlet code and name the service, the method and what to do.
// - meshlet:///nope (no such service): UNAVAILABLE at once, meshletCode MESHLET_ERR_UNKNOWN_SERVICE;
// - every endpoint ejected or with an open breaker: UNAVAILABLE naming service, method and states;
// - overload (the service's concurrency limit full): RESOURCE_EXHAUSTED;
// - two meshes in one process never see each other's services or endpoints.
import { after, describe, it } from 'node:test';
import assert from 'node:assert/strict';
import * as grpc from '@grpc/grpc-js';
import { MeshError, NoHealthyEndpointsError } from '@meshlet/core';
import { runConcurrent } from './helpers/load.ts';
import { clientStream, describeFailed, tallyOutcomes, unary, type MeshServiceError } from './fixtures/grpc/client.ts';
import { GrpcHarness } from './fixtures/grpc/harness.ts';

describe('gRPC errors', () => {
  const h = new GrpcHarness();
  after(() => h.close());

  it('meshlet:///nope fails at once with UNAVAILABLE and MESHLET_ERR_UNKNOWN_SERVICE, not a hang', async () => {
    const known = await h.servers.start('known');
    const mesh = h.mesh({ services: { echo: { protocol: 'grpc', endpoints: [known.address] } } });
    const client = h.client(mesh, 'nope');

    // A hang would end with this deadline's DEADLINE_EXCEEDED instead.
    const o = await unary(client, { payload: 'x' }, { deadline: Date.now() + 3000 });
    assert.ok(!o.ok);
    const err = o.error as MeshServiceError;
    assert.equal(err.code, grpc.status.UNAVAILABLE, `got ${err.code} ${err.details}`);
    assert.equal(err.meshletCode, 'MESHLET_ERR_UNKNOWN_SERVICE');
    assert.match(err.details, /^MESHLET_ERR_UNKNOWN_SERVICE/);
    assert.match(err.details, /"nope"/);
    assert.ok(err.cause instanceof MeshError, 'the status carries the MeshError as cause');
    assert.ok(o.ms < 2000, `took ${Math.round(o.ms)} ms`);
    // Streaming calls too.
    const cs = await clientStream(client, ['a', 'b'], { deadline: Date.now() + 3000 });
    assert.ok(!cs.ok);
    assert.equal(cs.code, grpc.status.UNAVAILABLE);
    assert.equal((cs.error as MeshServiceError).meshletCode, 'MESHLET_ERR_UNKNOWN_SERVICE');
    assert.equal(known.count, 0);
  });

  it('every endpoint ejected or open: UNAVAILABLE naming the service, the method and the endpoint states', async () => {
    const down = await h.servers.startMany('down-', 3, { failCode: grpc.status.UNAVAILABLE });
    const mesh = h.mesh({
      services: {
        routeguide: {
          protocol: 'grpc',
          endpoints: down.map((s) => s.address),
          circuitBreaker: { consecutiveFailures: 1 },
          outlierDetection: { consecutiveFailures: 1 },
        },
      },
    });
    const client = h.client(mesh, 'routeguide');

    let err: MeshServiceError | undefined;
    for (let i = 0; i < 30 && err === undefined; i++) {
      const o = await unary(client, { payload: `p${i}` });
      assert.ok(!o.ok, 'every backend is down');
      assert.equal(o.code, grpc.status.UNAVAILABLE);
      if ((o.error as MeshServiceError).meshletCode === 'MESHLET_ERR_NO_HEALTHY_ENDPOINTS') err = o.error;
    }
    assert.ok(err, 'after every endpoint failed once, a call should fail with MESHLET_ERR_NO_HEALTHY_ENDPOINTS');
    assert.match(err.details, /^MESHLET_ERR_NO_HEALTHY_ENDPOINTS: /);
    assert.match(err.details, /service "routeguide" method Unary\b/);
    assert.match(err.details, /no healthy endpoint among 3 /);
    assert.match(err.details, /\d+ ejected/);
    assert.match(err.details, /\d+ with an open circuit breaker/);
    assert.ok(err.cause instanceof NoHealthyEndpointsError);
    assert.equal(err.cause.total, 3);
    assert.equal(err.cause.ejected + err.cause.open + err.cause.halfOpen, 3, err.details);
  });

  it('overload: the concurrency limit full gives RESOURCE_EXHAUSTED', async () => {
    const slow = await h.servers.start('overload', { sleepMs: 300 });
    const mesh = h.mesh({
      services: {
        small: { protocol: 'grpc', endpoints: [slow.address], circuitBreaker: { maxRequests: 1, maxPending: 0 } },
      },
    });
    const client = h.client(mesh, 'small');

    const first = unary(client, { payload: 'first' });
    await slow.arrived(1);
    const second = await unary(client, { payload: 'second' });
    assert.ok(!second.ok);
    const err = second.error as MeshServiceError;
    assert.equal(err.code, grpc.status.RESOURCE_EXHAUSTED, `got ${err.code} ${err.details}`);
    assert.equal(err.meshletCode, 'MESHLET_ERR_OVERLOADED');
    assert.match(err.details, /service "small" method Unary/);
    const o = await first;
    assert.ok(o.ok, 'the call holding the slot succeeds');
    assert.equal(slow.count, 1, 'the refused call never reached the server');
  });

  it('two meshes in one process never see each other’s endpoints or services', async () => {
    const a = await h.servers.start('mesh-a');
    const b = await h.servers.start('mesh-b');
    const c = await h.servers.start('mesh-c');
    const meshA = h.mesh({ services: { echo: { protocol: 'grpc', endpoints: [a.address] } } });
    const meshB = h.mesh({
      services: {
        echo: { protocol: 'grpc', endpoints: [b.address] },
        'only-b': { protocol: 'grpc', endpoints: [b.address] },
      },
    });
    const clientA = h.client(meshA, 'echo');
    const clientB = h.client(meshB, 'echo');

    const run = async (servesA: string): Promise<void> => {
      const [oa, ob] = await Promise.all([
        runConcurrent(20, 4, (i) => unary(clientA, { payload: `a${i}` })),
        runConcurrent(20, 4, (i) => unary(clientB, { payload: `b${i}` })),
      ]);
      assert.deepEqual(tallyOutcomes(oa), { ok: 20 }, describeFailed(oa));
      assert.deepEqual(tallyOutcomes(ob), { ok: 20 }, describeFailed(ob));
      assert.deepEqual(new Set(oa.map((o) => o.ok && o.reply.server)), new Set([servesA]));
      assert.deepEqual(new Set(ob.map((o) => o.ok && o.reply.server)), new Set(['mesh-b']));
    };
    await run('mesh-a');
    // A service of mesh B is unknown to mesh A.
    const o = await unary(h.client(meshA, 'only-b'), { payload: 'x' });
    assert.ok(!o.ok);
    assert.equal((o.error as MeshServiceError).meshletCode, 'MESHLET_ERR_UNKNOWN_SERVICE');
    // Updating mesh A moves only mesh A's calls.
    meshA.update({ services: { echo: { protocol: 'grpc', endpoints: [c.address] } } });
    const bBefore = b.count;
    await run('mesh-c');
    assert.equal(a.count, 20, 'mesh A still called its old endpoint after the update');
    assert.equal(c.count, 20);
    assert.equal(b.count, bBefore + 20);
  });
});
