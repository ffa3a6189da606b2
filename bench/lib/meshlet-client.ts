/**
 * The meshlet setups share this: a mesh over the targets as service `upstream`, called in one of
 * the two forms applications write: `undici.request(url, { dispatcher })` through the mesh
 * dispatcher, or the mesh `fetch` (`createMeshFetch`).
 */
import { createMesh, type MeshOptions, type ServiceConfig } from '@meshlet/core';
import { createMeshDispatcher, createMeshFetch } from '@meshlet/http';
import { request } from 'undici';
import type { BenchClient } from './types.ts';

export const SERVICE = 'upstream';

/**
 * `undici.request(url, { dispatcher })`. `urls` are requested in turn (one `http://upstream/...`
 * URL for the mesh setups; the raw endpoint URLs for the passthrough setup, round robin by hand
 * like the baseline).
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

/** `fetch('http://upstream/...')` with `fetch = createMeshFetch(mesh)`, as an application replaces its fetch. */
export function meshletFetchClient(
  service: ServiceConfig,
  path: string,
  telemetry?: MeshOptions['telemetry'],
  onClose?: () => Promise<void>,
): BenchClient {
  const mesh = createMesh({ services: { [SERVICE]: service }, ...(telemetry === undefined ? {} : { telemetry }) });
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
      await onClose?.();
    },
  };
}
