/**
 * The gRPC benchmark (issue 9): raw grpc-js against meshlet's gRPC client over the same three
 * grpc-js servers, in the same run. Part of `npm run bench` (bench/run.ts calls `runGrpcBench` after
 * the HTTP setups; `--no-grpc` skips it), or alone:
 *
 *   node --import tsx bench/grpc.ts                 # after `npm run build`; prints the tables
 *   node --import tsx bench/grpc.ts --write         # and rewrites the gRPC section of bench/RESULTS.md
 *   node --import tsx bench/grpc.ts --rounds 9 --duration 7200 --quick
 *   node --import tsx bench/grpc.ts --profile      # every client under --cpu-prof; summaries printed
 *   node --import tsx bench/grpc.ts --runs 3 --write   # 3 runs back to back, their figures side by side
 *   node --import tsx bench/grpc.ts --points unary-c64 --rounds 9 --duration 7200   # one point only, no pairs
 *
 * - Upstreams: three grpc-js servers on 127.0.0.1, each its own process (bench/grpc-upstream.ts),
 *   answering raw 1 KiB Buffer messages (no protobuf codec on either side).
 * - `grpc-raw`: one grpc-js channel, `round_robin` over the three (`ipv4:` target,
 *   `grpc.service_config`). `grpc-meshlet`: `new grpc.Client('meshlet:///bench', creds,
 *   meshGrpcOptions(mesh))`, default policies on (P2C over peak EWMA, retries with a budget, deadline,
 *   breaker, outlier detection), no OpenTelemetry SDK. Both run the same call code (bench/grpc-common.ts)
 *   in the same generic runner as the HTTP clients (bench/client-runner.ts): same loops, same accounting.
 * - Load points: unary calls closed-loop at concurrency 1, 16 and 64; server-streaming calls
 *   (STREAM_MESSAGES messages of 1 KiB each) at concurrency 1 and 16. Each point in short rounds,
 *   raw and meshlet alternating (A B, B A, …) so a drift of the machine's load falls on both.
 * - Reported per point: calls/s of each, the throughput ratio (median of the per-round ratios, with
 *   their range), p50 of each and the added p50 (median of per-round differences), client CPU µs per
 *   call and bytes allocated per call of each, and their differences.
 * - Goals (issue 9): ≥ 0.90× raw throughput at every point, added p50 at c=1 (unary) under 20 µs;
 *   MET / MISSED when at least three rounds in four agree with the median, INCONCLUSIVE otherwise.
 */
import { fork, type ChildProcess } from 'node:child_process';
import { existsSync, mkdirSync, readdirSync, readFileSync, rmSync, statSync, writeFileSync } from 'node:fs';
import os from 'node:os';
import path from 'node:path';
import { fileURLToPath } from 'node:url';
import type { ClosedLoopPoint, PointResult } from './lib/types.ts';
import { STREAM_MESSAGES } from './grpc-common.ts';
import { ClientHandle } from './lib/client-handle.ts';
import { BenchChildren, TSX, readArgv, runIfMain, startUpstreamProcess } from './lib/cli.ts';
import { renderProfileSummary, summarizeProfile } from './profile.ts';
import type { PairedResult } from './grpc-paired.ts';

const benchDir = path.dirname(fileURLToPath(import.meta.url));
const rootDir = path.dirname(benchDir);

// ---------------------------------------------------------------------------------------------
// What is measured

export interface GrpcSetup {
  name: 'grpc-raw' | 'grpc-meshlet';
  /** Module loaded by bench/client-runner.ts (relative to bench/clients/). */
  module: string;
  form: string;
}

export const GRPC_SETUPS: GrpcSetup[] = [
  {
    name: 'grpc-raw',
    module: '../grpc-client-raw',
    form: "new grpc.Client('ipv4:127.0.0.1:A,127.0.0.1:B,127.0.0.1:C', creds, { 'grpc.service_config': round_robin })",
  },
  {
    name: 'grpc-meshlet',
    module: '../grpc-client-meshlet',
    form: "new grpc.Client('meshlet:///bench', creds, meshGrpcOptions(mesh))",
  },
];
const RAW = GRPC_SETUPS[0];
const MESH = GRPC_SETUPS[1];

export interface GrpcPointDef {
  key: string;
  kind: 'unary' | 'stream';
  concurrency: number;
  label: string;
}

export const GRPC_POINTS: GrpcPointDef[] = [
  { key: 'unary-c1', kind: 'unary', concurrency: 1, label: 'unary, c=1' },
  { key: 'unary-c16', kind: 'unary', concurrency: 16, label: 'unary, c=16' },
  { key: 'unary-c64', kind: 'unary', concurrency: 64, label: 'unary, c=64' },
  { key: 'stream-c1', kind: 'stream', concurrency: 1, label: `server stream (${STREAM_MESSAGES} msgs), c=1` },
  { key: 'stream-c16', kind: 'stream', concurrency: 16, label: `server stream (${STREAM_MESSAGES} msgs), c=16` },
];

/** Throughput goal, as a ratio to raw grpc-js, at every point. */
export const GRPC_THROUGHPUT_GOAL = 0.9;
/** Added p50 goal at unary c=1, µs. */
export const GRPC_ADDED_P50_GOAL_US = 20;

export interface GrpcBenchOptions {
  quick: boolean;
  /** Measured time per setup and point, over all rounds, ms. */
  durationMs: number;
  rounds: number;
  warmupMs: number;
  initialWarmupMs: number;
  /** Run the clients under `node --cpu-prof` (profiles in bench/results/profiles/grpc-*). */
  profile: boolean;
  /** `--points unary-c64,…`: only these load points, and no call-by-call pairs (to study one point). */
  points?: string[];
}

export function grpcOptionsFrom(argv: string[]): GrpcBenchOptions {
  const quick = argv.includes('--quick');
  const { number } = readArgv(argv);
  return {
    quick,
    durationMs: number('--duration', quick ? 600 : 4000),
    rounds: Math.round(number('--rounds', quick ? 1 : 5)),
    warmupMs: number('--warmup', quick ? 150 : 300),
    initialWarmupMs: quick ? 500 : 2000,
    profile: argv.includes('--profile'),
    ...pointsFrom(argv),
  };
}

function pointsFrom(argv: string[]): { points?: string[] } {
  const at = argv.indexOf('--points');
  if (at < 0) return {};
  const points = (argv[at + 1] ?? '').split(',').filter((p) => p !== '');
  const known = GRPC_POINTS.map((p) => p.key);
  const unknown = points.filter((p) => !known.includes(p));
  if (points.length === 0 || unknown.length > 0)
    throw new Error(
      `--points: expected a comma-separated list of ${known.join(', ')}; got ${JSON.stringify(argv[at + 1] ?? '')}`,
    );
  return { points };
}

/** One setup at one point, or why it has no figures. */
export type GrpcResult = PointResult | { failed: string };

export interface GrpcReport {
  version: 1;
  startedAt: string;
  finishedAt: string;
  command: string;
  options: GrpcBenchOptions;
  environment: { cpuModel: string; cores: number; node: string; grpcJs: string; loadAverageAtEnd: number[] };
  /** results[setup][point key] */
  results: Record<string, Record<string, GrpcResult>>;
  /** Concurrency 1, raw and meshlet calls alternating in one process (bench/grpc-paired.ts), per call kind. */
  paired?: Array<PairedResult | { kind: string; failed: string }>;
}

// ---------------------------------------------------------------------------------------------
// Processes

export interface GrpcHooks {
  log: (line: string) => void;
  /** Every process started is handed to this, so the caller can kill it on every way out. */
  track: (child: ChildProcess) => void;
}

/** bench/grpc-paired.ts for one call kind: raw and meshlet calls alternating at concurrency 1. */
async function runPaired(
  kind: 'unary' | 'stream',
  targets: string[],
  options: GrpcBenchOptions,
  hooks: GrpcHooks,
): Promise<PairedResult> {
  const warmupMs = options.initialWarmupMs;
  const child = fork(
    path.join(benchDir, 'grpc-paired.ts'),
    [JSON.stringify(targets), kind, String(warmupMs), String(options.durationMs)],
    { execArgv: TSX, stdio: ['ignore', 'inherit', 'inherit', 'ipc'], env: { ...process.env, NODE_ENV: 'production' } },
  );
  hooks.track(child);
  return new Promise((resolve, reject) => {
    const timer = setTimeout(
      () => {
        child.kill('SIGKILL');
        reject(
          new Error(`paired ${kind}: no result after ${Math.round((warmupMs + options.durationMs) / 1000) + 60} s`),
        );
      },
      warmupMs + options.durationMs + 60_000,
    );
    child.on('message', (m: { type: 'paired'; result: PairedResult } | { type: 'fatal'; message: string }) => {
      clearTimeout(timer);
      if (m.type === 'paired') resolve(m.result);
      else reject(new Error(`paired ${kind}: ${m.message}`));
    });
    child.once('exit', (code) => {
      clearTimeout(timer);
      reject(new Error(`paired ${kind}: exited with ${code} before reporting`));
    });
  });
}

/** Where `--profile` puts a client's profiles (one file per thread; the main thread's is the largest). */
export function grpcProfileDir(setup: GrpcSetup, kind: 'unary' | 'stream'): string {
  return path.join(benchDir, 'results', 'profiles', `${setup.name}-${kind}`);
}

function startClient(
  setup: GrpcSetup,
  kind: 'unary' | 'stream',
  targets: string[],
  hooks: GrpcHooks,
  profile: boolean,
): ClientHandle {
  const dir = grpcProfileDir(setup, kind);
  if (profile) rmSync(dir, { recursive: true, force: true });
  const child = fork(path.join(benchDir, 'client-runner.ts'), [setup.module, JSON.stringify(targets), kind], {
    execArgv: [...TSX, ...(profile ? ['--cpu-prof', `--cpu-prof-dir=${dir}`] : [])],
    stdio: ['ignore', 'inherit', 'inherit', 'ipc'],
    env: { ...process.env, NODE_ENV: 'production' },
  });
  hooks.track(child);
  return new ClientHandle(`${setup.name} (${kind})`, child, []);
}

/** One line saying why a client failed: the error's own line, not the stack's source location. */
function reason(err: unknown): string {
  const lines = (err instanceof Error ? err.message : String(err)).split('\n').map((l) => l.trim());
  const prefix = /^(grpc-\S+ \(\w+\): )/.exec(lines[0] ?? '')?.[1] ?? '';
  const line = lines.find((l) => /\b\w*Error\b|MESHLET_ERR_/.test(l)) ?? lines[0] ?? '';
  return line.startsWith(prefix) ? line : `${prefix}${line}`;
}

function grpcJsVersion(): string {
  try {
    const pkg = JSON.parse(readFileSync(path.join(rootDir, 'node_modules/@grpc/grpc-js/package.json'), 'utf8')) as {
      version: string;
    };
    return pkg.version;
  } catch {
    return 'unknown';
  }
}

/**
 * Runs every gRPC setup at every point (upstreams and clients started and stopped here). A setup
 * whose client fails is reported as failed at the points it missed; the run does not stop.
 */
export async function runGrpcBench(options: GrpcBenchOptions, hooks: GrpcHooks, command: string): Promise<GrpcReport> {
  const startedAt = new Date();
  const upstreamProcs = await Promise.all([0, 1, 2].map(() => startUpstreamProcess('grpc-upstream.ts', hooks.track)));
  const targets = upstreamProcs.map((u) => u.address);
  hooks.log(`gRPC upstreams: ${targets.join(', ')}`);
  const results: GrpcReport['results'] = {};
  const paired: NonNullable<GrpcReport['paired']> = [];
  const clients = new Map<string, ClientHandle>();
  const clientKey = (setup: GrpcSetup, kind: string): string => `${setup.name}/${kind}`;
  try {
    for (const kind of ['unary', 'stream'] as const) {
      for (const setup of GRPC_SETUPS)
        clients.set(clientKey(setup, kind), startClient(setup, kind, targets, hooks, options.profile));
    }
    await Promise.all([...clients.values()].map((c) => c.ready().catch(() => undefined)));
    for (const kind of ['unary', 'stream'] as const) {
      for (const setup of GRPC_SETUPS) {
        const client = clients.get(clientKey(setup, kind));
        await client
          ?.run('warmup', { mode: 'closed', concurrency: 16, warmupMs: options.initialWarmupMs, durationMs: 1 })
          .catch(() => undefined);
        if (client?.failure !== undefined) hooks.log(`${client.name} FAILED: ${reason(client.failure)}`);
      }
    }
    const perRound = Math.max(1, Math.round(options.durationMs / options.rounds));
    for (const def of GRPC_POINTS) {
      if (options.points !== undefined && !options.points.includes(def.key)) continue;
      const point: ClosedLoopPoint = {
        mode: 'closed',
        concurrency: def.concurrency,
        warmupMs: options.warmupMs,
        durationMs: perRound,
      };
      for (let round = 0; round < options.rounds; round++) {
        const order = round % 2 === 0 ? GRPC_SETUPS : [...GRPC_SETUPS].reverse();
        for (const setup of order) {
          const client = clients.get(clientKey(setup, def.kind));
          if (client === undefined) continue;
          const row = (results[setup.name] ??= {});
          try {
            row[def.key] = await client.run(def.key, point);
          } catch (err) {
            if (!(def.key in row)) row[def.key] = { failed: reason(err) };
          }
        }
      }
      for (const setup of GRPC_SETUPS) {
        const r = results[setup.name]?.[def.key];
        if (r === undefined) continue;
        hooks.log(
          'failed' in r
            ? `  ${setup.name.padEnd(13)} ${def.label.padEnd(30)} FAILED: ${r.failed}`
            : `  ${setup.name.padEnd(13)} ${def.label.padEnd(30)} ${r.throughput.toFixed(0).padStart(7)} calls/s  ` +
                `p50 ${r.latencyUs.p50.toFixed(0)} p99 ${r.latencyUs.p99.toFixed(0)} µs  cpu ${r.cpuUsPerRequest.toFixed(1)} µs/call` +
                (r.errors > 0 ? `  errors ${r.errors} (${r.firstError ?? ''})` : ''),
        );
      }
    }
    await Promise.all([...clients.values()].map((c) => c.close()));
    clients.clear();
    for (const kind of options.points === undefined ? (['unary', 'stream'] as const) : []) {
      const result = await runPaired(kind, targets, options, hooks).catch(
        (err: unknown): { kind: string; failed: string } => ({ kind, failed: reason(err) }),
      );
      paired.push(result);
      hooks.log(
        'failed' in result
          ? `  paired ${kind}: FAILED: ${result.failed}`
          : `  paired ${kind}, c=1, ${result.pairs} pairs: p50 ${result.meshlet.p50Us.toFixed(0)} / ${result.raw.p50Us.toFixed(0)} µs, ` +
              `Δp50 ${result.deltaP50Us.toFixed(1)} µs, CPU ${result.meshlet.cpuUs.toFixed(1)} / ${result.raw.cpuUs.toFixed(1)} µs/call`,
      );
    }
  } finally {
    await Promise.all([...clients.values()].map((c) => c.close()));
    for (const u of upstreamProcs) u.child.kill('SIGTERM');
  }
  const cpus = os.cpus();
  return {
    version: 1,
    startedAt: startedAt.toISOString(),
    finishedAt: new Date().toISOString(),
    command,
    options,
    environment: {
      cpuModel: cpus[0]?.model.trim() ?? 'unknown',
      cores: cpus.length,
      node: process.version,
      grpcJs: grpcJsVersion(),
      loadAverageAtEnd: os.loadavg().map((l) => Math.round(l * 100) / 100),
    },
    results,
    paired,
  };
}

// ---------------------------------------------------------------------------------------------
// Comparison

function median(values: number[]): number {
  const sorted = [...values].sort((a, b) => a - b);
  const mid = sorted.length >> 1;
  return sorted.length % 2 === 1 ? sorted[mid] : (sorted[mid - 1] + sorted[mid]) / 2;
}

export interface GrpcComparison {
  point: GrpcPointDef;
  raw: PointResult;
  mesh: PointResult;
  /** Per-round meshlet/raw throughput ratios (round i of both ran in the same sweep). */
  ratios: number[];
  /** Per-round p50 differences, µs. */
  p50Deltas: number[];
  /** Per-round client CPU per call differences, µs. */
  cpuDeltas: number[];
  throughputVerdict: string;
  /** Unary c=1 only. */
  p50Verdict: string | undefined;
}

/** MET / MISSED when ≥ 3 rounds in 4 fall on the median's side of the goal; INCONCLUSIVE otherwise. */
function verdict(values: number[], meets: (v: number) => boolean): string {
  if (values.length === 0) return 'no figures';
  const m = median(values);
  const side = meets(m);
  const agreeing = values.filter((v) => meets(v) === side).length;
  if (agreeing / values.length >= 0.75) return side ? 'MET' : 'MISSED';
  return `INCONCLUSIVE (median ${side ? 'meets' : 'misses'})`;
}

export function compareGrpc(report: GrpcReport): Array<GrpcComparison | { point: GrpcPointDef; failed: string }> {
  return GRPC_POINTS.map((point) => {
    const raw = report.results[RAW.name]?.[point.key];
    const mesh = report.results[MESH.name]?.[point.key];
    if (raw === undefined || mesh === undefined) return { point, failed: 'not measured' };
    // A failure's reason already names its client (`grpc-raw (unary): …`).
    if ('failed' in raw) return { point, failed: raw.failed };
    if ('failed' in mesh) return { point, failed: mesh.failed };
    const n = Math.min(raw.perRound.length, mesh.perRound.length);
    const ratios: number[] = [];
    const p50Deltas: number[] = [];
    const cpuDeltas: number[] = [];
    for (let i = 0; i < n; i++) {
      const a = raw.perRound[i];
      const b = mesh.perRound[i];
      if (a.throughput > 0) ratios.push(b.throughput / a.throughput);
      p50Deltas.push(b.latencyUs.p50 - a.latencyUs.p50);
      if (a.cpuUsPerRequest !== undefined && b.cpuUsPerRequest !== undefined) {
        cpuDeltas.push(b.cpuUsPerRequest - a.cpuUsPerRequest);
      }
    }
    return {
      point,
      raw,
      mesh,
      ratios,
      p50Deltas,
      cpuDeltas,
      throughputVerdict: verdict(ratios, (r) => r >= GRPC_THROUGHPUT_GOAL),
      p50Verdict:
        point.kind === 'unary' && point.concurrency === 1
          ? verdict(p50Deltas, (d) => d < GRPC_ADDED_P50_GOAL_US)
          : undefined,
    };
  });
}

// ---------------------------------------------------------------------------------------------
// Rendering

const fmt = (n: number, digits = 0): string =>
  n.toLocaleString('en-US', { minimumFractionDigits: digits, maximumFractionDigits: digits });
const signed = (n: number, digits = 1): string => `${n >= 0 ? '+' : ''}${fmt(n, digits)}`;
const bytes = (n: number | undefined): string =>
  n === undefined ? '–' : n >= 1024 ? `${fmt(n / 1024, 1)} KB` : `${fmt(n)} B`;
const range = (values: number[], f: (v: number) => string): string =>
  values.length === 0 ? '' : `${f(Math.min(...values))}…${f(Math.max(...values))}`;

function rows(report: GrpcReport): string[][] {
  return compareGrpc(report).map((c) => {
    if ('failed' in c) return [c.point.label, `FAILED: ${c.failed}`, '', '', '', '', '', '', '', ''];
    const ratio = median(c.ratios);
    const errors = c.raw.errors + c.mesh.errors;
    return [
      c.point.label,
      `${fmt(c.mesh.throughput)} / ${fmt(c.raw.throughput)}${errors > 0 ? ` (errors ${c.mesh.errors} / ${c.raw.errors})` : ''}`,
      `${ratio.toFixed(2)}× (${range(c.ratios, (v) => v.toFixed(2))})`,
      `${fmt(c.mesh.latencyUs.p50)} / ${fmt(c.raw.latencyUs.p50)}`,
      `${signed(median(c.p50Deltas), 0)} (${range(c.p50Deltas, (v) => signed(v, 0))})`,
      `${fmt(c.mesh.cpuUsPerRequest, 1)} / ${fmt(c.raw.cpuUsPerRequest, 1)}`,
      c.cpuDeltas.length === 0 ? '–' : `${signed(median(c.cpuDeltas))} (${range(c.cpuDeltas, (v) => signed(v))})`,
      `${bytes(c.mesh.bytesPerRequest)} / ${bytes(c.raw.bytesPerRequest)}`,
      `≥ ${GRPC_THROUGHPUT_GOAL.toFixed(2)}×: ${c.throughputVerdict}`,
      c.p50Verdict === undefined ? '–' : `< +${GRPC_ADDED_P50_GOAL_US} µs: ${c.p50Verdict}`,
    ];
  });
}

const HEADER = [
  'point',
  'calls/s meshlet / raw',
  'ratio (rounds)',
  'p50 µs meshlet / raw',
  'Δp50 µs (rounds)',
  'client CPU µs/call meshlet / raw',
  'Δ CPU µs/call (rounds)',
  'alloc/call meshlet / raw',
  'throughput goal',
  'added p50 goal',
];

const PAIRED_HEADER = [
  'c=1, calls alternating in one process',
  'pairs',
  'p50 µs meshlet / raw',
  'Δp50 µs (slices)',
  'p99 µs meshlet / raw',
  'client CPU µs/call meshlet / raw',
  'Δ CPU µs/call (slices)',
  'added p50 goal',
];

function pairedRows(report: GrpcReport): string[][] {
  return (report.paired ?? []).map((p) => {
    const label = p.kind === 'unary' ? 'unary' : `server stream (${STREAM_MESSAGES} msgs)`;
    if ('failed' in p) return [label, `FAILED: ${p.failed}`, '', '', '', '', '', ''];
    const errors = p.errors.raw + p.errors.meshlet;
    const dl = p.slices.map((s) => s.deltaP50Us);
    const dc = p.slices.map((s) => s.deltaCpuUs);
    return [
      label,
      `${fmt(p.pairs)}${errors > 0 ? ` (errors ${p.errors.meshlet} / ${p.errors.raw}: ${p.errors.first ?? ''})` : ''}`,
      `${fmt(p.meshlet.p50Us)} / ${fmt(p.raw.p50Us)}`,
      `${signed(p.deltaP50Us)} (${range(dl, (v) => signed(v))})`,
      `${fmt(p.meshlet.p99Us)} / ${fmt(p.raw.p99Us)}`,
      `${fmt(p.meshlet.cpuUs, 1)} / ${fmt(p.raw.cpuUs, 1)}`,
      `${signed(p.deltaCpuUs)} (${range(dc, (v) => signed(v))})`,
      p.kind === 'unary' ? `< +${GRPC_ADDED_P50_GOAL_US} µs: ${verdict(dl, (d) => d < GRPC_ADDED_P50_GOAL_US)}` : '–',
    ];
  });
}

function textTable(header: string[], body: string[][]): string {
  const all = [header, ...body];
  const widths = header.map((_, i) => Math.max(...all.map((r) => r[i].length)));
  return all.map((r) => r.map((cell, i) => cell.padEnd(widths[i])).join('  ')).join('\n');
}

/** The comparison as plain-text tables, for the terminal. */
export function renderGrpcTable(report: GrpcReport): string {
  const paired = pairedRows(report);
  return (
    `\ngRPC: meshlet vs raw grpc-js\n${textTable(HEADER, rows(report))}\n` +
    (paired.length === 0 ? '' : `\n${textTable(PAIRED_HEADER, paired)}\n`)
  );
}

export const GRPC_SECTION_START = '<!-- grpc-bench:start -->';
export const GRPC_SECTION_END = '<!-- grpc-bench:end -->';

/** The gRPC section of bench/RESULTS.md, between its markers. */
export function renderGrpcSection(report: GrpcReport, jsonName: string, earlier: GrpcReport[] = []): string {
  const env = report.environment;
  const o = report.options;
  return [
    GRPC_SECTION_START,
    '## gRPC: meshlet vs raw grpc-js',
    '',
    '<!-- Generated by `npm run bench` or `node --import tsx bench/grpc.ts --write` (bench/grpc.ts); do not edit by hand. -->',
    '',
    ...seriesSection([...earlier, report]),
    `${earlier.length > 0 ? `The last of the ${earlier.length + 1} runs in full: run` : 'Run'} ${report.startedAt} → ${report.finishedAt}, raw figures in \`bench/results/${jsonName}\` (not committed).`,
    '',
    `- Command: \`${report.command}\``,
    `- Machine: ${env.cpuModel}, ${env.cores} cores; load average at the end ${env.loadAverageAtEnd.join(' / ')}; Node ${env.node}, @grpc/grpc-js ${env.grpcJs}`,
    `- Each point: ${o.rounds} round(s) of ${o.warmupMs} ms warm-up + ${Math.round(o.durationMs / o.rounds)} ms measured per client, raw and meshlet alternating (A B, B A, …).`,
    '- Three grpc-js servers on 127.0.0.1, each its own process, answering 1 KiB raw Buffer messages (no protobuf on',
    '  either side, so meshlet’s cost is not diluted by a codec); the client process is the one measured.',
    `- \`grpc-raw\`: \`${RAW.form}\`, one channel, grpc-js defaults otherwise.`,
    `- \`grpc-meshlet\`: \`${MESH.form}\`, service \`bench\` with \`protocol: 'grpc'\` and the default policies (P2C over`,
    '  peak EWMA, retries with a budget, deadline, circuit breaker, outlier detection), no OpenTelemetry SDK.',
    `- Unary calls and server-streaming calls (${STREAM_MESSAGES} messages each, read to the end), closed loop at concurrency c.`,
    '- Throughput and p50 are medians over the rounds; the ratio and the Δ columns are medians of per-round paired values,',
    '  with their range. Client CPU is the client process’s user + system time per completed call (pooled); alloc is',
    '  the JS heap bytes it allocated per call (heap growth + what GCs freed, as for HTTP).',
    `- Goals (issue 9): ≥ ${GRPC_THROUGHPUT_GOAL.toFixed(2)}× raw throughput with all policies on, added p50 at c=1 under ${GRPC_ADDED_P50_GOAL_US} µs; MET or`,
    '  MISSED when at least three rounds in four agree with the median, INCONCLUSIVE otherwise.',
    '',
    `| ${HEADER.join(' | ')} |`,
    `| :--- | ${HEADER.slice(1)
      .map((_, i) => (i >= 7 ? ':---' : '---:'))
      .join(' | ')} |`,
    ...rows(report).map((r) => `| ${r.join(' | ')} |`),
    '',
    ...pairedSection(report),
    GRPC_SECTION_END,
  ].join('\n');
}

/**
 * `--runs n`: the headline figures of every run side by side, and their median. One run's rounds
 * share its minutes; separate runs show how far the verdict moves with the machine's load.
 */
function seriesSection(reports: GrpcReport[]): string[] {
  if (reports.length < 2) return [];
  const header = ['figure', ...reports.map((_, i) => `run ${i + 1}`), 'median of runs'];
  const body: string[][] = [];
  const line = (label: string, values: Array<number | undefined>, f: (v: number) => string): void => {
    const known = values.filter((v): v is number => v !== undefined);
    body.push([
      label,
      ...values.map((v) => (v === undefined ? '–' : f(v))),
      known.length === 0 ? '–' : f(median(known)),
    ]);
  };
  const comparisons = reports.map((r) => compareGrpc(r));
  GRPC_POINTS.forEach((point, i) => {
    const of = (pick: (c: GrpcComparison) => number): Array<number | undefined> =>
      comparisons.map((cs) => {
        const c = cs[i];
        return 'failed' in c ? undefined : pick(c);
      });
    line(
      `${point.label}: throughput ratio`,
      of((c) => median(c.ratios)),
      (v) => `${v.toFixed(2)}×`,
    );
    line(
      `${point.label}: Δ CPU µs/call`,
      of((c) => median(c.cpuDeltas)),
      (v) => signed(v),
    );
    if (point.kind === 'unary' && point.concurrency === 1) {
      line(
        `${point.label}: Δp50 µs`,
        of((c) => median(c.p50Deltas)),
        (v) => signed(v, 0),
      );
    }
  });
  for (const kind of ['unary', 'stream'] as const) {
    const of = (pick: (p: PairedResult) => number): Array<number | undefined> =>
      reports.map((r) => {
        const p = r.paired?.find((x) => x.kind === kind);
        return p === undefined || 'failed' in p ? undefined : pick(p);
      });
    const label = kind === 'unary' ? 'unary' : 'server stream';
    line(
      `${label}, c=1 call by call: Δp50 µs`,
      of((p) => p.deltaP50Us),
      (v) => signed(v),
    );
    line(
      `${label}, c=1 call by call: Δ CPU µs/call`,
      of((p) => p.deltaCpuUs),
      (v) => signed(v),
    );
  }
  return [
    `### ${reports.length} runs, one after the other`,
    '',
    `Commands: \`${reports[0].command}\`; load average at the end of each run: ${reports
      .map((r) => r.environment.loadAverageAtEnd[0])
      .join(', ')}. Each figure is the run’s own median (as in the tables below).`,
    '',
    `| ${header.join(' | ')} |`,
    `| :--- | ${header
      .slice(1)
      .map(() => '---:')
      .join(' | ')} |`,
    ...body.map((r) => `| ${r.join(' | ')} |`),
    '',
  ];
}

function pairedSection(report: GrpcReport): string[] {
  const body = pairedRows(report);
  if (body.length === 0) return [];
  return [
    'The same two clients at concurrency 1, **call by call**: one process holds both and alternates them (raw then',
    'meshlet, then meshlet then raw, …) for the same measured time, so the machine’s drift falls on both alike.',
    'Δp50 is the median of the per-pair latency differences, Δ CPU the mean per-pair difference of the process’s',
    'CPU time across each call; in brackets the range over 8 consecutive time slices (MET / MISSED when 3 in 4',
    'slices agree with the median, as above).',
    '',
    `| ${PAIRED_HEADER.join(' | ')} |`,
    `| :--- | ${PAIRED_HEADER.slice(1)
      .map((_, i) => (i === 6 ? ':---' : '---:'))
      .join(' | ')} |`,
    ...body.map((r) => `| ${r.join(' | ')} |`),
    '',
  ];
}

/** The gRPC section currently in `markdown` (markers included), if any. */
export function grpcSectionOf(markdown: string): string | undefined {
  const start = markdown.indexOf(GRPC_SECTION_START);
  const end = markdown.indexOf(GRPC_SECTION_END);
  if (start < 0 || end < start) return undefined;
  return markdown.slice(start, end + GRPC_SECTION_END.length);
}

/**
 * `markdown` with its gRPC section replaced by `section` (appended when it has none). With
 * `section` undefined, the section of `previous` (the file before it was regenerated) is kept, so
 * an HTTP-only run does not erase the last gRPC figures.
 */
export function withGrpcSection(markdown: string, section: string | undefined, previous?: string): string {
  const wanted = section ?? (previous === undefined ? undefined : grpcSectionOf(previous));
  const current = grpcSectionOf(markdown);
  if (wanted === undefined) return markdown;
  if (current !== undefined) return markdown.replace(current, () => wanted);
  return `${markdown.replace(/\n*$/, '')}\n\n${wanted}\n`;
}

/** Writes the report's JSON under bench/results/ and returns its file name. */
export function saveGrpcReport(report: GrpcReport): string {
  const dir = path.join(benchDir, 'results');
  mkdirSync(dir, { recursive: true });
  const name = `grpc-${report.startedAt.replace(/[:.]/g, '-')}.json`;
  writeFileSync(path.join(dir, name), JSON.stringify(report, null, 2) + '\n');
  return name;
}

// ---------------------------------------------------------------------------------------------
// Standalone: node --import tsx bench/grpc.ts [--quick] [--rounds n] [--duration ms] [--warmup ms] [--write]

async function main(): Promise<void> {
  const argv = process.argv.slice(2);
  const children = new BenchChildren();
  const hooks: GrpcHooks = { log: (line) => process.stderr.write(`${line}\n`), track: children.track };
  const options = grpcOptionsFrom(argv);
  const command = `node --import tsx bench/grpc.ts${argv.length > 0 ? ` ${argv.join(' ')}` : ''}`;
  hooks.log(
    `meshlet gRPC bench: per setup and point ${options.rounds} round(s) of ${options.warmupMs} ms warm-up + ` +
      `${Math.round(options.durationMs / options.rounds)} ms measured`,
  );
  const runsAt = argv.indexOf('--runs');
  const runs = runsAt < 0 ? 1 : Number(argv[runsAt + 1]);
  if (!Number.isInteger(runs) || runs < 1)
    throw new Error(`--runs: expected a whole number >= 1, got ${argv[runsAt + 1]}`);
  const reports: GrpcReport[] = [];
  let jsonName = '';
  for (let i = 0; i < runs; i++) {
    if (runs > 1) hooks.log(`run ${i + 1} of ${runs}`);
    const one = await runGrpcBench(options, hooks, command);
    process.stdout.write(renderGrpcTable(one));
    jsonName = saveGrpcReport(one);
    hooks.log(`wrote bench/results/${jsonName}`);
    reports.push(one);
  }
  const report = reports[reports.length - 1];
  if (options.profile) {
    for (const kind of ['unary', 'stream'] as const) {
      for (const setup of GRPC_SETUPS) {
        const dir = grpcProfileDir(setup, kind);
        const files = existsSync(dir) ? readdirSync(dir).filter((f) => f.endsWith('.cpuprofile')) : [];
        const main = files.map((f) => path.join(dir, f)).sort((a, b) => statSync(b).size - statSync(a).size)[0];
        if (main === undefined) {
          hooks.log(`no profile written for ${setup.name} (${kind})`);
          continue;
        }
        process.stdout.write('\n' + renderProfileSummary(`${setup.name} (${kind})`, summarizeProfile(main)));
        hooks.log(`profile: ${path.relative(rootDir, main)}`);
      }
    }
  }
  if (argv.includes('--write')) {
    const file = path.join(benchDir, 'RESULTS.md');
    const markdown = readFileSync(file, 'utf8');
    writeFileSync(file, withGrpcSection(markdown, renderGrpcSection(report, jsonName, reports.slice(0, -1))));
    hooks.log('wrote the gRPC section of bench/RESULTS.md');
  }
}

runIfMain(import.meta.url, main);
