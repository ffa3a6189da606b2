/**
 * The full stack: default policies plus an OpenTelemetry SDK (metrics and always-sampled
 * spans, no-op export), registered globally and handed to the mesh, as an application would.
 */
import { meshletRequestClient, SERVICE } from '../lib/meshlet-client.ts';
import { startOtelSdk } from '../lib/otel-sdk.ts';
import type { BenchClient, ClientSetupOptions } from '../lib/types.ts';

export async function setup({ targets, path }: ClientSetupOptions): Promise<BenchClient> {
  const sdk = startOtelSdk();
  return meshletRequestClient(
    { endpoints: targets },
    [`http://${SERVICE}${path}`],
    { meterProvider: sdk.meterProvider, tracerProvider: sdk.tracerProvider },
    () => sdk.shutdown(),
  );
}
