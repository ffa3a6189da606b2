/**
 * Baseline: raw undici `request`, one Pool per target, round robin by hand. Also the client
 * of the HAProxy setups (then its only target is the sidecar).
 */
import { Pool, request } from 'undici';
import type { BenchClient, ClientSetupOptions } from '../lib/types.ts';

export async function setup({ targets, path }: ClientSetupOptions): Promise<BenchClient> {
  // undici's default Pool options, as its global Agent would use: nothing tuned in favour of the baseline.
  const pools = targets.map((target) => new Pool(`http://${target}`));
  const urls = targets.map((target) => `http://${target}${path}`);
  let next = 0;
  return {
    async send() {
      const i = next;
      next = i + 1 === pools.length ? 0 : i + 1;
      const { statusCode, body } = await request(urls[i], { dispatcher: pools[i] });
      await body.arrayBuffer();
      if (statusCode !== 200) throw new Error(`HTTP ${statusCode}`);
    },
    async close() {
      await Promise.all(pools.map((pool) => pool.close()));
    },
  };
}
