/**
 * One logical service: its endpoints and their lifecycle, its policies (balancer, retry
 * budget, concurrency limit, breakers, outlier detector), its calls in flight and its
 * stats. The call engine that runs over it lives in `call/`: the service tier
 * (`call/service-tier.ts`), the endpoint tier (`call/endpoint-tier.ts`), the retry gate
 * (`call/retry.ts`) and the per-call state (`call/call.ts`).
 */
import { buildPicker } from './balancer/index.js';
import type { PickContext, Picker } from './balancer/types.js';
import type { Call } from './call/call.js';
import { CallPolicy, MethodPolicies } from './call/policy.js';
import { runCall, stripQuery } from './call/service-tier.js';
import type { Clock } from './clock.js';
import type { ResolvedRoute, ResolvedServiceConfig } from './config/types.js';
import { Endpoint, type EndpointState, type ServiceLoad } from './endpoint.js';
import { NoEndpointsError, NoHealthyEndpointsError } from './errors.js';
import { BreakerShared, EndpointBreaker } from './policy/circuit-breaker.js';
import { ConcurrencyLimiter } from './policy/concurrency-limiter.js';
import { OutlierDetector } from './policy/outlier-detector.js';
import { RetryBudget } from './policy/retry-budget.js';
import type { Protocol } from './protocol.js';
import { WindowedHistogram } from './stats/histogram.js';
import { TimerQueue } from './timer-queue.js';
import type { MeshTelemetry } from './telemetry/telemetry.js';
import type { Classifier } from './types.js';

/** Shared parts a service needs from its mesh. */
export interface ServiceDeps {
  clock: Clock;
  random: () => number;
  telemetry: MeshTelemetry;
  statsWindowMs: number;
}

export interface EndpointStats {
  address: string;
  zone: string | undefined;
  weight: number;
  requests: number;
  failures: number;
  inFlight: number;
  ewmaMs: number;
  state: EndpointState;
  ejections: number;
  /** Attempts in the recent latency window (0: the percentiles below mean nothing). */
  recentRequests: number;
  /** Percentiles of the recent window (all 0 when `recentRequests` is 0). */
  latencyMs: { p50: number; p90: number; p99: number };
}

export interface ServiceStats {
  /** Logical calls admitted. */
  requests: number;
  successes: number;
  /** Calls that ended in an upstream failure (an error, or a failure response after retries). */
  failures: number;
  /** Calls cut by their caller's abort or by the mesh closing; not failures. */
  cancelled: number;
  /** Calls refused because the caller's own request was at fault (MESHLET_ERR_INVALID_REQUEST); not failures. */
  invalidRequests: number;
  retries: number;
  retriesSkippedByBudget: number;
  retriesSkippedByDeadline: number;
  inFlight: number;
  pending: number;
  retryBudgetBalance: number;
  /** Calls in the recent latency window (0: the percentiles below mean nothing). */
  recentRequests: number;
  /** Percentiles of the recent window (all 0 when `recentRequests` is 0). */
  latencyMs: { p50: number; p90: number; p99: number };
  endpoints: EndpointStats[];
}

/** An endpoint as a service holds it: with its breaker. */
export class ServiceEndpoint extends Endpoint {
  circuit: EndpointBreaker | undefined;
}

const EMPTY_PICKER: Picker = { pick: () => undefined };

export class Service {
  readonly name: string;
  config!: ResolvedServiceConfig;
  endpoints: ServiceEndpoint[] = [];

  requests = 0;
  successes = 0;
  failures = 0;
  cancelled = 0;
  invalidRequests = 0;
  retries = 0;
  retriesSkippedByBudget = 0;
  retriesSkippedByDeadline = 0;
  readonly latency: WindowedHistogram;
  /** Traffic facts the balancer reads: attempt count, neutral latency, endpoint count. */
  readonly load: ServiceLoad = { seq: 0, neutralMs: 0, endpoints: 0 };

  readonly deps: ServiceDeps;
  /** Attempt timeouts (per-try or deadline) of this service, under one timer. */
  readonly timers: TimerQueue;
  budget!: RetryBudget;
  limiter!: ConcurrencyLimiter;
  outlier!: OutlierDetector;

  private readonly byAddress = new Map<string, ServiceEndpoint>();
  private picker: Picker = EMPTY_PICKER;
  private pickerDirty = true;
  private readonly probes: ServiceEndpoint[] = [];
  private breakerShared: BreakerShared | undefined;
  /** The service's own call policy (retry, timeout, classifiers); rebuilt by each config. */
  policy!: CallPolicy;
  /** Per-method policies of a gRPC service with `methods`; undefined (the common case) without. */
  methods: MethodPolicies | undefined = undefined;
  /** Calls in flight (queued included), as an intrusive list. */
  private activeHead: Call<unknown, unknown> | undefined = undefined;
  private activeCount = 0;
  private idleWaiters: Array<() => void> = [];
  private stopped = false;

  constructor(config: ResolvedServiceConfig, deps: ServiceDeps) {
    this.name = config.name;
    this.deps = deps;
    this.latency = new WindowedHistogram(deps.clock, deps.statsWindowMs);
    this.timers = new TimerQueue(deps.clock);
    this.apply(config);
  }

  /**
   * Applies a (validated) config. In-flight calls finish on the endpoints they hold.
   * Returns the endpoints that left the service. O(endpoints).
   */
  apply(next: ResolvedServiceConfig): ServiceEndpoint[] {
    const prev = this.config;
    this.config = next;
    const { clock, random } = this.deps;
    if (!prev || !same(prev.retry.budget, next.retry.budget)) this.budget = new RetryBudget(next.retry.budget, clock);
    const cb = next.circuitBreaker;
    if (!this.limiter) this.limiter = new ConcurrencyLimiter(cb.maxRequests, cb.maxPending);
    else this.limiter.setLimits(cb.maxRequests, cb.maxPending);
    // Kept while unchanged (an endpoint update keeps the compiled classifiers and remembered
    // methods); calls in flight keep the policy they started with either way.
    const ownChanged = !prev || !same(prev.policy, next.policy);
    if (ownChanged) this.policy = new CallPolicy(next.policy);
    if (ownChanged || !sameMethods(prev.methods, next.methods)) {
      this.methods = next.methods === undefined ? undefined : new MethodPolicies(next.methods, this.policy);
    }

    const breakersChanged = !prev || !same(breakerPart(prev), breakerPart(next));
    if (breakersChanged) {
      for (const ep of this.endpoints) this.dropBreaker(ep);
      this.breakerShared?.close();
      this.breakerShared = cb.enabled ? new BreakerShared(cb.windowMs, random) : undefined;
    }

    // Endpoints: keep objects whose address stays (their EWMA and ejection history carry over).
    const list: ServiceEndpoint[] = [];
    const seen = new Set<ServiceEndpoint>();
    for (const spec of next.endpoints) {
      let ep = this.byAddress.get(spec.address);
      if (ep === undefined) {
        ep = new ServiceEndpoint(spec, clock, this.deps.statsWindowMs);
        this.byAddress.set(spec.address, ep);
      } else {
        ep.weight = spec.weight;
        ep.zone = spec.zone;
        ep.metadata = spec.metadata;
      }
      if (ep.circuit === undefined && this.breakerShared) this.attachBreaker(ep);
      seen.add(ep);
      list.push(ep);
    }
    const removed: ServiceEndpoint[] = [];
    if (seen.size !== this.byAddress.size) {
      for (const [address, ep] of this.byAddress) {
        if (seen.has(ep)) continue;
        this.byAddress.delete(address);
        ep.active = false;
        this.dropBreaker(ep);
        removed.push(ep);
      }
    }
    this.endpoints = list;

    if (!prev || !same(prev.outlierDetection, next.outlierDetection)) {
      // The new detector adopts current ejections; they still expire on time.
      this.outlier?.close();
      this.outlier = new OutlierDetector(
        next.outlierDetection,
        clock,
        {
          onEject: (ep, reason) => {
            this.pickerDirty = true;
            this.deps.telemetry.ejection(this.name, ep.address, reason);
          },
          onUneject: (ep) => {
            this.pickerDirty = true;
            // A breaker that went half-open during the ejection lost its probe to the ejection
            // (pick() drops ejected probes); queue it again, or the endpoint never gets traffic.
            if ((ep as ServiceEndpoint).breaker === 'half-open') this.probes.push(ep as ServiceEndpoint);
          },
        },
        random,
      );
      if (next.outlierDetection.enabled) this.outlier.start();
    }
    this.outlier.setEndpoints(list);
    this.pickerDirty = true;
    return removed;
  }

  private attachBreaker(ep: ServiceEndpoint): void {
    ep.circuit = new EndpointBreaker(
      this.config.circuitBreaker,
      {
        onStateChange: (state) => {
          ep.breaker = state;
          this.pickerDirty = true;
          if (state === 'half-open') this.probes.push(ep);
          this.deps.telemetry.breakerTransition(this.name, ep.address, state);
        },
      },
      this.breakerShared!,
    );
  }

  private dropBreaker(ep: ServiceEndpoint): void {
    ep.circuit?.shutdown();
    ep.circuit = undefined;
    ep.breaker = 'closed';
  }

  /** Picks an endpoint: a pending half-open probe first, else the balancer's choice. */
  pick(pc: PickContext): ServiceEndpoint | undefined {
    while (this.probes.length !== 0) {
      const ep = this.probes.pop()!;
      if (ep.active && ep.breaker === 'half-open' && !ep.ejected) return ep;
    }
    if (this.pickerDirty) this.rebuildPicker();
    return this.picker.pick(pc) as ServiceEndpoint | undefined;
  }

  private rebuildPicker(): void {
    this.pickerDirty = false;
    const pickable: Endpoint[] = [];
    for (const ep of this.endpoints) if (ep.pickable) pickable.push(ep);
    this.load.endpoints = pickable.length;
    this.picker =
      pickable.length === 0
        ? EMPTY_PICKER
        : buildPicker(this.config.loadBalancer, pickable, {
            ewmaDecayMs: this.config.ewmaDecayMs,
            random: this.deps.random,
            load: this.load,
          });
  }

  noEndpointError(): Error {
    if (this.endpoints.length === 0) return new NoEndpointsError(this.name);
    let ejected = 0;
    let open = 0;
    let halfOpen = 0;
    let latest: Endpoint | undefined;
    for (const ep of this.endpoints) {
      if (ep.ejected) ejected++;
      else if (ep.breaker === 'open') open++;
      else if (ep.breaker === 'half-open') halfOpen++;
      if (ep.lastFailure !== undefined && (latest === undefined || ep.lastFailureAt > latest.lastFailureAt))
        latest = ep;
    }
    const lastFailure =
      latest === undefined ? undefined : { endpoint: latest.address, reason: failureText(latest.lastFailure) };
    return new NoHealthyEndpointsError(
      this.name,
      { total: this.endpoints.length, ejected, open, halfOpen },
      lastFailure,
    );
  }

  /** The classifier of `protocol` under the service's own policy. */
  classifierFor<Req, Res>(protocol: Protocol<Req, Res>): Classifier<Res> {
    return this.policy.classifierFor(protocol);
  }

  /** The policy of a call to `method`: its `methods` entry (exact, then `Service/*`), else the service's own. */
  policyFor(method: string): CallPolicy {
    return this.methods === undefined ? this.policy : this.methods.get(method);
  }

  /** Finds the route for a request among this service's routes; undefined when none matches. */
  matchRoute<Req>(req: Req, protocol: Protocol<Req, unknown>): ResolvedRoute | undefined {
    const routes = this.config.routes;
    if (routes.length === 0) return undefined;
    let path: string | undefined;
    let method: string | undefined;
    outer: for (let i = 0; i < routes.length; i++) {
      const r = routes[i];
      if (r.method !== undefined && r.method !== (method ??= protocol.method(req))) continue;
      if (r.path !== undefined || r.pathPrefix !== undefined) {
        path ??= stripQuery(protocol.path(req));
        if (r.path !== undefined && path !== r.path) continue;
        if (r.pathPrefix !== undefined && !path.startsWith(r.pathPrefix)) continue;
      }
      for (let j = 0; j < r.headers.length; j++) {
        const h = r.headers[j];
        const v = protocol.header(req, h.name);
        switch (h.kind) {
          case 'present':
            if ((v !== undefined) !== h.present) continue outer;
            break;
          case 'exact':
            if (v !== h.value) continue outer;
            break;
          case 'prefix':
            if (v === undefined || !v.startsWith(h.value)) continue outer;
            break;
          case 'regex':
            if (v === undefined || !h.regex!.test(v)) continue outer;
            break;
        }
      }
      return r;
    }
    return undefined;
  }

  /**
   * Runs one logical call against this service's endpoints (see `call/service-tier.ts`): its
   * promise, or, `detached` (`Mesh.send`), undefined, the outcome going to the protocol's hooks.
   */
  run<Req, Res>(
    req: Req,
    protocol: Protocol<Req, Res>,
    requestedService: string,
    route: string | undefined,
    signal: AbortSignal | undefined,
    detached: boolean,
  ): Promise<Res> | undefined {
    return runCall(this, req, protocol, requestedService, route, signal, detached);
  }

  /** Links a call into the in-flight list. O(1). */
  track<Req, Res>(call: Call<Req, Res>): void {
    const c = call as unknown as Call<unknown, unknown>;
    c.active = true;
    c.activePrev = undefined;
    c.activeNext = this.activeHead;
    if (this.activeHead !== undefined) this.activeHead.activePrev = c;
    this.activeHead = c;
    this.activeCount++;
  }

  /** Unlinks a finished call. O(1). */
  untrack<Req, Res>(call: Call<Req, Res>): void {
    const c = call as unknown as Call<unknown, unknown>;
    if (!c.active) return;
    c.active = false;
    if (c.activePrev === undefined) this.activeHead = c.activeNext;
    else c.activePrev.activeNext = c.activeNext;
    if (c.activeNext !== undefined) c.activeNext.activePrev = c.activePrev;
    c.activePrev = c.activeNext = undefined;
    if (--this.activeCount === 0 && this.idleWaiters.length !== 0) {
      const waiters = this.idleWaiters;
      this.idleWaiters = [];
      for (const w of waiters) w();
    }
  }

  /** Calls in flight, queued ones included. */
  get activeCalls(): number {
    return this.activeCount;
  }

  /** Resolves when no call is in flight. */
  idle(): Promise<void> {
    if (this.activeCount === 0) return Promise.resolve();
    return new Promise((resolve) => this.idleWaiters.push(resolve));
  }

  /** Cuts every call still in flight with `reason` (they reject with it). */
  abortAll(reason: Error): void {
    for (let c = this.activeHead; c !== undefined;) {
      const next = c.activeNext;
      c.abort(reason);
      c = next;
    }
  }

  /**
   * Stops admitting calls: queued ones are refused with `reason`. Calls already admitted
   * keep running under their deadlines (their timers stay armed); `stop()` releases the rest.
   */
  retire(reason: Error): void {
    this.limiter.close(reason);
  }

  /** Releases timers and breakers once no call needs them. Idempotent. */
  stop(): void {
    if (this.stopped) return;
    this.stopped = true;
    this.outlier.close();
    this.timers.clear();
    for (const ep of this.endpoints) this.dropBreaker(ep);
    this.breakerShared?.close();
  }

  stats(): ServiceStats {
    const now = this.deps.clock.now();
    const endpoints: EndpointStats[] = this.endpoints.map((ep) => ({
      address: ep.address,
      zone: ep.zone,
      weight: ep.weight,
      requests: ep.requests,
      failures: ep.failures,
      inFlight: ep.inFlight,
      ewmaMs: round(ep.decayedEwma(now, this.config.ewmaDecayMs, this.load)),
      state: ep.state,
      ejections: ep.ejections,
      recentRequests: ep.latency.count(),
      latencyMs: percentiles(ep.latency),
    }));
    return {
      requests: this.requests,
      successes: this.successes,
      failures: this.failures,
      cancelled: this.cancelled,
      invalidRequests: this.invalidRequests,
      retries: this.retries,
      retriesSkippedByBudget: this.retriesSkippedByBudget,
      retriesSkippedByDeadline: this.retriesSkippedByDeadline,
      inFlight: this.limiter.inFlight,
      pending: this.limiter.pending,
      retryBudgetBalance: this.budget.balance(),
      recentRequests: this.latency.count(),
      latencyMs: percentiles(this.latency),
      endpoints,
    };
  }
}

function percentiles(h: WindowedHistogram): { p50: number; p90: number; p99: number } {
  return { p50: round(h.percentile(0.5)), p90: round(h.percentile(0.9)), p99: round(h.percentile(0.99)) };
}

function round(ms: number): number {
  return Math.round(ms * 1000) / 1000;
}

function breakerPart(c: ResolvedServiceConfig): unknown {
  const { maxPending: _p, maxRequests: _r, ...rest } = c.circuitBreaker;
  return rest;
}

function sameMethods(a: ResolvedServiceConfig['methods'], b: ResolvedServiceConfig['methods']): boolean {
  if (a === b) return true;
  if (a === undefined || b === undefined || a.size !== b.size) return false;
  for (const [key, policy] of a) if (!same(policy, b.get(key))) return false;
  return true;
}

/** Structural equality of plain config values (config changes only, never per request). */
function same(a: unknown, b: unknown): boolean {
  if (a === b) return true;
  if (typeof a !== 'object' || typeof b !== 'object' || a === null || b === null) return false;
  if (Array.isArray(a) !== Array.isArray(b)) return false;
  const ka = Object.keys(a);
  const kb = Object.keys(b);
  if (ka.length !== kb.length) return false;
  for (const k of ka) if (!same((a as Record<string, unknown>)[k], (b as Record<string, unknown>)[k])) return false;
  return true;
}

/** An endpoint's last failure in words: an error's message or the protocol's words for it (at most 300 characters), or the status it answered. */
function failureText(failure: unknown): string {
  const text =
    failure instanceof Error
      ? failure.message
      : typeof failure === 'string'
        ? failure
        : `it answered ${String(failure)}`;
  return text.length > 300 ? `${text.slice(0, 300)}…` : text;
}
