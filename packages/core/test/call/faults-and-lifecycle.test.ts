// The engine's rules for whose fault a failure is, and for every lifecycle state a call can
// be in (preparing, queued, in flight while its service is removed, in flight while the mesh
// closes). Fake protocol, no sockets.
import { describe, it } from 'node:test';
import assert from 'node:assert/strict';
import { createMesh } from '../../src/mesh.js';
import { InvalidRequestError, MeshError } from '../../src/errors.js';
import type { Endpoint } from '../../src/endpoint.js';
import type { CallContext } from '../../src/types.js';
import {
  codeOf,
  fakeProtocol,
  get,
  hang,
  meshesClosedAfter,
  ok,
  type FakeReq,
  type FakeRes,
} from '../helpers/fake-protocol.js';

/** An undici-style local refusal: the caller's request is at fault. */
const localRefusal = (): Promise<FakeRes> =>
  Promise.reject(Object.assign(new Error('invalid header value'), { code: 'UND_ERR_INVALID_ARG' }));

function faultAwareProtocol(behaviour: (ep: Endpoint, signal: AbortSignal) => Promise<FakeRes>) {
  const p = fakeProtocol(behaviour);
  return {
    ...p,
    classifier: () => ({
      classifyResult: (res: FakeRes) => (res.status >= 500 ? 'failure' : 'success') as 'failure' | 'success',
      classifyError: (err: unknown) => {
        const code = (err as { code?: string }).code;
        if (code === 'UND_ERR_INVALID_ARG' || err instanceof InvalidRequestError) return 'invalid-request' as const;
        return code === 'ECONNREFUSED' ? ('retryable' as const) : ('failure' as const);
      },
    }),
  };
}

describe('faults land on the right party', () => {
  const make = meshesClosedAfter();

  it("a request the transport refuses locally fails with MESHLET_ERR_INVALID_REQUEST and never opens the endpoint's breaker", async () => {
    const mesh = make({ s: { endpoints: ['a:1'], circuitBreaker: { consecutiveFailures: 2 } } });
    const bad = faultAwareProtocol(localRefusal);
    for (let i = 0; i < 20; i++) {
      const err = await mesh.call('s', get(), bad).catch((e: unknown) => e);
      assert.ok(err instanceof InvalidRequestError, `got ${String(err)}`);
      assert.equal((err as MeshError).code, 'MESHLET_ERR_INVALID_REQUEST');
      assert.equal(((err as Error).cause as { code?: string }).code, 'UND_ERR_INVALID_ARG');
      assert.match((err as Error).message, /service "s"/);
    }
    const s = mesh.stats().services.s;
    assert.equal(s.failures, 0);
    assert.equal(s.invalidRequests, 20);
    assert.equal(s.retries, 0, 'a caller fault is never retried');
    assert.equal(s.endpoints[0].failures, 0);
    assert.equal(s.endpoints[0].state, 'healthy');
    assert.equal(s.endpoints[0].ewmaMs, 0, 'the EWMA saw nothing');
    // And the endpoint still serves.
    assert.equal((await mesh.call('s', get(), faultAwareProtocol(ok))).status, 200);
  });

  it("a transport cut while it waited on the caller's body reports a caller fault, whatever timer fired", async () => {
    const mesh = make({ s: { endpoints: ['a:1'], timeout: { requestMs: 1000, perTryMs: 30 } } });
    const stalledBody = faultAwareProtocol(
      (_ep, signal) =>
        new Promise((_, reject) =>
          signal.addEventListener('abort', () =>
            reject(new InvalidRequestError('s', 'the request body stream stalled', signal.reason)),
          ),
        ),
    );
    const err = await mesh.call('s', get(), stalledBody).catch((e: unknown) => e);
    assert.equal((err as MeshError).code, 'MESHLET_ERR_INVALID_REQUEST');
    const s = mesh.stats().services.s;
    assert.equal(s.endpoints[0].failures, 0);
    assert.equal(s.retries, 0);
  });

  it('an http call to a service configured for grpc is refused with MESHLET_ERR_UNSUPPORTED, before any attempt', async () => {
    const mesh = make({ g: { endpoints: ['a:1'], protocol: 'grpc' }, h: { endpoints: ['b:1'] } });
    const http = { ...fakeProtocol(ok), name: 'http' };
    const err = (await mesh.call('g', get(), http).catch((e: unknown) => e)) as MeshError;
    assert.equal(err.code, 'MESHLET_ERR_UNSUPPORTED');
    assert.match(err.message, /protocol "grpc"/);
    assert.equal(mesh.stats().services.g.endpoints[0].requests, 0);
    assert.equal((await mesh.call('h', get(), http)).status, 200);
    assert.equal(await codeOf(mesh.call('h', get(), { ...fakeProtocol(ok), name: 'grpc' })), 'MESHLET_ERR_UNSUPPORTED');
  });

  it('a caller abort is counted as cancelled, not as a failure of the service or the endpoint', async () => {
    const mesh = make({ s: { endpoints: ['a:1'] } });
    const ac = new AbortController();
    const p = mesh.call('s', get(), fakeProtocol(hang), ac.signal);
    setTimeout(() => ac.abort(new Error('caller gave up')), 10);
    await assert.rejects(p, /caller gave up/);
    // A non-Error reason reaches the caller as it was given.
    const ac2 = new AbortController();
    const p2 = mesh.call('s', get(), fakeProtocol(hang), ac2.signal);
    ac2.abort('plain reason');
    assert.equal(await p2.catch((e: unknown) => e), 'plain reason');
    const s = mesh.stats().services.s;
    assert.equal(s.cancelled, 2);
    assert.equal(s.failures, 0);
    assert.equal(s.endpoints[0].failures, 0);
  });
});

describe('deadlines and cancellation hold in every state', () => {
  it('holds while the protocol prepares the request (a body that never finishes buffering)', async () => {
    const mesh = createMesh({ services: { s: { endpoints: ['a:1'], timeout: { requestMs: 80 } } } });
    let sawAbort: unknown;
    const p = {
      ...fakeProtocol(ok),
      prepare: (_req: FakeReq, ctx: CallContext) => {
        ctx.onAbort((reason) => (sawAbort = reason));
        return new Promise<void>(() => {}); // never settles, ignores the abort
      },
    };
    const started = performance.now();
    assert.equal(await codeOf(mesh.call('s', get(), p)), 'MESHLET_ERR_DEADLINE');
    const took = performance.now() - started;
    assert.ok(took >= 70 && took < 1000, `ended after ${took} ms`);
    assert.equal((sawAbort as MeshError).code, 'MESHLET_ERR_DEADLINE', 'the protocol was told why');

    // The caller's abort ends the prepare step too.
    const ac = new AbortController();
    const pending = mesh.call('s', get(), p, ac.signal);
    ac.abort(new Error('stop'));
    await assert.rejects(pending, /stop/);

    // A prepare that fails is the request's fault.
    const failing = { ...fakeProtocol(ok), prepare: () => Promise.reject(new Error('body stream errored')) };
    assert.equal(await codeOf(mesh.call('s', get(), failing)), 'MESHLET_ERR_INVALID_REQUEST');
    const s = mesh.stats().services.s;
    assert.equal(s.endpoints[0].requests, 0, 'no attempt was sent');
    assert.equal(s.cancelled, 1);
    assert.equal(s.invalidRequests, 1);
    await mesh.close();
  });

  it('a call in flight on a service removed by update() still ends at its deadline; queued calls are refused', async () => {
    const mesh = createMesh({
      services: {
        s: { endpoints: ['a:1'], timeout: { requestMs: 100 }, circuitBreaker: { maxRequests: 1, maxPending: 5 } },
        t: { endpoints: ['b:1'] },
      },
    });
    const inFlight = codeOf(mesh.call('s', get(), fakeProtocol(hang)));
    const queued = mesh.call('s', get(), fakeProtocol(hang)).catch((e: unknown) => e);
    await new Promise((r) => setTimeout(r, 10));
    mesh.update({ services: { t: { endpoints: ['b:1'] } } });
    const q = (await queued) as MeshError;
    assert.equal(q.code, 'MESHLET_ERR_UNKNOWN_SERVICE');
    assert.match(q.message, /removed from the config/);
    const started = performance.now();
    assert.equal(await inFlight, 'MESHLET_ERR_DEADLINE');
    assert.ok(performance.now() - started < 1000);
    await mesh.close();
  });

  it('close() resolves within its grace period when a backend never answers, and the call fails with MESHLET_ERR_CLOSED', async () => {
    const mesh = createMesh({ services: { s: { endpoints: ['a:1'], timeout: { requestMs: 60_000 } } } });
    const call = codeOf(mesh.call('s', get(), fakeProtocol(hang)));
    await new Promise((r) => setTimeout(r, 5));
    const started = performance.now();
    await mesh.close({ graceMs: 100 });
    const took = performance.now() - started;
    assert.ok(took >= 90 && took < 2000, `close took ${took} ms`);
    assert.equal(await call, 'MESHLET_ERR_CLOSED');
    assert.equal(await codeOf(mesh.call('s', get(), fakeProtocol(ok))), 'MESHLET_ERR_CLOSED');
    assert.equal(mesh.stats().services.s.cancelled, 1);
  });

  it('close() lets calls in flight finish within the grace period', async () => {
    const mesh = createMesh({ services: { s: { endpoints: ['a:1'] } } });
    const slow = (ep: Endpoint): Promise<FakeRes> =>
      new Promise((resolve) => setTimeout(() => resolve({ status: 200, endpoint: ep.address }), 50));
    const call = mesh.call('s', get(), fakeProtocol(slow));
    await new Promise((r) => setTimeout(r, 5));
    await mesh.close({ graceMs: 5000 });
    assert.equal((await call).status, 200);
  });

  it('close() rejects a bad grace period with a config error naming it', async () => {
    const mesh = createMesh({ services: {} });
    await assert.rejects(mesh.close({ graceMs: -1 }), /graceMs/);
    await assert.rejects(mesh.close({ graceMs: 2 ** 31 }), /graceMs/);
    await mesh.close();
  });
});

describe('endpoint removal and scale', () => {
  it('tells listeners about every endpoint that left, after the update is in place', async () => {
    const mesh = createMesh({ services: { s: { endpoints: ['a:1', 'b:1'] }, t: { endpoints: ['b:1'] } } });
    const seen: Array<[string, string, boolean, boolean]> = [];
    mesh.subscribe({
      endpointRemoved: (svc, ep) => seen.push([svc, ep.address, ep.active, mesh.hasEndpoint(ep.address)]),
    });
    mesh.update({ services: { s: { endpoints: ['c:1'] }, t: { endpoints: ['b:1'] } } });
    assert.deepEqual(seen, [
      ['s', 'a:1', false, false],
      ['s', 'b:1', false, true], // t still lists b:1
    ]);
    seen.length = 0;
    // A removed service's endpoints leave too.
    mesh.update({ services: { s: { endpoints: ['c:1'] } } });
    assert.deepEqual(seen, [['t', 'b:1', false, false]]);
    await mesh.close();
  });

  it('updates to 10,000 endpoints and back keep every endpoint pickable and build no breaker circuits', async () => {
    const addresses = (base: number) => Array.from({ length: 10_000 }, (_, i) => `10.${base}.${i >> 8}.${i & 255}:80`);
    const mesh = createMesh({ services: { s: { endpoints: addresses(0) } } });
    mesh.update({ services: { s: { endpoints: addresses(1) } } });
    const seen = new Set<string>();
    for (let i = 0; i < 2000; i++) seen.add((await mesh.call('s', get(), fakeProtocol(ok))).endpoint);
    assert.ok(seen.size > 1000, `only ${seen.size} distinct endpoints picked`);
    for (const a of seen) assert.ok(a.startsWith('10.1.'), `picked a removed endpoint ${a}`);
    assert.equal(mesh.stats().services.s.endpoints.length, 10_000);
    await mesh.close();
  });
});
