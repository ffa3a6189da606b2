/**
 * The service tier: one logical call, from its arrival to its answer.
 *
 * Order: caller-abort check → per-call state (`Call`, hash key) → admission (concurrency
 * limit, queue bounded by the deadline) → span (only when a tracer is registered, or a
 * propagator is and the caller has an active span) → prepare (the protocol's one-off work before the first attempt,
 * e.g. buffering a small body for replay, under the deadline and the caller's abort) →
 * first attempt inline (`endpoint-tier.ts`) → retries through p-retry, each behind the
 * retry gate (`retry.ts`) → the answer, and the call's stats.
 *
 * Every call is linked into its service's list of calls in flight from the start, so
 * `mesh.close()` can wait for them and cut the ones left after its grace period.
 */
import { performance } from 'node:perf_hooks';
import { INVALID_SPAN_CONTEXT, SpanKind, SpanStatusCode, context, isSpanContextValid, trace } from '@opentelemetry/api';
import pRetry from 'p-retry';
import { hashString } from '../balancer/hash.js';
import {
  DeadlineExceededError,
  type DeadlineSource,
  InvalidRequestError,
  OverloadedError,
  RetryBudgetExhaustedError,
  UpstreamError,
} from '../errors.js';
import type { Protocol } from '../protocol.js';
import type { Service } from '../service.js';
import { Call, DEADLINE, armTimer, disarmTimer } from './call.js';
import { attemptAnswered, attemptFailed, runAttempt, settleAttempt, startAttempt } from './endpoint-tier.js';
import { retryGate } from './retry.js';
import { currentInbound } from '../inbound/context.js';

const SPAN_OPTIONS = { kind: SpanKind.CLIENT };
/** Thrown inside p-retry to ask for another attempt; stateless, so one instance serves all calls. */
const RETRY = new Error('meshlet: retryable attempt');
/** Carries a cancellation through p-retry, which refuses non-Error reasons. */
const CANCELLED = new Error('meshlet: cancelled');

/** Hands a `Mesh.send` call's failure to its protocol, from a microtask. */
export function failDetached<Req, Res>(protocol: Protocol<Req, Res>, req: Req, err: unknown): void {
  queueMicrotask(() => protocol.fail!(req, err));
}

/**
 * One logical call. While nothing needs to wait (a slot is free, nothing to prepare, the
 * protocol has a callback transport), the call runs without an async frame: the first
 * attempt starts here and its outcome arrives through the call's sink
 * (`firstAttemptSettled`); only a retry, a queue wait or a prepare step go through
 * `runCallAsync`. Either way the same steps run in the same order.
 */
export function runCall<Req, Res>(
  svc: Service,
  req: Req,
  protocol: Protocol<Req, Res>,
  requestedService: string,
  route: string | undefined,
  callerSignal: AbortSignal | undefined,
  /**
   * For `Mesh.send`: no promise (undefined is returned); the answer goes to the protocol's
   * `deliver` and a failure to its `fail`, never from inside this call.
   */
  detached: boolean,
): Promise<Res> | undefined {
  const start = svc.deps.clock.now();
  const cfg = svc.config;
  if (callerSignal?.aborted) {
    svc.cancelled++;
    return rejectWith(protocol, req, detached, callerSignal.reason);
  }
  const method = protocol.method(req);
  // The service's own policy unless it has gRPC `methods` (one field check for every other service).
  const policy = svc.methods === undefined ? svc.policy : svc.methods.get(method);
  let timeoutMs = policy.requestMs;
  let source: DeadlineSource = 'service';
  // Made while handling an inbound request: its deadline and its caller's departure bind this call too.
  const inbound = currentInbound();
  if (inbound !== undefined) {
    const inboundSignal = inbound.signal;
    if (inboundSignal?.aborted) {
      svc.cancelled++;
      return rejectWith(protocol, req, detached, inboundSignal.reason);
    }
    const left = inbound.deadlineAt - performance.now();
    if (left < timeoutMs) {
      if (!(left > 0)) {
        // The caller's budget is spent: fail without touching the network. The caller's doing, not a failure.
        svc.cancelled++;
        return rejectWith(protocol, req, detached, new DeadlineExceededError(svc.name, 0, 0, undefined, true));
      }
      timeoutMs = left;
      source = 'inbound';
    }
  }
  // The caller's own deadline for this call (a gRPC `deadline` option), when the protocol carries one.
  const callerTimeoutMs = protocol.callerTimeoutMs;
  if (callerTimeoutMs !== undefined) {
    const left = callerTimeoutMs.call(protocol, req);
    if (left !== undefined && left < timeoutMs) {
      if (!(left > 0)) {
        svc.cancelled++;
        return rejectWith(
          protocol,
          req,
          detached,
          new DeadlineExceededError(svc.name, 0, 0, undefined, 'caller', policy.requestMsPath),
        );
      }
      timeoutMs = left;
      source = 'caller';
    }
  }

  const call = new Call<Req, Res>(
    svc,
    req,
    protocol,
    policy.classifierFor(protocol),
    svc.name,
    requestedService,
    route,
    method,
    start + timeoutMs,
    timeoutMs,
    policy,
  );
  call.deadlineSource = source;
  if (cfg.hashKey !== undefined) {
    const key = 'header' in cfg.hashKey ? protocol.header(req, cfg.hashKey.header) : stripQuery(protocol.path(req));
    if (key !== undefined) call.hash = hashString(key);
  }
  protocol.bindCall?.(req, call);
  if (callerSignal !== undefined) {
    call.callerSignal = callerSignal;
    callerSignal.addEventListener('abort', call);
  }
  if (inbound?.signal !== undefined) {
    call.inboundSignal = inbound.signal;
    inbound.signal.addEventListener('abort', call);
  }
  svc.track(call);
  if (!svc.limiter.tryAcquire()) return detachedAsync(call, runCallAsync(call, start, QUEUED, undefined), detached);
  admit(call, start);
  if (protocol.prepare !== undefined) {
    // The prepare step gets the attempt's cancellation tools (onAbort, signal).
    call.beginAttempt();
    const prepared = protocol.prepare(req, call);
    if (prepared !== undefined) return detachedAsync(call, runCallAsync(call, start, PREPARING, prepared), detached);
    call.endAttempt();
  }
  if (protocol.start === undefined)
    return detachedAsync(call, runCallAsync(call, start, ADMITTED, undefined), detached);
  // The fast path: the first attempt starts here; its outcome settles the call's promise
  // (or, detached, goes to the protocol's deliver / fail).
  let promise: Promise<Res> | undefined;
  if (!detached) {
    promise = new Promise<Res>(capture);
    call.resolveCall = captured.resolve as (res: Res) => void;
    call.rejectCall = captured.reject;
    captured.resolve = captured.reject = undefined;
  }
  try {
    if (!startAttempt(call, start)) callSucceeded(call);
  } catch (err) {
    callFailed(call, err);
  }
  return promise;
}

/** An early failure: a rejected promise, or (detached) the protocol's `fail`. */
export function rejectWith<Req, Res>(
  protocol: Protocol<Req, Res>,
  req: Req,
  detached: boolean,
  err: unknown,
): Promise<Res> | undefined {
  if (!detached) return Promise.reject(err);
  failDetached(protocol, req, err);
  return undefined;
}

/** A call on the async path: its promise, or (detached) its failure routed to the protocol's `fail`. */
function detachedAsync<Req, Res>(
  call: Call<Req, Res>,
  promise: Promise<Res>,
  detached: boolean,
): Promise<Res> | undefined {
  if (!detached) return promise;
  promise.then(undefined, (err: unknown) => call.protocol.fail!(call.req, err));
  return undefined;
}

const captured: { resolve: ((v: unknown) => void) | undefined; reject: ((e: unknown) => void) | undefined } = {
  resolve: undefined,
  reject: undefined,
};
/** A shared promise executor: hands over resolve/reject with no closure per call. */
function capture(resolve: (v: never) => void, reject: (e: unknown) => void): void {
  captured.resolve = resolve as (v: unknown) => void;
  captured.reject = reject;
}

/** Admission done: count the call, feed the budget, start its span. */
function admit<Req, Res>(call: Call<Req, Res>, start: number): void {
  const svc = call.svc;
  const telemetry = svc.deps.telemetry;
  svc.requests++;
  svc.budget.deposit(start);
  telemetry.refresh(start);
  // No tracer and no propagator registered: no span, and not even a context lookup.
  if (telemetry.tracingOn || (telemetry.propagationOn && trace.getSpan(context.active()) !== undefined)) {
    startSpan(call);
  }
}

/** The outcome of a fast-path first attempt (from the call's sink). */
export function firstAttemptSettled<Req, Res>(
  call: Call<Req, Res>,
  res: Res | undefined,
  err: unknown,
  failed: boolean,
): void {
  if (failed) attemptFailed(call, err);
  else attemptAnswered(call, res as Res);
  try {
    settleAttempt(call);
  } catch (e) {
    callFailed(call, e);
    return;
  }
  if (call.cls === 'retryable' && !call.stop && call.policy.maxAttempts > 1) {
    retryRest(call).then(
      () => callSucceeded(call),
      (e: unknown) => callFailed(call, e),
    );
  } else callSucceeded(call);
}

/** Ends a fast-path call with its answer (or the error `finish` makes of it). */
function callSucceeded<Req, Res>(call: Call<Req, Res>): void {
  let res: Res;
  try {
    res = finish(call);
  } catch (err) {
    callFailed(call, err);
    return;
  }
  endCall(call);
  const resolve = call.resolveCall;
  call.resolveCall = call.rejectCall = undefined;
  deliver(call, res);
  resolve?.(res);
}

/** Hands the answer to the protocol's `deliver` hook, if it has one. */
function deliver<Req, Res>(call: Call<Req, Res>, res: Res): void {
  const hook = call.protocol.deliver;
  if (hook === undefined) return;
  try {
    hook.call(call.protocol, call.req, res);
  } catch {
    // A protocol's hook must not throw; if it does, the caller still gets the promise.
  }
}

/** Ends a fast-path call with an error. */
function callFailed<Req, Res>(call: Call<Req, Res>, err: unknown): void {
  countFailure(call, err);
  endCall(call);
  const reject = call.rejectCall;
  call.resolveCall = call.rejectCall = undefined;
  if (reject !== undefined) reject(err);
  else failDetached(call.protocol, call.req, err);
}

function countFailure<Req, Res>(call: Call<Req, Res>, err: unknown): void {
  const svc = call.svc;
  // A provisional answer that still failed the call (it came after the deadline): nothing to wait for.
  call.releaseProvisional();
  if (call.cancelled) svc.cancelled++;
  else if (err instanceof InvalidRequestError) svc.invalidRequests++;
  else svc.failures++;
  call.span?.setStatus({ code: SpanStatusCode.ERROR, message: err instanceof Error ? err.message : String(err) });
}

/** What every admitted call does at its end: latency, span, slot, in-flight list, caller's signal. */
function endCall<Req, Res>(call: Call<Req, Res>): void {
  const svc = call.svc;
  // call.now is the clock at the last attempt's end (or failed pick): the call's end, one read saved.
  const end = call.now > 0 ? call.now : svc.deps.clock.now();
  svc.latency.record(end - (call.deadline - call.timeoutMs), end);
  // A provisional answer (a stream under way): the span ends with the call, in reportOutcome.
  if (call.pendingOutcome === undefined) {
    call.span?.end();
    svc.limiter.release();
  } else call.slotHeld = true;
  svc.untrack(call);
  call.callerSignal?.removeEventListener('abort', call);
  call.inboundSignal?.removeEventListener('abort', call);
}

/** Where `runCallAsync` takes over. */
const QUEUED = 0;
const PREPARING = 1;
const ADMITTED = 2;

/**
 * The call when something must be awaited first: a concurrency slot (QUEUED), the
 * protocol's prepare step (PREPARING, its promise in `prepared`), or a protocol without a
 * callback transport (ADMITTED).
 */
async function runCallAsync<Req, Res>(
  call: Call<Req, Res>,
  start: number,
  stage: number,
  prepared: Promise<void> | undefined,
): Promise<Res> {
  const svc = call.svc;
  const clock = svc.deps.clock;
  const protocol = call.protocol;
  let admitted = stage !== QUEUED;
  let res: Res;
  try {
    let first = start;
    if (stage === QUEUED) {
      await queueWait(call);
      admitted = true;
      admit(call, start);
      first = clock.now();
      if (protocol.prepare !== undefined) {
        call.beginAttempt();
        prepared = protocol.prepare(call.req, call);
        if (prepared === undefined) call.endAttempt();
      }
    }
    try {
      if (prepared !== undefined) {
        await runPrepare(call, prepared);
        first = clock.now();
      }
      await runAttempt(call, first);
      if (call.cls === 'retryable' && !call.stop && call.policy.maxAttempts > 1) await retryRest(call);
      res = finish(call);
    } catch (err) {
      countFailure(call, err);
      throw err;
    } finally {
      const end = call.now > 0 ? call.now : clock.now();
      svc.latency.record(end - start, end);
      if (call.pendingOutcome === undefined) call.span?.end();
    }
  } catch (err) {
    if (!admitted && call.cancelled) svc.cancelled++;
    throw err;
  } finally {
    if (admitted) {
      // A provisional answer (a stream under way) keeps its slot until it ends (reportOutcome).
      if (call.pendingOutcome === undefined) svc.limiter.release();
      else call.slotHeld = true;
    }
    svc.untrack(call);
    call.callerSignal?.removeEventListener('abort', call);
    call.inboundSignal?.removeEventListener('abort', call);
  }
  deliver(call, res);
  return res;
}

/** Attempts 2..n, each behind the retry gate (called after a retryable first attempt). */
async function retryRest<Req, Res>(call: Call<Req, Res>): Promise<void> {
  if (!(await retryGate(call))) return;
  try {
    await pRetry(() => retryAttempt(call), {
      retries: call.policy.maxAttempts - 2,
      minTimeout: 0,
      maxTimeout: 0,
      factor: 1,
      shouldRetry: ({ error }) => (error === RETRY ? retryGate(call) : false),
    });
  } catch (err) {
    if (err === CANCELLED) throw call.cancelReason;
    if (err !== RETRY) throw err;
  }
}

function startSpan<Req, Res>(call: Call<Req, Res>): void {
  const svc = call.svc;
  const span = svc.deps.telemetry.tracer.startSpan(call.protocol.spanName(call.req, call), SPAN_OPTIONS);
  call.span = span;
  if (span.isRecording()) {
    call.sampled = (span.spanContext().traceFlags & 1) === 1;
    span.setAttribute('meshlet.service', svc.name);
    if (call.requestedService !== svc.name) span.setAttribute('meshlet.requested_service', call.requestedService);
    if (call.route !== undefined) span.setAttribute('meshlet.route', call.route);
  }
  const spanContext = span.spanContext();
  if (spanContext !== INVALID_SPAN_CONTEXT && isSpanContextValid(spanContext)) {
    call.trace = trace.setSpan(context.active(), span);
  }
}

/** Attempts 2..n under p-retry. */
async function retryAttempt<Req, Res>(call: Call<Req, Res>): Promise<void> {
  try {
    await runAttempt(call);
  } catch (err) {
    if (call.cancelled) throw CANCELLED;
    throw err;
  }
  if (call.cls === 'retryable' && !call.stop) throw RETRY;
}

/** Waits for a concurrency slot, bounded by the deadline and cancellation. */
async function queueWait<Req, Res>(call: Call<Req, Res>): Promise<void> {
  const svc = call.svc;
  const cb = svc.config.circuitBreaker;
  if (call.cancelled) throw call.cancelReason;
  const ac = new AbortController();
  call.wake = (reason) => ac.abort(reason);
  const timer = setTimeout(
    () =>
      ac.abort(
        new DeadlineExceededError(
          svc.name,
          call.timeoutMs,
          0,
          undefined,
          call.deadlineSource,
          call.policy.requestMsPath,
        ),
      ),
    Math.max(0, call.deadline - svc.deps.clock.now()),
  );
  try {
    const waiting = svc.limiter.acquire(ac.signal);
    if (waiting === false) throw new OverloadedError(svc.name, cb.maxRequests, cb.maxPending);
    await waiting;
  } finally {
    clearTimeout(timer);
    call.wake = undefined;
  }
}

/**
 * Waits for the protocol's prepare step under the call's deadline and cancellation
 * (the caller has begun the attempt state): whichever comes first ends it, even if the
 * protocol ignores the abort.
 */
async function runPrepare<Req, Res>(call: Call<Req, Res>, prepared: Promise<void>): Promise<void> {
  const svc = call.svc;
  const now = svc.deps.clock.now();
  armTimer(call, now, call.deadline - now, undefined);
  const signal = call.signal;
  try {
    await new Promise<void>((resolve, reject) => {
      const onAbort = (): void => reject(signal.reason);
      if (signal.aborted) onAbort();
      else signal.addEventListener('abort', onAbort, { once: true });
      prepared.then(resolve, reject);
    });
  } catch (err) {
    if (call.cancelled) throw call.cancelReason;
    if (call.timedOut === DEADLINE) throw call.attemptReason;
    if (err instanceof InvalidRequestError) throw err;
    throw new InvalidRequestError(svc.name, 'the request could not be prepared for sending', err);
  } finally {
    disarmTimer(call);
    call.endAttempt();
    // A late rejection of an abandoned prepare must not surface as unhandled.
    prepared.catch(() => {});
  }
}

function finish<Req, Res>(call: Call<Req, Res>): Res {
  const svc = call.svc;
  if (call.err === undefined) {
    // A provisional answer (a stream under way) is counted when it really ends (reportOutcome).
    if (call.cls === 'success') {
      if (call.pendingOutcome === undefined) svc.successes++;
    } else {
      svc.failures++;
      call.span?.setStatus({ code: SpanStatusCode.ERROR });
    }
    return call.res as Res;
  }
  // Counted by the caller's catch.
  const address = call.endpoint?.address;
  if (call.budgetRefused) throw new RetryBudgetExhaustedError(svc.name, call.attempt, address, call.err);
  throw new UpstreamError(svc.name, call.attempt, address, call.err);
}

export function stripQuery(path: string): string {
  const q = path.indexOf('?');
  return q === -1 ? path : path.slice(0, q);
}
