/**
 * The environment variables of `meshlet/register`, read and checked in one place (the only
 * place meshlet reads the environment). `readEnv` is pure apart from reading the config file
 * (synchronously: it runs at start-up, before the application's code), so every mistake is
 * found before the first request, and all of them are reported at once.
 *
 * | variable | meaning |
 * |---|---|
 * | `MESHLET_SERVICE` | this process's service name (sent to the control plane, `meshlet-caller` header, default service of `MESHLET_REGISTER`) |
 * | `MESHLET_CONFIG` | a JSON or YAML mesh config file (`{ services: { … } }`, the shape of `createMesh`'s config) |
 * | `MESHLET_CONTROL_PLANE` | `host:port` of the control server's gRPC port (`meshlet control`, 15010) |
 * | `MESHLET_CACHE_DIR` | directory for the control-plane client's disk copy of the last good config |
 * | `MESHLET_ZONE` | this process's zone (told to the control plane, and the zone of `MESHLET_REGISTER`) |
 * | `MESHLET_REGISTER` | `host:port` this process serves: registered as an endpoint of `MESHLET_SERVICE` once it accepts connections |
 * | `MESHLET_ADMIN_PORT` | port of the admin endpoint (/metrics, /stats, /readyz); unset: none |
 * | `MESHLET_ADMIN_HOST` | interface of the admin endpoint, default 127.0.0.1 |
 * | `MESHLET_UNKNOWN_HOSTS` | `pass` (default: other hosts go out untouched) or `reject` (fail with MESHLET_ERR_UNKNOWN_SERVICE) |
 * | `MESHLET_GRPC` | `auto` (default: mesh every grpc-js client and server when @grpc/grpc-js is installed) or `off` (leave grpc-js untouched) |
 * | `MESHLET_SHUTDOWN_GRACE_MS` | on SIGTERM/SIGINT, how long calls in flight may still run, default 10000 |
 * | `MESHLET_STARTUP_TIMEOUT_MS` | how long an early call waits for the first config, default 10000 |
 * | `MESHLET_STATS_WINDOW_MS` | window of the latency percentiles in /stats, default 10000 |
 *
 * An empty variable counts as unset.
 */
import { readFileSync, statSync } from 'node:fs';
import { resolve } from 'node:path';
import {
  closeMatches,
  MeshConfigError,
  validateMeshConfig,
  validateServiceConfig,
  type MeshConfig,
} from '@meshlet/core';
import { ConfigFileError, parseConfigText } from '@meshlet/discovery';

/** What `meshlet/register` does, read from the environment. */
export interface RegisterSettings {
  service: string | undefined;
  /** The config file as named in MESHLET_CONFIG, and its parsed config. */
  configFile: string | undefined;
  config: MeshConfig | undefined;
  controlPlane: string | undefined;
  cacheDir: string | undefined;
  zone: string | undefined;
  /** `host:port` to self-register. */
  register: string | undefined;
  adminPort: number | undefined;
  adminHost: string;
  unknownHosts: 'passthrough' | 'reject';
  /** `auto`: mesh grpc-js clients and servers with no code change (when grpc-js is installed); `off`: leave grpc-js alone. */
  grpc: 'auto' | 'off';
  shutdownGraceMs: number;
  startupTimeoutMs: number | undefined;
  statsWindowMs: number | undefined;
  /** Problems that do not stop the start (unknown MESHLET_ variables far from any real one). */
  warnings: string[];
}

/** Every variable `readEnv` reads (others starting with MESHLET_ are reported as unknown). */
export const ENV_VARIABLES = [
  'MESHLET_SERVICE',
  'MESHLET_CONFIG',
  'MESHLET_CONTROL_PLANE',
  'MESHLET_CACHE_DIR',
  'MESHLET_ZONE',
  'MESHLET_REGISTER',
  'MESHLET_ADMIN_PORT',
  'MESHLET_ADMIN_HOST',
  'MESHLET_UNKNOWN_HOSTS',
  'MESHLET_GRPC',
  'MESHLET_SHUTDOWN_GRACE_MS',
  'MESHLET_STARTUP_TIMEOUT_MS',
  'MESHLET_STATS_WINDOW_MS',
] as const;

/** Variables with the MESHLET_ prefix that are not meshlet/register's (the test harness, other tools). */
const FOREIGN = new Set(['MESHLET_NODE_CACHE']);

const PREFIX = 'MESHLET_';
const MAX_TIMER_MS = 2_147_483_647;
const HOST_PORT = /^(\[[0-9A-Fa-f:.]+\]|[^\s:/[\]@]+):(\d{1,5})$/;

type Issue = { path: string; message: string };

/**
 * Reads the settings from `env`. Throws one `MeshConfigError` whose issues are named by the
 * variable (`MESHLET_ADMIN_PORT: expected …`); a config-file problem names the variable, the
 * file (with line and column) and the config path.
 */
export function readEnv(env: NodeJS.ProcessEnv, cwd = process.cwd()): RegisterSettings {
  const issues: Issue[] = [];
  const get = (name: (typeof ENV_VARIABLES)[number]): string | undefined => {
    const v = env[name];
    return v === undefined || v.trim() === '' ? undefined : v.trim();
  };

  // A misspelt variable would be silently ignored: refuse one close to a real name, warn about the rest.
  const warnings: string[] = [];
  for (const key of Object.keys(env)) {
    if (!key.startsWith('MESHLET_') || (ENV_VARIABLES as readonly string[]).includes(key) || FOREIGN.has(key)) continue;
    const close = ENV_VARIABLES.filter((v) => likelyTypo(key.slice(PREFIX.length), v.slice(PREFIX.length)));
    if (close.length > 0) {
      issues.push({ path: key, message: `is not a meshlet/register variable: did you mean ${close.join(' or ')}?` });
    } else {
      warnings.push(`${key} is not a meshlet/register variable (ignored); they are ${ENV_VARIABLES.join(', ')}`);
    }
  }

  const service = get('MESHLET_SERVICE');
  if (service !== undefined && !validName(service)) {
    issues.push({
      path: 'MESHLET_SERVICE',
      message: `expected a service name of lower-case letters, digits, "." and "-" (at most 253 characters), got ${JSON.stringify(service)}`,
    });
  }

  const controlPlane = get('MESHLET_CONTROL_PLANE');
  if (controlPlane !== undefined && !validHostPort(controlPlane)) {
    issues.push({
      path: 'MESHLET_CONTROL_PLANE',
      message: `expected host:port of the control server's gRPC port (e.g. 127.0.0.1:15010), got ${JSON.stringify(controlPlane)}`,
    });
  }

  const configFile = get('MESHLET_CONFIG');
  let config: MeshConfig | undefined;
  if (configFile !== undefined) {
    config = readConfig(issues, configFile, resolve(cwd, configFile), controlPlane === undefined);
  }
  if (configFile === undefined && controlPlane === undefined) {
    issues.push({
      path: 'MESHLET_CONFIG',
      message:
        'meshlet/register needs a config: set MESHLET_CONFIG to a JSON or YAML mesh config file, or ' +
        'MESHLET_CONTROL_PLANE to host:port of a control server (or both)',
    });
  }

  const cacheDir = get('MESHLET_CACHE_DIR');
  if (cacheDir !== undefined && controlPlane === undefined) {
    issues.push({
      path: 'MESHLET_CACHE_DIR',
      message:
        "caches the control plane's config, so it needs MESHLET_CONTROL_PLANE: set it, or unset MESHLET_CACHE_DIR",
    });
  }
  const zone = get('MESHLET_ZONE');

  const register = get('MESHLET_REGISTER');
  if (register !== undefined) {
    if (!validHostPort(register) || Number(register.slice(register.lastIndexOf(':') + 1)) === 0) {
      issues.push({
        path: 'MESHLET_REGISTER',
        message: `expected host:port this process serves on, as other processes reach it (e.g. 10.0.0.7:8080), got ${JSON.stringify(register)}`,
      });
    } else if (service !== undefined && validName(service)) {
      try {
        validateServiceConfig(service, { endpoints: [zone === undefined ? register : { address: register, zone }] });
      } catch (err) {
        if (!(err instanceof MeshConfigError)) throw err;
        for (const i of err.issues) {
          const what = i.path.includes('zone') ? 'MESHLET_ZONE' : 'MESHLET_REGISTER';
          issues.push({ path: what, message: i.message });
        }
      }
    }
    if (service === undefined) {
      issues.push({
        path: 'MESHLET_REGISTER',
        message: "registers an endpoint of this process's service: set MESHLET_SERVICE too",
      });
    }
    if (controlPlane === undefined) {
      issues.push({
        path: 'MESHLET_REGISTER',
        message: 'registrations travel through the control server: set MESHLET_CONTROL_PLANE too',
      });
    }
  }

  const adminPort = port(issues, 'MESHLET_ADMIN_PORT', get('MESHLET_ADMIN_PORT'));
  // `[::1]` as written in URLs is the interface ::1.
  const adminHost = (get('MESHLET_ADMIN_HOST') ?? '127.0.0.1').replace(/^\[(.*)\]$/, '$1');
  if (!/^([0-9A-Fa-f:.]+|[A-Za-z0-9.-]+)$/.test(adminHost)) {
    issues.push({
      path: 'MESHLET_ADMIN_HOST',
      message: `expected an interface address or host name (e.g. 127.0.0.1, 0.0.0.0, ::1), got ${JSON.stringify(adminHost)}`,
    });
  } else if (get('MESHLET_ADMIN_HOST') !== undefined && adminPort === undefined) {
    issues.push({
      path: 'MESHLET_ADMIN_HOST',
      message: 'has no effect without MESHLET_ADMIN_PORT: set the port too, or unset MESHLET_ADMIN_HOST',
    });
  }

  const unknownRaw = get('MESHLET_UNKNOWN_HOSTS');
  let unknownHosts: 'passthrough' | 'reject' = 'passthrough';
  if (unknownRaw !== undefined) {
    const v = unknownRaw.toLowerCase();
    if (v === 'pass' || v === 'passthrough') unknownHosts = 'passthrough';
    else if (v === 'reject') unknownHosts = 'reject';
    else {
      issues.push({
        path: 'MESHLET_UNKNOWN_HOSTS',
        message: `expected "pass" (hosts that are not services go out untouched) or "reject", got ${JSON.stringify(unknownRaw)}`,
      });
    }
  }

  const grpcRaw = get('MESHLET_GRPC');
  let grpc: 'auto' | 'off' = 'auto';
  if (grpcRaw !== undefined) {
    const v = grpcRaw.toLowerCase();
    if (v === 'auto' || v === 'off') grpc = v;
    else {
      issues.push({
        path: 'MESHLET_GRPC',
        message: `expected "auto" (mesh grpc-js clients and servers with no code change) or "off" (leave grpc-js untouched), got ${JSON.stringify(grpcRaw)}`,
      });
    }
  }

  const shutdownGraceMs = ms(issues, 'MESHLET_SHUTDOWN_GRACE_MS', get('MESHLET_SHUTDOWN_GRACE_MS'), 0) ?? 10_000;
  const startupTimeoutMs = ms(issues, 'MESHLET_STARTUP_TIMEOUT_MS', get('MESHLET_STARTUP_TIMEOUT_MS'), 1);
  const statsWindowMs = ms(issues, 'MESHLET_STATS_WINDOW_MS', get('MESHLET_STATS_WINDOW_MS'), 100);

  if (issues.length > 0) throw new MeshConfigError(issues);
  return {
    service,
    configFile,
    config,
    controlPlane,
    cacheDir,
    zone,
    register,
    adminPort,
    adminHost,
    unknownHosts,
    grpc,
    shutdownGraceMs,
    startupTimeoutMs,
    statsWindowMs,
    warnings,
  };
}

/**
 * Reads and validates the config file synchronously with @meshlet/discovery's parser (the
 * same rules and limits as `watchFile` and the control server; errors carry file:line:column
 * and the config path). Beside a control plane the file need not be the whole mesh: its routes
 * may name services the control plane serves.
 */
function readConfig(issues: Issue[], named: string, path: string, standalone: boolean): MeshConfig | undefined {
  try {
    let bytes: Buffer;
    try {
      const stat = statSize(path);
      if (stat > 16 * 1024 * 1024) {
        throw new ConfigFileError(named, 'too-large', `${stat} bytes is too large for a mesh config file`);
      }
      bytes = readFileSync(path);
    } catch (err) {
      if (err instanceof ConfigFileError) throw err;
      const code = (err as NodeJS.ErrnoException).code;
      if (code === 'ENOENT' || code === 'ENOTDIR') {
        throw new ConfigFileError(
          named,
          'not-found',
          `not found${path !== named ? ` (looked for ${path})` : ''}: create the file or fix the path`,
        );
      }
      if (code === 'EISDIR' || code === 'ENOTREG') {
        throw new ConfigFileError(
          named,
          'io',
          `is not a regular file: point MESHLET_CONFIG to the mesh config file itself`,
        );
      }
      throw new ConfigFileError(named, 'io', `cannot be read (${code ?? (err as Error).message})`, undefined, {
        cause: err,
      });
    }
    let text: string;
    try {
      text = new TextDecoder('utf-8', { fatal: true }).decode(bytes);
    } catch {
      throw new ConfigFileError(named, 'encoding', 'is not valid UTF-8: save it as UTF-8');
    }
    return parseConfigText(text, named, undefined, { standalone }).config;
  } catch (err) {
    if (err instanceof MeshConfigError || err instanceof ConfigFileError) {
      issues.push({ path: 'MESHLET_CONFIG', message: err.message });
      return undefined;
    }
    throw err;
  }
}

/** The file's size, refusing a directory or anything but a regular file (a FIFO would block the read). */
function statSize(path: string): number {
  const st = statSync(path);
  if (!st.isFile()) {
    const err = new Error(st.isDirectory() ? 'is a directory' : 'not a regular file') as NodeJS.ErrnoException;
    err.code = st.isDirectory() ? 'EISDIR' : 'ENOTREG';
    throw err;
  }
  return st.size;
}

function port(issues: Issue[], name: string, raw: string | undefined): number | undefined {
  if (raw === undefined) return undefined;
  const n = Number(raw);
  if (!/^\d{1,5}$/.test(raw) || n > 65535) {
    issues.push({
      path: name,
      message: `expected a port number from 0 to 65535 (0: any free port), got ${JSON.stringify(raw)}`,
    });
    return undefined;
  }
  return n;
}

function ms(issues: Issue[], name: string, raw: string | undefined, min: number): number | undefined {
  if (raw === undefined) return undefined;
  const n = Number(raw);
  if (!/^\d+$/.test(raw) || n < min || n > MAX_TIMER_MS) {
    issues.push({
      path: name,
      message: `expected a whole number of milliseconds from ${min} to ${MAX_TIMER_MS}, got ${JSON.stringify(raw)}`,
    });
    return undefined;
  }
  return n;
}

function validHostPort(value: string): boolean {
  const m = HOST_PORT.exec(value);
  return m !== null && Number(m[2]) <= 65535;
}

/** The mesh's own service-name rules (core's validation of a service key). */
function validName(name: string): boolean {
  try {
    validateMeshConfig({ services: { [name]: { endpoints: [] } } });
    return true;
  } catch {
    return false;
  }
}

/**
 * Whether `name` is probably a misspelling of `real` (the parts after MESHLET_): at most one edit
 * apart, two for names of 8 characters or more (ADMIN_PROT → ADMIN_PORT). Short unrelated names
 * (MESHLET_BIN, MESHLET_PORT) are not typos of MESHLET_ZONE.
 */
function likelyTypo(name: string, real: string): boolean {
  const max = Math.max(name.length, real.length) >= 8 ? 2 : 1;
  if (Math.abs(name.length - real.length) > max) return false;
  let prev = Array.from({ length: real.length + 1 }, (_, j) => j);
  for (let i = 1; i <= name.length; i++) {
    const row = [i];
    for (let j = 1; j <= real.length; j++) {
      row[j] = Math.min(prev[j]! + 1, row[j - 1]! + 1, prev[j - 1]! + (name[i - 1] === real[j - 1] ? 0 : 1));
    }
    prev = row;
  }
  return prev[real.length]! <= max;
}
