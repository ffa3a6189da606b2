/**
 * Control-server benchmark (issue 7's figures): a real `meshlet control` process serving a config
 * of 1000 services × 10 endpoints to N connected clients, and repeated edits of its config file.
 *
 *   npm run bench:control                       # N = 100 and 1000, ~2–3 min on 2 cores
 *   node --import tsx bench/control.ts [--clients 100,1000] [--edits 10] [--warmup 2]
 *        [--format json|yaml] [--mode auto|decode|header] [--workers 4] [--log-level info|debug]
 *        [--services 1000] [--no-real] [--profile] [--json out.json]
 *
 * Defaults: a JSON config file (YAML parsing of this file costs more than the rest of a reload; the
 * report gives both parse times), clients in mode `decode` up to 100 clients and `header` above
 * (decoding every resource in 1000 clients on the same 2 cores would measure the clients, not the
 * server), 2 worker processes up to 100 clients and 4 above. `--profile` adds a CPU profile of the
 * server over the measured edits only (started and stopped through the probe).
 *
 * What runs:
 * - The server: `node packages/control/bin/meshlet.js control --config <tmp>/mesh.json --port 0
 *   --admin-port 0 --host 127.0.0.1` (the built binary, default log level `info`, JSON logs on
 *   stdout), plus `--expose-gc` and a preloaded probe that answers `process.memoryUsage()` and
 *   `process.cpuUsage()` over the IPC channel. Nothing else of the server is changed.
 * - N clients in a few worker processes (`bench/control-client.ts`): each its own gRPC channel and
 *   connection and node id, subscribing to Service and EndpointSet, decoding every response and
 *   ACKing it (see that file for exactly what `decode` and `header` decode). With `--log-level debug`,
 *   one more: a real `createMesh({ discovery: [controlPlane()] })` client (`bench-real`), reported in
 *   its own column (its ACK time is read from the server's debug-level `ack` lines).
 * - Edits, alternating: (a) one route weight of one service (only the Service type changes, every
 *   client gets the 1000 Service resources again), (b) one endpoint of one service (only the
 *   EndpointSet type: 1000 sets of 10 endpoints). Each edit writes a temp file and renames it over
 *   the config (an atomic save, as editors and ConfigMaps do), then waits until every client has
 *   ACKed the new version.
 *
 * What is reported, per N:
 * - edit → ACK: per edit and client, ACK time minus the time just before the rename, p50/p99/max over
 *   all clients × edits. `client` = when the client sent the ACK (its clock, `performance.timeOrigin +
 *   performance.now()`; one machine, one clock); `server` (only with `--log-level debug`, which costs
 *   the server a log line per ACK) = when the server logged receiving it (the `ack` line's `time`, ms
 *   resolution).
 * - where the time goes: rename → the server's `config reloaded` line (fs.watch, its debounce, reading,
 *   parsing and validating the file) → `new snapshot` (the rebuild debounce and encoding) → last ACK.
 * - server memory per connected client: RSS and V8 heap (after a forced GC) with every client
 *   connected minus before the first one, divided by N.
 * - server CPU per push: `process.cpuUsage()` of the server from just before the rename until every
 *   client has ACKed (reload, rebuild, N writes, N ACKs handled and logged).
 */
import { fork, spawn, type ChildProcess } from 'node:child_process';
import { once } from 'node:events';
import { mkdtemp, rename, rm, writeFile } from 'node:fs/promises';
import os from 'node:os';
import path from 'node:path';
import { createInterface } from 'node:readline';
import { fileURLToPath } from 'node:url';
import { parseArgs } from 'node:util';
import { readConfigFile } from '@meshlet/discovery';
import { stringify as toYaml } from 'yaml';
import type { FromWorker, ToWorker, WorkerArgs } from './control-client.ts';
import { freePort, processCpuMicros } from './lib/proc.ts';
import { renderProfileSummary, summarizeProfile } from './profile.ts';

const ENDPOINTS = 10;
const EDIT_TIMEOUT_MS = 60_000;

const root = fileURLToPath(new URL('..', import.meta.url));
const meshletBin = path.join(root, 'packages/control/bin/meshlet.js');
const workerFile = fileURLToPath(new URL('./control-client.ts', import.meta.url));

const { values: opts } = parseArgs({
  options: {
    clients: { type: 'string', default: '100,1000' },
    services: { type: 'string', default: '1000' },
    edits: { type: 'string', default: '10' },
    warmup: { type: 'string', default: '5' },
    format: { type: 'string', default: 'json' },
    mode: { type: 'string', default: 'auto' },
    workers: { type: 'string' },
    'log-level': { type: 'string', default: 'info' },
    'no-real': { type: 'boolean', default: false },
    profile: { type: 'boolean', default: false },
    json: { type: 'string' },
  },
});
const counts = opts.clients.split(',').map(Number);
/** Services in the config (10 endpoints each); at least 3 (the route's targets). */
const SERVICES = Math.max(3, Number(opts.services));
/** The service whose last endpoint the endpoint edits change. */
const EDITED = Math.floor(SERVICES / 2);
const EDITS = Number(opts.edits);
const WARMUP = Number(opts.warmup);
const FORMAT = opts.format === 'yaml' ? 'yaml' : 'json';
/** What the clients decode (see control-client.ts); `auto`: everything up to 100 clients, headers above. */
const modeFor = (n: number): 'decode' | 'header' =>
  opts.mode === 'decode' || opts.mode === 'header' ? opts.mode : n <= 100 ? 'decode' : 'header';
const SERVER_LOGS = ['trace', 'debug', 'info'].includes(opts['log-level']);
/** The server logs each ACK (`ack`, debug level): needed for the server-seen times and the real client. */
const SERVER_ACKS = ['trace', 'debug'].includes(opts['log-level']);
/** The real client's ACK is read from the server's log, so it runs only at `--log-level debug`. */
const REAL = !opts['no-real'] && SERVER_ACKS;

// --- the config and its edits -------------------------------------------------------------------

interface EditState {
  /** Weight of svc-1 in svc-0's canary route (svc-2 gets 100 − it). */
  weight: number;
  /** Port of the last endpoint of the service in the middle (svc-500). */
  port: number;
}

function config(state: EditState): unknown {
  const services: Record<string, unknown> = {};
  for (let s = 0; s < SERVICES; s++) {
    const svc: Record<string, unknown> = {
      endpoints: Array.from(
        { length: ENDPOINTS },
        (_, e) => `10.${s >> 8}.${s & 255}.${e + 1}:${s === EDITED && e === ENDPOINTS - 1 ? state.port : 8080}`,
      ),
    };
    // Policies on a share of the services, so Service resources are not all empty.
    if (s % 2 === 0) svc.retry = { maxAttempts: 3 };
    if (s % 4 === 0) svc.timeout = { requestMs: 2000 };
    if (s % 8 === 0) svc.outlierDetection = { consecutiveFailures: 5 };
    if (s === 0) {
      svc.routes = [
        {
          name: 'canary',
          backends: [
            { service: 'svc-1', weight: state.weight },
            { service: 'svc-2', weight: 100 - state.weight },
          ],
        },
      ];
    }
    services[`svc-${s}`] = svc;
  }
  return { services };
}

function render(state: EditState): string {
  const c = config(state);
  return FORMAT === 'json' ? JSON.stringify(c) : toYaml(c);
}

// --- the server process -------------------------------------------------------------------------

// Preloaded into the server (a data: URL, so the server runs from the built binary unchanged): answers
// memory and CPU over IPC, and starts/stops a CPU profile of the edits only (--profile).
const PROBE = `
import { Session } from 'node:inspector';
import { writeFileSync } from 'node:fs';
let session;
process.on('message', (m) => {
  if (m === null || typeof m !== 'object' || m.probe === undefined) return;
  const reply = () => process.send({ probe: m.probe, mem: process.memoryUsage(), cpu: process.cpuUsage() });
  if (m.gc && typeof globalThis.gc === 'function') { globalThis.gc(); globalThis.gc(); }
  if (m.profile === 'start') {
    session = new Session();
    session.connect();
    session.post('Profiler.enable', () => session.post('Profiler.setSamplingInterval', { interval: 250 }, () => session.post('Profiler.start', reply)));
  } else if (m.profile !== undefined) {
    session.post('Profiler.stop', (err, res) => { if (!err) writeFileSync(m.profile, JSON.stringify(res.profile)); session.disconnect(); reply(); });
  } else reply();
});
process.channel?.unref();
`;

interface Probe {
  probe: number;
  mem: NodeJS.MemoryUsage;
  cpu: NodeJS.CpuUsage;
}

interface LogLine {
  time: number;
  event?: string;
  nodeId?: string;
  version?: string;
  port?: number;
  adminPort?: number;
  typeUrl?: string;
  err?: string;
  msg?: string;
}

class ServerProcess {
  readonly child: ChildProcess;
  port = 0;
  adminPort = 0;
  /** version → nodeId → server log time of its ACK. */
  readonly acks = new Map<string, Map<string, number>>();
  /** version → time of the `new snapshot` line. */
  readonly snapshots = new Map<string, number>();
  reloads: number[] = [];
  nacks = 0;
  errors: string[] = [];
  private waiters: Array<() => void> = [];
  private probes = 0;
  private readonly started: Promise<void>;

  constructor(configPath: string, port: number, adminPort: number) {
    const execArgv = ['--expose-gc', '--import', `data:text/javascript,${encodeURIComponent(PROBE)}`];
    this.child = spawn(
      process.execPath,
      [
        ...execArgv,
        meshletBin,
        'control',
        '--config',
        configPath,
        '--port',
        String(port),
        '--admin-port',
        String(adminPort),
        '--host',
        '127.0.0.1',
        '--log-level',
        opts['log-level'],
      ],
      { stdio: ['ignore', 'pipe', 'pipe', 'ipc'] },
    );
    this.child.stderr!.on('data', (b: Buffer) => this.errors.push(b.toString()));
    const lines = createInterface({ input: this.child.stdout! });
    this.port = port;
    this.adminPort = adminPort;
    this.started = new Promise((resolve, reject) => {
      this.child.once('exit', (code) =>
        reject(new Error(`meshlet control exited with ${code} before listening: ${this.errors.join('')}`)),
      );
      // Ready when the admin endpoint says so (works at any --log-level).
      const poll = async (): Promise<void> => {
        for (let i = 0; i < 300 && this.child.exitCode === null; i++) {
          try {
            const res = await fetch(`http://127.0.0.1:${adminPort}/readyz`);
            if (res.ok) {
              resolve();
              return;
            }
          } catch {
            // not listening yet
          }
          await sleep(100);
        }
        reject(new Error(`meshlet control did not become ready: ${this.errors.join('')}`));
      };
      void poll();
      lines.on('line', (text) => {
        let line: LogLine;
        try {
          line = JSON.parse(text) as LogLine;
        } catch {
          return;
        }
        switch (line.event) {
          case 'ack': {
            let m = this.acks.get(line.version!);
            if (m === undefined) this.acks.set(line.version!, (m = new Map()));
            m.set(line.nodeId!, line.time);
            break;
          }
          case 'nack':
            this.nacks++;
            break;
          case 'snapshot':
            this.snapshots.set(line.version!, line.time);
            break;
          case 'reload':
            this.reloads.push(line.time);
            break;
          case 'reload_error':
            this.errors.push(`reload error: ${line.err}`);
            break;
        }
        const w = this.waiters;
        this.waiters = [];
        for (const f of w) f();
      });
    });
  }

  start(): Promise<void> {
    return this.started;
  }

  /** Resolves when `cond()` holds, re-checked after every log line. */
  async until(cond: () => boolean, what: string, timeoutMs = EDIT_TIMEOUT_MS): Promise<void> {
    const deadline = Date.now() + timeoutMs;
    while (!cond()) {
      if (Date.now() > deadline) throw new Error(`timed out waiting for ${what}`);
      await new Promise<void>((resolve) => {
        const t = setTimeout(resolve, 200);
        this.waiters.push(() => {
          clearTimeout(t);
          resolve();
        });
      });
    }
  }

  probe(gc: boolean, profile?: string): Promise<Probe> {
    const id = ++this.probes;
    return new Promise((resolve) => {
      const on = (m: Probe): void => {
        if (m.probe !== id) return;
        this.child.off('message', on);
        resolve(m);
      };
      this.child.on('message', on);
      this.child.send({ probe: id, gc, profile });
    });
  }

  async stop(): Promise<number | null> {
    if (this.child.exitCode !== null) return this.child.exitCode;
    const exited = once(this.child, 'exit');
    this.child.kill('SIGTERM');
    // Its graceful stop waits up to 5 s for streams; past that, something is wrong.
    const timer = setTimeout(() => this.child.kill('SIGKILL'), 10_000);
    const [code] = (await exited) as [number | null];
    clearTimeout(timer);
    return code;
  }
}

// --- the clients --------------------------------------------------------------------------------

class Workers {
  readonly procs: ChildProcess[] = [];
  readonly errors: string[] = [];

  constructor(port: number, n: number, workers: number, mode: 'decode' | 'header') {
    const per = Math.ceil(n / workers);
    for (let w = 0, from = 0; from < n; w++, from += per) {
      const args: WorkerArgs = { port, from, count: Math.min(per, n - from), mode, real: REAL && w === 0 };
      const child = fork(workerFile, [JSON.stringify(args)], { execArgv: ['--import', 'tsx'] });
      child.on('message', (m: FromWorker) => {
        if ('error' in m) this.errors.push(m.error);
      });
      this.procs.push(child);
    }
  }

  private next<T extends FromWorker>(child: ChildProcess, match: (m: FromWorker) => m is T): Promise<T> {
    return new Promise((resolve, reject) => {
      const timer = setTimeout(() => {
        child.off('message', on);
        reject(new Error(`a client worker did not answer in ${EDIT_TIMEOUT_MS} ms (${this.errors.join('; ')})`));
      }, EDIT_TIMEOUT_MS);
      const on = (m: FromWorker): void => {
        if (!match(m)) return;
        clearTimeout(timer);
        child.off('message', on);
        resolve(m);
      };
      child.on('message', on);
    });
  }

  /** User + system CPU of every worker process, µs. */
  cpuMicros(): number {
    let sum = 0;
    for (const p of this.procs) sum += processCpuMicros(p.pid!) ?? 0;
    return sum;
  }

  ready(): Promise<unknown> {
    return Promise.all(this.procs.map((p) => this.next(p, (m): m is { ready: true; clients: number } => 'ready' in m)));
  }

  /** Every client's ACK send time of `version`. */
  async acks(version: string): Promise<{ times: number[]; nacks: number }> {
    const replies = this.procs.map((p) =>
      this.next(
        p,
        (m): m is { version: string; times: number[]; nacks: number } => 'version' in m && m.version === version,
      ),
    );
    for (const p of this.procs) p.send({ want: version } satisfies ToWorker);
    const all = await Promise.all(replies);
    return { times: all.flatMap((r) => r.times), nacks: all.reduce((a, r) => a + r.nacks, 0) };
  }

  async close(): Promise<void> {
    await Promise.all(
      this.procs.map(async (p) => {
        if (p.exitCode !== null) return;
        const exited = once(p, 'exit');
        p.send({ close: true } satisfies ToWorker);
        const t = setTimeout(() => p.kill('SIGKILL'), 5000);
        await exited;
        clearTimeout(t);
      }),
    );
  }
}

// --- one N --------------------------------------------------------------------------------------

interface EditResult {
  kind: 'route weight' | 'endpoint';
  version: string;
  /** Per client, ms from the rename to its ACK send (client clock). */
  client: number[];
  /** Per client, ms from the rename to the server's log of its ACK. */
  server: number[];
  /** The real controlPlane() client's ACK, server log, ms. */
  real: number | undefined;
  reloadMs: number;
  snapshotMs: number;
  cpuMs: number;
  /** CPU of all client worker processes over the same span (/proc, 10 ms ticks). */
  clientCpuMs: number;
}

interface RunResult {
  clients: number;
  mode: 'decode' | 'header';
  workers: number;
  edits: EditResult[];
  /** The first edits after the server started (its code not yet optimised by V8), reported apart. */
  warmup: EditResult[];
  memory: { rssPerClientKiB: number; heapPerClientKiB: number; rssBeforeMiB: number; rssAfterMiB: number };
  connectMs: number;
  serverExit: number | null;
  nacks: number;
  profile?: string;
}

const now = (): number => performance.timeOrigin + performance.now();
const sleep = (ms: number): Promise<void> => new Promise((r) => setTimeout(r, ms));

async function runOne(n: number): Promise<RunResult> {
  const dir = await mkdtemp(path.join(os.tmpdir(), 'meshlet-bench-control-'));
  const file = path.join(dir, `mesh.${FORMAT}`);
  const state: EditState = { weight: 90, port: 9000 };
  await writeFile(file, render(state));
  const profileFile = opts.profile ? path.join(dir, 'edits.cpuprofile') : undefined;
  const server = new ServerProcess(file, await freePort(), await freePort());
  let workers: Workers | undefined;
  try {
    await server.start();
    await sleep(300);
    const m0 = await server.probe(true);
    const nWorkers = Number(opts.workers ?? (n >= 1000 ? 4 : 2));
    const t0 = now();
    workers = new Workers(server.port, n, nWorkers, modeFor(n));
    await workers.ready();
    const connectMs = now() - t0;
    await sleep(1000);
    const m1 = await server.probe(true);
    const memory = {
      rssPerClientKiB: (m1.mem.rss - m0.mem.rss) / n / 1024,
      heapPerClientKiB: (m1.mem.heapUsed - m0.mem.heapUsed) / n / 1024,
      rssBeforeMiB: m0.mem.rss / 1048576,
      rssAfterMiB: m1.mem.rss / 1048576,
    };
    process.stderr.write(
      `  ${n} clients connected in ${(connectMs / 1000).toFixed(1)} s; server RSS ${memory.rssBeforeMiB.toFixed(0)} → ${memory.rssAfterMiB.toFixed(0)} MiB\n`,
    );

    const edits: EditResult[] = [];
    const warmup: EditResult[] = [];
    // The served version, from the admin endpoint; every edit changes one type and so bumps it by one.
    let version = Number(
      ((await (await fetch(`http://127.0.0.1:${server.adminPort}/config`)).json()) as { version: string }).version,
    );
    for (let e = 0; e < WARMUP + EDITS; e++) {
      const kind = e % 2 === 0 ? 'route weight' : 'endpoint';
      if (kind === 'route weight') state.weight = state.weight === 90 ? 80 : 90;
      else state.port += 1;
      const text = render(state);
      const tmp = `${file}.tmp`;
      await writeFile(tmp, text);
      const want = String(++version);
      if (e === WARMUP && profileFile !== undefined) await server.probe(false, 'start');
      const cpu0 = (await server.probe(false)).cpu;
      const clientCpu0 = workers.cpuMicros();
      const reloadsBefore = server.reloads.length;
      const w0 = now();
      await rename(tmp, file);
      const clientAcks = workers.acks(want);
      const expected = n + (REAL ? 1 : 0);
      // The server's view of ACKs needs its debug-level `ack` lines; at a quieter --log-level only the
      // clients' times are reported.
      if (SERVER_ACKS) {
        await server.until(() => (server.acks.get(want)?.size ?? 0) >= expected, `${expected} ACKs of version ${want}`);
      }
      const { times } = await clientAcks;
      const cpu1 = (await server.probe(false)).cpu;
      const clientCpuMs = (workers.cpuMicros() - clientCpu0) / 1000;
      const acks = server.acks.get(want) ?? new Map<string, number>();
      const serverTimes: number[] = [];
      for (const [node, t] of acks) if (node !== 'bench-real') serverTimes.push(t - w0);
      const r: EditResult = {
        kind,
        version: want,
        client: times.map((t) => t - w0),
        server: serverTimes,
        real: REAL && acks.has('bench-real') ? acks.get('bench-real')! - w0 : undefined,
        reloadMs: (server.reloads[reloadsBefore] ?? NaN) - w0,
        snapshotMs: (server.snapshots.get(want) ?? NaN) - w0,
        cpuMs: (cpu1.user - cpu0.user + cpu1.system - cpu0.system) / 1000,
        clientCpuMs,
      };
      if (e >= WARMUP) edits.push(r);
      else warmup.push(r);
      process.stderr.write(
        `  ${e < WARMUP ? 'warm-up' : `edit ${e - WARMUP + 1}/${EDITS}`} (${kind}) v${want}: ` +
          `reload ${r.reloadMs.toFixed(0)} ms, snapshot ${r.snapshotMs.toFixed(0)} ms, ` +
          `client ACKs p50 ${pct(r.client, 50).toFixed(0)} / max ${Math.max(...r.client).toFixed(0)} ms, ` +
          `server CPU ${r.cpuMs.toFixed(0)} ms, client workers' CPU ${r.clientCpuMs.toFixed(0)} ms\n`,
      );
      await sleep(300);
    }
    if (profileFile !== undefined) await server.probe(false, profileFile);
    await workers.close();
    workers = undefined;
    const serverExit = await server.stop();
    let profile: string | undefined;
    if (profileFile !== undefined) {
      profile = renderProfileSummary(
        `meshlet control during the ${EDITS} measured edits, ${n} clients`,
        summarizeProfile(profileFile, 30),
      );
    }
    return {
      clients: n,
      mode: modeFor(n),
      workers: nWorkers,
      edits,
      warmup,
      memory,
      connectMs,
      serverExit,
      nacks: server.nacks,
      profile,
    };
  } finally {
    await workers?.close();
    await server.stop();
    if (server.errors.length > 0) process.stderr.write(`  server stderr: ${server.errors.join('').slice(0, 2000)}\n`);
    await rm(dir, { recursive: true, force: true });
  }
}

// --- report -------------------------------------------------------------------------------------

function pct(xs: number[], p: number): number {
  if (xs.length === 0) return NaN;
  const s = [...xs].sort((a, b) => a - b);
  return s[Math.min(s.length - 1, Math.ceil((p / 100) * s.length) - 1)]!;
}
const median = (xs: number[]): number => pct(xs, 50);
const f0 = (x: number): string => (Number.isFinite(x) ? x.toFixed(0) : '—');
const f1 = (x: number): string => (Number.isFinite(x) ? x.toFixed(1) : '—');

function report(results: RunResult[], parse: { json: number; yaml: number }): string {
  const lines: string[] = [];
  const cpu = os.cpus();
  lines.push(
    `meshlet control, ${SERVICES} services × ${ENDPOINTS} endpoints (${FORMAT} file); ` +
      `${cpu.length} × ${cpu[0]?.model ?? '?'}, Node ${process.version}, ${EDITS} edits per N after ${WARMUP} warm-up; ` +
      `load average ${loadStart.toFixed(1)} at start, ${os.loadavg()[0]!.toFixed(1)} at end`,
    '',
    "| clients | edit | edit → ACK p50 | p99 | max | server-seen p50 / p99 | snapshot → last ACK | real client | server CPU per push | clients' CPU per push |",
    '| --- | --- | ---: | ---: | ---: | ---: | ---: | ---: | ---: | ---: |',
  );
  for (const r of results) {
    for (const kind of ['all', 'route weight', 'endpoint', 'warm-up'] as const) {
      const es = kind === 'warm-up' ? r.warmup : kind === 'all' ? r.edits : r.edits.filter((e) => e.kind === kind);
      if (es.length === 0) continue;
      const client = es.flatMap((e) => e.client);
      const server = es.flatMap((e) => e.server);
      const real = es.map((e) => e.real).filter((x): x is number => x !== undefined);
      const fanOut = es.map((e) => Math.max(...e.client) - e.snapshotMs);
      lines.push(
        `| ${r.clients} (${r.mode}) | ${kind === 'warm-up' ? `first ${es.length} after start` : kind} | ${f0(pct(client, 50))} ms | ${f0(pct(client, 99))} ms | ${f0(Math.max(...client))} ms | ` +
          `${f0(pct(server, 50))} / ${f0(pct(server, 99))} ms | ${f0(median(fanOut))} ms | ` +
          `${real.length > 0 ? `${f0(median(real))} ms` : '—'} | ` +
          `${f0(median(es.map((e) => e.cpuMs)))} ms | ${f0(median(es.map((e) => e.clientCpuMs)))} ms |`,
      );
    }
  }
  lines.push(
    '',
    '| clients | rename → reloaded (p50) | rename → snapshot built (p50) | server memory per client (RSS / heap) | connect all |',
    '| ---: | ---: | ---: | ---: | ---: |',
  );
  for (const r of results) {
    lines.push(
      `| ${r.clients} | ${f0(median(r.edits.map((e) => e.reloadMs)))} ms | ${f0(median(r.edits.map((e) => e.snapshotMs)))} ms | ` +
        `${f1(r.memory.rssPerClientKiB)} KiB / ${f1(r.memory.heapPerClientKiB)} KiB | ${f1(r.connectMs / 1000)} s |`,
    );
  }
  lines.push(
    '',
    `Reading and validating this config once (readConfigFile, median of 5 in this process): JSON ${f0(parse.json)} ms, ` +
      `YAML ${f0(parse.yaml)} ms.`,
  );
  const at1000 = results.find((r) => r.clients === 1000);
  if (at1000 !== undefined) {
    const v = pct(
      at1000.edits.flatMap((e) => e.client),
      99,
    );
    const cold = pct(
      at1000.warmup.flatMap((e) => e.client),
      99,
    );
    lines.push(
      `Goal p99 < 100 ms at 1000 clients: ${v < 100 ? 'MET' : 'MISSED'} (${f0(v)} ms over the ${at1000.edits.length} edits ` +
        `after ${at1000.warmup.length} warm-up edits; ${f0(cold)} ms over those first ${at1000.warmup.length}).`,
    );
  }
  const nacks = results.reduce((a, r) => a + r.nacks, 0);
  if (nacks > 0) lines.push(`NACKs logged by the server: ${nacks} (expected 0).`);
  return lines.join('\n') + '\n';
}

/** Median ms of `readConfigFile` on this config as JSON and as YAML. */
async function parseCost(): Promise<{ json: number; yaml: number }> {
  const dir = await mkdtemp(path.join(os.tmpdir(), 'meshlet-bench-parse-'));
  try {
    const c = config({ weight: 90, port: 9000 });
    const out = { json: 0, yaml: 0 };
    for (const format of ['json', 'yaml'] as const) {
      const file = path.join(dir, `mesh.${format}`);
      await writeFile(file, format === 'json' ? JSON.stringify(c) : toYaml(c));
      const times: number[] = [];
      for (let i = 0; i < 6; i++) {
        const t = performance.now();
        await readConfigFile(file);
        if (i > 0) times.push(performance.now() - t);
      }
      out[format] = median(times);
    }
    return out;
  } finally {
    await rm(dir, { recursive: true, force: true });
  }
}

const started = now();
const loadStart = os.loadavg()[0]!;
const results: RunResult[] = [];
for (const n of counts) {
  process.stderr.write(`${n} clients:\n`);
  results.push(await runOne(n));
}
process.stdout.write(report(results, await parseCost()));
for (const r of results) if (r.profile !== undefined) process.stdout.write('\n' + r.profile);
process.stderr.write(`(took ${((now() - started) / 1000).toFixed(0)} s)\n`);
if (opts.json !== undefined) await writeFile(opts.json, JSON.stringify({ results, at: new Date().toISOString() }));
