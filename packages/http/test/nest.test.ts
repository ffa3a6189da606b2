// MeshModule on real Nest 12 applications (Express platform) on 127.0.0.1, called through undici:
// forRoot and forRootAsync, MESH and MESH_FETCH injected into a controller, the inbound
// middleware active on controller routes (stats, 504, deadline clamp), and the mesh closed on
// app.close() only when the module made it. Decorators are applied as functions: the test build,
// like the library's, has no experimentalDecorators.
import { after, before, describe, it } from 'node:test';
import assert from 'node:assert/strict';
import { createServer, type IncomingMessage, type Server } from 'node:http';
import type { AddressInfo } from 'node:net';
import { performance } from 'node:perf_hooks';
import { eventually } from './helpers.js';
import { Controller, Get, Inject, Module, Param, type INestApplication } from '@nestjs/common';
import { NestFactory } from '@nestjs/core';
import { request } from 'undici';
import { createMesh, type Mesh, type MeshError } from '@meshlet/core';
import type { MeshFetch } from '@meshlet/http';
import { MESH, MESH_FETCH, MeshModule, type MeshModuleConfig } from '@meshlet/http/nest';

/** Applies a method decorator to `Class.prototype[name]` as the decorator syntax would. */
function decorateMethod(target: object, name: string, ...decorators: MethodDecorator[]): void {
  const descriptor = Object.getOwnPropertyDescriptor(target, name)!;
  for (const d of decorators) d(target, name, descriptor);
  Object.defineProperty(target, name, descriptor);
}

let handled = 0;

class UsersController {
  constructor(
    readonly mesh: Mesh,
    readonly fetch: MeshFetch,
  ) {}

  get(id: string): { id: string; service: string | undefined } {
    handled++;
    return { id, service: this.mesh.service };
  }

  async call(path: string): Promise<{ status: number; code?: string; ms: number }> {
    const t0 = performance.now();
    try {
      const r = await this.fetch(`http://backend/${path}`);
      await r.text();
      return { status: r.status, ms: performance.now() - t0 };
    } catch (err) {
      return { status: 0, code: (err as MeshError).code, ms: performance.now() - t0 };
    }
  }
}
Controller('users')(UsersController);
decorateMethod(UsersController.prototype, 'get', Get(':id'));
Param('id')(UsersController.prototype, 'get', 0);
decorateMethod(UsersController.prototype, 'call', Get('call/:path'));
Param('path')(UsersController.prototype, 'call', 0);
Inject(MESH)(UsersController, undefined, 0);
Inject(MESH_FETCH)(UsersController, undefined, 1);

/** A stand-in for an application's config module, for forRootAsync's inject. */
const BACKEND_ADDRESS = 'BACKEND_ADDRESS';
class ConfigModule {}

async function listenBackend(): Promise<{ server: Server; address: string; requests: IncomingMessage[] }> {
  const requests: IncomingMessage[] = [];
  const server = createServer((req, res) => {
    requests.push(req);
    if (req.url === '/slow') {
      const t = setTimeout(() => res.end('late'), 10_000);
      res.on('close', () => clearTimeout(t));
      return;
    }
    res.end('ok');
  });
  await new Promise<void>((resolve) => server.listen(0, '127.0.0.1', resolve));
  return { server, address: `127.0.0.1:${(server.address() as AddressInfo).port}`, requests };
}

async function startNest(imports: unknown[]): Promise<{ app: INestApplication; base: string }> {
  class AppModule {}
  Module({ imports: imports as never[], controllers: [UsersController] })(AppModule);
  const app = await NestFactory.create(AppModule, { logger: false, abortOnError: false });
  await app.listen(0, '127.0.0.1');
  return { app, base: await app.getUrl() };
}

function closedPromise(mesh: Mesh): { closed: () => boolean } {
  let closed = false;
  mesh.subscribe({ closed: () => void (closed = true) });
  return { closed: () => closed };
}

describe('MeshModule.forRoot with createMesh options', () => {
  let backend: Awaited<ReturnType<typeof listenBackend>>;
  let app: INestApplication;
  let base = '';
  let mesh: Mesh;

  before(async () => {
    backend = await listenBackend();
    ({ app, base } = await startNest([
      MeshModule.forRoot({ service: 'nest-front', services: { backend: { endpoints: [backend.address] } } }),
    ]));
    mesh = app.get<Mesh>(MESH);
  });
  after(async () => {
    await app.close();
    backend.server.closeAllConnections();
    await new Promise((r) => backend.server.close(r));
  });

  it('injects the Mesh and the mesh fetch into a controller by their tokens', async () => {
    const res = await request(`${base}/users/5`);
    assert.equal(res.statusCode, 200);
    assert.deepEqual(await res.body.json(), { id: '5', service: 'nest-front' });
    const call = await request(`${base}/users/call/ok`);
    assert.deepEqual(((await call.body.json()) as { status: number }).status, 200);
    assert.equal(backend.requests.at(-1)!.headers['meshlet-caller'], 'nest-front');
    assert.equal(typeof app.get<MeshFetch>(MESH_FETCH), 'function');
  });

  it('runs the inbound middleware on controller routes: stats per route template and caller', async () => {
    for (const id of ['1', '2', '3']) {
      await (await request(`${base}/users/${id}`, { headers: { 'meshlet-caller': 'gateway' } })).body.dump();
    }
    await (await request(`${base}/nope`, { headers: { 'meshlet-caller': 'gateway' } })).body.dump();
    // The rows are written when each response has finished on the server side, which can be just
    // after the client has read it: wait for all four (a loaded machine widens that gap).
    const row = (route: string) => mesh.stats().inbound.find((e) => e.route === route && e.caller === 'gateway');
    await eventually(
      () => ((row('/users/:id')?.requests ?? 0) >= 3 && (row('(unmatched)')?.requests ?? 0) >= 1 ? true : undefined),
      'the inbound rows',
    );
    const s = row('/users/:id');
    assert.equal(s?.requests, 3);
    assert.equal(s?.successes, 3);
    const unmatched = row('(unmatched)');
    assert.equal(unmatched?.requests, 1, '404s are counted as unmatched');
  });

  it('answers 504 for a spent budget without running the controller', async () => {
    const before = handled;
    const res = await request(`${base}/users/9`, { headers: { 'meshlet-timeout': '0m' } });
    assert.equal(res.statusCode, 504);
    await res.body.dump();
    assert.equal(handled, before);
  });

  it('clamps the controller’s outbound mesh call to the inbound budget', async () => {
    const res = await request(`${base}/users/call/slow`, { headers: { 'meshlet-timeout': '200m' } });
    const body = (await res.body.json()) as { code?: string; ms: number };
    assert.equal(body.code, 'MESHLET_ERR_DEADLINE');
    assert.ok(body.ms > 150 && body.ms < 5000, `ended after ${body.ms} ms`);
  });

  it('closes the mesh it created on app.close()', async () => {
    const watch = closedPromise(mesh);
    await app.close();
    assert.ok(watch.closed(), 'mesh closed');
    await assert.rejects(mesh.call('backend', {}, { name: 'x' } as never), { code: 'MESHLET_ERR_CLOSED' });
  });
});

describe('MeshModule.forRootAsync with useFactory and inject', () => {
  let backend: Awaited<ReturnType<typeof listenBackend>>;
  let app: INestApplication;
  let base = '';
  let factoryArgs: unknown[] = [];

  before(async () => {
    backend = await listenBackend();
    Module({
      providers: [{ provide: BACKEND_ADDRESS, useValue: backend.address }],
      exports: [BACKEND_ADDRESS],
    })(ConfigModule);
    ({ app, base } = await startNest([
      MeshModule.forRootAsync({
        imports: [ConfigModule],
        inject: [BACKEND_ADDRESS],
        useFactory: async (address: string): Promise<MeshModuleConfig> => {
          factoryArgs = [address];
          return { service: 'nest-async', services: { backend: { endpoints: [address] } } };
        },
      }),
    ]));
  });
  after(async () => {
    await app.close();
    backend.server.closeAllConnections();
    await new Promise((r) => backend.server.close(r));
  });

  it('builds the mesh from the factory’s options, with the injected provider', async () => {
    assert.deepEqual(factoryArgs, [backend.address]);
    const res = await request(`${base}/users/call/ok`, { headers: { 'meshlet-caller': 'edge' } });
    assert.equal(((await res.body.json()) as { status: number }).status, 200);
    assert.equal(backend.requests.at(-1)!.headers['meshlet-caller'], 'nest-async');
    const mesh = app.get<Mesh>(MESH);
    assert.equal(mesh.service, 'nest-async');
    const s = mesh.stats().inbound.find((e) => e.route === '/users/call/:path');
    assert.equal(s?.caller, 'edge');
  });
});

describe('MeshModule.forRoot with a given mesh', () => {
  it('leaves a given mesh open on app.close(), unless closeOnShutdown says otherwise', async () => {
    const mesh = createMesh({ service: 'given', services: {} });
    const watch = closedPromise(mesh);
    let started = await startNest([MeshModule.forRoot({ mesh })]);
    assert.equal(started.app.get(MESH), mesh);
    await started.app.close();
    assert.equal(watch.closed(), false, 'a given mesh is the caller’s to close');

    started = await startNest([MeshModule.forRoot({ mesh, closeOnShutdown: true })]);
    await started.app.close();
    assert.equal(watch.closed(), true);
  });

  it('installs no middleware with middleware: false', async () => {
    const mesh = createMesh({ services: {} });
    const { app, base } = await startNest([MeshModule.forRoot({ mesh, middleware: false, closeOnShutdown: true })]);
    const res = await request(`${base}/users/1`, { headers: { 'meshlet-timeout': '0m' } });
    assert.equal(res.statusCode, 200);
    await res.body.dump();
    assert.deepEqual(mesh.stats().inbound, []);
    await app.close();
  });

  it('fails the start with a MeshConfigError naming the option', async () => {
    const mesh = createMesh({ services: {} });
    await assert.rejects(
      startNest([MeshModule.forRoot({ mesh, services: {} } as unknown as MeshModuleConfig)]),
      (err: MeshError) =>
        err.code === 'MESHLET_ERR_CONFIG' && /MeshModule\.forRoot\(options\)\.services/.test(err.message),
    );
    await assert.rejects(
      startNest([MeshModule.forRoot({ mesh: {} as Mesh })]),
      (err: MeshError) =>
        err.code === 'MESHLET_ERR_CONFIG' && /MeshModule\.forRoot\(options\)\.mesh:/.test(err.message),
    );
    await assert.rejects(
      startNest([MeshModule.forRoot({ services: { users: { endpoints: ['nope'] } } })]),
      (err: MeshError) => err.code === 'MESHLET_ERR_CONFIG' && /services\.users\.endpoints/.test(err.message),
    );
    await mesh.close();
  });
});
