/**
 * `npm run bench`: starts three upstream servers, the HAProxy sidecars and one client process
 * per setup, measures every setup at every load point (closed loop at concurrency 1, 16, 32, 64;
 * open loop at 50% and 80% of the load base's maximum) in the same run, runs the
 * microbenchmarks, then prints a table, writes bench/results/<timestamp>.json and rewrites
 * bench/RESULTS.md and bench/chart.svg. A setup whose client fails is reported as failed and the
 * run goes on without it; only a failing baseline stops the run.
 *
 * Flags:
 *   --quick              short smoke run (about a minute); does not rewrite RESULTS.md unless --write
 *   --only a,b           only these setups (the baseline always runs: rates and ratios need it)
 *   --duration <ms>      measured time per setup and load point, split over the rounds (default 4000)
 *   --rounds <n>         rounds per load point, interleaved across setups (default 5)
 *   --warmup <ms>        warm-up before each round's window (default 300)
 *   --no-micro           skip the microbenchmarks
 *   --no-haproxy         skip the sidecar setups
 *   --haproxy-threads n  nbthread of each HAProxy (default 1)
 *   --write / --no-write force or suppress rewriting RESULTS.md and chart.svg
 *   --pin                pin the client processes (and client-side sidecars) to the last CPU, the upstreams
 *                        (and server-side sidecars) to the others, so the client is not preempted by them
 *   --from <file.json>   measure nothing: re-render the table (and with --write RESULTS.md and the chart) from
 *                        a saved bench/results/<timestamp>.json
 *   --profile a,b        run these setups' clients under `node --cpu-prof` (whole run) and print
 *                        where their CPU goes; profiles in bench/results/profiles/
 *   --no-grpc            skip the gRPC benchmark (bench/grpc.ts), which otherwise runs after the HTTP setups
 *                        (not with --only; `node --import tsx bench/grpc.ts` runs it alone)
 *   --no-interleaved     skip the interleaved comparison of the throughput goals (bench/interleaved.ts), which
 *                        otherwise runs after gRPC (not with --only; `node --import tsx bench/interleaved.ts` runs it alone)
 *   --no-instructions    skip the instruction counts of the throughput goals under callgrind (bench/instructions.ts),
 *                        which otherwise run last (not with --only; --quick runs a short variant of the
 *                        `undici.request` form alone; `node --import tsx bench/instructions.ts` runs it alone)
 */
import { fork, type ChildProcess } from 'node:child_process';
import { existsSync, mkdirSync, readdirSync, readFileSync, rmSync, statSync, writeFileSync } from 'node:fs';
import os from 'node:os';
import path from 'node:path';
import { fileURLToPath } from 'node:url';
import { ensureHaproxy, startSidecars, type HaproxyInfo, type Sidecars } from './lib/haproxy.ts';
import { pinProcess } from './lib/proc.ts';
import { ClientHandle } from './lib/client-handle.ts';
import { BenchChildren, TSX, readArgv, startUpstreamProcess } from './lib/cli.ts';
import type { LoadPoint, MicroResults, PointResult } from './lib/types.ts';
import {
  collectEnvironment,
  evaluateTargets,
  renderMarkdown,
  renderTable,
  type BenchReport,
  type PointKey,
} from './report.ts';
import { renderChart } from './chart.ts';
import { renderProfileSummary, summarizeProfile } from './profile.ts';
import { BASELINE, RUN_ORDER, SETUPS, type SetupDef } from './setups.ts';
import {
  grpcOptionsFrom,
  renderGrpcSection,
  renderGrpcTable,
  runGrpcBench,
  saveGrpcReport,
  withGrpcSection,
  type GrpcReport,
} from './grpc.ts';
import {
  interleavedOptionsFrom,
  interleavedSectionOf,
  renderInterleavedSection,
  renderInterleavedTable,
  runInterleavedBench,
  withInterleavedSection,
  type InterleavedReport,
} from './interleaved.ts';
import {
  instructionsOptionsFrom,
  instructionsSectionOf,
  renderInstructionsSection,
  renderInstructionsTable,
  runInstructionsBench,
  saveInstructionsReport,
  withInstructionsSection,
  type InstructionsReport,
} from './instructions.ts';

const benchDir = path.dirname(fileURLToPath(import.meta.url));
const rootDir = path.dirname(benchDir);

// ---------------------------------------------------------------------------------------------
// Options

interface Options {
  quick: boolean;
  only: string[] | undefined;
  /** Measured time per setup and load point, over all rounds. */
  durationMs: number;
  rounds: number;
  /** Warm-up before each round's window. */
  warmupMs: number;
  /** JIT and connection warm-up of every client before the first point. */
  initialWarmupMs: number;
  micro: boolean;
  haproxy: boolean;
  haproxyThreads: number;
  write: boolean;
  profile: string[];
  pin: boolean;
  /** Run the gRPC benchmark after the HTTP setups. */
  grpc: boolean;
  interleaved: boolean;
  instructions: boolean;
}

function parseOptions(argv: string[]): Options {
  const quick = argv.includes('--quick');
  const { value, number } = readArgv(argv);
  const only = value('--only')
    ?.split(',')
    .map((s) => s.trim())
    .filter((s) => s !== '');
  for (const name of only ?? []) {
    if (!SETUPS.some((s) => s.name === name)) {
      throw new Error(`--only: unknown setup ${name}; known: ${SETUPS.map((s) => s.name).join(', ')}`);
    }
  }
  const partial = quick || only !== undefined;
  const profile =
    value('--profile')
      ?.split(',')
      .map((s) => s.trim())
      .filter((s) => s !== '') ?? [];
  for (const name of profile) {
    if (!SETUPS.some((s) => s.name === name)) throw new Error(`--profile: unknown setup ${name}`);
  }
  return {
    quick,
    only,
    durationMs: number('--duration', quick ? 600 : 4000),
    rounds: Math.round(number('--rounds', quick ? 1 : 5)),
    warmupMs: number('--warmup', quick ? 150 : 300),
    initialWarmupMs: quick ? 500 : 2000,
    micro: !argv.includes('--no-micro'),
    haproxy: !argv.includes('--no-haproxy'),
    haproxyThreads: number('--haproxy-threads', 1),
    // RESULTS.md is committed: only a full run may overwrite it, unless asked.
    write: argv.includes('--write') || (!partial && !argv.includes('--no-write')),
    profile,
    pin: argv.includes('--pin'),
    grpc: !argv.includes('--no-grpc') && only === undefined,
    interleaved: !argv.includes('--no-interleaved') && only === undefined,
    instructions: !argv.includes('--no-instructions') && only === undefined,
  };
}

// ---------------------------------------------------------------------------------------------
// Child process bookkeeping: everything we spawn is killed on every way out.

const children = new BenchChildren();
const track = children.track;

function log(line: string): void {
  process.stderr.write(`${line}\n`);
}

// ---------------------------------------------------------------------------------------------
// Upstreams

// ---------------------------------------------------------------------------------------------
// Client processes

const profileDir = path.join(benchDir, 'results', 'profiles');

function startClient(setup: SetupDef, targets: string[], proxyPids: number[], profile: boolean): ClientHandle {
  // One directory per setup: every thread (tsx runs a loader thread) writes its own profile there.
  const dir = path.join(profileDir, setup.name);
  if (profile) rmSync(dir, { recursive: true, force: true });
  const profiling = profile ? ['--cpu-prof', `--cpu-prof-dir=${dir}`] : [];
  const child = fork(path.join(benchDir, 'client-runner.ts'), [setup.client, JSON.stringify(targets), '/'], {
    execArgv: [...TSX, ...profiling],
    stdio: ['ignore', 'inherit', 'inherit', 'ipc'],
    // The clients read nothing from the environment except what an application would (e.g. OTEL_*).
    env: { ...process.env, NODE_ENV: 'production' },
  });
  track(child);
  return new ClientHandle(setup.name, child, proxyPids);
}

// ---------------------------------------------------------------------------------------------
// Microbenchmarks

async function runMicro(options: Options, upstreams: string[]): Promise<MicroResults> {
  // --expose-gc to settle the heap around allocation measurements; a large young generation so
  // that no scavenge runs inside a measured batch (the heap delta is then the bytes allocated).
  const child = fork(path.join(benchDir, 'micro.ts'), [JSON.stringify({ quick: options.quick, upstreams })], {
    execArgv: [...TSX, '--expose-gc', '--min-semi-space-size=64', '--max-semi-space-size=64'],
    stdio: ['ignore', 'inherit', 'inherit', 'ipc'],
    env: { ...process.env, NODE_ENV: 'production' },
  });
  track(child);
  const limitMs = options.quick ? 180_000 : 300_000;
  return new Promise((resolve, reject) => {
    const timer = setTimeout(() => {
      child.kill('SIGKILL');
      reject(new Error(`micro: no result after ${limitMs / 1000} s`));
    }, limitMs);
    child.on('message', (message: { type: 'micro'; results: MicroResults } | { type: 'fatal'; message: string }) => {
      clearTimeout(timer);
      if (message.type === 'micro') resolve(message.results);
      else reject(new Error(`micro: ${message.message}`));
    });
    child.once('exit', (code) => {
      clearTimeout(timer);
      reject(new Error(`micro exited with ${code} before reporting`));
    });
  });
}

// ---------------------------------------------------------------------------------------------

function pointLabel(point: LoadPoint): string {
  return point.mode === 'closed'
    ? `closed c=${point.concurrency}`
    : `open ${point.label} (${Math.round(point.rate)}/s)`;
}

function progress(setup: SetupDef, point: LoadPoint, r: PointResult): void {
  const extra = r.proxyCpuUsPerRequest !== undefined ? ` proxy ${r.proxyCpuUsPerRequest.toFixed(1)} µs/req` : '';
  const errors =
    r.errors + r.incomplete > 0 ? ` errors ${r.errors} incomplete ${r.incomplete} (${r.firstError ?? ''})` : '';
  log(
    `  ${setup.name.padEnd(20)} ${pointLabel(point).padEnd(22)} ${r.throughput.toFixed(0).padStart(7)} req/s  ` +
      `p50 ${r.latencyUs.p50.toFixed(0)} p99 ${r.latencyUs.p99.toFixed(0)} p99.9 ${r.latencyUs.p999.toFixed(0)} µs  ` +
      `cpu ${r.cpuUsPerRequest.toFixed(1)} µs/req${extra}${errors}`,
  );
}

/**
 * --pin: the clients and the client-side sidecars on the last CPU, the upstreams and the
 * server-side sidecars on the others, as a client pod and server pods would have their own CPUs.
 */
function pinAll(
  upstreams: Array<{ child: ChildProcess }>,
  sidecars: Sidecars[],
  clients: Map<string, ClientHandle>,
): void {
  const n = os.cpus().length;
  if (n < 2) {
    log('--pin: one CPU, nothing to pin');
    return;
  }
  const clientCpus = [n - 1];
  const serverCpus = Array.from({ length: n - 1 }, (_, i) => i);
  const pin = (pid: number | undefined, cpus: number[]): void => {
    const err = pid === undefined ? 'no pid' : pinProcess(pid, cpus);
    if (err !== undefined) log(`--pin: could not pin ${pid}: ${err}`);
  };
  for (const u of upstreams) pin(u.child.pid, serverCpus);
  for (const s of sidecars) {
    pin(s.clientSidePid, clientCpus);
    for (const pid of s.serverSidePids) pin(pid, serverCpus);
  }
  for (const c of clients.values()) pin(c.child.pid, clientCpus);
  log(
    `pinned: clients and client-side sidecars to CPU ${clientCpus.join(',')}, upstreams to CPU ${serverCpus.join(',')}`,
  );
}

/** --from <results.json>: re-renders the table, RESULTS.md and the chart from a saved run, without measuring. */
function rerender(file: string, write: boolean): void {
  const report = JSON.parse(readFileSync(file, 'utf8')) as BenchReport;
  report.targets = evaluateTargets(report);
  process.stdout.write(renderTable(report));
  if (write) {
    writeFileSync(path.join(benchDir, 'chart.svg'), renderChart(report));
    // The HTTP report holds no gRPC figures: the gRPC section already in RESULTS.md stays.
    const resultsFile = path.join(benchDir, 'RESULTS.md');
    const previous = existsSync(resultsFile) ? readFileSync(resultsFile, 'utf8') : undefined;
    const markdown = withGrpcSection(renderMarkdown(report, path.basename(file)), undefined, previous);
    writeFileSync(
      resultsFile,
      withInstructionsSection(
        withInterleavedSection(markdown, previous === undefined ? undefined : interleavedSectionOf(previous)),
        previous === undefined ? undefined : instructionsSectionOf(previous),
      ),
    );
    log('wrote bench/RESULTS.md and bench/chart.svg');
  }
}

async function main(): Promise<void> {
  const argv = process.argv.slice(2);
  const from = argv.indexOf('--from');
  if (from >= 0) {
    const file = argv[from + 1];
    if (file === undefined) throw new Error('--from: expected a bench/results/<timestamp>.json file');
    rerender(file, argv.includes('--write'));
    return;
  }
  const options = parseOptions(argv);
  // Read now, so that a bad --forms or --requests fails before the run rather than after it.
  const instructionsOptions = options.instructions ? instructionsOptionsFrom(argv) : undefined;
  const startedAt = new Date();
  log(
    `meshlet bench: ${options.quick ? 'quick' : 'full'} run, per setup and load point ${options.rounds} round(s) of ` +
      `${options.warmupMs} ms warm-up + ${Math.round(options.durationMs / options.rounds)} ms measured`,
  );

  const skipped = new Map<string, string>();
  const meshletBuilt =
    existsSync(path.join(rootDir, 'packages/http/dist/index.js')) &&
    existsSync(path.join(rootDir, 'packages/core/dist/index.js'));
  let haproxy: HaproxyInfo | undefined;
  // A setup needs the setups it is compared with and loaded relative to.
  const names = new Set(options.only ?? SETUPS.map((s) => s.name));
  names.add(BASELINE);
  for (const s of SETUPS) {
    if (!names.has(s.name)) continue;
    if (s.baseline !== undefined) names.add(s.baseline);
    names.add(s.loadBase);
  }
  const wanted = SETUPS.filter((s) => names.has(s.name));
  if (wanted.some((s) => s.route !== 'direct')) {
    if (!options.haproxy) {
      for (const s of wanted) if (s.route !== 'direct') skipped.set(s.name, '--no-haproxy');
    } else {
      const found = ensureHaproxy(log);
      if ('reason' in found) {
        log(`HAProxy setups skipped: ${found.reason}`);
        for (const s of wanted) if (s.route !== 'direct') skipped.set(s.name, found.reason);
      } else {
        haproxy = found;
      }
    }
  }
  if (!meshletBuilt) {
    for (const s of wanted)
      if (s.meshlet) skipped.set(s.name, 'packages/*/dist missing: run `npm run build` (npm run bench does)');
  }
  const active = wanted.filter((s) => !skipped.has(s.name));
  const byRunOrder = [...active].sort((a, b) => RUN_ORDER.indexOf(a.name) - RUN_ORDER.indexOf(b.name));

  const upstreamProcs = await Promise.all([0, 1, 2].map(() => startUpstreamProcess('upstream.ts', track)));
  const upstreams = upstreamProcs.map((u) => u.address);
  log(`upstreams: ${upstreams.join(', ')}`);

  const sidecars: Sidecars[] = [];
  const clients = new Map<string, ClientHandle>();
  /** Setups whose client failed, with the first line of the reason. */
  const failed = new Map<string, string>();
  const results: BenchReport['results'] = {};
  let micro: BenchReport['micro'];
  let rates: BenchReport['rates'];
  try {
    for (const setup of byRunOrder) {
      let targets = upstreams;
      let proxyPids: number[] = [];
      if (setup.route !== 'direct' && haproxy !== undefined) {
        const s = await startSidecars(
          haproxy,
          setup.route === 'haproxy-1hop' ? 1 : 2,
          upstreams,
          options.haproxyThreads,
          track,
        );
        sidecars.push(s);
        targets = [s.address];
        proxyPids = s.pids;
      }
      clients.set(setup.name, startClient(setup, targets, proxyPids, options.profile.includes(setup.name)));
    }
    // A client that cannot start (an API changed under the benchmark, say) is reported as failed;
    // the others still run. Without the baseline nothing can be compared: that stops the run.
    await Promise.all([...clients.values()].map((c) => c.ready().catch(() => undefined)));
    const dropFailed = (): void => {
      for (const [name, client] of clients) {
        if (client.failure === undefined) continue;
        log(`${name} FAILED: ${client.failure.message.split('\n')[0]}`);
        failed.set(name, client.failure.message.split('\n')[0]);
        clients.delete(name);
        void client.close();
      }
      if (failed.has(BASELINE)) throw new Error(`the baseline ${BASELINE} failed: ${failed.get(BASELINE)}`);
    };
    dropFailed();
    log(
      `clients ready: ${byRunOrder
        .filter((s) => clients.has(s.name))
        .map((s) => s.name)
        .join(', ')}`,
    );
    if (options.pin) pinAll(upstreamProcs, sidecars, clients);

    // JIT, connection pools and sidecars warm before anything is recorded (undici fetch in
    // particular runs several times slower in its first second).
    log(`warming up every client for ${options.initialWarmupMs} ms at concurrency 16`);
    for (const setup of byRunOrder) {
      await clients
        .get(setup.name)
        ?.run('warmup', { mode: 'closed', concurrency: 16, warmupMs: options.initialWarmupMs, durationMs: 1 })
        .catch(() => undefined);
    }
    dropFailed();

    // Rounds alternate the order of the setups (A B C, C B A, ...) so a linear drift in the
    // machine's load falls evenly on every setup.
    const measure = async (key: PointKey, pointFor: (setup: SetupDef) => LoadPoint | undefined): Promise<void> => {
      log(`${key}:`);
      for (let round = 0; round < options.rounds; round++) {
        const order = round % 2 === 0 ? byRunOrder : [...byRunOrder].reverse();
        for (const setup of order) {
          const client = clients.get(setup.name);
          const point = pointFor(setup);
          if (client === undefined || point === undefined) continue;
          try {
            (results[setup.name] ??= {})[key] = await client.run(key, point);
          } catch {
            // Recorded by dropFailed(); the setup's earlier points stay in the report.
          }
        }
        dropFailed();
      }
      for (const setup of byRunOrder) {
        const result = results[setup.name]?.[key];
        if (result !== undefined) progress(setup, result.point, result);
      }
    };

    const perRound = Math.max(1, Math.round(options.durationMs / options.rounds));
    const closed = (concurrency: number): LoadPoint => ({
      mode: 'closed',
      concurrency,
      warmupMs: options.warmupMs,
      durationMs: perRound,
    });
    await measure('c1', () => closed(1));
    await measure('c16', () => closed(16));
    await measure('c32', () => closed(32));
    await measure('c64', () => closed(64));

    rates = {};
    for (const base of new Set(byRunOrder.map((s) => s.loadBase))) {
      const max = results[base]?.c64?.throughput ?? 0;
      if (max <= 0) {
        // Its setups are not loaded open-loop (no rate to derive), the rest are.
        log(`${base} completed no request at concurrency 64: its setups skip the open loop`);
        continue;
      }
      rates[base] = { baselineMax: max, open50: max * 0.5, open80: max * 0.8 };
    }
    const loadRates = rates;
    const open = (rate: number, label: string): LoadPoint => ({
      mode: 'open',
      rate,
      label,
      warmupMs: options.warmupMs,
      durationMs: perRound,
      // Twice the highest closed-loop concurrency: every setup reaches its maximum below it.
      maxInFlight: 128,
      drainMs: options.quick ? 500 : 1000,
    });
    const rateOf = (s: SetupDef, which: 'open50' | 'open80'): number | undefined => loadRates[s.loadBase]?.[which];
    await measure('open50', (s) => {
      const rate = rateOf(s, 'open50');
      return rate === undefined ? undefined : open(rate, '50%');
    });
    await measure('open80', (s) => {
      const rate = rateOf(s, 'open80');
      return rate === undefined ? undefined : open(rate, '80%');
    });

    await Promise.all([...clients.values()].map((c) => c.close()));
    clients.clear();
    await Promise.all(sidecars.map((s) => s.stop()));
    sidecars.length = 0;

    if (!options.micro) {
      micro = { skipped: '--no-micro' };
    } else if (!meshletBuilt) {
      micro = { skipped: 'packages/*/dist missing: run `npm run build`' };
    } else {
      log('microbenchmarks:');
      micro = await runMicro(options, upstreams).catch((err: unknown): { skipped: string } => {
        const reason = err instanceof Error ? err.message : String(err);
        log(`microbenchmarks FAILED: ${reason}`);
        return { skipped: `failed: ${reason.split('\n')[0]}` };
      });
    }
  } finally {
    await Promise.all([...clients.values()].map((c) => c.close()));
    await Promise.all(sidecars.map((s) => s.stop()));
    for (const u of upstreamProcs) u.child.kill('SIGTERM');
  }

  // gRPC (bench/grpc.ts): its own upstreams and clients, after the HTTP ones are gone.
  let grpcReport: GrpcReport | undefined;
  if (!options.grpc) {
    log('gRPC benchmark skipped (--no-grpc or --only)');
  } else if (!existsSync(path.join(rootDir, 'packages/grpc/dist/index.js'))) {
    log('gRPC benchmark skipped: packages/grpc/dist missing: run `npm run build` (npm run bench does)');
  } else {
    log('gRPC:');
    const command = argv.length === 0 ? 'npm run bench' : `npm run bench -- ${argv.join(' ')}`;
    grpcReport = await runGrpcBench({ ...grpcOptionsFrom(argv), profile: false }, { log, track }, command).catch(
      (err: unknown) => {
        log(`gRPC benchmark FAILED: ${err instanceof Error ? err.message : String(err)}`);
        return undefined;
      },
    );
  }

  // The throughput goals again, raw and meshlet interleaved in one process (bench/interleaved.ts).
  let interleavedReport: InterleavedReport | undefined;
  if (!options.interleaved) {
    log('interleaved comparison skipped (--no-interleaved or --only)');
  } else {
    const command = argv.length === 0 ? 'npm run bench' : `npm run bench -- ${argv.join(' ')}`;
    interleavedReport = await runInterleavedBench(
      { ...interleavedOptionsFrom(argv), only: options.grpc ? undefined : 'http' },
      { log, track },
      command,
    ).catch((err: unknown) => {
      log(`interleaved comparison FAILED: ${err instanceof Error ? err.message : String(err)}`);
      return undefined;
    });
  }

  // The throughput goals once more, as instruction counts under callgrind (bench/instructions.ts).
  let instructionsReport: InstructionsReport | undefined;
  if (instructionsOptions === undefined) {
    log('instruction counts skipped (--no-instructions or --only)');
  } else {
    const command = argv.length === 0 ? 'npm run bench' : `npm run bench -- ${argv.join(' ')}`;
    // --no-grpc: the HTTP forms only.
    if (!options.grpc) instructionsOptions.forms = instructionsOptions.forms.filter((f) => f !== 'grpc');
    instructionsReport = await runInstructionsBench(instructionsOptions, { log, track }, command).catch(
      (err: unknown) => {
        log(`instruction counts FAILED: ${err instanceof Error ? err.message : String(err)}`);
        return undefined;
      },
    );
  }

  const report: BenchReport = {
    version: 1,
    startedAt: startedAt.toISOString(),
    finishedAt: new Date().toISOString(),
    options: {
      argv,
      quick: options.quick,
      only: options.only,
      durationMs: options.durationMs,
      rounds: options.rounds,
      warmupMs: options.warmupMs,
      haproxyThreads: options.haproxyThreads,
    },
    environment: collectEnvironment(rootDir, haproxy),
    setups: SETUPS.filter((s) => wanted.includes(s)).map((s) => ({
      ...s,
      skipped: skipped.get(s.name),
      ...(failed.has(s.name) ? { failed: failed.get(s.name) } : {}),
    })),
    rates,
    results,
    micro,
    targets: [],
  };
  report.targets = evaluateTargets(report);
  log(`measured in ${((Date.parse(report.finishedAt) - startedAt.getTime()) / 60_000).toFixed(1)} min`);

  process.stdout.write(renderTable(report));
  const resultsDir = path.join(benchDir, 'results');
  mkdirSync(resultsDir, { recursive: true });
  const jsonPath = path.join(resultsDir, `${startedAt.toISOString().replace(/[:.]/g, '-')}.json`);
  writeFileSync(jsonPath, JSON.stringify(report, null, 2) + '\n');
  log(`wrote ${path.relative(rootDir, jsonPath)}`);
  let grpcSection: string | undefined;
  if (grpcReport !== undefined) {
    process.stdout.write(renderGrpcTable(grpcReport));
    const grpcJson = saveGrpcReport(grpcReport);
    log(`wrote bench/results/${grpcJson}`);
    grpcSection = renderGrpcSection(grpcReport, grpcJson);
  }
  if (interleavedReport !== undefined) process.stdout.write(renderInterleavedTable(interleavedReport));
  let instructionsSection: string | undefined;
  if (instructionsReport !== undefined) {
    process.stdout.write(renderInstructionsTable(instructionsReport));
    const json = instructionsReport.skipped === undefined ? saveInstructionsReport(instructionsReport) : undefined;
    if (json !== undefined) log(`wrote bench/results/${json}`);
    instructionsSection = renderInstructionsSection(instructionsReport, json);
  }
  for (const name of options.profile) {
    // The main thread's profile is the biggest one (the loader thread is idle after start-up).
    const dir = path.join(profileDir, name);
    const files = existsSync(dir) ? readdirSync(dir).filter((f) => f.endsWith('.cpuprofile')) : [];
    const main = files.map((f) => path.join(dir, f)).sort((a, b) => statSync(b).size - statSync(a).size)[0];
    if (main !== undefined) {
      process.stdout.write('\n' + renderProfileSummary(name, summarizeProfile(main)));
      log(`profile: ${path.relative(rootDir, main)}`);
    } else log(`no profile written for ${name}`);
  }
  if (options.write) {
    writeFileSync(path.join(benchDir, 'chart.svg'), renderChart(report));
    // Without a gRPC run this time, the gRPC section already in RESULTS.md stays.
    const resultsFile = path.join(benchDir, 'RESULTS.md');
    const previous = existsSync(resultsFile) ? readFileSync(resultsFile, 'utf8') : undefined;
    const markdown = withGrpcSection(renderMarkdown(report, path.basename(jsonPath)), grpcSection, previous);
    const interleavedSection =
      interleavedReport !== undefined
        ? renderInterleavedSection(interleavedReport)
        : previous === undefined
          ? undefined
          : interleavedSectionOf(previous);
    writeFileSync(
      resultsFile,
      withInstructionsSection(
        withInterleavedSection(markdown, interleavedSection),
        instructionsSection ?? (previous === undefined ? undefined : instructionsSectionOf(previous)),
      ),
    );
    log('wrote bench/RESULTS.md and bench/chart.svg');
  } else {
    log('partial run: bench/RESULTS.md left as it is (pass --write to overwrite it)');
  }
}

main().then(
  () => process.exit(0),
  (err: unknown) => {
    console.error(err instanceof Error ? (err.stack ?? err.message) : err);
    children.killAll();
    process.exit(1);
  },
);
