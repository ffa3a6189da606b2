// meshMiddleware beside OpenTelemetry's own http instrumentation (0.223): one server span (OTel's,
// enriched with http.route and meshlet.caller), one http.server.request.duration (OTel's, with
// the route meshlet found); and without that instrumentation, meshlet's span and metric.
// A file of its own: the instrumentation patches node:http for the whole process.
import { after, before, describe, it } from 'node:test';
import assert from 'node:assert/strict';
import { createRequire } from 'node:module';
import { createServer, type Server } from 'node:http';
import type { AddressInfo } from 'node:net';
import { setTimeout as sleep } from 'node:timers/promises';
import express from 'express';
import { request } from 'undici';
import { context, propagation, SpanKind, trace } from '@opentelemetry/api';
import { AsyncLocalStorageContextManager } from '@opentelemetry/context-async-hooks';
import { W3CTraceContextPropagator } from '@opentelemetry/core';
import { HttpInstrumentation } from '@opentelemetry/instrumentation-http';
import { BasicTracerProvider, InMemorySpanExporter, SimpleSpanProcessor } from '@opentelemetry/sdk-trace-base';
import { MeterProvider, MetricReader, type HistogramMetricData } from '@opentelemetry/sdk-metrics';
import { createMesh, type Mesh } from '@meshlet/core';
import { meshMiddleware } from '@meshlet/http/express';
import { eventually } from './helpers.js';

class TestReader extends MetricReader {
  protected override async onForceFlush(): Promise<void> {}
  protected override async onShutdown(): Promise<void> {}
}

context.setGlobalContextManager(new AsyncLocalStorageContextManager().enable());
propagation.setGlobalPropagator(new W3CTraceContextPropagator());
const exporter = new InMemorySpanExporter();
const tracerProvider = new BasicTracerProvider({ spanProcessors: [new SimpleSpanProcessor(exporter)] });
trace.setGlobalTracerProvider(tracerProvider);
const reader = new TestReader();
const meterProvider = new MeterProvider({ readers: [reader] });

const TRACE_ID = '0af7651916cd43dd8448eb211c80319c';
const PARENT_ID = 'b7ad6b7169203331';

/** Every `http.server.request.duration` metric collected, with the scope that recorded it. */
async function serverDurations(): Promise<Array<{ scope: string; metric: HistogramMetricData }>> {
  const { resourceMetrics } = await reader.collect();
  const out: Array<{ scope: string; metric: HistogramMetricData }> = [];
  for (const sm of resourceMetrics.scopeMetrics) {
    for (const m of sm.metrics) {
      if (m.descriptor.name === 'http.server.request.duration') {
        out.push({ scope: sm.scope.name, metric: m as HistogramMetricData });
      }
    }
  }
  return out;
}

async function startApp(mesh: Mesh, options?: { tracing?: boolean }): Promise<{ server: Server; base: string }> {
  const app = express();
  app.use(meshMiddleware(mesh, options));
  app.get('/users/:id', (req, res) => void res.json({ id: req.params.id }));
  const server = createServer(app);
  await new Promise<void>((resolve) => server.listen(0, '127.0.0.1', resolve));
  return { server, base: `http://127.0.0.1:${(server.address() as AddressInfo).port}` };
}

function stop(server: Server): Promise<void> {
  server.closeAllConnections();
  return new Promise((resolve) => server.close(() => resolve()));
}

const headers = { traceparent: `00-${TRACE_ID}-${PARENT_ID}-01`, 'meshlet-caller': 'edge' };

describe('without OpenTelemetry’s http instrumentation', () => {
  let mesh: Mesh;
  let app: { server: Server; base: string };
  before(async () => {
    mesh = createMesh({ services: {}, telemetry: { tracerProvider, meterProvider } });
    app = await startApp(mesh);
  });
  after(async () => {
    await stop(app.server);
    await mesh.close();
  });

  it('starts its own SERVER span and records http.server.request.duration itself', async () => {
    exporter.reset();
    const res = await request(`${app.base}/users/1`, { headers });
    assert.equal(res.statusCode, 200);
    await res.body.dump();
    const span = await eventually(
      () => exporter.getFinishedSpans().find((s) => s.kind === SpanKind.SERVER),
      'the server span',
    );
    assert.equal(span.instrumentationScope.name, '@meshlet/core');
    assert.equal(span.name, 'GET /users/:id');
    assert.equal(span.spanContext().traceId, TRACE_ID);
    const durations = await serverDurations();
    assert.equal(durations.length, 1);
    assert.equal(durations[0]!.scope, '@meshlet/core');
    const point = durations[0]!.metric.dataPoints.find((p) => p.attributes['http.route'] === '/users/:id');
    assert.ok(point, 'a point for the route');
    assert.equal(point.value.count, 1);
    assert.equal(point.attributes['meshlet.caller'], 'edge');
    assert.equal(point.attributes['http.response.status_code'], 200);
  });
});

describe('with OpenTelemetry’s http instrumentation active', () => {
  let mesh: Mesh;
  let app: { server: Server; base: string };
  const instrumentation = new HttpInstrumentation();
  before(async () => {
    instrumentation.setTracerProvider(tracerProvider);
    instrumentation.setMeterProvider(meterProvider);
    instrumentation.enable();
    // The instrumentation patches node:http when it is required after enable().
    createRequire(import.meta.url)('node:http');
    mesh = createMesh({ services: {}, telemetry: { tracerProvider, meterProvider } });
    app = await startApp(mesh);
  });
  after(async () => {
    await stop(app.server);
    await mesh.close();
    instrumentation.disable();
  });

  it('enriches OTel’s server span instead of starting a second one, and leaves the metric to it', async () => {
    exporter.reset();
    const before = (await serverDurations()).find((d) => d.scope === '@meshlet/core');
    const countBefore = before?.metric.dataPoints.reduce((n, p) => n + p.value.count, 0) ?? 0;
    const res = await request(`${app.base}/users/2`, { headers });
    assert.equal(res.statusCode, 200);
    await res.body.dump();
    const server = await eventually(() => {
      const s = exporter.getFinishedSpans().filter((x) => x.kind === SpanKind.SERVER);
      return s.length > 0 ? s : undefined;
    }, 'the server span');
    await sleep(50); // a second span, if there were one, would have ended by now too
    const servers = exporter.getFinishedSpans().filter((x) => x.kind === SpanKind.SERVER);
    assert.equal(servers.length, 1, `one server span, got ${servers.map((s) => s.instrumentationScope.name)}`);
    const span = server[0]!;
    assert.equal(span.instrumentationScope.name, '@opentelemetry/instrumentation-http');
    assert.equal(span.spanContext().traceId, TRACE_ID);
    assert.equal(span.parentSpanContext?.spanId, PARENT_ID);
    assert.equal(span.attributes['meshlet.caller'], 'edge');
    assert.equal(span.attributes['http.route'], '/users/:id');
    assert.equal(span.name, 'GET /users/:id');

    const durations = await serverDurations();
    const ours = durations.find((d) => d.scope === '@meshlet/core');
    const countAfter = ours?.metric.dataPoints.reduce((n, p) => n + p.value.count, 0) ?? 0;
    assert.equal(countAfter, countBefore, 'meshlet recorded no duration of its own');
    const otel = durations.find((d) => d.scope === '@opentelemetry/instrumentation-http');
    assert.ok(otel, 'OTel recorded the duration');
    const point = otel.metric.dataPoints.find((p) => p.attributes['http.route'] === '/users/:id');
    assert.ok(point, 'OTel’s metric carries the route meshlet found');
    assert.equal(point.value.count, 1);
    // The inbound stats are meshlet's own and still count it.
    const s = mesh.stats().inbound.find((e) => e.route === '/users/:id' && e.caller === 'edge');
    assert.equal(s?.requests, 1);
  });

  it('with tracing: false, still leaves the duration metric to OTel and touches no span', async () => {
    const quietMesh = createMesh({ services: {}, telemetry: { tracerProvider, meterProvider } });
    const quiet = await startApp(quietMesh, { tracing: false });
    try {
      exporter.reset();
      const ours = async () =>
        (await serverDurations())
          .filter((d) => d.scope === '@meshlet/core')
          .flatMap((d) => d.metric.dataPoints)
          .reduce((n, p) => n + p.value.count, 0);
      const before = await ours();
      const res = await request(`${quiet.base}/users/3`, { headers });
      assert.equal(res.statusCode, 200);
      await res.body.dump();
      const span = await eventually(
        () => exporter.getFinishedSpans().find((x) => x.kind === SpanKind.SERVER),
        'OTel’s server span',
      );
      assert.equal(span.attributes['meshlet.caller'], undefined);
      assert.equal(await ours(), before, 'meshlet recorded no duration of its own');
      assert.equal(quietMesh.stats().inbound.find((e) => e.route === '/users/:id')?.requests, 1);
    } finally {
      await stop(quiet.server);
      await quietMesh.close();
    }
  });
});
