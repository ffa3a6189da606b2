/**
 * Keep-alive undici Pools, one per (authority, endpoint): the Pool's origin is the logical
 * authority `http://<service>` (so undici writes `Host: <service>` itself, from the
 * validated service name, with no per-request header work), and its `connect` dials the
 * endpoint's own address. An endpoint is keyed by its `Endpoint` object, which core keeps
 * for as long as the endpoint stays in its service.
 *
 * Lifecycle: when core reports an endpoint removed (after the new config is installed),
 * every pool of every endpoint that left its service is retired: it stops taking requests,
 * requests in flight finish, then its sockets close; whatever is still open after
 * `drainGraceMs` is destroyed. `close()` (the mesh closed) gives pools `closeGraceMs` to
 * finish, then destroys them, so a stalled response body cannot hold it.
 */
import { Pool, buildConnector } from 'undici';
import { MeshClosedError, type Endpoint, type Mesh } from '@meshlet/core';

/** Default wait before a retired pool's remaining sockets are destroyed. */
export const DEFAULT_DRAIN_GRACE_MS = 10_000;
/** Default wait at mesh close before pools still busy are destroyed. */
export const DEFAULT_CLOSE_GRACE_MS = 1_000;

export interface PoolSetOptions {
  pool: Pool.Options;
  drainGraceMs: number;
  closeGraceMs: number;
}

type Connector = buildConnector.connector;

/** The pools of one endpoint: usually one authority (its own service), more when routes send other services' calls here. */
class EndpointPools {
  authority: string;
  pool: Pool;
  others: Map<string, Pool> | undefined = undefined;
  constructor(authority: string, pool: Pool) {
    this.authority = authority;
    this.pool = pool;
  }
}

export class PoolSet {
  private readonly entries = new Map<Endpoint, EndpointPools>();
  /** Pools retired but not yet fully closed. */
  private readonly retiring = new Set<Pool>();
  private readonly unsubscribe: () => void;
  private readonly baseConnect: Connector;
  private readonly userConnect: Connector | undefined;
  private readonly poolOptions: Pool.Options;
  private closed = false;
  private count = 0;

  constructor(
    private readonly mesh: Mesh,
    private readonly options: PoolSetOptions,
  ) {
    const { connect, connectTimeout, autoSelectFamily, autoSelectFamilyAttemptTimeout, ...rest } = options.pool;
    this.poolOptions = rest;
    if (typeof connect === 'function') {
      this.userConnect = connect as Connector;
      this.baseConnect = connect as Connector;
    } else {
      this.baseConnect = buildConnector({
        ...(connectTimeout != null ? { timeout: connectTimeout } : undefined),
        ...(typeof autoSelectFamily === 'boolean' ? { autoSelectFamily, autoSelectFamilyAttemptTimeout } : undefined),
        ...(connect as buildConnector.BuildOptions | undefined),
      });
    }
    this.unsubscribe = mesh.subscribe({
      endpointRemoved: () => this.sweep(),
      closed: () => this.close(),
    });
  }

  /** The pool for `authority` (the service the caller addressed) on endpoint `ep`. */
  get(ep: Endpoint, authority: string): Pool {
    const entry = this.entries.get(ep);
    if (entry !== undefined) {
      if (entry.authority === authority) return entry.pool;
      const other = entry.others?.get(authority);
      if (other !== undefined) return other;
    }
    if (this.closed) throw new MeshClosedError(authority);
    const pool = this.create(ep, authority);
    if (!ep.active) {
      // Picked just before it was removed: this one request may finish, then the pool goes.
      queueMicrotask(() => this.retire(pool));
      return pool;
    }
    if (entry === undefined) this.entries.set(ep, new EndpointPools(authority, pool));
    else (entry.others ??= new Map()).set(authority, pool);
    return pool;
  }

  /** Pools currently open (retiring ones included until they have closed). */
  get poolCount(): number {
    return this.count;
  }

  private create(ep: Endpoint, authority: string): Pool {
    const host = ep.host;
    const port = ep.port;
    const base = this.baseConnect;
    const user = this.userConnect;
    // The Pool's origin is the service; the socket goes to the endpoint.
    const connect: Connector = (opts, callback) =>
      base(
        user !== undefined
          ? { ...opts, hostname: host, host: `${host}:${port}`, port: String(port) }
          : { ...opts, hostname: host, host: `${host}:${port}`, port: String(port), servername: undefined },
        callback,
      );
    this.count++;
    return new Pool(`http://${authority}`, { ...this.poolOptions, connect });
  }

  /** Retires every pool of every endpoint that has left its service. */
  private sweep(): void {
    for (const [ep, entry] of this.entries) {
      if (ep.active && this.mesh.hasEndpoint(ep.address)) continue;
      this.entries.delete(ep);
      this.retire(entry.pool);
      if (entry.others !== undefined) for (const pool of entry.others.values()) this.retire(pool);
    }
  }

  private retire(pool: Pool): void {
    if (this.retiring.has(pool)) return;
    this.retiring.add(pool);
    const timer = setTimeout(() => {
      pool.destroy().catch(() => {});
    }, this.options.drainGraceMs);
    timer.unref();
    pool
      .close()
      .catch(() => {})
      .finally(() => {
        clearTimeout(timer);
        if (this.retiring.delete(pool)) this.count--;
      });
  }

  /** Closes every pool: busy ones get `closeGraceMs` to finish, then are destroyed. */
  async close(): Promise<void> {
    if (this.closed) return;
    this.closed = true;
    this.unsubscribe();
    const all: Pool[] = [...this.retiring];
    for (const entry of this.entries.values()) {
      all.push(entry.pool);
      if (entry.others !== undefined) all.push(...entry.others.values());
    }
    this.entries.clear();
    this.retiring.clear();
    this.count = 0;
    const grace = this.options.closeGraceMs;
    await Promise.all(
      all.map((pool) => {
        let timer: ReturnType<typeof setTimeout> | undefined;
        const forced = new Promise<void>((resolve) => {
          timer = setTimeout(() => {
            pool.destroy().then(resolve, resolve);
          }, grace);
        });
        return Promise.race([pool.close().catch(() => {}), forced]).finally(() => clearTimeout(timer));
      }),
    );
  }
}
