/**
 * The gateway (Express 5), first hop of the example chain gateway → orders → users:
 * `npm run -w @meshlet/examples express-service` (PORT, default 3000), then
 * `curl localhost:3000/orders/42`.
 *
 * It is a mesh service on both sides: `meshMiddleware(mesh)` for the requests it receives, and
 * `createMeshFetch(mesh)` for its calls to `http://orders/…`, which go through the mesh (balancing,
 * retries, the deadline of gateway.mesh.yaml's `orders.timeout.requestMs`). That deadline travels
 * down the chain: a call that runs out of it fails with `MESHLET_ERR_DEADLINE`, answered here as 504.
 *
 * `?delayMs=N` is passed down to users, to see a deadline at work.
 */
import express from 'express';
import { MeshError, currentInbound } from '@meshlet/core';
import { createMeshFetch } from '@meshlet/http';
import { meshMiddleware } from '@meshlet/http/express';
import { fail, log, meshFromEnv, portFromEnv, serve, startAdminFromEnv } from '../shared/mesh-env.ts';

const SERVICE = process.env.MESHLET_SERVICE || 'gateway';

const port = (() => {
  try {
    return portFromEnv('PORT', 3000);
  } catch (err) {
    fail(err);
  }
})();
const mesh = await meshFromEnv('gateway', new URL('./gateway.mesh.yaml', import.meta.url)).catch(fail);
const admin = await startAdminFromEnv(mesh).catch(fail);
const meshFetch = createMeshFetch(mesh);

const app = express();
app.use(meshMiddleware(mesh));

app.get('/orders/:id', async (req, res) => {
  const started = performance.now();
  const delay = typeof req.query.delayMs === 'string' ? `?delayMs=${encodeURIComponent(req.query.delayMs)}` : '';
  try {
    const upstream = await meshFetch(`http://orders/orders/${encodeURIComponent(req.params.id)}${delay}`);
    const order: unknown = await upstream.json();
    res.status(upstream.status).json({ order, via: SERVICE });
  } catch (err) {
    if (currentInbound()?.signal?.aborted) {
      // Our client went away: the mesh cancelled the call to orders made on its behalf.
      log({
        service: SERVICE,
        event: 'cancelled',
        upstream: 'orders',
        elapsedMs: Math.round(performance.now() - started),
      });
      return;
    }
    // A mesh error says what went wrong (its code) and where (its message names the service).
    const code = err instanceof MeshError ? err.code : 'INTERNAL';
    const elapsedMs = Math.round(performance.now() - started);
    log({ service: SERVICE, event: 'upstream-error', upstream: 'orders', code, elapsedMs });
    res.status(code === 'MESHLET_ERR_DEADLINE' ? 504 : 502).json({
      error: code,
      message: err instanceof Error ? err.message : String(err),
      elapsedMs,
    });
  }
});

await serve(app, port, SERVICE, mesh, admin);
