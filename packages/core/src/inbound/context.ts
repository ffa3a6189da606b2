/**
 * The inbound request a piece of code is running for, carried in AsyncLocalStorage: its
 * deadline, its caller and a signal that fires when the caller goes away. An inbound adapter
 * (`@meshlet/http/express`, `@meshlet/http/nest`, `@meshlet/grpc`'s server interceptors) runs the
 * handler inside `runWithInbound`; every outbound mesh call made from there, however deep in
 * async code, is clamped to that deadline and cancelled with that signal (the service tier
 * reads it once per call, in `runCall`).
 */
import { performance } from 'node:perf_hooks';
import { AsyncLocalStorage } from 'node:async_hooks';

export interface InboundContext {
  /**
   * Absolute deadline on the `performance.now()` clock, ms (`Infinity`: none). Outbound mesh
   * calls made while handling the request are clamped to it; one made after it passed fails at
   * once with `MESHLET_ERR_DEADLINE`, without touching the network.
   */
  readonly deadlineAt: number;
  /** Aborted when the inbound request's caller goes away: outbound mesh calls made on its behalf are cancelled. */
  readonly signal: AbortSignal | undefined;
  /** The caller's service name (a validated `meshlet-caller` header), undefined when unknown. */
  readonly caller: string | undefined;
}

const storage = new AsyncLocalStorage<InboundContext>();

/**
 * Runs `fn(...args)` (and everything it starts) as the handling of the inbound request `ctx`
 * describes. The arguments let an adapter pass a shared function and its per-call state instead
 * of making a closure per call.
 */
export function runWithInbound<A extends unknown[], T>(ctx: InboundContext, fn: (...args: A) => T, ...args: A): T {
  return storage.run(ctx, fn, ...args);
}

/** The inbound request the current code runs for, if an inbound adapter set one. */
export function currentInbound(): InboundContext | undefined {
  return storage.getStore();
}
