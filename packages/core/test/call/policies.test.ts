// Per-call policies: a service speaking both protocols (each protocol's classifier gets its own
// retryOn tokens; both share the service's retry budget), and gRPC `methods` (the engine reads
// maxAttempts, backoff, perTryMs, requestMs and the classifier of the call's method: exact key,
// then `Service/*`, then the service's own). Fake protocols and fake timers, no sockets.
import { afterEach, describe, it } from 'node:test';
import assert from 'node:assert/strict';
import { fakeTime } from '../helpers/fake-time.js';
import { createMesh, type Mesh } from '../../src/mesh.js';
import type { Protocol } from '../../src/protocol.js';
import type { Endpoint } from '../../src/endpoint.js';
import { DeadlineExceededError, MeshError, UpstreamError } from '../../src/errors.js';
import { MAX_REMEMBERED, MethodPolicies, CallPolicy } from '../../src/call/policy.js';
import { validateServiceConfig } from '../../src/config/validate.js';

interface Req {
  /** gRPC: `pkg.Service/Method`; HTTP: the method. */
  method: string;
}
interface Res {
  status: string;
  endpoint: string;
}
type Answer = (ep: Endpoint, attempt: number, signal: AbortSignal) => Promise<Res>;

/**
 * A protocol named `name` whose classifier retries the statuses listed in the tokens it was
 * given (its default: `UNAVAILABLE` for grpc, `503` otherwise). `given` records those tokens.
 */
function named(name: string, answer: Answer, given: Array<string[] | undefined> = [], log: string[] = []) {
  const fallback = name === 'grpc' ? ['UNAVAILABLE'] : ['503'];
  const protocol: Protocol<Req, Res> = {
    name,
    durationMetric: `${name}.duration`,
    transport: (_req, ctx, ep) => {
      log.push(ep.address);
      return answer(ep, ctx.attempt, ctx.signal);
    },
    classifier: (retryOn) => {
      given.push(retryOn === undefined ? undefined : [...retryOn]);
      const retried = new Set(retryOn ?? fallback);
      return {
        classifyResult: (res) => (res.status === 'OK' ? 'success' : retried.has(res.status) ? 'retryable' : 'failure'),
        classifyError: () => 'failure',
      };
    },
    method: (r) => r.method,
    path: (r) => `/${r.method}`,
    header: () => undefined,
    replayable: () => true,
    discard: () => {},
    spanName: (r) => r.method,
    attemptAttributes: () => ({}),
    attemptStatus: (res) => res?.status ?? 'error',
  };
  return protocol;
}

const answer =
  (status: string): Answer =>
  (ep) =>
    Promise.resolve({ status, endpoint: ep.address });
/** Answers `first` to the first attempt of each call, then OK. */
const firstThenOk =
  (first: string): Answer =>
  (ep, attempt) =>
    Promise.resolve({ status: attempt === 1 ? first : 'OK', endpoint: ep.address });
const hang: Answer = (_ep, _attempt, signal) =>
  new Promise((_, reject) => signal.addEventListener('abort', () => reject(signal.reason)));

const meshes: Mesh[] = [];
function make(services: Parameters<typeof createMesh>[0]['services'], now: () => number = () => 0): Mesh {
  const m = createMesh({ services, clock: { now }, random: () => 0 });
  meshes.push(m);
  return m;
}
afterEach(async () => {
  await Promise.all(meshes.splice(0).map((m) => m.close({ graceMs: 0 })));
});

/** Runs one call (`start` makes it) and counts its attempts in the transport's `log`. */
async function attemptsOf(start: () => Promise<Res>, log: string[]): Promise<{ outcome: string; attempts: number }> {
  const before = log.length;
  let outcome: string;
  try {
    outcome = (await start()).status;
  } catch (err) {
    outcome = err instanceof MeshError ? err.code : String(err);
  }
  return { outcome, attempts: log.length - before };
}

describe('a service speaking both protocols', () => {
  const both = (extra: Record<string, unknown> = {}) => ({
    protocol: ['http', 'grpc'] as Array<'http' | 'grpc'>,
    endpoints: ['10.0.0.1:80', '10.0.0.2:80'],
    ...extra,
  });

  it('admits both protocols; each classifier gets only its own retryOn tokens', async () => {
    const mesh = make({ api: both({ retry: { retryOn: ['reset', '502', 'UNAVAILABLE', 'ABORTED'] } }) });
    const httpGiven: Array<string[] | undefined> = [];
    const grpcGiven: Array<string[] | undefined> = [];
    const log: string[] = [];
    const http = named('http', firstThenOk('502'), httpGiven, log);
    const grpc = named('grpc', firstThenOk('ABORTED'), grpcGiven, log);
    assert.deepEqual(await attemptsOf(() => mesh.call('api', { method: 'GET' }, http), log), {
      outcome: 'OK',
      attempts: 2,
    });
    assert.deepEqual(await attemptsOf(() => mesh.call('api', { method: 'a.B/C' }, grpc), log), {
      outcome: 'OK',
      attempts: 2,
    });
    assert.deepEqual(httpGiven, [['reset', '502']]);
    assert.deepEqual(grpcGiven, [['UNAVAILABLE', 'ABORTED']]);
    const s = mesh.stats().services.api;
    assert.equal(s.requests, 2);
    assert.equal(s.retries, 2);
  });

  it('gives a protocol with none of its tokens listed its default', async () => {
    const mesh = make({ api: both({ retry: { retryOn: ['reset'] } }) });
    const grpcGiven: Array<string[] | undefined> = [];
    const log: string[] = [];
    const grpc = named('grpc', firstThenOk('UNAVAILABLE'), grpcGiven, log);
    assert.deepEqual(await attemptsOf(() => mesh.call('api', { method: 'a.B/C' }, grpc), log), {
      outcome: 'OK',
      attempts: 2,
    });
    assert.deepEqual(grpcGiven, [undefined]);
  });

  it('shares one retry budget between the protocols', async () => {
    // ratio 0.5, no reserve, frozen clock: every call deposits half a retry.
    const mesh = make({ api: both({ retry: { budget: { ratio: 0.5, minPerSecond: 0 } } }) });
    const log: string[] = [];
    const http = named('http', answer('503'), [], log);
    const grpc = named('grpc', answer('UNAVAILABLE'), [], log);
    // HTTP: half a retry in the budget, refused.
    assert.deepEqual(await attemptsOf(() => mesh.call('api', { method: 'GET' }, http), log), {
      outcome: '503',
      attempts: 1,
    });
    // gRPC: its own half plus HTTP's make one retry. A budget per protocol would refuse it.
    assert.deepEqual(await attemptsOf(() => mesh.call('api', { method: 'a.B/C' }, grpc), log), {
      outcome: 'UNAVAILABLE',
      attempts: 2,
    });
    // (gRPC's third attempt was refused: nothing left.) HTTP again: 1.5 deposited, 1 spent by gRPC: refused.
    assert.deepEqual(await attemptsOf(() => mesh.call('api', { method: 'GET' }, http), log), {
      outcome: '503',
      attempts: 1,
    });
    const s = mesh.stats().services.api;
    assert.equal(s.retries, 1);
    assert.equal(s.retriesSkippedByBudget, 3);
  });

  it('a single-protocol service still refuses the other protocol, naming what it speaks', async () => {
    const mesh = make({
      g: { protocol: 'grpc', endpoints: ['10.0.0.1:80'] },
      h: { endpoints: ['10.0.0.1:80'] },
    });
    const err = await mesh.call('g', { method: 'GET' }, named('http', answer('OK'))).catch((e: unknown) => e);
    assert.equal((err as MeshError).code, 'MESHLET_ERR_UNSUPPORTED');
    assert.match((err as Error).message, /configured with protocol "grpc" but was called over http/);
    assert.match((err as Error).message, /\["http", "grpc"\] if it speaks both/);
    const err2 = await mesh.call('h', { method: 'a.B/C' }, named('grpc', answer('OK'))).catch((e: unknown) => e);
    assert.equal((err2 as MeshError).code, 'MESHLET_ERR_UNSUPPORTED');
    assert.equal((await mesh.call('g', { method: 'a.B/C' }, named('grpc', answer('OK')))).status, 'OK');
  });
});

describe('gRPC methods', () => {
  const rg = (extra: Record<string, unknown>) => ({
    protocol: 'grpc' as const,
    endpoints: ['10.0.0.1:80', '10.0.0.2:80'],
    retry: { budget: { ratio: 1000, minPerSecond: 1000 } },
    // Counting attempts: no endpoint may be ejected or opened by the failures.
    outlierDetection: { enabled: false },
    circuitBreaker: { enabled: false },
    ...extra,
  });

  it('retries a code on the method that lists it and not on another', async () => {
    const mesh = make({
      rg: rg({ methods: { 'rg.Guide/GetFeature': { retry: { retryOn: ['RESOURCE_EXHAUSTED'] } } } }),
    });
    const log: string[] = [];
    const grpc = named('grpc', firstThenOk('RESOURCE_EXHAUSTED'), [], log);
    assert.deepEqual(await attemptsOf(() => mesh.call('rg', { method: 'rg.Guide/GetFeature' }, grpc), log), {
      outcome: 'OK',
      attempts: 2,
    });
    assert.deepEqual(await attemptsOf(() => mesh.call('rg', { method: 'rg.Guide/ListFeatures' }, grpc), log), {
      outcome: 'RESOURCE_EXHAUSTED',
      attempts: 1,
    });
    // And the service default (UNAVAILABLE) is not retried on the method that replaced it.
    const unavailable = named('grpc', firstThenOk('UNAVAILABLE'), [], log);
    assert.deepEqual(await attemptsOf(() => mesh.call('rg', { method: 'rg.Guide/GetFeature' }, unavailable), log), {
      outcome: 'UNAVAILABLE',
      attempts: 1,
    });
    assert.deepEqual(await attemptsOf(() => mesh.call('rg', { method: 'rg.Guide/ListFeatures' }, unavailable), log), {
      outcome: 'OK',
      attempts: 2,
    });
  });

  it('reads maxAttempts per method: exact key, then Service/*, then the service’s own', async () => {
    const mesh = make({
      rg: rg({
        retry: { maxAttempts: 2, budget: { ratio: 1000, minPerSecond: 1000 } },
        methods: {
          'rg.Guide/Once': { retry: { maxAttempts: 1 } },
          'rg.Guide/*': { retry: { maxAttempts: 4 } },
        },
      }),
    });
    const log: string[] = [];
    const grpc = named('grpc', answer('UNAVAILABLE'), [], log);
    const attempts = async (method: string) =>
      (await attemptsOf(() => mesh.call('rg', { method }, grpc), log)).attempts;
    assert.equal(await attempts('rg.Guide/Once'), 1);
    assert.equal(await attempts('rg.Guide/Other'), 4);
    assert.equal(await attempts('rg.Other/Once'), 2, 'another gRPC service: the service’s own');
    assert.equal(await attempts('rg.Guide.X/Once'), 2, 'a package prefix is not a match');
    // A second call of each method (now remembered) gets the same answer.
    assert.equal(await attempts('rg.Guide/Other'), 4);
    assert.equal(await attempts('rg.Other/Once'), 2);
  });

  it('a config update takes effect on the next call', async () => {
    const mesh = make({ rg: rg({ methods: { 'rg.Guide/*': { retry: { maxAttempts: 1 } } } }) });
    const log: string[] = [];
    const grpc = named('grpc', answer('UNAVAILABLE'), [], log);
    assert.equal((await attemptsOf(() => mesh.call('rg', { method: 'rg.Guide/A' }, grpc), log)).attempts, 1);
    mesh.update({ services: { rg: rg({ methods: { 'rg.Guide/*': { retry: { maxAttempts: 3 } } } }) } });
    assert.equal((await attemptsOf(() => mesh.call('rg', { method: 'rg.Guide/A' }, grpc), log)).attempts, 3);
    mesh.update({ services: { rg: rg({}) } });
    assert.equal((await attemptsOf(() => mesh.call('rg', { method: 'rg.Guide/A' }, grpc), log)).attempts, 3);
  });

  it('keeps the compiled policies across an update that changes only endpoints', () => {
    const cfg = (endpoints: string[], maxAttempts = 2) =>
      rg({ endpoints, methods: { 'rg.Guide/*': { retry: { maxAttempts } } } });
    const mesh = make({ rg: cfg(['10.0.0.1:80']) });
    const svc = () =>
      (mesh as unknown as { services: Map<string, { policy: unknown; methods: unknown }> }).services.get('rg')!;
    const { policy, methods } = svc();
    mesh.update({ services: { rg: cfg(['10.0.0.1:80', '10.0.0.3:80']) } });
    assert.equal(svc().policy, policy);
    assert.equal(svc().methods, methods);
    mesh.update({ services: { rg: cfg(['10.0.0.1:80'], 3) } });
    assert.equal(svc().policy, policy, 'the service’s own policy did not change');
    assert.notEqual(svc().methods, methods);
  });

  it('HTTP calls to a service speaking both use the service’s own policy', async () => {
    const mesh = make({
      api: rg({
        protocol: ['grpc', 'http'],
        retry: { maxAttempts: 2, budget: { ratio: 1000, minPerSecond: 1000 } },
        methods: { 'rg.Guide/*': { retry: { maxAttempts: 5 } } },
      }),
    });
    const log: string[] = [];
    const http = named('http', answer('503'), [], log);
    assert.equal((await attemptsOf(() => mesh.call('api', { method: 'GET' }, http), log)).attempts, 2);
  });
});

describe('gRPC methods: deadlines', () => {
  const { now, advance } = fakeTime();

  it('a method’s requestMs sets its deadline, and the error names the method’s setting', async () => {
    const mesh = make(
      {
        rg: {
          protocol: 'grpc',
          endpoints: ['10.0.0.1:80'],
          timeout: { requestMs: 10_000 },
          methods: { 'rg.Guide/Fast': { timeout: { requestMs: 100 } } },
        },
      },
      now,
    );
    let settled = 'pending' as unknown;
    void mesh.call('rg', { method: 'rg.Guide/Fast' }, named('grpc', hang)).then(
      () => (settled = 'resolved'),
      (e: unknown) => (settled = e),
    );
    let other = 'pending' as unknown;
    void mesh.call('rg', { method: 'rg.Guide/Slow' }, named('grpc', hang)).then(
      () => (other = 'resolved'),
      (e: unknown) => (other = e),
    );
    await advance(99);
    assert.equal(settled as unknown, 'pending');
    await advance(1);
    assert.ok(settled instanceof DeadlineExceededError, String(settled));
    assert.equal(settled.timeoutMs, 100);
    assert.match(settled.message, /raise services\.rg\.methods\["rg\.Guide\/Fast"\]\.timeout\.requestMs/);
    assert.equal(other as unknown, 'pending', 'another method keeps the service’s 10 s');
    await advance(9_900);
    assert.ok(other instanceof DeadlineExceededError);
    assert.match(other.message, /raise services\.rg\.timeout\.requestMs/);
  });

  it('a method’s perTryMs cuts each attempt and retries it', async () => {
    const mesh = make(
      {
        rg: {
          protocol: 'grpc',
          endpoints: ['10.0.0.1:80', '10.0.0.2:80'],
          retry: { maxAttempts: 2, backoff: { baseMs: 0, maxMs: 0 } },
          timeout: { requestMs: 1000 },
          methods: { 'rg.Guide/*': { timeout: { perTryMs: 30 } } },
        },
      },
      now,
    );
    // Retry a per-try timeout, as the gRPC classifier does.
    const grpc = named('grpc', hang);
    const log: string[] = [];
    const perTry: Protocol<Req, Res> = {
      ...grpc,
      transport: (req, ctx, ep) => {
        log.push(ep.address);
        return grpc.transport(req, ctx, ep);
      },
      classifier: () => ({
        classifyResult: () => 'success',
        classifyError: (err) => ((err as MeshError).code === 'MESHLET_ERR_PER_TRY_TIMEOUT' ? 'retryable' : 'failure'),
      }),
    };
    let settled = 'pending' as unknown;
    void mesh.call('rg', { method: 'rg.Guide/A' }, perTry).then(
      () => (settled = 'resolved'),
      (e: unknown) => (settled = e),
    );
    await advance(29);
    assert.equal(log.length, 1);
    await advance(1);
    assert.equal(log.length, 2, 'the first attempt was cut at 30 ms and retried');
    await advance(30);
    assert.ok(settled instanceof UpstreamError, String(settled));
    const cause = settled.cause as MeshError;
    assert.equal(cause.code, 'MESHLET_ERR_PER_TRY_TIMEOUT');
    assert.match(
      cause.message,
      /timed out after 30 ms; raise services\.rg\.methods\["rg\.Guide\/\*"\]\.timeout\.perTryMs/,
    );
    // A call of another gRPC service in the same config has no per-try timeout.
    let other = 'pending' as unknown;
    void mesh.call('rg', { method: 'rg.Other/A' }, perTry).then(
      () => (other = 'resolved'),
      (e: unknown) => (other = e),
    );
    await advance(500);
    assert.equal(other as unknown, 'pending');
    await advance(500);
    assert.ok(other instanceof DeadlineExceededError);
  });
});

describe('MethodPolicies', () => {
  const resolved = validateServiceConfig('rg', {
    protocol: 'grpc',
    retry: { maxAttempts: 2 },
    methods: { 'a.B/C': { retry: { maxAttempts: 1 } }, 'a.B/*': { retry: { maxAttempts: 4 } } },
  });
  const own = new CallPolicy(resolved.policy);

  it('answers the same policy object for every call of a method', () => {
    const m = new MethodPolicies(resolved.methods!, own);
    assert.equal(m.get('a.B/C').maxAttempts, 1);
    assert.equal(m.get('a.B/D'), m.get('a.B/D'));
    assert.equal(m.get('a.B/D').key, 'a.B/*');
    assert.equal(m.get('x.Y/Z'), own);
    assert.equal(m.get('GET'), own);
  });

  it('stays correct past the number of methods it remembers', () => {
    const m = new MethodPolicies(resolved.methods!, own);
    for (let i = 0; i < MAX_REMEMBERED + 100; i++) {
      assert.equal(m.get(`a.B/M${i}`).maxAttempts, 4);
      assert.equal(m.get(`x.Y/M${i}`), own);
    }
    assert.equal(m.get('a.B/C').maxAttempts, 1);
    assert.ok((m as unknown as { byMethod: Map<string, unknown> }).byMethod.size <= MAX_REMEMBERED + 1);
  });
});
