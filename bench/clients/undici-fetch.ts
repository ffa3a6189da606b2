/** Baseline for fetch: raw undici `fetch`, one Pool per target, round robin by hand. */
import { Pool, fetch } from 'undici';
import type { BenchClient, ClientSetupOptions } from '../lib/types.ts';

export async function setup({ targets, path }: ClientSetupOptions): Promise<BenchClient> {
  const pools = targets.map((target) => new Pool(`http://${target}`));
  const urls = targets.map((target) => `http://${target}${path}`);
  let next = 0;
  return {
    async send() {
      const i = next;
      next = i + 1 === pools.length ? 0 : i + 1;
      const res = await fetch(urls[i], { dispatcher: pools[i] });
      await res.arrayBuffer();
      if (res.status !== 200) throw new Error(`HTTP ${res.status}`);
    },
    async close() {
      await Promise.all(pools.map((pool) => pool.close()));
    },
  };
}
