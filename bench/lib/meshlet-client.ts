/** The meshlet setups share this: a mesh over the targets as service `upstream`, and `undici.request` through its dispatcher. */
import { createMesh, type MeshOptions, type ServiceConfig } from '@meshlet/core';
import { createMeshDispatcher } from '@meshlet/http';
import { request } from 'undici';
import type { BenchClient } from './types.ts';

export const SERVICE = 'upstream';

/**
 * `urls` are requested in turn (one `http://upstream/...` URL for the mesh setups; the raw
 * endpoint URLs for the passthrough setup, round robin by hand like the baseline).
 */
export function meshletRequestClient(
  service: ServiceConfig,
  urls: string[],
  telemetry?: MeshOptions['telemetry'],
  onClose?: () => Promise<void>,
): BenchClient {
  const mesh = createMesh({ services: { [SERVICE]: service }, ...(telemetry === undefined ? {} : { telemetry }) });
  const dispatcher = createMeshDispatcher(mesh);
  let next = 0;
  return {
    async send() {
      const url = urls[next];
      next = next + 1 === urls.length ? 0 : next + 1;
      const { statusCode, body } = await request(url, { dispatcher });
      await body.arrayBuffer();
      if (statusCode !== 200) throw new Error(`HTTP ${statusCode}`);
    },
    async close() {
      await mesh.close();
      await onClose?.();
    },
  };
}
