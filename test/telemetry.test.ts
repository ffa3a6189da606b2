// Scenario: with an OpenTelemetry SDK in the process, a mesh call records the duration histogram,
// one client span per logical call with one event per attempt, and sends W3C trace context.
import { after, before, describe, it } from 'node:test';
import assert from 'node:assert/strict';
import { setImmediate as tick } from 'node:timers/promises';
import { propagation, SpanKind } from '@opentelemetry/api';
import { W3CTraceContextPropagator } from '@opentelemetry/core';
import { MeterProvider, MetricReader, type DataPoint, type Histogram } from '@opentelemetry/sdk-metrics';
import {
  BasicTracerProvider,
  InMemorySpanExporter,
  SimpleSpanProcessor,
  type ReadableSpan,
} from '@opentelemetry/sdk-trace-base';
import { createMesh } from '@meshlet/core';
import { createMeshFetch } from '@meshlet/http';
import { ServerSet, type RecordedRequest, type TestServer } from './helpers/servers.ts';
import type { Mesh } from './helpers/load.ts';

/** A reader that exports nothing by itself: the test pulls with `collect()`. */
class PullReader extends MetricReader {
  protected override async onShutdown(): Promise<void> {}
  protected override async onForceFlush(): Promise<void> {}
}

const TRACEPARENT = /^00-([0-9a-f]{32})-([0-9a-f]{16})-[0-9a-f]{2}$/;

function traceIdOf(r: RecordedRequest): string {
  const header = r.headers.traceparent;
  assert.equal(typeof header, 'string', `no traceparent header on ${r.method} ${r.url}`);
  const m = TRACEPARENT.exec(header as string);
  assert.ok(m, `malformed traceparent: ${String(header)}`);
  return m[1];
}

describe('telemetry: metrics, spans and trace context', () => {
  const servers = new ServerSet();
  const spans = new InMemorySpanExporter();
  const tracerProvider = new BasicTracerProvider({ spanProcessors: [new SimpleSpanProcessor(spans)] });
  const reader = new PullReader();
  const meterProvider = new MeterProvider({ readers: [reader] });
  let plainServer: TestServer;
  let flaky: TestServer;
  let mesh: Mesh;
  let fetch: ReturnType<typeof createMeshFetch>;

  const clientSpans = (): ReadableSpan[] => spans.getFinishedSpans().filter((s) => s.kind === SpanKind.CLIENT);

  before(async () => {
    // What an SDK's start() does: the W3C propagator is the process-wide default.
    propagation.setGlobalPropagator(new W3CTraceContextPropagator());
    plainServer = await servers.start('plain', { latencyMs: 20 });
    // One endpoint whose first answer is 503: the retry goes to the same endpoint.
    flaky = await servers.start('flaky', { failFirst: 1 });
    mesh = createMesh({
      services: { users: { endpoints: [plainServer.address] }, flaky: { endpoints: [flaky.address] } },
      telemetry: { meterProvider, tracerProvider },
    });
    fetch = createMeshFetch(mesh);
  });

  after(async () => {
    await mesh?.close();
    await servers.closeAll();
    await meterProvider.shutdown();
    await tracerProvider.shutdown();
    propagation.disable();
  });

  it('a request records http.client.request.duration with the semconv attributes', async () => {
    const res = await fetch('http://users/profile/1');
    assert.equal(res.status, 200);
    await res.text();

    const { resourceMetrics, errors } = await reader.collect();
    assert.deepEqual(errors, []);
    const metrics = resourceMetrics.scopeMetrics.flatMap((s) => s.metrics);
    const duration = metrics.find((m) => m.descriptor.name === 'http.client.request.duration');
    assert.ok(duration, `no http.client.request.duration; got ${metrics.map((m) => m.descriptor.name).join(', ')}`);
    assert.equal(duration.descriptor.unit, 's');
    const points = duration.dataPoints as DataPoint<Histogram>[];
    const point = points.find(
      (p) => p.attributes['http.request.method'] === 'GET' && p.attributes['http.response.status_code'] === 200,
    );
    assert.ok(point, `no GET/200 point; attributes: ${JSON.stringify(points.map((p) => p.attributes))}`);
    const address = point.attributes['server.address'];
    assert.ok(address === 'users' || address === '127.0.0.1', `server.address = ${String(address)}`);
    const port = point.attributes['server.port'];
    assert.equal(typeof port, 'number', `server.port = ${String(port)}`);
    assert.ok(port === plainServer.port || port === 80, `server.port = ${String(port)}`);
    assert.equal(point.attributes['meshlet.service'], 'users', 'client latency can be grouped by service');
    assert.ok(point.value.count >= 1);
    // The server answers after 20 ms: recorded in seconds, the mean is 0.02..5 (in ms it would be >= 20).
    const mean = (point.value.sum ?? 0) / point.value.count;
    assert.ok(mean >= 0.015 && mean < 5, `mean duration ${mean} is not in seconds`);
  });

  it('one client span per logical request; the upstream gets a traceparent with its trace id', async () => {
    spans.reset();
    plainServer.reset();
    const res = await fetch('http://users/profile/2');
    await res.text();
    await tick();

    const finished = clientSpans();
    assert.equal(finished.length, 1, `expected 1 client span, got ${finished.length}`);
    const span = finished[0];
    assert.ok(span.events.length >= 1, 'the attempt should be recorded as a span event');
    assert.equal(plainServer.count, 1);
    assert.equal(traceIdOf(plainServer.requests[0]), span.spanContext().traceId);
  });

  it('a retried request is one span with an event per attempt, all attempts in the same trace', async () => {
    spans.reset();
    plainServer.reset();
    const single = await fetch('http://users/profile/3');
    await single.text();
    await tick();
    const [singleSpan] = clientSpans();
    assert.ok(singleSpan, 'no span for the single-attempt request');

    spans.reset();
    const res = await fetch('http://flaky/item');
    assert.equal(res.status, 200);
    assert.equal(await res.text(), 'flaky');
    await tick();

    assert.equal(flaky.count, 2, 'the 503 should have been retried once');
    const finished = clientSpans();
    assert.equal(finished.length, 1, `expected 1 client span for the retried request, got ${finished.length}`);
    const span = finished[0];
    assert.ok(span.events.length >= 2, `expected an event per attempt, got ${span.events.length}`);
    assert.ok(
      span.events.length >= singleSpan.events.length + 1,
      `retried span has ${span.events.length} events, single-attempt span ${singleSpan.events.length}`,
    );
    const traceId = span.spanContext().traceId;
    for (const r of flaky.requests) assert.equal(traceIdOf(r), traceId);
    assert.equal(mesh.stats().services.flaky.retries, 1);
  });

  it('counts retries, budget refusals, ejections and breaker transitions', async () => {
    const down = await servers.start('down', { status: 503 });
    const spare = await servers.start('spare');
    const quiet = { circuitBreaker: { enabled: false }, outlierDetection: { enabled: false } };
    mesh.update({
      services: {
        users: { endpoints: [plainServer.address] },
        flaky: { endpoints: [flaky.address] },
        // One failing endpoint, a budget of one retry: one retry sent, the next refused.
        budget: { endpoints: [down.address], retry: { budget: { ratio: 0, minPerSecond: 1 } }, ...quiet },
        // The failing endpoint's breaker opens on its first failure.
        breaker: {
          endpoints: [down.address, spare.address],
          loadBalancer: 'round-robin',
          circuitBreaker: { consecutiveFailures: 1 },
          outlierDetection: { enabled: false },
        },
        // The failing endpoint is ejected on its first failure.
        ejection: {
          endpoints: [down.address, spare.address],
          loadBalancer: 'round-robin',
          circuitBreaker: { enabled: false },
          outlierDetection: { consecutiveFailures: 1 },
        },
      },
    });
    await (await fetch('http://budget/x')).text();
    // Round robin over two endpoints: two calls put a first attempt on the failing one.
    for (let i = 0; i < 2; i++) await (await fetch('http://breaker/x')).text();
    for (let i = 0; i < 2; i++) await (await fetch('http://ejection/x')).text();

    const { resourceMetrics } = await reader.collect();
    const metrics = resourceMetrics.scopeMetrics.flatMap((m) => m.metrics);
    const total = (name: string, service: string, state?: string): number => {
      const m = metrics.find((x) => x.descriptor.name === name);
      assert.ok(m, `no ${name}; got ${metrics.map((x) => x.descriptor.name).join(', ')}`);
      return (m.dataPoints as Array<{ value: number; attributes: Record<string, unknown> }>)
        .filter((p) => p.attributes['meshlet.service'] === service)
        .filter((p) => state === undefined || p.attributes['meshlet.state'] === state)
        .reduce((sum, p) => sum + p.value, 0);
    };
    const stats = mesh.stats().services;
    assert.equal(stats.budget.retries, 1);
    assert.equal(total('meshlet.client.retries', 'budget'), 1);
    assert.equal(stats.budget.retriesSkippedByBudget, 1);
    assert.equal(total('meshlet.client.retry_budget.refusals', 'budget'), 1);
    assert.equal(total('meshlet.circuit_breaker.transitions', 'breaker', 'open'), 1);
    assert.equal(total('meshlet.outlier.ejections', 'ejection'), 1);
  });
});
