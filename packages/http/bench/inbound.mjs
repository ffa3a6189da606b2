// Server-side cost of meshMiddleware on Express 5: server CPU µs/request (process.cpuUsage in
// the server's own child process) for a plain Express app, the same with an empty middleware
// (the cost of any middleware layer in Express), with only AsyncLocalStorage.run around the
// chain (the process-wide cost of an async context on Node 20), with meshMiddleware (no
// OpenTelemetry SDK: the common case), and with meshMiddleware under a registered tracer
// provider (a span per request, exported nowhere). The client (undici, keep-alive, 32 in
// flight) runs in this process; rounds alternate modes so machine noise spreads evenly.
//
//   npm run build
//   node packages/http/bench/inbound.mjs            # 5 rounds of 20 000 requests per mode
//
// Figures are for comparing builds on one machine, not for publishing.
import { fork } from 'node:child_process';
import { fileURLToPath } from 'node:url';

const MODES = process.env.MODES?.split(',') ?? [
  'express',
  'express+noop',
  'express+als',
  'express+mesh',
  'express+mesh+tracing',
];

if (process.argv[2] === 'server') {
  const mode = process.argv[3];
  const { default: express } = await import('express');
  const app = express();
  if (mode === 'express+noop') app.use((req, res, next) => next());
  else if (mode === 'express+als') {
    // Only AsyncLocalStorage.run around the chain: what the inbound context costs by itself.
    const { AsyncLocalStorage } = await import('node:async_hooks');
    const als = new AsyncLocalStorage();
    app.use((req, res, next) => als.run(req, next));
  } else if (mode !== 'express') {
    const { createMesh } = await import('@meshlet/core');
    const { meshMiddleware } = await import('@meshlet/http/express');
    let telemetry;
    if (mode === 'express+mesh+tracing') {
      const { BasicTracerProvider } = await import('@opentelemetry/sdk-trace-base');
      telemetry = { tracerProvider: new BasicTracerProvider() };
    }
    app.use(meshMiddleware(createMesh({ services: {}, telemetry })));
  }
  // res.send, as Express apps answer: it reads request headers (freshness), so every mode pays
  // for Node's lazily built req.headers, which the middleware reads too.
  app.get('/users/:id', (req, res) => void res.send('ok'));
  const srv = app.listen(0, '127.0.0.1', () => process.send({ port: srv.address().port }));
  srv.keepAliveTimeout = 60_000;
  process.on('message', (m) => {
    if (m === 'cpu') {
      const u = process.cpuUsage();
      process.send({ cpu: u.user + u.system });
    }
  });
} else {
  const { Agent, request } = await import('undici');
  const N = Number(process.argv[2] ?? 20_000);
  const ROUNDS = Number(process.argv[3] ?? 5);
  const C = 32;
  const results = Object.fromEntries(MODES.map((m) => [m, []]));
  const ask = (child, msg) =>
    new Promise((resolve) => {
      child.once('message', resolve);
      child.send(msg);
    });
  for (let round = 0; round < ROUNDS; round++) {
    for (const mode of MODES) {
      const child = fork(fileURLToPath(import.meta.url), ['server', mode]);
      const { port } = await new Promise((resolve) => child.once('message', resolve));
      const agent = new Agent({ connections: C, pipelining: 1 });
      const url = `http://127.0.0.1:${port}/users/42`;
      const headers = { 'meshlet-timeout': '1000m', 'meshlet-caller': 'bench' };
      const run = async (n) => {
        let next = 0;
        await Promise.all(
          Array.from({ length: C }, async () => {
            while (next++ < n) {
              const r = await request(url, { dispatcher: agent, headers });
              await r.body.dump();
            }
          }),
        );
      };
      await run(2000); // warm-up: JIT, connections
      const before = (await ask(child, 'cpu')).cpu;
      await run(N);
      const after = (await ask(child, 'cpu')).cpu;
      results[mode].push((after - before) / N);
      await agent.close();
      child.kill();
    }
  }
  const median = (xs) => [...xs].sort((a, b) => a - b)[Math.floor(xs.length / 2)];
  for (const mode of MODES) {
    const xs = results[mode];
    console.log(
      `${mode.padEnd(22)} server CPU µs/request: median ${median(xs).toFixed(1)}  (runs ${xs.map((x) => x.toFixed(1)).join(' ')})`,
    );
  }
}
