// The call deadline is the mesh's, not grpc-js's (src/client/deadline.ts): an attempt's grpc-js call
// gets no deadline of its own, the mesh writes grpc-timeout, and a committed call still open at its
// deadline is cut by the mesh.
// - A backend that lies: it answers with headers and one message and then never sends its status.
//   A unary call and a server stream both end with DEADLINE_EXCEEDED at the deadline (not before;
//   the upper bound only tells a cut call from a hanging one),
//   naming the service, method, endpoint and the setting to change; the backend sees its stream reset.
//   A plain grpc-js server cannot stand in for it (it enforces grpc-timeout itself), so this backend
//   is node:http2 speaking gRPC's framing.
// - The deadline that ends it is the earliest one: the caller's `deadline` option names itself.
// - grpc-timeout on the wire carries what is left of the call's deadline (no grpc-js timer needed);
//   a call made with a grpc-js `parent` carries the earlier of the parent's deadline and the mesh's.
// - The caller's Metadata object comes back as it went in: what the mesh adds goes on a copy.
// - grpcTimeoutValue: at most 8 digits and a unit, rounded up.
import { after, describe, it } from 'node:test';
import assert from 'node:assert/strict';
import http2 from 'node:http2';
import type { AddressInfo } from 'node:net';
import * as grpc from '@grpc/grpc-js';
import { createMesh, type Mesh } from '@meshlet/core';
import { meshGrpcOptions } from '../src/index.js';
import { grpcTimeoutValue } from '../src/client/deadline.js';

const identity = (b: Buffer): Buffer => b;

interface LyingBackend {
  address: string;
  /** grpc-timeout of each request, in arrival order. */
  timeouts: string[];
  /** RST_STREAM codes of streams the client reset (NGHTTP2_CANCEL = 8). */
  resets: number[];
  close(): Promise<void>;
}

/** Answers every call with headers and one 3-byte message, then holds the stream open forever. */
async function lyingBackend(): Promise<LyingBackend> {
  const timeouts: string[] = [];
  const resets: number[] = [];
  const sessions = new Set<http2.ServerHttp2Session>();
  const server = http2.createServer();
  server.on('session', (session) => sessions.add(session));
  server.on('stream', (stream, headers) => {
    timeouts.push(String(headers['grpc-timeout'] ?? ''));
    stream.on('close', () => {
      if (stream.rstCode !== 0) resets.push(stream.rstCode);
    });
    stream.on('error', () => {});
    stream.on('data', () => {});
    stream.respond({ ':status': 200, 'content-type': 'application/grpc' });
    const frame = Buffer.alloc(5 + 3);
    frame.writeUInt32BE(3, 1);
    frame.write('abc', 5);
    stream.write(frame);
  });
  await new Promise<void>((resolve) => server.listen(0, '127.0.0.1', resolve));
  const port = (server.address() as AddressInfo).port;
  return {
    address: `127.0.0.1:${port}`,
    timeouts,
    resets,
    close: () =>
      new Promise<void>((resolve) => {
        // The held streams would keep close() waiting.
        for (const s of sessions) s.destroy();
        server.close(() => resolve());
      }),
  };
}

interface Outcome {
  err: grpc.ServiceError | undefined;
  ms: number;
  messages: number;
}

function unaryCall(client: grpc.Client, options: grpc.CallOptions = {}, md = new grpc.Metadata()): Promise<Outcome> {
  const t0 = performance.now();
  return new Promise((resolve) => {
    client.makeUnaryRequest('/lie.Lie/Get', identity, identity, Buffer.from('q'), md, options, (err, res) =>
      resolve({ err: err ?? undefined, ms: performance.now() - t0, messages: res === undefined ? 0 : 1 }),
    );
  });
}

function streamCall(client: grpc.Client, options: grpc.CallOptions = {}): Promise<Outcome> {
  const t0 = performance.now();
  return new Promise((resolve) => {
    const call = client.makeServerStreamRequest('/lie.Lie/Watch', identity, identity, Buffer.from('q'), options);
    let messages = 0;
    call.on('data', () => messages++);
    call.on('error', (err: grpc.ServiceError) => resolve({ err, ms: performance.now() - t0, messages }));
    call.on('end', () => resolve({ err: undefined, ms: performance.now() - t0, messages }));
  });
}

describe('gRPC deadline held by the mesh', () => {
  const meshes: Mesh[] = [];
  const clients: grpc.Client[] = [];
  const backends: LyingBackend[] = [];
  after(async () => {
    for (const c of clients) c.close();
    for (const m of meshes) await m.close();
    for (const b of backends) await b.close();
  });

  async function setup(requestMs: number): Promise<{ backend: LyingBackend; client: grpc.Client; mesh: Mesh }> {
    const backend = await lyingBackend();
    backends.push(backend);
    const mesh = createMesh({
      services: { lie: { protocol: 'grpc', endpoints: [backend.address], timeout: { requestMs } } },
    });
    meshes.push(mesh);
    const client = new grpc.Client('meshlet:///lie', grpc.credentials.createInsecure(), meshGrpcOptions(mesh));
    clients.push(client);
    return { backend, client, mesh };
  }

  it('a committed unary call whose status never comes ends with DEADLINE_EXCEEDED at requestMs, and the stream is reset', async () => {
    const { backend, client } = await setup(300);
    const o = await unaryCall(client);
    assert.equal(o.err?.code, grpc.status.DEADLINE_EXCEEDED, o.err?.details);
    // The upper bound tells a cut call from one left hanging (a loaded machine may be late by a second).
    assert.ok(o.ms >= 290 && o.ms < 1500, `ended after ${o.ms.toFixed(0)} ms, deadline 300 ms`);
    assert.match(
      o.err!.details,
      new RegExp(
        `^MESHLET_ERR_DEADLINE: service "lie" method Get: deadline of 300 ms exceeded while the response stream from ` +
          `${backend.address.replace(/\./g, '\\.')} was still open .*Raise services\\.lie\\.timeout\\.requestMs`,
      ),
    );
    assert.equal((o.err as grpc.ServiceError & { meshletCode?: string }).meshletCode, 'MESHLET_ERR_DEADLINE');
    await waitUntil(() => backend.resets.length === 1);
    assert.deepEqual(backend.resets, [http2.constants.NGHTTP2_CANCEL]);
  });

  it('a server stream open past its deadline is cut after its first message, and the caller’s deadline names itself', async () => {
    const { backend, client } = await setup(5000);
    const o = await streamCall(client, { deadline: Date.now() + 250 });
    assert.equal(o.messages, 1);
    assert.equal(o.err?.code, grpc.status.DEADLINE_EXCEEDED, o.err?.details);
    assert.ok(o.ms >= 240 && o.ms < 1500, `ended after ${o.ms.toFixed(0)} ms, deadline 250 ms, requestMs 5 s`);
    assert.match(o.err!.details, /method Watch: deadline of 2\d\d ms exceeded .*The deadline was the caller’s own/);
    await waitUntil(() => backend.resets.length === 1);
  });

  it('grpc-timeout carries what is left of the deadline; the caller’s Metadata is left as it was', async () => {
    const { backend, client } = await setup(200);
    const md = new grpc.Metadata();
    md.set('x-request-id', 'r1');
    const o = await unaryCall(client, {}, md);
    assert.equal(o.err?.code, grpc.status.DEADLINE_EXCEEDED);
    assert.equal(backend.timeouts.length, 1);
    const m = /^(\d+)m$/.exec(backend.timeouts[0]);
    assert.ok(m !== null, `grpc-timeout ${backend.timeouts[0]}`);
    assert.ok(Number(m[1]) <= 200 && Number(m[1]) >= 150, `grpc-timeout ${backend.timeouts[0]} for a 200 ms deadline`);
    assert.deepEqual(md.getMap(), { 'x-request-id': 'r1' }, 'the mesh wrote into the caller’s Metadata');
  });
});

describe('gRPC deadline with a grpc-js parent call', () => {
  // A front server whose handler calls the lying backend through the mesh with `{ parent: call }`:
  // grpc-js then applies the parent's deadline itself, and the attempt must carry the earlier of
  // the parent's and the mesh's.
  const closers: Array<() => Promise<void> | void> = [];
  after(async () => {
    for (const close of closers.reverse()) await close();
  });

  async function front(
    requestMs: number,
  ): Promise<{ backend: LyingBackend; call(deadlineMs: number): Promise<Outcome> }> {
    const backend = await lyingBackend();
    closers.push(() => backend.close());
    const mesh = createMesh({
      services: { lie: { protocol: 'grpc', endpoints: [backend.address], timeout: { requestMs } } },
    });
    closers.push(() => mesh.close());
    const inner = new grpc.Client('meshlet:///lie', grpc.credentials.createInsecure(), meshGrpcOptions(mesh));
    closers.push(() => inner.close());
    const server = new grpc.Server();
    server.addService(
      {
        Get: {
          path: '/front.Front/Get',
          requestStream: false,
          responseStream: false,
          requestSerialize: identity,
          requestDeserialize: identity,
          responseSerialize: identity,
          responseDeserialize: identity,
        },
      },
      {
        Get(call: grpc.ServerUnaryCall<Buffer, Buffer>, callback: grpc.sendUnaryData<Buffer>) {
          inner.makeUnaryRequest(
            '/lie.Lie/Get',
            identity,
            identity,
            Buffer.from('q'),
            new grpc.Metadata(),
            { parent: call },
            (err) => callback(err, Buffer.from('done')),
          );
        },
      },
    );
    const port = await new Promise<number>((resolve, reject) =>
      server.bindAsync('127.0.0.1:0', grpc.ServerCredentials.createInsecure(), (err, p) =>
        err ? reject(err) : resolve(p),
      ),
    );
    closers.push(() => void server.forceShutdown());
    const outer = new grpc.Client(`127.0.0.1:${port}`, grpc.credentials.createInsecure());
    closers.push(() => outer.close());
    return {
      backend,
      call: (deadlineMs) => {
        const t0 = performance.now();
        return new Promise((resolve) =>
          outer.makeUnaryRequest(
            '/front.Front/Get',
            identity,
            identity,
            Buffer.from('q'),
            new grpc.Metadata(),
            { deadline: Date.now() + deadlineMs },
            (err) => resolve({ err: err ?? undefined, ms: performance.now() - t0, messages: 0 }),
          ),
        );
      },
    };
  }

  const timeoutOf = (value: string): number => {
    const m = /^(\d+)m$/.exec(value);
    assert.ok(m !== null, `grpc-timeout ${value}`);
    return Number(m[1]);
  };

  it('the mesh’s requestMs, when earlier than the parent’s deadline, is what the attempt carries and what ends it', async () => {
    const f = await front(300);
    const o = await f.call(5000);
    assert.equal(o.err?.code, grpc.status.DEADLINE_EXCEEDED, o.err?.details);
    assert.ok(
      o.ms >= 290 && o.ms < 1500,
      `ended after ${o.ms.toFixed(0)} ms: the parent's 5 s deadline, not requestMs`,
    );
    assert.equal(f.backend.timeouts.length, 1);
    assert.ok(timeoutOf(f.backend.timeouts[0]) <= 300, `grpc-timeout ${f.backend.timeouts[0]} for requestMs 300`);
  });

  it('the parent’s deadline, when earlier than requestMs, is what the attempt carries', async () => {
    const f = await front(5000);
    const o = await f.call(300);
    assert.equal(o.err?.code, grpc.status.DEADLINE_EXCEEDED, o.err?.details);
    assert.equal(f.backend.timeouts.length, 1);
    assert.ok(timeoutOf(f.backend.timeouts[0]) <= 300, `grpc-timeout ${f.backend.timeouts[0]} under a 300 ms parent`);
  });
});

describe('grpcTimeoutValue', () => {
  it('is at most 8 digits and a unit, rounded up', () => {
    assert.equal(grpcTimeoutValue(0), '0m');
    assert.equal(grpcTimeoutValue(-5), '0m');
    assert.equal(grpcTimeoutValue(1.2), '2m');
    assert.equal(grpcTimeoutValue(15_000), '15000m');
    assert.equal(grpcTimeoutValue(99_999_999), '99999999m');
    assert.equal(grpcTimeoutValue(100_000_000), '100000S');
    assert.equal(grpcTimeoutValue(100_000_001), '100001S');
    assert.equal(grpcTimeoutValue(1e11 + 1), '1666667M');
    assert.equal(grpcTimeoutValue(1e13), '2777778H');
    assert.equal(grpcTimeoutValue(1e20), '99999999H');
  });
});

async function waitUntil(cond: () => boolean, ms = 2000): Promise<void> {
  const end = Date.now() + ms;
  while (!cond()) {
    if (Date.now() > end) throw new Error('timed out waiting');
    await new Promise((r) => setTimeout(r, 5));
  }
}
