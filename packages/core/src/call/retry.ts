/**
 * The retry gate of the service tier: decides whether a retryable attempt is retried and
 * waits out its backoff. A retry needs, in this order (cheapest first, so the budget is
 * charged only for retries that will really be sent): attempts left → a replayable
 * request → room in the deadline for the full-jitter backoff plus the service's typical
 * latency → a retry-budget token. Attempts and backoff are the call's policy's (its gRPC
 * method's when configured); the budget is the service's, shared by every protocol and method.
 */
import { fullJitterBackoff } from '../policy/backoff.js';
import type { Call } from './call.js';

export async function retryGate<Req, Res>(call: Call<Req, Res>): Promise<boolean> {
  const svc = call.svc;
  const r = call.policy;
  if (call.attempt >= r.maxAttempts) return false;
  if (!call.protocol.replayable(call.req, r.nonIdempotent)) return false;
  const delay = fullJitterBackoff(call.attempt, r.backoff.baseMs, r.backoff.maxMs, svc.deps.random);
  const remaining = call.deadline - svc.deps.clock.now();
  if (remaining < delay + Math.max(1, svc.load.neutralMs)) {
    svc.retriesSkippedByDeadline++;
    return false;
  }
  if (!svc.budget.tryWithdraw()) {
    svc.retriesSkippedByBudget++;
    call.budgetRefused = true;
    svc.deps.telemetry.budgetRefusal(svc.name);
    return false;
  }
  call.avoid = call.endpoint;
  if (call.cancelled) throw call.cancelReason;
  if (delay >= 1) await sleep(delay, call);
  return true;
}

/** Backoff wait; a cancellation rejects it through `call.wake`. */
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
