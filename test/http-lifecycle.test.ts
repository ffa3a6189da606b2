// Scenario: deadlines and lifecycle of HTTP calls through the mesh.
// - a small request body is read inside the call: a stream that never ends fails at the deadline
//   (MESHLET_ERR_DEADLINE), or with the caller's abort reason;
// - a response whose head arrived but whose body stalls is cut at the call's deadline;
// - endpoints removed by update() have their pools drained and their keep-alive sockets closed,
//   and churning endpoints does not grow the number of pools;
// - mesh.close() does not hang on a stalled response body.
import { after, before, describe, it } from 'node:test';
import assert from 'node:assert/strict';
import http from 'node:http';
import type { AddressInfo, Socket } from 'node:net';
import { Readable } from 'node:stream';
import { setTimeout as sleep } from 'node:timers/promises';
import { request } from 'undici';
import { createMesh } from '@meshlet/core';
import { createMeshDispatcher, createMeshFetch } from '@meshlet/http';
import { ServerSet } from './helpers/servers.ts';
import { withLag } from './helpers/lag.ts';

/** A server that sends the head and part of the body, then nothing more. */
class StallingServer {
  readonly sockets = new Set<Socket>();
  private readonly server = http.createServer((_req, res) => {
    res.writeHead(200, { 'content-length': '1000', 'x-server': 'stall' });
    res.write('partial body');
  });
  constructor() {
    this.server.on('connection', (s) => {
      this.sockets.add(s);
      s.on('close', () => this.sockets.delete(s));
    });
  }
  async listen(): Promise<this> {
    await new Promise<void>((r) => this.server.listen(0, '127.0.0.1', r));
    return this;
  }
  get address(): string {
    return `127.0.0.1:${(this.server.address() as AddressInfo).port}`;
  }
  async close(): Promise<void> {
    for (const s of this.sockets) s.destroy();
    await new Promise<void>((r) => this.server.close(() => r()));
  }
}

/** A stream that never produces a byte and never ends. */
function neverEnding(): Readable {
  return new Readable({ read() {} });
}

async function waitFor(what: string, cond: () => boolean, ms = 3000): Promise<void> {
  const until = performance.now() + ms;
  while (!cond()) {
    if (performance.now() > until) assert.fail(`timed out waiting for ${what}`);
    await sleep(10);
  }
}

describe('http lifecycle: deadlines', () => {
  const servers = new ServerSet();
  let stalling: StallingServer;
  let mesh: ReturnType<typeof createMesh>;
  let dispatcher: ReturnType<typeof createMeshDispatcher>;
  let fetch: ReturnType<typeof createMeshFetch>;

  before(async () => {
    const ok = await servers.start('ok0');
    stalling = await new StallingServer().listen();
    mesh = createMesh({
      services: {
        svc: { endpoints: [ok.address], timeout: { requestMs: 300 } },
        stall: { endpoints: [stalling.address], timeout: { requestMs: 300 } },
      },
    });
    dispatcher = createMeshDispatcher(mesh);
    fetch = createMeshFetch(mesh);
  });

  after(async () => {
    await mesh?.close();
    await servers.closeAll();
    await stalling?.close();
  });

  it('a small body stream that never ends fails with MESHLET_ERR_DEADLINE at requestMs', async () => {
    const t0 = performance.now();
    await assert.rejects(
      request('http://svc/up', {
        dispatcher,
        method: 'PUT',
        headers: { 'content-length': '10' },
        body: neverEnding(),
      }),
      (err: { code?: string }) => err.code === 'MESHLET_ERR_DEADLINE',
    );
    const ms = performance.now() - t0;
    assert.ok(ms >= 250 && ms < 2000, `failed at the deadline (${ms.toFixed(0)} ms)`);
    const svc = mesh.stats().services.svc;
    assert.equal(svc.endpoints[0].failures, 0);
  });

  it('the caller’s abort ends the reading of a small body with the abort reason', async () => {
    const ac = new AbortController();
    const reason = new Error('caller stopped');
    setTimeout(() => ac.abort(reason), 50);
    const t0 = performance.now();
    const { value: ms, lagMs } = await withLag(async () => {
      await assert.rejects(
        request('http://svc/up', {
          dispatcher,
          method: 'PUT',
          headers: { 'content-length': '10' },
          body: neverEnding(),
          signal: ac.signal,
        }),
        (err) => err === reason,
      );
      return performance.now() - t0;
    });
    // The abort's own timer is late by as much as the event loop is (a loaded machine).
    assert.ok(
      ms < 250 + lagMs,
      `ended after ${ms.toFixed(0)} ms (event-loop lag ${lagMs.toFixed(0)} ms), not at the abort`,
    );
  });

  it('a response body that stalls after the head is cut at the deadline (undici.request)', async () => {
    const t0 = performance.now();
    const res = await request('http://stall/x', { dispatcher });
    assert.equal(res.statusCode, 200);
    await assert.rejects(res.body.text(), (err: { code?: string }) => err.code === 'MESHLET_ERR_DEADLINE');
    const ms = performance.now() - t0;
    assert.ok(ms >= 250 && ms < 2000, `cut at the deadline (${ms.toFixed(0)} ms)`);
  });

  it('a response body that stalls after the head is cut at the deadline (fetch)', async () => {
    const t0 = performance.now();
    const res = await fetch('http://stall/x');
    assert.equal(res.status, 200);
    // fetch reports a body cut as its own TypeError('terminated'), with the mesh's error as cause.
    await assert.rejects(
      res.text(),
      (err: { name?: string; cause?: { code?: string } }) =>
        err.name === 'TypeError' && err.cause?.code === 'MESHLET_ERR_DEADLINE',
    );
    const ms = performance.now() - t0;
    assert.ok(ms >= 250 && ms < 2000, `cut at the deadline (${ms.toFixed(0)} ms)`);
  });
});

describe('http lifecycle: pools of removed endpoints', () => {
  const servers = new ServerSet();

  after(async () => {
    await servers.closeAll();
  });

  it('keep-alive sockets to endpoints removed by update() are closed', async () => {
    const [a, b] = await servers.startMany('keep', 2);
    const mesh = createMesh({ services: { svc: { endpoints: [a.address, b.address] } } });
    const dispatcher = createMeshDispatcher(mesh);
    try {
      for (let i = 0; i < 20 && (a.openSockets === 0 || b.openSockets === 0); i++) {
        const res = await request('http://svc/', { dispatcher });
        await res.body.text();
      }
      assert.ok(a.openSockets > 0 && b.openSockets > 0, 'both endpoints have keep-alive sockets');
      assert.equal(dispatcher.poolCount, 2);
      mesh.update({ services: { svc: { endpoints: [a.address] } } });
      await waitFor('the removed endpoint’s sockets to close', () => b.openSockets === 0);
      await waitFor('the removed endpoint’s pool to close', () => dispatcher.poolCount === 1);
      assert.ok(a.openSockets > 0, 'the remaining endpoint keeps its sockets');
      const res = await request('http://svc/', { dispatcher });
      assert.equal(await res.body.text(), a.id);
    } finally {
      await mesh.close();
    }
  });

  it('churning endpoints 50 times does not grow the pool count', async () => {
    const pool = await servers.startMany('churn', 3);
    const mesh = createMesh({ services: { svc: { endpoints: [pool[0].address] } } });
    const dispatcher = createMeshDispatcher(mesh);
    try {
      for (let i = 0; i < 50; i++) {
        const target = pool[i % pool.length];
        mesh.update({ services: { svc: { endpoints: [target.address] } } });
        const res = await request('http://svc/', { dispatcher });
        assert.equal(await res.body.text(), target.id);
      }
      await waitFor('retired pools to close', () => dispatcher.poolCount <= 1);
      await waitFor('sockets of removed endpoints to close', () => pool[0].openSockets + pool[2].openSockets === 0);
    } finally {
      await mesh.close();
    }
  });

  it('mesh.close() does not hang on a response body that stalls', async () => {
    const stalling = await new StallingServer().listen();
    const mesh = createMesh({ services: { stall: { endpoints: [stalling.address], timeout: { requestMs: 60_000 } } } });
    const dispatcher = createMeshDispatcher(mesh, { closeGraceMs: 100 });
    try {
      const res = await request('http://stall/', { dispatcher });
      const body = res.body.text().then(
        () => 'completed',
        () => 'failed',
      );
      const t0 = performance.now();
      await mesh.close();
      assert.ok(performance.now() - t0 < 5000, 'close returned');
      assert.equal(await body, 'failed');
      await waitFor('the stalled socket to close', () => stalling.sockets.size === 0);
    } finally {
      await mesh.close();
      await stalling.close();
    }
  });
});
