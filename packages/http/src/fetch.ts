/**
 * `createMeshFetch(mesh)`: a function with the WHATWG fetch signature (undici's fetch).
 * `http://<service>/…` for a configured service goes through the mesh dispatcher; any
 * other URL is handed to undici's fetch unchanged. A mesh failure rejects with the
 * `MeshError` itself (not fetch's generic `TypeError: fetch failed`), so callers can
 * switch on `err.code`. Redirects and content decoding are undici fetch's own.
 */
import { fetch as undiciFetch, type RequestInfo, type RequestInit, type Response } from 'undici';
import { MeshError, type Mesh } from '@meshlet/core';
import { MeshDispatcher, type MeshDispatcherOptions } from './dispatcher.js';

export type MeshFetch = ((input: RequestInfo | URL, init?: RequestInit) => Promise<Response>) & {
  /** The dispatcher mesh-service requests go through. */
  readonly dispatcher: MeshDispatcher;
};

export function createMeshFetch(mesh: Mesh, options?: MeshDispatcherOptions): MeshFetch {
  const dispatcher = new MeshDispatcher(mesh, options);
  const meshFetch = (input: RequestInfo | URL, init?: RequestInit): Promise<Response> => {
    const url = typeof input === 'string' ? input : input instanceof URL ? input.href : (input as { url: string }).url;
    if (dispatcher.serviceOf(originOf(url)) === undefined) return undiciFetch(input, init);
    return undiciFetch(input, init === undefined ? { dispatcher } : { ...init, dispatcher }).catch(unwrap);
  };
  Object.defineProperty(meshFetch, 'dispatcher', { value: dispatcher, enumerable: true });
  return meshFetch as MeshFetch;
}

/** `http://host[:port]` of an absolute URL, cheaply; the dispatcher decides whether it is a service. */
function originOf(url: string): string {
  if (!url.startsWith('http://')) return '';
  const slash = url.indexOf('/', 7);
  const q = url.indexOf('?', 7);
  let end = slash === -1 ? url.length : slash;
  if (q !== -1 && q < end) end = q;
  return url.slice(0, end).toLowerCase();
}

function unwrap(err: unknown): never {
  if (err instanceof TypeError && err.cause instanceof MeshError) throw err.cause;
  throw err;
}
