// The caller's own timeout (`Protocol.callerTimeoutMs`, e.g. a gRPC call's deadline option):
// it clamps the call's deadline like an inbound one, names itself in the error, and fails a call
// whose deadline has passed before any attempt. Fake protocol and fake timers, no sockets.
import { afterEach, describe, it } from 'node:test';
import assert from 'node:assert/strict';
import { fakeTime } from '../helpers/fake-time.js';
import { DeadlineExceededError } from '../../src/errors.js';
import { runWithInbound } from '../../src/inbound/context.js';
import type { Protocol } from '../../src/protocol.js';
import type { CallContext } from '../../src/types.js';
import { fakeProtocol, get, hang, ok, type FakeReq, type FakeRes } from '../helpers/fake-protocol.js';
import { createMesh, type Mesh } from '../../src/mesh.js';
import {
  AggregationTemporality,
  InMemoryMetricExporter,
  MeterProvider,
  PeriodicExportingMetricReader,
} from '@opentelemetry/sdk-metrics';

/** A fake protocol whose caller set a timeout of `ms` (undefined: none), recording each attempt's context. */
function withCallerTimeout(
  ms: number | undefined,
  behaviour: Parameters<typeof fakeProtocol>[0],
  seen: CallContext[] = [],
  log: string[] = [],
): Protocol<FakeReq, FakeRes> {
  const base = fakeProtocol(behaviour, log);
  return {
    ...base,
    transport: (req, ctx, ep) => {
      seen.push(ctx);
      return base.transport(req, ctx, ep);
    },
    callerTimeoutMs: () => ms,
  };
}

describe('the caller’s own timeout', () => {
  const { now, advance } = fakeTime();
  const meshes: Mesh[] = [];
  const make = (services: Parameters<typeof createMesh>[0]['services']): Mesh => {
    const m = createMesh({ services, clock: { now }, random: () => 0 });
    meshes.push(m);
    return m;
  };
  afterEach(async () => {
    await Promise.all(meshes.splice(0).map((m) => m.close({ graceMs: 0 })));
  });

  it('clamps the deadline when shorter than timeout.requestMs, and the error says it was the caller’s', async () => {
    const mesh = make({ s: { endpoints: ['a:1'], timeout: { requestMs: 15_000 } } });
    const seen: CallContext[] = [];
    let settled = 'pending' as unknown;
    const p = mesh.call('s', get(), withCallerTimeout(100, hang, seen)).then(
      () => (settled = 'resolved'),
      (e: unknown) => (settled = e),
    );
    await advance(0);
    assert.equal(seen.length, 1);
    assert.equal(seen[0].timeoutMs, 100);
    assert.equal(seen[0].deadline, 1100);
    await advance(99);
    assert.equal(settled as unknown, 'pending');
    await advance(1);
    await p;
    assert.ok(settled instanceof DeadlineExceededError, String(settled));
    assert.equal(settled.source, 'caller');
    assert.equal(settled.inherited, false);
    assert.equal(settled.timeoutMs, 100);
    assert.match(settled.message, /service "s": deadline of 100 ms, the caller's own deadline for this call/);
    assert.match(settled.message, /give the call a later deadline/);
    assert.equal(mesh.stats().services.s.failures, 1);
  });

  it('keeps the service’s own timeout when the caller’s is longer or absent', async () => {
    const mesh = make({ s: { endpoints: ['a:1'], timeout: { requestMs: 50 } } });
    for (const ms of [60_000, undefined]) {
      const seen: CallContext[] = [];
      const p = mesh.call('s', get(), withCallerTimeout(ms, hang, seen)).catch((e: unknown) => e);
      await advance(0);
      assert.equal(seen[0].timeoutMs, 50);
      await advance(50);
      const err = await p;
      assert.ok(err instanceof DeadlineExceededError);
      assert.equal(err.source, 'service');
      assert.match(err.message, /raise services\.s\.timeout\.requestMs/);
    }
  });

  it('fails at once, with no attempt, when the caller’s deadline has passed', async () => {
    const mesh = make({ s: { endpoints: ['a:1'] } });
    for (const ms of [0, -5]) {
      const log: string[] = [];
      const err = await mesh.call('s', get(), withCallerTimeout(ms, ok, [], log)).catch((e: unknown) => e);
      assert.ok(err instanceof DeadlineExceededError, String(err));
      assert.equal(err.source, 'caller');
      assert.equal(err.attempts, 0);
      assert.match(err.message, /the caller's own deadline for this call had already passed, so the call was not sent/);
      assert.deepEqual(log, [], 'the transport was never asked');
    }
    const s = mesh.stats().services.s;
    assert.equal(s.requests, 0);
    assert.equal(s.failures, 0, 'the caller’s spent deadline is not the service’s failure');
    assert.equal(s.cancelled, 2);
  });

  it('starts no retry that cannot fit in the caller’s deadline', async () => {
    const mesh = make({ s: { endpoints: ['a:1', 'b:1'], retry: { maxAttempts: 5 } } });
    const seen: CallContext[] = [];
    // Each attempt answers a retryable 503 after 40 ms; the caller allows 100 ms.
    const slow503 = (ep: { address: string }): Promise<FakeRes> =>
      new Promise((resolve) => setTimeout(resolve, 40, { status: 503, endpoint: ep.address }));
    const p = mesh.call('s', get(), withCallerTimeout(100, slow503, seen));
    for (let i = 0; i < 20; i++) await advance(10);
    const res = await p;
    assert.equal(res.status, 503, 'the last answer is the caller’s when no retry fits');
    // After two 40 ms attempts (no backoff: random() is 0), 20 ms are left: less than the
    // service's typical 40 ms latency, so the third is not started.
    assert.equal(seen.length, 2);
    assert.equal(mesh.stats().services.s.retriesSkippedByDeadline, 1);
  });

  it('the shorter of the inbound and the caller’s deadline wins', async () => {
    const mesh = make({ s: { endpoints: ['a:1'] } });
    const seen: CallContext[] = [];
    const inbound = { deadlineAt: performance.now() + 60_000, signal: undefined, caller: undefined };
    const p = runWithInbound(inbound, () => mesh.call('s', get(), withCallerTimeout(200, hang, seen))).catch(
      (e: unknown) => e,
    );
    await advance(0);
    assert.equal(seen[0].timeoutMs, 200);
    await advance(200);
    assert.equal(((await p) as DeadlineExceededError).source, 'caller');

    const seen2: CallContext[] = [];
    const short = { deadlineAt: performance.now() + 30, signal: undefined, caller: undefined };
    const p2 = runWithInbound(short, () => mesh.call('s', get(), withCallerTimeout(200, hang, seen2))).catch(
      (e: unknown) => e,
    );
    await advance(0);
    assert.ok(seen2[0].timeoutMs <= 30, `timeout ${seen2[0].timeoutMs}`);
    await advance(30);
    assert.equal(((await p2) as DeadlineExceededError).source, 'inbound');
  });
});

describe('Protocol.durationMetric', () => {
  it('undefined: the engine records no per-attempt point; defined: one point per attempt', async () => {
    const exporter = new InMemoryMetricExporter(AggregationTemporality.CUMULATIVE);
    const reader = new PeriodicExportingMetricReader({ exporter, exportIntervalMillis: 60_000 });
    const meterProvider = new MeterProvider({ readers: [reader] });
    const mesh = createMesh({ services: { s: { endpoints: ['a:1'] } }, telemetry: { meterProvider } });
    try {
      const { durationMetric: _omit, ...noMetric } = fakeProtocol(ok);
      let asked = 0;
      const counting: Protocol<FakeReq, FakeRes> = {
        ...noMetric,
        attemptAttributes: () => {
          asked++;
          return {};
        },
      };
      for (let i = 0; i < 3; i++) assert.equal((await mesh.call('s', get(), counting)).status, 200);
      assert.equal(asked, 0, 'no attributes built for a point that is not recorded');
      await mesh.call('s', get(), fakeProtocol(ok));
      await reader.forceFlush();
      const names = exporter
        .getMetrics()
        .flatMap((r) => r.scopeMetrics.flatMap((sm) => sm.metrics.map((m) => m.descriptor.name)));
      assert.deepEqual(
        names.filter((n) => n.endsWith('duration')),
        ['fake.duration'],
      );
    } finally {
      await mesh.close();
      await meterProvider.shutdown();
    }
  });
});
