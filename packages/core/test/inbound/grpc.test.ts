// mesh.inbound.record({ protocol: 'grpc', … }): gRPC status codes in the inbound table and the
// rpc.server.call.duration histogram; HTTP records unchanged beside them.
import { describe, it } from 'node:test';
import assert from 'node:assert/strict';
import {
  AggregationTemporality,
  InMemoryMetricExporter,
  MeterProvider,
  PeriodicExportingMetricReader,
} from '@opentelemetry/sdk-metrics';
import { createMesh } from '../../src/mesh.js';
import { GRPC_STATUS_NAMES, grpcOutcome, grpcStatusName } from '../../src/inbound/grpc-status.js';
import { CANCELLED, FAILURE, MAX_PAIRS, SUCCESS } from '../../src/inbound/stats.js';
import { runWithInbound, currentInbound } from '../../src/inbound/context.js';

const ROUTE = '/routeguide.RouteGuide/GetFeature';

function fakeClock() {
  let t = 1000;
  return { now: () => t, advance: (ms: number) => (t += ms) };
}

type Point = { attributes: Record<string, unknown>; value: { count: number; sum: number } };

async function points(reader: PeriodicExportingMetricReader, exporter: InMemoryMetricExporter, name: string) {
  await reader.forceFlush();
  const metric = exporter
    .getMetrics()
    .at(-1)
    ?.scopeMetrics.flatMap((sm) => sm.metrics)
    .find((m) => m.descriptor.name === name);
  return metric;
}

describe('inbound gRPC records', () => {
  it('classifies every status code: CANCELLED cancelled; UNKNOWN, DEADLINE_EXCEEDED, INTERNAL, UNAVAILABLE, DATA_LOSS failures; the rest successes', () => {
    const expected: Record<string, number> = {
      OK: SUCCESS,
      CANCELLED: CANCELLED,
      UNKNOWN: FAILURE,
      INVALID_ARGUMENT: SUCCESS,
      DEADLINE_EXCEEDED: FAILURE,
      NOT_FOUND: SUCCESS,
      ALREADY_EXISTS: SUCCESS,
      PERMISSION_DENIED: SUCCESS,
      RESOURCE_EXHAUSTED: SUCCESS,
      FAILED_PRECONDITION: SUCCESS,
      ABORTED: SUCCESS,
      OUT_OF_RANGE: SUCCESS,
      UNIMPLEMENTED: SUCCESS,
      INTERNAL: FAILURE,
      UNAVAILABLE: FAILURE,
      DATA_LOSS: FAILURE,
      UNAUTHENTICATED: SUCCESS,
    };
    assert.equal(GRPC_STATUS_NAMES.length, 17);
    GRPC_STATUS_NAMES.forEach((name, code) => {
      assert.equal(grpcStatusName(code), name);
      assert.equal(grpcOutcome(code), expected[name], name);
    });
    // Outside the specification: read as UNKNOWN (a failure), named by number.
    assert.equal(grpcOutcome(17), FAILURE);
    assert.equal(grpcOutcome(-1), FAILURE);
    assert.equal(grpcStatusName(99), '99');
  });

  it('counts gRPC calls per method path and caller by status code, beside HTTP rows read as before', async () => {
    const clock = fakeClock();
    const mesh = createMesh({ services: {}, clock, statsWindowMs: 10_000 });
    const grpc = (caller: string | undefined, status: number, ms: number) =>
      mesh.inbound.record({
        protocol: 'grpc',
        method: 'POST',
        route: ROUTE,
        caller,
        status,
        durationMs: ms,
        metric: true,
      });
    for (let i = 0; i < 6; i++) grpc('web', 0, 10);
    grpc('web', 5, 10); // NOT_FOUND: the application's answer
    grpc('web', 8, 10); // RESOURCE_EXHAUSTED: idem
    grpc('web', 14, 100); // UNAVAILABLE
    grpc('web', 4, 300); // DEADLINE_EXCEEDED
    grpc('web', 1, 5); // CANCELLED
    grpc(undefined, 13, 1);
    // An HTTP 499 and 503 next to them keep their HTTP meaning; a gRPC 1 is not HTTP's 1xx.
    mesh.inbound.record({
      method: 'GET',
      route: '/users/:id',
      caller: 'web',
      status: 499,
      durationMs: 1,
      metric: true,
    });
    mesh.inbound.record({
      method: 'GET',
      route: '/users/:id',
      caller: 'web',
      status: 503,
      durationMs: 1,
      metric: true,
    });
    mesh.inbound.record({
      method: 'GET',
      route: '/users/:id',
      caller: 'web',
      status: 200,
      durationMs: 1,
      metric: true,
    });
    clock.advance(1000);
    const rows = mesh.stats().inbound;
    const web = rows.find((r) => r.route === ROUTE && r.caller === 'web')!;
    assert.equal(web.requests, 11);
    assert.equal(web.successes, 8);
    assert.equal(web.failures, 2);
    assert.equal(web.cancelled, 1);
    assert.equal(web.successRate, 0.8);
    const unknown = rows.find((r) => r.route === ROUTE && r.caller === '(unknown)')!;
    assert.equal(unknown.failures, 1);
    const http = rows.find((r) => r.route === '/users/:id')!;
    assert.deepEqual([http.successes, http.failures, http.cancelled], [1, 1, 1]);
    await mesh.close();
  });

  it('records rpc.server.call.duration with rpc.* attributes, error.type for non-OK, and folds methods past the cap', async () => {
    const exporter = new InMemoryMetricExporter(AggregationTemporality.CUMULATIVE);
    const reader = new PeriodicExportingMetricReader({ exporter, exportIntervalMillis: 3_600_000 });
    const meterProvider = new MeterProvider({ readers: [reader] });
    const mesh = createMesh({ services: {}, telemetry: { meterProvider } });
    const rec = (route: string, caller: string | undefined, status: number, metric = true) =>
      mesh.inbound.record({ protocol: 'grpc', method: 'POST', route, caller, status, durationMs: 250, metric });
    rec(ROUTE, 'web', 0);
    rec(ROUTE, 'web', 0);
    rec(ROUTE, 'web', 5);
    rec(ROUTE, undefined, 14);
    rec(ROUTE, 'web', 0, false);
    mesh.inbound.record({ method: 'GET', route: '/x', caller: 'web', status: 200, durationMs: 1, metric: true });
    const metric = (await points(reader, exporter, 'rpc.server.call.duration'))!;
    assert.ok(metric, 'the histogram was recorded');
    assert.equal(metric.descriptor.unit, 's');
    const pts = metric.dataPoints as Point[];
    assert.equal(pts.length, 3, 'HTTP requests go to http.server.request.duration, not here');
    const ok = pts.find((p) => p.attributes['rpc.grpc.status_code'] === 0)!;
    assert.deepEqual(ok.attributes, {
      'rpc.system': 'grpc',
      'rpc.service': 'routeguide.RouteGuide',
      'rpc.method': 'GetFeature',
      'rpc.grpc.status_code': 0,
      'meshlet.caller': 'web',
    });
    assert.equal(ok.value.count, 2, 'metric: false records no point');
    assert.equal(ok.value.sum, 0.5, 'seconds');
    assert.deepEqual(pts.find((p) => p.attributes['rpc.grpc.status_code'] === 5)!.attributes, {
      'rpc.system': 'grpc',
      'rpc.service': 'routeguide.RouteGuide',
      'rpc.method': 'GetFeature',
      'rpc.grpc.status_code': 5,
      'meshlet.caller': 'web',
      'error.type': 'NOT_FOUND',
    });
    assert.deepEqual(pts.find((p) => p.attributes['rpc.grpc.status_code'] === 14)!.attributes, {
      'rpc.system': 'grpc',
      'rpc.service': 'routeguide.RouteGuide',
      'rpc.method': 'GetFeature',
      'rpc.grpc.status_code': 14,
      'error.type': 'UNAVAILABLE',
    });
    const http = (await points(reader, exporter, 'http.server.request.duration'))!;
    assert.equal((http.dataPoints as Point[])[0]!.attributes['http.route'], '/x');

    // Past the table's cap, methods and callers fold into (other), in the metric too.
    for (let i = 0; i < MAX_PAIRS; i++) rec(`/pkg.S/M${i}`, 'web', 0);
    const folded = (await points(reader, exporter, 'rpc.server.call.duration'))!.dataPoints as Point[];
    const other = folded.find((p) => p.attributes['rpc.service'] === '(other)')!;
    assert.deepEqual(other.attributes, {
      'rpc.system': 'grpc',
      'rpc.service': '(other)',
      'rpc.method': '(other)',
      'rpc.grpc.status_code': 0,
      'meshlet.caller': '(other)',
    });
    await mesh.close();
    await meterProvider.shutdown();
  });

  it('runWithInbound passes arguments through, so adapters need no closure per call', () => {
    const ctx = { deadlineAt: 5, signal: undefined, caller: 'web' };
    const got = runWithInbound(ctx, (a: number, b: string) => `${a}${b}${currentInbound()?.caller}`, 1, 'x');
    assert.equal(got, '1xweb');
    assert.equal(currentInbound(), undefined);
  });
});
