/**
 * Config validation time at growing sizes, to check that it stays linear (the unit tests check
 * only that large configs validate correctly). Not part of `npm run bench`: run by hand after
 * `npm run build`:
 *
 *   node --import tsx --expose-gc bench/config-validate.ts
 *
 * Shapes: one service with N endpoints (half "host:port" strings, half objects with weight, zone
 * and metadata); N/10 services of 10 endpoints, each with a header-regex route to the next; and
 * one service with N endpoints whose last one duplicates the first (the error path). For each
 * it prints the best of several runs in ms and in µs per endpoint; linear validation keeps the
 * µs per endpoint flat as N grows.
 */
import { validateMeshConfig } from '@meshlet/core';

const gc = (globalThis as { gc?: () => void }).gc;

function endpoints(n: number, tag: number): unknown[] {
  const out: unknown[] = [];
  for (let i = 0; i < n; i++) {
    out.push(
      i % 2 === 0
        ? `10.${(i >> 16) & 255}.${(i >> 8) & 255}.${i & 255}:${8000 + (tag % 1000)}`
        : { address: `svc-${tag}-${i}.internal:8080`, weight: 1 + (i % 5), zone: `z${i % 3}`, metadata: { v: '1' } },
    );
  }
  return out;
}

const shapes: Record<string, (n: number) => unknown> = {
  'one service, N endpoints': (n) => ({ services: { users: { endpoints: endpoints(n, 0) } } }),
  'N/10 services x 10 endpoints, routed': (n) => {
    const services: Record<string, unknown> = {};
    const count = n / 10;
    for (let i = 0; i < count; i++) {
      services[`svc-${i}`] = {
        endpoints: endpoints(10, i),
        routes: [
          {
            match: { headers: { 'x-version': { regex: `^v${i % 50}\\.[0-9]+$` } } },
            backends: [{ service: `svc-${(i + 1) % count}` }],
          },
        ],
      };
    }
    return { services };
  },
  'one service, N endpoints, last one duplicated': (n) => {
    const list = endpoints(n, 0);
    list[n - 1] = list[0];
    return { services: { users: { endpoints: list } } };
  },
};

function time(config: unknown): number {
  const run = (): void => {
    try {
      validateMeshConfig(config);
    } catch {
      // the error path is measured too
    }
  };
  for (let i = 0; i < 3; i++) run(); // warm up
  let best = Infinity;
  for (let i = 0; i < 7; i++) {
    gc?.();
    const start = performance.now();
    run();
    best = Math.min(best, performance.now() - start);
  }
  return best;
}

const sizes = [2_500, 5_000, 10_000, 20_000, 40_000];
const rows: Array<Record<string, string | number>> = [];
for (const [name, make] of Object.entries(shapes)) {
  for (const n of sizes) {
    const ms = time(make(n));
    rows.push({
      shape: name,
      endpoints: n,
      ms: Number(ms.toFixed(2)),
      'us/endpoint': Number(((ms * 1000) / n).toFixed(2)),
    });
  }
}
console.table(rows);
if (gc === undefined) console.log('(run with --expose-gc for steadier figures)');
