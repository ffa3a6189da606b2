/**
 * One logical service: its endpoints, balancer, policies, stats, and the call engine.
 *
 * Service tier, per logical call, in order: admission (concurrency limit) → telemetry
 * span → deadline → retry loop (first attempt inline, then p-retry) → pick.
 * Endpoint tier, per attempt: per-try timeout → circuit breaker → accounting
 * (in-flight, peak EWMA, outlier detector, stats) → protocol transport.
 */
import {
  INVALID_SPAN_CONTEXT,
  SpanKind,
  SpanStatusCode,
  context,
  isSpanContextValid,
  trace,
  type Span,
} from '@opentelemetry/api';
import pRetry from 'p-retry';
import { buildPicker } from './balancer/index.js';
import type { PickContext, Picker } from './balancer/types.js';
import type { Clock } from './clock.js';
import type { ResolvedRoute, ResolvedServiceConfig } from './config/types.js';
import { Endpoint, type EndpointState } from './endpoint.js';
import {
  DeadlineExceededError,
  NoEndpointsError,
  NoHealthyEndpointsError,
  OverloadedError,
  PerTryTimeoutError,
  RetryBudgetExhaustedError,
  UpstreamError,
  CircuitOpenError,
} from './errors.js';
import { fullJitterBackoff } from './policy/backoff.js';
import { BreakerRejectedError, BreakerShared, EndpointBreaker, type BreakerTarget } from './policy/circuit-breaker.js';
import { ConcurrencyLimiter } from './policy/concurrency-limiter.js';
import { OutlierDetector } from './policy/outlier-detector.js';
import { RetryBudget } from './policy/retry-budget.js';
import type { Protocol } from './protocol.js';
import { WindowedHistogram } from './stats/histogram.js';
import { TimerQueue, type TimerEntry } from './timer-queue.js';
import type { MeshTelemetry } from './telemetry/telemetry.js';
import type { CallContext, CallHandle, Classification, Classifier } from './types.js';
import { hashString } from './balancer/hash.js';

/** Shared parts a service needs from its mesh. */
export interface ServiceDeps {
  clock: Clock;
  random: () => number;
  telemetry: MeshTelemetry;
  statsWindowMs: number;
  /** Told when an endpoint leaves the service, so transports can drain and close its pool. */
  onEndpointRemoved(service: string, endpoint: Endpoint): void;
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
  latencyMs: { p50: number; p90: number; p99: number };
}

export interface ServiceStats {
  requests: number;
  successes: number;
  failures: number;
  retries: number;
  retriesSkippedByBudget: number;
  retriesSkippedByDeadline: number;
  inFlight: number;
  pending: number;
  retryBudgetBalance: number;
  latencyMs: { p50: number; p90: number; p99: number };
  endpoints: EndpointStats[];
}

/** An endpoint as a service holds it: with its breaker. */
class ServiceEndpoint extends Endpoint {
  circuit: EndpointBreaker | undefined;
}

/** A failed attempt weighs as this many typical latencies in the peak EWMA. */
const FAILURE_PENALTY = 5;
const SPAN_OPTIONS = { kind: SpanKind.CLIENT };
const EMPTY_PICKER: Picker = { pick: () => undefined };
/** Thrown inside p-retry to ask for another attempt; stateless, so one instance serves all calls. */
const RETRY = new Error('meshlet: retryable attempt');
const NONE = 0;
const PER_TRY = 1;
const DEADLINE = 2;

/** Per-call state. It is the CallContext handed down the stack and the PickContext of every pick. */
class Call<Req, Res> implements CallContext, PickContext, CallHandle, BreakerTarget<Res>, TimerEntry {
  attempt = 0;
  endpoint: Endpoint | undefined = undefined;
  trace: ReturnType<typeof trace.setSpan> | undefined = undefined;
  now = 0;
  avoid: Endpoint | undefined = undefined;
  hash: number | undefined = undefined;

  res: Res | undefined = undefined;
  err: unknown = undefined;
  cls: Classification = 'success';
  budgetRefused = false;
  /** Set when a retry could not be sent and the held response is the answer. */
  stop = false;
  /** A dedicated timer when the service's TimerQueue refused the attempt's expiry. */
  timer: ReturnType<typeof setTimeout> | undefined = undefined;
  timerPrev: TimerEntry | undefined = undefined;
  timerNext: TimerEntry | undefined = undefined;
  timerAt = -1;
  timerKind = NONE;
  timedOut = NONE;
  span: Span | undefined = undefined;

  // Cancellation without EventTarget on the hot path: the caller's abort and the attempt
  // timers call plain functions; an AbortSignal is made only if a transport asks for one.
  callerAborted = false;
  callerReason: unknown = undefined;
  inAttempt = false;
  /** Why the current attempt was cut; undefined while it runs. */
  attemptReason: unknown = undefined;
  private abortHandler: ((reason: unknown) => void) | undefined = undefined;
  private lazyController: AbortController | undefined = undefined;
  /** Rejects the current backoff sleep or queue wait. */
  wake: ((reason: unknown) => void) | undefined = undefined;

  constructor(
    readonly svc: Service,
    readonly req: Req,
    readonly protocol: Protocol<Req, Res>,
    readonly classifier: Classifier<Res>,
    readonly service: string,
    readonly requestedService: string,
    readonly route: string | undefined,
    readonly method: string,
    readonly deadline: number,
  ) {}

  get signal(): AbortSignal {
    if (this.lazyController === undefined) {
      this.lazyController = new AbortController();
      if (this.attemptReason !== undefined) this.lazyController.abort(this.attemptReason);
    }
    return this.lazyController.signal;
  }

  onAbort(handler: (reason: unknown) => void): void {
    if (this.attemptReason !== undefined) handler(this.attemptReason);
    else this.abortHandler = handler;
  }

  onTimer(): void {
    onAttemptTimer(this);
  }

  /** Starts a fresh attempt's cancellation state. */
  beginAttempt(): void {
    this.inAttempt = true;
    this.attemptReason = undefined;
    this.abortHandler = undefined;
    this.lazyController = undefined;
  }

  endAttempt(): void {
    this.inAttempt = false;
    this.abortHandler = undefined;
  }

  /** Cuts the attempt in flight. */
  abortAttempt(reason: unknown): void {
    if (!this.inAttempt || this.attemptReason !== undefined) return;
    this.attemptReason = reason;
    const handler = this.abortHandler;
    this.abortHandler = undefined;
    handler?.(reason);
    this.lazyController?.abort(reason);
  }

  /** The caller gave up: cut the attempt, or the wait, and end the call with `reason`. */
  abort(reason: unknown): void {
    if (this.callerAborted) return;
    this.callerAborted = true;
    this.callerReason = reason ?? new DOMException('This operation was aborted', 'AbortError');
    const wake = this.wake;
    this.wake = undefined;
    wake?.(this.callerReason);
    this.abortAttempt(this.callerReason);
  }

  // BreakerTarget: the breaker calls these on the call object itself, so no closures per call.
  /** One transport attempt. */
  send(): Promise<Res> {
    return this.protocol.transport(this.req, this, this.endpoint!);
  }
  isFailureResult(res: Res): boolean {
    this.cls = this.classifier.classifyResult(res, this);
    return this.cls !== 'success';
  }
  /** Caller aborts are not the endpoint's fault. */
  isFailureError(): boolean {
    return !this.callerAborted;
  }

  /** p-retry's attempt function (attempts 2..n). */
  async retryAttempt(): Promise<void> {
    await this.svc.attempt(this);
    if (this.cls === 'retryable' && !this.stop) throw RETRY;
  }

  shouldRetry(error: Error): Promise<boolean> | boolean {
    return error === RETRY ? this.svc.retryGate(this) : false;
  }
}

function onAttemptTimer<Req, Res>(call: Call<Req, Res>): void {
  call.timedOut = call.timerKind;
  const ep = call.endpoint!;
  call.abortAttempt(
    call.timerKind === PER_TRY
      ? new PerTryTimeoutError(call.service, ep.address, call.svc.config.timeout.perTryMs!)
      : new DeadlineExceededError(call.service, call.svc.config.timeout.requestMs, call.attempt, ep.address),
  );
}

export class Service {
  readonly name: string;
  config!: ResolvedServiceConfig;
  endpoints: ServiceEndpoint[] = [];

  requests = 0;
  successes = 0;
  failures = 0;
  retries = 0;
  retriesSkippedByBudget = 0;
  retriesSkippedByDeadline = 0;
  readonly latency: WindowedHistogram;
  /** EWMA of attempt latency (ms), failures included: a retry is started only if this fits in the deadline. */
  typicalLatencyMs = 0;

  private readonly deps: ServiceDeps;
  private readonly byAddress = new Map<string, ServiceEndpoint>();
  private picker: Picker = EMPTY_PICKER;
  private pickerDirty = true;
  private readonly probes: ServiceEndpoint[] = [];
  private budget!: RetryBudget;
  private limiter!: ConcurrencyLimiter;
  private outlier!: OutlierDetector;
  private breakerShared: BreakerShared | undefined;
  private readonly classifiers = new Map<Protocol<unknown, unknown>, Classifier<unknown>>();
  private closed = false;
  /** Attempt timeouts (per-try or deadline) of this service, under one timer. */
  private readonly timers: TimerQueue;

  constructor(config: ResolvedServiceConfig, deps: ServiceDeps) {
    this.name = config.name;
    this.deps = deps;
    this.latency = new WindowedHistogram(deps.clock, deps.statsWindowMs);
    this.timers = new TimerQueue(deps.clock);
    this.apply(config);
  }

  /** Applies a (validated) config. In-flight calls finish on the endpoints they hold. */
  apply(next: ResolvedServiceConfig): void {
    const prev = this.config;
    this.config = next;
    const { clock, random } = this.deps;
    if (!prev || !same(prev.retry.budget, next.retry.budget)) this.budget = new RetryBudget(next.retry.budget, clock);
    const cb = next.circuitBreaker;
    if (!this.limiter) this.limiter = new ConcurrencyLimiter(cb.maxRequests, cb.maxPending);
    else this.limiter.setLimits(cb.maxRequests, cb.maxPending);
    if (!prev || !same(prev.retry.retryOn, next.retry.retryOn)) this.classifiers.clear();

    const breakersChanged = !prev || !same(breakerPart(prev), breakerPart(next));
    if (breakersChanged) {
      for (const ep of this.endpoints) this.dropBreaker(ep);
      this.breakerShared?.close();
      this.breakerShared = cb.enabled ? new BreakerShared(cb.windowMs, random) : undefined;
    }

    // Endpoints: keep objects whose address stays (their EWMA and ejection history carry over).
    const keep = new Set<string>();
    const list: ServiceEndpoint[] = [];
    for (const spec of next.endpoints) {
      keep.add(spec.address);
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
      list.push(ep);
    }
    for (const [address, ep] of this.byAddress) {
      if (keep.has(address)) continue;
      this.byAddress.delete(address);
      ep.active = false;
      this.dropBreaker(ep);
      this.deps.onEndpointRemoved(this.name, ep);
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
          onUneject: () => {
            this.pickerDirty = true;
          },
        },
        random,
      );
      if (next.outlierDetection.enabled) this.outlier.start();
    }
    this.outlier.setEndpoints(list);
    this.pickerDirty = true;
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
    this.picker =
      pickable.length === 0
        ? EMPTY_PICKER
        : buildPicker(this.config.loadBalancer, pickable, {
            ewmaDecayMs: this.config.ewmaDecayMs,
            random: this.deps.random,
          });
  }

  private noEndpointError(): Error {
    if (this.endpoints.length === 0) return new NoEndpointsError(this.name);
    let ejected = 0;
    let open = 0;
    let halfOpen = 0;
    for (const ep of this.endpoints) {
      if (ep.ejected) ejected++;
      else if (ep.breaker === 'open') open++;
      else if (ep.breaker === 'half-open') halfOpen++;
    }
    return new NoHealthyEndpointsError(this.name, { total: this.endpoints.length, ejected, open, halfOpen });
  }

  classifierFor<Req, Res>(protocol: Protocol<Req, Res>): Classifier<Res> {
    let c = this.classifiers.get(protocol as Protocol<unknown, unknown>);
    if (c === undefined) {
      c = protocol.classifier(this.config.retry.retryOn) as Classifier<unknown>;
      this.classifiers.set(protocol as Protocol<unknown, unknown>, c);
    }
    return c as Classifier<Res>;
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

  /** Runs one logical call against this service's endpoints. */
  async call<Req, Res>(
    req: Req,
    protocol: Protocol<Req, Res>,
    requestedService: string,
    route: string | undefined,
    callerSignal: AbortSignal | undefined,
  ): Promise<Res> {
    const { clock, telemetry } = this.deps;
    const start = clock.now();
    const cfg = this.config;
    if (callerSignal?.aborted) throw callerSignal.reason;

    const call = new Call<Req, Res>(
      this,
      req,
      protocol,
      this.classifierFor(protocol),
      this.name,
      requestedService,
      route,
      protocol.method(req),
      start + cfg.timeout.requestMs,
    );
    if (cfg.hashKey !== undefined) {
      const key = 'header' in cfg.hashKey ? protocol.header(req, cfg.hashKey.header) : stripQuery(protocol.path(req));
      if (key !== undefined) call.hash = hashString(key);
    }
    protocol.bindCall?.(req, call);
    let onCallerAbort: (() => void) | undefined;
    if (callerSignal !== undefined) {
      onCallerAbort = () => call.abort(callerSignal.reason);
      callerSignal.addEventListener('abort', onCallerAbort);
    }

    try {
      if (!this.limiter.tryAcquire()) await this.queue(call);
    } catch (err) {
      if (onCallerAbort) callerSignal!.removeEventListener('abort', onCallerAbort);
      throw err;
    }
    this.requests++;
    this.budget.deposit();
    telemetry.refresh(start);
    const span = telemetry.tracer.startSpan(protocol.spanName(req, call), SPAN_OPTIONS);
    call.span = span;
    if (span.isRecording()) {
      span.setAttribute('meshlet.service', this.name);
      if (requestedService !== this.name) span.setAttribute('meshlet.requested_service', requestedService);
      if (route !== undefined) span.setAttribute('meshlet.route', route);
    }
    const spanContext = span.spanContext();
    // Without an SDK and without a parent, the span context is the shared invalid one: skip the hex checks.
    if (spanContext !== INVALID_SPAN_CONTEXT && isSpanContextValid(spanContext)) {
      call.trace = trace.setSpan(context.active(), span);
    }

    try {
      await this.attempt(call, start);
      if (call.cls === 'retryable' && cfg.retry.maxAttempts > 1 && (await this.retryGate(call))) {
        try {
          await pRetry(() => call.retryAttempt(), {
            retries: cfg.retry.maxAttempts - 2,
            minTimeout: 0,
            maxTimeout: 0,
            factor: 1,
            shouldRetry: ({ error }) => call.shouldRetry(error),
          });
        } catch (err) {
          if (err !== RETRY) throw err;
        }
      }
      return this.finish(call);
    } catch (err) {
      this.failures++;
      span.setStatus({ code: SpanStatusCode.ERROR, message: err instanceof Error ? err.message : String(err) });
      throw err;
    } finally {
      this.limiter.release();
      if (onCallerAbort) callerSignal!.removeEventListener('abort', onCallerAbort);
      // call.now is the clock at the last attempt's end (or failed pick): the call's end, one read saved.
      this.latency.record((call.now > 0 ? call.now : clock.now()) - start);
      span.end();
    }
  }

  /** Waits for a concurrency slot, bounded by the deadline and the caller's abort. */
  private async queue<Req, Res>(call: Call<Req, Res>): Promise<void> {
    const cfg = this.config.circuitBreaker;
    if (call.callerAborted) throw call.callerReason;
    const ac = new AbortController();
    call.wake = (reason) => ac.abort(reason);
    const timer = setTimeout(
      () => ac.abort(new DeadlineExceededError(this.name, this.config.timeout.requestMs, 0, undefined)),
      Math.max(0, call.deadline - this.deps.clock.now()),
    );
    try {
      const waiting = this.limiter.acquire(ac.signal);
      if (waiting === false) throw new OverloadedError(this.name, cfg.maxRequests, cfg.maxPending);
      await waiting;
    } finally {
      clearTimeout(timer);
      call.wake = undefined;
    }
  }

  /** One attempt: pick, per-try timer, breaker, transport, classification, accounting. */
  async attempt<Req, Res>(call: Call<Req, Res>, startedAt?: number): Promise<void> {
    const { clock, telemetry } = this.deps;
    const now = startedAt ?? clock.now();
    const remaining = call.deadline - now;
    call.now = now;
    const ep = remaining > 0 ? this.pick(call) : undefined;
    if (ep === undefined) {
      // A retry that cannot be sent leaves the caller the response it already has.
      if (call.res !== undefined) {
        call.stop = true;
        return;
      }
      if (remaining <= 0) {
        throw new DeadlineExceededError(this.name, this.config.timeout.requestMs, call.attempt, call.endpoint?.address);
      }
      throw this.noEndpointError();
    }
    if (call.res !== undefined) call.protocol.discard(call.res);

    call.attempt++;
    if (call.attempt > 1) {
      this.retries++;
      telemetry.retry(this.name);
    }
    call.endpoint = ep;
    call.res = undefined;
    call.err = undefined;
    call.cls = 'success';
    ep.inFlight++;
    ep.requests++;

    call.beginAttempt();
    if (call.callerAborted) call.abortAttempt(call.callerReason);
    const perTry = this.config.timeout.perTryMs;
    call.timedOut = NONE;
    call.timerKind = perTry !== undefined && perTry < remaining ? PER_TRY : DEADLINE;
    const timeout = call.timerKind === PER_TRY ? perTry! : remaining;
    call.timer = this.timers.add(call, now + timeout, now) ? undefined : setTimeout(onAttemptTimer, timeout, call);

    let counted = true;
    try {
      const circuit = ep.circuit;
      if (circuit !== undefined) {
        call.res = await circuit.run(call);
      } else {
        const res = await call.protocol.transport(call.req, call, ep);
        call.res = res;
        call.isFailureResult(res);
      }
    } catch (err) {
      call.res = undefined;
      if (call.callerAborted) {
        counted = false;
        call.err = call.callerReason;
      } else if (call.timedOut === DEADLINE) {
        call.err = call.attemptReason;
      } else if (err instanceof BreakerRejectedError) {
        counted = false;
        call.err = new CircuitOpenError(this.name, ep.address);
        call.cls = 'retryable';
      } else {
        call.err = call.timedOut === PER_TRY ? call.attemptReason : err;
        call.cls = call.classifier.classifyError(call.err, call);
      }
    } finally {
      if (call.timer !== undefined) clearTimeout(call.timer);
      else this.timers.remove(call);
      call.endAttempt();
      ep.inFlight--;
    }

    const end = clock.now();
    call.now = end;
    const latency = end - now;
    const ok = call.cls === 'success' && call.err === undefined;
    if (counted) {
      this.typicalLatencyMs = this.typicalLatencyMs === 0 ? latency : this.typicalLatencyMs * 0.9 + latency * 0.1;
      if (ok) {
        ep.observeLatency(latency, end, this.config.ewmaDecayMs);
      } else {
        // A failure must not look fast (a peer refusing connections answers quickest of all),
        // so it counts as FAILURE_PENALTY × the service's typical latency, bounded so that
        // repeated failures cannot grow the estimate without limit.
        ep.failures++;
        const penalty = Math.max(latency, FAILURE_PENALTY * Math.max(1, this.typicalLatencyMs));
        ep.observeLatency(penalty, end, this.config.ewmaDecayMs);
      }
      ep.latency.record(latency);
      this.outlier.record(ep, ok);
    }
    const span = call.span!;
    if (span.isRecording()) {
      span.addEvent('attempt', {
        'meshlet.attempt': call.attempt,
        'meshlet.endpoint': ep.address,
        'meshlet.outcome': call.err === undefined ? call.cls : 'error',
        'meshlet.status': call.protocol.attemptStatus(call.res, call.err),
        'meshlet.duration_ms': latency,
      });
    }
    if (telemetry.metricsOn) {
      telemetry.recordDuration(
        call.protocol.durationMetric,
        latency / 1000,
        call.protocol.attemptAttributes(call.req, call, ep, call.res, call.err),
      );
    }
    if (!counted && call.callerAborted) throw call.callerReason;
    if (call.timedOut === DEADLINE) {
      // A transport that ignored the abort and answered late still missed the deadline.
      if (call.res !== undefined) {
        call.protocol.discard(call.res);
        call.res = undefined;
      }
      throw call.err ?? call.attemptReason;
    }
  }

  /**
   * Decides whether a retryable attempt is retried, and waits out its backoff. A retry
   * needs: attempts left, a replayable request, room in the deadline for the backoff plus
   * the service's typical latency, and a budget token — in that order, so the budget is
   * charged only for retries that will really be sent.
   */
  async retryGate<Req, Res>(call: Call<Req, Res>): Promise<boolean> {
    const r = this.config.retry;
    if (call.attempt >= r.maxAttempts) return false;
    if (!call.protocol.replayable(call.req, r.nonIdempotent)) return false;
    const delay = fullJitterBackoff(call.attempt, r.backoff.baseMs, r.backoff.maxMs, this.deps.random);
    const remaining = call.deadline - this.deps.clock.now();
    if (remaining < delay + Math.max(1, this.typicalLatencyMs)) {
      this.retriesSkippedByDeadline++;
      return false;
    }
    if (!this.budget.tryWithdraw()) {
      this.retriesSkippedByBudget++;
      call.budgetRefused = true;
      this.deps.telemetry.budgetRefusal(this.name);
      return false;
    }
    call.avoid = call.endpoint;
    if (call.callerAborted) throw call.callerReason;
    if (delay >= 1) await sleep(delay, call);
    return true;
  }

  private finish<Req, Res>(call: Call<Req, Res>): Res {
    if (call.err === undefined) {
      if (call.cls === 'success') this.successes++;
      else {
        this.failures++;
        call.span?.setStatus({ code: SpanStatusCode.ERROR });
      }
      return call.res as Res;
    }
    const address = call.endpoint?.address;
    if (call.budgetRefused) throw new RetryBudgetExhaustedError(this.name, call.attempt, address, call.err);
    throw new UpstreamError(this.name, call.attempt, address, call.err);
  }

  stats(): ServiceStats {
    const endpoints: EndpointStats[] = this.endpoints.map((ep) => ({
      address: ep.address,
      zone: ep.zone,
      weight: ep.weight,
      requests: ep.requests,
      failures: ep.failures,
      inFlight: ep.inFlight,
      ewmaMs: round(ep.decayedEwma(this.deps.clock.now(), this.config.ewmaDecayMs)),
      state: ep.state,
      ejections: ep.ejections,
      latencyMs: percentiles(ep.latency),
    }));
    return {
      requests: this.requests,
      successes: this.successes,
      failures: this.failures,
      retries: this.retries,
      retriesSkippedByBudget: this.retriesSkippedByBudget,
      retriesSkippedByDeadline: this.retriesSkippedByDeadline,
      inFlight: this.limiter.inFlight,
      pending: this.limiter.pending,
      retryBudgetBalance: this.budget.balance(),
      latencyMs: percentiles(this.latency),
      endpoints,
    };
  }

  /** Stops timers and breakers; calls still in flight finish. */
  close(reason: Error): void {
    if (this.closed) return;
    this.closed = true;
    this.outlier.close();
    this.timers.clear();
    for (const ep of this.endpoints) this.dropBreaker(ep);
    this.breakerShared?.close();
    this.limiter.close(reason);
  }
}

function percentiles(h: WindowedHistogram): { p50: number; p90: number; p99: number } {
  return { p50: round(h.percentile(0.5)), p90: round(h.percentile(0.9)), p99: round(h.percentile(0.99)) };
}

function round(ms: number): number {
  return Math.round(ms * 1000) / 1000;
}

function stripQuery(path: string): string {
  const q = path.indexOf('?');
  return q === -1 ? path : path.slice(0, q);
}

function breakerPart(c: ResolvedServiceConfig): unknown {
  const { maxPending: _p, maxRequests: _r, ...rest } = c.circuitBreaker;
  return rest;
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

/** Backoff wait; the caller's abort rejects it through `call.wake`. */
function sleep(ms: number, call: { wake: ((reason: unknown) => void) | undefined }): Promise<void> {
  return new Promise((resolve, reject) => {
    const timer = setTimeout(() => {
      call.wake = undefined;
      resolve();
    }, ms);
    call.wake = (reason) => {
      clearTimeout(timer);
      reject(reason);
    };
  });
}
