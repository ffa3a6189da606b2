/**
 * The `undici.request('http://upstream/…', { dispatcher })` form with the default service config:
 * balancer, retries with a budget, deadline, circuit breaker, outlier detection. No OTel SDK.
 */
import { meshletRequestClient, SERVICE } from '../lib/meshlet-client.ts';
import type { BenchClient, ClientSetupOptions } from '../lib/types.ts';

export async function setup({ targets, path }: ClientSetupOptions): Promise<BenchClient> {
  return meshletRequestClient({ endpoints: targets }, [`http://${SERVICE}${path}`]);
}
