/**
 * The demo mesh: three local backends (fast, slow, flaky), steady traffic through
 * createMeshFetch for ~20 s (DEMO_SECONDS, or until Ctrl-C), and a live table from
 * mesh.stats() every second. Watch the caller's success rate stay near 100% while the
 * flaky backend fails, gets ejected, comes back after its ejection and is ejected again,
 * and the slow backend get little traffic.
 */
import { spawn, type ChildProcess } from 'node:child_process';
import { once } from 'node:events';
import { fileURLToPath } from 'node:url';
import { createMesh, type EndpointStats, type MeshStats } from '@meshlet/core';
import { createMeshFetch } from '@meshlet/http';

const SECONDS = Number(process.env.DEMO_SECONDS ?? 20);
const RATE = Number(process.env.DEMO_RPS ?? 300);
const backendFile = fileURLToPath(new URL('./backend.ts', import.meta.url));

const specs = [
  { name: 'fast', delayMs: 2, failPercent: 0 },
  { name: 'slow', delayMs: 80, failPercent: 0 },
  { name: 'flaky', delayMs: 2, failPercent: 40 },
];

// Outlier detection, shortened so one 20 s run shows whole cycles: 5 failures in a row
// eject an endpoint for 3 s × its multiplier (+1 per ejection, -1 per healthy 500 ms
// interval; at most 6 s), checked every 500 ms. The defaults (30 s × n up to 300 s,
// checked every 10 s) suit production, not a 20 s demo.
const OUTLIER = { consecutiveFailures: 5, intervalMs: 500, baseEjectionMs: 3000, maxEjectionMs: 6000 };
const STATS_WINDOW_MS = 1000;

async function startBackend(name: string, delayMs: number, failPercent: number): Promise<[ChildProcess, number]> {
  const child = spawn(process.execPath, ['--import', 'tsx', backendFile, name, String(delayMs), String(failPercent)], {
    stdio: ['ignore', 'pipe', 'inherit'],
  });
  const [chunk] = (await once(child.stdout!, 'data')) as [Buffer];
  return [child, Number(chunk.toString().trim())];
}

const children: ChildProcess[] = [];
const stopAll = (): void => {
  for (const c of children) c.kill('SIGTERM');
};
process.on('exit', stopAll);

const started = await Promise.all(specs.map((s) => startBackend(s.name, s.delayMs, s.failPercent)));
const nameOf = new Map<string, string>();
for (let i = 0; i < started.length; i++) {
  children.push(started[i][0]);
  nameOf.set(`127.0.0.1:${started[i][1]}`, specs[i].name);
}

const mesh = createMesh({
  services: {
    catalog: {
      endpoints: [...nameOf.keys()],
      loadBalancer: 'p2c-ewma',
      timeout: { requestMs: 2000 },
      retry: { maxAttempts: 3 },
      outlierDetection: OUTLIER,
    },
  },
  statsWindowMs: STATS_WINDOW_MS,
});
const fetch = createMeshFetch(mesh);

let sent = 0;
let ok = 0;
let failed = 0;
const errors = new Map<string, number>();
let stopping = false;

async function one(): Promise<void> {
  sent++;
  try {
    const res = await fetch('http://catalog/items');
    await res.arrayBuffer();
    if (res.ok) ok++;
    else {
      failed++;
      errors.set(`HTTP ${res.status}`, (errors.get(`HTTP ${res.status}`) ?? 0) + 1);
    }
  } catch (err) {
    failed++;
    const code = (err as { code?: string }).code ?? String(err);
    errors.set(code, (errors.get(code) ?? 0) + 1);
  }
}

const pad = (s: string | number, n: number): string => String(s).padStart(n);
const NO_DATA = '—';
/** A latency percentile, or "—" when the window holds no sample (the stats report 0 then). */
const ms = (value: number, samples: number): string => (samples === 0 ? NO_DATA : value.toFixed(1));

const windowText = `${STATS_WINDOW_MS / 1000}–${(2 * STATS_WINDOW_MS) / 1000} s`;
const legend = [
  `meshlet demo: ${RATE} req/s for ${SECONDS} s to http://catalog/ through createMeshFetch`,
  `(p2c-ewma balancer, up to 3 attempts per call within the retry budget, 2 s deadline, outlier detection:`,
  ` ${OUTLIER.consecutiveFailures} failures in a row eject an endpoint for ${OUTLIER.baseEjectionMs / 1000} s, longer if it is ejected again soon, at most ${OUTLIER.maxEjectionMs / 1000} s).`,
  `Backends: fast ~2 ms; slow ~80 ms; flaky ~2 ms but answers 503 to 40% of requests.`,
  '',
  'caller line  what the application sees, per second: calls, % answered 200 (after retries); then totals:',
  '             retries sent, retries the budget refused, and p50/p99 of whole calls over the recent window',
  'endpoint     backend name and address',
  'att/s        attempts sent to the endpoint in the last second (first tries and retries)',
  'success      % of those attempts that succeeded (a 503 is a failure); "-" when none was sent',
  `p50/p99 ms   attempt latency percentiles over the recent window (${windowText}); "${NO_DATA}" when it holds no attempt`,
  'ewma ms      the peak-EWMA latency the balancer compares: jumps to a slow answer, then decays toward the',
  "             service's typical latency; a failed attempt counts as 5 × that typical latency",
  'state        healthy | ejected (by outlier detection, gets no traffic) | open, half-open (circuit breaker)',
  'ejections    how many times outlier detection has ejected the endpoint so far',
  '',
];

let last: MeshStats | undefined;
let lastOk = 0;
let lastFailed = 0;
let second = 0;

function endpointLine(ep: EndpointStats, before: EndpointStats | undefined): string {
  const reqs = ep.requests - (before?.requests ?? 0);
  const fails = ep.failures - (before?.failures ?? 0);
  const success = reqs === 0 ? '-' : `${(((reqs - fails) / reqs) * 100).toFixed(1)}%`;
  const label = `${nameOf.get(ep.address) ?? '?'} ${ep.address}`;
  return (
    `${label.padEnd(24)}${pad(reqs, 6)}${pad(success, 9)}` +
    `${pad(ms(ep.latencyMs.p50, ep.recentRequests), 8)}${pad(ms(ep.latencyMs.p99, ep.recentRequests), 8)}` +
    `${pad(ep.ewmaMs.toFixed(1), 8)}  ${ep.state.padEnd(9)}${pad(ep.ejections, 10)}`
  );
}

function render(): void {
  second++;
  const stats = mesh.stats();
  const svc = stats.services.catalog;
  const before = new Map((last?.services.catalog.endpoints ?? []).map((e) => [e.address, e]));
  const okNow = ok - lastOk;
  const failedNow = failed - lastFailed;
  lastOk = ok;
  lastFailed = failed;
  const lines: string[] = [];
  lines.push(
    `${pad(second, 3)}s caller: ${pad(okNow + failedNow, 4)} calls/s, ` +
      `${pad(((okNow / Math.max(1, okNow + failedNow)) * 100).toFixed(1), 5)}% ok ` +
      `(total ${ok}/${ok + failed}), retries ${svc.retries}, refused by budget ${svc.retriesSkippedByBudget}, ` +
      `p50 ${ms(svc.latencyMs.p50, svc.recentRequests)} ms, p99 ${ms(svc.latencyMs.p99, svc.recentRequests)} ms`,
  );
  lines.push(
    `     ${'endpoint'.padEnd(24)}${pad('att/s', 6)}${pad('success', 9)}${pad('p50 ms', 8)}${pad('p99 ms', 8)}` +
      `${pad('ewma ms', 8)}  ${'state'.padEnd(9)}${pad('ejections', 10)}`,
  );
  for (const ep of svc.endpoints) lines.push(`     ${endpointLine(ep, before.get(ep.address))}`);
  if (errors.size) lines.push(`     caller errors: ${[...errors].map(([k, v]) => `${k}×${v}`).join(', ')}`);
  last = stats;
  // A terminal is redrawn in place (legend on top); a pipe or file gets the legend once, then every table.
  if (process.stdout.isTTY) process.stdout.write(`\x1b[2J\x1b[H${legend.join('\n')}\n`);
  process.stdout.write(lines.join('\n') + '\n\n');
}

if (!process.stdout.isTTY) process.stdout.write(legend.join('\n') + '\n');

// Open-loop traffic at RATE requests per second.
const startedAt = performance.now();
const inflight = new Set<Promise<void>>();
const tick = setInterval(() => {
  const due = Math.floor(((performance.now() - startedAt) / 1000) * RATE) - sent;
  for (let i = 0; i < due && !stopping; i++) {
    const p = one().finally(() => inflight.delete(p));
    inflight.add(p);
  }
}, 10);
const table = setInterval(render, 1000);

async function stop(): Promise<void> {
  if (stopping) return;
  stopping = true;
  clearInterval(tick);
  clearInterval(table);
  await Promise.allSettled(inflight);
  render();
  const rate = ((ok / Math.max(1, ok + failed)) * 100).toFixed(2);
  const flaky = mesh.stats().services.catalog.endpoints.find((e) => nameOf.get(e.address) === 'flaky');
  console.log(
    `done: ${ok + failed} calls, ${rate}% answered 200 as seen by the caller; ` +
      `the flaky backend was ejected ${flaky?.ejections ?? 0} time(s).`,
  );
  await mesh.close();
  stopAll();
}

process.once('SIGINT', () => void stop());
setTimeout(() => void stop(), SECONDS * 1000);
