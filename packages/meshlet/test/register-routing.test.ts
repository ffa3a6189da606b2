// Zero-code start in real child processes: an unmodified app using the global fetch (and
// undici's global dispatcher) is balanced across two real backends through the mesh, while a
// URL that is not a mesh service goes direct; the admin endpoint serves /metrics (Prometheus
// text with meshlet's metric names), /stats and /readyz; SIGTERM lets a call in flight finish.
import { after, before, describe, it } from 'node:test';
import assert from 'node:assert/strict';
import { freePort, httpServer, runApp, startApp, TempDir, waitFor, type TestServer } from './helpers.ts';

/** The undici package the app may import (resolved here, so the temp app needs no node_modules). */
const UNDICI = import.meta.resolve('undici');
const SDK_METRICS = import.meta.resolve('@opentelemetry/sdk-metrics');
const OTEL_API = import.meta.resolve('@opentelemetry/api');

describe('meshlet/register: routing the global fetch and dispatcher', () => {
  let dir: TempDir;
  const backends: TestServer[] = [];
  let direct: TestServer;
  const seenHosts: string[] = [];

  before(async () => {
    dir = await TempDir.create();
    for (const name of ['b1', 'b2']) {
      backends.push(
        await httpServer((req, res) => {
          seenHosts.push(req.headers.host ?? '');
          res.end(name);
        }),
      );
    }
    direct = await httpServer((req, res) => res.end(`direct ${req.headers.host}`));
    await dir.write(
      'mesh.yaml',
      `services:\n  users:\n    loadBalancer: round-robin\n    endpoints:\n` +
        backends.map((b) => `      - "${b.address}"\n`).join(''),
    );
  });
  after(async () => {
    for (const b of backends) await b.close();
    await direct.close();
    await dir.remove();
  });

  it('sends http://users through the mesh, balanced; other URLs go direct; then exits by itself', async () => {
    await dir.write(
      'app.mjs',
      `import { request } from ${JSON.stringify(UNDICI)};
const counts = {};
for (let i = 0; i < 20; i++) {
  const res = await fetch('http://users/who');
  const who = await res.text();
  counts[who] = (counts[who] ?? 0) + 1;
}
const viaRequest = await fetch(new Request('http://users/req', { method: 'POST', body: 'x' }));
const directText = await (await fetch('http://127.0.0.1:${direct.port}/')).text();
const undiciMesh = await (await request('http://users/u')).body.text();
const undiciDirect = await (await request('http://127.0.0.1:${direct.port}/')).body.text();
let unknown;
try { await fetch('http://no-such-service.invalid/'); } catch (err) { unknown = err.cause?.code ?? err.code ?? String(err); }
console.log(JSON.stringify({ counts, request: await viaRequest.text(), directText, undiciMesh, undiciDirect, unknown }));
`,
    );
    seenHosts.length = 0;
    const r = await runApp(dir.path, 'app.mjs', { MESHLET_CONFIG: 'mesh.yaml' });
    assert.equal(r.code, 0, `exit code; stderr: ${r.stderr}`);
    const out = JSON.parse(r.stdout) as Record<string, unknown>;
    assert.deepEqual(out.counts, { b1: 10, b2: 10 }, 'round-robin over the two backends');
    assert.match(String(out.request), /^b[12]$/, 'a Request object of the global fetch goes through the mesh');
    assert.equal(out.directText, `direct 127.0.0.1:${direct.port}`, 'a non-mesh URL goes direct, untouched');
    assert.match(String(out.undiciMesh), /^b[12]$/, "undici's global dispatcher routes mesh services");
    assert.equal(out.undiciDirect, `direct 127.0.0.1:${direct.port}`);
    assert.equal(out.unknown, 'ENOTFOUND', 'an unknown host is resolved by DNS as before, not refused by the mesh');
    assert.ok(seenHosts.length >= 22 && seenHosts.every((h) => h === 'users'), 'backends see Host: users');
  });

  it('MESHLET_UNKNOWN_HOSTS=reject fails a non-service host with MESHLET_ERR_UNKNOWN_SERVICE', async () => {
    await dir.write(
      'strict.mjs',
      `try { await fetch('http://userz/'); } catch (err) { console.log(err.code, err.message); }\n`,
    );
    const r = await runApp(dir.path, 'strict.mjs', { MESHLET_CONFIG: 'mesh.yaml', MESHLET_UNKNOWN_HOSTS: 'reject' });
    assert.equal(r.code, 0, r.stderr);
    assert.match(r.stdout, /^MESHLET_ERR_UNKNOWN_SERVICE .*did you mean "users"/);
  });

  it('serves /metrics, /stats and /readyz on MESHLET_ADMIN_PORT (127.0.0.1)', async () => {
    await dir.write(
      'server.mjs',
      `import { createServer } from 'node:http';
for (let i = 0; i < 6; i++) await (await fetch('http://users/x')).text();
createServer((q, s) => s.end()).listen(0, '127.0.0.1', () => console.log('READY'));
`,
    );
    const port = await freePort();
    const app = startApp(dir.path, 'server.mjs', {
      MESHLET_CONFIG: 'mesh.yaml',
      MESHLET_SERVICE: 'web',
      MESHLET_ADMIN_PORT: String(port),
    });
    try {
      await app.line(/READY/);
      const base = `http://127.0.0.1:${port}`;
      const metrics = await waitFor('/metrics', async () => {
        const res = await fetch(`${base}/metrics`);
        const text = await res.text();
        return res.status === 200 && text.includes('http_client_request_duration') ? text : undefined;
      });
      assert.match(metrics, /# TYPE http_client_request_duration histogram/);
      for (const b of backends) {
        assert.match(
          metrics,
          new RegExp(`http_client_request_duration_count\\{[^}]*server_port="${b.port}"[^}]*\\} 3`),
          `3 attempts to ${b.address}`,
        );
      }
      assert.match(metrics, /otel_scope_name="@meshlet\/core"/);

      const stats = (await (await fetch(`${base}/stats`)).json()) as {
        services: Record<string, { requests: number; successes: number; endpoints: Array<{ requests: number }> }>;
      };
      assert.equal(stats.services.users!.requests, 6);
      assert.equal(stats.services.users!.successes, 6);
      assert.deepEqual(
        stats.services.users!.endpoints.map((e) => e.requests),
        [3, 3],
      );

      const ready = await fetch(`${base}/readyz`);
      assert.equal(ready.status, 200);
      assert.equal(((await ready.json()) as { service: string }).service, 'web');
      assert.equal((await fetch(`${base}/nope`)).status, 404);
      assert.equal((await fetch(`${base}/stats`, { method: 'POST' })).status, 405);
    } finally {
      app.child.kill('SIGTERM');
      await app.exited;
    }
  });

  it("leaves the application's own global MeterProvider alone: meshlet's metrics go to /metrics only", async () => {
    await dir.write(
      'own-sdk.mjs',
      `import { metrics } from ${JSON.stringify(OTEL_API)};
import { MeterProvider, MetricReader } from ${JSON.stringify(SDK_METRICS)};
import { admin } from ${JSON.stringify(import.meta.resolve('../dist/register.js'))};
class Reader extends MetricReader { async onForceFlush() {} async onShutdown() {} }
const reader = new Reader();
metrics.setGlobalMeterProvider(new MeterProvider({ readers: [reader] }));
metrics.getMeter('app').createCounter('app.requests').add(1);
// The mesh re-reads the global provider at most once a second: give it the chance to (wrongly) switch.
await new Promise((r) => setTimeout(r, 1100));
for (let i = 0; i < 4; i++) await (await fetch('http://users/x')).text();
const { resourceMetrics } = await reader.collect();
const own = resourceMetrics.scopeMetrics.flatMap((s) => s.metrics.map((m) => m.descriptor.name));
const port = (await admin).address.port;
const scraped = await (await fetch('http://127.0.0.1:' + port + '/metrics')).text();
console.log(JSON.stringify({ own, scraped: /http_client_request_duration_count\\{/.test(scraped) }));
`,
    );
    const r = await runApp(dir.path, 'own-sdk.mjs', { MESHLET_CONFIG: 'mesh.yaml', MESHLET_ADMIN_PORT: '0' });
    assert.equal(r.code, 0, r.stderr);
    assert.deepEqual(JSON.parse(r.stdout), { own: ['app.requests'], scraped: true });
  });

  it('worker threads (which run --import too) route through a mesh of their own, without a second admin endpoint', async () => {
    await dir.write('worker.mjs', `const r = await fetch('http://users/w'); console.log('WORKER', await r.text());\n`);
    await dir.write(
      'with-worker.mjs',
      `import { Worker } from 'node:worker_threads';
import { admin } from ${JSON.stringify(import.meta.resolve('../dist/register.js'))};
const w = new Worker(new URL('./worker.mjs', import.meta.url));
const [code] = await new Promise((resolve) => w.once('exit', (...a) => resolve(a)));
const a = await admin;
console.log('WORKER EXIT', code, 'ADMIN', a.address.port);
`,
    );
    const adminPort = await freePort();
    const r = await runApp(dir.path, 'with-worker.mjs', {
      MESHLET_CONFIG: 'mesh.yaml',
      MESHLET_ADMIN_PORT: String(adminPort),
    });
    assert.equal(r.code, 0, r.stderr);
    assert.match(r.stdout, /WORKER b[12]\n/);
    assert.match(r.stdout, new RegExp(`WORKER EXIT 0 ADMIN ${adminPort}\\n`), r.stderr);
  });

  it('SIGTERM with a call in flight: the call finishes, then the process ends by the signal', async () => {
    let release!: () => void;
    const released = new Promise<void>((r) => (release = r));
    let arrived!: () => void;
    const arrivedP = new Promise<void>((r) => (arrived = r));
    const slow = await httpServer((_req, res) => {
      arrived();
      void released.then(() => res.end('slow-done'));
    });
    await dir.write('slow.yaml', `services:\n  slow:\n    endpoints: ["${slow.address}"]\n`);
    await dir.write(
      'inflight.mjs',
      `import { createServer } from 'node:http';
createServer((q, s) => s.end()).listen(0, '127.0.0.1');
const res = await fetch('http://slow/');
console.log('GOT', await res.text());
`,
    );
    const app = startApp(dir.path, 'inflight.mjs', { MESHLET_CONFIG: 'slow.yaml' });
    try {
      await arrivedP;
      app.child.kill('SIGTERM');
      // The process must still be there, waiting for its call.
      await new Promise((r) => setTimeout(r, 200));
      assert.equal(app.child.exitCode, null, `exited before its call finished: ${app.stderr()}`);
      release();
      const { code, signal } = await app.exited;
      assert.match(app.stdout(), /GOT slow-done/);
      assert.equal(signal, 'SIGTERM', `ended by the re-raised signal (code ${code}, stderr ${app.stderr()})`);
    } finally {
      release();
      app.child.kill('SIGKILL');
      await slow.close();
    }
  });

  it('SIGTERM bounded by MESHLET_SHUTDOWN_GRACE_MS: a call that never ends is cut with MESHLET_ERR_CLOSED', async () => {
    let requests = 0;
    const stuck = await httpServer(() => void requests++);
    await dir.write('stuck.yaml', `services:\n  stuck:\n    endpoints: ["${stuck.address}"]\n`);
    await dir.write(
      'stuck.mjs',
      `import { createServer } from 'node:http';
createServer((q, s) => s.end()).listen(0, '127.0.0.1', () => console.log('READY'));
fetch('http://stuck/').then(() => console.log('ANSWERED'), (err) => console.log('FAILED', err.code));
`,
    );
    const app = startApp(dir.path, 'stuck.mjs', { MESHLET_CONFIG: 'stuck.yaml', MESHLET_SHUTDOWN_GRACE_MS: '300' });
    try {
      await app.line(/READY/);
      await waitFor('the call to reach the backend', async () => (requests > 0 ? true : undefined));
      app.child.kill('SIGTERM');
      const { signal } = await app.exited;
      assert.equal(signal, 'SIGTERM');
      assert.match(app.stdout(), /FAILED MESHLET_ERR_CLOSED/);
    } finally {
      app.child.kill('SIGKILL');
      await stuck.close();
    }
  });

  it("with the application's own SIGTERM handler, the mesh closes and the application decides", async () => {
    await dir.write(
      'handler.mjs',
      `import { createServer } from 'node:http';
import { mesh } from ${JSON.stringify(import.meta.resolve('../dist/register.js'))};
const server = createServer((q, s) => s.end()).listen(0, '127.0.0.1', () => console.log('READY'));
process.on('SIGTERM', () => {
  console.log('APP HANDLER');
  const t = setInterval(() => {
    if (mesh.isClosed) { clearInterval(t); console.log('MESH CLOSED'); server.close(); }
  }, 10);
});
`,
    );
    const app = startApp(dir.path, 'handler.mjs', { MESHLET_CONFIG: 'mesh.yaml' });
    try {
      await app.line(/READY/);
      app.child.kill('SIGTERM');
      const { code, signal } = await app.exited;
      assert.equal(signal, null, 'meshlet did not re-raise the signal over the application handler');
      assert.equal(code, 0, app.stderr());
      assert.match(app.stdout(), /APP HANDLER\nMESH CLOSED/);
    } finally {
      app.child.kill('SIGKILL');
    }
  });
});
