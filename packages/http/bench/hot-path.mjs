// Quick per-request cost of the HTTP mesh client in the forms users call, against a local
// keep-alive server in a child process: client CPU µs/request (process.cpuUsage) and heap
// bytes/request (heapUsed growth with a young generation large enough that no GC runs; run
// with the flags below, or the bytes column says how many GCs spoiled it).
//
//   npm run build
//   node --expose-gc --min-semi-space-size=256 --max-semi-space-size=256 packages/http/bench/hot-path.mjs bytes
//   node packages/http/bench/hot-path.mjs cpu
//
// Modes: raw-request (undici.request on a plain Agent), mesh-request (undici.request with the
// mesh dispatcher), raw-fetch, mesh-fetch. Figures are for comparing builds on one machine,
// not for publishing: the full benchmark is `npm run bench`.
import { fork } from 'node:child_process';
import http from 'node:http';
import { PerformanceObserver } from 'node:perf_hooks';
import { fileURLToPath } from 'node:url';

if (process.argv[2] === 'server') {
  const srv = http.createServer((req, res) => {
    req.resume();
    req.on('end', () => {
      res.writeHead(200, { 'content-length': '2' });
      res.end('ok');
    });
  });
  srv.keepAliveTimeout = 60_000;
  srv.listen(0, '127.0.0.1', () => process.send(srv.address().port));
} else {
  const what = process.argv[2] ?? 'cpu';
  const N = what === 'bytes' ? 3000 : 20_000;
  const C = 32;
  const undici = await import('undici');
  const { createMesh } = await import('@meshlet/core');
  const { createMeshDispatcher, createMeshFetch } = await import('@meshlet/http');
  const child = fork(fileURLToPath(import.meta.url), ['server']);
  const port = await new Promise((r) => child.once('message', r));
  const mesh = createMesh({ services: { users: { endpoints: [`127.0.0.1:${port}`] } } });
  const dispatcher = createMeshDispatcher(mesh);
  const meshFetch = createMeshFetch(mesh);
  const agent = new undici.Agent();
  const headers = { 'x-request-id': 'abc', accept: 'application/json' };
  const modes = {
    'raw-request': () =>
      undici.request(`http://127.0.0.1:${port}/p`, { dispatcher: agent, headers }).then((r) => r.body.text()),
    'mesh-request': () => undici.request('http://users/p', { dispatcher, headers }).then((r) => r.body.text()),
    'raw-fetch': () => undici.fetch(`http://127.0.0.1:${port}/p`, { headers, dispatcher: agent }).then((r) => r.text()),
    'mesh-fetch': () => meshFetch('http://users/p', { headers }).then((r) => r.text()),
  };
  for (const [mode, one] of Object.entries(modes)) {
    const run = async (n) => {
      let i = 0;
      await Promise.all(
        Array.from({ length: C }, async () => {
          while (i++ < n) await one();
        }),
      );
    };
    await run(3000);
    globalThis.gc?.();
    let gcs = 0;
    const obs = new PerformanceObserver((list) => (gcs += list.getEntries().length));
    obs.observe({ entryTypes: ['gc'] });
    const heap0 = process.memoryUsage().heapUsed;
    const cpu0 = process.cpuUsage();
    await run(N);
    const cpu = process.cpuUsage(cpu0);
    const heap = process.memoryUsage().heapUsed - heap0;
    await new Promise((r) => setTimeout(r, 10));
    obs.disconnect();
    const bytes = gcs === 0 ? `${Math.round(heap / N)} B/req` : `n/a (${gcs} GCs)`;
    console.log(`${mode.padEnd(13)} ${((cpu.user + cpu.system) / N).toFixed(1).padStart(6)} µs CPU/req  ${bytes}`);
  }
  await mesh.close();
  await agent.close();
  child.kill();
}
