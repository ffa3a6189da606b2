/**
 * The demo mesh, configured by a control server:
 *
 * - `meshlet control --config examples/demo/mesh.yaml` runs as a child process; mesh.yaml holds
 *   the policies and a canary route (catalog → catalog-v1 90 / catalog-v2 10), and no endpoints;
 * - four backends, each its own process, register themselves with it (`mesh.register`):
 *   fast, slow and flaky serve catalog-v1, canary serves catalog-v2;
 * - this process is the client: `createMesh({ service: 'demo-client', discovery: [controlPlane(…)] })`
 *   and `createMeshFetch`, steady traffic to http://catalog/ for ~20 s (DEMO_SECONDS, or until
 *   Ctrl-C), and a live table from mesh.stats() every second.
 *
 * Watch the caller's success rate stay near 100% while the flaky backend fails, gets ejected, comes
 * back after its ejection and is ejected again; the slow backend get little traffic; and the canary
 * get ~10% of calls. Edit mesh.yaml while it runs (say the weights to 50 / 50): the control server
 * pushes the change and the shares move. DEMO_CONFIG=<file> serves another config file.
 */
import { spawn, type ChildProcess } from 'node:child_process';
import { once } from 'node:events';
import { createRequire } from 'node:module';
import path from 'node:path';
import { createInterface } from 'node:readline';
import { fileURLToPath } from 'node:url';
import { createMesh, type EndpointStats, type MeshStats } from '@meshlet/core';
import { controlPlane, readConfigFile } from '@meshlet/discovery';
import { createMeshFetch } from '@meshlet/http';

const SECONDS = Number(process.env.DEMO_SECONDS ?? 20);
const RATE = Number(process.env.DEMO_RPS ?? 300);
const configPath = path.resolve(process.env.DEMO_CONFIG ?? fileURLToPath(new URL('./mesh.yaml', import.meta.url)));
const backendFile = fileURLToPath(new URL('./backend.ts', import.meta.url));
// The `meshlet` binary of @meshlet/control, as `npx meshlet` runs it.
const meshletBin = path.join(
  path.dirname(createRequire(import.meta.url).resolve('@meshlet/control/package.json')),
  'bin/meshlet.js',
);

const ROUTED = 'catalog';
const VERSIONS = ['catalog-v1', 'catalog-v2'] as const;
const specs = [
  { name: 'fast', delayMs: 2, failPercent: 0, service: 'catalog-v1' },
  { name: 'slow', delayMs: 80, failPercent: 0, service: 'catalog-v1' },
  { name: 'flaky', delayMs: 2, failPercent: 40, service: 'catalog-v1' },
  { name: 'canary', delayMs: 2, failPercent: 0, service: 'catalog-v2' },
];
const STATS_WINDOW_MS = 1000;
/** When traffic started (the table's clock); events before it show as 0s. */
let trafficStart: number | undefined;
const elapsed = (): string =>
  `${trafficStart === undefined ? 0 : Math.ceil((performance.now() - trafficStart) / 1000)}s`;

const children: ChildProcess[] = [];
process.on('exit', () => {
  for (const c of children) if (c.exitCode === null) c.kill('SIGKILL');
});

// --- the control server ---------------------------------------------------------------------------

/** What the control server last said, for the line under the table. */
const controlEvents: string[] = [];
let weightsText = '';

function controlEvent(text: string): void {
  controlEvents.push(`${elapsed().padStart(4)} ${text}`);
  if (controlEvents.length > 3) controlEvents.shift();
}

/** "catalog-v1 90 / catalog-v2 10", from the file the control server just loaded. */
async function readWeights(): Promise<void> {
  try {
    const file = await readConfigFile(configPath);
    const route = file.config.services?.[ROUTED]?.routes?.[0];
    weightsText = (route?.backends ?? []).map((b) => `${b.service} ${b.weight ?? 1}`).join(' / ');
  } catch {
    // The server rejected it too and says why (reload_error); the weights shown stay the last good.
  }
}

async function startControl(): Promise<{ child: ChildProcess; port: number; adminPort: number }> {
  const child = spawn(
    process.execPath,
    [meshletBin, 'control', '--config', configPath, '--port', '0', '--admin-port', '0', '--host', '127.0.0.1'],
    { stdio: ['ignore', 'pipe', 'pipe'] },
  );
  children.push(child);
  let stderr = '';
  child.stderr!.on('data', (b: Buffer) => (stderr += b.toString()));
  const lines = createInterface({ input: child.stdout! });
  return new Promise((resolve, reject) => {
    child.once('exit', (code) => reject(new Error(`meshlet control exited with code ${code}: ${stderr.trim()}`)));
    // Its logs are JSON lines; the demo shows the few that tell the story.
    lines.on('line', (text) => {
      let log: { event?: string; port?: number; adminPort?: number; version?: string; err?: string } & Record<
        string,
        unknown
      >;
      try {
        log = JSON.parse(text) as typeof log;
      } catch {
        return;
      }
      switch (log.event) {
        case 'start':
          resolve({ child, port: log.port!, adminPort: log.adminPort! });
          break;
        case 'reload':
          void readWeights().then(() => controlEvent(`${path.basename(configPath)} reloaded: ${weightsText}`));
          break;
        case 'reload_error':
          controlEvent(
            `${path.basename(configPath)} rejected, last good config kept: ${String(log.err).split('\n')[0]}`,
          );
          break;
        case 'registration':
          controlEvent(`registered ${String(log.service)} ${String(log.address)}`);
          break;
        case 'withdrawal':
          controlEvent(`withdrawn ${String(log.service)} ${String(log.address)} (${String(log.reason)})`);
          break;
      }
    });
  });
}

async function startBackend(
  spec: (typeof specs)[number],
  control: string,
): Promise<{ child: ChildProcess; address: string }> {
  const child = spawn(
    process.execPath,
    ['--import', 'tsx', backendFile, spec.name, String(spec.delayMs), String(spec.failPercent), spec.service, control],
    // stdin is a pipe only so the backend notices when this process is gone (its end closes).
    { stdio: ['pipe', 'pipe', 'inherit'] },
  );
  children.push(child);
  const [chunk] = (await once(child.stdout!, 'data')) as [Buffer];
  return { child, address: `127.0.0.1:${Number(chunk.toString().trim())}` };
}

const control = await startControl();
const controlAddress = `127.0.0.1:${control.port}`;
await readWeights();
const backends = await Promise.all(specs.map((s) => startBackend(s, controlAddress)));
const nameOf = new Map<string, string>();
for (let i = 0; i < specs.length; i++) nameOf.set(backends[i]!.address, specs[i]!.name);

// --- the client -----------------------------------------------------------------------------------

const mesh = createMesh({
  service: 'demo-client',
  discovery: [controlPlane({ address: controlAddress })],
  statsWindowMs: STATS_WINDOW_MS,
});
await mesh.ready();
// The backends registered before this client connected; wait until the pushed config lists them all.
for (let i = 0; i < 250 && !allRegistered(mesh.stats()); i++) await new Promise((r) => setTimeout(r, 20));
const fetch = createMeshFetch(mesh);

function allRegistered(stats: MeshStats): boolean {
  const seen = new Set(VERSIONS.flatMap((s) => (stats.services[s]?.endpoints ?? []).map((e) => e.address)));
  return [...nameOf.keys()].every((a) => seen.has(a));
}

let sent = 0;
let ok = 0;
let failed = 0;
const errors = new Map<string, number>();
let stopping = false;
/** Durations of the calls that ended in the current second (whole calls, retries included). */
let callMs: number[] = [];

async function one(): Promise<void> {
  sent++;
  const t0 = performance.now();
  try {
    const res = await fetch(`http://${ROUTED}/items`);
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
  callMs.push(performance.now() - t0);
}

// --- the table ------------------------------------------------------------------------------------

const pad = (s: string | number, n: number): string => String(s).padStart(n);
const NO_DATA = '—';
/** A latency percentile, or "—" when the window holds no sample (the stats report 0 then). */
const ms = (value: number, samples: number): string => (samples === 0 ? NO_DATA : value.toFixed(1));
const percentile = (xs: number[], p: number): string => {
  if (xs.length === 0) return NO_DATA;
  const s = [...xs].sort((a, b) => a - b);
  return s[Math.min(s.length - 1, Math.ceil(p * s.length) - 1)]!.toFixed(1);
};

const windowText = `${STATS_WINDOW_MS / 1000}–${(2 * STATS_WINDOW_MS) / 1000} s`;
const legend = [
  `meshlet demo: ${RATE} req/s for ${SECONDS} s to http://${ROUTED}/ through createMeshFetch, configured by`,
  `a control server (meshlet control --config ${path.relative(process.cwd(), configPath)}, admin on 127.0.0.1:${control.adminPort}:`,
  `try "npx meshlet status --control 127.0.0.1:${control.adminPort}" in another terminal). The backends registered`,
  `themselves. Edit the canary weights in that file while this runs and watch the "canary" line follow.`,
  `Backends: fast ~2 ms, slow ~80 ms, flaky ~2 ms but answers 503 to 40% of requests (catalog-v1); canary ~2 ms (catalog-v2).`,
  `Policies (from the file): p2c-ewma, up to 3 attempts per call within the retry budget, 2 s deadline, outlier detection:`,
  ` 3 failures in a row eject an endpoint for 3 s, longer if it is ejected again soon, at most 6 s.`,
  '',
  'caller line  what the application sees, per second: calls, % answered 200 (after retries), p50/p99 of those calls;',
  '             then totals: retries sent and retries the budget refused (both versions)',
  "canary       share of the last second's calls each version got, and the weights the control server last loaded",
  'endpoint     service, backend name and address',
  'att/s        attempts sent to the endpoint in the last second (first tries and retries)',
  'success      % of those attempts that succeeded (a 503 is a failure); "-" when none was sent',
  `p50/p99 ms   attempt latency percentiles over the recent window (${windowText}); "${NO_DATA}" when it holds no attempt`,
  'ewma ms      the peak-EWMA latency the balancer compares: jumps to a slow answer, then decays toward the',
  "             service's typical latency; a failed attempt counts as 5 × that typical latency",
  'state        healthy | ejected (by outlier detection, gets no traffic) | open, half-open (circuit breaker)',
  'ejections    how many times outlier detection has ejected the endpoint so far',
  'control      the last things the control server did (reloads of the file, registrations, withdrawals)',
  '',
];

let last: MeshStats | undefined;
let lastOk = 0;
let lastFailed = 0;
let second = 0;

function endpointLine(service: string, ep: EndpointStats, before: EndpointStats | undefined): string {
  const reqs = ep.requests - (before?.requests ?? 0);
  const fails = ep.failures - (before?.failures ?? 0);
  const success = reqs === 0 ? '-' : `${(((reqs - fails) / reqs) * 100).toFixed(1)}%`;
  const label = `${service} ${nameOf.get(ep.address) ?? '?'} ${ep.address}`;
  return (
    `${label.padEnd(35)}${pad(reqs, 6)}${pad(success, 9)}` +
    `${pad(ms(ep.latencyMs.p50, ep.recentRequests), 8)}${pad(ms(ep.latencyMs.p99, ep.recentRequests), 8)}` +
    `${pad(ep.ewmaMs.toFixed(1), 8)}  ${ep.state.padEnd(9)}${pad(ep.ejections, 10)}`
  );
}

function render(): void {
  second++;
  const stats = mesh.stats();
  const okNow = ok - lastOk;
  const failedNow = failed - lastFailed;
  lastOk = ok;
  lastFailed = failed;
  const calls = callMs;
  callMs = [];
  let retries = 0;
  let refused = 0;
  const perVersion = VERSIONS.map((s) => {
    const svc = stats.services[s];
    retries += svc?.retries ?? 0;
    refused += svc?.retriesSkippedByBudget ?? 0;
    return (svc?.requests ?? 0) - (last?.services[s]?.requests ?? 0);
  });
  const routed = perVersion.reduce((a, b) => a + b, 0);
  const lines: string[] = [];
  lines.push(
    `${pad(second, 3)}s caller: ${pad(okNow + failedNow, 4)} calls/s, ` +
      `${pad(((okNow / Math.max(1, okNow + failedNow)) * 100).toFixed(1), 5)}% ok, ` +
      `p50 ${percentile(calls, 0.5)} ms, p99 ${percentile(calls, 0.99)} ms ` +
      `(total ${ok}/${ok + failed}, retries ${retries}, refused by budget ${refused})`,
  );
  lines.push(
    `     canary: ` +
      VERSIONS.map(
        (s, i) =>
          `${s} ${routed === 0 ? NO_DATA : `${((perVersion[i]! / routed) * 100).toFixed(1)}%`} (${perVersion[i]}/s)`,
      ).join(', ') +
      `   weights: ${weightsText}`,
  );
  lines.push(
    `     ${'endpoint'.padEnd(35)}${pad('att/s', 6)}${pad('success', 9)}${pad('p50 ms', 8)}${pad('p99 ms', 8)}` +
      `${pad('ewma ms', 8)}  ${'state'.padEnd(9)}${pad('ejections', 10)}`,
  );
  for (const s of VERSIONS) {
    const before = new Map((last?.services[s]?.endpoints ?? []).map((e) => [e.address, e]));
    for (const ep of stats.services[s]?.endpoints ?? [])
      lines.push(`     ${endpointLine(s, ep, before.get(ep.address))}`);
  }
  if (errors.size) lines.push(`     caller errors: ${[...errors].map(([k, v]) => `${k}×${v}`).join(', ')}`);
  for (const e of controlEvents) lines.push(`     control ${e}`);
  last = stats;
  // A terminal is redrawn in place (legend on top); a pipe or file gets the legend once, then every table.
  if (process.stdout.isTTY) process.stdout.write(`\x1b[2J\x1b[H${legend.join('\n')}\n`);
  process.stdout.write(lines.join('\n') + '\n\n');
}

if (!process.stdout.isTTY) process.stdout.write(legend.join('\n') + '\n');

// Open-loop traffic at RATE requests per second.
const t0 = performance.now();
trafficStart = t0;
const inflight = new Set<Promise<void>>();
const tick = setInterval(() => {
  const due = Math.floor(((performance.now() - t0) / 1000) * RATE) - sent;
  for (let i = 0; i < due && !stopping; i++) {
    const p = one().finally(() => inflight.delete(p));
    inflight.add(p);
  }
}, 10);
const table = setInterval(render, 1000);

async function stopChild(child: ChildProcess, graceMs: number): Promise<void> {
  if (child.exitCode !== null || child.signalCode !== null) return;
  const exited = once(child, 'exit');
  child.kill('SIGTERM');
  const timer = setTimeout(() => child.kill('SIGKILL'), graceMs);
  await exited;
  clearTimeout(timer);
}

async function stop(): Promise<void> {
  if (stopping) return;
  stopping = true;
  clearTimeout(endTimer);
  clearInterval(tick);
  clearInterval(table);
  await Promise.allSettled(inflight);
  render();
  const stats = mesh.stats();
  const rate = ((ok / Math.max(1, ok + failed)) * 100).toFixed(2);
  const flaky = stats.services['catalog-v1']?.endpoints.find((e) => nameOf.get(e.address) === 'flaky');
  const [v1, v2] = VERSIONS.map((s) => stats.services[s]?.requests ?? 0);
  console.log(
    `done: ${ok + failed} calls, ${rate}% answered 200 as seen by the caller; ` +
      `the flaky backend was ejected ${flaky?.ejections ?? 0} time(s); ` +
      `catalog-v2 (the canary) got ${((v2! / Math.max(1, v1! + v2!)) * 100).toFixed(1)}% of calls.`,
  );
  await mesh.close();
  // Backends first: each withdraws its registration while the control server still runs.
  await Promise.all(backends.map((b) => stopChild(b.child, 3000)));
  await stopChild(control.child, 7000);
}

process.once('SIGINT', () => void stop());
const endTimer = setTimeout(() => void stop(), SECONDS * 1000);
