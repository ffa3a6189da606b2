import { Controller, Get, HttpException, Inject, Param, Query } from '@nestjs/common';
import { MeshError, currentInbound } from '@meshlet/core';
import type { MeshFetch } from '@meshlet/http';
import { MESH_FETCH } from '@meshlet/http/nest';
import { log } from '../shared/mesh-env.ts';

export const SERVICE_NAME = Symbol('SERVICE_NAME');

/**
 * `GET /orders/:id`: an order with its user, fetched from `http://users/…` through the mesh.
 * The mesh fetch comes from `MeshModule` by injection (`@Inject(MESH_FETCH)`: explicit tokens, as
 * tsx/esbuild emits no decorator metadata). The call inherits this request's deadline and caller.
 */
@Controller('orders')
export class OrdersController {
  constructor(
    @Inject(MESH_FETCH) private readonly fetch: MeshFetch,
    @Inject(SERVICE_NAME) private readonly service: string,
  ) {}

  @Get(':id')
  async get(@Param('id') id: string, @Query('delayMs') delayMs?: string): Promise<unknown> {
    const started = performance.now();
    const delay = delayMs === undefined ? '' : `?delayMs=${encodeURIComponent(delayMs)}`;
    try {
      const res = await this.fetch(`http://users/users/${encodeURIComponent(id)}${delay}`);
      if (!res.ok) throw new HttpException({ error: 'UPSTREAM', message: `users answered ${res.status}` }, 502);
      const user: unknown = await res.json();
      return { id, items: [{ sku: 'book-1', quantity: 1 }], user, servedBy: this.service };
    } catch (err) {
      const elapsedMs = Math.round(performance.now() - started);
      if (currentInbound()?.signal?.aborted) {
        // The gateway went away (its own deadline passed, or its client left): the mesh cancelled
        // our call to users on its behalf, and nobody is left to read an answer.
        log({ service: this.service, event: 'cancelled', upstream: 'users', elapsedMs });
        throw new HttpException({ error: 'CANCELLED', message: 'the caller went away' }, 499);
      }
      if (!(err instanceof MeshError)) throw err;
      log({ service: this.service, event: 'upstream-error', upstream: 'users', code: err.code, elapsedMs });
      throw new HttpException(
        { error: err.code, message: err.message, elapsedMs },
        err.code === 'MESHLET_ERR_DEADLINE' ? 504 : 502,
      );
    }
  }
}
