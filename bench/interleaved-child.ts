/**
 * One interleaved comparison (a child process of bench/interleaved.ts): a raw client and a meshlet
 * client of the same form, over the same upstreams, in ONE process, measured in alternating time
 * slices at the same concurrency (raw then meshlet, then meshlet then raw, …). Each pair of
 * adjacent slices gives one throughput ratio and one client-CPU difference, taken a few hundred
 * milliseconds apart under the same machine conditions; on a shared 2-core machine whose speed
 * drifts by tens of percent between rounds seconds apart, this pairs like with like.
 *
 * A slice is a closed loop: `concurrency` workers each send the next request when the last one
 * finished, until the slice's time is up; the slice ends when the last request in flight has
 * finished, and its throughput is completed requests over that whole span, its CPU the process's
 * user + system time over the same span, per request. Garbage one slice leaves may be collected in
 * the next: the alternating order spreads that over both sides.
 *
 * argv: <spec JSON> (InterleavedSpec); the result goes to the parent over IPC
 * ({ type: 'interleaved', result } or { type: 'fatal', message }).
 */
import { pathToFileURL } from 'node:url';
import type { BenchClient, ClientModule } from './lib/types.ts';

export interface InterleavedSpec {
  /** Row label, e.g. `fetch` or `gRPC unary`. */
  label: string;
  /** Module paths (absolute) exporting `setup` (bench/lib/types.ts ClientModule). */
  raw: string;
  meshlet: string;
  /** The upstreams and the request path (or gRPC call kind). */
  targets: string[];
  path: string;
  concurrency: number;
  /** Warm-up, alternating sides, before the measured slices. */
  warmupMs: number;
  sliceMs: number;
  /** Measured pairs of slices. */
  pairs: number;
}

export interface InterleavedPair {
  /** meshlet ÷ raw requests per second. */
  ratio: number;
  /** meshlet − raw client CPU µs per request. */
  deltaCpuUs: number;
}

export interface InterleavedSide {
  /** Median over slices. */
  perSec: number;
  cpuUs: number;
}

export interface InterleavedResult {
  spec: InterleavedSpec;
  pairs: InterleavedPair[];
  raw: InterleavedSide;
  meshlet: InterleavedSide;
  errors: { raw: number; meshlet: number; first: string | undefined };
}

const cpuNowUs = (): number => {
  const u = process.cpuUsage();
  return u.user + u.system;
};

export function median(values: number[]): number {
  if (values.length === 0) return Number.NaN;
  const s = [...values].sort((a, b) => a - b);
  const mid = s.length >> 1;
  return s.length % 2 === 1 ? s[mid] : (s[mid - 1] + s[mid]) / 2;
}

async function slice(
  client: BenchClient,
  concurrency: number,
  ms: number,
  onError: (err: unknown) => void,
): Promise<{ perSec: number; cpuUs: number }> {
  let done = 0;
  const t0 = performance.now();
  const c0 = cpuNowUs();
  const end = t0 + ms;
  const worker = async (): Promise<void> => {
    while (performance.now() < end) {
      try {
        await client.send();
        done++;
      } catch (err) {
        onError(err);
      }
    }
  };
  const workers: Array<Promise<void>> = [];
  for (let i = 0; i < concurrency; i++) workers.push(worker());
  await Promise.all(workers);
  const elapsedMs = performance.now() - t0;
  const cpu = cpuNowUs() - c0;
  return { perSec: done === 0 ? 0 : (done * 1000) / elapsedMs, cpuUs: done === 0 ? 0 : cpu / done };
}

async function run(spec: InterleavedSpec): Promise<InterleavedResult> {
  const load = async (file: string): Promise<BenchClient> =>
    ((await import(pathToFileURL(file).href)) as ClientModule).setup({ targets: spec.targets, path: spec.path });
  const clients: [BenchClient, BenchClient] = [await load(spec.raw), await load(spec.meshlet)];
  const errors = { raw: 0, meshlet: 0, first: undefined as string | undefined };
  const onError = (side: 0 | 1) => (err: unknown) => {
    if (side === 0) errors.raw++;
    else errors.meshlet++;
    errors.first ??= err instanceof Error ? err.message : String(err);
  };
  const pairs: InterleavedPair[] = [];
  const rawSlices: Array<{ perSec: number; cpuUs: number }> = [];
  const meshSlices: Array<{ perSec: number; cpuUs: number }> = [];
  try {
    // Warm-up: both sides, alternating, in slices of the measured length.
    const warmEnd = performance.now() + spec.warmupMs;
    for (let i = 0; performance.now() < warmEnd; i++) {
      const side = (i & 1) as 0 | 1;
      await slice(clients[side], spec.concurrency, spec.sliceMs, onError(side));
    }
    errors.raw = errors.meshlet = 0;
    errors.first = undefined;
    for (let p = 0; p < spec.pairs; p++) {
      const first = (p & 1) as 0 | 1;
      const a = await slice(clients[first], spec.concurrency, spec.sliceMs, onError(first));
      const b = await slice(clients[1 - first], spec.concurrency, spec.sliceMs, onError((1 - first) as 0 | 1));
      const [raw, mesh] = first === 0 ? [a, b] : [b, a];
      rawSlices.push(raw);
      meshSlices.push(mesh);
      pairs.push({ ratio: raw.perSec === 0 ? 0 : mesh.perSec / raw.perSec, deltaCpuUs: mesh.cpuUs - raw.cpuUs });
    }
  } finally {
    await Promise.all(clients.map((c) => c.close()));
  }
  const side = (slices: Array<{ perSec: number; cpuUs: number }>): InterleavedSide => ({
    perSec: median(slices.map((s) => s.perSec)),
    cpuUs: median(slices.map((s) => s.cpuUs)),
  });
  return { spec, pairs, raw: side(rawSlices), meshlet: side(meshSlices), errors };
}

if (process.argv[1] !== undefined && import.meta.url === pathToFileURL(process.argv[1]).href) {
  run(JSON.parse(process.argv[2] ?? '{}') as InterleavedSpec).then(
    (result) => {
      process.send?.({ type: 'interleaved', result }, () => process.exit(0));
    },
    (err: unknown) => {
      process.send?.({ type: 'fatal', message: err instanceof Error ? (err.stack ?? err.message) : String(err) }, () =>
        process.exit(1),
      );
    },
  );
}
