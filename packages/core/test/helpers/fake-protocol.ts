// A fake protocol for the call engine's unit tests: no sockets, behaviour per endpoint.
import { after } from 'node:test';
import { createMesh, type Mesh } from '../../src/mesh.js';
import type { Protocol } from '../../src/protocol.js';
import type { Endpoint } from '../../src/endpoint.js';
import { MeshError } from '../../src/errors.js';

export interface FakeReq {
  method: string;
  path: string;
  headers: Record<string, string>;
  replayable?: boolean;
}
export interface FakeRes {
  status: number;
  endpoint: string;
  discarded?: boolean;
}
export type Behaviour = (ep: Endpoint, signal: AbortSignal) => Promise<FakeRes>;

export function fakeProtocol(behaviour: Behaviour, log: string[] = []): Protocol<FakeReq, FakeRes> {
  return {
    name: 'fake',
    durationMetric: 'fake.duration',
    transport: (_req, ctx, ep) => {
      log.push(ep.address);
      return behaviour(ep, ctx.signal);
    },
    classifier: () => ({
      classifyResult: (res) => (res.status === 503 ? 'retryable' : res.status >= 500 ? 'failure' : 'success'),
      classifyError: (err) => ((err as { code?: string }).code === 'ECONNREFUSED' ? 'retryable' : 'failure'),
    }),
    method: (r) => r.method,
    path: (r) => r.path,
    header: (r, name) => r.headers[name],
    replayable: (r) => r.replayable ?? true,
    discard: (res) => {
      res.discarded = true;
    },
    spanName: (r) => r.method,
    attemptAttributes: () => ({}),
    attemptStatus: (res) => res?.status ?? 'error',
  };
}

export const get = (path = '/', headers: Record<string, string> = {}): FakeReq => ({ method: 'GET', path, headers });
export const ok = (ep: Endpoint): Promise<FakeRes> => Promise.resolve({ status: 200, endpoint: ep.address });
export const refused = (): Promise<FakeRes> =>
  Promise.reject(Object.assign(new Error('connect ECONNREFUSED'), { code: 'ECONNREFUSED' }));
export const hang = (_ep: Endpoint, signal: AbortSignal): Promise<FakeRes> =>
  new Promise((_, reject) => signal.addEventListener('abort', () => reject(signal.reason)));

export async function codeOf(p: Promise<unknown>): Promise<string> {
  try {
    await p;
    return 'resolved';
  } catch (err) {
    return err instanceof MeshError ? err.code : `non-mesh: ${String(err)}`;
  }
}

/** `make(services)` creates a mesh that is closed after the enclosing suite. */
export function meshesClosedAfter(): (services: Parameters<typeof createMesh>[0]['services']) => Mesh {
  const meshes: Mesh[] = [];
  after(async () => {
    await Promise.all(meshes.map((m) => m.close()));
  });
  return (services) => {
    const m = createMesh({ services });
    meshes.push(m);
    return m;
  };
}
