/**
 * The endpoint tier: one attempt of a call on one endpoint.
 *
 * Order: pick (a pending half-open probe first, else the balancer, avoiding the endpoint
 * the previous attempt failed on) → per-try timer (capped by the call's deadline) →
 * circuit breaker (a closed breaker only counts, inline; opossum runs only the probe) →
 * protocol transport → classification → accounting (in-flight, peak EWMA, outlier
 * detector, breaker, stats) → telemetry (span event on sampled spans, duration point).
 *
 * Faults land on the right party: an attempt cut by the caller (or the mesh closing) or
 * refused because of the caller's own request (`invalid-request`) never counts against
 * the endpoint — no breaker, outlier, EWMA or failure count.
 */
import { DeadlineExceededError, InvalidRequestError, CircuitOpenError } from '../errors.js';
import { BreakerRejectedError } from '../policy/circuit-breaker.js';
import type { ServiceEndpoint } from '../service.js';
import { armTimer, disarmTimer, DEADLINE, PER_TRY, type Call } from './call.js';

type Endpoint = ServiceEndpoint;

/** A failed attempt weighs as this many typical latencies in the peak EWMA. */
const FAILURE_PENALTY = 5;

/**
 * Starts an attempt: pick, accounting, timer, then the transport (inline while the breaker
 * is closed, through opossum otherwise). Returns the transport's promise, or undefined when
 * no endpoint is left but the call holds a response to answer with. Throws when the call
 * cannot go on (deadline, no endpoint). Split from `settleAttempt` so the service tier can
 * run the first attempt in its own frame, without another async function per call.
 */
export function sendAttempt<Req, Res>(call: Call<Req, Res>, startedAt?: number): Promise<Res> | undefined {
  const ep = beginSend(call, startedAt);
  if (ep === undefined) return undefined;
  try {
    return call.inline ? call.protocol.transport(call.req, call, ep) : ep.circuit!.run(call);
  } catch (err) {
    return Promise.reject(err);
  }
}

/**
 * Starts the first attempt in the callback form (`Protocol.start`): its outcome reaches
 * the call's sink methods (`Call.attemptResolved` / `attemptRejected`), maybe before this
 * returns, with no promise while the breaker is closed. Returns false when no endpoint is
 * left but the call holds a response to answer with (never on a first attempt); throws when
 * the call cannot go on, as `sendAttempt` does.
 */
export function startAttempt<Req, Res>(call: Call<Req, Res>, startedAt: number): boolean {
  const ep = beginSend(call, startedAt);
  if (ep === undefined) return false;
  call.awaiting = true;
  if (!call.inline) {
    ep.circuit!.run(call).then(
      (res) => call.attemptResolved(res as Res),
      (err: unknown) => call.attemptRejected(err),
    );
    return true;
  }
  try {
    call.protocol.start!(call.req, call, ep, call);
  } catch (err) {
    call.attemptRejected(err);
  }
  return true;
}

/** Pick, per-attempt state, accounting and timer: what every attempt does before its transport. */
function beginSend<Req, Res>(call: Call<Req, Res>, startedAt: number | undefined): Endpoint | undefined {
  const svc = call.svc;
  const now = startedAt ?? svc.deps.clock.now();
  const remaining = call.deadline - now;
  call.now = now;
  call.startedAt = now;
  const ep = remaining > 0 ? svc.pick(call) : undefined;
  if (ep === undefined) {
    // A retry that cannot be sent leaves the caller the response it already has.
    if (call.res !== undefined) {
      call.stop = true;
      return undefined;
    }
    if (remaining <= 0) {
      throw new DeadlineExceededError(
        svc.name,
        call.timeoutMs,
        call.attempt,
        call.endpoint?.address,
        call.deadlineSource,
      );
    }
    throw svc.noEndpointError();
  }
  if (call.res !== undefined) call.protocol.discard(call.res);

  call.attempt++;
  if (call.attempt > 1) {
    svc.retries++;
    svc.deps.telemetry.retry(svc.name);
  }
  call.endpoint = ep;
  call.res = undefined;
  call.err = undefined;
  call.cls = 'success';
  call.sentAt = 0;
  ep.inFlight++;
  ep.requests++;
  svc.load.seq++;

  call.beginAttempt();
  armTimer(call, now, remaining, call.policy.perTryMs);
  const circuit = ep.circuit;
  call.inline = circuit === undefined || circuit.closed;
  return ep;
}

/** The attempt's transport answered. */
export function attemptAnswered<Req, Res>(call: Call<Req, Res>, res: Res): void {
  call.res = res;
  // Through opossum, the breaker's action already classified it.
  if (call.inline) call.isFailureResult(res);
}

/** The attempt's transport failed (or the breaker refused it): whose fault, and is it retryable? */
export function attemptFailed<Req, Res>(call: Call<Req, Res>, err: unknown): void {
  call.res = undefined;
  if (call.cancelled) {
    call.err = call.cancelReason;
    call.counted = false;
  } else if (err instanceof BreakerRejectedError) {
    call.err = new CircuitOpenError(call.service, call.endpoint!.address);
    call.cls = 'retryable';
    call.counted = false;
  } else {
    // The classifier's verdict on the transport's own error comes first: a transport cut
    // while it waited on the caller's request body reports that, whatever timer fired.
    const cls = call.classifier.classifyError(err, call);
    if (cls === 'invalid-request') {
      call.err = err;
      call.cls = cls;
    } else if (call.timedOut === DEADLINE) {
      call.err = call.attemptReason;
    } else if (call.timedOut === PER_TRY) {
      call.err = call.attemptReason;
      call.cls = call.classifier.classifyError(call.err, call);
    } else {
      call.err = err;
      call.cls = cls;
    }
  }
}

/** Ends an attempt: timer, accounting, telemetry; throws when the call must end here. */
export function settleAttempt<Req, Res>(call: Call<Req, Res>): void {
  const svc = call.svc;
  const ep = call.endpoint!;
  const { clock, telemetry } = svc.deps;
  disarmTimer(call);
  call.endAttempt();
  ep.inFlight--;
  const counted = call.counted && call.cls !== 'invalid-request';
  call.counted = true;

  const now = call.startedAt;
  const end = clock.now();
  call.now = end;
  const latency = end - now;
  const ok = call.cls === 'success' && call.err === undefined;
  if (counted) {
    // Time on the wire when the transport marked the send (pool queueing and connection
    // set-up are not the endpoint's latency), else the whole attempt.
    const rtt = call.sentAt > now ? end - call.sentAt : latency;
    svc.load.neutralMs = svc.load.neutralMs === 0 ? rtt : svc.load.neutralMs * 0.9 + rtt * 0.1;
    if (ok) {
      ep.observeLatency(rtt, end, svc.config.ewmaDecayMs, svc.load);
    } else {
      // A failure must not look fast (a peer refusing connections answers quickest of all),
      // so it counts as FAILURE_PENALTY × the service's typical latency, bounded so that
      // repeated failures cannot grow the estimate without limit.
      ep.failures++;
      const protocol = call.protocol;
      ep.lastFailure =
        call.err !== undefined
          ? call.err
          : protocol.failureReason !== undefined
            ? protocol.failureReason(call.res as Res)
            : protocol.attemptStatus(call.res, undefined);
      ep.lastFailureAt = end;
      const penalty = Math.max(rtt, FAILURE_PENALTY * Math.max(1, svc.load.neutralMs));
      ep.observeLatency(penalty, end, svc.config.ewmaDecayMs, svc.load);
    }
    ep.latency.record(latency, end);
    const provisional = call.protocol.provisional;
    if (ok && provisional !== undefined && provisional.call(call.protocol, call.res as Res)) {
      // The call goes on after this answer: its health is recorded when it really ends
      // (reportOutcome), and until then it still loads its endpoint.
      call.pendingOutcome = ep;
      ep.inFlight++;
      call.pendingInline = call.inline;
    } else {
      svc.outlier.record(ep, ok);
      if (call.inline) (ep as { circuit?: { record(ok: boolean): void } }).circuit?.record(ok);
    }
  }
  const span = call.span;
  if (span !== undefined && call.sampled) {
    span.addEvent('attempt', {
      'meshlet.attempt': call.attempt,
      'meshlet.endpoint': ep.address,
      'meshlet.outcome': call.err === undefined ? call.cls : 'error',
      'meshlet.status': call.protocol.attemptStatus(call.res, call.err),
      'meshlet.duration_ms': latency,
    });
  }
  const metric = call.protocol.durationMetric;
  if (telemetry.metricsOn && metric !== undefined) {
    telemetry.recordDuration(
      metric,
      latency / 1000,
      call.protocol.attemptAttributes(call.req, call, ep, call.res, call.err),
    );
  }
  if (call.cancelled) throw call.cancelReason;
  if (call.cls === 'invalid-request') {
    throw call.err instanceof InvalidRequestError
      ? call.err
      : new InvalidRequestError(svc.name, `the request was refused before it reached ${ep.address}`, call.err);
  }
  if (call.timedOut === DEADLINE) {
    // A transport that ignored the abort and answered late still missed the deadline.
    if (call.res !== undefined) {
      call.protocol.discard(call.res);
      call.res = undefined;
    }
    throw call.err ?? call.attemptReason;
  }
}

/** One whole attempt (retries use it; the first attempt runs the same steps inline in the service tier). */
export async function runAttempt<Req, Res>(call: Call<Req, Res>, startedAt?: number): Promise<void> {
  const sent = sendAttempt(call, startedAt);
  if (sent === undefined) return;
  try {
    attemptAnswered(call, await sent);
  } catch (err) {
    attemptFailed(call, err);
  }
  settleAttempt(call);
}
