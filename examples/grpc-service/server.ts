/**
 * The RouteGuide gRPC server: `npm run -w @meshlet/examples grpc-service:server -- --port 50051`
 * (or `PORT=50051`; default 50051, 0 for any free port). Start it several times on different ports:
 * the client balances over them.
 *
 * `meshServerInterceptors(mesh)` makes it a mesh service on the inbound side: per call it records
 * `rpc.server.call.duration`, continues the caller's trace, and runs the handler with the caller's
 * deadline and name in `currentInbound()`, so calls the handler makes through the mesh are clamped
 * to what is left of the caller's deadline and cancelled with it; `mesh.stats().inbound` (and
 * `/stats` on MESHLET_ADMIN_PORT) count calls per method and caller.
 *
 * With `MESHLET_CONTROL_PLANE=host:port` it registers itself with that `meshlet control` server as
 * an endpoint of `routeguide` (MESHLET_SERVICE), and withdraws on SIGTERM / Ctrl-C.
 *
 * To see the mesh at work: `--fail-percent N` (FAIL_PERCENT) answers UNAVAILABLE to N% of calls,
 * `--delay-ms N` (DELAY_MS) waits before answering (at most 10 s; it stops waiting when the caller's
 * deadline passes or it cancels).
 */
import { setTimeout as sleep } from 'node:timers/promises';
import { parseArgs } from 'node:util';
import * as grpc from '@grpc/grpc-js';
import { currentInbound, type RegistrationHandle } from '@meshlet/core';
import { meshServerInterceptors } from '@meshlet/grpc';
import { fail, log, meshFromEnv, portFromEnv, startAdminFromEnv } from '../shared/mesh-env.ts';
import { RouteGuide, type Feature, type Point, type Rectangle } from './routeguide.ts';

const SERVICE = process.env.MESHLET_SERVICE || 'routeguide';

const settings = (() => {
  try {
    const { values } = parseArgs({
      options: { port: { type: 'string' }, 'fail-percent': { type: 'string' }, 'delay-ms': { type: 'string' } },
    });
    return {
      port: values.port === undefined ? portFromEnv('PORT', 50051) : portFlag(values.port),
      failPercent: numberSetting('--fail-percent', values['fail-percent'] ?? process.env.FAIL_PERCENT, 100),
      delayMs: numberSetting('--delay-ms', values['delay-ms'] ?? process.env.DELAY_MS, 10_000),
    };
  } catch (err) {
    fail(err);
  }
})();

/** `--port`: as PORT, 0 for any free port. */
function portFlag(raw: string): number {
  if (!/^\d+$/.test(raw) || Number(raw) > 65_535) {
    throw new Error(`--port: expected a port number from 0 to 65535, got ${JSON.stringify(raw)}`);
  }
  return Number(raw);
}

/** A number from 0 to `max` from a flag or its variable (0 when unset). */
function numberSetting(name: string, raw: string | undefined, max: number): number {
  if (raw === undefined || raw === '') return 0;
  const n = Number(raw);
  if (!Number.isFinite(n) || n < 0 || n > max) {
    throw new Error(`${name}: expected a number from 0 to ${max}, got ${JSON.stringify(raw)}`);
  }
  return n;
}

const mesh = await meshFromEnv(SERVICE, new URL('./server.mesh.yaml', import.meta.url)).catch(fail);
const admin = await startAdminFromEnv(mesh).catch(fail);

/** The features this server knows (E7 coordinates). */
const FEATURES: Feature[] = [
  { name: 'Berkshire Valley Management Area Trail, Jefferson, NJ, USA', location: at(409146138, -746188906) },
  { name: '101 New Jersey 10, Whippany, NJ 07981, USA', location: at(408122808, -743999179) },
  { name: 'U.S. 6, Shohola, PA 18458, USA', location: at(414008389, -743951297) },
  { name: '5 Conners Road, Kingston, NY 12401, USA', location: at(419611318, -746524769) },
  { name: 'Mid Hudson Psychiatric Center, New Hampton, NY 10958, USA', location: at(414498361, -743829938) },
  { name: '282 Lakeview Drive Road, Highland Lake, NY 12743, USA', location: at(416851321, -743986722) },
  { name: '330 Evelyn Avenue, Hamilton Township, NJ 08619, USA', location: at(402647019, -747071791) },
];

function at(latitude: number, longitude: number): Point {
  return { latitude, longitude };
}

/** UNAVAILABLE for `--fail-percent` of calls: the status a client mesh retries by default. */
function injectedFailure(): grpc.StatusObject | undefined {
  if (Math.random() * 100 >= settings.failPercent) return undefined;
  return {
    code: grpc.status.UNAVAILABLE,
    details: `${SERVICE}@${listeningPort}: failing on purpose (--fail-percent ${settings.failPercent})`,
    metadata: new grpc.Metadata(),
  };
}

/** Waits `--delay-ms`, but not past the caller's deadline or cancel (then nobody is left to answer). */
async function delay(): Promise<boolean> {
  if (settings.delayMs === 0) return true;
  const signal = currentInbound()?.signal;
  await sleep(settings.delayMs, undefined, { signal }).catch(() => undefined);
  return signal?.aborted !== true;
}

function logCall(method: string): void {
  const inbound = currentInbound();
  const budgetMs =
    inbound !== undefined && Number.isFinite(inbound.deadlineAt)
      ? Math.round(inbound.deadlineAt - performance.now())
      : null;
  log({ service: SERVICE, event: 'call', method, caller: inbound?.caller ?? null, budgetMs });
}

const server = new grpc.Server({ interceptors: meshServerInterceptors(mesh) });
server.addService(RouteGuide.service, {
  async GetFeature(call: grpc.ServerUnaryCall<Point, Feature>, callback: grpc.sendUnaryData<Feature>) {
    logCall('GetFeature');
    const failure = injectedFailure();
    if (failure !== undefined) return callback(failure);
    if (!(await delay())) return;
    const { latitude, longitude } = call.request;
    const found = FEATURES.find((f) => f.location.latitude === latitude && f.location.longitude === longitude);
    callback(null, found ?? { name: '', location: call.request });
  },
  async ListFeatures(call: grpc.ServerWritableStream<Rectangle, Feature>) {
    logCall('ListFeatures');
    const failure = injectedFailure();
    // A server stream ends with an error status through its 'error' event (grpc-js).
    if (failure !== undefined) return void call.emit('error', failure);
    if (!(await delay())) return;
    const { lo, hi } = call.request;
    const [latLo, latHi] = [Math.min(lo.latitude, hi.latitude), Math.max(lo.latitude, hi.latitude)];
    const [lonLo, lonHi] = [Math.min(lo.longitude, hi.longitude), Math.max(lo.longitude, hi.longitude)];
    for (const f of FEATURES) {
      const { latitude, longitude } = f.location;
      if (latitude >= latLo && latitude <= latHi && longitude >= lonLo && longitude <= lonHi) call.write(f);
    }
    call.end();
  },
});

const listeningPort = await new Promise<number>((resolve, reject) =>
  server.bindAsync(
    `${process.env.HOST || '127.0.0.1'}:${settings.port}`,
    grpc.ServerCredentials.createInsecure(),
    (err, port) => (err === null ? resolve(port) : reject(err)),
  ),
).catch(fail);

// Self-registration: with a control plane, callers learn this address from it (no endpoint lists).
let registration: RegistrationHandle | undefined;
if (process.env.MESHLET_CONTROL_PLANE) {
  const address = `${process.env.MESHLET_ADVERTISE_HOST || '127.0.0.1'}:${listeningPort}`;
  registration = await mesh.register({ service: SERVICE, address }).catch(fail);
  log({ service: SERVICE, event: 'registered', address, control: process.env.MESHLET_CONTROL_PLANE });
}
log({ service: SERVICE, event: 'listening', port: listeningPort, adminPort: admin?.address.port ?? null });

let stopping = false;
async function stop(): Promise<void> {
  if (stopping) return;
  stopping = true;
  // Withdraw first so callers stop picking this server, then finish the calls in flight (bounded).
  const bounded = (ms: number): Promise<void> => new Promise((resolve) => setTimeout(resolve, ms).unref());
  await Promise.race([registration?.withdraw(), bounded(1500)]).catch(() => undefined);
  await Promise.race([new Promise<void>((resolve) => server.tryShutdown(() => resolve())), bounded(3000)]);
  server.forceShutdown();
  await mesh.close();
  process.exit(0);
}
process.once('SIGTERM', () => void stop());
process.once('SIGINT', () => void stop());
