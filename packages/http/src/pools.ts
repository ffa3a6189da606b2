/**
 * One undici Pool (keep-alive connections) per endpoint address, created on first use.
 * When an address leaves every service its pool is closed gracefully: requests in flight
 * finish, then its sockets close. `close` releases everything.
 */
import { Pool } from 'undici';
import type { Endpoint, Mesh } from '@meshlet/core';

export class PoolSet {
  private readonly pools = new Map<string, Pool>();
  private readonly unsubscribe: () => void;
  private closed = false;

  constructor(
    private readonly mesh: Mesh,
    private readonly options: Pool.Options,
  ) {
    this.unsubscribe = mesh.subscribe({
      endpointRemoved: (_service, ep) => {
        if (!this.mesh.hasEndpoint(ep.address)) this.retire(ep.address);
      },
      closed: () => this.close(),
    });
  }

  get(ep: Endpoint): Pool {
    let pool = this.pools.get(ep.address);
    if (pool === undefined) {
      if (this.closed) throw new Error('meshlet: the HTTP dispatcher is closed');
      const host = ep.host.includes(':') ? `[${ep.host}]` : ep.host;
      pool = new Pool(`http://${host}:${ep.port}`, this.options);
      this.pools.set(ep.address, pool);
    }
    return pool;
  }

  get size(): number {
    return this.pools.size;
  }

  private retire(address: string): void {
    const pool = this.pools.get(address);
    if (pool === undefined) return;
    this.pools.delete(address);
    pool.close().catch(() => {});
  }

  async close(): Promise<void> {
    if (this.closed) return;
    this.closed = true;
    this.unsubscribe();
    const all = [...this.pools.values()];
    this.pools.clear();
    await Promise.all(all.map((p) => p.close().catch(() => {})));
  }
}
