/** The benchmark's report: the JSON shape, the targets, the console table and bench/RESULTS.md. */
import { existsSync, readFileSync } from 'node:fs';
import os from 'node:os';
import path from 'node:path';
import type { HaproxyInfo } from './lib/haproxy.ts';
import type { MicroResults, PointResult, RoundResult } from './lib/types.ts';
import { BASELINE, FORM_CONCURRENCY, FORM_GOALS, type FormGoal, type SetupDef } from './setups.ts';

export type PointKey = 'c1' | 'c16' | 'c32' | 'c64' | 'open50' | 'open80';

/** meshlet's own added cost per call with an OpenTelemetry SDK, net of the SDK's (issue 6). */
export const OTEL_ADDED_GOAL_US = 5;
/** `mesh.update()` / `createMesh` at scale, and the first call after each (issue 6). */
export const UPDATE_GOAL_MS = 100;

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
    /** The orchestrator's arguments (`npm run bench -- <argv>`); absent in older runs. */
    argv?: string[];
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
  /** `failed`: the setup's client failed during the run (its points measured before that are kept). */
  setups: Array<SetupDef & { skipped: string | undefined; failed?: string }>;
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
  const ratioTarget = (
    id: string,
    text: string,
    a: string,
    b: string,
    meets: (r: number) => boolean,
    key: PointKey = 'c64',
  ): boolean => {
    const r = paired(report, a, b, key, (x, y) => x.throughput / y.throughput);
    if (r === undefined) return false;
    const ta = get(report, a, key)?.throughput ?? 0;
    const tb = get(report, b, key)?.throughput ?? 0;
    const range = r.values.length > 1 ? ` (rounds ${r.min.toFixed(2)}–${r.max.toFixed(2)}×)` : '';
    // Beside the ratio, what does not drift with the machine's load: CPU and allocation per request.
    const d = cpuDelta(report, a, b, key);
    const cpu = d === undefined ? '' : `; client CPU ${fmt(d.a, 1)} vs ${fmt(d.b, 1)} µs/req (${signed(d.median, 1)})`;
    const ka = kb(get(report, a, key));
    const alloc = ka === '–' ? '' : `; alloc ${ka} vs ${kb(get(report, b, key))}/req`;
    targets.push({
      id,
      text,
      measured: `${r.median.toFixed(2)}×${range}; ${fmt(ta)} vs ${fmt(tb)} req/s${cpu}${alloc}`,
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

  const skippedOrFailed = (name: string): string | undefined => {
    const s = report.setups.find((x) => x.name === name);
    return s === undefined ? 'not in this run' : (s.skipped ?? s.failed);
  };
  for (const goal of FORM_GOALS) {
    for (const c of FORM_CONCURRENCY) {
      const key = `c${c}` as PointKey;
      const why = () =>
        skippedOrFailed(goal.setup) ?? skippedOrFailed(goal.baseline) ?? `no c=${c} figures for ${goal.setup}`;
      text = `\`${goal.form}\` form, policies on, no SDK (${goal.setup}): ≥ ${goal.minRatio.toFixed(2)}× raw ${goal.form === 'fetch' ? 'undici `fetch`' : '`undici.request`'} throughput at c=${c}`;
      const id = `${goal.form}-throughput-c${c}`;
      if (!ratioTarget(id, text, goal.setup, goal.baseline, (r) => r >= goal.minRatio, key)) missing(id, text, why());
      if (goal.maxAddedCpuUs === undefined) continue;
      const max = goal.maxAddedCpuUs;
      text = `\`${goal.form}\` form, policies on, no SDK (${goal.setup}): ≤ +${max} µs client CPU per request over raw at c=${c}`;
      const cpuId = `${goal.form}-cpu-c${c}`;
      const d = cpuDelta(report, goal.setup, goal.baseline, key);
      if (d === undefined) {
        missing(cpuId, text, why());
        continue;
      }
      const range = d.values.length > 1 ? ` (rounds ${signed(d.min, 1)} … ${signed(d.max, 1)})` : '';
      targets.push({
        id: cpuId,
        text,
        measured: `${signed(d.median, 1)} µs${range}; ${fmt(d.a, 1)} vs ${fmt(d.b, 1)} µs/req`,
        verdict: verdictOf(d.median <= max, d.values, (v) => v <= max),
      });
    }
  }

  const micro = report.micro;
  const microMissing = micro === undefined ? 'microbenchmarks did not run' : 'skipped' in micro ? micro.skipped : '';
  const sectionFailed = (section: string): string =>
    micro !== undefined && !('skipped' in micro)
      ? (micro.failed?.find((f) => f.section === section)?.reason ?? `${section} not measured in this run`)
      : microMissing;

  text = `meshlet’s own cost with an OpenTelemetry SDK, net of the SDK’s: ≤ ${OTEL_ADDED_GOAL_US} µs per call (micro-benchmark, (b − a) − c)`;
  const otel = micro !== undefined && !('skipped' in micro) ? micro.otel : undefined;
  if (otel !== undefined) {
    targets.push({
      id: 'otel-added',
      text,
      measured:
        `${signed(otel.addedNs / 1000, 2)} µs, ${otel.addedBytes === undefined ? '–' : signed(otel.addedBytes, 0)} B per call ` +
        `(b − a = ${fmt((otel.withSdk.nsPerCall - otel.noSdk.nsPerCall) / 1000, 2)} µs, c = ${fmt(otel.sdkAlone.nsPerCall / 1000, 2)} µs)`,
      verdict: otel.addedNs <= OTEL_ADDED_GOAL_US * 1000 ? 'MET' : 'MISSED',
    });
  } else missing('otel-added', text, sectionFailed('otel'));

  text = `\`mesh.update()\` at 10,000 endpoints, \`createMesh\` with 1000 × 10, and the first call after each: each < ${UPDATE_GOAL_MS} ms`;
  const update = micro !== undefined && !('skipped' in micro) ? micro.update : undefined;
  if (update !== undefined && update.length > 0) {
    const worst = [...update].sort((x, y) => Math.max(y.ms, y.firstCallMs) - Math.max(x.ms, x.firstCallMs))[0];
    const over = update.filter((u) => !updateMet(u));
    targets.push({
      id: 'update-scale',
      text,
      measured:
        `${update.length - over.length} of ${update.length} steps under ${UPDATE_GOAL_MS} ms; slowest: ${worst.balancer} ` +
        `${worst.step}: ${fmt(worst.ms, 1)} ms + first call ${fmt(worst.firstCallMs, 1)} ms (table in Microbenchmarks)`,
      verdict: over.length === 0 ? 'MET' : 'MISSED',
    });
  } else missing('update-scale', text, sectionFailed('update'));

  text = 'A pick costs ≤ 1 µs at 1000 endpoints for every balancer (ring-hash construction excluded)';
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

function signed(v: number, digits: number): string {
  return `${v >= 0 ? '+' : ''}${fmt(v, digits)}`;
}

function updateMet(u: { ms: number; firstCallMs: number }): boolean {
  return u.ms < UPDATE_GOAL_MS && u.firstCallMs < UPDATE_GOAL_MS;
}

/**
 * Client CPU per request of `a` minus `b` at `key`: paired per round (median, range) when the
 * rounds carry CPU figures, else the pooled difference; `a`/`b` are the pooled figures.
 */
function cpuDelta(
  report: BenchReport,
  a: string,
  b: string,
  key: PointKey,
): { median: number; min: number; max: number; values: number[]; a: number; b: number } | undefined {
  const ra = get(report, a, key);
  const rb = get(report, b, key);
  if (ra === undefined || rb === undefined) return undefined;
  const p = paired(report, a, b, key, (x, y) =>
    x.cpuUsPerRequest === undefined || y.cpuUsPerRequest === undefined ? NaN : x.cpuUsPerRequest - y.cpuUsPerRequest,
  );
  if (p !== undefined && p.values.every((v) => Number.isFinite(v)))
    return { ...p, a: ra.cpuUsPerRequest, b: rb.cpuUsPerRequest };
  const d = ra.cpuUsPerRequest - rb.cpuUsPerRequest;
  return { median: d, min: d, max: d, values: [d], a: ra.cpuUsPerRequest, b: rb.cpuUsPerRequest };
}

/** Bytes allocated per request, pooled over the rounds, as "12.3 KB" (or – when not measured). */
function kb(r: PointResult | undefined): string {
  return r?.bytesPerRequest === undefined ? '–' : `${fmt(r.bytesPerRequest / 1000, 1)} KB`;
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
    const dCpu = s.baseline === undefined ? undefined : cpuDelta(report, s.name, s.baseline, 'c64');
    return [
      s.name,
      ...(['c1', 'c16', 'c32', 'c64'] as const).map((k) => {
        const r = c(k);
        return r === undefined ? '–' : `${fmt(r.throughput)}${errorsNote(r)}`;
      }),
      s.baseline === undefined
        ? 'baseline'
        : ratio(report, s, 'c64') === '–'
          ? '–'
          : `${ratio(report, s, 'c64')}× ${s.baseline === BASELINE ? '' : `(vs ${s.baseline})`}`.trim(),
      s.baseline === undefined ? 'baseline' : dCpu === undefined ? '–' : signed(dCpu.median, 1),
      kb(c64),
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
      'req/s c=32',
      'req/s c=64',
      'c=64 vs base',
      'c=64 Δ client CPU µs/req',
      'c=64 alloc/req',
      'c=1 p50/p99 µs',
      'c=1 Δp50/Δp99 µs',
      'c=64 p50/p99/p99.9 µs',
      'client CPU µs/req',
      'proxy CPU µs/req',
      'total CPU µs/req',
      'RSS MiB (+proxy)',
    ],
    rows,
    ['l', 'r', 'r', 'r', 'r', 'r', 'r', 'r', 'r', 'r', 'r', 'r', 'r', 'r', 'r'],
  );
}

/**
 * The forms users call, policies on and no SDK, beside raw undici in the same form: throughput
 * ratio, client CPU and bytes allocated per request, and the goal's verdicts, at c=32 and c=64.
 */
function formsTable(report: BenchReport): { text: string; markdown: string } {
  /** The target's verdict; when the rounds disagree, also which side the median is on. */
  const verdictFor = (id: string, medianMeets: boolean | undefined): string => {
    const v = report.targets.find((t) => t.id === id)?.verdict ?? '–';
    if (v !== 'INCONCLUSIVE' || medianMeets === undefined) return v;
    return `${v} (median ${medianMeets ? 'meets' : 'misses'})`;
  };
  const rows: string[][] = [];
  for (const goal of FORM_GOALS as FormGoal[]) {
    // The goal's concurrencies, then the open loop at 50% of the raw form's maximum: both sides
    // sent at the same rate, so their CPU per request is compared under the same batching.
    for (const key of [...FORM_CONCURRENCY.map((c) => `c${c}` as PointKey), 'open50' as const]) {
      const closed = key !== 'open50';
      const a = get(report, goal.setup, key);
      const b = get(report, goal.baseline, key);
      const r = closed
        ? paired(report, goal.setup, goal.baseline, key, (x, y) => x.throughput / y.throughput)
        : undefined;
      const d = cpuDelta(report, goal.setup, goal.baseline, key);
      const range = r !== undefined && r.values.length > 1 ? ` (${r.min.toFixed(2)}–${r.max.toFixed(2)})` : '';
      const dRange = d !== undefined && d.values.length > 1 ? ` (${signed(d.min, 1)}…${signed(d.max, 1)})` : '';
      const dBytes =
        a?.bytesPerRequest === undefined || b?.bytesPerRequest === undefined
          ? '–'
          : `${signed((a.bytesPerRequest - b.bytesPerRequest) / 1000, 1)} KB`;
      const c = key.slice(1);
      rows.push([
        `\`${goal.form}\`: ${goal.setup} vs ${goal.baseline}`,
        closed ? c : 'open 50%',
        a === undefined || b === undefined ? '–' : `${fmt(a.throughput)} / ${fmt(b.throughput)}`,
        closed ? (r === undefined ? '–' : `${r.median.toFixed(2)}×${range}`) : 'same rate',
        a === undefined || b === undefined ? '–' : `${fmt(a.cpuUsPerRequest, 1)} / ${fmt(b.cpuUsPerRequest, 1)}`,
        d === undefined ? '–' : `${signed(d.median, 1)}${dRange}`,
        `${kb(a)} / ${kb(b)}`,
        dBytes,
        closed
          ? `≥ ${goal.minRatio.toFixed(2)}×: ${verdictFor(`${goal.form}-throughput-c${c}`, r === undefined ? undefined : r.median >= goal.minRatio)}`
          : '–',
        goal.maxAddedCpuUs === undefined || !closed
          ? '–'
          : `≤ +${goal.maxAddedCpuUs} µs: ${verdictFor(`${goal.form}-cpu-c${c}`, d === undefined ? undefined : d.median <= goal.maxAddedCpuUs)}`,
      ]);
    }
  }
  return table(
    [
      'form: meshlet vs raw',
      'c',
      'req/s meshlet / raw',
      'ratio (rounds)',
      'client CPU µs/req meshlet / raw',
      'Δ CPU µs/req (rounds)',
      'alloc/req meshlet / raw',
      'Δ alloc/req',
      'throughput goal',
      'CPU goal',
    ],
    rows,
    ['l', 'r', 'r', 'r', 'r', 'r', 'r', 'r', 'l', 'l'],
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
  const parts = [pick, stack, alloc];
  if (micro.otel !== undefined) parts.push(otelTable(micro.otel));
  if (micro.update !== undefined && micro.update.length > 0) parts.push(updateTable(micro.update));
  if (micro.failed !== undefined && micro.failed.length > 0) {
    parts.push(
      table(
        ['micro-benchmark section', 'FAILED'],
        micro.failed.map((f) => [f.section, f.reason]),
        ['l', 'l'],
      ),
    );
  }
  return {
    text: parts.map((p) => p.text).join('\n'),
    markdown: parts.map((p) => p.markdown).join('\n'),
  };
}

function otelTable(otel: NonNullable<MicroResults['otel']>): { text: string; markdown: string } {
  const bytes = (b: number | undefined): string => (b === undefined ? '–' : fmt(b));
  const rows = [otel.noSdk, otel.withSdk, otel.sdkAlone].map((v, i) => [
    `(${'abc'[i]}) ${v.label}`,
    fmt(v.nsPerCall / 1000, 2),
    bytes(v.bytesPerCall),
  ]);
  rows.push([
    '**meshlet’s own added cost with the SDK: (b − a) − c**',
    `**${signed(otel.addedNs / 1000, 2)}** (goal ≤ ${OTEL_ADDED_GOAL_US})`,
    `**${otel.addedBytes === undefined ? '–' : signed(otel.addedBytes, 0)}**`,
  ]);
  const per = otel.perCall;
  if (per !== undefined) {
    rows.push([
      'handed to the SDK per call (1 attempt): spans / span attributes / events / metric records',
      `${fmt(per.spans, 2)} / ${fmt(per.spanAttributes, 2)} / ${fmt(per.events, 2)} / ${fmt(per.metricRecords, 2)}`,
      '',
    ]);
    rows.push([
      'attribute objects per call: passed / newly allocated (not reused) / keys over all',
      `${fmt(per.attributeObjects, 2)} / ${fmt(per.newAttributeObjects, 2)} / ${fmt(per.attributeKeys, 2)}`,
      '',
    ]);
  }
  return table(['OpenTelemetry cost per call (core stack, instant transport)', 'µs/call', 'bytes/call'], rows, [
    'l',
    'r',
    'r',
  ]);
}

function updateTable(update: NonNullable<MicroResults['update']>): { text: string; markdown: string } {
  return table(
    ['balancer', 'step', 'ms (median)', 'first call after, ms', 'every repetition, ms', `< ${UPDATE_GOAL_MS} ms`],
    update.map((u) => [
      u.balancer,
      u.step,
      fmt(u.ms, 2),
      fmt(u.firstCallMs, 2),
      u.samplesMs.map((v) => fmt(v, 1)).join(', '),
      updateMet(u) ? 'MET' : 'MISSED',
    ]),
    ['l', 'l', 'r', 'r', 'r', 'l'],
  );
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
  if (first === undefined) return 'the load bases’ throughput (none measured)';
  return `${first} at c=64${rest.length > 0 ? ` (${rest.join(', ')} for the setups compared with it)` : ''}`;
}

/** The console summary. */
export function renderTable(report: BenchReport): string {
  const env = report.environment;
  const parts = [
    '',
    `${commandOf(report)} — ${env.cpuModel}, ${env.cores} cores; Node ${env.node}; load average at the end ${env.loadAverageAtEnd.join(' / ')}`,
    '',
    'Closed loop (throughput, latency at concurrency 1 and 64, cost per request at 64)',
    closedTable(report).text,
    'The forms users call, policies on, no OTel SDK, vs raw undici in the same form (closed loop; CPU and allocation of the client process)',
    formsTable(report).text,
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
  for (const s of report.setups) if (s.failed !== undefined) parts.push(`FAILED ${s.name}: ${s.failed}`);
  if (report.micro !== undefined && 'skipped' in report.micro) parts.push(`microbenchmarks: ${report.micro.skipped}`);
  parts.push('', 'Targets', targetsTable(report).text);
  return parts.join('\n') + '\n';
}

/** The command line that produced the report. */
function commandOf(report: BenchReport): string {
  const argv = report.options.argv;
  if (argv === undefined) return 'npm run bench (arguments not recorded)';
  return argv.length === 0 ? 'npm run bench' : `npm run bench -- ${argv.join(' ')}`;
}

/** One line per form goal: the exact call each side makes. */
function formsList(report: BenchReport): string[] {
  const formOf = (name: string): string => {
    const form = (report.setups.find((x) => x.name === name) as { form?: string } | undefined)?.form;
    return form === undefined ? name : `\`${form}\``;
  };
  return FORM_GOALS.map(
    (g) => `- \`${g.form}\`: ${g.setup} calls ${formOf(g.setup)}; ${g.baseline} calls ${formOf(g.baseline)}.`,
  );
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
    `- Command: \`${commandOf(report)}\``,
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
    '## The forms users call',
    '',
    'Each form an application writes, with the default policies (P2C over peak EWMA, retries with a budget, deadline,',
    'circuit breaker, outlier detection) and no OpenTelemetry SDK, beside raw undici in the *same* form over the same',
    'three upstreams (raw: one `Pool` per upstream, round robin by hand). Closed loop. The ratio is the median of the',
    'per-round throughput ratios (range over the rounds in brackets); client CPU is the client process’s user + system',
    'time per request (Δ: median of the per-round differences), which does not drift toward 1 the way throughput',
    'ratios do when client and upstreams share two cores; alloc/req is the JS heap the client process allocated per',
    'request in the windows: heap growth plus what each GC freed, from `node:v8` `GCProfiler` (KB = 1000 bytes).',
    'The `open 50%` row sends both sides at the same rate (half the raw form’s c=64 maximum, open loop): their CPU',
    'per request is then compared under the same batching of the event loop; it carries no goal.',
    '',
    ...formsList(report),
    '',
    formsTable(report).markdown,
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
    '`c=64 vs base` is the ratio to the setup’s baseline (raw undici `request`, or raw undici `fetch` for the',
    '`meshlet-fetch*` setups) measured in this run, the median of the per-round ratios; beside it, the client CPU',
    'per request over the baseline’s (median of the per-round differences) and the JS heap bytes the client process',
    'allocated per request. CPU is the client process’s user + system time (all threads) per request, from',
    '`process.cpuUsage()`; the proxy’s is the sum over the HAProxy processes, from `/proc/<pid>/stat`. Allocation is',
    'the heap growth over the window plus what every GC in it freed (`node:v8` `GCProfiler`).',
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
  lines.push(
    'Each setup names the call the application makes (`meshDispatcher = createMeshDispatcher(mesh)`,',
    '`meshFetch = createMeshFetch(mesh)`, `pool`: one undici `Pool` per upstream, round robin by hand).',
    '',
  );
  for (const s of report.setups) {
    const form = (s as { form?: string }).form;
    lines.push(
      `- \`${s.name}\`: ${s.label}${form === undefined ? '' : `, \`${form}\``}` +
        `${s.skipped === undefined ? '' : ` — **skipped**: ${s.skipped}`}${s.failed === undefined ? '' : ` — **failed**: ${s.failed}`}`,
    );
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
    'npm run bench                 # full run (~8 min on 2 cores), rewrites this file and chart.svg',
    'npm run bench -- --quick      # ~1.5 min smoke run, leaves this file alone',
    'node --import tsx --expose-gc --min-semi-space-size=64 --max-semi-space-size=64 bench/micro.ts \'{"only":["otel","update"]}\'  # micro-benchmark sections alone (JSON)',
    'npm run bench -- --only meshlet-full,haproxy-1hop',
    '```',
    '',
  );
  return lines.join('\n');
}
