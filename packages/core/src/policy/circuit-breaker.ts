/**
 * Per-endpoint failure accrual with an opossum circuit: opens on N consecutive failures
 * (Linkerd) or on an error rate over a rolling window (Hystrix), stays open for a
 * jittered exponential time that grows with each consecutive opening, then lets one
 * probe through (half-open): its success closes the breaker, its failure reopens it.
 *
 * Division of labour. opossum owns the circuit: its state, the open → half-open timer
 * (`resetTimeout`, which we set per opening for the backoff), the single half-open probe
 * (its pending-close gate), closing on the probe's success and reopening on its failure.
 * The accrual while closed is counted here: consecutive failures and a rolling window of
 * 10 buckets. Why not `fire()` every attempt: at ~650 ns and ~3.6 KB of promises, event
 * emits and an unbounded latency array per call, it was the largest single cost of the
 * mesh's hot path; a closed breaker has nothing to decide, only to count. So attempts run
 * through `fire()` only while the breaker is not closed (the probe, or a rejection).
 *
 * Bucket rotation is driven by one shared emitter per service (`BreakerShared`) instead
 * of one interval per breaker.
 *
 * Ordering: endpoint tier, inside the per-try timeout (a timed-out attempt counts as a
 * failure here) and outside accounting and transport. The picker skips endpoints whose
 * breaker is not closed, so a `BreakerRejectedError` only happens on a race with a
 * state change or when a half-open endpoint's single probe is already taken.
 */
import { EventEmitter } from 'node:events';
import CircuitBreaker from 'opossum';
import { jitteredExponential } from './backoff.js';

/** A breaker's state as shown to the rest of the mesh. */
export type BreakerState = 'closed' | 'open' | 'half-open';

export interface EndpointBreakerOptions {
  /** Open after this many consecutive failures; 0 disables the rule. Config default 7. */
  consecutiveFailures: number;
  /** Open when the failure % over `windowMs` exceeds this; 0 disables the rule. Config default 50. */
  errorRatePercent: number;
  /** Attempts in the window before the error rate counts. Config default 20. */
  minRequests: number;
  /** Rolling window of the error rate, ms; should equal the `BreakerShared` window. Config default 10 000. */
  windowMs: number;
  /** Open time: `jitteredExponential(openings, baseMs, maxMs)`, ±20%. Config default 1 000 → 60 000. */
  backoff: { baseMs: number; maxMs: number };
}

export interface EndpointBreakerHooks {
  /** Called on every transition (open, half-open, closed). Should not throw. */
  onStateChange(state: BreakerState): void;
}

/** Buckets in the rolling window (rotation period = windowMs / 10). */
const ROLLING_BUCKETS = 10;

/**
 * What the breakers of one service share: the emitter that rotates every breaker's
 * rolling-window buckets from a single unref'd interval, and the jitter source.
 * Create one per service (and window length); `close()` it when the service goes away.
 */
export class BreakerShared {
  /** Emits `'rotate'` every `windowMs / 10`; drives every breaker's window (and opossum's). */
  readonly rotateBucketController = new EventEmitter();
  /** Uniform [0, 1) source for the open-time jitter. Default `Math.random`. */
  readonly random: () => number;
  readonly windowMs: number;
  /** The breakers whose closed-state windows this rotates: a Set, so adding and removing one is O(1). */
  readonly breakers = new Set<{ rotate(): void }>();
  private timer: ReturnType<typeof setInterval> | undefined;

  constructor(windowMs: number, random: () => number = Math.random) {
    this.windowMs = windowMs;
    this.random = random;
    // One listener per opossum circuit (only breakers that have tripped have one).
    this.rotateBucketController.setMaxListeners(0);
    const controller = this.rotateBucketController;
    const breakers = this.breakers;
    this.timer = setInterval(
      () => {
        for (const b of breakers) b.rotate();
        controller.emit('rotate');
      },
      Math.max(1, Math.floor(windowMs / ROLLING_BUCKETS)),
    );
    this.timer.unref();
  }

  /** Stops the rotation timer. Breakers still attached keep working but their window stops sliding. */
  close(): void {
    if (this.timer !== undefined) clearInterval(this.timer);
    this.timer = undefined;
  }
}

/**
 * Thrown by `EndpointBreaker.run` when the breaker refused the attempt (open, or
 * half-open with its probe already in flight). Internal: the service maps it to the
 * public `CircuitOpenError` naming the service and endpoint.
 */
export class BreakerRejectedError extends Error {
  readonly state: BreakerState;
  constructor(state: BreakerState) {
    super(`circuit breaker is ${state}`);
    this.name = 'BreakerRejectedError';
    this.state = state;
  }
}

/** Carries a failure-classified result through opossum's rejection path back to the caller. */
class FailedResult {
  constructor(readonly value: unknown) {}
}

/** What one attempt looks like to the breaker: the call engine passes its per-call object, so no closure is made. */
export interface BreakerTarget<T> {
  /** Sends the attempt. */
  send(): Promise<T>;
  /** True when a result counts as a failure (it is still returned). */
  isFailureResult(result: T): boolean;
  /** False for errors that are not the endpoint's fault (e.g. the caller aborted). */
  isFailureError(err: unknown): boolean;
}

type FireArgs = [target: BreakerTarget<unknown>];

/** The fired function: one per process, so `run` allocates no closure of its own. */
async function action(target: BreakerTarget<unknown>): Promise<unknown> {
  const result = await target.send();
  if (target.isFailureResult(result)) throw new FailedResult(result);
  return result;
}

/** Adapts the three-function form of `run` to a target. */
class FunctionTarget<T> implements BreakerTarget<T> {
  constructor(
    readonly send: () => Promise<T>,
    readonly isFailureResult: (result: T) => boolean,
    readonly isFailureError: (err: unknown) => boolean,
  ) {}
}

function unwrapRejection(err: unknown): unknown {
  if (err instanceof FailedResult) return err.value;
  if (err instanceof Error && (err as { code?: unknown }).code === 'EOPENBREAKER' && CircuitBreaker.isOurError(err)) {
    throw new BreakerRejectedError('open');
  }
  throw err;
}

/** One endpoint's circuit breaker. */
export class EndpointBreaker {
  /**
   * The opossum circuit, made the first time the breaker opens: a closed breaker only
   * counts, so a service of 10,000 endpoints that never trip builds no circuits.
   */
  private circuit: CircuitBreaker<FireArgs, unknown> | undefined = undefined;
  private isShutdown = false;
  /** The options object opossum keeps by reference: setting `resetTimeout` here sets the next open time. */
  private readonly options: CircuitBreaker.Options<FireArgs>;
  private readonly consecutiveThreshold: number;
  private readonly errorRatePercent: number;
  private readonly minRequests: number;
  private readonly backoff: { baseMs: number; maxMs: number };
  private readonly random: () => number;
  private readonly hooks: EndpointBreakerHooks;
  private readonly shared: BreakerShared;
  private consecutive = 0;
  /** Rolling window while closed: attempts and failures per bucket, `head` the current one. */
  private readonly fires = new Uint32Array(ROLLING_BUCKETS);
  private readonly fails = new Uint32Array(ROLLING_BUCKETS);
  private head = 0;
  private firesTotal = 0;
  private failsTotal = 0;
  /** Openings since the breaker last closed: the backoff exponent. */
  private openings = 0;
  /** Set by the error filter just before opossum emits 'success' for an error that is not a failure. */
  private neutral = false;
  /** Reopen without growing the backoff (a probe ended without a verdict). */
  private repeatStep = false;

  constructor(opts: EndpointBreakerOptions, hooks: EndpointBreakerHooks, shared: BreakerShared) {
    this.consecutiveThreshold = opts.consecutiveFailures;
    this.errorRatePercent = opts.errorRatePercent;
    this.minRequests = opts.minRequests;
    this.backoff = opts.backoff;
    this.random = shared.random;
    this.hooks = hooks;
    this.shared = shared;
    this.options = {
      timeout: false,
      resetTimeout: opts.backoff.baseMs,
      rollingCountTimeout: opts.windowMs,
      rollingCountBuckets: ROLLING_BUCKETS,
      rollingPercentilesEnabled: false,
      enableSnapshots: false,
      rotateBucketController: shared.rotateBucketController,
      // The error rate is judged here (`record`); opossum only sees probes, and a failed
      // probe reopens the circuit whatever the rate.
      errorThresholdPercentage: Number.POSITIVE_INFINITY,
      errorFilter: this.errorFilter,
    };
    shared.breakers.add(this);
  }

  /** The opossum circuit, created on first use. */
  private get breaker(): CircuitBreaker<FireArgs, unknown> {
    if (this.circuit === undefined) {
      const breaker = new CircuitBreaker<FireArgs, unknown>(action, this.options);
      // Prepended so they run before opossum's own listeners: onOpen must set resetTimeout
      // before opossum's 'open' listener arms the half-open timer with it, and onSuccess must
      // see a neutral outcome before opossum's 'success' listener closes a half-open breaker.
      breaker.prependListener('open', this.onOpen);
      breaker.prependListener('success', this.onSuccess);
      breaker.on('halfOpen', this.onHalfOpen);
      breaker.on('close', this.onClose);
      this.circuit = breaker;
    }
    return this.circuit;
  }

  /** Current state. */
  get state(): BreakerState {
    const c = this.circuit;
    if (c === undefined || c.closed) return 'closed';
    if (c.opened) return 'open';
    return 'half-open';
  }

  /** True while the breaker only counts: the engine then sends the attempt itself and calls `record`. */
  get closed(): boolean {
    return this.isShutdown || this.circuit === undefined || this.circuit.closed;
  }

  /**
   * Runs one attempt through the breaker. A result with `isFailure(result)` true counts as
   * a failure and is still returned; an error with `isFailureError(err)` false (e.g. the
   * caller aborted) counts as neither. Rejects with `BreakerRejectedError` when refused.
   * After `shutdown()` the attempt runs unprotected (a stale picker may still pick a removed endpoint).
   */
  run<T>(target: BreakerTarget<T>): Promise<T>;
  run<T>(
    attempt: () => Promise<T>,
    isFailure: (result: T) => boolean,
    isFailureError: (err: unknown) => boolean,
  ): Promise<T>;
  run<T>(
    attempt: BreakerTarget<T> | (() => Promise<T>),
    isFailure?: (result: T) => boolean,
    isFailureError?: (err: unknown) => boolean,
  ): Promise<T> {
    const target = typeof attempt === 'function' ? new FunctionTarget(attempt, isFailure!, isFailureError!) : attempt;
    if (this.isShutdown) return target.send();
    if (this.closed) return this.runClosed(target);
    return this.breaker.fire(target as BreakerTarget<unknown>).then(undefined, unwrapRejection) as Promise<T>;
  }

  /** The hot path: a closed breaker only counts. */
  private async runClosed<T>(target: BreakerTarget<T>): Promise<T> {
    let result: T;
    try {
      result = await target.send();
    } catch (err) {
      if (target.isFailureError(err)) this.record(false);
      throw err;
    }
    this.record(!target.isFailureResult(result));
    return result;
  }

  /** Counts one closed-state outcome and opens the circuit when a rule trips. O(1). */
  record(ok: boolean): void {
    if (this.isShutdown) return;
    this.fires[this.head]++;
    this.firesTotal++;
    if (ok) {
      this.consecutive = 0;
      return;
    }
    this.fails[this.head]++;
    this.failsTotal++;
    this.consecutive++;
    if (!this.closed) return; // an attempt that finished earlier already opened it
    if (this.consecutiveThreshold > 0 && this.consecutive >= this.consecutiveThreshold) {
      this.breaker.open();
    } else if (
      this.errorRatePercent > 0 &&
      this.firesTotal >= this.minRequests &&
      this.failsTotal * 100 > this.errorRatePercent * this.firesTotal
    ) {
      this.breaker.open();
    }
  }

  /** Slides the closed-state window by one bucket (driven by `BreakerShared`). */
  readonly rotate = (): void => {
    const next = this.head + 1 === ROLLING_BUCKETS ? 0 : this.head + 1;
    this.firesTotal -= this.fires[next];
    this.failsTotal -= this.fails[next];
    this.fires[next] = 0;
    this.fails[next] = 0;
    this.head = next;
  };

  /** Stops the breaker (its timers and its rotation listener). */
  shutdown(): void {
    this.isShutdown = true;
    this.shared.breakers.delete(this);
    this.circuit?.shutdown();
  }

  // opossum calls errorFilter(err, ...fireArgs); true means "not a failure" (it then emits 'success').
  private readonly errorFilter = (err: unknown, ...args: unknown[]): boolean => {
    if (err instanceof FailedResult) return false;
    if ((args[0] as BreakerTarget<unknown>).isFailureError(err)) return false;
    this.neutral = true;
    return true;
  };

  private readonly onSuccess = (): void => {
    if (!this.neutral) {
      this.consecutive = 0;
      return;
    }
    this.neutral = false;
    // opossum would close a half-open breaker on this "success". The probe told us nothing,
    // so go back to open at the same backoff step and probe again later.
    if (this.breaker.halfOpen) {
      this.repeatStep = true;
      this.breaker.open();
    }
  };

  private readonly onOpen = (): void => {
    if (this.repeatStep) this.repeatStep = false;
    else this.openings++;
    this.options.resetTimeout = jitteredExponential(
      this.openings,
      this.backoff.baseMs,
      this.backoff.maxMs,
      this.random,
    );
    this.emitState('open');
  };

  private readonly onHalfOpen = (): void => {
    this.emitState('half-open');
  };

  private readonly onClose = (): void => {
    this.openings = 0;
    this.consecutive = 0;
    // Start the error rate afresh (as Hystrix does): the failures that opened the breaker
    // would otherwise reopen it on the first failure after a successful probe.
    this.fires.fill(0);
    this.fails.fill(0);
    this.firesTotal = 0;
    this.failsTotal = 0;
    for (const bucket of this.breaker.status.window) {
      bucket.fires = 0;
      bucket.failures = 0;
      bucket.successes = 0;
      bucket.rejects = 0;
      bucket.timeouts = 0;
      bucket.latencyTimes.length = 0;
    }
    this.emitState('closed');
  };

  private emitState(state: BreakerState): void {
    try {
      this.hooks.onStateChange(state);
    } catch (err) {
      // A throw inside opossum's emit would leave the attempt's promise unsettled forever;
      // surface the bug without corrupting the breaker.
      queueMicrotask(() => {
        throw err;
      });
    }
  }
}
