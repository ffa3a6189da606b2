/**
 * `createMesh`: the in-process mesh. Holds one Service per configured service, applies
 * validated config updates atomically, routes calls, and owns the shared telemetry.
 * Protocol packages call `mesh.call(service, req, protocol)`; users call `update`,
 * `stats` and `close`.
 */
import type { Clock } from './clock.js';
import { systemClock } from './clock.js';
import type { MeshConfig, ResolvedMeshConfig } from './config/types.js';
import { validateMeshConfig } from './config/validate.js';
import type { Endpoint } from './endpoint.js';
import { MeshClosedError, MeshConfigError, UnknownServiceError } from './errors.js';
import type { Protocol } from './protocol.js';
import { Service, type ServiceStats } from './service.js';
import { MeshTelemetry, type TelemetryOptions } from './telemetry/telemetry.js';

export interface MeshOptions extends MeshConfig {
  /** Window of the latency percentiles in `stats()`, ms. Default 10 000. */
  statsWindowMs?: number;
  /** Providers to use instead of the global OpenTelemetry ones. */
  telemetry?: TelemetryOptions;
  /** Clock (tests). Default `performance.now()`. */
  clock?: Clock;
  /** Random source in [0, 1) (tests). Default `Math.random`. */
  random?: () => number;
}

export interface MeshStats {
  services: Record<string, ServiceStats>;
}

/** Listener for mesh lifecycle events; protocol packages use it to manage their connection pools. */
export interface MeshListener {
  /** An endpoint address left a service. */
  endpointRemoved?(service: string, endpoint: Endpoint): void;
  /** The mesh closed; release everything. May return a promise `close()` waits for. */
  closed?(): void | Promise<void>;
}

const OPTION_KEYS = new Set(['services', 'statsWindowMs', 'telemetry', 'clock', 'random']);

export class Mesh {
  private services = new Map<string, Service>();
  private readonly listeners = new Set<MeshListener>();
  private readonly telemetry: MeshTelemetry;
  private readonly clock: Clock;
  private readonly random: () => number;
  private readonly statsWindowMs: number;
  private closed = false;
  private closing: Promise<void> | undefined;

  constructor(options: MeshOptions) {
    if (typeof options !== 'object' || options === null) {
      throw new MeshConfigError([{ path: '', message: `expected an object with "services", got ${String(options)}` }]);
    }
    for (const key of Object.keys(options)) {
      if (!OPTION_KEYS.has(key)) {
        throw new MeshConfigError([{ path: key, message: `unknown option (known: ${[...OPTION_KEYS].join(', ')})` }]);
      }
    }
    const windowMs = options.statsWindowMs ?? 10_000;
    if (!Number.isInteger(windowMs) || windowMs < 100) {
      throw new MeshConfigError([
        { path: 'statsWindowMs', message: `expected an integer >= 100, got ${String(options.statsWindowMs)}` },
      ]);
    }
    const resolved = validateMeshConfig({ services: options.services });
    this.clock = options.clock ?? systemClock;
    this.random = options.random ?? Math.random;
    this.statsWindowMs = windowMs;
    this.telemetry = new MeshTelemetry(options.telemetry);
    this.install(resolved);
  }

  /** True when `name` is a configured service (so a URL host can be routed through the mesh). */
  hasService(name: string): boolean {
    return this.services.has(name);
  }

  /** Configured service names. */
  serviceNames(): string[] {
    return [...this.services.keys()];
  }

  /** True when any service still lists this endpoint address. */
  hasEndpoint(address: string): boolean {
    for (const svc of this.services.values()) {
      for (const ep of svc.endpoints) if (ep.address === address) return true;
    }
    return false;
  }

  /**
   * Applies a new config. Validated first: an invalid one throws `MeshConfigError` and
   * changes nothing. Calls in flight finish on the endpoints they hold; removed
   * endpoints are drained by their transports.
   */
  update(config: MeshConfig): void {
    if (this.closed) throw new MeshClosedError();
    if (typeof config !== 'object' || config === null) {
      throw new MeshConfigError([{ path: '', message: `expected an object with "services", got ${String(config)}` }]);
    }
    for (const key of Object.keys(config)) {
      if (key !== 'services') throw new MeshConfigError([{ path: key, message: 'unknown key (known: services)' }]);
    }
    this.install(validateMeshConfig(config));
  }

  private install(resolved: ResolvedMeshConfig): void {
    const next = new Map<string, Service>();
    for (const [name, cfg] of resolved.services) {
      const existing = this.services.get(name);
      if (existing) {
        existing.apply(cfg);
        next.set(name, existing);
      } else {
        next.set(
          name,
          new Service(cfg, {
            clock: this.clock,
            random: this.random,
            telemetry: this.telemetry,
            statsWindowMs: this.statsWindowMs,
            onEndpointRemoved: (service, ep) => this.emitRemoved(service, ep),
          }),
        );
      }
    }
    const old = this.services;
    this.services = next;
    for (const [name, svc] of old) {
      if (next.has(name)) continue;
      svc.close(new MeshClosedError(name));
      for (const ep of svc.endpoints) this.emitRemoved(name, ep);
    }
  }

  private emitRemoved(service: string, ep: Endpoint): void {
    for (const l of this.listeners) l.endpointRemoved?.(service, ep);
  }

  /** Registers a lifecycle listener; returns a function that removes it. */
  subscribe(listener: MeshListener): () => void {
    this.listeners.add(listener);
    return () => this.listeners.delete(listener);
  }

  /**
   * Sends one logical call to `service` through routing, admission, retries, balancing
   * and the endpoint tier. `signal` aborts it (the promise rejects with the signal's reason).
   */
  call<Req, Res>(service: string, req: Req, protocol: Protocol<Req, Res>, signal?: AbortSignal): Promise<Res> {
    if (this.closed) return Promise.reject(new MeshClosedError(service));
    const svc = this.services.get(service);
    if (svc === undefined) return Promise.reject(new UnknownServiceError(service, [...this.services.keys()]));
    const route = svc.matchRoute(req, protocol);
    if (route === undefined) return svc.call(req, protocol, service, undefined, signal);
    const backend = pickBackend(route.backends, route.totalWeight, this.random);
    const target = this.services.get(backend);
    if (target === undefined) return Promise.reject(new UnknownServiceError(backend, [...this.services.keys()]));
    return target.call(req, protocol, service, route.name, signal);
  }

  /** A plain-JSON snapshot of every service and endpoint. */
  stats(): MeshStats {
    const services: Record<string, ServiceStats> = {};
    for (const [name, svc] of this.services) services[name] = svc.stats();
    return { services };
  }

  /** Releases every timer, breaker and (through listeners) socket. Idempotent. */
  close(): Promise<void> {
    if (this.closing) return this.closing;
    this.closed = true;
    for (const [name, svc] of this.services) svc.close(new MeshClosedError(name));
    this.closing = Promise.all([...this.listeners].map((l) => l.closed?.())).then(() => {
      this.listeners.clear();
    });
    return this.closing;
  }

  get isClosed(): boolean {
    return this.closed;
  }
}

function pickBackend(
  backends: ReadonlyArray<{ service: string; weight: number }>,
  total: number,
  random: () => number,
): string {
  if (backends.length === 1) return backends[0].service;
  let x = random() * total;
  for (let i = 0; i < backends.length; i++) {
    x -= backends[i].weight;
    if (x < 0) return backends[i].service;
  }
  return backends[backends.length - 1].service;
}

/** Creates a mesh from validated options. Throws `MeshConfigError` naming the bad path. */
export function createMesh(options: MeshOptions): Mesh {
  return new Mesh(options);
}
