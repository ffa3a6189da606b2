/**
 * The demo mesh: three local backends (fast, slow, flaky), steady traffic through
 * createMeshFetch for ~20 s (DEMO_SECONDS, or until Ctrl-C), and a live table from
 * mesh.stats() every second. Watch the caller's success rate stay near 100% while the
 * flaky backend fails, and the slow backend get little traffic.
 */
import { spawn, type ChildProcess } from 'node:child_process';
import { once } from 'node:events';
import { fileURLToPath } from 'node:url';
import { createMesh, type MeshStats } from '@meshlet/core';
import { createMeshFetch } from '@meshlet/http';

const SECONDS = Number(process.env.DEMO_SECONDS ?? 20);
const RATE = Number(process.env.DEMO_RPS ?? 300);
const backendFile = fileURLToPath(new URL('./backend.ts', import.meta.url));

const specs = [
  { name: 'fast', delayMs: 2, failPercent: 0 },
  { name: 'slow', delayMs: 80, failPercent: 0 },
  { name: 'flaky', delayMs: 2, failPercent: 40 },
];

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
    },
  },
  statsWindowMs: 2000,
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

let last: MeshStats | undefined;
let lastOk = 0;
let lastFailed = 0;
let second = 0;
const pad = (s: string | number, n: number): string => String(s).padStart(n);

function render(): void {
  second++;
  const stats = mesh.stats();
  const svc = stats.services.catalog;
  const prev = last?.services.catalog;
  const okNow = ok - lastOk;
  const failedNow = failed - lastFailed;
  lastOk = ok;
  lastFailed = failed;
  const lines: string[] = [];
  lines.push(
    `meshlet demo — ${second}s / ${SECONDS}s — ${RATE} req/s to http://catalog/ (p2c-ewma, retries with budget)`,
  );
  lines.push('');
  lines.push(
    `caller: ${pad(okNow + failedNow, 4)} req/s  success ${pad(((okNow / Math.max(1, okNow + failedNow)) * 100).toFixed(1), 5)}%  ` +
      `(total ${ok}/${ok + failed})  retries ${svc.retries} (skipped by budget ${svc.retriesSkippedByBudget})  ` +
      `p50 ${svc.latencyMs.p50.toFixed(1)} ms  p99 ${svc.latencyMs.p99.toFixed(1)} ms`,
  );
  lines.push('');
  lines.push(
    `${'endpoint'.padEnd(24)}${pad('req/s', 7)}${pad('success', 9)}${pad('p50 ms', 9)}${pad('p99 ms', 9)}${pad('ewma ms', 9)}  state`,
  );
  for (const ep of svc.endpoints) {
    const before = prev?.endpoints.find((e) => e.address === ep.address);
    const reqs = ep.requests - (before?.requests ?? 0);
    const fails = ep.failures - (before?.failures ?? 0);
    const success = reqs === 0 ? '-' : `${(((reqs - fails) / reqs) * 100).toFixed(1)}%`;
    const label = `${nameOf.get(ep.address) ?? '?'} ${ep.address}`;
    lines.push(
      `${label.padEnd(24)}${pad(reqs, 7)}${pad(success, 9)}${pad(ep.latencyMs.p50.toFixed(1), 9)}${pad(
        ep.latencyMs.p99.toFixed(1),
        9,
      )}${pad(ep.ewmaMs.toFixed(1), 9)}  ${ep.state}${ep.ejections ? ` (ejected ${ep.ejections}×)` : ''}`,
    );
  }
  if (errors.size) lines.push('', `caller errors: ${[...errors].map(([k, v]) => `${k}×${v}`).join(', ')}`);
  last = stats;
  if (process.stdout.isTTY) process.stdout.write('\x1b[2J\x1b[H');
  process.stdout.write(lines.join('\n') + '\n\n');
}

const table = setInterval(render, 1000);

async function stop(): Promise<void> {
  if (stopping) return;
  stopping = true;
  clearInterval(tick);
  clearInterval(table);
  await Promise.allSettled(inflight);
  render();
  const rate = ((ok / Math.max(1, ok + failed)) * 100).toFixed(2);
  console.log(`done: ${ok + failed} requests, ${rate}% succeeded as seen by the caller.`);
  await mesh.close();
  stopAll();
}

process.once('SIGINT', () => void stop());
setTimeout(() => void stop(), SECONDS * 1000);
