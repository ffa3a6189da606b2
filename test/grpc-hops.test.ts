// Scenario: three hops in one process: the test calls `orders` over gRPC through mesh `front` →
// the orders gRPC server (meshServerInterceptors of mesh `orders`) handles it by calling `users`,
// over HTTP (createMeshFetch) or over gRPC (meshGrpcOptions), through mesh `orders` → users.
// - One trace (in-memory span exporter): the gRPC client span, the gRPC server span and the HTTP
//   client span share one trace id and each is the parent of the next; users received a
//   traceparent naming the HTTP client span; the caller's name (meshlet-caller) reached each server.
// - The caller's deadline crosses the gRPC hop: orders' outbound gRPC call to users (no deadline
//   of its own) is clamped to what is left of front's, front gets DEADLINE_EXCEEDED in time, and
//   users sees the call cancelled.
// - The caller's cancel crosses the gRPC hop: front cancels, users sees its call cancelled.
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
import * as grpc from '@grpc/grpc-js';
import type { Mesh } from '@meshlet/core';
import { meshServerInterceptors } from '@meshlet/grpc';
import { createMeshFetch } from '@meshlet/http';
import { waitFor } from './fixtures/control.ts';
import { withLag } from './helpers/lag.ts';
import { ServerSet, type TestServer } from './helpers/servers.ts';
import { unary, type EchoClient } from './fixtures/grpc/client.ts';
import { GrpcHarness } from './fixtures/grpc/harness.ts';
import type { GrpcTestServer } from './fixtures/grpc/servers.ts';

const TRACEPARENT = /^00-([0-9a-f]{32})-([0-9a-f]{16})-01$/;

describe('three hops: gRPC client → gRPC server → HTTP or gRPC call', () => {
  const h = new GrpcHarness();
  const http = new ServerSet();
  const exporter = new InMemorySpanExporter();
  const tracerProvider = new BasicTracerProvider({ spanProcessors: [new SimpleSpanProcessor(exporter)] });
  const contextManager = new AsyncLocalStorageContextManager();
  let users: TestServer;
  let usersGrpc: GrpcTestServer;
  let orders: GrpcTestServer;
  let front: Mesh;
  let client: EchoClient;

  before(async () => {
    // What an SDK's start() does: context manager, W3C propagator and tracer provider, process-wide.
    context.setGlobalContextManager(contextManager.enable());
    propagation.setGlobalPropagator(new W3CTraceContextPropagator());
    trace.setGlobalTracerProvider(tracerProvider);

    users = await http.start('users', { body: 'user-42' });
    usersGrpc = await h.servers.start('users-grpc');
    const ordersMesh = h.mesh({
      service: 'orders',
      services: {
        users: { endpoints: [users.address] },
        'users-grpc': { protocol: 'grpc', endpoints: [usersGrpc.address] },
      },
      telemetry: { tracerProvider },
    });
    const fetch = createMeshFetch(ordersMesh);
    const usersClient = h.client(ordersMesh, 'users-grpc');
    orders = await h.servers.start(
      'orders',
      {
        // `grpc:<sleepMs>` calls users over gRPC (with no deadline of its own), anything else over HTTP.
        unary: async (req) => {
          if (req.payload.startsWith('grpc:')) {
            const sleepMs = Number(req.payload.slice(5));
            return new Promise((resolve, reject) =>
              usersClient.Unary({ payload: 'via-orders', sleepMs }, new grpc.Metadata(), {}, (err, reply) =>
                err ? reject(err) : resolve({ payload: `grpc ${reply!.server}` }),
              ),
            );
          }
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
    assert.deepEqual(
      [grpcClient.attributes['rpc.system'], grpcClient.attributes['rpc.service'], grpcClient.attributes['rpc.method']],
      ['grpc', 'meshlet.test.Echo', 'Unary'],
      'the gRPC client span carries the rpc.* attributes',
    );

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

  it("front's deadline clamps orders' outbound gRPC call: DEADLINE_EXCEEDED in time, users sees the cancel", async () => {
    // Warm-up through both hops, on the success path and on the deadline path (the first pass
    // through code that is not yet compiled costs tens of ms, which is not what is measured here).
    assert.ok((await unary(client, { payload: 'grpc:1' })).ok, 'warm-up through both hops');
    const warm = await unary(client, { payload: 'grpc:1000' }, { deadline: Date.now() + 50 });
    assert.ok(!warm.ok && warm.code === grpc.status.DEADLINE_EXCEEDED);
    await waitFor('the warm-up call to end at users', () => usersGrpc.calls.every((c) => c.finished || c.cancelled));
    usersGrpc.reset();
    const deadline = Date.now() + 200;
    // Every hop runs in this process: a late event loop delays each timer and each hop alike, so
    // its worst delay during the call is added to the bounds (see helpers/lag.ts).
    const { value: o, lagMs } = await withLag(() => unary(client, { payload: 'grpc:1000' }, { deadline }));
    assert.ok(!o.ok, 'the call should fail');
    assert.equal(o.code, grpc.status.DEADLINE_EXCEEDED, `got ${o.code} ${o.error.details}`);
    assert.ok(
      o.ms <= 250 + lagMs,
      `DEADLINE_EXCEEDED after ${Math.round(o.ms)} ms (deadline 200 ms, event-loop lag ${Math.round(lagMs)} ms)`,
    );
    await usersGrpc.arrived(1);
    const seen = usersGrpc.calls[0];
    // Each hop sends what is left as a relative grpc-timeout, counted again from its arrival: the
    // transit time of two hops may be added, not orders' own 15 s default.
    assert.ok(
      seen.deadline <= deadline + 50 + lagMs,
      `users got a deadline ${seen.deadline - deadline} ms after front's (event-loop lag ${Math.round(lagMs)} ms)`,
    );
    assert.deepEqual(seen.metadata.get('meshlet-caller'), ['orders']);
    await waitFor('users to see its call cancelled', () => usersGrpc.calls[0].cancelled, 2000, 5);
    assert.equal(usersGrpc.count, 1, 'the outbound call was retried past the deadline');
  });

  it("front's cancel reaches users through orders' outbound gRPC call", async () => {
    usersGrpc.reset();
    const ended = new Promise<grpc.ServiceError | null>((resolve) => {
      const call = client.Unary({ payload: 'grpc:5000' }, new grpc.Metadata(), {}, (err) => resolve(err));
      void usersGrpc.arrived(1).then(() => call.cancel());
    });
    const err = await ended;
    assert.equal(err?.code, grpc.status.CANCELLED);
    await waitFor('users to see its call cancelled', () => usersGrpc.calls[0]?.cancelled, 2000, 5);
    assert.equal(usersGrpc.count, 1);
  });
});
