/**
 * `meshlet/register`: zero-code start. `node --import meshlet/register app.js` (or
 * `NODE_OPTIONS="--import meshlet/register"`) builds a Mesh from the environment (see
 * `env.ts` for every variable), then:
 * - routes the global `fetch` and undici's global dispatcher through it for configured service
 *   names (`http://users/…`); every other URL goes where it went before (`globals.ts`);
 * - meshes grpc-js (`MESHLET_GRPC=auto`, the default, when @grpc/grpc-js is installed): a client
 *   built for a `meshlet:///<service>` target goes through the mesh, and every grpc-js server gets
 *   meshlet's server interceptors, with no code change (`installGrpcZeroCode` of @meshlet/grpc,
 *   which says what it patches); `MESHLET_GRPC=off` leaves grpc-js untouched;
 * - with `MESHLET_ADMIN_PORT`, serves the admin endpoint (/metrics, /stats, /readyz); the mesh
 *   then records its metrics into a MeterProvider of meshlet's own (Prometheus reader), so an
 *   application's own global OpenTelemetry provider is left alone;
 * - with `MESHLET_REGISTER`, registers this process as an endpoint of `MESHLET_SERVICE` with the
 *   control plane once that address accepts connections;
 * - on SIGTERM / SIGINT: withdraws the registration, closes the mesh (calls in flight get up to
 *   `MESHLET_SHUTDOWN_GRACE_MS`), closes the admin endpoint, then lets the signal do what it
 *   would have done: if the application has handlers of its own for it, they decide (nothing
 *   is killed); if not, the signal is raised again, so the process ends as signalled.
 *
 * Every invalid variable or config file stops the process at start-up (exit code 1) with a
 * message naming the variable, the file (line:column) and the config path; a taken admin port
 * stops it as soon as the listen fails, before any request could have been served by it.
 *
 * No top-level await (CommonJS applications load this through require(esm)); the config file
 * is read synchronously, before the application's code runs.
 *
 * The mesh is exported (`import { mesh } from 'meshlet/register'`) for applications that want
 * to add the inbound middleware (`meshMiddleware(mesh)` from `@meshlet/http/express`), or that
 * build gRPC clients and servers with it themselves (`meshGrpcOptions(mesh)`,
 * `meshServerInterceptors(mesh)`: needed with `MESHLET_GRPC=off`, harmless otherwise: such a
 * client never reaches the patch and a server that has meshlet's interceptors gets none added).
 *
 * Worker threads run `--import` modules too. A worker gets a mesh of its own and its global
 * fetch and dispatcher are routed through it, its own grpc-js (a worker has its own modules) is
 * meshed with it, but the process-wide parts stay with the main
 * thread: the admin endpoint (one port), the self-registration and the signal handlers. A
 * worker's mesh records metrics into the global provider.
 */
import { createRequire } from 'node:module';
import { connect } from 'node:net';
import { dirname, join } from 'node:path';
import { isMainThread } from 'node:worker_threads';
import { createMesh, MeshError, type Mesh, type MeshOptions, type RegistrationHandle } from '@meshlet/core';
import { controlPlane } from '@meshlet/discovery';
import type { GrpcZeroCode } from '@meshlet/grpc';
import { createAdminMeterProvider, startAdminServer, type AdminServer } from './admin.js';
import { readEnv, type RegisterSettings } from './env.js';
import { installGlobalRouting } from './globals.js';

const PREFIX = 'meshlet/register';

function fail(message: string): never {
  process.stderr.write(`${PREFIX}: cannot start: ${message}\n`);
  process.exit(1);
}

function warn(message: string): void {
  process.stderr.write(`${PREFIX}: ${message}\n`);
}

/** Maps a `createMesh` option path to the variable it came from. */
function variableOf(path: string): string {
  if (path === 'service') return 'MESHLET_SERVICE';
  if (path.startsWith('services')) return 'MESHLET_CONFIG';
  if (path.startsWith('controlPlane.cacheDir')) return 'MESHLET_CACHE_DIR';
  if (path.startsWith('controlPlane.node.zone')) return 'MESHLET_ZONE';
  if (path.startsWith('controlPlane')) return 'MESHLET_CONTROL_PLANE';
  if (path === 'startupTimeoutMs') return 'MESHLET_STARTUP_TIMEOUT_MS';
  if (path === 'statsWindowMs') return 'MESHLET_STATS_WINDOW_MS';
  return path;
}

function describeError(err: unknown, settings?: RegisterSettings): string {
  if (err instanceof MeshError && 'issues' in err) {
    const issues = (err as unknown as { issues: ReadonlyArray<{ path: string; message: string }> }).issues;
    return issues
      .map((i) => {
        const variable = variableOf(i.path);
        const file = variable === 'MESHLET_CONFIG' && settings?.configFile ? ` (${settings.configFile})` : '';
        return variable === i.path ? `${i.path}: ${i.message}` : `${variable}${file}: ${i.path}: ${i.message}`;
      })
      .join('\n  ');
  }
  return err instanceof Error ? err.message : String(err);
}

function build(settings: RegisterSettings): {
  mesh: Mesh;
  meterProvider: ReturnType<typeof createAdminMeterProvider> | undefined;
} {
  const options: MeshOptions = {};
  if (settings.service !== undefined) options.service = settings.service;
  if (settings.config?.services !== undefined) options.services = settings.config.services;
  if (settings.startupTimeoutMs !== undefined) options.startupTimeoutMs = settings.startupTimeoutMs;
  if (settings.statsWindowMs !== undefined) options.statsWindowMs = settings.statsWindowMs;
  if (settings.controlPlane !== undefined) {
    options.discovery = [
      controlPlane({
        address: settings.controlPlane,
        ...(settings.cacheDir !== undefined ? { cacheDir: settings.cacheDir } : {}),
        ...(settings.zone !== undefined ? { node: { zone: settings.zone } } : {}),
      }),
    ];
  }
  // Metrics go to meshlet's own provider only when the admin endpoint serves them; otherwise the
  // mesh uses the global provider, i.e. the application's SDK if it starts one.
  const meterProvider = settings.adminPort !== undefined && isMainThread ? createAdminMeterProvider() : undefined;
  if (meterProvider !== undefined) options.telemetry = { meterProvider };
  return { mesh: createMesh(options), meterProvider };
}

let settings: RegisterSettings;
try {
  settings = readEnv(process.env);
} catch (err) {
  fail(describeError(err));
}
for (const w of settings.warnings) warn(w);

let built: ReturnType<typeof build>;
try {
  built = build(settings);
} catch (err) {
  fail(describeError(err, settings));
}

/** The mesh `meshlet/register` built from the environment. */
export const mesh: Mesh = built.mesh;

const routing = installGlobalRouting(mesh, { unknownHosts: settings.unknownHosts });

// ------------------------------------------------------------------------------------------------
// gRPC: mesh grpc-js, the copy @meshlet/grpc resolves (whose Metadata, credentials and statuses the
// mesh's channels are built on). @meshlet/grpc is loaded only then (require of ESM, synchronous,
// so the patch is in place before the application's first line), since it needs grpc-js itself.

function installGrpc(): GrpcZeroCode | undefined {
  const require = createRequire(import.meta.url);
  let meshletGrpc: string;
  try {
    meshletGrpc = require.resolve('@meshlet/grpc');
    createRequire(meshletGrpc).resolve('@grpc/grpc-js');
  } catch (err) {
    // No grpc-js where @meshlet/grpc looks: an HTTP-only application, nothing to mesh.
    if ((err as NodeJS.ErrnoException).code === 'MODULE_NOT_FOUND') return undefined;
    throw err;
  }
  const { installGrpcZeroCode } = require(meshletGrpc) as typeof import('@meshlet/grpc');
  const installed = installGrpcZeroCode(mesh);
  if (isMainThread) warnOtherGrpcCopy(installed.grpcJsPath);
  return installed;
}

/** An application resolving another copy of grpc-js than @meshlet/grpc's gets that copy unmeshed: say so, once. */
function warnOtherGrpcCopy(meshed: string): void {
  let app: string;
  try {
    app = dirname(createRequire(join(process.cwd(), 'noop.js')).resolve('@grpc/grpc-js/package.json'));
  } catch {
    return; // the application has no grpc-js of its own to resolve from here
  }
  if (app === meshed) return;
  warn(
    `MESHLET_GRPC: the application resolves @grpc/grpc-js at ${app}, but meshlet meshes the copy at ${meshed} ` +
      '(the one @meshlet/grpc resolves); clients and servers of the other copy are not meshed. Install one copy ' +
      '(npm dedupe, or one @grpc/grpc-js version in package.json), or pass meshGrpcOptions(mesh) and ' +
      "meshServerInterceptors(mesh) from 'meshlet/register' yourself",
  );
}

let grpcInstall: GrpcZeroCode | undefined;
if (settings.grpc === 'auto') {
  try {
    grpcInstall = installGrpc();
  } catch (err) {
    fail(`MESHLET_GRPC=auto: ${describeError(err)}`);
  }
}
/**
 * What was patched in grpc-js (`uninstall()` puts it back); undefined with `MESHLET_GRPC=off` or
 * when @grpc/grpc-js is not installed.
 */
export const grpcZeroCode: GrpcZeroCode | undefined = grpcInstall;

let adminServer: AdminServer | undefined;
/** The admin endpoint, once it listens (undefined without MESHLET_ADMIN_PORT). */
export const admin: Promise<AdminServer | undefined> =
  settings.adminPort === undefined || !isMainThread
    ? Promise.resolve(undefined)
    : startAdminServer(mesh, {
        port: settings.adminPort,
        host: settings.adminHost,
        ...(built.meterProvider !== undefined ? { meterProvider: built.meterProvider } : {}),
      }).then(
        (server) => {
          adminServer = server;
          // The admin endpoint alone must not keep a finished program running.
          server.unref();
          return server;
        },
        (err: unknown) => fail(`MESHLET_ADMIN_PORT=${settings.adminPort}: ${describeError(err)}`),
      );

// ------------------------------------------------------------------------------------------------
// Self-registration: once MESHLET_REGISTER accepts connections (the application has started
// listening), register it; retry a refused or timed-out registration.

let registration: RegistrationHandle | undefined;
let registerTimer: NodeJS.Timeout | undefined;
let stopping = false;

function probe(address: string): Promise<boolean> {
  const i = address.lastIndexOf(':');
  const host = address.slice(0, i).replace(/^\[|\]$/g, '');
  const port = Number(address.slice(i + 1));
  return new Promise((resolve) => {
    const socket = connect({ host: host === '0.0.0.0' ? '127.0.0.1' : host === '::' ? '::1' : host, port });
    socket.unref();
    socket.setTimeout(1000);
    const done = (ok: boolean): void => {
      socket.destroy();
      resolve(ok);
    };
    socket.once('connect', () => done(true));
    socket.once('error', () => done(false));
    socket.once('timeout', () => done(false));
  });
}

function scheduleRegistration(delayMs: number): void {
  if (stopping || settings.register === undefined || !isMainThread) return;
  registerTimer = setTimeout(() => void tryRegister(), delayMs);
  registerTimer.unref();
}

let probeDelay = 50;
async function tryRegister(): Promise<void> {
  const address = settings.register!;
  if (!(await probe(address))) {
    probeDelay = Math.min(probeDelay * 2, 1000);
    return scheduleRegistration(probeDelay);
  }
  if (stopping) return;
  try {
    const handle = await mesh.register({
      service: settings.service!,
      address,
      ...(settings.zone !== undefined ? { zone: settings.zone } : {}),
    });
    if (stopping) {
      await handle.withdraw();
      return;
    }
    registration = handle;
  } catch (err) {
    if (stopping) return;
    warn(`MESHLET_REGISTER=${address}: registration failed, retrying in 5 s: ${describeError(err)}`);
    scheduleRegistration(5000);
  }
}
scheduleRegistration(0);

// ------------------------------------------------------------------------------------------------
// Shutdown on SIGTERM / SIGINT.

let shutdown: Promise<void> | undefined;

/** Withdraws the registration, closes the mesh (bounded by the grace period) and the admin endpoint. */
function close(): Promise<void> {
  shutdown ??= (async () => {
    stopping = true;
    if (registerTimer !== undefined) clearTimeout(registerTimer);
    const grace = settings.shutdownGraceMs;
    if (registration !== undefined) {
      // First, so callers stop picking this process while its calls in flight finish.
      await withTimeout(
        registration.withdraw().catch(() => undefined),
        Math.min(grace, 5000),
      );
    }
    await mesh.close({ graceMs: grace }).catch((err: unknown) => warn(`closing the mesh: ${describeError(err)}`));
    await (adminServer ?? (await admin.catch(() => undefined)))?.close();
  })();
  return shutdown;
}

function withTimeout(p: Promise<unknown>, ms: number): Promise<void> {
  return new Promise<void>((resolve) => {
    const t = setTimeout(resolve, ms);
    t.unref();
    void p.then(() => {
      clearTimeout(t);
      resolve();
    });
  });
}

const SIGNALS = ['SIGTERM', 'SIGINT'] as const;
const handlers = new Map<NodeJS.Signals, () => void>();

function onSignal(signal: NodeJS.Signals): void {
  // Handlers of the application's own decide what the signal means: then nothing is re-raised.
  const appHandles = process.listenerCount(signal) > 1;
  if (shutdown !== undefined && !appHandles) {
    // A second signal while closing: stop waiting.
    reraise(signal);
    return;
  }
  void close().then(() => {
    if (!appHandles) reraise(signal);
  });
}

function reraise(signal: NodeJS.Signals): void {
  for (const [s, h] of handlers) process.off(s, h);
  handlers.clear();
  routing.restore();
  grpcInstall?.uninstall();
  // Let output of the calls that just finished reach its streams first.
  setImmediate(() => process.kill(process.pid, signal));
}

// Signals reach the main thread only; a worker's mesh ends with its worker.
if (isMainThread) {
  for (const signal of SIGNALS) {
    const h = (): void => onSignal(signal);
    handlers.set(signal, h);
    process.on(signal, h);
  }
}

/** Closes what `meshlet/register` started, as SIGTERM would (without ending the process). */
export function closeMeshlet(): Promise<void> {
  return close();
}
