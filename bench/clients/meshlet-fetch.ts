/** The full stack (default policies + OTel SDK) through `createMeshFetch`, compared with raw undici `fetch`. */
import { createMesh } from '@meshlet/core';
import { createMeshFetch } from '@meshlet/http';
import { SERVICE } from '../lib/meshlet-client.ts';
import { startOtelSdk } from '../lib/otel-sdk.ts';
import type { BenchClient, ClientSetupOptions } from '../lib/types.ts';

export async function setup({ targets, path }: ClientSetupOptions): Promise<BenchClient> {
  const sdk = startOtelSdk();
  const mesh = createMesh({
    services: { [SERVICE]: { endpoints: targets } },
    telemetry: { meterProvider: sdk.meterProvider, tracerProvider: sdk.tracerProvider },
  });
  const fetch = createMeshFetch(mesh);
  const url = `http://${SERVICE}${path}`;
  return {
    async send() {
      const res = await fetch(url);
      await res.arrayBuffer();
      if (res.status !== 200) throw new Error(`HTTP ${res.status}`);
    },
    async close() {
      await mesh.close();
      await sdk.shutdown();
    },
  };
}
