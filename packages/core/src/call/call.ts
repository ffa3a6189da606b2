/**
 * The per-call state: one object per logical call, mutated per attempt. It is at once the
 * `CallContext` handed to transports, the `PickContext` of every pick, the `CallHandle`
 * a protocol uses to abort the call, the breaker's target and the timer queue's entry, so
 * the engine's roles are functions over this object and make no closures per call.
 *
 * Ordering: created by the service tier (`service-tier.ts`) when a call is admitted for
 * routing; the endpoint tier (`endpoint-tier.ts`) resets its per-attempt fields.
 */
import { SpanStatusCode, type Span, type Context } from '@opentelemetry/api';
import type { Endpoint } from '../endpoint.js';
import { DeadlineExceededError, PerTryTimeoutError, type DeadlineSource } from '../errors.js';
import type { Protocol } from '../protocol.js';
import type { TimerEntry } from '../timer-queue.js';
import type { AbortHandler, AttemptSink, CallContext, CallHandle, Classification, Classifier } from '../types.js';
import type { PickContext } from '../balancer/types.js';
import type { Service } from '../service.js';
import type { CallPolicy } from './policy.js';
import { firstAttemptSettled } from './service-tier.js';

/** What the attempt timer is set for. */
export const NONE = 0;
export const PER_TRY = 1;
export const DEADLINE = 2;

/** How a call that did not succeed ended, for stats. */
export const END_OK = 0;
export const END_FAILED = 1;
export const END_CANCELLED = 2;
export const END_INVALID = 3;

export class Call<Req, Res> implements CallContext, PickContext, CallHandle, TimerEntry, AttemptSink<Res> {
  attempt = 0;
  endpoint: Endpoint | undefined = undefined;
  trace: Context | undefined = undefined;
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
  /** True when the call's span is sampled: attempt events are added only then. */
  sampled = false;
  /** Clock time the current attempt started. */
  startedAt = 0;
  /** The current attempt runs outside opossum (its breaker is closed, or it has none). */
  inline = true;
  /** False when the current attempt's outcome says nothing about its endpoint (cancelled, refused by its breaker). */
  counted = true;
  /** Mesh-clock time the transport reported the current attempt as written to a connection (0: not reported). */
  sentAt = 0;
  /** The endpoint whose health awaits `reportOutcome` (a provisional answer), and whether its breaker counts it. */
  pendingOutcome: Endpoint | undefined = undefined;
  pendingInline = false;
  /**
   * The call ended for the engine on a provisional answer and still holds its service's
   * concurrency slot (`circuitBreaker.maxRequests`): a stream under way counts until it ends.
   */
  slotHeld = false;

  /** Links in the service's list of calls in flight (so close() can cut them), O(1) in and out. */
  activePrev: Call<unknown, unknown> | undefined = undefined;
  activeNext: Call<unknown, unknown> | undefined = undefined;
  active = false;

  // Cancellation without EventTarget on the hot path: the caller's abort and the attempt
  // timers call plain functions; an AbortSignal is made only if a transport asks for one.
  /** The call was cut from outside the engine: the caller's abort, or the mesh closing. */
  cancelled = false;
  cancelReason: unknown = undefined;
  inAttempt = false;
  /** Why the current attempt was cut; undefined while it runs. */
  attemptReason: unknown = undefined;
  private abortHandler: AbortHandler | undefined = undefined;
  private lazyController: AbortController | undefined = undefined;
  /** Rejects the current backoff sleep or queue wait. */
  wake: ((reason: unknown) => void) | undefined = undefined;
  /** The call's own promise, when the service tier runs it without an async frame (the fast path). */
  resolveCall: ((res: Res) => void) | undefined = undefined;
  rejectCall: ((err: unknown) => void) | undefined = undefined;
  /** A callback-style attempt (`Protocol.start`) is waiting for its outcome. */
  awaiting = false;

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
    readonly timeoutMs: number,
    /** Attempts, backoff, per-try timeout and deadline of this call: the service's, or its gRPC method's. */
    readonly policy: CallPolicy,
  ) {}

  get signal(): AbortSignal {
    if (this.lazyController === undefined) {
      this.lazyController = new AbortController();
      if (this.attemptReason !== undefined) this.lazyController.abort(this.attemptReason);
    }
    return this.lazyController.signal;
  }

  remainingMs(): number {
    return this.deadline - this.svc.deps.clock.now();
  }

  get requestMsPath(): string | undefined {
    return this.policy.requestMsPath;
  }

  reportOutcome(ok: boolean | undefined, error?: string): void {
    const ep = this.pendingOutcome;
    if (ep === undefined) return;
    const svc = this.svc;
    this.releaseProvisional();
    if (ok === true) svc.successes++;
    else if (ok === false || error !== undefined) svc.failures++;
    else svc.cancelled++;
    const span = this.span;
    if (span !== undefined) {
      if (error !== undefined) span.setStatus({ code: SpanStatusCode.ERROR, message: error });
      span.end();
    }
    if (ok === undefined) return;
    if (!ok) {
      ep.failures++;
      ep.lastFailure = error;
      ep.lastFailureAt = svc.deps.clock.now();
    }
    this.svc.outlier.record(ep, ok);
    if (this.pendingInline) (ep as { circuit?: { record(ok: boolean): void } }).circuit?.record(ok);
  }

  /**
   * A provisional answer's call has really ended (or failed after all): its endpoint no longer
   * carries it (`inFlight`, which the balancers read) and its concurrency slot is free.
   */
  releaseProvisional(): void {
    const ep = this.pendingOutcome;
    if (ep === undefined) return;
    this.pendingOutcome = undefined;
    ep.inFlight--;
    if (this.slotHeld) {
      this.slotHeld = false;
      this.svc.limiter.release();
    }
  }

  markSent(): void {
    this.sentAt = this.svc.deps.clock.now();
  }

  onAbort(handler: AbortHandler): void {
    if (this.attemptReason !== undefined) callAbortHandler(handler, this.attemptReason);
    else this.abortHandler = handler;
  }

  onTimer(): void {
    onAttemptTimer(this);
  }

  /** Starts a fresh attempt's (or the prepare step's) cancellation state. */
  beginAttempt(): void {
    this.inAttempt = true;
    this.attemptReason = undefined;
    this.abortHandler = undefined;
    this.lazyController = undefined;
    if (this.cancelled) this.abortAttempt(this.cancelReason);
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
    if (handler !== undefined) callAbortHandler(handler, reason);
    this.lazyController?.abort(reason);
  }

  /** The caller gave up (or the mesh is closing): cut the attempt, or the wait, and end the call with `reason`. */
  abort(reason: unknown): void {
    if (this.cancelled) return;
    this.cancelled = true;
    this.cancelReason = reason ?? new DOMException('This operation was aborted', 'AbortError');
    const wake = this.wake;
    this.wake = undefined;
    wake?.(this.cancelReason);
    this.abortAttempt(this.cancelReason);
  }

  /** The caller signal's listener (`handleEvent` makes the call its own listener: no closure). */
  callerSignal: AbortSignal | undefined = undefined;
  /** The signal of the inbound request this call is made for (its caller went away), see `inbound/context.ts`. */
  inboundSignal: AbortSignal | undefined = undefined;
  /** Whose deadline the call runs under: the service's `timeout.requestMs`, or a shorter inbound or caller one. */
  deadlineSource: DeadlineSource = 'service';
  handleEvent(event: Event): void {
    this.abort((event.target as AbortSignal).reason);
  }

  // The sink of a callback-style first attempt (`Protocol.start`): its outcome, once.
  attemptResolved(res: Res): void {
    if (!this.awaiting) return;
    this.awaiting = false;
    firstAttemptSettled(this, res, undefined, false);
  }
  attemptRejected(err: unknown): void {
    if (!this.awaiting) return;
    this.awaiting = false;
    firstAttemptSettled(this, undefined, err, true);
  }

  // The breaker's target: it calls these on the call object itself.
  /** One transport attempt. */
  send(): Promise<Res> {
    return this.protocol.transport(this.req, this, this.endpoint!);
  }
  isFailureResult(res: Res): boolean {
    this.cls = this.classifier.classifyResult(res, this);
    return this.cls !== 'success';
  }
  /** Errors that are not the endpoint's fault (the caller's request, a cancellation) do not count. */
  isFailureError(err: unknown): boolean {
    if (this.cancelled) return false;
    return this.classifier.classifyError(err, this) !== 'invalid-request';
  }
}

function callAbortHandler(handler: AbortHandler, reason: unknown): void {
  if (typeof handler === 'function') handler(reason);
  else handler.handleAbort(reason);
}

function onAttemptTimer<Req, Res>(call: Call<Req, Res>): void {
  call.timedOut = call.timerKind;
  const ep = call.endpoint;
  const policy = call.policy;
  call.abortAttempt(
    call.timerKind === PER_TRY && ep !== undefined
      ? new PerTryTimeoutError(call.service, ep.address, policy.perTryMs!, policy.perTryMsPath)
      : new DeadlineExceededError(
          call.service,
          call.timeoutMs,
          call.attempt,
          ep?.address,
          call.deadlineSource,
          policy.requestMsPath,
        ),
  );
}

/** Arms the attempt's timer: the per-try timeout when it comes first, else the call's deadline. */
export function armTimer<Req, Res>(
  call: Call<Req, Res>,
  now: number,
  remaining: number,
  perTry: number | undefined,
): void {
  call.timedOut = NONE;
  call.timerKind = perTry !== undefined && perTry < remaining ? PER_TRY : DEADLINE;
  const timeout = call.timerKind === PER_TRY ? perTry! : remaining;
  call.timer = call.svc.timers.add(call, now + timeout, now) ? undefined : setTimeout(onAttemptTimer, timeout, call);
}

export function disarmTimer<Req, Res>(call: Call<Req, Res>): void {
  if (call.timer !== undefined) {
    clearTimeout(call.timer);
    call.timer = undefined;
  } else call.svc.timers.remove(call);
}
