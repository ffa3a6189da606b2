/** The full stack (default policies + OTel SDK) through `createMeshFetch`, compared with raw undici `fetch`. */
import { meshletFetchClient } from '../lib/meshlet-client.ts';
import { startOtelSdk } from '../lib/otel-sdk.ts';
import type { BenchClient, ClientSetupOptions } from '../lib/types.ts';

export async function setup({ targets, path }: ClientSetupOptions): Promise<BenchClient> {
  const sdk = startOtelSdk();
  return meshletFetchClient(
    { endpoints: targets },
    path,
    { meterProvider: sdk.meterProvider, tracerProvider: sdk.tracerProvider },
    () => sdk.shutdown(),
  );
}
