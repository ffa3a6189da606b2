/**
 * The gRPC benchmark's call-by-call comparison at concurrency 1 (a child process of bench/grpc.ts):
 * a raw grpc-js client and a meshlet client over the same three servers, in one process, calling
 * in strict alternation (raw then meshlet, then meshlet then raw, …) so that whatever else the
 * machine does falls on both sides alike. On a shared machine, where one round of the closed loop
 * can run at half the speed of the next, this pairs calls microseconds apart instead of rounds
 * seconds apart.
 *
 * Per call: its latency, and the process's CPU time (user + system, `process.cpuUsage()`) spent
 * between its start and its end; at concurrency 1 nothing else runs in the process meanwhile, so
 * that is the call's own client CPU. Reported: p50/p99 of each side, the median of the per-pair
 * latency differences and the mean CPU difference, and the same over `SLICES` consecutive time
 * slices (their agreement decides a verdict).
 *
 * argv: <targets JSON> <kind: unary|stream> <warm-up ms> <measured ms>; the result goes to the
 * parent over IPC ({ type: 'paired', result } or { type: 'fatal', message }).
 */
import { createHistogram } from 'node:perf_hooks';
import type { BenchClient } from './lib/types.ts';
import { setup as rawSetup } from './grpc-client-raw.ts';
import { setup as meshSetup } from './grpc-client-meshlet.ts';
import { callKind, type CallKind } from './grpc-common.ts';

/** Time slices the measured pairs are split into for the verdict's agreement. */
export const SLICES = 8;

export interface PairedSide {
  p50Us: number;
  p99Us: number;
  /** Mean client CPU per call, µs. */
  cpuUs: number;
}

export interface PairedResult {
  kind: CallKind;
  pairs: number;
  errors: { raw: number; meshlet: number; first: string | undefined };
  raw: PairedSide;
  meshlet: PairedSide;
  /** Median over pairs of (meshlet − raw) latency, µs. */
  deltaP50Us: number;
  /** Mean over pairs of (meshlet − raw) CPU, µs (a mean: one call's CPU reading is coarse). */
  deltaCpuUs: number;
  /** Per time slice: median latency difference and mean CPU difference, µs. */
  slices: Array<{ deltaP50Us: number; deltaCpuUs: number }>;
}

const epoch = process.hrtime.bigint();
const nowNs = (): number => Number(process.hrtime.bigint() - epoch);
const cpuUs = (): number => {
  const u = process.cpuUsage();
  return u.user + u.system;
};

function median(values: Float64Array | number[]): number {
  const sorted = Float64Array.from(values).sort();
  if (sorted.length === 0) return 0;
  const mid = sorted.length >> 1;
  return sorted.length % 2 === 1 ? sorted[mid] : (sorted[mid - 1] + sorted[mid]) / 2;
}

async function run(targets: string[], kind: CallKind, warmupMs: number, measuredMs: number): Promise<PairedResult> {
  const clients: [BenchClient, BenchClient] = [
    await rawSetup({ targets, path: kind }),
    await meshSetup({ targets, path: kind }),
  ];
  const errors = { raw: 0, meshlet: 0, first: undefined as string | undefined };
  // Growable per-side sample arrays (latency ns, CPU µs), one slot per pair.
  let cap = 1 << 14;
  let lat: Float64Array[] = [new Float64Array(cap), new Float64Array(cap)];
  let cpu: Float64Array[] = [new Float64Array(cap), new Float64Array(cap)];
  let pairs = 0;

  const one = async (side: 0 | 1): Promise<[number, number] | undefined> => {
    const c0 = cpuUs();
    const t0 = nowNs();
    try {
      await clients[side].send();
    } catch (err) {
      if (side === 0) errors.raw++;
      else errors.meshlet++;
      errors.first ??= err instanceof Error ? err.message : String(err);
      return undefined;
    }
    return [nowNs() - t0, cpuUs() - c0];
  };

  try {
    const warmEnd = Date.now() + warmupMs;
    for (let i = 0; Date.now() < warmEnd; i++) await one((i & 1) as 0 | 1);
    const end = Date.now() + measuredMs;
    for (let i = 0; Date.now() < end; i++) {
      // Alternate which side goes first, so neither always follows the other.
      const first = (i & 1) as 0 | 1;
      const a = await one(first);
      const b = await one((1 - first) as 0 | 1);
      if (a === undefined || b === undefined) continue;
      if (pairs === cap) {
        cap *= 2;
        const grow = (arr: Float64Array): Float64Array => {
          const next = new Float64Array(cap);
          next.set(arr);
          return next;
        };
        lat = lat.map(grow);
        cpu = cpu.map(grow);
      }
      const [raw, mesh] = first === 0 ? [a, b] : [b, a];
      lat[0][pairs] = raw[0];
      lat[1][pairs] = mesh[0];
      cpu[0][pairs] = raw[1];
      cpu[1][pairs] = mesh[1];
      pairs++;
    }
  } finally {
    await Promise.all(clients.map((c) => c.close()));
  }

  const side = (i: 0 | 1): PairedSide => {
    const h = createHistogram({ lowest: 1, highest: 600e9, figures: 3 });
    let cpuSum = 0;
    for (let p = 0; p < pairs; p++) {
      h.record(Math.max(1, Math.round(lat[i][p])));
      cpuSum += cpu[i][p];
    }
    return {
      p50Us: pairs === 0 ? 0 : h.percentile(50) / 1e3,
      p99Us: pairs === 0 ? 0 : h.percentile(99) / 1e3,
      cpuUs: pairs === 0 ? 0 : cpuSum / pairs,
    };
  };
  const dLat = new Float64Array(pairs);
  const dCpu = new Float64Array(pairs);
  for (let p = 0; p < pairs; p++) {
    dLat[p] = (lat[1][p] - lat[0][p]) / 1e3;
    dCpu[p] = cpu[1][p] - cpu[0][p];
  }
  const slices: PairedResult['slices'] = [];
  const per = Math.floor(pairs / SLICES);
  for (let s = 0; per > 0 && s < SLICES; s++) {
    const from = s * per;
    const cpuSlice = dCpu.subarray(from, from + per);
    let sum = 0;
    for (const v of cpuSlice) sum += v;
    slices.push({ deltaP50Us: median(dLat.subarray(from, from + per)), deltaCpuUs: sum / per });
  }
  return {
    kind,
    pairs,
    errors,
    raw: side(0),
    meshlet: side(1),
    deltaP50Us: median(dLat),
    deltaCpuUs: pairs === 0 ? 0 : dCpu.reduce((a, b) => a + b, 0) / pairs,
    slices,
  };
}

const [targetsJson, kindArg, warmupArg, measuredArg] = process.argv.slice(2);
run(JSON.parse(targetsJson ?? '[]') as string[], callKind(kindArg ?? ''), Number(warmupArg), Number(measuredArg)).then(
  (result) => {
    process.send?.({ type: 'paired', result }, () => process.exit(0));
  },
  (err: unknown) => {
    process.send?.({ type: 'fatal', message: err instanceof Error ? (err.stack ?? err.message) : String(err) }, () =>
      process.exit(1),
    );
  },
);
