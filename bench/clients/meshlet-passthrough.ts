/**
 * The mesh dispatcher with requests to plain `127.0.0.1:<port>` origins (not a mesh service):
 * the cost of the dispatcher's passthrough path, round robin by hand like the baseline.
 */
import { meshletRequestClient } from '../lib/meshlet-client.ts';
import type { BenchClient, ClientSetupOptions } from '../lib/types.ts';

export async function setup({ targets, path }: ClientSetupOptions): Promise<BenchClient> {
  return meshletRequestClient(
    { endpoints: targets },
    targets.map((target) => `http://${target}${path}`),
  );
}
