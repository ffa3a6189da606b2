// startAdminServer in process: a real mesh, a real HTTP server on 127.0.0.1 port 0.
import { after, describe, it } from 'node:test';
import assert from 'node:assert/strict';
import { createMesh, MeshConfigError, type DiscoverySource, type Mesh } from '@meshlet/core';
import { createMeshFetch } from '@meshlet/http';
import { MeterProvider } from '@opentelemetry/sdk-metrics';
import { PrometheusExporter } from '@opentelemetry/exporter-prometheus';
import { AdminServerError, createAdminMeterProvider, startAdminServer, type AdminServer } from '../src/admin.ts';
import { httpServer, type TestServer } from './helpers.ts';

/** A discovery source that never delivers: the mesh stays not ready. */
function silentSource(): DiscoverySource {
  return {
    name: 'silent',
    start() {},
    describe: () => 'silent: never delivers (test)',
    close: async () => {},
  };
}

describe('startAdminServer', () => {
  const cleanups: Array<() => Promise<unknown>> = [];
  after(async () => {
    for (const c of cleanups.reverse()) await c();
  });

  async function setup(meshOptions: Parameters<typeof createMesh>[0], withProvider = true) {
    const meterProvider = withProvider ? createAdminMeterProvider() : undefined;
    const mesh = createMesh({ ...meshOptions, ...(meterProvider ? { telemetry: { meterProvider } } : {}) });
    cleanups.push(() => mesh.close());
    const admin = await startAdminServer(mesh, { port: 0, ...(meterProvider ? { meterProvider } : {}) });
    cleanups.push(() => admin.close());
    return { mesh, admin, base: `http://127.0.0.1:${admin.address.port}` };
  }

  it('serves /metrics (Prometheus text), /stats, /readyz, /healthz on 127.0.0.1; 404 and 405 otherwise', async () => {
    const backend: TestServer = await httpServer((_req, res) => res.end('ok'));
    cleanups.push(() => backend.close());
    const { mesh, admin, base } = await setup({ services: { users: { endpoints: [backend.address] } } });
    assert.equal(admin.address.host, '127.0.0.1');
    assert.equal(admin.metrics, true);
    const fetch = createMeshFetch(mesh);
    for (let i = 0; i < 4; i++) assert.equal(await (await fetch('http://users/')).text(), 'ok');

    const metrics = await globalThis.fetch(`${base}/metrics`);
    assert.equal(metrics.status, 200);
    assert.match(metrics.headers.get('content-type') ?? '', /^text\/plain/);
    const text = await metrics.text();
    assert.match(text, /# TYPE http_client_request_duration histogram/);
    assert.match(text, new RegExp(`http_client_request_duration_count\\{[^}]*server_port="${backend.port}"[^}]*\\} 4`));

    const stats = (await (await globalThis.fetch(`${base}/stats`)).json()) as ReturnType<Mesh['stats']>;
    assert.equal(stats.services.users!.requests, 4);
    // The same document as mesh.stats() (its time-decayed figures aside).
    const now = mesh.stats();
    assert.deepEqual(Object.keys(stats).sort(), Object.keys(now).sort());
    assert.deepEqual(
      stats.services.users!.endpoints.map((e) => [e.address, e.requests, e.state]),
      now.services.users!.endpoints.map((e) => [e.address, e.requests, e.state]),
    );

    const ready = await globalThis.fetch(`${base}/readyz`);
    assert.equal(ready.status, 200);
    assert.equal((await globalThis.fetch(`${base}/healthz`)).status, 200);
    assert.equal((await globalThis.fetch(`${base}/`)).status, 404);
    assert.equal((await globalThis.fetch(`${base}/metricsx`)).status, 404);
    const post = await globalThis.fetch(`${base}/stats`, { method: 'POST' });
    assert.equal(post.status, 405);
    assert.equal(post.headers.get('allow'), 'GET, HEAD');
  });

  it('/readyz is 503 until the mesh has its config, naming each source', async () => {
    const { base } = await setup({ discovery: [silentSource()], startupTimeoutMs: 60_000 });
    const res = await globalThis.fetch(`${base}/readyz`);
    assert.equal(res.status, 503);
    const body = (await res.json()) as {
      ready: boolean;
      sources: Array<{ name: string; ready: boolean; description: string }>;
    };
    assert.equal(body.ready, false);
    assert.deepEqual(
      body.sources.map((s) => [s.name, s.ready]),
      [['silent', false]],
    );
  });

  it('without a meshlet provider, /metrics is 404 and says how to get it; /stats still works', async () => {
    const { admin, base } = await setup({ services: {} }, false);
    assert.equal(admin.metrics, false);
    const res = await globalThis.fetch(`${base}/metrics`);
    assert.equal(res.status, 404);
    assert.match(await res.text(), /telemetry: \{ meterProvider: createAdminMeterProvider\(\) \}/);
    assert.equal((await globalThis.fetch(`${base}/stats`)).status, 200);
  });

  it('serves a PrometheusExporter of your own MeterProvider', async () => {
    const exporter = new PrometheusExporter({ preventServerStart: true });
    const meterProvider = new MeterProvider({ readers: [exporter] });
    const backend = await httpServer((_req, res) => res.end('ok'));
    cleanups.push(() => backend.close());
    const mesh = createMesh({ services: { users: { endpoints: [backend.address] } }, telemetry: { meterProvider } });
    cleanups.push(() => mesh.close());
    const admin = await startAdminServer(mesh, { port: 0, prometheusExporter: exporter });
    cleanups.push(() => admin.close());
    await (await createMeshFetch(mesh)('http://users/')).text();
    const text = await (await globalThis.fetch(`http://127.0.0.1:${admin.address.port}/metrics`)).text();
    assert.match(text, /http_client_request_duration_count\{/);
  });

  it('closes with the mesh', async () => {
    const mesh = createMesh({ services: {} });
    const admin: AdminServer = await startAdminServer(mesh, { port: 0 });
    const base = `http://127.0.0.1:${admin.address.port}`;
    assert.equal((await globalThis.fetch(`${base}/healthz`)).status, 200);
    await mesh.close();
    await assert.rejects(globalThis.fetch(`${base}/healthz`), /fetch failed/);
  });

  it('refuses bad options with MeshConfigError naming the option', async () => {
    const mesh = createMesh({ services: {} });
    cleanups.push(() => mesh.close());
    await assert.rejects(startAdminServer(mesh, { port: 70000 }), (err: unknown) => {
      assert.ok(err instanceof MeshConfigError);
      assert.equal(err.path, 'startAdminServer options.port');
      assert.match(err.message, /70000/);
      return true;
    });
    await assert.rejects(
      startAdminServer(mesh, { port: 0, meterProvider: new MeterProvider() }),
      /startAdminServer options\.meterProvider: expected a provider made by createAdminMeterProvider/,
    );
  });

  it('a taken port rejects with AdminServerError naming the address and what to do', async () => {
    const taken = await httpServer(() => undefined);
    cleanups.push(() => taken.close());
    const mesh = createMesh({ services: {} });
    cleanups.push(() => mesh.close());
    await assert.rejects(startAdminServer(mesh, { port: taken.port }), (err: unknown) => {
      assert.ok(err instanceof AdminServerError);
      assert.equal(err.code, 'MESHLET_ERR_ADMIN');
      assert.match(
        err.message,
        new RegExp(`127\\.0\\.0\\.1:${taken.port} \\(EADDRINUSE: the port is already in use\\): choose another port`),
      );
      return true;
    });
  });
});
