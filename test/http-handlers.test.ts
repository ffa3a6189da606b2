// Scenario: a controller-style undici handler (onRequestStart/onResponseStart/…) driven through the
// mesh dispatcher can abort through its controller, and then hears exactly one error and nothing
// after it.
import { after, before, describe, it } from 'node:test';
import assert from 'node:assert/strict';
import http from 'node:http';
import type { AddressInfo } from 'node:net';
import type { Dispatcher } from 'undici';
import { createMesh } from '@meshlet/core';
import { createMeshDispatcher } from '@meshlet/http';

interface Controller {
  abort(reason?: Error): void;
  pause(): void;
  resume(): void;
  readonly aborted: boolean;
  readonly paused: boolean;
}

describe('http handlers: controller-style handlers', () => {
  let server: http.Server;
  let mesh: ReturnType<typeof createMesh>;
  let dispatcher: ReturnType<typeof createMeshDispatcher>;

  before(async () => {
    server = http.createServer((req, res) => {
      if (req.url === '/chunks') {
        res.write('one,');
        setTimeout(() => res.write('two,'), 10);
        setTimeout(() => res.end('three'), 20);
        return;
      }
      res.end('plain');
    });
    await new Promise<void>((r) => server.listen(0, '127.0.0.1', r));
    const address = `127.0.0.1:${(server.address() as AddressInfo).port}`;
    mesh = createMesh({ services: { svc: { endpoints: [address] } } });
    dispatcher = createMeshDispatcher(mesh);
  });

  after(async () => {
    await mesh?.close();
    server.closeAllConnections();
    await new Promise<void>((r) => server.close(() => r()));
  });

  function dispatchNew(
    path: string,
    onData?: (controller: Controller, chunk: Buffer) => void,
  ): Promise<{ status: number; body: string; events: string[]; error?: Error }> {
    return new Promise((resolve) => {
      const events: string[] = [];
      const chunks: Buffer[] = [];
      let status = 0;
      const handler = {
        onRequestStart() {
          events.push('start');
        },
        onResponseStart(_c: Controller, statusCode: number) {
          status = statusCode;
          events.push(`head ${statusCode}`);
        },
        onResponseData(c: Controller, chunk: Buffer) {
          chunks.push(chunk);
          onData?.(c, chunk);
        },
        onResponseEnd() {
          events.push('end');
          resolve({ status, body: Buffer.concat(chunks).toString(), events });
        },
        onResponseError(_c: Controller, error: Error) {
          events.push('error');
          resolve({ status, body: Buffer.concat(chunks).toString(), events, error });
        },
      };
      dispatcher.dispatch(
        { origin: 'http://svc', path, method: 'GET' },
        handler as unknown as Dispatcher.DispatchHandler,
      );
    });
  }

  it('an abort through the controller ends the response with one error and nothing after it', async () => {
    const reason = new Error('enough');
    const r = await dispatchNew('/chunks', (c) => c.abort(reason));
    assert.deepEqual(r.events, ['start', 'head 200', 'error']);
    assert.equal(r.error, reason);
    assert.equal(r.body, 'one,');
  });
});
