// Shared by the inbound-adapter tests.
import { setTimeout as sleep } from 'node:timers/promises';
import type { MeshError } from '@meshlet/core';
import type { MeshFetch } from '@meshlet/http';

/**
 * Polls `fn` until it returns a value: span export and stats lag the client's response slightly.
 * At most 10 s, a bound for a loaded machine (it returns as soon as the value is there).
 */
export async function eventually<T>(fn: () => T | undefined, what: string, timeoutMs = 10_000): Promise<T> {
  const until = performance.now() + timeoutMs;
  for (;;) {
    const v = fn();
    if (v !== undefined) return v;
    if (performance.now() > until) throw new Error(`timed out after ${timeoutMs} ms waiting for ${what}`);
    await sleep(10);
  }
}

/** How an outbound call made from inside a handler ended: its status (0: it failed) and error code. */
export interface CallResult {
  status: number;
  code?: string;
  ms: number;
}

/** Calls `http://backend<path>` through the mesh from inside a handler and reports how it ended. */
export async function callBackend(fetch: MeshFetch, path: string): Promise<CallResult> {
  const t0 = performance.now();
  try {
    const r = await fetch(`http://backend${path}`);
    await r.text();
    return { status: r.status, ms: performance.now() - t0 };
  } catch (err) {
    return { status: 0, code: (err as MeshError).code ?? (err as Error).name, ms: performance.now() - t0 };
  }
}
