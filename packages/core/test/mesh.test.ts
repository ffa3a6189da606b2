// The call engine over a fake protocol: no sockets, so each rule of the service tier is
// checked in isolation (admission, deadline room, avoidance, budget errors, routing, abort).
import { describe, it } from 'node:test';
import assert from 'node:assert/strict';
import { createMesh } from '../src/mesh.js';
import {
  codeOf,
  fakeProtocol,
  get,
  hang,
  meshesClosedAfter,
  ok,
  refused,
  type FakeReq,
  type FakeRes,
} from './helpers/fake-protocol.js';
import { MeshError, NoHealthyEndpointsError } from '../src/errors.js';

describe('mesh call engine', () => {
  const make = meshesClosedAfter();

  it('retries on another endpoint than the one that just failed', async () => {
    const log: string[] = [];
    // Health policies off: the failing endpoint would otherwise be ejected after 5 failures.
    const mesh = make({
      s: {
        endpoints: ['a:1', 'b:1'],
        loadBalancer: 'round-robin',
        circuitBreaker: { enabled: false },
        outlierDetection: { enabled: false },
      },
    });
    const p = fakeProtocol((ep) => (ep.address === log[0] && log.length === 1 ? refused() : ok(ep)), log);
    // 10 calls: within the budget's reserve of 10 retries.
    for (let i = 0; i < 10; i++) {
      log.length = 0;
      const res = await mesh.call('s', get(), p);
      assert.equal(log.length, 2, `attempts: ${log.join(' ')}`);
      assert.notEqual(
        log[0],
        log[1],
        `the retry went back to the endpoint that failed (iteration ${i}: ${log.join(' ')})`,
      );
      assert.equal(res.endpoint, log[1]);
    }
  });

  it('discards a retried response and returns the last one', async () => {
    const seen: FakeRes[] = [];
    const mesh = make({ s: { endpoints: ['a:1', 'b:1'], retry: { maxAttempts: 2 } } });
    const p = fakeProtocol(async (ep) => {
      const res = { status: seen.length === 0 ? 503 : 200, endpoint: ep.address };
      seen.push(res);
      return res;
    });
    const res = await mesh.call('s', get(), p);
    assert.equal(res.status, 200);
    assert.equal(seen[0].discarded, true);
    assert.equal(seen[1].discarded, undefined);
  });

  it('does not retry a request that is not replayable', async () => {
    const log: string[] = [];
    const mesh = make({ s: { endpoints: ['a:1', 'b:1'] } });
    const p = fakeProtocol(async (ep) => ({ status: 503, endpoint: ep.address }), log);
    const res = await mesh.call('s', { ...get(), replayable: false }, p);
    assert.equal(res.status, 503);
    assert.equal(log.length, 1);
  });

  it('starts no retry that cannot fit in the remaining deadline', async () => {
    const log: string[] = [];
    const mesh = make({
      s: {
        endpoints: ['a:1', 'b:1'],
        timeout: { requestMs: 200 },
        retry: { maxAttempts: 5, backoff: { baseMs: 1, maxMs: 1 } },
      },
    });
    // Every attempt takes ~120 ms then fails retryably: a second one cannot finish in 200 ms.
    const p = fakeProtocol(
      (ep) => new Promise((resolve) => setTimeout(() => resolve({ status: 503, endpoint: ep.address }), 120)),
      log,
    );
    const res = await mesh.call('s', get(), p);
    assert.equal(res.status, 503);
    assert.equal(log.length, 1, `attempts: ${log.length}`);
    assert.equal(mesh.stats().services.s.retriesSkippedByDeadline, 1);
  });

  it('ends a hung call at the deadline with MESHLET_ERR_DEADLINE', async () => {
    const mesh = make({ s: { endpoints: ['a:1'], timeout: { requestMs: 50 } } });
    const t0 = performance.now();
    assert.equal(await codeOf(mesh.call('s', get(), fakeProtocol(hang))), 'MESHLET_ERR_DEADLINE');
    assert.ok(performance.now() - t0 < 1000);
  });

  it('rejects overflow at once with MESHLET_ERR_OVERLOADED, and queues up to maxPending', async () => {
    const mesh = make({ s: { endpoints: ['a:1'], circuitBreaker: { maxRequests: 2, maxPending: 1 } } });
    const gates: Array<() => void> = [];
    const p = fakeProtocol(
      (ep) => new Promise((resolve) => gates.push(() => resolve({ status: 200, endpoint: ep.address }))),
    );
    const first = [mesh.call('s', get(), p), mesh.call('s', get(), p)];
    const queued = mesh.call('s', get(), p);
    assert.equal(await codeOf(mesh.call('s', get(), p)), 'MESHLET_ERR_OVERLOADED');
    assert.equal(mesh.stats().services.s.pending, 1);
    while (gates.length < 2) await new Promise((r) => setImmediate(r));
    gates.shift()!();
    await first[0];
    while (gates.length < 2) await new Promise((r) => setImmediate(r));
    for (const g of gates.splice(0)) g();
    assert.equal((await queued).status, 200);
    await first[1];
  });

  it('ends a queued call at its deadline', async () => {
    const mesh = make({
      s: { endpoints: ['a:1'], timeout: { requestMs: 50 }, circuitBreaker: { maxRequests: 1, maxPending: 5 } },
    });
    const running = codeOf(mesh.call('s', get(), fakeProtocol(hang)));
    assert.equal(await codeOf(mesh.call('s', get(), fakeProtocol(hang))), 'MESHLET_ERR_DEADLINE');
    assert.equal(await running, 'MESHLET_ERR_DEADLINE');
  });

  it('throws RetryBudgetExhaustedError when a failed attempt cannot be retried for budget', async () => {
    const mesh = make({
      s: {
        endpoints: ['a:1', 'b:1'],
        retry: { budget: { ratio: 0, minPerSecond: 0 } },
        circuitBreaker: { enabled: false },
        outlierDetection: { enabled: false },
      },
    });
    const err = await mesh.call('s', get(), fakeProtocol(refused)).catch((e: unknown) => e);
    assert.ok(err instanceof MeshError);
    assert.equal(err.code, 'MESHLET_ERR_BUDGET_EXHAUSTED');
    assert.match(err.message, /service "s"/);
    assert.equal((err.cause as { code: string }).code, 'ECONNREFUSED');
    assert.equal(mesh.stats().services.s.retriesSkippedByBudget, 1);
  });

  it('throws UpstreamError naming service and endpoint when every attempt fails', async () => {
    const mesh = make({ s: { endpoints: ['a:1', 'b:1'], retry: { maxAttempts: 2 } } });
    const err = await mesh.call('s', get(), fakeProtocol(refused)).catch((e: unknown) => e);
    assert.ok(err instanceof MeshError);
    assert.equal(err.code, 'MESHLET_ERR_UPSTREAM');
    assert.match(err.message, /service "s": 2 attempt\(s\) failed, the last on (a|b):1/);
  });

  it('names the states when no endpoint is healthy', async () => {
    const mesh = make({
      s: {
        endpoints: ['a:1', 'b:1'],
        circuitBreaker: { consecutiveFailures: 1 },
        outlierDetection: { enabled: false },
      },
    });
    const p = fakeProtocol(refused);
    await codeOf(mesh.call('s', get(), p));
    await codeOf(mesh.call('s', get(), p));
    const err = await mesh.call('s', get(), p).catch((e: unknown) => e);
    assert.ok(err instanceof MeshError);
    assert.equal(err.code, 'MESHLET_ERR_NO_HEALTHY_ENDPOINTS');
    assert.match(
      err.message,
      /no healthy endpoint among 2 \(0 ejected by outlier detection, 2 with an open circuit breaker/,
    );
    // What took them out: the most recent failure, so the reason survives the breakers opening.
    assert.match(err.message, /\. The last failure, on (a|b):1: connect ECONNREFUSED$/);
    assert.deepEqual(Object.keys((err as NoHealthyEndpointsError).lastFailure!), ['endpoint', 'reason']);
  });

  it('endpointAddresses lists a service’s endpoints as they are now, undefined for an unknown service', () => {
    const mesh = make({ s: { endpoints: ['a:1', 'b:1'] } });
    assert.deepEqual(mesh.endpointAddresses('s'), ['a:1', 'b:1']);
    assert.equal(mesh.endpointAddresses('nope'), undefined);
    mesh.update({ services: { s: { endpoints: ['b:1', 'c:1'] } } });
    assert.deepEqual(mesh.endpointAddresses('s')!.sort(), ['b:1', 'c:1']);
  });

  it('a failure answer is named by its status when no endpoint is healthy', async () => {
    const mesh = make({
      s: { endpoints: ['a:1'], circuitBreaker: { consecutiveFailures: 1 }, outlierDetection: { enabled: false } },
    });
    const p = fakeProtocol((ep) => Promise.resolve({ status: 500, endpoint: ep.address }));
    assert.equal((await mesh.call('s', get(), p)).status, 500);
    const err = await mesh.call('s', get(), p).catch((e: unknown) => e);
    assert.ok(err instanceof NoHealthyEndpointsError);
    assert.match(err.message, /\. The last failure, on a:1: it answered 500$/);
  });

  it('routes by path, prefix, method and header, first match wins', async () => {
    const mesh = make({
      front: {
        routes: [
          { name: 'exact', match: { path: '/x' }, backends: [{ service: 'one' }] },
          { name: 'prefix-post', match: { pathPrefix: '/api/', method: 'POST' }, backends: [{ service: 'two' }] },
          { name: 'regex', match: { headers: { 'x-v': { regex: '^v[3-9]$' } } }, backends: [{ service: 'three' }] },
        ],
        endpoints: ['front:1'],
      },
      one: { endpoints: ['one:1'] },
      two: { endpoints: ['two:1'] },
      three: { endpoints: ['three:1'] },
    });
    const p = fakeProtocol(ok);
    const to = async (req: FakeReq): Promise<string> => (await mesh.call('front', req, p)).endpoint;
    assert.equal(await to(get('/x?q=1')), 'one:1');
    assert.equal(await to(get('/x/y')), 'front:1');
    assert.equal(await to({ method: 'POST', path: '/api/v', headers: {} }), 'two:1');
    assert.equal(await to(get('/api/v')), 'front:1');
    assert.equal(await to(get('/z', { 'x-v': 'v4' })), 'three:1');
    assert.equal(await to(get('/z', { 'x-v': 'v2' })), 'front:1');
  });

  it('rejects with the caller signal reason when the caller aborts, and counts no endpoint failure', async () => {
    const mesh = make({ s: { endpoints: ['a:1'] } });
    const ac = new AbortController();
    const pending = mesh.call('s', get(), fakeProtocol(hang), ac.signal);
    setTimeout(() => ac.abort(new Error('caller gave up')), 10);
    await assert.rejects(pending, /caller gave up/);
    assert.equal(mesh.stats().services.s.endpoints[0].failures, 0);
  });

  it('fails calls to unknown services and after close with typed errors', async () => {
    const mesh = createMesh({ services: { s: { endpoints: ['a:1'] } } });
    assert.equal(await codeOf(mesh.call('nope', get(), fakeProtocol(ok))), 'MESHLET_ERR_UNKNOWN_SERVICE');
    await mesh.close();
    assert.equal(await codeOf(mesh.call('s', get(), fakeProtocol(ok))), 'MESHLET_ERR_CLOSED');
  });
});
