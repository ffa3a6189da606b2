/**
 * `createMesh`: the in-process mesh. Holds one Service per configured service, applies
 * validated config updates atomically, routes calls, and owns the shared telemetry.
 * Protocol packages call `mesh.call(service, req, protocol)`; users call `update`,
 * `stats` and `close`.
 */
import { performance } from 'node:perf_hooks';
import type { Clock } from './clock.js';
import { systemClock } from './clock.js';
import type { MeshConfig, ResolvedMeshConfig } from './config/types.js';
import { validateMeshOptions, validateMeshUpdate } from './config/options.js';
import { isServiceName, validateServiceConfig } from './config/validate.js';
import { ConfigMerger } from './discovery/merge.js';
import { readDiscoveryOptions, type DiscoveryOptions } from './discovery/options.js';
import type { DiscoverySource, Registration, RegistrationHandle } from './discovery/source.js';
import type { Endpoint } from './endpoint.js';
import { MeshClosedError, MeshConfigError, NotReadyError, UnknownServiceError, UnsupportedError } from './errors.js';
import type { Protocol } from './protocol.js';
import { Service, type ServiceStats } from './service.js';
import { rejectWith } from './call/service-tier.js';
import { MeshTelemetry, type TelemetryOptions } from './telemetry/telemetry.js';
import { MeshInbound, type InboundRecorder } from './inbound/recorder.js';
import type { InboundStats } from './inbound/stats.js';

export interface MeshOptions extends Partial<MeshConfig>, DiscoveryOptions {
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
  /** Requests this process handled, per route and caller (filled by inbound adapters). */
  inbound: InboundStats[];
}

/** One discovery source's state, from `mesh.discoveryStatus()`. */
export interface SourceStatus {
  name: string;
  /** It has delivered a config (or its disk cache has). */
  ready: boolean;
  /** The last problem it reported through `sink.error`, if any since its last good update. */
  lastError: string | undefined;
  /** The source's own one-line account (`describe()`). */
  description: string;
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
  /**
   * A new config is in place (services or endpoints added, removed or changed), or the mesh has
   * just become ready: what `endpointAddresses` and `isReady` answer may have changed.
   */
  configChanged?(): void;
  /** The mesh closed; release everything. May return a promise `close()` waits for. */
  closed?(): void | Promise<void>;
}

export class Mesh {
  private services = new Map<string, Service>();
  private readonly listeners = new Set<MeshListener>();
  /**
   * The mesh's telemetry, for protocol packages (`@meshlet/http`, `@meshlet/grpc`): its tracer,
   * whether metrics, tracing and propagation are on (`refresh(now)` re-reads the providers at
   * most once a second), and the duration histograms (`duration(name)`, `serverDuration(name)`).
   */
  readonly telemetry: MeshTelemetry;
  private readonly clock: Clock;
  private readonly random: () => number;
  private readonly statsWindowMs: number;
  private closed = false;
  private closing: Promise<void> | undefined;
  /** Services removed by an update whose calls are still in flight. */
  private readonly draining = new Set<Service>();
  /** How many services list each endpoint address: a transport's pool goes when it drops to 0. */
  private readonly addressRefs = new Map<string, number>();
  /** The process's own service name (`createMesh({ service })`). */
  readonly service: string | undefined;
  /** Where inbound adapters (Express, Nest, …) report each request they handle; see `stats().inbound`. */
  readonly inbound: InboundRecorder;
  private readonly inboundImpl: MeshInbound;
  private readonly sources: readonly DiscoverySource[];
  private readonly sourceErrors: Array<Error | undefined>;
  private readonly merger: ConfigMerger;
  private readonly startupTimeoutMs: number;
  private readyFlag = false;
  private readonly readyPromise: Promise<void>;
  private resolveReady!: () => void;

  constructor(options: MeshOptions) {
    const discovery = readDiscoveryOptions(options);
    const valid = validateMeshOptions(discovery.rest);
    this.clock = valid.clock ?? systemClock;
    this.random = valid.random ?? Math.random;
    this.statsWindowMs = valid.statsWindowMs;
    this.telemetry = new MeshTelemetry(valid.telemetry);
    this.inbound = this.inboundImpl = new MeshInbound(this.telemetry, this.clock, this.statsWindowMs);
    this.service = discovery.service;
    this.sources = discovery.sources;
    this.sourceErrors = this.sources.map(() => undefined);
    this.startupTimeoutMs = discovery.startupTimeoutMs;
    this.readyPromise = new Promise((resolve) => (this.resolveReady = resolve));
    this.merger = new ConfigMerger(valid.config.services, this.sources.length, {
      apply: (config) => this.install(config),
      // A DNS failure keeps the last good endpoints; `dnsStatus()` reports it. Either way the
      // service has had its first answer, which is what readiness waits for.
      dnsEvent: () => this.checkReady(),
      dnsOptions: discovery.dns,
    });
    this.install(this.merger.initial());
    this.checkReady();
    const context = { service: this.service };
    this.sources.forEach((source, i) => {
      const sink = {
        update: (snapshot: unknown): void => {
          if (this.closed) return;
          this.merger.setSource(i, snapshot as never);
          this.sourceErrors[i] = undefined;
          this.checkReady();
        },
        error: (err: Error): void => {
          this.sourceErrors[i] = err instanceof Error ? err : new Error(String(err));
        },
      };
      try {
        source.start(sink, context);
      } catch (err) {
        // A source that throws from start() is reported, not fatal: its status says why.
        this.sourceErrors[i] = err instanceof Error ? err : new Error(String(err));
      }
    });
  }

  /** Resolves `ready()` once every source has delivered and every DNS service has answered (or failed) once. */
  private checkReady(): void {
    if (this.readyFlag) return;
    for (let i = 0; i < this.sources.length; i++) if (!this.merger.hasView(i)) return;
    if (this.merger.pendingDns().length > 0) return;
    this.readyFlag = true;
    this.resolveReady();
    for (const l of this.listeners) l.configChanged?.();
  }

  /** True once every discovery source (or its disk cache) has delivered a config; always true without sources. */
  get isReady(): boolean {
    return this.readyFlag;
  }

  /**
   * Resolves when every discovery source has delivered a first config (a source's disk cache
   * counts) and every `dns` service has had a first answer or failure. Rejects with
   * `NotReadyError` (`MESHLET_ERR_NOT_READY`) after `timeoutMs` (default: the mesh's
   * `startupTimeoutMs`, 10 000), or with the signal's reason; call it again to keep waiting.
   */
  ready(options: { timeoutMs?: number; signal?: AbortSignal } = {}): Promise<void> {
    if (this.readyFlag) return Promise.resolve();
    const ms = options.timeoutMs;
    if (ms !== undefined && !(typeof ms === 'number' && ms >= 0 && ms <= MAX_TIMER_MS)) {
      return Promise.reject(
        new MeshConfigError([
          { path: 'timeoutMs', message: `expected a number of ms from 0 to ${MAX_TIMER_MS}, got ${String(ms)}` },
        ]),
      );
    }
    return this.waitReady(undefined, ms ?? this.startupTimeoutMs, options.signal);
  }

  /**
   * Whether a call to `host` must wait for the mesh's first config before it is routed: true
   * before readiness for any name that could be a service (so it never leaks to DNS).
   * Protocol packages ask this for hosts that are not configured services.
   */
  mayBeService(host: string): boolean {
    return !this.readyFlag && !this.closed && isServiceName(host);
  }

  /** Waits for readiness on behalf of a call to `service` (bounded by `startupTimeoutMs` and `signal`). */
  waitReady(service: string | undefined, timeoutMs = this.startupTimeoutMs, signal?: AbortSignal): Promise<void> {
    if (this.readyFlag) return Promise.resolve();
    if (signal?.aborted) return Promise.reject(signal.reason);
    return new Promise<void>((resolve, reject) => {
      const onAbort = (): void => {
        clearTimeout(timer);
        reject(signal!.reason);
      };
      const timer = setTimeout(() => {
        signal?.removeEventListener('abort', onAbort);
        reject(new NotReadyError(service, timeoutMs, this.describeSources()));
      }, timeoutMs);
      signal?.addEventListener('abort', onAbort, { once: true });
      void this.readyPromise.then(() => {
        clearTimeout(timer);
        signal?.removeEventListener('abort', onAbort);
        if (this.closed) reject(new MeshClosedError(service));
        else resolve();
      });
    });
  }

  private describeSources(): string[] {
    const out = this.sources.map((s, i) => {
      let d: string;
      try {
        d = s.describe();
      } catch (err) {
        d = `${s.name}: describe() failed: ${String(err)}`;
      }
      const e = this.sourceErrors[i];
      return e && !d.includes(e.message) ? `${d} (last error: ${e.message})` : d;
    });
    for (const name of this.merger.pendingDns()) out.push(`DNS for service "${name}": no answer yet`);
    return out;
  }

  /** Each discovery source's state: ready or not, its last error and its own description. */
  discoveryStatus(): SourceStatus[] {
    return this.sources.map((s, i) => {
      let description: string;
      try {
        description = s.describe();
      } catch (err) {
        description = `describe() failed: ${String(err)}`;
      }
      return {
        name: s.name,
        ready: this.merger.hasView(i),
        lastError: this.sourceErrors[i]?.message,
        description,
      };
    });
  }

  /** Every `dns` service: its DNS name, how many endpoints the last answer gave, and the last error. */
  dnsStatus(): Array<{ service: string; name: string; endpoints: number; error: string | undefined }> {
    return this.merger.dnsStatus();
  }

  /**
   * Announces an endpoint of this process through the first discovery source that carries
   * registrations (`controlPlane(...)` from `@meshlet/discovery`). Resolves once the source
   * has accepted it; `handle.withdraw()` removes it, and `mesh.close()` withdraws every one
   * before the mesh stops. Throws `MeshConfigError` for an invalid registration and
   * `UnsupportedError` when no source carries registrations.
   */
  async register(registration: Registration): Promise<RegistrationHandle> {
    if (this.closed) throw new MeshClosedError(readField(registration, 'service'));
    const reg = checkRegistration(registration);
    const source = this.sources.find((s) => typeof s.register === 'function');
    if (source === undefined) {
      throw new UnsupportedError(
        reg.service,
        'mesh.register() needs a discovery source that carries registrations: ' +
          "pass discovery: [controlPlane({ address: 'host:15010' })] (from @meshlet/discovery) to createMesh",
      );
    }
    return source.register!(reg);
  }

  /** True when `name` is a configured service (so a URL host can be routed through the mesh). */
  hasService(name: string): boolean {
    return this.services.has(name);
  }

  /** Configured service names. */
  serviceNames(): string[] {
    return [...this.services.keys()];
  }

  /**
   * The endpoint addresses (`host:port`) a configured service lists now, or undefined for an
   * unknown service: a cheap read for a protocol package deriving state from them (`stats()`
   * computes every service's figures).
   */
  endpointAddresses(service: string): string[] | undefined {
    const svc = this.services.get(service);
    if (svc === undefined) return undefined;
    const eps = svc.endpoints;
    const out = new Array<string>(eps.length);
    for (let i = 0; i < eps.length; i++) out[i] = eps[i].address;
    return out;
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
    this.merger.setStatic(validateMeshUpdate(config).services);
  }

  private install(resolved: ResolvedMeshConfig): void {
    const next = new Map<string, Service>();
    const left: Array<[string, Endpoint]> = [];
    for (const [name, cfg] of resolved.services) {
      const existing = this.services.get(name);
      if (existing !== undefined && existing.config === cfg) {
        // Unchanged (the merger hands back the same object): nothing to apply or recount.
        next.set(name, existing);
        continue;
      }
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
    for (const l of this.listeners) l.configChanged?.();
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
    return this.dispatch(service, req, protocol, signal, false)!;
  }

  /**
   * `call` without a promise, for protocol adapters that hand the answer on themselves: the
   * answer goes to `protocol.deliver` and a failure to `protocol.fail` (both required here),
   * always after `send` has returned. Saves the promise, its reaction and a microtask per call.
   */
  send<Req, Res>(service: string, req: Req, protocol: Protocol<Req, Res>, signal?: AbortSignal): void {
    if (protocol.fail === undefined || protocol.deliver === undefined) {
      throw new TypeError(`Mesh.send: protocol "${protocol.name}" needs deliver and fail hooks (use mesh.call)`);
    }
    this.dispatch(service, req, protocol, signal, true);
  }

  /** Routing for `call` and (`detached`) `send`. */
  private dispatch<Req, Res>(
    service: string,
    req: Req,
    protocol: Protocol<Req, Res>,
    signal: AbortSignal | undefined,
    detached: boolean,
  ): Promise<Res> | undefined {
    if (this.closed) return rejectWith(protocol, req, detached, new MeshClosedError(service));
    const svc = this.services.get(service);
    if (svc === undefined) {
      // Before the first config, a name that may be a service waits for it instead of failing.
      if (!this.readyFlag && isServiceName(service)) {
        const waited = this.waitReady(service, this.startupTimeoutMs, signal).then(() =>
          this.call(service, req, protocol, signal),
        );
        if (!detached) return waited;
        waited.then(undefined, (err: unknown) => protocol.fail!(req, err));
        return undefined;
      }
      return rejectWith(protocol, req, detached, new UnknownServiceError(service, this.services.keys()));
    }
    const route = svc.matchRoute(req, protocol);
    if (route === undefined) {
      if (!speaks(svc, protocol)) return rejectWith(protocol, req, detached, protocolMismatch(svc, protocol));
      return svc.run(req, protocol, service, undefined, signal, detached);
    }
    const backend = pickBackend(route.backends, route.totalWeight, this.random);
    const target = this.services.get(backend);
    if (target === undefined) {
      return rejectWith(protocol, req, detached, new UnknownServiceError(backend, this.services.keys()));
    }
    if (!speaks(target, protocol)) return rejectWith(protocol, req, detached, protocolMismatch(target, protocol));
    return target.run(req, protocol, service, route.name, signal, detached);
  }

  /** A plain-JSON snapshot of every service and endpoint. */
  stats(): MeshStats {
    const services: Record<string, ServiceStats> = {};
    for (const [name, svc] of this.services) services[name] = svc.stats();
    return { services, inbound: this.inboundImpl.stats() };
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
    // Sources withdraw this process's registrations first, so callers stop sending here
    // while the calls in flight drain.
    const sourcesClosed = Promise.allSettled(this.sources.map((s) => s.close()));
    this.merger.stop();
    this.resolveReady();
    this.closing = (async () => {
      await idleWithin(all, graceMs);
      for (const svc of all) svc.abortAll(new MeshClosedError(svc.name));
      // Cut attempts reject at once through their transports' abort handlers.
      await idleWithin(all, 1000);
      for (const svc of all) svc.stop();
      this.draining.clear();
      await sourcesClosed;
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
 * Whether the service speaks the caller's protocol (`protocol`: one, or a list such as
 * `['http', 'grpc']`; default `http`). Only the mesh's own protocols are checked; a custom
 * protocol (tests, extensions) may call any service.
 */
function speaks(svc: Service, protocol: { readonly name: string }): boolean {
  const name = protocol.name;
  if (name !== 'http' && name !== 'grpc') return true;
  const spoken = svc.config.protocols;
  return spoken[0] === name || (spoken.length > 1 && spoken.includes(name));
}

function protocolMismatch(svc: Service, protocol: { name: string }): UnsupportedError {
  const spoken = svc.config.protocols;
  const configured = spoken.length === 1 ? `"${spoken[0]}"` : `[${spoken.map((p) => `"${p}"`).join(', ')}]`;
  const client = spoken.length === 1 ? `a ${spoken[0]} client` : `one of its protocols' clients`;
  return new UnsupportedError(
    svc.name,
    `the service is configured with protocol ${configured} but was called over ${protocol.name}; ` +
      `call it with ${client} or change services["${svc.name}"].protocol` +
      ` (a list such as ["http", "grpc"] if it speaks both)`,
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

function readField(obj: unknown, key: string): string | undefined {
  try {
    const v = typeof obj === 'object' && obj !== null ? (obj as Record<string, unknown>)[key] : undefined;
    return typeof v === 'string' ? v : undefined;
  } catch {
    return undefined;
  }
}

/** Validates a registration with the config's own endpoint rules; returns a copy. */
function checkRegistration(input: unknown): Registration {
  const issues: Array<{ path: string; message: string }> = [];
  if (typeof input !== 'object' || input === null) {
    throw new MeshConfigError([
      { path: 'registration', message: 'expected { service, address, zone?, weight?, metadata? }' },
    ]);
  }
  const allowed = ['service', 'address', 'zone', 'weight', 'metadata'];
  const raw: Record<string, unknown> = Object.create(null);
  try {
    for (const key of Object.keys(input)) {
      if (!allowed.includes(key))
        issues.push({ path: `registration.${key}`, message: `unknown key (expected one of ${allowed.join(', ')})` });
      else raw[key] = (input as Record<string, unknown>)[key];
    }
  } catch (err) {
    throw new MeshConfigError([{ path: 'registration', message: `could not be read: ${String(err)}` }]);
  }
  const service = raw.service;
  if (typeof service !== 'string' || !isServiceName(service)) {
    issues.push({
      path: 'registration.service',
      message: `expected a service name, got ${JSON.stringify(service) ?? String(service)}`,
    });
  }
  if (issues.length > 0) throw new MeshConfigError(issues);
  const endpoint: Record<string, unknown> = { address: raw.address };
  for (const k of ['zone', 'weight', 'metadata']) if (raw[k] !== undefined) endpoint[k] = raw[k];
  let resolved;
  try {
    resolved = validateServiceConfig(service as string, { endpoints: [endpoint] }, 'registration');
  } catch (err) {
    if (err instanceof MeshConfigError) {
      throw new MeshConfigError(
        err.issues.map((i) => ({
          path: i.path.replace('registration.endpoints[0]', 'registration'),
          message: i.message,
        })),
      );
    }
    throw err;
  }
  const ep = resolved.endpoints[0];
  const out: Registration = { service: service as string, address: ep.address, weight: ep.weight };
  if (ep.zone !== undefined) out.zone = ep.zone;
  if (Object.keys(ep.metadata).length > 0) out.metadata = { ...ep.metadata };
  return out;
}

/** Creates a mesh from validated options. Throws `MeshConfigError` naming the bad path. */
export function createMesh(options: MeshOptions): Mesh {
  return new Mesh(options);
}
