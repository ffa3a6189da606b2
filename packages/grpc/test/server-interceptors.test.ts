// meshServerInterceptors on a real grpc-js server on 127.0.0.1, called by a plain grpc-js client:
// the inbound context (caller, deadline, signal) reaching the handler of each call kind, the
// deadline clamping an outbound mesh HTTP call, the client's cancel aborting the signal, the
// SERVER span continuing the caller's traceparent, rpc.server.call.duration and the inbound
// stats rows.
import { after, before, describe, it } from 'node:test';
import assert from 'node:assert/strict';
import { createServer, type IncomingMessage, type Server as HttpServer } from 'node:http';
import { connect as http2Connect, type ClientHttp2Session } from 'node:http2';
import type { AddressInfo } from 'node:net';
import { performance } from 'node:perf_hooks';
import { setTimeout as sleep } from 'node:timers/promises';
import { fileURLToPath } from 'node:url';
import * as grpc from '@grpc/grpc-js';
import { loadSync } from '@grpc/proto-loader';
import { context, propagation, trace, SpanKind, SpanStatusCode } from '@opentelemetry/api';
import { AsyncLocalStorageContextManager } from '@opentelemetry/context-async-hooks';
import { W3CTraceContextPropagator } from '@opentelemetry/core';
import {
  AggregationTemporality,
  InMemoryMetricExporter,
  MeterProvider,
  PeriodicExportingMetricReader,
} from '@opentelemetry/sdk-metrics';
import { BasicTracerProvider, InMemorySpanExporter, SimpleSpanProcessor } from '@opentelemetry/sdk-trace-base';
import { createMesh, currentInbound, type InboundStats, type Mesh, type MeshError } from '@meshlet/core';
import { createMeshFetch, type MeshFetch } from '@meshlet/http';
import { meshGrpcOptions, meshServerInterceptors } from '../src/index.js';
import { waitFor } from '../../../test/fixtures/control.ts';
import { bindLocal } from '../../../test/fixtures/grpc/servers.ts';

context.setGlobalContextManager(new AsyncLocalStorageContextManager().enable());
propagation.setGlobalPropagator(new W3CTraceContextPropagator());
const spans = new InMemorySpanExporter();
const tracerProvider = new BasicTracerProvider({ spanProcessors: [new SimpleSpanProcessor(spans)] });
const metrics = new InMemoryMetricExporter(AggregationTemporality.CUMULATIVE);
const reader = new PeriodicExportingMetricReader({ exporter: metrics, exportIntervalMillis: 3_600_000 });
const meterProvider = new MeterProvider({ readers: [reader] });

const PROTO = fileURLToPath(new URL('./fixtures/inbound.proto', import.meta.url));
const pkg = grpc.loadPackageDefinition(loadSync(PROTO, { keepCase: true, defaults: true })) as unknown as {
  meshlet: { inbound: { Probe: grpc.ServiceClientConstructor } };
};
const Probe = pkg.meshlet.inbound.Probe;

interface ProbeRequest {
  action?: string;
  count?: number;
}
interface ProbeReply {
  caller: string;
  budget_ms: number;
  seq: number;
}
/** What a handler saw at one point: the inbound context and the current trace. */
interface Seen {
  where: string;
  caller: string | undefined;
  budgetMs: number | undefined;
  traceId: string | undefined;
}
/** How an outbound call made from a handler ended. */
interface OutboundResult {
  status: number;
  code?: string;
  ms: number;
}

const TRACE_ID = '4bf92f3577b34da6a3ce929d0e0e4736';
const PARENT_SPAN_ID = '00f067aa0ba902b7';
const TRACEPARENT = `00-${TRACE_ID}-${PARENT_SPAN_ID}-01`;

function snapshot(where: string): Seen {
  const inbound = currentInbound();
  return {
    where,
    caller: inbound?.caller,
    budgetMs: inbound === undefined ? undefined : inbound.deadlineAt - performance.now(),
    traceId: trace.getSpan(context.active())?.spanContext().traceId,
  };
}

function reply(seq: number): ProbeReply {
  const inbound = currentInbound();
  const left = inbound === undefined ? -1 : inbound.deadlineAt - performance.now();
  return { caller: inbound?.caller ?? '', budget_ms: Number.isFinite(left) ? Math.round(left) : -1, seq };
}

function failCode(req: ProbeRequest): number {
  return req.action?.startsWith('fail:') ? Number(req.action.slice(5)) : 0;
}

async function listenHttp(server: HttpServer): Promise<string> {
  await new Promise<void>((resolve) => server.listen(0, '127.0.0.1', resolve));
  return `127.0.0.1:${(server.address() as AddressInfo).port}`;
}

/** A server of its own (`interceptors`) whose Unary runs `onUnary` in the handler, then answers; and a plain client of it. */
async function startProbe(
  interceptors: grpc.ServerInterceptor[],
  onUnary: () => void,
): Promise<{ unary(metadata: grpc.Metadata): Promise<grpc.ServiceError | null>; close(): void }> {
  const server = new grpc.Server({ interceptors });
  server.addService(Probe.service, {
    Unary(_call: unknown, cb: grpc.sendUnaryData<ProbeReply>) {
      onUnary();
      cb(null, reply(1));
    },
  });
  const port = await bindLocal(server);
  const client = new Probe(`127.0.0.1:${port}`, grpc.credentials.createInsecure());
  const call = client.Unary as (r: unknown, m: grpc.Metadata, cb: (e: grpc.ServiceError | null) => void) => void;
  return {
    unary: (metadata) => new Promise((resolve) => call.call(client, {}, metadata, resolve)),
    close() {
      client.close();
      server.forceShutdown();
    },
  };
}

function statsOf(mesh: Mesh, route: string, caller: string): InboundStats | undefined {
  return mesh.stats().inbound.find((s) => s.route === route && s.caller === caller);
}

async function durationPoints(): Promise<Array<{ attributes: Record<string, unknown>; value: { count: number } }>> {
  await reader.forceFlush();
  const all = metrics.getMetrics();
  const metric = all
    .at(-1)
    ?.scopeMetrics.flatMap((sm) => sm.metrics)
    .find((m) => m.descriptor.name === 'rpc.server.call.duration');
  assert.ok(metric, 'rpc.server.call.duration was recorded');
  assert.equal(metric.descriptor.unit, 's');
  return metric.dataPoints as Array<{ attributes: Record<string, unknown>; value: { count: number } }>;
}

/** Polls `fn` until it returns a value (at most 3 s): the server's bookkeeping lags the client's callback slightly. */
function eventually<T>(fn: () => T | undefined, what: string): Promise<T> {
  return waitFor(what, fn, 10_000, 10); // a bound for a loaded machine; it returns as soon as the value is there
}

describe('meshServerInterceptors', () => {
  let mesh: Mesh;
  let fetch: MeshFetch;
  let backend: HttpServer;
  const backendSeen: Array<{ url: string; headers: IncomingMessage['headers'] }> = [];
  const backendAborted: string[] = [];
  let server: grpc.Server;
  let client: grpc.Client & Record<string, (...args: unknown[]) => unknown>;
  let target = '';
  const seen: Seen[] = [];
  /** The last outbound call a handler made, and the signal state it saw. */
  let outbound: Promise<OutboundResult> | undefined;
  let held: Promise<{ reason: unknown; fetch: OutboundResult }> | undefined;
  let arrived: (() => void) | undefined;

  async function callSlow(): Promise<OutboundResult> {
    const t0 = performance.now();
    try {
      const r = await fetch('http://backend/slow');
      await r.text();
      return { status: r.status, ms: performance.now() - t0 };
    } catch (err) {
      return { status: 0, code: (err as MeshError).code ?? (err as Error).name, ms: performance.now() - t0 };
    }
  }

  /** The unary and server-streaming actions; undefined: answer normally. */
  function act(req: ProbeRequest): Promise<void> | undefined {
    if (req.action === 'slow-http') {
      outbound = callSlow();
      return outbound.then(() => undefined);
    }
    if (req.action === 'hold') {
      const signal = currentInbound()!.signal!;
      held = new Promise((resolve) => {
        const f = callSlow();
        signal.addEventListener('abort', () => void f.then((r) => resolve({ reason: signal.reason, fetch: r })));
      });
      arrived?.();
      return held.then(() => undefined);
    }
    return undefined;
  }

  before(async () => {
    backend = createServer((req, res) => {
      backendSeen.push({ url: req.url ?? '', headers: req.headers });
      if (req.url === '/slow') {
        const timer = setTimeout(() => res.end('late'), 10_000);
        res.on('close', () => {
          clearTimeout(timer);
          if (!res.writableFinished) backendAborted.push(req.url ?? '');
        });
        return;
      }
      res.end('ok');
    });
    const backendAddress = await listenHttp(backend);
    mesh = createMesh({
      service: 'orders',
      services: { backend: { endpoints: [backendAddress] } },
      telemetry: { tracerProvider, meterProvider },
    });
    fetch = createMeshFetch(mesh);

    server = new grpc.Server({ interceptors: meshServerInterceptors(mesh) });
    server.addService(Probe.service, {
      async Unary(call: grpc.ServerUnaryCall<ProbeRequest, ProbeReply>, cb: grpc.sendUnaryData<ProbeReply>) {
        seen.push(snapshot('unary:start'));
        const code = failCode(call.request);
        if (code !== 0) return cb({ code, details: `asked to fail with ${code}` });
        await act(call.request);
        await sleep(1);
        seen.push(snapshot('unary:after-await'));
        cb(null, reply(1));
      },
      async ServerStream(call: grpc.ServerWritableStream<ProbeRequest, ProbeReply>) {
        seen.push(snapshot('server-stream:start'));
        await act(call.request);
        for (let i = 1; i <= (call.request.count || 2); i++) {
          await sleep(1);
          seen.push(snapshot(`server-stream:write ${i}`));
          call.write(reply(i));
        }
        const code = failCode(call.request);
        if (code !== 0) call.emit('error', { code, details: `asked to fail with ${code}` });
        else call.end();
      },
      ClientStream(call: grpc.ServerReadableStream<ProbeRequest, ProbeReply>, cb: grpc.sendUnaryData<ProbeReply>) {
        seen.push(snapshot('client-stream:start'));
        let n = 0;
        call.on('data', () => {
          n++;
          seen.push(snapshot(`client-stream:data ${n}`));
        });
        call.on('end', () => {
          seen.push(snapshot('client-stream:end'));
          setTimeout(() => {
            seen.push(snapshot('client-stream:timer'));
            cb(null, reply(n));
          }, 1);
        });
      },
      Bidi(call: grpc.ServerDuplexStream<ProbeRequest, ProbeReply>) {
        seen.push(snapshot('bidi:start'));
        let n = 0;
        let holding = false;
        call.on('data', (req: ProbeRequest) => {
          n++;
          seen.push(snapshot(`bidi:data ${n}`));
          if (req.action !== 'hold') call.write(reply(n));
          else {
            // Answers only once its outbound work is done (a client's cancel arrives as a half-close, then the reset).
            holding = true;
            void act(req);
          }
        });
        call.on('end', () => {
          seen.push(snapshot('bidi:end'));
          if (!holding) call.end();
        });
      },
    });
    const port = await bindLocal(server);
    target = `127.0.0.1:${port}`;
    client = new Probe(target, grpc.credentials.createInsecure()) as typeof client;
  });

  after(async () => {
    client.close();
    server.forceShutdown();
    backend.closeAllConnections();
    await new Promise<void>((resolve) => backend.close(() => resolve()));
    await mesh.close({ graceMs: 100 });
    await tracerProvider.shutdown();
    await meterProvider.shutdown();
  });

  function md(caller?: string, traceparent?: string): grpc.Metadata {
    const m = new grpc.Metadata();
    if (caller !== undefined) m.set('meshlet-caller', caller);
    if (traceparent !== undefined) m.set('traceparent', traceparent);
    return m;
  }

  function unary(req: ProbeRequest, meta: grpc.Metadata, deadlineMs?: number): Promise<ProbeReply> {
    return new Promise((resolve, reject) => {
      const options: grpc.CallOptions = deadlineMs === undefined ? {} : { deadline: Date.now() + deadlineMs };
      (client.Unary as (r: unknown, m: unknown, o: unknown, cb: (e: unknown, v: ProbeReply) => void) => void)(
        req,
        meta,
        options,
        (err, value) => (err ? reject(err) : resolve(value)),
      );
    });
  }

  function collect<T>(stream: NodeJS.EventEmitter): Promise<{ items: T[]; error?: grpc.ServiceError }> {
    return new Promise((resolve) => {
      const items: T[] = [];
      stream.on('data', (v: T) => items.push(v));
      stream.on('error', (error: grpc.ServiceError) => resolve({ items, error }));
      stream.on('end', () => resolve({ items }));
    });
  }

  function taken(prefix: string): Seen[] {
    const mine = seen.filter((s) => s.where.startsWith(prefix));
    seen.length = 0;
    return mine;
  }

  /** Every snapshot saw the caller, a budget within (0, deadline], and the caller's trace. */
  function assertContext(snaps: Seen[], where: string[], deadlineMs: number): void {
    assert.deepEqual(
      snaps.map((s) => s.where),
      where,
    );
    for (const s of snaps) {
      assert.equal(s.caller, 'web', `${s.where}: caller`);
      assert.ok(s.budgetMs !== undefined && s.budgetMs > 0 && s.budgetMs <= deadlineMs, `${s.where}: ${s.budgetMs}`);
      assert.equal(s.traceId, TRACE_ID, `${s.where}: the caller's trace is current`);
    }
  }

  it('runs a unary handler, before and after an await, in the inbound context', async () => {
    const r = await unary({}, md('web', TRACEPARENT), 5000);
    assert.equal(r.caller, 'web');
    assert.ok(r.budget_ms > 0 && r.budget_ms <= 5000, String(r.budget_ms));
    assertContext(taken('unary'), ['unary:start', 'unary:after-await'], 5000);
  });

  it('runs a server-streaming handler in the inbound context for each write', async () => {
    const stream = (
      client.ServerStream as (r: unknown, m: unknown, o: unknown) => grpc.ClientReadableStream<ProbeReply>
    )({ count: 2 }, md('web', TRACEPARENT), { deadline: Date.now() + 5000 });
    const { items, error } = await collect<ProbeReply>(stream);
    assert.equal(error, undefined);
    assert.deepEqual(
      items.map((i) => [i.seq, i.caller]),
      [
        [1, 'web'],
        [2, 'web'],
      ],
    );
    assertContext(
      taken('server-stream'),
      ['server-stream:start', 'server-stream:write 1', 'server-stream:write 2'],
      5000,
    );
  });

  it('runs a client-streaming handler in the inbound context, in each data event, at the end and after', async () => {
    const r = await new Promise<ProbeReply>((resolve, reject) => {
      const stream = (
        client.ClientStream as (
          m: unknown,
          o: unknown,
          cb: (e: unknown, v: ProbeReply) => void,
        ) => grpc.ClientWritableStream<ProbeRequest>
      )(md('web', TRACEPARENT), { deadline: Date.now() + 5000 }, (err, v) => (err ? reject(err) : resolve(v)));
      stream.write({ action: 'a' });
      setTimeout(() => {
        stream.write({ action: 'b' });
        stream.end();
      }, 5);
    });
    assert.equal(r.seq, 2);
    assert.equal(r.caller, 'web');
    assertContext(
      taken('client-stream'),
      [
        'client-stream:start',
        'client-stream:data 1',
        'client-stream:data 2',
        'client-stream:end',
        'client-stream:timer',
      ],
      5000,
    );
  });

  it('runs a bidi handler in the inbound context for every message', async () => {
    const stream = (client.Bidi as (m: unknown, o: unknown) => grpc.ClientDuplexStream<ProbeRequest, ProbeReply>)(
      md('web', TRACEPARENT),
      { deadline: Date.now() + 5000 },
    );
    const done = collect<ProbeReply>(stream);
    stream.write({ action: 'a' });
    await sleep(5);
    stream.write({ action: 'b' });
    stream.end();
    const { items, error } = await done;
    assert.equal(error, undefined);
    assert.deepEqual(
      items.map((i) => i.caller),
      ['web', 'web'],
    );
    assertContext(taken('bidi'), ['bidi:start', 'bidi:data 1', 'bidi:data 2', 'bidi:end'], 5000);
  });

  it('has no deadline in the context when the client set none', async () => {
    const r = await unary({}, md('web'));
    assert.equal(r.budget_ms, -1);
    seen.length = 0;
  });

  it('clamps an outbound mesh HTTP call to the caller’s gRPC deadline: MESHLET_ERR_DEADLINE within it', async () => {
    // A kept-alive connection to the backend first, so that the outbound request is on the wire at
    // once: on a loaded machine a fresh connect could outlast the 300 ms, and the backend would then
    // never see the request it is asked to see cut (a loaded full run failed so).
    const warm = await fetch('http://backend/warm');
    assert.equal(await warm.text(), 'ok');
    outbound = undefined;
    const t0 = performance.now();
    const err = await unary({ action: 'slow-http' }, md('web'), 300).catch((e: grpc.ServiceError) => e);
    assert.equal((err as grpc.ServiceError).code, grpc.status.DEADLINE_EXCEEDED);
    const r = await outbound!;
    const took = performance.now() - t0;
    assert.equal(r.status, 0);
    assert.equal(r.code, 'MESHLET_ERR_DEADLINE');
    // The backend holds the request 10 s and the service's own timeout is 15 s: only the inbound deadline ends it.
    assert.ok(r.ms >= 250 && r.ms < 2000, `the outbound call ended after ${r.ms.toFixed(0)} ms`);
    assert.ok(took < 2000, `took ${took.toFixed(0)} ms`);
    await eventually(() => (backendAborted.includes('/slow') ? true : undefined), 'the backend request to be cut');
    const row = await eventually(
      () => statsOf(mesh, '/meshlet.inbound.Probe/Unary', 'web')?.failures || undefined,
      'the failure row',
    );
    assert.ok(row >= 1, 'DEADLINE_EXCEEDED is counted as a failure');
    seen.length = 0;
  });

  it('aborts the signal when the client cancels: outbound calls end with MESHLET_ERR_CALLER_GONE', async () => {
    held = undefined;
    const before = statsOf(mesh, '/meshlet.inbound.Probe/Unary', 'web')?.cancelled ?? 0;
    const slowSeen = (): number => backendSeen.filter((s) => s.url === '/slow').length;
    const slowBefore = slowSeen();
    const came = new Promise<void>((resolve) => (arrived = resolve));
    const call = (
      client.Unary as (r: unknown, m: unknown, o: unknown, cb: (e: unknown) => void) => grpc.ClientUnaryCall
    )({ action: 'hold' }, md('web'), {}, () => {});
    await came;
    await eventually(() => (slowSeen() > slowBefore ? true : undefined), 'the call out');
    call.cancel();
    const h = await held!;
    assert.equal((h.reason as MeshError).code, 'MESHLET_ERR_CALLER_GONE');
    assert.match((h.reason as Error).message, /\/meshlet\.inbound\.Probe\/Unary/);
    assert.equal(h.fetch.code, 'MESHLET_ERR_CALLER_GONE');
    await eventually(
      () => ((statsOf(mesh, '/meshlet.inbound.Probe/Unary', 'web')?.cancelled ?? 0) > before ? true : undefined),
      'the cancelled row',
    );
    seen.length = 0;
  });

  it('aborts the signal of a bidi call when the client cancels', async () => {
    held = undefined;
    const came = new Promise<void>((resolve) => (arrived = resolve));
    const stream = (client.Bidi as (m: unknown) => grpc.ClientDuplexStream<ProbeRequest, ProbeReply>)(md('web'));
    stream.on('error', () => {});
    stream.write({ action: 'hold' });
    await came;
    await sleep(20);
    stream.cancel();
    const h = await held!;
    assert.equal((h.reason as MeshError).code, 'MESHLET_ERR_CALLER_GONE');
    assert.equal(h.fetch.code, 'MESHLET_ERR_CALLER_GONE');
    const row = await eventually(
      () => statsOf(mesh, '/meshlet.inbound.Probe/Bidi', 'web')?.cancelled || undefined,
      'the cancelled bidi row',
    );
    assert.equal(row, 1);
    seen.length = 0;
  });

  it('continues the caller’s trace: a SERVER span whose parent is the traceparent, and outbound calls carry it', async () => {
    spans.reset();
    backendSeen.length = 0;
    const r = await unary({}, md('web', TRACEPARENT), 5000);
    assert.equal(r.caller, 'web');
    const span = await eventually(
      () => spans.getFinishedSpans().find((s) => s.name === 'meshlet.inbound.Probe/Unary'),
      'the server span',
    );
    assert.equal(span.kind, SpanKind.SERVER);
    assert.equal(span.spanContext().traceId, TRACE_ID);
    assert.equal(span.parentSpanContext?.spanId, PARENT_SPAN_ID);
    assert.deepEqual(span.attributes, {
      'rpc.system': 'grpc',
      'rpc.service': 'meshlet.inbound.Probe',
      'rpc.method': 'Unary',
      'meshlet.caller': 'web',
      'rpc.grpc.status_code': 0,
    });
    assert.equal(span.status.code, SpanStatusCode.UNSET);
    seen.length = 0;

    // A failure the application answers is not the server's error; UNAVAILABLE is.
    spans.reset();
    await unary({ action: 'fail:14' }, md('web', TRACEPARENT)).catch(() => undefined);
    const failed = await eventually(() => spans.getFinishedSpans()[0], 'the failed span');
    assert.equal(failed.attributes['rpc.grpc.status_code'], 14);
    assert.equal(failed.attributes['error.type'], 'UNAVAILABLE');
    assert.equal(failed.status.code, SpanStatusCode.ERROR);
    seen.length = 0;
  });

  it('makes the caller’s trace current for outbound calls made by the handler', async () => {
    backendSeen.length = 0;
    outbound = undefined;
    await unary({ action: 'slow-http' }, md('web', TRACEPARENT), 200).catch(() => undefined);
    await outbound;
    const sent = backendSeen.find((s) => s.url === '/slow')!;
    assert.ok(sent, 'the backend was called');
    assert.match(String(sent.headers.traceparent), new RegExp(`^00-${TRACE_ID}-`));
    assert.equal(sent.headers['meshlet-caller'], 'orders');
    seen.length = 0;
  });

  it('records rpc.server.call.duration per call with the RPC attributes, and inbound rows per method and caller', async () => {
    await unary({}, md('mobile'));
    await unary({}, md('mobile'));
    await unary({ action: 'fail:5' }, md('mobile')).catch(() => undefined);
    await unary({}, md());
    const ss = (client.ServerStream as (r: unknown, m: unknown) => grpc.ClientReadableStream<ProbeReply>)(
      { count: 1, action: 'fail:13' },
      md('mobile'),
    );
    const streamed = await collect<ProbeReply>(ss);
    assert.equal(streamed.items.length, 1);
    assert.equal(streamed.error?.code, grpc.status.INTERNAL);
    seen.length = 0;

    const mobile = await eventually(() => {
      const s = statsOf(mesh, '/meshlet.inbound.Probe/Unary', 'mobile');
      return s?.requests === 3 ? s : undefined;
    }, 'the mobile row');
    assert.equal(mobile.successes, 3, 'OK and NOT_FOUND (the application’s answer) are successes');
    assert.equal(mobile.failures, 0);
    assert.equal(mobile.cancelled, 0);
    assert.equal(statsOf(mesh, '/meshlet.inbound.Probe/Unary', '(unknown)')?.requests, 1);
    const stream = await eventually(
      () => statsOf(mesh, '/meshlet.inbound.Probe/ServerStream', 'mobile'),
      'the server-stream row',
    );
    assert.equal(stream.failures, 1, 'INTERNAL is a failure');

    const points = await durationPoints();
    const point = (method: string, caller: string | undefined, code: number) =>
      points.find(
        (p) =>
          p.attributes['rpc.method'] === method &&
          p.attributes['meshlet.caller'] === caller &&
          p.attributes['rpc.grpc.status_code'] === code,
      );
    const ok = point('Unary', 'mobile', 0)!;
    assert.deepEqual(ok.attributes, {
      'rpc.system': 'grpc',
      'rpc.service': 'meshlet.inbound.Probe',
      'rpc.method': 'Unary',
      'rpc.grpc.status_code': 0,
      'meshlet.caller': 'mobile',
    });
    assert.equal(ok.value.count, 2);
    assert.deepEqual(point('Unary', 'mobile', 5)!.attributes, {
      'rpc.system': 'grpc',
      'rpc.service': 'meshlet.inbound.Probe',
      'rpc.method': 'Unary',
      'rpc.grpc.status_code': 5,
      'meshlet.caller': 'mobile',
      'error.type': 'NOT_FOUND',
    });
    assert.equal(point('Unary', undefined, 0)!.value.count, 1);
    assert.equal(point('ServerStream', 'mobile', 13)!.attributes['error.type'], 'INTERNAL');
    assert.equal(point('Unary', 'web', 4)!.attributes['error.type'], 'DEADLINE_EXCEEDED');
    assert.equal(point('Unary', 'web', 1)!.attributes['error.type'], 'CANCELLED');
    assert.equal(point('Bidi', 'web', 1)!.value.count, 1);
  });

  it('answers DEADLINE_EXCEEDED without running the handler when the deadline had already passed', async () => {
    seen.length = 0;
    const session: ClientHttp2Session = http2Connect(`http://${target}`);
    try {
      const body = Buffer.from([0, 0, 0, 0, 0]); // one empty ProbeRequest
      const req = session.request({
        ':method': 'POST',
        ':path': '/meshlet.inbound.Probe/Unary',
        'content-type': 'application/grpc',
        te: 'trailers',
        'grpc-timeout': '0m',
        'meshlet-caller': 'late',
      });
      req.end(body);
      const headers = await new Promise<Record<string, unknown>>((resolve) => req.on('response', resolve));
      req.resume();
      await new Promise((resolve) => req.on('close', resolve));
      assert.equal(headers['grpc-status'], String(grpc.status.DEADLINE_EXCEEDED));
      assert.match(decodeURI(String(headers['grpc-message'])), /deadline had already passed/);
    } finally {
      session.close();
    }
    await sleep(20);
    assert.deepEqual(seen, [], 'the handler did not run');
    const row = await eventually(() => statsOf(mesh, '/meshlet.inbound.Probe/Unary', 'late'), 'the late row');
    assert.equal(row.failures, 1);
  });

  it('takes the caller’s name, deadline and trace from a meshlet gRPC client (meshGrpcOptions)', async () => {
    const web = createMesh({
      service: 'web',
      services: { probe: { protocol: 'grpc', endpoints: [target] } },
      telemetry: { tracerProvider },
    });
    const meshClient = new Probe(
      'meshlet:///probe',
      grpc.credentials.createInsecure(),
      meshGrpcOptions(web),
    ) as typeof client;
    try {
      spans.reset();
      seen.length = 0;
      const r = await new Promise<ProbeReply>((resolve, reject) =>
        (meshClient.Unary as (r: unknown, o: unknown, cb: (e: unknown, v: ProbeReply) => void) => void)(
          {},
          { deadline: Date.now() + 3000 },
          (err, v) => (err ? reject(err) : resolve(v)),
        ),
      );
      assert.equal(r.caller, 'web');
      assert.ok(r.budget_ms > 0 && r.budget_ms <= 3000, String(r.budget_ms));
      const server = await eventually(
        () => spans.getFinishedSpans().find((s) => s.kind === SpanKind.SERVER),
        'the server span',
      );
      const clientSpan = await eventually(
        () => spans.getFinishedSpans().find((s) => s.kind === SpanKind.CLIENT),
        'the client span',
      );
      assert.equal(server.spanContext().traceId, clientSpan.spanContext().traceId, 'one trace');
      assert.equal(server.parentSpanContext?.spanId, clientSpan.spanContext().spanId);
      const snaps = taken('unary');
      assert.equal(snaps[0]?.traceId, clientSpan.spanContext().traceId);
    } finally {
      meshClient.close();
      await web.close();
    }
  });

  it('with a propagator but no tracer provider, makes the caller’s extracted context current and starts no span', async () => {
    // No telemetry option and no global tracer provider: only the global W3C propagator.
    const bare = createMesh({ services: {} });
    let traceId: string | undefined;
    let recording: boolean | undefined;
    const probe = await startProbe(meshServerInterceptors(bare), () => {
      const span = trace.getSpan(context.active());
      traceId = span?.spanContext().traceId;
      recording = span?.isRecording();
    });
    try {
      spans.reset();
      assert.equal(await probe.unary(md('web', TRACEPARENT)), null);
      assert.equal(traceId, TRACE_ID);
      assert.equal(recording, false, 'the remote parent, not a span of ours');
      assert.deepEqual(spans.getFinishedSpans(), []);
      assert.equal(bare.stats().inbound[0]?.caller, 'web');
    } finally {
      probe.close();
      await bare.close();
    }
  });

  it('covers the application’s own interceptors after it: their async hops keep the context, their statuses are recorded', async () => {
    const m2 = createMesh({ services: {} });
    // An auth interceptor that checks metadata asynchronously and refuses calls without a token.
    const auth: grpc.ServerInterceptor = (_method, call) =>
      new grpc.ServerInterceptingCall(call, {
        start(next) {
          next(
            new grpc.ServerListenerBuilder()
              .withOnReceiveMetadata((metadata, nextMd) => {
                setImmediate(() => {
                  if (metadata.get('token').length > 0) nextMd(metadata);
                  else call.sendStatus({ code: grpc.status.UNAUTHENTICATED, details: 'no token' });
                });
              })
              .build(),
          );
        },
      });
    let caller: string | undefined;
    const probe = await startProbe([...meshServerInterceptors(m2), auth], () => {
      caller = currentInbound()?.caller;
    });
    try {
      const withToken = md('web');
      withToken.set('token', 't');
      assert.equal(await probe.unary(withToken), null);
      assert.equal(caller, 'web');
      assert.equal((await probe.unary(md('web')))?.code, grpc.status.UNAUTHENTICATED);
      const row = await eventually(() => {
        const r = statsOf(m2, '/meshlet.inbound.Probe/Unary', 'web');
        return r?.requests === 2 ? r : undefined;
      }, 'both calls recorded');
      assert.equal(row.successes, 2, 'UNAUTHENTICATED is the application’s answer, not a failure');
    } finally {
      probe.close();
      await m2.close();
    }
  });

  it('ignores meshlet-caller with trustMeshHeaders: false', async () => {
    const mesh2 = createMesh({ services: {} });
    let caller: string | undefined = 'unset';
    const probe = await startProbe(meshServerInterceptors(mesh2, { trustMeshHeaders: false }), () => {
      caller = currentInbound()?.caller;
    });
    try {
      assert.equal(await probe.unary(md('web')), null);
      assert.equal(caller, undefined);
      assert.equal(mesh2.stats().inbound[0]?.caller, '(unknown)');
    } finally {
      probe.close();
      await mesh2.close();
    }
  });

  it('refuses something that is not a Mesh, and a bad option, naming them', () => {
    assert.throws(() => meshServerInterceptors({} as Mesh), /meshServerInterceptors\(mesh\): expected the Mesh/);
    assert.throws(
      () => meshServerInterceptors(mesh, { trustMeshHeaders: 'yes' as unknown as boolean }),
      /meshServerInterceptors options\.trustMeshHeaders: expected true or false, got "yes"/,
    );
  });
});
