/** Mesh routing and the default balancer (P2C over peak EWMA) only: no retries, breaker or outlier detection. */
import { meshletRequestClient, SERVICE } from '../lib/meshlet-client.ts';
import type { BenchClient, ClientSetupOptions } from '../lib/types.ts';

export async function setup({ targets, path }: ClientSetupOptions): Promise<BenchClient> {
  return meshletRequestClient(
    {
      endpoints: targets,
      loadBalancer: 'p2c-ewma',
      retry: { maxAttempts: 1 },
      circuitBreaker: { enabled: false },
      outlierDetection: { enabled: false },
    },
    [`http://${SERVICE}${path}`],
  );
}
