/**
 * How the Express and Nest examples build their mesh: from the environment, the way a deployed
 * service is configured. (`meshlet/register` does the same for an app that builds no mesh itself;
 * see examples/zero-code.) Variables:
 *
 * - `MESHLET_SERVICE`: this process's service name (sent to callees as `meshlet-caller`, and to the
 *   control server); default: the example's own name;
 * - `MESHLET_CONFIG`: a JSON or YAML mesh config (the `services` of `createMesh`); default: the
 *   example's `mesh.yaml`;
 * - `MESHLET_CONTROL_PLANE`: `host:port` of a `meshlet control` server, to get services and
 *   endpoints from it (beside the file's); `MESHLET_CACHE_DIR`: where its last good config is kept;
 * - `PORT` (the app's, 0 for any free port) and `MESHLET_ADMIN_PORT` (`/metrics`, `/stats`, `/readyz`).
 *
 * A bad value fails at start-up, naming the variable (or the file and config path).
 */
import type { Server } from 'node:http';
import type { AddressInfo } from 'node:net';
import { fileURLToPath } from 'node:url';
import type { Express } from 'express';
import { createMesh, type Mesh, type MeshOptions } from '@meshlet/core';
import { controlPlane, readConfigFile } from '@meshlet/discovery';
import { createAdminMeterProvider, startAdminServer, type AdminServer } from 'meshlet';

/** The meter provider the mesh records into when MESHLET_ADMIN_PORT is set: `/metrics` reads it. */
let adminMeterProvider: ReturnType<typeof createAdminMeterProvider> | undefined;

/** The example's `createMesh` options from the environment; `defaultConfig` is its own mesh.yaml. */
export async function meshOptionsFromEnv(service: string, defaultConfig: URL): Promise<MeshOptions> {
  const control = process.env.MESHLET_CONTROL_PLANE || undefined;
  const configPath = process.env.MESHLET_CONFIG || fileURLToPath(defaultConfig);
  // With a control plane, routes may name services only the control server knows.
  const file = await readConfigFile(configPath, { standalone: control === undefined }).catch((err: unknown) => {
    // The message names the file, line and config path; say which variable chose the file.
    const message = err instanceof Error ? err.message : String(err);
    throw new Error(process.env.MESHLET_CONFIG ? `MESHLET_CONFIG: ${message}` : message, { cause: err });
  });
  const options: MeshOptions = { ...file.config, service: process.env.MESHLET_SERVICE || service };
  if (portFromEnv('MESHLET_ADMIN_PORT') !== undefined) {
    adminMeterProvider ??= createAdminMeterProvider();
    options.telemetry = { meterProvider: adminMeterProvider };
  }
  if (control !== undefined) {
    options.discovery = [controlPlane({ address: control, cacheDir: process.env.MESHLET_CACHE_DIR || undefined })];
  }
  return options;
}

/** `createMesh(await meshOptionsFromEnv(service, defaultConfig))`. */
export async function meshFromEnv(service: string, defaultConfig: URL): Promise<Mesh> {
  return createMesh(await meshOptionsFromEnv(service, defaultConfig));
}

/** A TCP port from the environment variable `name` (0: any free port), `fallback` when unset. */
export function portFromEnv(name: string, fallback: number): number;
export function portFromEnv(name: string, fallback?: undefined): number | undefined;
export function portFromEnv(name: string, fallback?: number): number | undefined {
  const raw = process.env[name];
  if (raw === undefined || raw === '') return fallback;
  const port = Number(raw);
  if (!/^\d+$/.test(raw) || port > 65_535) {
    throw new Error(`${name}: expected a port number from 0 to 65535, got ${JSON.stringify(raw)}`);
  }
  return port;
}

/** One JSON line on stdout: the examples' log format (the e2e tests read it). */
export function log(record: Record<string, unknown>): void {
  process.stdout.write(`${JSON.stringify(record)}\n`);
}

/** Exits with the error's message (a start-up error names the variable, file or config path). */
export function fail(err: unknown): never {
  process.stderr.write(`${err instanceof Error ? err.message : String(err)}\n`);
  process.exit(1);
}

/**
 * The admin endpoint (`/metrics`, `/stats`, `/readyz`) on MESHLET_ADMIN_PORT (and
 * MESHLET_ADMIN_HOST, default 127.0.0.1), when set; it closes with the mesh.
 */
export async function startAdminFromEnv(mesh: Mesh): Promise<AdminServer | undefined> {
  const port = portFromEnv('MESHLET_ADMIN_PORT');
  if (port === undefined) return undefined;
  return startAdminServer(mesh, {
    port,
    host: process.env.MESHLET_ADMIN_HOST || '127.0.0.1',
    meterProvider: adminMeterProvider,
  });
}

/**
 * Listens on `port` (HOST, default 127.0.0.1), logs `listening`, and on SIGTERM/SIGINT stops
 * accepting, closes the mesh (in-flight calls finish first, bounded; the admin endpoint closes with
 * it) and exits. Returns the port it listens on.
 */
export async function serve(
  app: Express,
  port: number,
  service: string,
  mesh: Mesh,
  admin: AdminServer | undefined,
): Promise<number> {
  const server = await new Promise<Server>((resolve, reject) => {
    const s = app.listen(port, process.env.HOST || '127.0.0.1', (err?: Error) => (err ? reject(err) : resolve(s)));
  }).catch(fail);
  const listening = server.address() as AddressInfo;
  log({ service, event: 'listening', port: listening.port, adminPort: admin?.address.port ?? null });
  const stop = async (): Promise<void> => {
    server.close();
    await mesh.close();
    process.exit(0);
  };
  process.once('SIGTERM', () => void stop());
  process.once('SIGINT', () => void stop());
  return listening.port;
}
