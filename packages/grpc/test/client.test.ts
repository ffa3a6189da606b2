// meshGrpcOptions on real grpc-js servers on 127.0.0.1 (the Echo servers of the end-to-end tests,
// test/fixtures/grpc): what a grpc-js user of a meshlet:/// client sees besides balancing and
// retries (those are in test/grpc-*.test.ts).
// - metadata: meshlet-caller and the caller's own metadata on every attempt, the deadline as
//   grpc-timeout, response headers and trailers passed back;
// - grpc-js options spread next to meshGrpcOptions reach the endpoint channels; the caller's own
//   client interceptors still run; waitForReady works; a target that is not meshlet: is a plain channel;
//   nothing is registered with grpc-js (a client without the options cannot use meshlet:///);
// - the replay buffer: a call whose request bytes pass 256 KiB is not retried; one below is, intact;
// - mesh.close(): later calls fail with UNAVAILABLE / MESHLET_ERR_CLOSED, an open stream is cut;
//   endpoint connections close when their address leaves the mesh, and all when the mesh closes;
// - telemetry: one rpc.client.call.duration point per call (not per attempt) with the
//   semantic-convention attributes, and a CLIENT span named after the method that lasts until the
//   call's status (a stream's too, with a failure after its first message on it); the counters shared
//   with HTTP (retries, budget refusals, ejections, breaker transitions) count gRPC calls.
import { after, describe, it } from 'node:test';
import assert from 'node:assert/strict';
import * as grpc from '@grpc/grpc-js';
import { SpanKind, SpanStatusCode } from '@opentelemetry/api';
import { MeterProvider, MetricReader, type DataPoint, type Histogram } from '@opentelemetry/sdk-metrics';
import { BasicTracerProvider, InMemorySpanExporter, SimpleSpanProcessor } from '@opentelemetry/sdk-trace-base';
import { createMesh } from '@meshlet/core';
import { meshGrpcOptions } from '../src/index.js';
import {
  clientStream,
  newEchoClient,
  openStream,
  serverStream,
  unary,
  type MeshServiceError,
} from '../../../test/fixtures/grpc/client.ts';
import { waitFor } from '../../../test/fixtures/control.ts';
import { DualPort } from '../../../test/fixtures/grpc/dual.ts';
import { GrpcHarness, fixedRotation } from '../../../test/fixtures/grpc/harness.ts';
import { METHOD } from '../../../test/fixtures/grpc/servers.ts';

/** A reader that exports nothing by itself: the test pulls with `collect()`. */
class PullReader extends MetricReader {
  protected override async onShutdown(): Promise<void> {}
  protected override async onForceFlush(): Promise<void> {}
}

describe('meshGrpcOptions: a grpc-js client on meshlet:///', () => {
  const h = new GrpcHarness(meshGrpcOptions);
  after(() => h.close());

  it('a call on a closed client throws at once, naming the target and what to do', async () => {
    const m = h.mesh({ services: { echo: { protocol: 'grpc', endpoints: ['127.0.0.1:1'] } } });
    const c = h.client(m, 'echo');
    c.close();
    assert.throws(
      () => c.Unary({ payload: 'x' }, new grpc.Metadata(), {}, () => {}),
      /Channel has been shut down: the client of meshlet:\/\/\/echo was closed \(client\.close\(\)\); build a new client/,
    );
  });

  it('every attempt carries meshlet-caller and the caller’s metadata; the deadline travels as grpc-timeout', async () => {
    const bad = await h.servers.start('md-bad', { failCode: grpc.status.UNAVAILABLE });
    const good = await h.servers.start('md-good');
    const m = h.mesh({
      service: 'frontend',
      services: { echo: { protocol: 'grpc', loadBalancer: 'round-robin', endpoints: [bad.address, good.address] } },
    });
    const c = h.client(m, 'echo');

    for (let i = 0; i < 2; i++) {
      const metadata = new grpc.Metadata();
      metadata.set('x-request-id', `req-${i}`);
      const deadline = Date.now() + 5000;
      const o = await unary(c, { payload: `p${i}` }, { metadata, deadline });
      assert.ok(o.ok, o.ok ? '' : o.error.details);
    }
    // Round-robin over two: at least one of two calls meets the failing endpoint first.
    assert.ok(bad.count >= 1, 'no call was retried');
    assert.equal(good.count, 2);
    const calls = [...bad.calls, ...good.calls];
    for (const call of calls) {
      assert.deepEqual(call.metadata.get('meshlet-caller'), ['frontend']);
      assert.match(String(call.metadata.get('x-request-id')[0]), /^req-[01]$/);
      assert.ok(Number.isFinite(call.deadline), 'the attempt carried no deadline');
      assert.ok(call.deadline <= Date.now() + 5000, 'the attempt deadline is later than the caller’s');
    }
    // A retry carries the same request id as its first attempt.
    const retried = new Set(good.calls.map((x) => x.metadata.get('x-request-id')[0]));
    for (const x of bad.calls) assert.ok(retried.has(x.metadata.get('x-request-id')[0]));
  });

  it('response headers and trailers reach the caller', async () => {
    const s = await h.servers.start('headers');
    const m = h.mesh({ services: { echo: { protocol: 'grpc', endpoints: [s.address] } } });
    const c = h.client(m, 'echo');
    const { headers, status } = await new Promise<{ headers: grpc.Metadata; status: grpc.StatusObject }>(
      (resolve, reject) => {
        let headers: grpc.Metadata | undefined;
        const call = c.Unary({ payload: 'h' }, new grpc.Metadata(), {}, (err) => {
          if (err) reject(err);
        });
        call.on('metadata', (md) => (headers = md));
        call.on('status', (st) => resolve({ headers: headers!, status: st }));
      },
    );
    assert.ok(headers, 'no response headers');
    assert.deepEqual(headers.get('x-served-by'), ['headers']);
    assert.equal(status.code, grpc.status.OK);
    assert.deepEqual(status.metadata.get('x-trailer'), ['headers']);
  });

  it('grpc-js options spread next to meshGrpcOptions reach the endpoint channels', async () => {
    const s = await h.servers.start('opts');
    const m = h.mesh({ services: { echo: { protocol: 'grpc', endpoints: [s.address] } } });
    const small = h.client(m, 'echo', { 'grpc.max_receive_message_length': 64 });
    const big = 'x'.repeat(200);
    const o = await unary(small, { payload: big });
    assert.ok(!o.ok, 'a 200-byte reply should exceed grpc.max_receive_message_length 64');
    assert.equal(o.code, grpc.status.RESOURCE_EXHAUSTED, o.error.details);
    const plain = h.client(m, 'echo');
    const ok = await unary(plain, { payload: big });
    assert.ok(ok.ok && ok.reply.payload === big);
  });

  it('the caller’s own client interceptors still run, and waitForReady works', async () => {
    const s = await h.servers.start('intercepted');
    const m = h.mesh({ services: { echo: { protocol: 'grpc', endpoints: [s.address] } } });
    const statuses: number[] = [];
    const interceptor: grpc.Interceptor = (options, nextCall) =>
      new grpc.InterceptingCall(nextCall(options), {
        start(metadata, listener, next) {
          metadata.set('x-intercepted', 'yes');
          next(metadata, {
            onReceiveStatus(status, nextStatus) {
              statuses.push(status.code);
              nextStatus(status);
            },
          });
        },
      });
    const c = h.client(m, 'echo', { interceptors: [interceptor] });
    await new Promise<void>((resolve, reject) =>
      c.waitForReady(Date.now() + 3000, (err) => (err ? reject(err) : resolve())),
    );
    const o = await unary(c, { payload: 'i' });
    assert.ok(o.ok, o.ok ? '' : o.error.details);
    assert.deepEqual(s.calls[0].metadata.get('x-intercepted'), ['yes']);
    assert.deepEqual(statuses, [grpc.status.OK]);
  });

  it('connectivity watches follow events: a config change, an endpoint connecting, the deadline, the close', async () => {
    const s = await h.servers.start('watched');
    const m = h.mesh({ services: { echo: { protocol: 'grpc', endpoints: ['127.0.0.1:1'] } } });
    const c = h.client(m, 'echo');
    const ch = c.getChannel();
    const waitChange = (from: grpc.connectivityState, ms: number): Promise<Error | undefined> =>
      new Promise((resolve) => ch.watchConnectivityState(from, Date.now() + ms, (err) => resolve(err)));

    // Nothing changes: the watch ends with an error at its deadline, not before.
    const idle = ch.getConnectivityState(false);
    const t0 = performance.now();
    const timedOut = await waitChange(idle, 150);
    assert.match(String(timedOut), /Deadline passed without connectivity state change/);
    assert.ok(performance.now() - t0 >= 140, 'the watch ended before its deadline');

    // The service has no endpoint (TRANSIENT_FAILURE, and no endpoint channel whose state could
    // change): only the config event can tell the watch that one was added.
    m.update({ services: { echo: { protocol: 'grpc', endpoints: [] } } });
    assert.equal(ch.getConnectivityState(true), grpc.connectivityState.TRANSIENT_FAILURE);
    const added = waitChange(grpc.connectivityState.TRANSIENT_FAILURE, 10_000);
    await new Promise((r) => setTimeout(r, 50));
    m.update({ services: { echo: { protocol: 'grpc', endpoints: [s.address] } } });
    assert.equal(await added, undefined);
    // waitForReady: the new endpoint channel's own state changes make it READY.
    const ready = new Promise<Error | undefined>((resolve) => c.waitForReady(Date.now() + 10_000, (e) => resolve(e)));
    assert.equal(await ready, undefined);
    assert.equal(ch.getConnectivityState(false), grpc.connectivityState.READY);

    // Closing the client ends a pending watch at once (SHUTDOWN), without waiting for its deadline.
    const pending = waitChange(grpc.connectivityState.READY, 60_000);
    const t1 = performance.now();
    c.close();
    assert.equal(await pending, undefined);
    assert.ok(performance.now() - t1 < 5_000);
  });

  it('a target that is not meshlet: gets a plain grpc-js channel', async () => {
    const s = await h.servers.start('direct');
    const m = h.mesh({ services: {} });
    for (const target of [s.address, `dns:///${s.address}`, `ipv4:${s.address}`]) {
      const c = h.clientFor(m, target);
      const o = await unary(c, { payload: target });
      assert.ok(o.ok, `${target}: ${o.ok ? '' : o.error.details}`);
      assert.equal(o.reply.server, 'direct');
    }
    assert.equal(s.count, 3);
    assert.deepEqual(m.stats().services, {});
  });

  it('nothing is registered with grpc-js: a client without meshGrpcOptions cannot resolve meshlet:///', async () => {
    const s = await h.servers.start('unregistered');
    const m = h.mesh({ services: { echo: { protocol: 'grpc', endpoints: [s.address] } } });
    const meshed = h.client(m, 'echo');
    assert.ok((await unary(meshed, { payload: 'through the mesh' })).ok);
    const plain = newEchoClient('meshlet:///echo');
    h.clients.push(plain);
    const o = await unary(plain, { payload: 'plain' }, { deadline: Date.now() + 3000 });
    assert.ok(!o.ok, 'a plain grpc-js client reached the mesh’s endpoint');
    assert.equal(s.count, 1);
  });

  it('request bytes past 256 KiB make a call not replayable; below it, the retry resends every byte', async () => {
    const bad = await h.servers.start('replay-bad', { failCode: grpc.status.UNAVAILABLE });
    const good = await h.servers.start('replay-good');
    const m = h.mesh({ services: { echo: fixedRotation([bad.address, good.address]) } });
    const c = h.client(m, 'echo');
    const chunk = 'y'.repeat(64 * 1024);

    // 3 × 64 KiB: replayable. Whichever endpoint comes first, the call ends on the good one with all bytes.
    for (let i = 0; i < 2; i++) {
      const o = await clientStream(c, [chunk, chunk, chunk]);
      assert.ok(o.ok, o.ok ? '' : `${o.code} ${o.error.details}`);
      assert.equal(o.reply.server, 'replay-good');
      assert.equal(o.reply.seq, 3);
      assert.equal(o.reply.payload.length, 3 * chunk.length + 2);
    }
    // Round-robin over two: at least one of two calls meets the failing endpoint first.
    const badBefore = bad.countOf('ClientStream');
    assert.ok(badBefore >= 1, 'no call met the failing endpoint');
    const retriesBefore = m.stats().services.echo.retries;
    assert.equal(retriesBefore, badBefore);

    // 5 × 64 KiB: past the buffer. The call that meets the failing endpoint first gets its UNAVAILABLE.
    const outcomes = [await clientStream(c, Array(5).fill(chunk)), await clientStream(c, Array(5).fill(chunk))];
    const failed = outcomes.filter((o) => !o.ok);
    assert.equal(failed.length, bad.countOf('ClientStream') - badBefore, 'a call on the failing endpoint was retried');
    assert.ok(failed.length >= 1, 'no call met the failing endpoint');
    for (const f of failed) assert.equal(f.ok ? -1 : f.code, grpc.status.UNAVAILABLE);
    for (const o of outcomes) if (o.ok) assert.equal(o.reply.payload.length, 5 * chunk.length + 4);
    assert.equal(good.countOf('ClientStream'), 2 + outcomes.length - failed.length);
    assert.equal(m.stats().services.echo.retries, retriesBefore, 'a call past the replay buffer was retried');
  });

  it('after mesh.close() calls fail with UNAVAILABLE / MESHLET_ERR_CLOSED, and an open stream is cut', async () => {
    const s = await h.servers.start('closing');
    const m = h.mesh({ services: { echo: { protocol: 'grpc', endpoints: [s.address] } } });
    const c = h.client(m, 'echo');
    const { ended } = await openStream(c, { payload: 'long', messages: 100, sleepMs: 20 });
    await m.close();
    const o = await ended;
    assert.ok(o.error, 'the stream should end with an error when the mesh closes');
    assert.ok(o.replies.length < 100);
    const after = await unary(c, { payload: 'late' });
    assert.ok(!after.ok);
    assert.equal(after.code, grpc.status.UNAVAILABLE);
    assert.equal((after.error as MeshServiceError).meshletCode, 'MESHLET_ERR_CLOSED');
  });

  it('one rpc.client.call.duration point per call with semconv attributes, and a CLIENT span per call', async () => {
    const reader = new PullReader();
    const meterProvider = new MeterProvider({ readers: [reader] });
    const spans = new InMemorySpanExporter();
    const tracerProvider = new BasicTracerProvider({ spanProcessors: [new SimpleSpanProcessor(spans)] });
    try {
      const bad = await h.servers.start('tel-bad', { failCode: grpc.status.UNAVAILABLE });
      const good = await h.servers.start('tel-good');
      const m = h.mesh({
        services: {
          echo: { protocol: 'grpc', loadBalancer: 'round-robin', endpoints: [bad.address, good.address] },
          nf: { protocol: 'grpc', endpoints: [good.address] },
        },
        telemetry: { meterProvider, tracerProvider },
      });
      const c = h.client(m, 'echo');
      // Two calls; round-robin sends at least one first to the failing endpoint: 3 or 4 attempts.
      for (let i = 0; i < 2; i++) assert.ok((await unary(c, { payload: `t${i}` })).ok);
      assert.ok(bad.count >= 1);
      assert.equal(good.count, 2);
      // One call ending in an application status (NOT_FOUND).
      const nf = await unary(h.client(m, 'nf'), { payload: 'nf', failCode: grpc.status.NOT_FOUND });
      assert.ok(!nf.ok && nf.code === grpc.status.NOT_FOUND);

      const { resourceMetrics, errors } = await reader.collect();
      assert.deepEqual(errors, []);
      const metrics = resourceMetrics.scopeMetrics.flatMap((x) => x.metrics);
      const duration = metrics.find((x) => x.descriptor.name === 'rpc.client.call.duration');
      assert.ok(duration, `no rpc.client.call.duration; got ${metrics.map((x) => x.descriptor.name).join(', ')}`);
      assert.equal(duration.descriptor.unit, 's');
      const points = duration.dataPoints as DataPoint<Histogram>[];
      const ok = points.filter((p) => p.attributes['meshlet.service'] === 'echo');
      assert.equal(
        ok.reduce((n, p) => n + p.value.count, 0),
        2,
        'one point per call, not per attempt',
      );
      for (const p of ok) {
        assert.equal(p.attributes['rpc.system'], 'grpc');
        assert.equal(p.attributes['rpc.service'], 'meshlet.test.Echo');
        assert.equal(p.attributes['rpc.method'], 'Unary');
        assert.equal(p.attributes['rpc.grpc.status_code'], 0);
        assert.equal(p.attributes['server.address'], '127.0.0.1');
        assert.equal(p.attributes['server.port'], good.port, 'server.port is the last attempt’s endpoint');
        assert.equal(p.attributes['error.type'], undefined);
      }
      const failed = points.filter((p) => p.attributes['meshlet.service'] === 'nf');
      assert.equal(failed.length, 1);
      assert.equal(failed[0].attributes['rpc.grpc.status_code'], grpc.status.NOT_FOUND);
      assert.equal(failed[0].attributes['error.type'], 'NOT_FOUND');
      // No HTTP duration for gRPC calls.
      assert.equal(
        metrics.find((x) => x.descriptor.name === 'http.client.request.duration'),
        undefined,
        'gRPC calls recorded http.client.request.duration',
      );
      const retries = metrics.find((x) => x.descriptor.name === 'meshlet.client.retries');
      assert.ok(retries, 'the retry is counted by the shared meshlet.client.retries counter');

      const clientSpans = spans.getFinishedSpans().filter((x) => x.kind === SpanKind.CLIENT);
      assert.equal(clientSpans.length, 3, 'one CLIENT span per call');
      for (const sp of clientSpans) assert.equal(sp.name, METHOD.unary);
    } finally {
      await meterProvider.shutdown();
      await tracerProvider.shutdown();
    }
  });

  it('a stream’s CLIENT span lasts until its status, and carries a failure that came after its first message', async () => {
    const spans = new InMemorySpanExporter();
    const tracerProvider = new BasicTracerProvider({ spanProcessors: [new SimpleSpanProcessor(spans)] });
    try {
      const slow = await h.servers.start('span-slow');
      const mid = await h.servers.start('span-mid', { failAfterFirst: grpc.status.INTERNAL });
      const m = h.mesh({
        services: {
          slow: { protocol: 'grpc', endpoints: [slow.address] },
          mid: { protocol: 'grpc', endpoints: [mid.address] },
        },
        telemetry: { tracerProvider },
      });
      // 5 replies 40 ms apart: the first comes at once, the status ~160 ms later.
      const o = await serverStream(h.client(m, 'slow'), { payload: 'long', messages: 5, sleepMs: 40 });
      assert.equal(o.error, undefined, o.error?.details);
      const failed = await serverStream(h.client(m, 'mid'), { payload: 'x', messages: 3 });
      assert.equal(failed.error?.code, grpc.status.INTERNAL);

      const clientSpans = spans.getFinishedSpans().filter((x) => x.kind === SpanKind.CLIENT);
      assert.equal(clientSpans.length, 2, 'one CLIENT span per call');
      const [long, broken] = clientSpans;
      const ms = (sp: (typeof clientSpans)[number]) => sp.duration[0] * 1e3 + sp.duration[1] / 1e6;
      assert.ok(ms(long) >= 150, `the stream's span ended after ${ms(long).toFixed(0)} ms, at its first message`);
      assert.equal(long.status.code, SpanStatusCode.UNSET);
      assert.equal(broken.status.code, SpanStatusCode.ERROR, 'the failure after the first message is not on the span');
    } finally {
      await tracerProvider.shutdown();
    }
  });

  it('the counters shared with HTTP count gRPC calls: retries, budget refusals, ejections, breaker transitions', async () => {
    const reader = new PullReader();
    const meterProvider = new MeterProvider({ readers: [reader] });
    try {
      const down = await h.servers.startMany('ctr-down-', 2, { failCode: grpc.status.UNAVAILABLE });
      const m = h.mesh({
        services: {
          counted: {
            protocol: 'grpc',
            endpoints: down.map((x) => x.address),
            circuitBreaker: { consecutiveFailures: 2 },
            outlierDetection: { consecutiveFailures: 1 },
            // One retry in reserve, none from the ratio: the second failing call is refused.
            retry: { budget: { ratio: 0, minPerSecond: 1 } },
          },
        },
        telemetry: { meterProvider },
      });
      const c = h.client(m, 'counted');
      for (let i = 0; i < 6; i++) assert.ok(!(await unary(c, { payload: `x${i}` })).ok);

      const { resourceMetrics, errors } = await reader.collect();
      assert.deepEqual(errors, []);
      const metrics = resourceMetrics.scopeMetrics.flatMap((x) => x.metrics);
      const sum = (name: string): number => {
        const metric = metrics.find((x) => x.descriptor.name === name);
        assert.ok(metric, `no ${name}; got ${metrics.map((x) => x.descriptor.name).join(', ')}`);
        return (metric.dataPoints as DataPoint<number>[])
          .filter((p) => p.attributes['meshlet.service'] === 'counted')
          .reduce((n, p) => n + p.value, 0);
      };
      const stats = m.stats().services.counted;
      assert.ok(stats.retries >= 1);
      assert.equal(sum('meshlet.client.retries'), stats.retries);
      assert.ok(stats.retriesSkippedByBudget >= 1, 'the budget should have refused a retry');
      assert.equal(sum('meshlet.client.retry_budget.refusals'), stats.retriesSkippedByBudget);
      assert.ok(sum('meshlet.outlier.ejections') >= 1, 'an endpoint should have been ejected');
      assert.ok(sum('meshlet.circuit_breaker.transitions') >= 1, 'a breaker should have opened');
    } finally {
      await meterProvider.shutdown();
    }
  });

  it('an endpoint channel is closed when its address leaves the mesh, and every one when the mesh closes', async () => {
    const a = await h.servers.start('leaves');
    const b = await h.servers.start('stays');
    const fa = await new DualPort(a.port, a.port).listen();
    const fb = await new DualPort(b.port, b.port).listen();
    try {
      const m = createMesh({
        services: { echo: { protocol: 'grpc', loadBalancer: 'round-robin', endpoints: [fa.address, fb.address] } },
      });
      const c = h.client(m, 'echo');
      for (let i = 0; i < 4; i++) assert.ok((await unary(c, { payload: `p${i}` })).ok);
      assert.ok(fa.openConnections >= 1 && fb.openConnections >= 1, 'both endpoints should be connected');

      m.update({ services: { echo: { protocol: 'grpc', endpoints: [fb.address] } } });
      await waitFor('the connection to the removed endpoint to close', () => fa.openConnections === 0, 3000, 10);
      assert.ok((await unary(c, { payload: 'after' })).ok);
      assert.ok(fb.openConnections >= 1);

      await m.close();
      await waitFor('every connection to close with the mesh', () => fb.openConnections === 0, 3000, 10);
    } finally {
      await fa.close();
      await fb.close();
    }
  });
});
