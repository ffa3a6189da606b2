// Across protocols, the other way round from test/grpc-hops.test.ts: an HTTP service behind
// meshMiddleware handles a request by calling a gRPC service through meshGrpcOptions, everything
// imported from the umbrella. Three real processes' worth of meshes in one process:
//   edge (createMeshFetch) → web (HTTP server, meshMiddleware) → users (grpc-js server, meshServerInterceptors)
// Checked: one trace, each span the parent of the next (edge CLIENT → web SERVER → web CLIENT →
// users SERVER); web's outbound gRPC call carries edge's deadline (users sees a grpc-timeout no
// longer than what edge gave web, although the gRPC service's own requestMs is 10 s) and web's
// name; and when edge's caller goes away, the gRPC call made for it is cancelled at users.
import { after, before, describe, it } from 'node:test';
import assert from 'node:assert/strict';
import { createServer, type Server } from 'node:http';
import type { AddressInfo } from 'node:net';
import * as grpc from '@grpc/grpc-js';
import { context, propagation, SpanKind, trace } from '@opentelemetry/api';
import { AsyncLocalStorageContextManager } from '@opentelemetry/context-async-hooks';
import { W3CTraceContextPropagator } from '@opentelemetry/core';
import { BasicTracerProvider, InMemorySpanExporter, SimpleSpanProcessor } from '@opentelemetry/sdk-trace-base';
import { meshMiddleware } from '@meshlet/http/express';
import { createMesh, createMeshFetch, meshGrpcOptions, meshServerInterceptors, type Mesh } from '../src/index.ts';
import { waitFor } from './helpers.ts';

const json = {
  serialize: (value: unknown): Buffer => Buffer.from(JSON.stringify(value)),
  deserialize: (buf: Buffer): unknown => JSON.parse(buf.toString()),
};
const usersService: grpc.ServiceDefinition = {
  get: {
    path: '/users.Users/Get',
    requestStream: false,
    responseStream: false,
    requestSerialize: json.serialize,
    requestDeserialize: json.deserialize,
    responseSerialize: json.serialize,
    responseDeserialize: json.deserialize,
  },
};

/** What makeGenericClientConstructor builds for usersService. */
type UsersClient = grpc.Client & {
  get(
    request: { holdMs: number },
    callback: (err: grpc.ServiceError | null, reply: unknown) => void,
  ): grpc.ClientUnaryCall;
};

interface Seen {
  deadlineLeftMs: number;
  caller: unknown;
  traceparent: unknown;
  cancelled: boolean;
}

describe('HTTP service → gRPC service through the umbrella: one trace, the deadline and the cancel cross', () => {
  const exporter = new InMemorySpanExporter();
  const tracerProvider = new BasicTracerProvider({ spanProcessors: [new SimpleSpanProcessor(exporter)] });
  const contextManager = new AsyncLocalStorageContextManager();
  const seen: Seen[] = [];
  let grpcServer: grpc.Server;
  let webServer: Server;
  let usersMesh: Mesh;
  let webMesh: Mesh;
  let edgeMesh: Mesh;
  let client: UsersClient;

  before(async () => {
    // What an SDK's start() does: context manager, W3C propagator and tracer provider, process-wide.
    context.setGlobalContextManager(contextManager.enable());
    propagation.setGlobalPropagator(new W3CTraceContextPropagator());
    trace.setGlobalTracerProvider(tracerProvider);

    usersMesh = createMesh({ service: 'users', services: {} });
    grpcServer = new grpc.Server({ interceptors: meshServerInterceptors(usersMesh) });
    grpcServer.addService(usersService, {
      get(call: grpc.ServerUnaryCall<{ holdMs?: number }, unknown>, callback: grpc.sendUnaryData<unknown>) {
        const deadline = call.getDeadline();
        const entry: Seen = {
          deadlineLeftMs: (deadline instanceof Date ? deadline.getTime() : Number(deadline)) - Date.now(),
          caller: call.metadata.get('meshlet-caller')[0],
          traceparent: call.metadata.get('traceparent')[0],
          cancelled: false,
        };
        seen.push(entry);
        if (!call.request.holdMs) return callback(null, { name: 'ada' });
        const t = setTimeout(() => callback(null, { name: 'late' }), call.request.holdMs);
        call.on('cancelled', () => {
          entry.cancelled = true;
          clearTimeout(t);
        });
      },
    });
    const grpcPort = await new Promise<number>((resolve, reject) =>
      grpcServer.bindAsync('127.0.0.1:0', grpc.ServerCredentials.createInsecure(), (err, port) =>
        err ? reject(err) : resolve(port),
      ),
    );

    webMesh = createMesh({
      service: 'web',
      services: { users: { protocol: 'grpc', endpoints: [`127.0.0.1:${grpcPort}`], timeout: { requestMs: 10_000 } } },
    });
    const Users = grpc.makeGenericClientConstructor(usersService, 'Users');
    client = new Users(
      'meshlet:///users',
      grpc.credentials.createInsecure(),
      meshGrpcOptions(webMesh),
    ) as unknown as UsersClient;
    const middleware = meshMiddleware(webMesh);
    webServer = createServer((req, res) =>
      middleware(req as never, res as never, () => {
        const holdMs = Number(new URL(req.url ?? '/', 'http://web').searchParams.get('holdMs') ?? 0);
        client.get({ holdMs }, (err, reply) => {
          if (res.destroyed) return;
          res.end(err ? `grpc error ${err.code} ${err.details}` : JSON.stringify(reply));
        });
      }),
    );
    await new Promise<void>((resolve) => webServer.listen(0, '127.0.0.1', resolve));
    edgeMesh = createMesh({
      service: 'edge',
      services: {
        web: { endpoints: [`127.0.0.1:${(webServer.address() as AddressInfo).port}`], timeout: { requestMs: 800 } },
      },
    });
  });

  after(async () => {
    client.close();
    await edgeMesh.close();
    await webMesh.close();
    await usersMesh.close();
    webServer.closeAllConnections();
    await new Promise<void>((resolve) => webServer.close(() => resolve()));
    await new Promise<void>((resolve) => grpcServer.tryShutdown(() => resolve()));
    await tracerProvider.shutdown();
    trace.disable();
    propagation.disable();
    context.disable();
  });

  it("one trace edge → web → users; web's gRPC call carries edge's deadline and web's name", async () => {
    exporter.reset();
    seen.length = 0;
    const fetch = createMeshFetch(edgeMesh);
    const root = tracerProvider.getTracer('test').startSpan('root');
    const body = await context.with(trace.setSpan(context.active(), root), async () => {
      const res = await fetch('http://web/profile');
      return res.text();
    });
    root.end();
    assert.equal(body, '{"name":"ada"}');

    assert.equal(seen.length, 1);
    const at = seen[0]!;
    assert.equal(at.caller, 'web');
    assert.ok(
      at.deadlineLeftMs > 0 && at.deadlineLeftMs <= 800,
      `users saw ${at.deadlineLeftMs} ms left: edge's 800 ms budget, not the gRPC service's own 10 s`,
    );

    const usersSpan = await waitFor('the users server span', async () =>
      exporter.getFinishedSpans().find((s) => s.kind === SpanKind.SERVER && s.name === 'users.Users/Get'),
    );
    const spans = exporter.getFinishedSpans();
    const byId = new Map(spans.map((s) => [s.spanContext().spanId, s]));
    const parentOf = (s: (typeof spans)[number]) =>
      byId.get((s as unknown as { parentSpanContext?: { spanId: string } }).parentSpanContext?.spanId ?? '');
    const webClient = parentOf(usersSpan);
    const webServerSpan = webClient && parentOf(webClient);
    const edgeClient = webServerSpan && parentOf(webServerSpan);
    assert.equal(webClient?.kind, SpanKind.CLIENT, 'users SERVER ← web CLIENT');
    assert.equal(webClient?.name, 'users.Users/Get');
    assert.equal(webServerSpan?.kind, SpanKind.SERVER, 'web CLIENT ← web SERVER');
    assert.equal(edgeClient?.kind, SpanKind.CLIENT, 'web SERVER ← edge CLIENT');
    assert.equal(edgeClient?.name, 'GET');
    assert.equal(parentOf(edgeClient!), root as unknown, 'edge CLIENT ← root');
    const traceId = root.spanContext().traceId;
    for (const s of [usersSpan, webClient!, webServerSpan!, edgeClient!])
      assert.equal(s.spanContext().traceId, traceId);
    assert.equal(at.traceparent, `00-${traceId}-${webClient!.spanContext().spanId}-01`);
  });

  it("edge's caller going away cancels the gRPC call web made for it, at users", async () => {
    seen.length = 0;
    const fetch = createMeshFetch(edgeMesh);
    const abort = new AbortController();
    const res = fetch('http://web/profile?holdMs=5000', { signal: abort.signal });
    await waitFor('the gRPC call at users', async () => (seen.length === 1 ? true : undefined));
    abort.abort();
    await assert.rejects(res, { name: 'AbortError' });
    await waitFor('users to see the call cancelled', async () => (seen[0]!.cancelled ? true : undefined));
  });
});
