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

/** Pool creations between sweeps that are not triggered by a removal. */
const SWEEP_EVERY = 64;

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
  private sweepScheduled = false;
  /** Pools created since the last sweep: a sweep also runs every SWEEP_EVERY creations. */
  private createdSinceSweep = 0;

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
      endpointRemoved: () => this.scheduleSweep(),
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
    if (++this.createdSinceSweep >= SWEEP_EVERY) this.sweep();
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

  /** One sweep per burst of removals (an update removing many endpoints reports each). */
  private scheduleSweep(): void {
    if (this.sweepScheduled) return;
    this.sweepScheduled = true;
    queueMicrotask(() => {
      this.sweepScheduled = false;
      this.sweep();
    });
  }

  /**
   * Retires every pool of every endpoint that has left its service (core marks it inactive)
   * or whose address no service lists, and every pool whose authority is no longer a service.
   * Runs when core reports a removal, and every SWEEP_EVERY pool creations, so endpoints
   * removed from one service while another keeps their address cannot pile up pools.
   */
  private sweep(): void {
    this.createdSinceSweep = 0;
    for (const [ep, entry] of this.entries) {
      if (!ep.active || !this.mesh.hasEndpoint(ep.address)) {
        this.entries.delete(ep);
        this.retire(entry.pool);
        if (entry.others !== undefined) for (const pool of entry.others.values()) this.retire(pool);
        continue;
      }
      if (entry.others !== undefined) {
        for (const [authority, pool] of entry.others) {
          if (this.mesh.hasService(authority)) continue;
          entry.others.delete(authority);
          this.retire(pool);
        }
      }
      if (!this.mesh.hasService(entry.authority)) {
        this.retire(entry.pool);
        const next = entry.others?.entries().next();
        if (next === undefined || next.done) this.entries.delete(ep);
        else {
          entry.authority = next.value[0];
          entry.pool = next.value[1];
          entry.others!.delete(next.value[0]);
        }
      }
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
