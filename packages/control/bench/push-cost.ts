// Quick figures for the control server's push path (not a test; the e2e benchmark lives in
// bench/control*.ts): a 1000-service × 10-endpoint config, N raw stream clients in a child
// process, one registration change → time until every client has the new EndpointSet version,
// and the server process's CPU for that push.
//
//   node --expose-gc --import tsx packages/control/bench/push-cost.ts [clients=100,1000] [rounds=5]
import { fork } from 'node:child_process';
import { mkdtemp, rm, writeFile } from 'node:fs/promises';
import { tmpdir } from 'node:os';
import { join } from 'node:path';
import { fileURLToPath } from 'node:url';
import * as grpc from '@grpc/grpc-js';
import {
  discoveryService,
  ENDPOINT_SET_TYPE_URL,
  REGISTRATION_TYPE_URL,
  SERVICE_TYPE_URL,
  type DiscoveryResponse,
} from '@meshlet/discovery/protocol';
import { pino } from 'pino';
import { createControlServer } from '../src/server.js';

const SERVICES = 1000;
const ENDPOINTS = 10;

if (process.argv[2] === '--clients') {
  // Child: open N streams, ACK everything, report to the parent when every stream has `want`.
  const port = Number(process.argv[3]);
  const n = Number(process.argv[4]);
  const Client = grpc.makeGenericClientConstructor(discoveryService, 'ADS');
  const channels = 50;
  const clients = Array.from(
    { length: channels },
    () => new Client(`127.0.0.1:${port}`, grpc.credentials.createInsecure()),
  );
  const have: string[] = new Array(n).fill('');
  let want = '';
  const check = (): void => {
    if (want !== '' && have.every((v) => v === want)) {
      process.send!({ done: want });
      want = '';
    }
  };
  for (let i = 0; i < n; i++) {
    const call = (clients[i % channels] as any).StreamResources();
    call.on('data', (r: DiscoveryResponse) => {
      call.write({ typeUrl: r.typeUrl, versionInfo: r.versionInfo, responseNonce: r.nonce });
      if (r.typeUrl === ENDPOINT_SET_TYPE_URL) {
        have[i] = r.versionInfo;
        check();
      }
    });
    call.on('error', () => {});
    call.write({ node: { id: `bench-${i}` }, typeUrl: SERVICE_TYPE_URL });
    call.write({ typeUrl: ENDPOINT_SET_TYPE_URL });
  }
  process.on('message', (m: { want?: string; exit?: boolean }) => {
    if (m.exit) process.exit(0);
    want = m.want!;
    check();
  });
  const ready = setInterval(() => {
    if (have.every((v) => v !== '')) {
      clearInterval(ready);
      process.send!({ ready: true });
    }
  }, 20);
} else {
  const counts = (process.argv[2] ?? '100,1000').split(',').map(Number);
  const rounds = Number(process.argv[3] ?? 5);
  const dir = await mkdtemp(join(tmpdir(), 'meshlet-push-'));
  const configPath = join(dir, 'mesh.json');
  const services: Record<string, unknown> = {};
  for (let s = 0; s < SERVICES; s++) {
    services[`svc-${s}`] = {
      endpoints: Array.from({ length: ENDPOINTS }, (_, e) => `10.${s >> 8}.${s & 255}.${e + 1}:8080`),
      retry: { maxAttempts: 2 },
    };
  }
  await writeFile(configPath, JSON.stringify({ services }));
  for (const n of counts) {
    const server = createControlServer({
      configPath,
      host: '127.0.0.1',
      port: 0,
      adminPort: 0,
      logger: pino({ level: 'warn' }),
      debounceMs: 0,
    });
    await server.start();
    global.gc?.();
    const before = process.memoryUsage();
    const child = fork(fileURLToPath(import.meta.url), ['--clients', String(server.address.port), String(n)], {
      execArgv: ['--import', 'tsx'],
    });
    const next = (): Promise<any> => new Promise((resolve) => child.once('message', resolve));
    await next(); // ready
    global.gc?.();
    const after = process.memoryUsage();
    const perClient = `${((after.heapUsed - before.heapUsed) / n / 1024).toFixed(1)} KiB heap, ${((after.rss - before.rss) / n / 1024).toFixed(1)} KiB RSS per connected client`;
    // A registrar stream that flips one registration per round.
    const Client = grpc.makeGenericClientConstructor(discoveryService, 'ADS');
    const reg = new Client(`127.0.0.1:${server.address.port}`, grpc.credentials.createInsecure());
    const call = (reg as any).StreamResources();
    call.on('data', () => {});
    call.on('error', () => {});
    const times: number[] = [];
    const cpus: number[] = [];
    for (let r = 1; r <= rounds; r++) {
      const version = String(Number(server.version) + 1);
      const done = next();
      child.send({ want: version });
      const cpu0 = process.cpuUsage();
      const t0 = performance.now();
      call.write({
        node: { id: 'registrar' },
        typeUrl: REGISTRATION_TYPE_URL,
        registrationRevision: r,
        registrations: [{ service: 'svc-0', endpoint: { address: `10.255.0.${r}:8080` } }],
      });
      await done;
      const cpu = process.cpuUsage(cpu0);
      times.push(performance.now() - t0);
      cpus.push((cpu.user + cpu.system) / 1000);
    }
    const sorted = [...times].sort((a, b) => a - b);
    const p50 = sorted[Math.floor(sorted.length / 2)]!;
    const max = sorted.at(-1)!;
    console.log(
      `${n} clients: change → all ${n} have it: p50 ${p50.toFixed(1)} ms, max ${max.toFixed(1)} ms over ${rounds}; ` +
        `server CPU per push (registration → every write): median ${[...cpus].sort((a, b) => a - b)[Math.floor(cpus.length / 2)]!.toFixed(1)} ms; ` +
        perClient,
    );
    call.cancel();
    reg.close();
    child.send({ exit: true });
    await new Promise((r) => child.once('exit', r));
    await server.stop();
  }
  await rm(dir, { recursive: true, force: true });
}
