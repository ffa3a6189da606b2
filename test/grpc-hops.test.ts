// Scenario: one trace across three hops in one process, with an in-memory span exporter:
// the test (inside a root span) calls `orders` over gRPC through mesh `front` → the orders gRPC
// server (meshServerInterceptors of mesh `orders`) handles it by calling the HTTP service `users`
// through createMeshFetch of mesh `orders` → users (a plain HTTP server that records headers).
// Checked: the gRPC client span, the gRPC server span and the HTTP client span share one trace id
// and each is the parent of the next; users received a traceparent naming the HTTP client span;
// the caller's name (meshlet-caller) reached each server.
import { after, before, describe, it } from 'node:test';
import assert from 'node:assert/strict';
import { context, propagation, SpanKind, trace } from '@opentelemetry/api';
import { AsyncLocalStorageContextManager } from '@opentelemetry/context-async-hooks';
import { W3CTraceContextPropagator } from '@opentelemetry/core';
import {
  BasicTracerProvider,
  InMemorySpanExporter,
  SimpleSpanProcessor,
  type ReadableSpan,
} from '@opentelemetry/sdk-trace-base';
import type { Mesh } from '@meshlet/core';
import { meshServerInterceptors } from '@meshlet/grpc';
import { createMeshFetch } from '@meshlet/http';
import { waitFor } from './fixtures/control.ts';
import { ServerSet, type TestServer } from './helpers/servers.ts';
import { unary, type EchoClient } from './fixtures/grpc/client.ts';
import { GrpcHarness } from './fixtures/grpc/harness.ts';
import type { GrpcTestServer } from './fixtures/grpc/servers.ts';

const TRACEPARENT = /^00-([0-9a-f]{32})-([0-9a-f]{16})-01$/;

describe('gRPC tracing: HTTP client → gRPC server → HTTP call, one trace', () => {
  const h = new GrpcHarness();
  const http = new ServerSet();
  const exporter = new InMemorySpanExporter();
  const tracerProvider = new BasicTracerProvider({ spanProcessors: [new SimpleSpanProcessor(exporter)] });
  const contextManager = new AsyncLocalStorageContextManager();
  let users: TestServer;
  let orders: GrpcTestServer;
  let front: Mesh;
  let client: EchoClient;

  before(async () => {
    // What an SDK's start() does: context manager, W3C propagator and tracer provider, process-wide.
    context.setGlobalContextManager(contextManager.enable());
    propagation.setGlobalPropagator(new W3CTraceContextPropagator());
    trace.setGlobalTracerProvider(tracerProvider);

    users = await http.start('users', { body: 'user-42' });
    const ordersMesh = h.mesh({
      service: 'orders',
      services: { users: { endpoints: [users.address] } },
      telemetry: { tracerProvider },
    });
    const fetch = createMeshFetch(ordersMesh);
    orders = await h.servers.start(
      'orders',
      {
        unary: async (req) => {
          const res = await fetch(`http://users/users/${req.payload}`);
          return { payload: `${res.status} ${await res.text()}` };
        },
      },
      { interceptors: meshServerInterceptors(ordersMesh) },
    );
    front = h.mesh({
      service: 'front',
      services: { orders: { protocol: 'grpc', endpoints: [orders.address] } },
      telemetry: { tracerProvider },
    });
    client = h.client(front, 'orders');
  });

  after(async () => {
    await h.close();
    await http.closeAll();
    await tracerProvider.shutdown();
    trace.disable();
    propagation.disable();
    context.disable();
  });

  it('the gRPC client, gRPC server and HTTP client spans share one trace, each parented on the previous', async () => {
    const tracer = tracerProvider.getTracer('test');
    const root = tracer.startSpan('test-root');
    const o = await context.with(trace.setSpan(context.active(), root), () => unary(client, { payload: '42' }));
    root.end();
    assert.ok(o.ok, o.ok ? '' : `${o.code} ${o.error.details}`);
    assert.equal(o.reply.payload, '200 user-42');
    assert.equal(o.reply.server, 'orders');
    const traceId = root.spanContext().traceId;

    // The server span ends once its status is written: poll until all four spans are exported.
    const spans = await waitFor('the spans of the trace', () => {
      const s = exporter.getFinishedSpans().filter((x) => x.spanContext().traceId === traceId);
      return s.length >= 4 ? s : undefined;
    });
    const describe = (): string =>
      JSON.stringify(
        exporter.getFinishedSpans().map((s) => ({
          name: s.name,
          kind: s.kind,
          traceId: s.spanContext().traceId,
          spanId: s.spanContext().spanId,
          parent: s.parentSpanContext?.spanId,
        })),
        null,
        1,
      );
    const one = (pred: (s: ReadableSpan) => boolean, what: string): ReadableSpan => {
      const found = spans.filter(pred);
      assert.equal(found.length, 1, `one ${what} span expected: ${describe()}`);
      return found[0];
    };
    const grpcClient = one((s) => s.kind === SpanKind.CLIENT && s.name === 'meshlet.test.Echo/Unary', 'gRPC client');
    const grpcServer = one((s) => s.kind === SpanKind.SERVER, 'gRPC server');
    const httpClient = one((s) => s.kind === SpanKind.CLIENT && s !== grpcClient, 'HTTP client');
    assert.equal(spans.length, 4, describe());

    assert.equal(
      grpcClient.parentSpanContext?.spanId,
      root.spanContext().spanId,
      'the gRPC client span continues the active span',
    );
    assert.equal(grpcServer.parentSpanContext?.spanId, grpcClient.spanContext().spanId, describe());
    assert.equal(httpClient.parentSpanContext?.spanId, grpcServer.spanContext().spanId, describe());
    assert.equal(grpcServer.attributes['rpc.system'], 'grpc');

    // The hops carried the context and the caller's name on the wire.
    const seen = orders.calls[0].metadata;
    const tp = TRACEPARENT.exec(String(seen.get('traceparent')[0]));
    assert.ok(tp, `the gRPC server got traceparent ${String(seen.get('traceparent')[0])}`);
    assert.equal(tp[1], traceId);
    assert.equal(tp[2], grpcClient.spanContext().spanId);
    assert.deepEqual(seen.get('meshlet-caller'), ['front']);
    const req = users.requests[0];
    const tpHttp = TRACEPARENT.exec(String(req.headers.traceparent));
    assert.ok(tpHttp, `users got traceparent ${String(req.headers.traceparent)}`);
    assert.equal(tpHttp[1], traceId);
    assert.equal(tpHttp[2], httpClient.spanContext().spanId);
    assert.equal(req.headers['meshlet-caller'], 'orders');
  });
});
