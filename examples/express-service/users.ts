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
import { setTimeout as sleep } from 'node:timers/promises';
import express from 'express';
import { currentInbound } from '@meshlet/core';
import { meshMiddleware } from '@meshlet/http/express';
import { fail, log, meshFromEnv, portFromEnv, serve, startAdminFromEnv } from '../shared/mesh-env.ts';

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
  res.json({ id: req.params.id, name: `User ${req.params.id}`, servedBy: `${SERVICE}@${listeningPort}` });
});

/** The port this process listens on (PORT may be 0), for the answers' `servedBy`. */
const listeningPort = await serve(app, port, SERVICE, mesh, admin);
