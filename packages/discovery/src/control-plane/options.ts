/** Options of `controlPlane()` and their defaults. */
import type { ChannelCredentials } from '@grpc/grpc-js';
import { MeshConfigError } from '@meshlet/core';

export interface BackoffOptions {
  /** First delay, ms. Default 1000. */
  initialMs?: number;
  /** Growth per failed attempt. Default 1.6. */
  multiplier?: number;
  /** Longest delay, ms. Default 120 000. */
  maxMs?: number;
  /** Random spread, ± this fraction of the delay. Default 0.2. */
  jitter?: number;
}

export interface ControlPlaneOptions {
  /** `host:port` of the control server (`meshlet control`, default port 15010). */
  address: string;
  /**
   * Directory for a disk copy of the last good config, so a process can start while the control
   * server is down. Default: none (no cache).
   */
  cacheDir?: string;
  /** How this process presents itself to the control server. */
  node?: {
    /** Unique per process. Default `<hostname>/<pid>/<random>`. */
    id?: string;
    zone?: string;
    metadata?: Record<string, string>;
  };
  /** gRPC channel credentials. Default `grpc.credentials.createInsecure()`. */
  credentials?: ChannelCredentials;
  /** Reconnect backoff. Default `{ initialMs: 1000, multiplier: 1.6, maxMs: 120000, jitter: 0.2 }` (gRPC's). */
  backoff?: BackoffOptions;
  /** How long `register()` waits for the control server's reply, ms. Default 10 000. */
  registrationTimeoutMs?: number;
}

export const CONTROL_PLANE_DEFAULTS = {
  backoff: { initialMs: 1000, multiplier: 1.6, maxMs: 120_000, jitter: 0.2 },
  registrationTimeoutMs: 10_000,
} as const;

const MAX_DELAY = 2 ** 31 - 1;

export interface ResolvedControlPlaneOptions {
  address: string;
  cacheDir: string | undefined;
  node: { id: string | undefined; zone: string | undefined; metadata: Record<string, string> };
  credentials: ChannelCredentials | undefined;
  backoff: Required<BackoffOptions>;
  registrationTimeoutMs: number;
}

/** Checks the options; throws `MeshConfigError` naming the option (`controlPlane.backoff.maxMs`). */
export function resolveControlPlaneOptions(opts: ControlPlaneOptions): ResolvedControlPlaneOptions {
  const issues: Array<{ path: string; message: string }> = [];
  const o = (opts ?? {}) as Partial<ControlPlaneOptions>;
  const address = o.address;
  if (
    typeof address !== 'string' ||
    !/^(\[[0-9A-Fa-f:.]+\]|[^\s:/[\]]+):\d{1,5}$/.test(address) ||
    Number(address.slice(address.lastIndexOf(':') + 1)) > 65535
  ) {
    issues.push({
      path: 'controlPlane.address',
      message: `expected "host:port" (e.g. "127.0.0.1:15010"), got ${JSON.stringify(address)}`,
    });
  }
  if (o.cacheDir !== undefined && (typeof o.cacheDir !== 'string' || o.cacheDir === '')) {
    issues.push({
      path: 'controlPlane.cacheDir',
      message: `expected a directory path, got ${JSON.stringify(o.cacheDir)}`,
    });
  }
  const num = (path: string, v: unknown, dflt: number, min: number, max: number, integer: boolean): number => {
    if (v === undefined) return dflt;
    if (typeof v !== 'number' || !Number.isFinite(v) || v < min || v > max || (integer && !Number.isInteger(v))) {
      issues.push({
        path,
        message: `expected ${integer ? 'an integer' : 'a number'} from ${min} to ${max}, got ${String(v)}`,
      });
      return dflt;
    }
    return v;
  };
  const b = o.backoff ?? {};
  const d = CONTROL_PLANE_DEFAULTS.backoff;
  const backoff = {
    initialMs: num('controlPlane.backoff.initialMs', b.initialMs, d.initialMs, 1, MAX_DELAY, true),
    multiplier: num('controlPlane.backoff.multiplier', b.multiplier, d.multiplier, 1, 100, false),
    maxMs: num('controlPlane.backoff.maxMs', b.maxMs, d.maxMs, 1, MAX_DELAY, true),
    jitter: num('controlPlane.backoff.jitter', b.jitter, d.jitter, 0, 1, false),
  };
  if (backoff.maxMs < backoff.initialMs) {
    issues.push({
      path: 'controlPlane.backoff.maxMs',
      message: `expected >= backoff.initialMs (${backoff.initialMs}), got ${backoff.maxMs}`,
    });
  }
  const registrationTimeoutMs = num(
    'controlPlane.registrationTimeoutMs',
    o.registrationTimeoutMs,
    CONTROL_PLANE_DEFAULTS.registrationTimeoutMs,
    1,
    MAX_DELAY,
    true,
  );
  const node = o.node ?? {};
  if (node.id !== undefined && (typeof node.id !== 'string' || node.id === '')) {
    issues.push({
      path: 'controlPlane.node.id',
      message: `expected a non-empty string, got ${JSON.stringify(node.id)}`,
    });
  }
  if (node.zone !== undefined && typeof node.zone !== 'string') {
    issues.push({ path: 'controlPlane.node.zone', message: `expected a string, got ${JSON.stringify(node.zone)}` });
  }
  const metadata: Record<string, string> = {};
  if (node.metadata !== undefined) {
    if (typeof node.metadata !== 'object' || node.metadata === null) {
      issues.push({ path: 'controlPlane.node.metadata', message: 'expected an object of strings' });
    } else {
      for (const [k, v] of Object.entries(node.metadata)) {
        if (typeof v !== 'string')
          issues.push({ path: `controlPlane.node.metadata.${k}`, message: `expected a string, got ${typeof v}` });
        else metadata[k] = v;
      }
    }
  }
  if (issues.length > 0) throw new MeshConfigError(issues);
  return {
    address: address as string,
    cacheDir: o.cacheDir,
    node: { id: node.id, zone: node.zone, metadata },
    credentials: o.credentials,
    backoff,
    registrationTimeoutMs,
  };
}
