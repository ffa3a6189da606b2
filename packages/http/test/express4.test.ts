// meshMiddleware on a real Express 4 app (installed as `express4`, an npm alias of express@4): the
// same signature as Express 5, but another router, so route templates and the request lifecycle
// are checked again. Real undici, a real backend on 127.0.0.1.
import { after, before, describe, it } from 'node:test';
import assert from 'node:assert/strict';
import { createServer, type IncomingMessage, type Server, type ServerResponse } from 'node:http';
import type { AddressInfo } from 'node:net';
import { createRequire } from 'node:module';
import { setTimeout as sleep } from 'node:timers/promises';
import { request } from 'undici';
import { createMesh, type Mesh } from '@meshlet/core';
import { createMeshFetch, type MeshFetch } from '@meshlet/http';
import { meshMiddleware } from '@meshlet/http/express';
import { callBackend, eventually, type CallResult } from './helpers.js';

/** The parts of Express 4's API this test uses (the package ships no types of its own). */
interface Req {
  params: Record<string, string>;
}
interface Res {
  json(body: unknown): void;
  status(code: number): Res;
}
type Handler = (req: Req, res: Res) => unknown;
interface Router {
  get(path: string, handler: Handler): void;
  use(pathOrHandler: unknown, router?: unknown): void;
}
interface App extends Router {
  listen(port: number, host: string, cb: () => void): Server;
}
const express4 = createRequire(import.meta.url)('express4') as (() => App) & { Router(): Router };
const expressVersion = (createRequire(import.meta.url)('express4/package.json') as { version: string }).version;

describe(`meshMiddleware (Express ${expressVersion})`, () => {
  let backend: Server;
  let front: Server;
  let mesh: Mesh;
  let fetch: MeshFetch;
  let base = '';
  let handled = 0;
  let accepted = 0;
  let okRequests = 0;
  const aborted: string[] = [];
  let lastCall: Promise<CallResult> | undefined;

  before(async () => {
    assert.match(expressVersion, /^4\./, 'the express4 alias is Express 4');
    backend = createServer((req: IncomingMessage, res: ServerResponse) => {
      if (req.url === '/slow') {
        const timer = setTimeout(() => res.end('late'), 10_000);
        res.on('close', () => {
          clearTimeout(timer);
          if (!res.writableFinished) aborted.push(req.url ?? '');
        });
        return;
      }
      okRequests++;
      res.end('ok');
    });
    backend.on('connection', () => accepted++);
    await new Promise<void>((r) => backend.listen(0, '127.0.0.1', r));
    mesh = createMesh({
      service: 'front4',
      services: { backend: { endpoints: [`127.0.0.1:${(backend.address() as AddressInfo).port}`] } },
    });
    fetch = createMeshFetch(mesh);

    const app = express4();
    app.use(meshMiddleware(mesh));
    app.get('/users/:id', (req, res) => {
      handled++;
      res.json({ id: req.params.id });
    });
    app.get('/call', async (_req, res) => {
      lastCall = callBackend(fetch, '/slow');
      const r = await lastCall;
      res.status(r.status === 0 ? 502 : r.status).json(r);
    });
    app.get('/after/:ms', async (req, res) => {
      await sleep(Number(req.params.ms));
      lastCall = callBackend(fetch, '/ok');
      const r = await lastCall;
      res.status(r.status === 0 ? 502 : r.status).json(r);
    });
    const posts = express4.Router();
    posts.get('/posts/:pid', (req, res) => res.json({ pid: req.params.pid }));
    app.use('/orgs/:org', posts);
    await new Promise<void>((resolve) => {
      front = app.listen(0, '127.0.0.1', resolve);
    });
    base = `http://127.0.0.1:${(front.address() as AddressInfo).port}`;
  });

  after(async () => {
    await mesh.close();
    for (const s of [front, backend]) {
      s.closeAllConnections();
      await new Promise((r) => s.close(r));
    }
  });

  it('answers 504 without running the handler when the caller’s budget is spent', async () => {
    const before = handled;
    const res = await request(`${base}/users/1`, { headers: { 'meshlet-timeout': '0m', 'meshlet-caller': 'web' } });
    assert.equal(res.statusCode, 504);
    await res.body.text();
    assert.equal(handled, before);
    const ok = await request(`${base}/users/2`, { headers: { 'meshlet-timeout': '5S', 'meshlet-caller': 'web' } });
    assert.equal(ok.statusCode, 200);
    await ok.body.text();
    assert.equal(handled, before + 1);
  });

  it('clamps the handler’s outbound call to the inbound budget, and fails a late one at once', async () => {
    const t0 = performance.now();
    const res = await request(`${base}/call`, { headers: { 'meshlet-timeout': '200m' } });
    const body = (await res.body.json()) as { code?: string; ms: number };
    const took = performance.now() - t0;
    assert.equal(body.code, 'MESHLET_ERR_DEADLINE');
    assert.ok(body.ms >= 150 && took < 5000, `the outbound call ran ${body.ms.toFixed(0)} ms, not its own 15 s`);
    await sleep(100); // the cut connection's replacement, if undici makes one, is not the late call's
    const connections = accepted;
    const sent = okRequests;
    const late = await request(`${base}/after/120`, { headers: { 'meshlet-timeout': '50m' } });
    assert.equal(((await late.body.json()) as { code?: string }).code, 'MESHLET_ERR_DEADLINE');
    assert.equal(okRequests, sent, 'the late call sent nothing');
    assert.equal(accepted, connections, 'the late call opened no connection');
  });

  it('cancels the outbound call with MESHLET_ERR_CALLER_GONE when the caller disconnects', async () => {
    aborted.length = 0;
    const ac = new AbortController();
    const pending = request(`${base}/call`, { signal: ac.signal, headers: { 'meshlet-caller': 'quitter' } });
    await eventually(() => (lastCall !== undefined ? true : undefined), 'the outbound call');
    await sleep(50);
    ac.abort();
    await assert.rejects(pending);
    await eventually(() => (aborted.length > 0 ? true : undefined), 'the backend to see its request cut');
    assert.equal((await lastCall!).code, 'MESHLET_ERR_CALLER_GONE');
    const row = await eventually(
      () => mesh.stats().inbound.find((r) => r.route === '/call' && r.caller === 'quitter'),
      'the cancelled request in stats',
    );
    assert.equal(row.cancelled, 1);
  });

  it('reports routes by their template, mount paths included, per caller', async () => {
    const res = await request(`${base}/orgs/acme/posts/7`, { headers: { 'meshlet-caller': 'web' } });
    assert.equal(res.statusCode, 200);
    await res.body.text();
    const row = await eventually(
      () => mesh.stats().inbound.find((r) => r.route === '/orgs/:org/posts/:pid' && r.caller === 'web'),
      'the nested route in stats',
    );
    assert.equal(row.requests, 1);
    assert.ok(mesh.stats().inbound.some((r) => r.route === '/users/:id' && r.caller === 'web' && r.successes === 1));
  });
});
