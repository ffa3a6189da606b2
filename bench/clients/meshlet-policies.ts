/** The default service config: balancer, retries with a budget, circuit breaker, outlier detection. No OTel SDK. */
import { meshletRequestClient, SERVICE } from '../lib/meshlet-client.ts';
import type { BenchClient, ClientSetupOptions } from '../lib/types.ts';

export async function setup({ targets, path }: ClientSetupOptions): Promise<BenchClient> {
  return meshletRequestClient({ endpoints: targets }, [`http://${SERVICE}${path}`]);
}
