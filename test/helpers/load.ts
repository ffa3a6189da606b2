// Load generation and outcome helpers shared by the end-to-end tests.
import { setTimeout as sleep } from 'node:timers/promises';
import { MeshError, type createMesh } from '@meshlet/core';
import type { MeshFetch } from '@meshlet/http';

/** The mesh type, whatever the package names it. */
export type Mesh = ReturnType<typeof createMesh>;

/** The result of one call, with its errors caught. */
export type Outcome =
  | { ok: true; status: number; body: string; server: string | null; ms: number }
  | { ok: false; error: unknown; code: string | undefined; ms: number };

type FetchLike = MeshFetch;
type FetchInit = Parameters<MeshFetch>[1];

/** One call through `fetch`, body consumed; never throws. `ms` covers the call and the body. */
export async function call(fetch: FetchLike, url: string, init?: FetchInit): Promise<Outcome> {
  const start = performance.now();
  try {
    const res = await fetch(url, init);
    const body = await res.text();
    return { ok: true, status: res.status, body, server: res.headers.get('x-server'), ms: performance.now() - start };
  } catch (error) {
    return { ok: false, error, code: meshCode(error), ms: performance.now() - start };
  }
}

/** The `code` of a MeshError, else undefined. */
export function meshCode(err: unknown): string | undefined {
  return err instanceof MeshError ? err.code : undefined;
}

/** Runs `fn(0..total-1)` with at most `concurrency` in flight; results in index order. */
export async function runConcurrent<T>(
  total: number,
  concurrency: number,
  fn: (i: number) => Promise<T>,
): Promise<T[]> {
  const results = new Array<T>(total);
  let next = 0;
  const worker = async (): Promise<void> => {
    while (next < total) {
      const i = next++;
      results[i] = await fn(i);
    }
  };
  await Promise.all(Array.from({ length: Math.min(concurrency, total) }, worker));
  return results;
}

/**
 * Starts `fn(i)` at a steady `ratePerSec` until `total` calls were started (paced by a timer, not
 * all at once), then waits for all of them.
 */
export async function runPaced<T>(total: number, ratePerSec: number, fn: (i: number) => Promise<T>): Promise<T[]> {
  const pending: Promise<T>[] = [];
  const start = performance.now();
  while (pending.length < total) {
    const due = Math.min(total, Math.floor(((performance.now() - start) * ratePerSec) / 1000) + 1);
    while (pending.length < due) pending.push(fn(pending.length));
    await sleep(5);
  }
  return Promise.all(pending);
}

/** Counts of each distinct value. */
export function tally(values: Iterable<string>): Map<string, number> {
  const m = new Map<string, number>();
  for (const v of values) m.set(v, (m.get(v) ?? 0) + 1);
  return m;
}

/** A short description of unexpected outcomes for assertion messages. */
export function describeFailures(outcomes: readonly Outcome[], max = 5): string {
  const bad = outcomes.filter((o) => !o.ok || o.status !== 200).slice(0, max);
  return bad
    .map((o) =>
      o.ok ? `status ${o.status} body ${o.body.slice(0, 80)}` : `${o.code ?? 'no code'}: ${String(o.error)}`,
    )
    .join('; ');
}

/**
 * The attempts ÷ calls bar of an outage run, allowing for a run a loaded machine stretched. Besides
 * `ratio` × calls, the retry budget's reserve adds up to `minPerSecond` retries per second of the
 * run: that is the budget working as designed, but a run meant to last `plannedMs` that took longer
 * (the callers started or were answered late) got that much more reserve. Only that excess is
 * added to `bar`; a run on time is held to `bar` itself.
 */
export function outageBar(bar: number, calls: number, plannedMs: number, tookMs: number, minPerSecond = 10): number {
  return bar + (minPerSecond * Math.max(0, tookMs - plannedMs)) / 1000 / calls;
}
