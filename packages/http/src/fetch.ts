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
import { PendingVerdict } from './url.js';

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
    if (verdict instanceof PendingVerdict) {
      // The mesh has no config yet: wait for it (bounded by startupTimeoutMs and the caller's signal), then decide again.
      return mesh.waitReady(verdict.host, undefined, init?.signal ?? undefined).then(() => meshFetch(input, init));
    }
    if (typeof verdict !== 'string') return Promise.reject(verdict);
    return undiciFetch(input, init === undefined ? meshInit : withDispatcher(init, dispatcher)).catch(unwrap);
  };
  Object.defineProperty(meshFetch, 'dispatcher', { value: dispatcher, enumerable: true });
  return meshFetch as MeshFetch;
}

/** The members of undici 7's RequestInit (besides `dispatcher`). */
const INIT_KEYS = new Set([
  'method',
  'headers',
  'body',
  'referrer',
  'referrerPolicy',
  'mode',
  'credentials',
  'cache',
  'redirect',
  'integrity',
  'keepalive',
  'signal',
  'window',
  'duplex',
  'priority',
]);

/**
 * The caller's init with the mesh dispatcher, in one fixed shape. undici reads an init
 * member by member (absent and undefined are the same to it), so a class copy is what a
 * spread would be, at ~20 ns instead of ~300 ns (a spread plus one member leaves V8's fast
 * clone path). An init with any other member (a newer undici's, or the caller's own
 * dispatcher, which the mesh's replaces) is spread, so nothing is ever dropped.
 */
class MeshRequestInit {
  readonly method: unknown;
  readonly headers: unknown;
  readonly body: unknown;
  readonly referrer: unknown;
  readonly referrerPolicy: unknown;
  readonly mode: unknown;
  readonly credentials: unknown;
  readonly cache: unknown;
  readonly redirect: unknown;
  readonly integrity: unknown;
  readonly keepalive: unknown;
  readonly signal: unknown;
  readonly window: unknown;
  readonly duplex: unknown;
  readonly priority: unknown;
  constructor(
    init: Record<string, unknown>,
    readonly dispatcher: MeshDispatcher,
  ) {
    this.method = init.method;
    this.headers = init.headers;
    this.body = init.body;
    this.referrer = init.referrer;
    this.referrerPolicy = init.referrerPolicy;
    this.mode = init.mode;
    this.credentials = init.credentials;
    this.cache = init.cache;
    this.redirect = init.redirect;
    this.integrity = init.integrity;
    this.keepalive = init.keepalive;
    this.signal = init.signal;
    this.window = init.window;
    this.duplex = init.duplex;
    this.priority = init.priority;
  }
}

function withDispatcher(init: RequestInit, dispatcher: MeshDispatcher): RequestInit {
  for (const key in init) if (!INIT_KEYS.has(key)) return { ...init, dispatcher };
  return new MeshRequestInit(init as Record<string, unknown>, dispatcher) as RequestInit;
}

function unwrap(err: unknown): never {
  if (err instanceof TypeError && err.cause instanceof MeshError) throw err.cause;
  throw err;
}
