// Scenario: streaming calls through the mesh (gRPC A44 commit rule: a call is retried only before
// its first response message).
// - A server stream that fails after its first message is not retried: the client gets the first
//   message, then the error.
// - A server stream that fails with UNAVAILABLE before any message is retried on another backend.
// - Client-streaming and bidi calls are balanced over the backends, and retried before their first
//   response, with every request message replayed.
// - Response headers alone do not commit a call (they are held): a stream failing after its headers
//   and before any message is retried, and the caller sees only the good attempt's headers.
// - Once committed, a stream is no longer under the per-try timeout; its final status still feeds
//   its endpoint's health (a stream failing mid-way gets its endpoint ejected; the caller's cancel
//   or a deadline does not count against it).
// - call.cancel() reaches the server.
// - A stream under way holds its service's concurrency slot (circuitBreaker.maxRequests) and counts
//   in its endpoint's in-flight load until its final status, not only until its first message.
import { after, describe, it } from 'node:test';
import assert from 'node:assert/strict';
import * as grpc from '@grpc/grpc-js';
import { waitFor } from './fixtures/control.ts';
import { runConcurrent } from './helpers/load.ts';
import {
  bidiLockStep,
  clientStream,
  describeFailed,
  drain,
  openStream,
  serverStream,
  tallyOutcomes,
  unary,
} from './fixtures/grpc/client.ts';
import { GrpcHarness, fixedRotation } from './fixtures/grpc/harness.ts';
import { totalCalls } from './fixtures/grpc/servers.ts';

describe('gRPC streaming calls', () => {
  const h = new GrpcHarness();
  after(() => h.close());

  it('a server stream that fails after its first message is not retried: first message, then the error', async () => {
    const mid = await h.servers.start('mid', { failAfterFirst: grpc.status.UNAVAILABLE });
    const other = await h.servers.start('mid-other');
    const mesh = h.mesh({
      services: { echo: { protocol: 'grpc', loadBalancer: 'round-robin', endpoints: [mid.address, other.address] } },
    });
    const client = h.client(mesh, 'echo');

    for (let i = 0; i < 6; i++) {
      const o = await serverStream(client, { payload: `s${i}`, messages: 3 });
      const from = o.replies[0]?.server;
      if (from === 'mid') {
        assert.deepEqual(o.replies, [{ payload: `s${i}`, server: 'mid', seq: 1 }]);
        assert.ok(o.error, 'the mid-stream failure should reach the caller');
        assert.equal(o.error.code, grpc.status.UNAVAILABLE, o.error.details);
      } else {
        assert.equal(o.error, undefined, o.error?.details);
        assert.deepEqual(
          o.replies.map((r) => [r.server, r.seq]),
          [
            ['mid-other', 1],
            ['mid-other', 2],
            ['mid-other', 3],
          ],
        );
      }
    }
    assert.equal(mid.countOf('ServerStream'), 3, 'round-robin: half of the 6 calls went to the failing backend');
    assert.equal(other.countOf('ServerStream'), 3, 'a stream that failed mid-way was retried elsewhere');
    assert.equal(mesh.stats().services.echo.retries, 0);
  });

  it('a stream’s status after its first message counts toward its endpoint’s health: failing mid-stream gets it ejected', async () => {
    const mid = await h.servers.start('health-mid', { failAfterFirst: grpc.status.UNAVAILABLE });
    const other = await h.servers.start('health-other');
    const mesh = h.mesh({
      services: {
        echo: {
          protocol: 'grpc',
          loadBalancer: 'round-robin',
          endpoints: [mid.address, other.address],
          outlierDetection: { consecutiveFailures: 3 },
        },
      },
    });
    const client = h.client(mesh, 'echo');
    const endpoint = (address: string) => mesh.stats().services.echo.endpoints.find((e) => e.address === address)!;

    // Round robin: 6 calls, 3 on each; every one committed on its first message.
    for (let i = 0; i < 6; i++) await serverStream(client, { payload: `h${i}`, messages: 2 });
    assert.equal(mid.countOf('ServerStream'), 3);
    assert.equal(endpoint(mid.address).failures, 3, 'the mid-stream failures were not counted against the endpoint');
    assert.equal(endpoint(mid.address).state, 'ejected', '3 consecutive mid-stream failures should eject it');
    assert.equal(endpoint(other.address).failures, 0);
    assert.equal(endpoint(other.address).state, 'healthy');
    // Ejected: the next calls all go to the other backend, whole.
    for (let i = 0; i < 4; i++) {
      const o = await serverStream(client, { payload: `after${i}`, messages: 2 });
      assert.equal(o.error, undefined, o.error?.details);
    }
    assert.equal(mid.countOf('ServerStream'), 3);
    // The service's stats count each call by how it ended, not by its first message.
    const stats = mesh.stats().services.echo;
    assert.deepEqual([stats.requests, stats.successes, stats.failures], [10, 7, 3]);
  });

  it('a caller’s cancel or a deadline after the first message says nothing against the endpoint', async () => {
    const server = await h.servers.start('health-cancel');
    const mesh = h.mesh({
      services: {
        echo: { protocol: 'grpc', endpoints: [server.address], outlierDetection: { consecutiveFailures: 1 } },
      },
    });
    const client = h.client(mesh, 'echo');
    const { stream, ended } = await openStream(client, { payload: 'long', messages: 50, sleepMs: 20 });
    stream.cancel();
    assert.equal((await ended).error?.code, grpc.status.CANCELLED);
    const cut = await serverStream(
      client,
      { payload: 'long', messages: 50, sleepMs: 20 },
      { deadline: Date.now() + 600 },
    );
    assert.equal(cut.error?.code, grpc.status.DEADLINE_EXCEEDED, cut.error?.details);
    assert.ok(cut.replies.length >= 1);
    const ep = mesh.stats().services.echo.endpoints[0];
    assert.equal(ep.failures, 0);
    assert.equal(ep.state, 'healthy');
    assert.ok((await unary(client, { payload: 'still-there' })).ok);
    // For the service, the cancel is a cancellation and the deadline a failure, as before commit.
    const stats = mesh.stats().services.echo;
    assert.deepEqual([stats.requests, stats.successes, stats.failures, stats.cancelled], [3, 1, 1, 1]);
  });

  it('a server stream that fails with UNAVAILABLE before any message is retried and succeeds on another backend', async () => {
    const bad = await h.servers.start('pre-bad', { failCode: grpc.status.UNAVAILABLE });
    const good = await h.servers.start('pre-good');
    const mesh = h.mesh({
      services: { echo: { protocol: 'grpc', loadBalancer: 'round-robin', endpoints: [bad.address, good.address] } },
    });
    const client = h.client(mesh, 'echo');

    for (let i = 0; i < 6; i++) {
      const o = await serverStream(client, { payload: `s${i}`, messages: 3 });
      assert.equal(o.error, undefined, `call ${i}: ${o.error?.code} ${o.error?.details}`);
      assert.deepEqual(
        o.replies,
        [1, 2, 3].map((seq) => ({ payload: `s${i}`, server: 'pre-good', seq })),
      );
    }
    assert.ok(bad.countOf('ServerStream') >= 1, 'round-robin should have sent some first attempts to the bad backend');
    assert.equal(good.countOf('ServerStream'), 6);
    assert.equal(mesh.stats().services.echo.retries, bad.countOf('ServerStream'));
  });

  it('response headers before the failure do not commit: retried, the caller sees the good attempt’s headers', async () => {
    const bad = await h.servers.start('hdr-bad', { failCode: grpc.status.UNAVAILABLE, headersBeforeFail: true });
    const good = await h.servers.start('hdr-good');
    const mesh = h.mesh({ services: { echo: fixedRotation([bad.address, good.address]) } });
    const client = h.client(mesh, 'echo');

    for (let i = 0; i < 4; i++) {
      const call = client.ServerStream({ payload: `h${i}`, messages: 2 });
      const headers: grpc.Metadata[] = [];
      call.on('metadata', (md) => headers.push(md));
      const o = await drain(call);
      assert.equal(o.error, undefined, `call ${i}: ${o.error?.code} ${o.error?.details}`);
      assert.deepEqual(
        o.replies.map((r) => r.server),
        ['hdr-good', 'hdr-good'],
      );
      assert.equal(headers.length, 1, 'one set of response headers per call');
      assert.deepEqual(headers[0].get('x-served-by'), ['hdr-good'], 'the failed attempt’s headers reached the caller');
    }
    assert.ok(bad.countOf('ServerStream') >= 1, 'no call met the failing backend first');
    assert.equal(mesh.stats().services.echo.retries, bad.countOf('ServerStream'));
  });

  it('a committed stream outlives perTryMs: the per-try timer stops at the first message', async () => {
    const slow = await h.servers.start('long-stream');
    const mesh = h.mesh({
      services: { echo: { protocol: 'grpc', endpoints: [slow.address], timeout: { perTryMs: 150 } } },
    });
    const client = h.client(mesh, 'echo');
    // 6 replies 60 ms apart: the first within the per-try timeout, the stream 360 ms long.
    const o = await serverStream(client, { payload: 'long', messages: 6, sleepMs: 60 });
    assert.equal(o.error, undefined, `${o.error?.code} ${o.error?.details}`);
    assert.equal(o.replies.length, 6);
    assert.equal(slow.count, 1);
  });

  it('client-streaming and bidi calls are balanced over 4 backends', async () => {
    const backends = await h.servers.startMany('bal-', 4);
    const mesh = h.mesh({
      services: { echo: { protocol: 'grpc', loadBalancer: 'round-robin', endpoints: backends.map((s) => s.address) } },
    });
    const client = h.client(mesh, 'echo');

    const cs = await runConcurrent(40, 4, (i) => clientStream(client, [`a${i}`, `b${i}`]));
    assert.deepEqual(tallyOutcomes(cs), { ok: 40 }, describeFailed(cs));
    cs.forEach((o, i) => assert.ok(o.ok && o.reply.payload === `a${i},b${i}` && o.reply.seq === 2));
    const bidi = await runConcurrent(40, 4, (i) => bidiLockStep(client, [`x${i}`, `y${i}`]));
    bidi.forEach((o, i) => {
      assert.equal(o.error, undefined, o.error?.details);
      assert.deepEqual(
        o.replies.map((r) => r.payload),
        [`x${i}`, `y${i}`],
      );
      assert.equal(o.replies[0].server, o.replies[1].server, 'one bidi call is served by one backend');
    });
    for (const s of backends) {
      assert.equal(s.countOf('ClientStream'), 10, `${s.id}: client-streaming calls ${s.countOf('ClientStream')} of 40`);
      assert.equal(s.countOf('Bidi'), 10, `${s.id}: bidi calls ${s.countOf('Bidi')} of 40`);
    }
  });

  it('client-streaming and bidi calls failing before their first response are retried, every message replayed', async () => {
    const bad = await h.servers.start('replay-bad', { failCode: grpc.status.UNAVAILABLE });
    const good = await h.servers.start('replay-good');
    // Keep the bad backend in rotation: every call's first attempt alternates onto it.
    const mesh = h.mesh({ services: { echo: fixedRotation([bad.address, good.address]) } });
    const client = h.client(mesh, 'echo');

    // The bad backend reads the whole request stream, then fails: the retry must resend all of it.
    for (let i = 0; i < 4; i++) {
      const payloads = Array.from({ length: 5 }, (_, k) => `c${i}-${k}`);
      const o = await clientStream(client, payloads);
      assert.ok(o.ok, o.ok ? '' : `call ${i}: ${o.code} ${o.error.details}`);
      assert.deepEqual(o.reply, { payload: payloads.join(','), server: 'replay-good', seq: 5 });
    }
    assert.ok(bad.countOf('ClientStream') >= 1, 'no client-streaming call was tried on the bad backend first');

    // The bad backend fails on the first message, before any reply: the retry replays it, and the
    // messages written after the retry reach the new backend.
    for (let i = 0; i < 4; i++) {
      const o = await bidiLockStep(client, [`b${i}-0`, `b${i}-1`, `b${i}-2`]);
      assert.equal(o.error, undefined, `call ${i}: ${o.error?.code} ${o.error?.details}`);
      assert.deepEqual(
        o.replies,
        [0, 1, 2].map((k) => ({ payload: `b${i}-${k}`, server: 'replay-good', seq: k + 1 })),
      );
    }
    assert.ok(bad.countOf('Bidi') >= 1, 'no bidi call was tried on the bad backend first');
    const stats = mesh.stats().services.echo;
    assert.equal(stats.retries, bad.countOf('ClientStream') + bad.countOf('Bidi'));
    assert.equal(totalCalls([good]), 8);
  });

  it('call.cancel() reaches the server (unary and server-streaming)', async () => {
    const server = await h.servers.start('cancel');
    const mesh = h.mesh({ services: { echo: { protocol: 'grpc', endpoints: [server.address] } } });
    const client = h.client(mesh, 'echo');

    // Server stream: 50 replies 20 ms apart; the client cancels after the first.
    const { stream, ended } = await openStream(client, { payload: 'long', messages: 50, sleepMs: 20 });
    stream.cancel();
    const o = await ended;
    assert.equal(o.error?.code, grpc.status.CANCELLED, `the caller's cancel ended the call with ${o.error?.code}`);
    await waitFor('the server to see the stream cancelled', () => server.calls[0]?.cancelled, 2000, 5);
    assert.ok(o.replies.length < 50);

    // Unary: the server sleeps 2 s; the client cancels once the call has arrived.
    server.reset();
    const pending = new Promise<grpc.ServiceError | null>((resolve) => {
      const call = client.Unary({ payload: 'slow', sleepMs: 2000 }, new grpc.Metadata(), {}, (err) => resolve(err));
      void server.arrived(1).then(() => call.cancel());
    });
    const err = await pending;
    assert.equal(err?.code, grpc.status.CANCELLED);
    await waitFor('the server to see the unary call cancelled', () => server.calls[0]?.cancelled, 2000, 5);
    assert.equal(server.count, 1, 'a cancelled call is not retried');
    assert.equal(mesh.stats().services.echo.retries, 0);

    // The channel still works after the cancellations.
    assert.ok((await unary(client, { payload: 'after' })).ok);
  });

  it('a stream under way holds its concurrency slot (maxRequests) and loads its endpoint until it ends', async () => {
    const server = await h.servers.start('slot');
    const mesh = h.mesh({
      services: {
        echo: {
          protocol: 'grpc',
          endpoints: [server.address],
          circuitBreaker: { maxRequests: 2, maxPending: 0 },
        },
      },
    });
    const client = h.client(mesh, 'echo');
    const long = { payload: 'long', messages: 250, sleepMs: 20 };
    const first = await openStream(client, long);
    const second = await openStream(client, long);
    // Both committed on their first message, both still open: the service is at its limit.
    const stats = (): { inFlight: number; endpoint: number } => {
      const svc = mesh.stats().services.echo;
      return { inFlight: svc.inFlight, endpoint: svc.endpoints[0].inFlight };
    };
    assert.deepEqual(stats(), { inFlight: 2, endpoint: 2 });
    const refused = await unary(client, { payload: 'third' });
    assert.equal(refused.ok, false, 'a third call past maxRequests: 2 should be refused');
    assert.equal(refused.code, grpc.status.RESOURCE_EXHAUSTED, refused.error?.details);
    assert.match(refused.error!.details, /MESHLET_ERR_OVERLOADED/);

    // One stream ends (the caller's cancel): its slot and its endpoint load go with it.
    first.stream.cancel();
    assert.equal((await first.ended).error?.code, grpc.status.CANCELLED);
    assert.deepEqual(stats(), { inFlight: 1, endpoint: 1 });
    assert.ok((await unary(client, { payload: 'fits-again' })).ok);
    second.stream.cancel();
    await second.ended;
    assert.deepEqual(stats(), { inFlight: 0, endpoint: 0 });
  });
});
