/**
 * The users service (Express 5), last hop of the example chain gateway → orders → users:
 * `npm run -w @meshlet/examples express-service:users` (PORT, default 3001).
 *
 * `meshMiddleware(mesh)` makes it a mesh service on the inbound side: it continues the caller's
 * trace, reads the caller's name and deadline (`meshlet-caller`, `meshlet-timeout`), answers 504 at
 * once when the budget is already spent, and records `http.server.request.duration` and the
 * per-caller stats (`/stats` on MESHLET_ADMIN_PORT). Each request is logged with what
 * `currentInbound()` says: who called and how much of its budget is left.
 *
 * `GET /users/:id?delayMs=N` simulates a slow lookup (at most 10 s) to see deadlines at work.
 */
import type { Server } from 'node:http';
import type { AddressInfo } from 'node:net';
import { setTimeout as sleep } from 'node:timers/promises';
import express from 'express';
import { currentInbound } from '@meshlet/core';
import { meshMiddleware } from '@meshlet/http/express';
import { fail, log, meshFromEnv, portFromEnv, startAdminFromEnv } from '../shared/mesh-env.ts';

const SERVICE = process.env.MESHLET_SERVICE || 'users';

const port = (() => {
  try {
    return portFromEnv('PORT', 3001);
  } catch (err) {
    fail(err);
  }
})();
const mesh = await meshFromEnv('users', new URL('./users.mesh.yaml', import.meta.url)).catch(fail);
const admin = await startAdminFromEnv(mesh).catch(fail);

const app = express();
app.use(meshMiddleware(mesh));

app.get('/users/:id', async (req, res) => {
  const inbound = currentInbound();
  const budgetMs =
    inbound !== undefined && Number.isFinite(inbound.deadlineAt)
      ? Math.round(inbound.deadlineAt - performance.now())
      : null;
  log({ service: SERVICE, event: 'request', id: req.params.id, caller: inbound?.caller ?? null, budgetMs });
  const delayMs = typeof req.query.delayMs === 'string' ? Math.min(Number(req.query.delayMs) || 0, 10_000) : 0;
  if (delayMs > 0) {
    // Stop waiting when the caller goes away: nobody is left to answer.
    await sleep(delayMs, undefined, { signal: inbound?.signal }).catch(() => undefined);
    if (inbound?.signal?.aborted) return;
  }
  res.json({ id: req.params.id, name: `User ${req.params.id}`, servedBy: `${SERVICE}@${listening.port}` });
});

const server = await new Promise<Server>((resolve, reject) => {
  const s = app.listen(port, process.env.HOST || '127.0.0.1', (err?: Error) => (err ? reject(err) : resolve(s)));
}).catch(fail);
const listening = server.address() as AddressInfo;
log({ service: SERVICE, event: 'listening', port: listening.port, adminPort: admin?.address.port ?? null });

async function stop(): Promise<void> {
  server.close();
  await mesh.close(); // in-flight calls finish first (bounded); the admin endpoint closes with it
  process.exit(0);
}
process.once('SIGTERM', () => void stop());
process.once('SIGINT', () => void stop());
