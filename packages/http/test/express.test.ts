// meshMiddleware on a real Express 5 app on 127.0.0.1, called through undici, with a real
// backend behind a mesh fetch: the spent-budget 504, the inbound deadline clamping outbound
// calls, caller departure cancelling them, W3C trace continuation, per-route and per-caller
// stats, and hostile mesh headers.
import { after, before, describe, it } from 'node:test';
import assert from 'node:assert/strict';
import { createServer, type IncomingMessage, type Server, type ServerResponse } from 'node:http';
import type { AddressInfo, Socket } from 'node:net';
import { connect } from 'node:net';
import { performance } from 'node:perf_hooks';
import { setTimeout as sleep } from 'node:timers/promises';
import express from 'express';
import { request } from 'undici';
import { context, propagation, SpanKind } from '@opentelemetry/api';
import { AsyncLocalStorageContextManager } from '@opentelemetry/context-async-hooks';
import { W3CTraceContextPropagator } from '@opentelemetry/core';
import { BasicTracerProvider, InMemorySpanExporter, SimpleSpanProcessor } from '@opentelemetry/sdk-trace-base';
import { createMesh, type InboundStats, type Mesh, type MeshError } from '@meshlet/core';
import { createMeshFetch, type MeshFetch } from '@meshlet/http';
import { meshMiddleware } from '@meshlet/http/express';
import { callBackend, eventually, type CallResult } from './helpers.js';

// Global OTel plumbing a real application would have: async context and the W3C propagator.
context.setGlobalContextManager(new AsyncLocalStorageContextManager().enable());
propagation.setGlobalPropagator(new W3CTraceContextPropagator());
const exporter = new InMemorySpanExporter();
const tracerProvider = new BasicTracerProvider({ spanProcessors: [new SimpleSpanProcessor(exporter)] });

async function listen(server: Server): Promise<string> {
  await new Promise<void>((resolve) => server.listen(0, '127.0.0.1', resolve));
  return `127.0.0.1:${(server.address() as AddressInfo).port}`;
}

function close(server: Server): Promise<void> {
  server.closeAllConnections();
  return new Promise((resolve) => server.close(() => resolve()));
}

/** The backend the front app calls through the mesh; counts connections and requests. */
class Backend {
  readonly server: Server;
  address = '';
  accepted = 0;
  requests = 0;
  readonly seen: Array<{ url: string; headers: IncomingMessage['headers'] }> = [];
  readonly aborted: string[] = [];
  private arrivals: Array<(url: string) => void> = [];

  constructor() {
    this.server = createServer((req, res) => this.handle(req, res));
    this.server.on('connection', () => this.accepted++);
  }

  /** Resolves when the next request arrives. */
  nextArrival(): Promise<string> {
    return new Promise((resolve) => this.arrivals.push(resolve));
  }

  private handle(req: IncomingMessage, res: ServerResponse): void {
    this.requests++;
    this.seen.push({ url: req.url ?? '', headers: req.headers });
    for (const a of this.arrivals.splice(0)) a(req.url ?? '');
    if (req.url === '/slow') {
      // Never answers in time; tells whether its caller cut the request.
      const timer = setTimeout(() => res.end('late'), 10_000);
      res.on('close', () => {
        clearTimeout(timer);
        if (!res.writableFinished) this.aborted.push(req.url ?? '');
      });
      return;
    }
    res.end('ok');
  }
}

function statsOf(mesh: Mesh, route: string, caller: string): InboundStats | undefined {
  return mesh.stats().inbound.find((s) => s.route === route && s.caller === caller);
}

describe('meshMiddleware (Express 5)', () => {
  const backend = new Backend();
  let mesh: Mesh;
  let fetch: MeshFetch;
  let front: Server;
  let base = '';
  let handled = 0;
  /** What the last /call or /after handler's outbound call did. */
  let lastCall: Promise<CallResult> | undefined;

  before(async () => {
    backend.address = await listen(backend.server);
    mesh = createMesh({
      service: 'front',
      services: { backend: { endpoints: [backend.address] } },
      telemetry: { tracerProvider },
    });
    fetch = createMeshFetch(mesh);
    const app = express();
    app.set('env', 'test'); // Express's error handler stays quiet about /boom
    app.use(meshMiddleware(mesh));
    app.get('/users/:id', (req, res) => {
      handled++;
      res.json({ id: req.params.id });
    });
    app.get('/boom', () => {
      throw new Error('boom');
    });
    app.get('/call', async (_req, res) => {
      lastCall = callBackend(fetch, '/slow');
      const r = await lastCall;
      res.status(r.status === 0 ? 502 : r.status).json(r);
    });
    app.get('/call-ok', async (_req, res) => {
      const r = await callBackend(fetch, '/ok');
      res.status(r.status === 0 ? 502 : r.status).json(r);
    });
    app.get('/after/:ms', async (req, res) => {
      await sleep(Number(req.params.ms));
      lastCall = callBackend(fetch, '/ok');
      const r = await lastCall;
      res.status(r.status === 0 ? 502 : r.status).json(r);
    });
    const posts = express.Router();
    posts.get('/posts/:pid', (req, res) => void res.json({ pid: req.params.pid }));
    app.use('/orgs/:org', posts);
    const shop = express();
    shop.get('/items/:iid', (req, res) => void res.json({ iid: req.params.iid }));
    app.use('/shops/:shop', shop);
    // One router mounted twice: the walk cannot tell which mount a request came through.
    const twice = express.Router();
    twice.get('/leaf', (_req, res) => void res.end('leaf'));
    app.use('/t1', twice);
    app.use('/t2/:n', twice);
    front = createServer(app);
    base = `http://${await listen(front)}`;
  });

  after(async () => {
    await close(front);
    await mesh.close({ graceMs: 100 });
    await close(backend.server);
  });

  it('answers 504 without running the handler when the caller’s budget is already spent, and records it', async () => {
    const before = handled;
    const res = await request(`${base}/users/1`, { headers: { 'meshlet-timeout': '0m', 'meshlet-caller': 'spent' } });
    assert.equal(res.statusCode, 504);
    assert.match(await res.body.text(), /deadline \(meshlet-timeout\) had already passed/);
    assert.equal(handled, before, 'the handler must not run');
    // Routing never ran, so Express never matched a route.
    const s = await eventually(() => statsOf(mesh, '(unmatched)', 'spent'), 'the 504 in stats');
    assert.equal(s.requests, 1);
    assert.equal(s.failures, 1);
    assert.equal(s.successRate, 0);
  });

  it('clamps an outbound mesh call to the inbound budget (200 ms), not its own 15 s default', async () => {
    const res = await request(`${base}/call`, { headers: { 'meshlet-timeout': '200m', 'meshlet-caller': 'edge' } });
    const body = (await res.body.json()) as CallResult;
    assert.equal(res.statusCode, 502);
    assert.equal(body.code, 'MESHLET_ERR_DEADLINE');
    assert.ok(body.ms > 150, `ended after ${body.ms} ms, before the 200 ms budget`);
    assert.ok(body.ms < 5000, `ended after ${body.ms} ms, not at the inbound budget`);
    // The backend was told the remaining budget (no more than the 200 ms) and who calls.
    const seen = backend.seen.at(-1)!;
    assert.equal(seen.url, '/slow');
    assert.equal(seen.headers['meshlet-caller'], 'front');
    const m = /^(\d+)m$/.exec(String(seen.headers['meshlet-timeout']));
    assert.ok(m && Number(m[1]) <= 200 && Number(m[1]) > 0, `meshlet-timeout ${seen.headers['meshlet-timeout']}`);
  });

  it('fails an outbound call at once when the inbound budget has passed, without touching the network', async () => {
    // Warm a pooled connection first, so a request would not even need a new one to reach the backend.
    assert.equal((await request(`${base}/call-ok`)).statusCode, 200);
    const accepted = backend.accepted;
    const requests = backend.requests;
    const res = await request(`${base}/after/120`, { headers: { 'meshlet-timeout': '50m' } });
    const body = (await res.body.json()) as CallResult;
    assert.equal(body.code, 'MESHLET_ERR_DEADLINE');
    assert.equal(backend.accepted, accepted, 'no connection opened');
    assert.equal(backend.requests, requests, 'no request sent');
  });

  it('cancels the outbound call when the inbound caller disconnects', async () => {
    const arrived = backend.nextArrival();
    const ac = new AbortController();
    const pending = request(`${base}/call`, { signal: ac.signal, headers: { 'meshlet-caller': 'quitter' } });
    assert.equal(await arrived, '/slow');
    ac.abort();
    await assert.rejects(pending);
    await eventually(() => (backend.aborted.length > 0 ? true : undefined), 'the backend to see its request aborted');
    assert.deepEqual(backend.aborted, ['/slow']);
    const r = await lastCall!;
    assert.equal(r.status, 0, 'the outbound call was cut, not answered');
    assert.equal(r.code, 'MESHLET_ERR_CALLER_GONE', 'fetch rejects with the typed reason');
    const s = await eventually(() => statsOf(mesh, '/call', 'quitter'), 'the cancelled request in stats');
    assert.equal(s.cancelled, 1);
    assert.equal(s.failures, 0);
  });

  it('continues the caller’s W3C trace with a SERVER span named by the route, parent of the outbound call', async () => {
    exporter.reset();
    const traceId = '4bf92f3577b34da6a3ce929d0e0e4736';
    const parentId = '00f067aa0ba902b7';
    const res = await request(`${base}/call-ok`, {
      headers: { traceparent: `00-${traceId}-${parentId}-01`, 'meshlet-caller': 'edge' },
    });
    assert.equal(res.statusCode, 200);
    await res.body.dump();
    const server = await eventually(
      () => exporter.getFinishedSpans().find((s) => s.kind === SpanKind.SERVER),
      'the server span',
    );
    assert.equal(server.name, 'GET /call-ok');
    assert.equal(server.spanContext().traceId, traceId);
    assert.equal(server.parentSpanContext?.spanId, parentId);
    assert.equal(server.attributes['http.route'], '/call-ok');
    assert.equal(server.attributes['http.response.status_code'], 200);
    assert.equal(server.attributes['meshlet.caller'], 'edge');
    assert.equal(server.attributes['http.request.method'], 'GET');
    const client = exporter.getFinishedSpans().find((s) => s.kind === SpanKind.CLIENT);
    assert.ok(client, 'the outbound mesh call has its span');
    assert.equal(client.spanContext().traceId, traceId);
    assert.equal(client.parentSpanContext?.spanId, server.spanContext().spanId);
    // And the backend got the same trace, one hop down.
    const tp = String(backend.seen.at(-1)!.headers.traceparent);
    assert.equal(tp.split('-')[1], traceId);
  });

  it('marks a 5xx server span as an error and names an unmatched request by its method alone', async () => {
    exporter.reset();
    assert.equal((await request(`${base}/boom`)).statusCode, 500);
    assert.equal((await request(`${base}/nowhere`)).statusCode, 404);
    const spans = await eventually(
      () => (exporter.getFinishedSpans().length >= 2 ? exporter.getFinishedSpans() : undefined),
      'two server spans',
    );
    const boom = spans.find((s) => s.attributes['http.route'] === '/boom')!;
    assert.equal(boom.name, 'GET /boom');
    assert.equal(boom.status.code, 2 /* ERROR */);
    assert.equal(boom.attributes['error.type'], '500');
    const nowhere = spans.find((s) => s.attributes['http.response.status_code'] === 404)!;
    assert.equal(nowhere.name, 'GET');
    assert.equal(nowhere.attributes['http.route'], undefined);
  });

  it('keeps inbound stats per route template and per caller', async () => {
    await (await request(`${base}/users/7`, { headers: { 'meshlet-caller': 'billing' } })).body.dump();
    await (await request(`${base}/users/8`, { headers: { 'meshlet-caller': 'billing' } })).body.dump();
    await (await request(`${base}/users/9`)).body.dump();
    await (await request(`${base}/orgs/42/posts/3`, { headers: { 'meshlet-caller': 'billing' } })).body.dump();
    await (await request(`${base}/orgs/43/posts/4`, { headers: { 'meshlet-caller': 'billing' } })).body.dump();
    await (await request(`${base}/boom`, { headers: { 'meshlet-caller': 'billing' } })).body.dump();
    const users = await eventually(
      () =>
        statsOf(mesh, '/users/:id', 'billing')?.requests === 2 ? statsOf(mesh, '/users/:id', 'billing') : undefined,
      'two /users/:id requests from billing',
    );
    assert.equal(users.successes, 2);
    assert.equal(users.successRate, 1);
    assert.ok(users.recentRequests >= 2);
    assert.ok(users.latencyMs.p99 >= users.latencyMs.p50);
    assert.ok((statsOf(mesh, '/users/:id', '(unknown)')?.requests ?? 0) >= 1);
    // A parameterised mount is reported by its template, not by the org ids.
    const posts = await eventually(() => statsOf(mesh, '/orgs/:org/posts/:pid', 'billing'), 'the mounted route');
    assert.equal(posts.requests, 2);
    assert.ok(!mesh.stats().inbound.some((s) => s.route.includes('/orgs/42')));
    // A sub-app mounted at a parameterised path: its mountpath is part of the template.
    await (await request(`${base}/shops/7/items/1`, { headers: { 'meshlet-caller': 'billing' } })).body.dump();
    await (await request(`${base}/shops/8/items/2`, { headers: { 'meshlet-caller': 'billing' } })).body.dump();
    const items = await eventually(() => statsOf(mesh, '/shops/:shop/items/:iid', 'billing'), 'the sub-app route');
    assert.equal(items.requests, 2);
    // Ambiguous mounts fall back to the concrete prefix, at most 16 per route, then '/(other)'.
    for (let n = 0; n < 20; n++) {
      await (await request(`${base}/t2/${n}/leaf`, { headers: { 'meshlet-caller': 'billing' } })).body.dump();
    }
    const leaves = await eventually(() => {
      const rows = mesh.stats().inbound.filter((s) => s.route.endsWith('/leaf') && s.caller === 'billing');
      return rows.reduce((n, r) => n + r.requests, 0) === 20 ? rows : undefined;
    }, 'twenty /leaf requests');
    assert.equal(leaves.length, 17, leaves.map((r) => r.route).join(' '));
    assert.equal(leaves.find((r) => r.route === '/(other)/leaf')?.requests, 4);
    const boom = await eventually(() => statsOf(mesh, '/boom', 'billing'), '/boom');
    assert.equal(boom.failures, 1);
    assert.equal(boom.successRate, 0);
  });

  it('ignores malformed meshlet-timeout values instead of failing or answering 504', async () => {
    const bad = ['-1m', '999999999m', '1e3m', '10x', '', '5', 'm', '12.5m', '0x10m', '5 m', '+5m'];
    for (const v of bad) {
      const before = handled;
      const res = await request(`${base}/users/1`, { headers: { 'meshlet-timeout': v } });
      assert.equal(res.statusCode, 200, `meshlet-timeout ${JSON.stringify(v)}`);
      await res.body.dump();
      assert.equal(handled, before + 1);
    }
    // Values undici will not send, written raw (Node may refuse some itself with 400).
    const { port } = front.address() as AddressInfo;
    for (const v of ['\u0661\u0662m', '5m\x00', '\xff5m']) {
      const before = handled;
      const status = await rawGet(port, '/users/1', `meshlet-timeout: ${v}\r\n`, 'utf8');
      assert.ok(status === 200 || status === 400, `status ${status} for ${JSON.stringify(v)}`);
      if (status === 200) assert.equal(handled, before + 1);
    }
    // A repeated header reaches Node as one joined value ("0m, 100m"): malformed, so ignored.
    const dup = await request(`${base}/users/1`, {
      headers: ['meshlet-timeout', '0m', 'meshlet-timeout', '100m'],
    });
    assert.equal(dup.statusCode, 200);
    await dup.body.dump();
    // The largest well-formed budget (99999999 hours) is a deadline far away, not a broken timer.
    const huge = await request(`${base}/call-ok`, { headers: { 'meshlet-timeout': '99999999H' } });
    assert.equal(huge.statusCode, 200);
    await huge.body.dump();
  });

  it('ignores a caller name of 10 KB or with control characters, and the server survives raw hostile headers', async () => {
    const long = await request(`${base}/users/1`, { headers: { 'meshlet-caller': 'a'.repeat(10_240) } });
    assert.equal(long.statusCode, 200);
    await long.body.dump();
    const tab = await request(`${base}/users/1`, { headers: { 'meshlet-caller': 'bad\tname' } });
    assert.equal(tab.statusCode, 200);
    await tab.body.dump();
    // Bytes undici refuses to send: written raw. Node's parser may refuse some itself (400); what
    // reaches the middleware must be ignored, never crash it.
    const { port } = front.address() as AddressInfo;
    for (const value of ['x\x01y', 'x\x7fy', 'caf\xe9', 'a'.repeat(12_000)]) {
      const status = await rawGet(port, `/users/1`, `meshlet-caller: ${value}\r\nmeshlet-timeout: ${value}\r\n`);
      assert.ok(status === 200 || status === 400 || status === 431, `status ${status} for ${JSON.stringify(value)}`);
    }
    const callers = mesh.stats().inbound.map((s) => s.caller);
    for (const c of callers) assert.ok(c.length <= 253 && /^[a-z0-9().-]+$/i.test(c), `caller kept: ${c}`);
    assert.ok(!callers.some((c) => c.startsWith('aaaa')));
    // Still serving.
    assert.equal((await request(`${base}/users/2`)).statusCode, 200);
  });
});

describe('meshMiddleware with trustMeshHeaders: false', () => {
  let mesh: Mesh;
  let server: Server;
  let base = '';

  before(async () => {
    mesh = createMesh({ services: {} });
    const app = express();
    app.use(meshMiddleware(mesh, { trustMeshHeaders: false }));
    app.get('/x', (_req, res) => void res.end('ok'));
    server = createServer(app);
    base = `http://${await listen(server)}`;
  });
  after(async () => {
    await close(server);
    await mesh.close();
  });

  it('neither answers 504 for a forged spent budget nor trusts the caller header', async () => {
    const res = await request(`${base}/x`, { headers: { 'meshlet-timeout': '0m', 'meshlet-caller': 'forged' } });
    assert.equal(res.statusCode, 200);
    await res.body.dump();
    const s = await eventually(() => mesh.stats().inbound.find((e) => e.route === '/x'), '/x in stats');
    assert.equal(s.caller, '(unknown)');
  });

  it('survives a recorder that throws: the request is answered and one warning is emitted', async () => {
    const warnings: Error[] = [];
    const onWarning = (w: Error) => void warnings.push(w);
    process.on('warning', onWarning);
    const record = mesh.inbound.record;
    mesh.inbound.record = () => {
      throw new Error('recorder broke');
    };
    try {
      for (let i = 0; i < 2; i++) {
        const res = await request(`${base}/x`);
        assert.equal(res.statusCode, 200);
        assert.equal(await res.body.text(), 'ok');
      }
      await eventually(() => (warnings.length > 0 ? true : undefined), 'the warning');
      assert.equal(warnings.length, 1);
      assert.match(warnings[0]!.message, /recording an inbound request failed.*recorder broke/s);
    } finally {
      mesh.inbound.record = record;
      process.off('warning', onWarning);
    }
  });

  it('refuses invalid options with a MeshConfigError naming the option', () => {
    assert.throws(
      () => meshMiddleware(mesh, { tracing: 'yes' as unknown as boolean }),
      (err: MeshError) => err.code === 'MESHLET_ERR_CONFIG' && /options\.tracing/.test(err.message),
    );
    assert.throws(
      () => meshMiddleware({} as Mesh),
      (err: MeshError) => err.code === 'MESHLET_ERR_CONFIG' && /createMesh/.test(err.message),
    );
  });
});

/** Sends a raw GET with extra header lines and returns the status code (0 if the connection just closed). */
function rawGet(port: number, path: string, extra: string, encoding: BufferEncoding = 'latin1'): Promise<number> {
  return new Promise((resolve, reject) => {
    const socket: Socket = connect(port, '127.0.0.1');
    let data = '';
    socket.setEncoding('latin1');
    socket.on('data', (c: string) => {
      data += c;
      if (data.includes('\r\n\r\n')) socket.destroy();
    });
    socket.on('close', () => resolve(Number(/^HTTP\/1\.1 (\d+)/.exec(data)?.[1] ?? 0)));
    socket.on('error', reject);
    socket.write(Buffer.from(`GET ${path} HTTP/1.1\r\nhost: x\r\n${extra}connection: close\r\n\r\n`, encoding));
  });
}
