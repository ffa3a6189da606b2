// Scenario: faults land on the right party. Requests that are the caller's own fault (a header or
// path undici refuses, a request body stream that errors or stalls) and the caller's own abort
// never count against a healthy endpoint: its breaker stays closed, it is not ejected, its and the
// service's failure counters stay at zero, and normal requests keep succeeding.
import { after, before, describe, it } from 'node:test';
import assert from 'node:assert/strict';
import { Readable } from 'node:stream';
import { request } from 'undici';
import { createMesh, type MeshError } from '@meshlet/core';
import { createMeshDispatcher, createMeshFetch } from '@meshlet/http';
import { ServerSet, type TestServer } from './helpers/servers.ts';
import type { Mesh } from './helpers/load.ts';

/** A body stream that sends one chunk, then never another and never ends. */
function stalledBody(): Readable {
  return new Readable({
    read() {
      if (!(this as Readable & { sent?: boolean }).sent) {
        (this as Readable & { sent?: boolean }).sent = true;
        this.push('first chunk');
      }
    },
  });
}

/** A body stream that sends one chunk, then fails with the caller's own error. */
function failingBody(): Readable {
  let n = 0;
  return new Readable({
    read() {
      if (n++ === 0) this.push('first chunk');
      else setImmediate(() => this.destroy(Object.assign(new Error('caller source broke'), { code: 'ECONNRESET' })));
    },
  });
}

async function rejects(p: Promise<unknown>): Promise<MeshError & { cause?: { code?: string } }> {
  try {
    const res = (await p) as { body?: { dump(): Promise<void> } };
    await res.body?.dump();
  } catch (err) {
    return err as MeshError & { cause?: { code?: string } };
  }
  assert.fail('expected the request to fail');
}

describe('http faults: the caller’s faults never count against the endpoint', () => {
  const servers = new ServerSet();
  let server: TestServer;
  let mesh: Mesh;
  let dispatcher: ReturnType<typeof createMeshDispatcher>;
  let fetch: ReturnType<typeof createMeshFetch>;

  before(async () => {
    server = await servers.start('svc0');
    mesh = createMesh({
      services: {
        svc: {
          endpoints: [server.address],
          timeout: { requestMs: 1000, perTryMs: 300 },
          retry: { maxAttempts: 3 },
          // Low thresholds: counted failures would open the breaker or eject within the burst.
          circuitBreaker: { consecutiveFailures: 3 },
          outlierDetection: { consecutiveFailures: 3 },
        },
      },
    });
    dispatcher = createMeshDispatcher(mesh);
    fetch = createMeshFetch(mesh);
  });

  after(async () => {
    await mesh?.close();
    await servers.closeAll();
  });

  function assertHealthy(): void {
    const svc = mesh.stats().services.svc;
    assert.equal(svc.failures, 0, 'service failures');
    assert.equal(svc.endpoints[0].failures, 0, 'endpoint failures');
    assert.equal(svc.endpoints[0].state, 'healthy', 'endpoint state');
    assert.equal(svc.endpoints[0].ejections, 0, 'ejections');
  }

  it('a burst of 20 requests with a bad header value fails with MESHLET_ERR_INVALID_REQUEST; the endpoint stays healthy', async () => {
    const errors = await Promise.all(
      Array.from({ length: 20 }, () =>
        rejects(request('http://svc/bad', { dispatcher, headers: { 'x-bad': 'a\r\nInjected: yes' } })),
      ),
    );
    for (const err of errors) {
      assert.equal(err.code, 'MESHLET_ERR_INVALID_REQUEST', String(err));
      assert.equal(err.cause?.code, 'UND_ERR_INVALID_ARG');
      assert.match(err.message, /service "svc"/);
    }
    assertHealthy();
    assert.equal(server.count, 0, 'nothing reached the server');
    for (let i = 0; i < 5; i++) {
      const res = await request('http://svc/ok', { dispatcher });
      assert.equal(res.statusCode, 200);
      await res.body.text();
    }
    assertHealthy();
    assert.equal(mesh.stats().services.svc.successes, 5);
  });

  it('an invalid header name, a bad path and a body that contradicts its content-length are the caller’s fault', async () => {
    const cases: Array<[Parameters<typeof dispatcher.request>[0], string]> = [
      [{ origin: 'http://svc', path: '/x', method: 'GET', headers: { 'bad name': 'x' } }, 'UND_ERR_INVALID_ARG'],
      [{ origin: 'http://svc', path: '/a b', method: 'GET' }, 'UND_ERR_INVALID_ARG'],
      [{ origin: 'http://svc', path: 'no-slash', method: 'GET' }, 'UND_ERR_INVALID_ARG'],
      [
        { origin: 'http://svc', path: '/x', method: 'PUT', headers: { 'content-length': '10' }, body: 'abc' },
        'UND_ERR_REQ_CONTENT_LENGTH_MISMATCH',
      ],
    ];
    for (const [opts, cause] of cases) {
      const err = await rejects(dispatcher.request(opts));
      assert.equal(err.code, 'MESHLET_ERR_INVALID_REQUEST', `${JSON.stringify(opts)}: ${String(err)}`);
      assert.equal(err.cause?.code, cause);
    }
    assertHealthy();
  });

  it('a request body stream that errors (even with a network-looking code) is the caller’s fault, sized or not', async () => {
    const unsized = await rejects(request('http://svc/up', { dispatcher, method: 'POST', body: failingBody() }));
    assert.equal(unsized.code, 'MESHLET_ERR_INVALID_REQUEST', String(unsized));
    assert.match(unsized.message, /body stream failed/);
    const sized = await rejects(
      request('http://svc/up', {
        dispatcher,
        method: 'PUT',
        headers: { 'content-length': '100' },
        body: failingBody(),
      }),
    );
    assert.equal(sized.code, 'MESHLET_ERR_INVALID_REQUEST', String(sized));
    assertHealthy();
    assert.equal(mesh.stats().services.svc.retries, 0, 'a caller fault is never retried');
  });

  it('an unbuffered body stream that stalls past the per-try timeout is the caller’s fault, not retried', async () => {
    const t0 = performance.now();
    const err = await rejects(request('http://svc/up', { dispatcher, method: 'PUT', body: stalledBody() }));
    const ms = performance.now() - t0;
    assert.equal(err.code, 'MESHLET_ERR_INVALID_REQUEST', String(err));
    assert.match(err.message, /stalled/);
    assert.ok(ms < 900, `failed at the per-try timeout, not later (${ms.toFixed(0)} ms)`);
    assertHealthy();
    assert.equal(mesh.stats().services.svc.retries, 0);
  });

  it('a fetch body stream that stalls is the caller’s fault too', async () => {
    let sent = false;
    const body = new ReadableStream<Uint8Array>({
      pull(controller) {
        if (!sent) {
          sent = true;
          controller.enqueue(new TextEncoder().encode('first chunk'));
        }
        // then never another chunk, never the end
      },
    });
    const err = await rejects(fetch('http://svc/up', { method: 'PUT', body, duplex: 'half' }));
    assert.equal(err.code, 'MESHLET_ERR_INVALID_REQUEST', String(err));
    assert.match(err.message, /stalled/);
    assertHealthy();
  });

  it('the caller’s abort while the upstream hangs is not the endpoint’s fault', async () => {
    server.behaviour = { mode: 'hang' };
    try {
      const ac = new AbortController();
      const pending = rejects(fetch('http://svc/slow', { signal: ac.signal }));
      setTimeout(() => ac.abort(new Error('caller gave up')), 50);
      const err = await pending;
      assert.match(String((err as Error).message ?? err), /caller gave up|aborted/i);
    } finally {
      server.behaviour = {};
    }
    assertHealthy();
    const res = await request('http://svc/ok', { dispatcher });
    assert.equal(res.statusCode, 200);
    await res.body.text();
  });
});
