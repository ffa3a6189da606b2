// Provisional answers (`Protocol.provisional`): a call that goes on after its answer (a gRPC stream
// committed on its first message) has its endpoint's health, its success or failure in the stats
// and its span settled when the protocol reports its real end (`CallContext.reportOutcome`), not
// at the answer. Latency is recorded at the answer as for any call. Fake protocol, no sockets.
import { after, describe, it } from 'node:test';
import assert from 'node:assert/strict';
import { BasicTracerProvider, InMemorySpanExporter, SimpleSpanProcessor } from '@opentelemetry/sdk-trace-base';
import { SpanStatusCode } from '@opentelemetry/api';
import { createMesh, type Mesh } from '../../src/mesh.js';
import type { Protocol } from '../../src/protocol.js';
import type { CallContext } from '../../src/types.js';
import { fakeProtocol, get, ok, type FakeReq, type FakeRes } from '../helpers/fake-protocol.js';

/** Every 200 answer is provisional; each call's context is kept so the test can end it. */
function streaming(seen: CallContext[]): Protocol<FakeReq, FakeRes> {
  const base = fakeProtocol(ok);
  return {
    ...base,
    transport: (req, ctx, ep) => {
      seen.push(ctx);
      return base.transport(req, ctx, ep);
    },
    provisional: (res) => res.status === 200,
  };
}

describe('provisional answers', () => {
  const meshes: Mesh[] = [];
  const spans = new InMemorySpanExporter();
  const tracerProvider = new BasicTracerProvider({ spanProcessors: [new SimpleSpanProcessor(spans)] });
  after(async () => {
    await Promise.all(meshes.map((m) => m.close({ graceMs: 0 })));
    await tracerProvider.shutdown();
  });
  const make = (consecutiveFailures: number): Mesh => {
    const m = createMesh({
      services: {
        s: { endpoints: ['a:1', 'b:1'], loadBalancer: 'round-robin', outlierDetection: { consecutiveFailures } },
      },
      telemetry: { tracerProvider },
    });
    meshes.push(m);
    return m;
  };

  it('health, stats and span wait for reportOutcome; a failure then counts against the endpoint', async () => {
    const mesh = make(2);
    const seen: CallContext[] = [];
    spans.reset();
    // Round robin: a, b, a, b.
    for (let i = 0; i < 4; i++) assert.equal((await mesh.call('s', get(), streaming(seen))).status, 200);
    let stats = mesh.stats().services.s;
    // Answered, not yet ended: no success counted, no span ended, nothing against the endpoints.
    assert.deepEqual([stats.requests, stats.successes, stats.failures], [4, 0, 0]);
    assert.equal(spans.getFinishedSpans().length, 0, 'a span ended at the provisional answer');

    for (const ctx of seen) {
      if (ctx.endpoint!.address === 'a:1') ctx.reportOutcome(false, 'stream broke');
      else ctx.reportOutcome(true);
    }
    seen[0].reportOutcome(true); // at most once: ignored
    stats = mesh.stats().services.s;
    assert.deepEqual([stats.successes, stats.failures], [2, 2]);
    const a = stats.endpoints.find((e) => e.address === 'a:1')!;
    const b = stats.endpoints.find((e) => e.address === 'b:1')!;
    assert.equal(a.failures, 2);
    assert.equal(a.state, 'ejected', 'two failures in a row with consecutiveFailures 2');
    assert.deepEqual([b.failures, b.state], [0, 'healthy']);
    const ended = spans.getFinishedSpans();
    assert.equal(ended.length, 4);
    assert.deepEqual(
      ended.map((sp) => sp.status.code).sort(),
      [SpanStatusCode.UNSET, SpanStatusCode.UNSET, SpanStatusCode.ERROR, SpanStatusCode.ERROR].sort(),
    );
    assert.equal(ended.find((sp) => sp.status.code === SpanStatusCode.ERROR)!.status.message, 'stream broke');
  });

  it('a success and a cancellation end the span without an error and say nothing against the endpoint', async () => {
    const mesh = make(1);
    const seen: CallContext[] = [];
    spans.reset();
    await mesh.call('s', get(), streaming(seen));
    await mesh.call('s', get(), streaming(seen));
    seen[0].reportOutcome(true);
    seen[1].reportOutcome(undefined);
    const stats = mesh.stats().services.s;
    assert.deepEqual([stats.successes, stats.failures, stats.cancelled], [1, 0, 1]);
    for (const ep of stats.endpoints) assert.deepEqual([ep.failures, ep.state], [0, 'healthy']);
    assert.deepEqual(
      spans.getFinishedSpans().map((sp) => sp.status.code),
      [SpanStatusCode.UNSET, SpanStatusCode.UNSET],
    );
  });

  it('an answer that is not provisional is settled at once, and reportOutcome is a no-op', async () => {
    const mesh = make(1);
    const seen: CallContext[] = [];
    spans.reset();
    const base = streaming(seen);
    const final: Protocol<FakeReq, FakeRes> = { ...base, provisional: () => false };
    await mesh.call('s', get(), final);
    assert.equal(mesh.stats().services.s.successes, 1);
    assert.equal(spans.getFinishedSpans().length, 1);
    seen[0].reportOutcome(false, 'late');
    assert.equal(mesh.stats().services.s.failures, 0);
    for (const ep of mesh.stats().services.s.endpoints) assert.deepEqual([ep.failures, ep.state], [0, 'healthy']);
  });

  it('a provisional answer that comes after the deadline fails the call, and its span still ends', async () => {
    const m = createMesh({
      services: { s: { endpoints: ['a:1'], timeout: { requestMs: 50 } } },
      telemetry: { tracerProvider },
    });
    meshes.push(m);
    spans.reset();
    // The transport ignores the abort and answers 100 ms in, after the 50 ms deadline.
    const late: Protocol<FakeReq, FakeRes> = {
      ...fakeProtocol(
        (ep) => new Promise((resolve) => setTimeout(() => resolve({ status: 200, endpoint: ep.address }), 100)),
      ),
      provisional: () => true,
    };
    await assert.rejects(m.call('s', get(), late), { code: 'MESHLET_ERR_DEADLINE' });
    const stats = m.stats().services.s;
    assert.deepEqual([stats.successes, stats.failures], [0, 1]);
    assert.equal(spans.getFinishedSpans().length, 1, 'the failed call’s span never ended');
  });
});
