/** The benchmark's report: the JSON shape, the targets, the console table and bench/RESULTS.md. */
import { existsSync, readFileSync } from 'node:fs';
import os from 'node:os';
import path from 'node:path';
import type { HaproxyInfo } from './lib/haproxy.ts';
import type { MicroResults, PointResult } from './lib/types.ts';
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

export interface TargetResult {
  id: string;
  /** The target as the issue states it. */
  text: string;
  /** What was measured, in words and numbers. */
  measured: string;
  /** undefined: not measured in this run (setup skipped). */
  met: boolean | undefined;
}

export interface BenchReport {
  version: 1;
  startedAt: string;
  finishedAt: string;
  options: { quick: boolean; only: string[] | undefined; durationMs: number; warmupMs: number; haproxyThreads: number };
  environment: Environment;
  setups: Array<SetupDef & { skipped: string | undefined }>;
  /** Open-loop rates, req/s, derived from the baseline's throughput at concurrency 64. */
  rates: { baselineMax: number; open50: number; open80: number } | undefined;
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

/** Evaluates each target of issue 3 on this run's figures. */
export function evaluateTargets(report: BenchReport): TargetResult[] {
  const targets: TargetResult[] = [];
  const missing = (id: string, text: string, why: string): void => {
    targets.push({ id, text, measured: `not measured: ${why}`, met: undefined });
  };
  const base64 = get(report, BASELINE, 'c64');
  const full64 = get(report, FULL, 'c64');
  const base50 = get(report, BASELINE, 'open50');
  const full50 = get(report, FULL, 'open50');

  let text = 'Full meshlet HTTP stack: ≥ 0.90× raw undici `request` throughput at concurrency 64';
  if (base64 !== undefined && full64 !== undefined) {
    const ratio = full64.throughput / base64.throughput;
    targets.push({
      id: 'throughput-c64',
      text,
      measured: `${ratio.toFixed(3)}× (${fmt(full64.throughput)} vs ${fmt(base64.throughput)} req/s)`,
      met: ratio >= 0.9,
    });
  } else missing('throughput-c64', text, `${FULL} did not run`);

  text = 'Full meshlet HTTP stack: ≤ 100 µs added to p99 at 50% load';
  if (base50 !== undefined && full50 !== undefined) {
    const added = full50.latencyUs.p99 - base50.latencyUs.p99;
    targets.push({
      id: 'p99-added-50',
      text,
      measured: `${added >= 0 ? '+' : ''}${fmt(added)} µs (p99 ${fmt(full50.latencyUs.p99)} vs ${fmt(base50.latencyUs.p99)} µs)`,
      met: added <= 100,
    });
  } else missing('p99-added-50', text, `${FULL} did not run`);

  for (const [hop, name] of [
    ['1hop', 'haproxy-1hop'],
    ['2hop', 'haproxy-2hop'],
  ] as const) {
    const proxy64 = get(report, name, 'c64');
    const proxy50 = get(report, name, 'open50');
    const skippedWhy = report.setups.find((s) => s.name === name)?.skipped ?? `${name} or ${FULL} did not run`;
    const wide = hop === '2hop';
    // "A wide margin" made concrete: half again the throughput, half the p99.
    const tText = wide
      ? 'Beats the two-hop HAProxy setup by a wide margin on throughput (≥ 1.5× at concurrency 64)'
      : 'Beats the one-hop HAProxy sidecar on throughput (concurrency 64)';
    const lText = wide
      ? 'Beats the two-hop HAProxy setup by a wide margin on p99 (≤ 0.5× at 50% load)'
      : 'Beats the one-hop HAProxy sidecar on p99 (at 50% load)';
    if (proxy64 !== undefined && full64 !== undefined) {
      const ratio = full64.throughput / proxy64.throughput;
      targets.push({
        id: `beats-${hop}-throughput`,
        text: tText,
        measured: `${ratio.toFixed(2)}× (${fmt(full64.throughput)} vs ${fmt(proxy64.throughput)} req/s)`,
        met: wide ? ratio >= 1.5 : ratio > 1,
      });
    } else missing(`beats-${hop}-throughput`, tText, skippedWhy);
    if (proxy50 !== undefined && full50 !== undefined) {
      const ratio = full50.latencyUs.p99 / proxy50.latencyUs.p99;
      targets.push({
        id: `beats-${hop}-p99`,
        text: lText,
        measured: `${ratio.toFixed(2)}× (p99 ${fmt(full50.latencyUs.p99)} vs ${fmt(proxy50.latencyUs.p99)} µs)`,
        met: wide ? ratio <= 0.5 : ratio < 1,
      });
    } else missing(`beats-${hop}-p99`, lText, skippedWhy);
  }

  text = 'A pick costs ≤ 1 µs at 1000 endpoints for every balancer (ring-hash construction excluded)';
  const micro = report.micro;
  if (micro !== undefined && !('skipped' in micro) && micro.pick.length > 0) {
    const at1000 = micro.pick.filter((p) => p.endpoints === 1000);
    const worst = at1000.reduce((a, b) => (b.nsPerPick > a.nsPerPick ? b : a), at1000[0]);
    targets.push({
      id: 'pick-1us',
      text,
      measured: at1000.map((p) => `${p.balancer} ${fmt(p.nsPerPick, 0)} ns`).join(', '),
      met: worst !== undefined && at1000.every((p) => p.nsPerPick <= 1000),
    });
  } else missing('pick-1us', text, micro !== undefined && 'skipped' in micro ? micro.skipped : 'microbenchmarks did not run');
  return targets;
}

// ---------------------------------------------------------------------------------------------
// Tables

function table(header: string[], rows: string[][], align: Array<'l' | 'r'>): { text: string; markdown: string } {
  const widths = header.map((h, i) => Math.max(h.length, ...rows.map((r) => r[i].length)));
  const pad = (cell: string, i: number): string => (align[i] === 'l' ? cell.padEnd(widths[i]) : cell.padStart(widths[i]));
  const text = [header, ...rows].map((r) => r.map(pad).join('  ')).join('\n');
  const sep = align.map((a) => (a === 'l' ? ':---' : '---:'));
  const md = [header, sep, ...rows].map((r) => `| ${r.join(' | ')} |`).join('\n');
  return { text: text + '\n', markdown: md + '\n' };
}

function measuredSetups(report: BenchReport): Array<SetupDef & { skipped: string | undefined }> {
  return report.setups.filter((s) => s.skipped === undefined && report.results[s.name] !== undefined);
}

function ratio(report: BenchReport, setup: SetupDef, key: PointKey): string {
  const r = get(report, setup.name, key);
  const b = setup.baseline === undefined ? undefined : get(report, setup.baseline, key);
  if (r === undefined) return '–';
  if (b === undefined) return '1.00';
  return (r.throughput / b.throughput).toFixed(2);
}

function errorsNote(r: PointResult | undefined): string {
  if (r === undefined || r.errors + r.incomplete === 0) return '';
  return ` (${r.errors} err${r.incomplete > 0 ? `, ${r.incomplete} unfinished` : ''})`;
}

function closedTable(report: BenchReport): { text: string; markdown: string } {
  const rows = measuredSetups(report).map((s) => {
    const c = (k: PointKey): PointResult | undefined => get(report, s.name, k);
    const c64 = c('c64');
    const lat = (r: PointResult | undefined, p: 'p50' | 'p99' | 'p999'): string => (r === undefined ? '–' : fmt(r.latencyUs[p]));
    return [
      s.name,
      ...(['c1', 'c16', 'c64'] as const).map((k) => {
        const r = c(k);
        return r === undefined ? '–' : `${fmt(r.throughput)}${errorsNote(r)}`;
      }),
      s.baseline === undefined ? 'baseline' : `${ratio(report, s, 'c64')}× ${s.baseline === BASELINE ? '' : `(vs ${s.baseline})`}`.trim(),
      `${lat(c('c1'), 'p50')} / ${lat(c('c1'), 'p99')}`,
      `${lat(c64, 'p50')} / ${lat(c64, 'p99')} / ${lat(c64, 'p999')}`,
      c64 === undefined ? '–' : fmt(c64.cpuUsPerRequest, 1),
      c64?.proxyCpuUsPerRequest === undefined ? '–' : fmt(c64.proxyCpuUsPerRequest, 1),
      c64 === undefined ? '–' : fmt(c64.rssMiB, 0) + (c64.proxyRssMiB === undefined ? '' : ` + ${fmt(c64.proxyRssMiB, 0)}`),
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
      'c=64 p50/p99/p99.9 µs',
      'client CPU µs/req',
      'proxy CPU µs/req',
      'RSS MiB (+proxy)',
    ],
    rows,
    ['l', 'r', 'r', 'r', 'r', 'r', 'r', 'r', 'r', 'r'],
  );
}

function openTable(report: BenchReport): { text: string; markdown: string } {
  const rows = measuredSetups(report).map((s) => {
    const cells: string[] = [s.name];
    for (const key of ['open50', 'open80'] as const) {
      const r = get(report, s.name, key);
      const b = s.baseline === undefined ? undefined : get(report, s.baseline, key);
      if (r === undefined) {
        cells.push('–', '–', '–');
        continue;
      }
      cells.push(`${fmt(r.latencyUs.p50)} / ${fmt(r.latencyUs.p99)} / ${fmt(r.latencyUs.p999)}${errorsNote(r)}`);
      const added = b === undefined ? 0 : r.latencyUs.p99 - b.latencyUs.p99;
      cells.push(s.baseline === undefined ? 'baseline' : `${added >= 0 ? '+' : ''}${fmt(added)}`);
      cells.push(`${fmt(r.cpuUsPerRequest, 1)}${r.proxyCpuUsPerRequest === undefined ? '' : ` + ${fmt(r.proxyCpuUsPerRequest, 1)}`}`);
    }
    return cells;
  });
  const r50 = report.rates === undefined ? '' : ` (${fmt(report.rates.open50)}/s)`;
  const r80 = report.rates === undefined ? '' : ` (${fmt(report.rates.open80)}/s)`;
  return table(
    [
      'setup',
      `50%${r50} p50/p99/p99.9 µs`,
      'Δp99 µs',
      'CPU µs/req (+proxy)',
      `80%${r80} p50/p99/p99.9 µs`,
      'Δp99 µs',
      'CPU µs/req (+proxy)',
    ],
    rows,
    ['l', 'r', 'r', 'r', 'r', 'r', 'r'],
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
  const verdict = (t: TargetResult): string => (t.met === undefined ? 'not measured' : t.met ? 'MET' : 'MISSED');
  return table(
    ['target', 'measured', 'verdict'],
    report.targets.map((t) => [t.text, t.measured, verdict(t)]),
    ['l', 'l', 'l'],
  );
}

/** The console summary. */
export function renderTable(report: BenchReport): string {
  const parts = ['', 'Closed loop (throughput, latency at concurrency 1 and 64, cost per request at 64)', closedTable(report).text];
  if (report.rates !== undefined) {
    parts.push(
      `Open loop at 50% and 80% of the baseline's ${fmt(report.rates.baselineMax)} req/s (latency from the intended send time)`,
      openTable(report).text,
    );
  }
  if (report.micro !== undefined && !('skipped' in report.micro)) parts.push('Microbenchmarks', microTables(report.micro).text);
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
    `- Each load point: ${report.options.warmupMs} ms warm-up, then ${report.options.durationMs} ms measured; every setup measured in the same run, interleaved per load point.`,
    '',
    '## Targets',
    '',
    targetsTable(report).markdown,
    '![p50/p99 latency at 50% load and throughput at concurrency 64, per setup](chart.svg)',
    '',
    '## Closed loop',
    '',
    'Each of *c* workers sends its next request when the previous one finished. Throughput in requests/s;',
    '`c=64 vs base` is the ratio to the setup’s baseline (raw undici `request`, or raw undici `fetch` for',
    '`meshlet-fetch`) measured in this run. CPU is the client process’s user + system time (all threads) per',
    'request, from `process.cpuUsage()`; the proxy’s is the sum over the HAProxy processes, from `/proc/<pid>/stat`.',
    '',
    closedTable(report).markdown,
  ];
  if (report.rates !== undefined) {
    lines.push(
      '## Open loop',
      '',
      `Requests are sent at a fixed rate, 50% and 80% of the baseline’s ${fmt(report.rates.baselineMax)} req/s at c=64,`,
      'whatever the responses do; latency runs from each request’s *intended* send time, so a stall is charged to',
      'every request it delays (no coordinated omission). The scheduler wakes at most once per millisecond (Node’s',
      'timer resolution) and sends what is due, so every setup carries the same up-to-1 ms of scheduling delay;',
      'compare setups with Δp99 (difference to the baseline), not with the absolute figures.',
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
