// mesh.inbound.record → mesh.stats().inbound: per route and caller, bounded.
import { describe, it } from 'node:test';
import assert from 'node:assert/strict';
import { createMesh } from '../../src/mesh.js';
import { MAX_PAIRS } from '../../src/inbound/stats.js';
import {
  AggregationTemporality,
  InMemoryMetricExporter,
  MeterProvider,
  PeriodicExportingMetricReader,
} from '@opentelemetry/sdk-metrics';

function fakeClock() {
  let t = 1000;
  return { now: () => t, advance: (ms: number) => (t += ms) };
}

describe('inbound stats', () => {
  it('counts per route and caller: successes, failures (>= 500), cancelled (499), percentiles and rate', async () => {
    const clock = fakeClock();
    const mesh = createMesh({ services: {}, clock, statsWindowMs: 10_000 });
    const rec = (route: string, caller: string | undefined, status: number, ms: number) =>
      mesh.inbound.record({ method: 'GET', route, caller, status, durationMs: ms, metric: true });
    for (let i = 0; i < 8; i++) rec('/users/:id', 'web', 200, 10);
    rec('/users/:id', 'web', 404, 10);
    rec('/users/:id', 'web', 503, 100);
    rec('/users/:id', 'web', 499, 5);
    rec('/users/:id', undefined, 200, 1);
    rec('/orders', 'web', 504, 300);
    clock.advance(2000);
    const rows = mesh.stats().inbound;
    const web = rows.find((r) => r.route === '/users/:id' && r.caller === 'web')!;
    assert.equal(web.requests, 11);
    assert.equal(web.successes, 9);
    assert.equal(web.failures, 1);
    assert.equal(web.cancelled, 1);
    assert.equal(web.successRate, 0.9);
    assert.equal(web.recentRequests, 11);
    assert.ok(web.latencyMs.p50 >= 9 && web.latencyMs.p50 <= 11, String(web.latencyMs.p50));
    assert.ok(web.latencyMs.p99 >= 90, String(web.latencyMs.p99));
    assert.equal(web.rps, 11 / 2);
    assert.ok(rows.some((r) => r.route === '/users/:id' && r.caller === '(unknown)' && r.requests === 1));
    const orders = rows.find((r) => r.route === '/orders')!;
    assert.equal(orders.failures, 1);
    assert.equal(orders.successRate, 0);
    await mesh.close();
  });

  it(`holds at most ${MAX_PAIRS} (route, caller) pairs, folding the rest into (other)`, async () => {
    const mesh = createMesh({ services: {} });
    for (let i = 0; i < MAX_PAIRS + 500; i++) {
      mesh.inbound.record({ method: 'GET', route: `/r${i}`, caller: 'c', status: 200, durationMs: 1, metric: false });
    }
    const rows = mesh.stats().inbound;
    assert.equal(rows.length, MAX_PAIRS + 1);
    const other = rows.find((r) => r.route === '(other)')!;
    assert.equal(other.caller, '(other)');
    assert.equal(other.requests, 500);
    await mesh.close();
  });

  it('records http.server.request.duration with the same folded routes and callers, so its cardinality is bounded too', async () => {
    const exporter = new InMemoryMetricExporter(AggregationTemporality.CUMULATIVE);
    const reader = new PeriodicExportingMetricReader({ exporter, exportIntervalMillis: 60_000 });
    const meterProvider = new MeterProvider({ readers: [reader] });
    const mesh = createMesh({ services: {}, telemetry: { meterProvider } });
    for (let i = 0; i < MAX_PAIRS + 300; i++) {
      mesh.inbound.record({ method: 'GET', route: `/r${i}`, caller: 'web', status: 200, durationMs: 2, metric: true });
    }
    mesh.inbound.record({
      method: 'BREW',
      route: '/r0',
      caller: 'web',
      status: 503,
      durationMs: 2,
      metric: true,
      errorType: '503',
    });
    mesh.inbound.record({ method: 'GET', route: '/r1', caller: 'web', status: 200, durationMs: 2, metric: false });
    await reader.forceFlush();
    const metric = exporter
      .getMetrics()
      .flatMap((rm) => rm.scopeMetrics)
      .flatMap((sm) => sm.metrics)
      .find((m) => m.descriptor.name === 'http.server.request.duration')!;
    assert.ok(metric, 'the histogram was recorded');
    assert.equal(metric.descriptor.unit, 's');
    const points = metric.dataPoints as Array<{ attributes: Record<string, unknown>; value: { count: number } }>;
    const routes = new Set(points.map((p) => p.attributes['http.route']));
    assert.equal(routes.size, MAX_PAIRS + 1, 'every route past the cap is "(other)"');
    const other = points.find((p) => p.attributes['http.route'] === '(other)')!;
    assert.equal(other.value.count, 300);
    assert.equal(other.attributes['meshlet.caller'], '(other)');
    const total = points.reduce((a, p) => a + p.value.count, 0);
    assert.equal(total, MAX_PAIRS + 301, 'metric: false records no point');
    assert.equal(
      points.find((p) => p.attributes['http.route'] === '/r0' && p.attributes['http.request.method'] === 'GET')!.value
        .count,
      1,
    );
    const brew = points.find((p) => p.attributes['http.request.method'] === '_OTHER')!;
    assert.deepEqual(brew.attributes, {
      'http.request.method': '_OTHER',
      'http.route': '/r0',
      'http.response.status_code': 503,
      'meshlet.caller': 'web',
      'error.type': '503',
    });
    await mesh.close();
    await meterProvider.shutdown();
  });
});
