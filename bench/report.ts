/** The benchmark's report: the JSON shape, the targets, the console table and bench/RESULTS.md. */
import { existsSync, readFileSync } from 'node:fs';
import os from 'node:os';
import path from 'node:path';
import type { HaproxyInfo } from './lib/haproxy.ts';
import type { MicroResults, PointResult, RoundResult } from './lib/types.ts';
import { BASELINE, type SetupDef } from './setups.ts';

export type PointKey = 'c1' | 'c16' | 'c64' | 'open50' | 'open80';

export interface Environment {
  os: string;
  distro: string | undefined;
  cpuModel: string;
  cores: number;
  memoryGiB: number;
  loadAverageAtEnd: number[];
  node: string;
  v8: string;
  packages: Record<string, string | undefined>;
  haproxy: string | undefined;
}

export type Verdict = 'MET' | 'MISSED' | 'INCONCLUSIVE' | 'NOT MEASURED';

export interface TargetResult {
  id: string;
  /** The target as the issue states it. */
  text: string;
  /** What was measured, in words and numbers. */
  measured: string;
  /**
   * MET / MISSED by the median of the per-round paired comparisons, when at least three rounds
   * in four agree; INCONCLUSIVE when the rounds disagree more than that (the machine's noise is
   * larger than the margin); NOT MEASURED when a setup was skipped.
   */
  verdict: Verdict;
}

export interface BenchReport {
  version: 1;
  startedAt: string;
  finishedAt: string;
  options: {
    quick: boolean;
    only: string[] | undefined;
    /** Measured time per setup and load point, summed over the rounds. */
    durationMs: number;
    rounds: number;
    /** Warm-up before each round. */
    warmupMs: number;
    haproxyThreads: number;
  };
  environment: Environment;
  setups: Array<SetupDef & { skipped: string | undefined }>;
  /** Open-loop rates (req/s) per load base (see SetupDef.loadBase), from its throughput at concurrency 64. */
  rates: Record<string, { baselineMax: number; open50: number; open80: number }> | undefined;
  results: Record<string, Partial<Record<PointKey, PointResult>>>;
  micro: MicroResults | { skipped: string } | undefined;
  targets: TargetResult[];
}

const PACKAGES = [
  '@meshlet/core',
  '@meshlet/http',
  'undici',
  '@opentelemetry/api',
  '@opentelemetry/sdk-metrics',
  '@opentelemetry/sdk-trace-base',
  'opossum',
  'p-retry',
  'tsx',
];

function packageVersion(rootDir: string, name: string): string | undefined {
  const file = path.join(rootDir, 'node_modules', name, 'package.json');
  if (!existsSync(file)) return undefined;
  return (JSON.parse(readFileSync(file, 'utf8')) as { version?: string }).version;
}

export function collectEnvironment(rootDir: string, haproxy: HaproxyInfo | undefined): Environment {
  let distro: string | undefined;
  try {
    distro = /^PRETTY_NAME="?([^"\n]*)"?/m.exec(readFileSync('/etc/os-release', 'utf8'))?.[1];
  } catch {
    distro = undefined;
  }
  const cpus = os.cpus();
  return {
    os: `${os.type()} ${os.release()} ${os.arch()}`,
    distro,
    cpuModel: cpus[0]?.model.trim() ?? 'unknown',
    cores: cpus.length,
    memoryGiB: Math.round((os.totalmem() / 2 ** 30) * 10) / 10,
    loadAverageAtEnd: os.loadavg().map((l) => Math.round(l * 100) / 100),
    node: process.version,
    v8: process.versions.v8,
    packages: Object.fromEntries(PACKAGES.map((name) => [name, packageVersion(rootDir, name)])),
    haproxy: haproxy?.version,
  };
}

// ---------------------------------------------------------------------------------------------
// Targets

const FULL = 'meshlet-full';

function get(report: BenchReport, setup: string, key: PointKey): PointResult | undefined {
  return report.results[setup]?.[key];
}

function fmt(n: number, digits = 0): string {
  return n.toLocaleString('en-US', { minimumFractionDigits: digits, maximumFractionDigits: digits });
}

/**
 * Compares two setups round by round. Round i of every setup runs in the same sweep over the
 * setups, so pairing them cancels most of the machine's drift: the comparison is the median of
 * the per-round values, and the rounds' agreement decides whether the verdict is firm.
 */
function paired(
  report: BenchReport,
  a: string,
  b: string,
  key: PointKey,
  value: (x: RoundResult, y: RoundResult) => number,
): { median: number; min: number; max: number; values: number[] } | undefined {
  const ra = get(report, a, key)?.perRound;
  const rb = get(report, b, key)?.perRound;
  if (ra === undefined || rb === undefined || ra.length === 0 || ra.length !== rb.length) return undefined;
  const values = ra.map((x, i) => value(x, rb[i]));
  const sorted = [...values].sort((p, q) => p - q);
  const mid = sorted.length >> 1;
  const median = sorted.length % 2 === 1 ? sorted[mid] : (sorted[mid - 1] + sorted[mid]) / 2;
  return { median, min: sorted[0], max: sorted[sorted.length - 1], values };
}

function verdictOf(medianMeets: boolean, values: number[], meets: (v: number) => boolean): Verdict {
  const agreeing = values.filter((v) => meets(v) === medianMeets).length;
  if (agreeing / values.length < 0.75) return 'INCONCLUSIVE';
  return medianMeets ? 'MET' : 'MISSED';
}

/** Evaluates each target of issue 3 on this run's figures. */
export function evaluateTargets(report: BenchReport): TargetResult[] {
  const targets: TargetResult[] = [];
  const missing = (id: string, text: string, why: string): void => {
    targets.push({ id, text, measured: `not measured: ${why}`, verdict: 'NOT MEASURED' });
  };
  const ratioTarget = (id: string, text: string, a: string, b: string, meets: (r: number) => boolean): boolean => {
    const r = paired(report, a, b, 'c64', (x, y) => x.throughput / y.throughput);
    if (r === undefined) return false;
    const ta = get(report, a, 'c64')?.throughput ?? 0;
    const tb = get(report, b, 'c64')?.throughput ?? 0;
    const range = r.values.length > 1 ? ` (rounds ${r.min.toFixed(2)}–${r.max.toFixed(2)}×)` : '';
    targets.push({
      id,
      text,
      measured: `${r.median.toFixed(2)}×${range}; ${fmt(ta)} vs ${fmt(tb)} req/s`,
      verdict: verdictOf(meets(r.median), r.values, meets),
    });
    return true;
  };
  const p99Target = (
    id: string,
    text: string,
    a: string,
    b: string,
    compare: 'difference' | 'ratio',
    meets: (v: number) => boolean,
  ): boolean => {
    const r = paired(report, a, b, 'open50', (x, y) =>
      compare === 'difference' ? x.latencyUs.p99 - y.latencyUs.p99 : x.latencyUs.p99 / y.latencyUs.p99,
    );
    if (r === undefined) return false;
    const pa = get(report, a, 'open50')?.latencyUs.p99 ?? 0;
    const pb = get(report, b, 'open50')?.latencyUs.p99 ?? 0;
    const show = (v: number): string =>
      compare === 'difference' ? `${v >= 0 ? '+' : ''}${fmt(v)} µs` : `${v.toFixed(2)}×`;
    const range = r.values.length > 1 ? ` (rounds ${show(r.min)} … ${show(r.max)})` : '';
    targets.push({
      id,
      text,
      measured: `${show(r.median)}${range}; p99 ${fmt(pa)} vs ${fmt(pb)} µs`,
      verdict: verdictOf(meets(r.median), r.values, meets),
    });
    return true;
  };

  let text = 'Full meshlet HTTP stack: ≥ 0.90× raw undici `request` throughput at concurrency 64';
  if (!ratioTarget('throughput-c64', text, FULL, BASELINE, (r) => r >= 0.9))
    missing('throughput-c64', text, `${FULL} did not run`);

  text = 'Full meshlet HTTP stack: ≤ 100 µs added to p99 at 50% load';
  if (!p99Target('p99-added-50', text, FULL, BASELINE, 'difference', (d) => d <= 100)) {
    missing('p99-added-50', text, `${FULL} did not run`);
  }

  for (const [hop, name] of [
    ['1hop', 'haproxy-1hop'],
    ['2hop', 'haproxy-2hop'],
  ] as const) {
    const skippedWhy = report.setups.find((s) => s.name === name)?.skipped ?? `${name} or ${FULL} did not run`;
    const wide = hop === '2hop';
    // "A wide margin" made concrete: half again the throughput, half the p99.
    const tText = wide
      ? 'Beats the two-hop HAProxy setup by a wide margin on throughput (≥ 1.5× at concurrency 64)'
      : 'Beats the one-hop HAProxy sidecar on throughput (concurrency 64)';
    const lText = wide
      ? 'Beats the two-hop HAProxy setup by a wide margin on p99 (≤ 0.5× at 50% load)'
      : 'Beats the one-hop HAProxy sidecar on p99 (at 50% load)';
    if (!ratioTarget(`beats-${hop}-throughput`, tText, FULL, name, (r) => (wide ? r >= 1.5 : r > 1))) {
      missing(`beats-${hop}-throughput`, tText, skippedWhy);
    }
    if (!p99Target(`beats-${hop}-p99`, lText, FULL, name, 'ratio', (r) => (wide ? r <= 0.5 : r < 1))) {
      missing(`beats-${hop}-p99`, lText, skippedWhy);
    }
  }

  text = 'A pick costs ≤ 1 µs at 1000 endpoints for every balancer (ring-hash construction excluded)';
  const micro = report.micro;
  if (micro !== undefined && !('skipped' in micro) && micro.pick.length > 0) {
    const at1000 = micro.pick.filter((p) => p.endpoints === 1000);
    targets.push({
      id: 'pick-1us',
      text,
      measured: at1000.map((p) => `${p.balancer} ${fmt(p.nsPerPick, 0)} ns`).join(', '),
      verdict: at1000.length > 0 && at1000.every((p) => p.nsPerPick <= 1000) ? 'MET' : 'MISSED',
    });
  } else {
    missing(
      'pick-1us',
      text,
      micro !== undefined && 'skipped' in micro ? micro.skipped : 'microbenchmarks did not run',
    );
  }
  return targets;
}

// ---------------------------------------------------------------------------------------------
// Tables

function table(header: string[], rows: string[][], align: Array<'l' | 'r'>): { text: string; markdown: string } {
  const widths = header.map((h, i) => Math.max(h.length, ...rows.map((r) => r[i].length)));
  const pad = (cell: string, i: number): string =>
    align[i] === 'l' ? cell.padEnd(widths[i]) : cell.padStart(widths[i]);
  const text = [header, ...rows].map((r) => r.map(pad).join('  ')).join('\n');
  const sep = align.map((a) => (a === 'l' ? ':---' : '---:'));
  const md = [header, sep, ...rows].map((r) => `| ${r.join(' | ')} |`).join('\n');
  return { text: text + '\n', markdown: md + '\n' };
}

function measuredSetups(report: BenchReport): Array<SetupDef & { skipped: string | undefined }> {
  return report.setups.filter((s) => s.skipped === undefined && report.results[s.name] !== undefined);
}

/**
 * Throughput of `a` over `b` at `key`: the median of the per-round ratios (rounds are paired), or
 * the ratio of the headline figures when the rounds cannot be paired.
 */
export function throughputRatio(report: BenchReport, a: string, b: string, key: PointKey): number | undefined {
  const p = paired(report, a, b, key, (x, y) => x.throughput / y.throughput);
  if (p !== undefined) return p.median;
  const ra = get(report, a, key);
  const rb = get(report, b, key);
  return ra === undefined || rb === undefined ? undefined : ra.throughput / rb.throughput;
}

function ratio(report: BenchReport, setup: SetupDef, key: PointKey): string {
  if (get(report, setup.name, key) === undefined) return '–';
  if (setup.baseline === undefined) return '1.00';
  return throughputRatio(report, setup.name, setup.baseline, key)?.toFixed(2) ?? '–';
}

/**
 * Latency added at concurrency 1, where nothing queues: the per-round paired difference to the
 * setup's baseline (median over rounds), the cleanest view of what one request pays.
 */
function addedAtC1(report: BenchReport, setup: SetupDef): string {
  if (setup.baseline === undefined) return 'baseline';
  const d50 = paired(report, setup.name, setup.baseline, 'c1', (x, y) => x.latencyUs.p50 - y.latencyUs.p50);
  const d99 = paired(report, setup.name, setup.baseline, 'c1', (x, y) => x.latencyUs.p99 - y.latencyUs.p99);
  if (d50 === undefined || d99 === undefined) return '–';
  const signed = (v: number): string => `${v >= 0 ? '+' : ''}${fmt(v)}`;
  return `${signed(d50.median)} / ${signed(d99.median)}`;
}

function errorsNote(r: PointResult | undefined): string {
  if (r === undefined || r.errors + r.incomplete === 0) return '';
  return ` (${r.errors} err${r.incomplete > 0 ? `, ${r.incomplete} unfinished` : ''})`;
}

function closedTable(report: BenchReport): { text: string; markdown: string } {
  const rows = measuredSetups(report).map((s) => {
    const c = (k: PointKey): PointResult | undefined => get(report, s.name, k);
    const c64 = c('c64');
    const lat = (r: PointResult | undefined, p: 'p50' | 'p99' | 'p999'): string =>
      r === undefined ? '–' : fmt(r.latencyUs[p]);
    return [
      s.name,
      ...(['c1', 'c16', 'c64'] as const).map((k) => {
        const r = c(k);
        return r === undefined ? '–' : `${fmt(r.throughput)}${errorsNote(r)}`;
      }),
      s.baseline === undefined
        ? 'baseline'
        : `${ratio(report, s, 'c64')}× ${s.baseline === BASELINE ? '' : `(vs ${s.baseline})`}`.trim(),
      `${lat(c('c1'), 'p50')} / ${lat(c('c1'), 'p99')}`,
      addedAtC1(report, s),
      `${lat(c64, 'p50')} / ${lat(c64, 'p99')} / ${lat(c64, 'p999')}`,
      c64 === undefined ? '–' : fmt(c64.cpuUsPerRequest, 1),
      c64?.proxyCpuUsPerRequest === undefined ? '–' : fmt(c64.proxyCpuUsPerRequest, 1),
      c64 === undefined ? '–' : fmt(c64.cpuUsPerRequest + (c64.proxyCpuUsPerRequest ?? 0), 1),
      c64 === undefined
        ? '–'
        : fmt(c64.rssMiB, 0) + (c64.proxyRssMiB === undefined ? '' : ` + ${fmt(c64.proxyRssMiB, 0)}`),
    ];
  });
  return table(
    [
      'setup',
      'req/s c=1',
      'req/s c=16',
      'req/s c=64',
      'c=64 vs base',
      'c=1 p50/p99 µs',
      'c=1 Δp50/Δp99 µs',
      'c=64 p50/p99/p99.9 µs',
      'client CPU µs/req',
      'proxy CPU µs/req',
      'total CPU µs/req',
      'RSS MiB (+proxy)',
    ],
    rows,
    ['l', 'r', 'r', 'r', 'r', 'r', 'r', 'r', 'r', 'r', 'r', 'r'],
  );
}

function openTable(report: BenchReport): { text: string; markdown: string } {
  const rows = measuredSetups(report).map((s) => {
    const cells: string[] = [s.name];
    for (const key of ['open50', 'open80'] as const) {
      const r = get(report, s.name, key);
      const isBase = s.loadBase === s.name;
      const b = isBase ? undefined : get(report, s.loadBase, key);
      if (r === undefined || r.point.mode !== 'open') {
        cells.push('–', '–', '–', '–');
        continue;
      }
      cells.push(fmt(r.point.rate));
      cells.push(`${fmt(r.latencyUs.p50)} / ${fmt(r.latencyUs.p99)} / ${fmt(r.latencyUs.p999)}${errorsNote(r)}`);
      const added = b === undefined ? 0 : r.latencyUs.p99 - b.latencyUs.p99;
      cells.push(
        isBase
          ? 'baseline'
          : `${added >= 0 ? '+' : ''}${fmt(added)}${s.loadBase === BASELINE ? '' : ` (vs ${s.loadBase})`}`,
      );
      cells.push(
        `${fmt(r.cpuUsPerRequest, 1)}${r.proxyCpuUsPerRequest === undefined ? '' : ` + ${fmt(r.proxyCpuUsPerRequest, 1)}`}`,
      );
    }
    return cells;
  });
  return table(
    [
      'setup',
      '50% load req/s',
      'p50/p99/p99.9 µs',
      'Δp99 µs',
      'CPU µs/req (+proxy)',
      '80% load req/s',
      'p50/p99/p99.9 µs',
      'Δp99 µs',
      'CPU µs/req (+proxy)',
    ],
    rows,
    ['l', 'r', 'r', 'r', 'r', 'r', 'r', 'r', 'r'],
  );
}

function microTables(micro: MicroResults): { text: string; markdown: string } {
  const balancers = [...new Set(micro.pick.map((p) => p.balancer))];
  const counts = [...new Set(micro.pick.map((p) => p.endpoints))].sort((a, b) => a - b);
  const find = (b: string, n: number): MicroResults['pick'][number] | undefined =>
    micro.pick.find((p) => p.balancer === b && p.endpoints === n);
  const pick = table(
    ['balancer', ...counts.map((n) => `ns/pick @${n}`), ...counts.map((n) => `build µs @${n}`)],
    balancers.map((b) => [
      b,
      ...counts.map((n) => {
        const p = find(b, n);
        return p === undefined ? '–' : fmt(p.nsPerPick, 1);
      }),
      ...counts.map((n) => {
        const p = find(b, n);
        return p === undefined ? '–' : fmt(p.buildUs, 1);
      }),
    ]),
    ['l', ...counts.map(() => 'r' as const), ...counts.map(() => 'r' as const)],
  );
  const stack = table(
    ['core stack over an instant transport', 'ns/call', 'bytes/call'],
    micro.stack.map((s) => [s.label, fmt(s.nsPerCall), s.bytesPerCall === undefined ? '–' : fmt(s.bytesPerCall)]),
    ['l', 'r', 'r'],
  );
  const alloc = table(
    ['HTTP client (sequential requests)', 'bytes allocated/request'],
    micro.alloc.map((a) => [a.label, a.bytesPerRequest === undefined ? '–' : fmt(a.bytesPerRequest)]),
    ['l', 'r'],
  );
  return {
    text: [pick.text, stack.text, alloc.text].join('\n'),
    markdown: [pick.markdown, stack.markdown, alloc.markdown].join('\n'),
  };
}

function targetsTable(report: BenchReport): { text: string; markdown: string } {
  return table(
    ['target', 'measured', 'verdict'],
    report.targets.map((t) => [t.text, t.measured, t.verdict]),
    ['l', 'l', 'l'],
  );
}

/** "undici-request's 30,000 req/s at c=64 (undici-fetch's 10,000 for the fetch setups)". */
function ratesText(rates: NonNullable<BenchReport['rates']>): string {
  const parts = Object.entries(rates).map(([base, r]) => `${base}’s ${fmt(r.baselineMax)} req/s`);
  const [first, ...rest] = parts;
  return `${first} at c=64${rest.length > 0 ? ` (${rest.join(', ')} for the setups compared with it)` : ''}`;
}

/** The console summary. */
export function renderTable(report: BenchReport): string {
  const parts = [
    '',
    'Closed loop (throughput, latency at concurrency 1 and 64, cost per request at 64)',
    closedTable(report).text,
  ];
  if (report.rates !== undefined) {
    parts.push(
      `Open loop at 50% and 80% of ${ratesText(report.rates)} (latency from the intended send time)`,
      openTable(report).text,
    );
  }
  if (report.micro !== undefined && !('skipped' in report.micro))
    parts.push('Microbenchmarks', microTables(report.micro).text);
  for (const s of report.setups) if (s.skipped !== undefined) parts.push(`skipped ${s.name}: ${s.skipped}`);
  parts.push('', 'Targets', targetsTable(report).text);
  return parts.join('\n') + '\n';
}

/** bench/RESULTS.md, regenerated by every full run. */
export function renderMarkdown(report: BenchReport, jsonName: string): string {
  const env = report.environment;
  const pkgs = Object.entries(env.packages)
    .map(([name, version]) => `${name} ${version ?? '(not installed)'}`)
    .join(', ');
  const lines: string[] = [
    '# meshlet benchmark results',
    '',
    '<!-- Generated by `npm run bench` (bench/run.ts); do not edit by hand. -->',
    '',
    `Run ${report.startedAt} → ${report.finishedAt}, raw figures in \`bench/results/${jsonName}\` (not committed).`,
    '',
    `- Machine: ${env.cpuModel}, ${env.cores} cores, ${env.memoryGiB} GiB RAM; ${env.distro ?? ''} (${env.os}); load average at the end ${env.loadAverageAtEnd.join(' / ')}`,
    `- Node ${env.node} (V8 ${env.v8})`,
    `- Libraries: ${pkgs}`,
    `- HAProxy: ${env.haproxy ?? 'not available'}${env.haproxy === undefined ? '' : `, ${report.options.haproxyThreads} thread(s) per proxy`}`,
    `- Each setup at each load point: ${report.options.rounds} round(s) of ${report.options.warmupMs} ms warm-up + ${Math.round(report.options.durationMs / report.options.rounds)} ms measured, the rounds interleaved across setups (order reversed every other round), all in the same run.`,
    '',
    '## Targets',
    '',
    'Each comparison is made round by round (round *i* of every setup runs in the same sweep) and the verdict',
    'follows the median of the per-round values; it is MET or MISSED only when at least three rounds in four agree,',
    'and INCONCLUSIVE when the machine’s noise is larger than the margin.',
    '',
    targetsTable(report).markdown,
    '![p50/p99 latency at 50% load and throughput at concurrency 64, per setup](chart.svg)',
    '',
    '## How to read the figures',
    '',
    'Every setup runs each load point in several short rounds, interleaved with the other setups (the order reversed',
    'every other round). Throughput and latency percentiles are the **median over the rounds** of each round’s figure,',
    'so a stall caused by another tenant of a shared machine spoils one round rather than the result; the pooled',
    'figures and every round are in the JSON. CPU per request is pooled over the rounds.',
    '',
    '## Closed loop',
    '',
    'Each of *c* workers sends its next request when the previous one finished. Throughput in requests/s;',
    '`c=1 Δp50/Δp99` is the latency a request pays over its baseline when nothing queues (paired per round, median);',
    '`c=64 vs base` is the ratio to the setup’s baseline (raw undici `request`, or raw undici `fetch` for',
    '`meshlet-fetch`) measured in this run, the median of the per-round ratios. CPU is the client process’s',
    'user + system time (all threads) per request, from `process.cpuUsage()`; the proxy’s is the sum over the',
    'HAProxy processes, from `/proc/<pid>/stat`.',
    '',
    closedTable(report).markdown,
  ];
  if (report.rates !== undefined) {
    lines.push(
      '## Open loop',
      '',
      `Requests are sent at a fixed rate, 50% and 80% of ${ratesText(report.rates)},`,
      'whatever the responses do; latency runs from each request’s *intended* send time, so a stall is charged to',
      'every request it delays (no coordinated omission). The scheduler wakes at most once per millisecond (Node’s',
      'timer resolution) and sends what is due, so every setup carries the same up-to-1 ms of scheduling delay;',
      'compare setups with Δp99, the difference to the p99 of the setup’s load base measured at the same rate: raw',
      'undici `request`, or raw undici `fetch` for the two fetch setups, which are loaded relative to fetch’s own',
      'maximum (at `request`’s rates both would be saturated and the comparison would say nothing).',
      '',
      openTable(report).markdown,
    );
  }
  lines.push('## Microbenchmarks', '');
  if (report.micro === undefined || 'skipped' in report.micro) {
    lines.push(`Not run: ${report.micro === undefined ? 'not requested' : report.micro.skipped}`, '');
  } else {
    lines.push(microTables(report.micro).markdown, ...report.micro.notes.map((n) => `- ${n}`), '');
  }
  lines.push(
    '## Notes',
    '',
    '- Targets as measured: “full meshlet HTTP stack” is `meshlet-full` (default policies and an OpenTelemetry SDK);',
    '  “p99 at 50% load” is the open-loop p99 at half the baseline’s c=64 throughput; “a wide margin” over two hops',
    '  is taken as ≥ 1.5× its throughput and ≤ 0.5× its p99.',
    '- The OpenTelemetry SDK in the `full` setups records metrics and always-sampled spans into no-op exporters, with',
    '  the W3C propagator registered. No context manager is registered: on Node 20 the AsyncLocalStorage one hooks',
    '  every promise of the application, meshlet or not, so it would charge an application-wide cost to meshlet alone.',
    '- HAProxy runs one thread per process, keep-alive and `http-reuse always` towards the next hop, no logging.',
    '- Everything shares one machine: the client, three upstreams and the sidecars compete for the same cores, and',
    '  on a shared host so do other tenants (see the load average). Ratios measured in the same run hold better than',
    '  absolute figures; open-loop tails are the most sensitive to interference.',
    '',
  );
  lines.push('## Setups', '');
  for (const s of report.setups) {
    lines.push(`- \`${s.name}\`: ${s.label}${s.skipped === undefined ? '' : ` — **skipped**: ${s.skipped}`}`);
  }
  lines.push(
    '',
    'Upstreams: three Node `http` servers, each in its own process on 127.0.0.1, answering `GET /` with a 1 KiB body over',
    'keep-alive. Each client runs in its own process (`bench/client-runner.ts` with a module from `bench/clients/`).',
    'HAProxy runs in HTTP mode with keep-alive and connection reuse on both sides; one hop is client → sidecar →',
    'upstreams; two hops is client → client sidecar → one server sidecar per upstream → upstream.',
    '',
    '## Rerun',
    '',
    '```sh',
    'npm run bench                 # full run (~6 min on 2 cores), rewrites this file and chart.svg',
    'npm run bench -- --quick      # ~1 min smoke run, leaves this file alone',
    'npm run bench -- --only meshlet-full,haproxy-1hop',
    '```',
    '',
  );
  return lines.join('\n');
}
