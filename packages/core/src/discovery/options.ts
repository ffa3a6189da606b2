/**
 * The `createMesh` options that concern where config comes from: `service`, `discovery`,
 * `startupTimeoutMs` and `dnsResolver`. Read (guarded) and taken out of the options before the
 * rest goes to `validateMeshOptions`.
 */
import { MAX_DURATION_MS } from '../config/validate.js';
import { MeshConfigError } from '../errors.js';
import type { DnsResolverLike, DnsWatcherOptions } from './dns.js';
import type { DiscoverySource } from './source.js';

export interface DiscoveryOptions {
  /** This process's own service name: sent to the control plane, used by `register()` defaults. */
  service?: string;
  /** Where config comes from besides `services`: `controlPlane(...)`, `watchFile(...)` from `@meshlet/discovery`. */
  discovery?: DiscoverySource[];
  /**
   * How long a call to a name that may be a service waits for the first config before failing
   * with `MESHLET_ERR_NOT_READY`, and `ready()`'s default timeout, ms. Default 10 000.
   */
  startupTimeoutMs?: number;
  /** Resolver for `dns` services (`new dns.promises.Resolver()` with its own servers). Default: the system's. */
  dnsResolver?: DnsResolverLike;
}

export const DISCOVERY_OPTION_KEYS = ['service', 'discovery', 'startupTimeoutMs', 'dnsResolver'];
export const DEFAULT_STARTUP_TIMEOUT_MS = 10_000;

export interface ReadDiscoveryOptions {
  service: string | undefined;
  sources: DiscoverySource[];
  startupTimeoutMs: number;
  dns: Partial<DnsWatcherOptions> | undefined;
  /** The options without these keys, for `validateMeshOptions`. */
  rest: unknown;
}

export function readDiscoveryOptions(options: unknown): ReadDiscoveryOptions {
  const out: ReadDiscoveryOptions = {
    service: undefined,
    sources: [],
    startupTimeoutMs: DEFAULT_STARTUP_TIMEOUT_MS,
    dns: undefined,
    rest: options,
  };
  if (typeof options !== 'object' || options === null) return out;
  const issues: Array<{ path: string; message: string }> = [];
  // Null prototype: an own "__proto__" key in the options must stay data, not set rest's prototype.
  const rest = Object.create(null) as Record<string, unknown>;
  let raw: Record<string, unknown>;
  try {
    if (Array.isArray(options)) return out;
    raw = Object.create(null) as Record<string, unknown>;
    for (const key of Object.keys(options)) {
      const value = (options as Record<string, unknown>)[key];
      if (DISCOVERY_OPTION_KEYS.includes(key)) raw[key] = value;
      else rest[key] = value;
    }
  } catch {
    // validateMeshOptions reports an unreadable options object with its path.
    return out;
  }
  out.rest = rest;
  if (raw.service !== undefined) {
    if (typeof raw.service !== 'string' || raw.service.length === 0 || raw.service.length > 253) {
      issues.push({
        path: 'service',
        message: `expected this process's service name (a string), got ${show(raw.service)}`,
      });
    } else out.service = raw.service;
  }
  if (raw.discovery !== undefined) {
    if (!Array.isArray(raw.discovery)) {
      issues.push({ path: 'discovery', message: `expected an array of discovery sources, got ${show(raw.discovery)}` });
    } else {
      raw.discovery.forEach((s: unknown, i: number) => {
        const ok =
          typeof s === 'object' &&
          s !== null &&
          typeof (s as DiscoverySource).start === 'function' &&
          typeof (s as DiscoverySource).close === 'function' &&
          typeof (s as DiscoverySource).describe === 'function';
        if (!ok) {
          issues.push({
            path: `discovery[${i}]`,
            message: `expected a discovery source (controlPlane(...) or watchFile(...) from @meshlet/discovery), got ${show(s)}`,
          });
        } else out.sources.push(s as DiscoverySource);
      });
    }
  }
  if (raw.startupTimeoutMs !== undefined) {
    const v = raw.startupTimeoutMs;
    if (typeof v !== 'number' || !Number.isInteger(v) || v < 0 || v > MAX_DURATION_MS) {
      issues.push({
        path: 'startupTimeoutMs',
        message: `expected an integer number of ms from 0 to ${MAX_DURATION_MS}, got ${show(v)}`,
      });
    } else out.startupTimeoutMs = v;
  }
  if (raw.dnsResolver !== undefined) {
    const r = raw.dnsResolver as Record<string, unknown> | null;
    if (
      typeof r !== 'object' ||
      r === null ||
      typeof r.resolve4 !== 'function' ||
      typeof r.resolve6 !== 'function' ||
      typeof r.resolveSrv !== 'function'
    ) {
      issues.push({
        path: 'dnsResolver',
        message: `expected a resolver with resolve4, resolve6 and resolveSrv (e.g. new dns.promises.Resolver()), got ${show(r)}`,
      });
    } else out.dns = { resolver: r as unknown as DnsResolverLike };
  }
  if (issues.length > 0) throw new MeshConfigError(issues);
  // With sources, static services are optional: the sources bring them.
  if (rest.services === undefined && out.sources.length > 0) rest.services = {};
  return out;
}

function show(v: unknown): string {
  if (typeof v === 'string') return JSON.stringify(v.length > 60 ? `${v.slice(0, 60)}…` : v);
  if (typeof v === 'object' && v !== null) return Array.isArray(v) ? 'an array' : 'an object';
  return String(v);
}
