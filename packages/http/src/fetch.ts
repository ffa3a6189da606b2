/**
 * `createMeshFetch(mesh, options?)`: a function with the WHATWG fetch signature (undici's
 * fetch). Whether a URL goes through the mesh is decided by the same resolver the
 * dispatcher uses (url.ts), on the URL the caller passed: `http://<service>/…` for a
 * configured service, in any spelling the WHATWG parser reads that way, goes through the
 * mesh dispatcher; other URLs go to undici's fetch unchanged (or, with
 * `unknownHosts: 'reject'`, fail with MESHLET_ERR_UNKNOWN_SERVICE). A URL the rules refuse
 * (a port on a mesh service, `https://<service>`) rejects with that MeshError before
 * anything is sent. A mesh failure rejects with the `MeshError` itself (not fetch's generic
 * `TypeError: fetch failed`), so callers can switch on `err.code`. Redirects and content
 * decoding are undici fetch's own.
 *
 * Replay: fetch hands the dispatcher every body as a stream; one of at most 64 KiB (by its
 * Content-Length) is read into memory inside the call and may be replayed, the same rule as
 * for `undici.request` (see body.ts).
 */
import { fetch as undiciFetch, type RequestInfo, type RequestInit, type Response } from 'undici';
import { MeshError, type Mesh } from '@meshlet/core';
import { MeshDispatcher, type MeshDispatcherOptions } from './dispatcher.js';

export type MeshFetch = ((input: RequestInfo | URL, init?: RequestInit) => Promise<Response>) & {
  /** The dispatcher mesh-service requests go through. */
  readonly dispatcher: MeshDispatcher;
};

export function createMeshFetch(mesh: Mesh, options?: MeshDispatcherOptions): MeshFetch {
  const dispatcher = new MeshDispatcher(mesh, options, 'createMeshFetch');
  const urls = dispatcher.urls;
  // The init used when the caller passes none: one object for every such call.
  const meshInit: RequestInit = Object.freeze({ dispatcher }) as RequestInit;
  const meshFetch = (input: RequestInfo | URL, init?: RequestInit): Promise<Response> => {
    const verdict = urls.resolveUrl(
      typeof input === 'string' || input instanceof URL ? input : String((input as { url: string }).url),
    );
    if (verdict === undefined) return undiciFetch(input, init);
    if (typeof verdict !== 'string') return Promise.reject(verdict);
    return undiciFetch(input, init === undefined ? meshInit : { ...init, dispatcher }).catch(unwrap);
  };
  Object.defineProperty(meshFetch, 'dispatcher', { value: dispatcher, enumerable: true });
  return meshFetch as MeshFetch;
}

function unwrap(err: unknown): never {
  if (err instanceof TypeError && err.cause instanceof MeshError) throw err.cause;
  throw err;
}
