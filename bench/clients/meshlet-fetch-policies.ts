/**
 * The mesh `fetch` form with the default service config (P2C over peak EWMA, retries with a
 * budget, deadline, circuit breaker, outlier detection) and no OpenTelemetry SDK: what the fetch
 * goal of issue 6 holds against raw undici `fetch` over the same upstreams.
 */
import { meshletFetchClient } from '../lib/meshlet-client.ts';
import type { BenchClient, ClientSetupOptions } from '../lib/types.ts';

export async function setup({ targets, path }: ClientSetupOptions): Promise<BenchClient> {
  return meshletFetchClient({ endpoints: targets }, path);
}
