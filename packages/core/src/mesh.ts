/**
 * `createMesh`: the in-process mesh. Holds one Service per configured service, applies
 * validated config updates atomically, routes calls, and owns the shared telemetry.
 * Protocol packages call `mesh.call(service, req, protocol)`; users call `update`,
 * `stats` and `close`.
 */
import type { Clock } from './clock.js';
import { systemClock } from './clock.js';
import type { MeshConfig, ResolvedMeshConfig } from './config/types.js';
import { validateMeshOptions, validateMeshUpdate } from './config/options.js';
import type { Endpoint } from './endpoint.js';
import { MeshClosedError, MeshConfigError, UnknownServiceError, UnsupportedError } from './errors.js';
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
  /**
   * An endpoint left its service (`endpoint.active` is false from then on). Told once the
   * update is in place, for every endpoint that left, the endpoints of removed services
   * included; `mesh.hasEndpoint(endpoint.address)` says whether another service still lists
   * the address.
   */
  endpointRemoved?(service: string, endpoint: Endpoint): void;
  /** The mesh closed; release everything. May return a promise `close()` waits for. */
  closed?(): void | Promise<void>;
}

export class Mesh {
  private services = new Map<string, Service>();
  private readonly listeners = new Set<MeshListener>();
  private readonly telemetry: MeshTelemetry;
  private readonly clock: Clock;
  private readonly random: () => number;
  private readonly statsWindowMs: number;
  private closed = false;
  private closing: Promise<void> | undefined;
  /** Services removed by an update whose calls are still in flight. */
  private readonly draining = new Set<Service>();
  /** How many services list each endpoint address: a transport's pool goes when it drops to 0. */
  private readonly addressRefs = new Map<string, number>();

  constructor(options: MeshOptions) {
    const valid = validateMeshOptions(options);
    const resolved = valid.config;
    this.clock = valid.clock ?? systemClock;
    this.random = valid.random ?? Math.random;
    this.statsWindowMs = valid.statsWindowMs;
    this.telemetry = new MeshTelemetry(valid.telemetry);
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

  /** True when any service still lists this endpoint address. O(1). */
  hasEndpoint(address: string): boolean {
    return this.addressRefs.has(address);
  }

  /**
   * Applies a new config. Validated first: an invalid one throws `MeshConfigError` and
   * changes nothing. Calls in flight finish on the endpoints they hold; removed
   * endpoints are drained by their transports.
   */
  update(config: MeshConfig): void {
    if (this.closed) throw new MeshClosedError();
    this.install(validateMeshUpdate(config));
  }

  private install(resolved: ResolvedMeshConfig): void {
    const next = new Map<string, Service>();
    const left: Array<[string, Endpoint]> = [];
    for (const [name, cfg] of resolved.services) {
      const existing = this.services.get(name);
      if (existing) {
        for (const ep of existing.endpoints) this.unref(ep.address);
        for (const ep of existing.apply(cfg)) left.push([name, ep]);
        next.set(name, existing);
      } else {
        next.set(
          name,
          new Service(cfg, {
            clock: this.clock,
            random: this.random,
            telemetry: this.telemetry,
            statsWindowMs: this.statsWindowMs,
          }),
        );
      }
      for (const ep of next.get(name)!.endpoints)
        this.addressRefs.set(ep.address, (this.addressRefs.get(ep.address) ?? 0) + 1);
    }
    const old = this.services;
    this.services = next;
    for (const [name, svc] of old) {
      if (next.has(name)) continue;
      for (const ep of svc.endpoints) {
        this.unref(ep.address);
        ep.active = false;
        left.push([name, ep]);
      }
      // Queued calls are refused; admitted ones finish under their deadlines, then it stops.
      svc.retire(new UnknownServiceError(name, next.keys(), 'removed from the config while the call waited'));
      this.draining.add(svc);
      void svc.idle().then(() => {
        svc.stop();
        this.draining.delete(svc);
      });
    }
    // Told once the new config is in place.
    for (const [name, ep] of left) for (const l of this.listeners) l.endpointRemoved?.(name, ep);
  }

  /** Drops one reference to an address (re-added by `install` for the services that keep it). */
  private unref(address: string): void {
    const n = this.addressRefs.get(address);
    if (n === undefined) return;
    if (n <= 1) this.addressRefs.delete(address);
    else this.addressRefs.set(address, n - 1);
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
    if (svc === undefined) return Promise.reject(new UnknownServiceError(service, this.services.keys()));
    const route = svc.matchRoute(req, protocol);
    if (route === undefined) {
      if (!speaks(svc, protocol)) return Promise.reject(protocolMismatch(svc, protocol));
      return svc.call(req, protocol, service, undefined, signal);
    }
    const backend = pickBackend(route.backends, route.totalWeight, this.random);
    const target = this.services.get(backend);
    if (target === undefined) return Promise.reject(new UnknownServiceError(backend, this.services.keys()));
    if (!speaks(target, protocol)) return Promise.reject(protocolMismatch(target, protocol));
    return target.call(req, protocol, service, route.name, signal);
  }

  /** A plain-JSON snapshot of every service and endpoint. */
  stats(): MeshStats {
    const services: Record<string, ServiceStats> = {};
    for (const [name, svc] of this.services) services[name] = svc.stats();
    return { services };
  }

  /**
   * Closes the mesh. New calls fail at once with `MESHLET_ERR_CLOSED`, and so do calls
   * still queued for a concurrency slot. Calls in flight run on under their own deadlines
   * until they end or `graceMs` passes (default 10 000), whichever comes first; those left
   * then are cut and fail with `MESHLET_ERR_CLOSED`. Then every timer, breaker and (through
   * listeners) socket is released. So `close()` resolves within min(longest deadline in
   * flight, `graceMs`) plus the time transports take to release their sockets. Idempotent.
   */
  close(options: { graceMs?: number } = {}): Promise<void> {
    if (this.closing) return this.closing;
    const graceMs = options?.graceMs ?? DEFAULT_CLOSE_GRACE_MS;
    if (typeof graceMs !== 'number' || !(graceMs >= 0) || graceMs > MAX_TIMER_MS) {
      return Promise.reject(
        new MeshConfigError([
          { path: 'graceMs', message: `expected a number of ms from 0 to ${MAX_TIMER_MS}, got ${String(graceMs)}` },
        ]),
      );
    }
    this.closed = true;
    const all = [...this.services.values(), ...this.draining];
    for (const svc of all) svc.retire(new MeshClosedError(svc.name));
    this.closing = (async () => {
      await idleWithin(all, graceMs);
      for (const svc of all) svc.abortAll(new MeshClosedError(svc.name));
      // Cut attempts reject at once through their transports' abort handlers.
      await idleWithin(all, 1000);
      for (const svc of all) svc.stop();
      this.draining.clear();
      await Promise.all([...this.listeners].map((l) => l.closed?.()));
      this.listeners.clear();
    })();
    return this.closing;
  }

  get isClosed(): boolean {
    return this.closed;
  }
}

/**
 * Whether a service's configured protocol (`protocol`, default `http`) is the caller's.
 * Only the mesh's own protocols are checked; a custom protocol (tests, extensions) may call any service.
 */
function speaks(svc: Service, protocol: { readonly name: string }): boolean {
  const name = protocol.name;
  if (name !== 'http' && name !== 'grpc') return true;
  return ((svc.config as { protocol?: string }).protocol ?? 'http') === name;
}

function protocolMismatch(svc: Service, protocol: { name: string }): UnsupportedError {
  const configured = (svc.config as { protocol?: string }).protocol ?? 'http';
  return new UnsupportedError(
    svc.name,
    `the service is configured with protocol "${configured}" but was called over ${protocol.name}; ` +
      `call it with a ${configured} client or change services["${svc.name}"].protocol`,
  );
}

const DEFAULT_CLOSE_GRACE_MS = 10_000;
const MAX_TIMER_MS = 2_147_483_647;

/** Resolves when every service is idle, or after `ms`. */
function idleWithin(services: readonly Service[], ms: number): Promise<void> {
  const busy = services.filter((s) => s.activeCalls > 0);
  if (busy.length === 0) return Promise.resolve();
  return new Promise((resolve) => {
    const timer = setTimeout(resolve, ms);
    void Promise.all(busy.map((s) => s.idle())).then(() => {
      clearTimeout(timer);
      resolve();
    });
  });
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
