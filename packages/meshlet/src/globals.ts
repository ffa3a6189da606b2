/**
 * Routing the process's global HTTP clients through a mesh (used by `meshlet/register`):
 * - `globalThis.fetch`: a URL naming a configured service (`http://users/…`) goes through
 *   `createMeshFetch`; any other URL goes to the fetch that was there before, untouched;
 * - undici's global dispatcher (the one `undici.request(url)` and Node's own fetch use when no
 *   dispatcher is passed): mesh origins go through a mesh dispatcher, every other origin to the
 *   dispatcher that was global before (Node's own Agent when none was set).
 * The decision is `@meshlet/http`'s (`MeshUrlResolver`): the same one `createMeshFetch` makes.
 * Before the mesh has its first config a name that could be a service waits for it (bounded by
 * `startupTimeoutMs`), so it never leaks to DNS; then the decision is made again.
 */
import {
  createMeshFetch,
  MeshDispatcher,
  type MeshDispatcherOptions,
  type MeshFetch,
  type UrlVerdict,
} from '@meshlet/http';
import type { Mesh } from '@meshlet/core';

/** The symbol under which every undici (Node's bundled one and the npm package) keeps the global dispatcher. */
const GLOBAL_DISPATCHER = Symbol.for('undici.globalDispatcher.1');

type AnyFetch = (input: unknown, init?: unknown) => Promise<unknown>;

interface DispatcherLike {
  dispatch(opts: { origin?: unknown }, handler: unknown): boolean;
}

/** What `installGlobalRouting` replaced, to put back. */
export interface GlobalRouting {
  readonly fetch: MeshFetch;
  readonly dispatcher: MeshDispatcher;
  /** Puts the original global fetch and dispatcher back (only if they are still ours). */
  restore(): void;
}

/**
 * A mesh dispatcher that hands every origin which is not a mesh service to `fallback` (the
 * process's previous global dispatcher), so installing it changes nothing for other hosts.
 */
class GlobalMeshDispatcher extends MeshDispatcher {
  constructor(
    mesh: Mesh,
    options: MeshDispatcherOptions,
    private readonly fallback: DispatcherLike,
  ) {
    super(mesh, options, 'meshlet/register');
  }

  override dispatch(
    opts: Parameters<MeshDispatcher['dispatch']>[0],
    handler: Parameters<MeshDispatcher['dispatch']>[1],
  ): boolean {
    const verdict = this.urls.resolve(opts.origin);
    if (verdict === undefined) return this.fallback.dispatch(opts, handler);
    if (isPending(verdict)) {
      // No config yet: wait (bounded by startupTimeoutMs), then decide again (mesh or fallback).
      this.mesh.waitReady(undefined).then(
        () => this.dispatch(opts, handler),
        () => super.dispatch(opts, handler), // the mesh dispatcher reports the NotReady / closed error to the handler
      );
      return true;
    }
    return super.dispatch(opts, handler);
  }
}

/** A verdict that says "wait for the first config" (neither a service name, an error, nor pass-through). */
function isPending(verdict: UrlVerdict): boolean {
  return typeof verdict === 'object' && verdict !== null && !(verdict instanceof Error);
}

/**
 * Replaces `globalThis.fetch` and undici's global dispatcher with ones that route configured
 * service names through `mesh`; every other URL is handled exactly as before.
 */
export function installGlobalRouting(mesh: Mesh, options: MeshDispatcherOptions): GlobalRouting {
  const g = globalThis as unknown as Record<PropertyKey, unknown> & { fetch: AnyFetch };
  const originalFetch = g.fetch;
  // Node creates its global Agent on the first fetch; a data: URL does that without any I/O, so
  // the previous dispatcher is Node's own (the one its fetch and handlers were made for).
  if (g[GLOBAL_DISPATCHER] === undefined && typeof originalFetch === 'function') {
    originalFetch('data:,').then(
      (r) => (r as { body?: { cancel?: () => unknown } }).body?.cancel?.(),
      () => undefined,
    );
  }
  const originalDispatcher = g[GLOBAL_DISPATCHER] as DispatcherLike | undefined;
  const meshFetch = createMeshFetch(mesh, options);
  const urls = meshFetch.dispatcher.urls;

  const fallback: DispatcherLike =
    originalDispatcher !== undefined && typeof originalDispatcher.dispatch === 'function'
      ? originalDispatcher
      : // No global dispatcher and no fetch to create one: other origins get a dispatcher of their own.
        new MeshDispatcher(mesh, { ...options, unknownHosts: 'passthrough' }, 'meshlet/register');
  const dispatcher = new GlobalMeshDispatcher(mesh, options, fallback);

  const globalFetch = function fetch(input: unknown, init?: unknown): Promise<unknown> {
    let url: string | URL;
    if (typeof input === 'string' || input instanceof URL) url = input;
    else if (typeof input === 'object' && input !== null && typeof (input as { url?: unknown }).url === 'string') {
      url = (input as { url: string }).url;
    } else return originalFetch(input, init);
    const verdict = urls.resolveUrl(url);
    if (verdict === undefined) return originalFetch(input, init);
    if (isPending(verdict)) {
      const signal = (init as { signal?: AbortSignal } | undefined)?.signal ?? undefined;
      return mesh.waitReady(undefined, undefined, signal).then(
        () => globalFetch(input, init),
        // Not ready in time (or closed): the mesh fetch reports it as for any mesh URL.
        () => (meshFetch as AnyFetch)(url, init),
      );
    }
    if (typeof input === 'string' || input instanceof URL) return (meshFetch as AnyFetch)(input, init);
    // A Request of the global fetch (another undici's class than the mesh fetch's): pass its parts.
    return (meshFetch as AnyFetch)(url, requestInit(input as Request, init as RequestInit | undefined));
  };

  g.fetch = globalFetch;
  setGlobalDispatcher(dispatcher);

  return {
    fetch: meshFetch,
    dispatcher,
    restore() {
      if (g.fetch === globalFetch) g.fetch = originalFetch;
      if (g[GLOBAL_DISPATCHER] === dispatcher) setGlobalDispatcher(originalDispatcher);
    },
  };
}

/** What undici's `setGlobalDispatcher` does, without importing a second undici. */
function setGlobalDispatcher(dispatcher: unknown): void {
  const desc = Object.getOwnPropertyDescriptor(globalThis, GLOBAL_DISPATCHER);
  if (desc === undefined || desc.configurable) {
    Object.defineProperty(globalThis, GLOBAL_DISPATCHER, {
      value: dispatcher,
      writable: true,
      enumerable: false,
      configurable: false,
    });
  } else {
    (globalThis as unknown as Record<PropertyKey, unknown>)[GLOBAL_DISPATCHER] = dispatcher;
  }
}

/** The init that rebuilds `request` (method, headers, body, signal, …), with `init`'s members on top. */
function requestInit(request: Request, init: RequestInit | undefined): RequestInit {
  const base: Record<string, unknown> = {
    method: request.method,
    headers: request.headers,
    signal: request.signal,
    redirect: request.redirect,
    keepalive: request.keepalive,
  };
  if (request.body !== null) {
    base.body = request.body;
    base.duplex = 'half';
  }
  return init === undefined ? (base as RequestInit) : ({ ...base, ...init } as RequestInit);
}
