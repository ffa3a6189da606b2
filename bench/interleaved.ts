/**
 * The throughput goals measured interleaved: for each form a goal is set on (issue 6: the
 * `undici.request` and `fetch` forms at c=32 and c=64; issue 9: grpc-js unary at c=1, 16 and 64
 * and a server stream at c=1 and 16), the raw client and the meshlet client of that form run in
 * one process, over the same three upstreams, in alternating time slices at the same concurrency
 * (bench/interleaved-child.ts). Every pair of adjacent slices gives a throughput ratio and a
 * client-CPU difference taken under the same machine conditions.
 *
 * Why, beside the per-round comparison of `npm run bench`: there each setup is its own process and
 * round i of two setups runs seconds apart; on this shared 2-core machine the speed drifts by tens of
 * percent over seconds, and a round's ratio swings from 0.6× to 1.2×. Slices a few hundred ms
 * apart, alternating which side goes first, cancel most of that drift.
 *
 * Verdicts: MET when the median ratio meets the goal and at least three pairs in four agree;
 * MISSED when the median misses and three in four agree; INCONCLUSIVE otherwise. For the
 * `undici.request` form, the CPU goal (≤ +2 µs per request) is judged the same way on the
 * per-pair CPU differences.
 *
 *   node --import tsx bench/interleaved.ts [--quick] [--pairs 16] [--slice-ms 400] [--only http|grpc] [--write]
 *
 * `npm run bench` runs it after the closed-loop rounds (skip with --no-interleaved); --write (or a
 * full `npm run bench`) rewrites its section of bench/RESULTS.md.
 */
import { fork, type ChildProcess } from 'node:child_process';
import { readFileSync, writeFileSync } from 'node:fs';
import os from 'node:os';
import path from 'node:path';
import { fileURLToPath } from 'node:url';
import { median, type InterleavedResult, type InterleavedSpec } from './interleaved-child.ts';
import { BenchChildren, TSX, readArgv, runIfMain, startUpstreamProcess } from './lib/cli.ts';

const benchDir = path.dirname(fileURLToPath(import.meta.url));

export interface InterleavedOptions {
  pairs: number;
  sliceMs: number;
  warmupMs: number;
  only: 'http' | 'grpc' | undefined;
}

export function interleavedOptionsFrom(argv: string[]): InterleavedOptions {
  const quick = argv.includes('--quick');
  const { value, number } = readArgv(argv);
  const only = value('--only');
  if (only !== undefined && only !== 'http' && only !== 'grpc') {
    throw new Error(`--only: expected http or grpc, got ${only}`);
  }
  return {
    pairs: Math.round(number('--pairs', quick ? 4 : 16)),
    sliceMs: number('--slice-ms', quick ? 200 : 400),
    warmupMs: number('--warmup', quick ? 600 : 2000),
    only,
  };
}

/** One comparison with a goal. */
interface Comparison {
  protocol: 'http' | 'grpc';
  label: string;
  raw: string;
  meshlet: string;
  path: string;
  concurrency: number;
  minRatio: number;
  /** The CPU goal, µs per request, where there is one. */
  maxAddedCpuUs?: number;
}

const HTTP_FORMS = [
  {
    label: '`undici.request`: meshlet-policies vs undici-request',
    raw: 'clients/undici-request.ts',
    meshlet: 'clients/meshlet-policies.ts',
    minRatio: 0.95,
    maxAddedCpuUs: 2,
  },
  {
    label: '`fetch`: meshlet-fetch-policies vs undici-fetch',
    raw: 'clients/undici-fetch.ts',
    meshlet: 'clients/meshlet-fetch-policies.ts',
    minRatio: 0.9,
  },
];

export const COMPARISONS: Comparison[] = [
  ...HTTP_FORMS.flatMap((f) =>
    [32, 64].map((concurrency): Comparison => ({ protocol: 'http', path: '/', concurrency, ...f })),
  ),
  ...[1, 16, 64].map((concurrency): Comparison => ({
    protocol: 'grpc',
    label: 'gRPC unary: meshGrpcOptions vs raw grpc-js',
    raw: 'grpc-client-raw.ts',
    meshlet: 'grpc-client-meshlet.ts',
    path: 'unary',
    concurrency,
    minRatio: 0.9,
  })),
  ...[1, 16].map((concurrency): Comparison => ({
    protocol: 'grpc',
    label: 'gRPC server stream (10 msgs): meshGrpcOptions vs raw grpc-js',
    raw: 'grpc-client-raw.ts',
    meshlet: 'grpc-client-meshlet.ts',
    path: 'stream',
    concurrency,
    minRatio: 0.9,
  })),
];

export interface InterleavedReport {
  startedAt: string;
  finishedAt: string;
  command: string;
  options: InterleavedOptions;
  environment: { cpuModel: string; cores: number; node: string; loadAverageAtEnd: number[] };
  rows: Array<{ comparison: Comparison; result: InterleavedResult } | { comparison: Comparison; failed: string }>;
}

export interface InterleavedHooks {
  log(line: string): void;
  track(child: ChildProcess): void;
}

function runChild(spec: InterleavedSpec, hooks: InterleavedHooks): Promise<InterleavedResult> {
  const child = fork(path.join(benchDir, 'interleaved-child.ts'), [JSON.stringify(spec)], {
    execArgv: TSX,
    stdio: ['ignore', 'inherit', 'inherit', 'ipc'],
    env: { ...process.env, NODE_ENV: 'production' },
  });
  hooks.track(child);
  const limitMs = spec.warmupMs + 2 * spec.pairs * spec.sliceMs + 60_000;
  return new Promise((resolve, reject) => {
    const timer = setTimeout(() => {
      child.kill('SIGKILL');
      reject(new Error(`no result after ${Math.round(limitMs / 1000)} s`));
    }, limitMs);
    child.on(
      'message',
      (m: { type: 'interleaved'; result: InterleavedResult } | { type: 'fatal'; message: string }) => {
        clearTimeout(timer);
        if (m.type === 'interleaved') resolve(m.result);
        else reject(new Error(m.message));
      },
    );
    child.once('exit', (code) => {
      clearTimeout(timer);
      reject(new Error(`exited with ${code} before reporting`));
    });
  });
}

export async function runInterleavedBench(
  options: InterleavedOptions,
  hooks: InterleavedHooks,
  command: string,
): Promise<InterleavedReport> {
  const startedAt = new Date().toISOString();
  const wanted = COMPARISONS.filter((c) => options.only === undefined || c.protocol === options.only);
  const upstreams: Record<'http' | 'grpc', string[]> = { http: [], grpc: [] };
  for (const protocol of ['http', 'grpc'] as const) {
    if (!wanted.some((c) => c.protocol === protocol)) continue;
    const file = protocol === 'http' ? 'upstream.ts' : 'grpc-upstream.ts';
    for (let i = 0; i < 3; i++) upstreams[protocol].push((await startUpstreamProcess(file, hooks.track)).address);
  }
  hooks.log(
    `interleaved: ${wanted.length} comparisons, each ${options.pairs} pairs of ${options.sliceMs} ms slices ` +
      `after ${options.warmupMs} ms of warm-up`,
  );
  const rows: InterleavedReport['rows'] = [];
  for (const comparison of wanted) {
    const spec: InterleavedSpec = {
      label: comparison.label,
      raw: path.join(benchDir, comparison.raw),
      meshlet: path.join(benchDir, comparison.meshlet),
      targets: upstreams[comparison.protocol],
      path: comparison.path,
      concurrency: comparison.concurrency,
      warmupMs: options.warmupMs,
      sliceMs: options.sliceMs,
      pairs: options.pairs,
    };
    try {
      const result = await runChild(spec, hooks);
      rows.push({ comparison, result });
      hooks.log(`  ${rowCells({ comparison, result }).slice(0, 5).join('  ')}`);
    } catch (err) {
      const failed = err instanceof Error ? err.message : String(err);
      rows.push({ comparison, failed });
      hooks.log(`  ${comparison.label} c=${comparison.concurrency}: FAILED: ${failed}`);
    }
  }
  return {
    startedAt,
    finishedAt: new Date().toISOString(),
    command,
    options,
    environment: {
      cpuModel: os.cpus()[0]?.model ?? 'unknown',
      cores: os.cpus().length,
      node: process.version,
      loadAverageAtEnd: os.loadavg().map((l) => Math.round(l * 100) / 100),
    },
    rows,
  };
}

type Verdict = 'MET' | 'MISSED' | 'INCONCLUSIVE';

/** MET / MISSED when at least three values in four agree with the median's side, INCONCLUSIVE otherwise. */
export function verdictOf(values: number[], meets: (v: number) => boolean): Verdict {
  const m = median(values);
  const medianMeets = meets(m);
  const agree = values.filter((v) => meets(v) === medianMeets).length;
  if (values.length === 0 || agree * 4 < values.length * 3) return 'INCONCLUSIVE';
  return medianMeets ? 'MET' : 'MISSED';
}

const fmt = (n: number, digits = 0): string =>
  n.toLocaleString('en-US', { minimumFractionDigits: digits, maximumFractionDigits: digits });
const signed = (n: number, digits = 1): string => (n >= 0 ? '+' : '') + n.toFixed(digits);

function rowCells(row: InterleavedReport['rows'][number]): string[] {
  const c = row.comparison;
  if (!('result' in row)) return [c.label, String(c.concurrency), `FAILED: ${row.failed}`, '', '', '', '', ''];
  const r = row.result;
  const ratios = r.pairs.map((p) => p.ratio);
  const deltas = r.pairs.map((p) => p.deltaCpuUs);
  const errors = r.errors.raw + r.errors.meshlet;
  const ratioVerdict = verdictOf(ratios, (v) => v >= c.minRatio);
  const cpuVerdict =
    c.maxAddedCpuUs === undefined
      ? '–'
      : `≤ +${c.maxAddedCpuUs} µs: ${verdictOf(deltas, (v) => v <= c.maxAddedCpuUs!)}`;
  return [
    c.label,
    String(c.concurrency),
    `${fmt(r.meshlet.perSec)} / ${fmt(r.raw.perSec)}`,
    `${median(ratios).toFixed(2)}× (${Math.min(...ratios).toFixed(2)}…${Math.max(...ratios).toFixed(2)})`,
    `${r.meshlet.cpuUs.toFixed(1)} / ${r.raw.cpuUs.toFixed(1)}`,
    `${signed(median(deltas))} (${signed(Math.min(...deltas))}…${signed(Math.max(...deltas))})`,
    `≥ ${c.minRatio.toFixed(2)}×: ${ratioVerdict}` + (errors > 0 ? ` (${errors} errors: ${r.errors.first})` : ''),
    cpuVerdict,
  ];
}

const HEADER = [
  'form: meshlet vs raw',
  'c',
  'req/s meshlet / raw',
  'ratio (pairs)',
  'client CPU µs/req meshlet / raw',
  'Δ CPU µs/req (pairs)',
  'throughput goal',
  'CPU goal',
];

export function renderInterleavedTable(report: InterleavedReport): string {
  const all = [HEADER, ...report.rows.map(rowCells)];
  const widths = HEADER.map((_, i) => Math.max(...all.map((r) => r[i].length)));
  return `\nInterleaved in one process\n${all.map((r) => r.map((cell, i) => cell.padEnd(widths[i])).join('  ')).join('\n')}\n`;
}

export const INTERLEAVED_START = '<!-- interleaved-bench:start -->';
export const INTERLEAVED_END = '<!-- interleaved-bench:end -->';

export function renderInterleavedSection(report: InterleavedReport): string {
  const o = report.options;
  const md = (cells: string[]): string => `| ${cells.join(' | ')} |`;
  return [
    INTERLEAVED_START,
    '## The throughput goals, interleaved in one process',
    '',
    '<!-- Generated by `npm run bench` or `node --import tsx bench/interleaved.ts --write` (bench/interleaved.ts); do not edit by hand. -->',
    '',
    `Command: \`${report.command}\`; ${report.startedAt} → ${report.finishedAt}; ${report.environment.cpuModel}, ` +
      `${report.environment.cores} cores, Node ${report.environment.node}; load average at the end ` +
      `${report.environment.loadAverageAtEnd.join(' / ')}.`,
    '',
    'The raw client and the meshlet client of each form run in **one process**, over the same three upstreams (each',
    'its own process), in alternating closed-loop time slices at the same concurrency: raw then meshlet, then meshlet',
    `then raw, … — ${o.pairs} pairs of ${o.sliceMs} ms slices after ${o.warmupMs} ms of warm-up. Each pair gives a`,
    'throughput ratio and a client-CPU difference (user + system time of the process per completed request) taken',
    'under the same machine conditions, where the per-round comparison above pairs runs seconds apart while this',
    'shared machine’s speed drifts. Ratio and Δ CPU are medians over the pairs (range in brackets); req/s and CPU',
    'are medians over each side’s slices. MET / MISSED when at least three pairs in four agree with the median,',
    'INCONCLUSIVE otherwise. Clients as in the tables above: policies on (the default config), no OpenTelemetry SDK.',
    'One caveat: in one process the raw client runs through the same undici / grpc-js code as the meshlet one, whose',
    'call sites then also see meshlet’s objects and may be optimised less well for raw calls than in a process of',
    'their own; this can make the gap look smaller than in the per-round tables, where each client has its process.',
    '',
    md(HEADER),
    md(HEADER.map((_, i) => (i === 0 || i >= 6 ? ':---' : '---:'))),
    ...report.rows.map((r) => md(rowCells(r))),
    '',
    INTERLEAVED_END,
  ].join('\n');
}

/** The interleaved section of a RESULTS.md, if it has one. */
export function interleavedSectionOf(markdown: string): string | undefined {
  const start = markdown.indexOf(INTERLEAVED_START);
  const end = markdown.indexOf(INTERLEAVED_END);
  return start >= 0 && end > start ? markdown.slice(start, end + INTERLEAVED_END.length) : undefined;
}

/** `markdown` with `section` in place of its interleaved section (appended when it has none); undefined: unchanged. */
export function withInterleavedSection(markdown: string, section: string | undefined): string {
  if (section === undefined) return markdown;
  const start = markdown.indexOf(INTERLEAVED_START);
  const end = markdown.indexOf(INTERLEAVED_END);
  if (start >= 0 && end > start) {
    return markdown.slice(0, start) + section + markdown.slice(end + INTERLEAVED_END.length);
  }
  return `${markdown.replace(/\n*$/, '')}\n\n${section}\n`;
}

async function main(): Promise<void> {
  const argv = process.argv.slice(2);
  const children = new BenchChildren();
  const hooks: InterleavedHooks = { log: (line) => process.stderr.write(`${line}\n`), track: children.track };
  const command = `node --import tsx bench/interleaved.ts ${argv.join(' ')}`.trim();
  const report = await runInterleavedBench(interleavedOptionsFrom(argv), hooks, command);
  process.stdout.write(renderInterleavedTable(report));
  if (argv.includes('--write')) {
    const file = path.join(benchDir, 'RESULTS.md');
    writeFileSync(file, withInterleavedSection(readFileSync(file, 'utf8'), renderInterleavedSection(report)));
    hooks.log('wrote the interleaved section of bench/RESULTS.md');
  }
  children.killAll();
}

runIfMain(import.meta.url, main);
