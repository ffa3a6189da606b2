import type { Attributes } from '@opentelemetry/api';
import type { Endpoint } from './endpoint.js';
import type { AttemptSink, CallContext, CallHandle, Classifier, Transport } from './types.js';

/**
 * What a protocol package (HTTP, gRPC) plugs into the mesh: the transport leaf, the
 * classifier, and the few request facts the policies need. Policies never see a status
 * code; they see only what these functions return.
 */
export interface Protocol<Req, Res> {
  /** `http`, `grpc`. */
  readonly name: string;
  /**
   * OTel duration metric of one attempt, e.g. `http.client.request.duration`. Undefined: the
   * engine records no per-attempt point (a protocol that records its own, once per call, as gRPC does).
   */
  readonly durationMetric?: string;
  /** Sends one attempt to one endpoint. */
  readonly transport: Transport<Req, Res>;
  /**
   * Optional callback form of `transport`, used for a call's first attempt while its
   * endpoint's breaker is closed: sends the attempt and reports its outcome to `sink`
   * exactly once (synchronously or later), so the attempt costs no promise. Must not throw
   * after reporting.
   */
  start?(req: Req, ctx: CallContext, endpoint: Endpoint, sink: AttemptSink<Res>): void;
  /** Compiles a service's `retry.retryOn` tokens (undefined: the protocol default) into a classifier. */
  classifier(retryOn: readonly string[] | undefined): Classifier<Res>;
  /**
   * Optional: the caller's own timeout for this call, in ms from now (e.g. a gRPC call's
   * `deadline` option); undefined when it set none. The call's deadline is the earliest of
   * this, the service's `timeout.requestMs` and the inbound request's; `<= 0` fails the call
   * at once with `DeadlineExceededError`, before any attempt. Called once per call.
   */
  callerTimeoutMs?(req: Req): number | undefined;
  /** Request method, for route matching and telemetry. */
  method(req: Req): string;
  /** Request path, for route matching and `hashKey: { path: true }`. */
  path(req: Req): string;
  /** A request header's value (name lower-case), for route matching and `hashKey`. */
  header(req: Req, name: string): string | undefined;
  /** Whether the request may be sent again: idempotent (or opted in) and its body replayable. */
  replayable(req: Req, nonIdempotent: boolean): boolean;
  /**
   * Optional: whether a successful answer is only provisionally so: the call goes on after it (a
   * gRPC stream committed on its first message, whose status is still to come). Its endpoint's
   * health (outlier detector, breaker) is then not recorded when the attempt settles, but when the
   * protocol reports the call's real end through `CallContext.reportOutcome`; the call's span
   * stays open and its success or failure in the service's stats waits until then. Latency (the
   * EWMA) is recorded at settle either way.
   */
  provisional?(res: Res): boolean;
  /** Releases a result that will not reach the caller (a retried response). */
  discard(res: Res): void;
  /** Span name of a logical call. */
  spanName(req: Req, ctx: CallContext): string;
  /** Attributes of one attempt's duration point. Called only when metrics are on. */
  attemptAttributes(req: Req, ctx: CallContext, endpoint: Endpoint, res: Res | undefined, err: unknown): Attributes;
  /**
   * Optional one-off work before the first attempt, e.g. reading a small request body into
   * memory so it can be replayed. Called once per call, after admission; return `undefined`
   * when there is nothing to do (no promise on the hot path). It runs under the call's
   * deadline and cancellation: `ctx.onAbort(handler)` and `ctx.signal` are cut with the reason
   * (DeadlineExceededError, the caller's reason, MeshClosedError), and the engine stops
   * waiting then even if the promise has not settled. A rejection ends the call: an
   * `InvalidRequestError` passes through, any other error is wrapped in one.
   */
  prepare?(req: Req, ctx: CallContext): Promise<void> | undefined;
  /**
   * Optional: told the call's answer synchronously, once, as soon as it is decided (before
   * the call's promise resolves with it), so a protocol can hand the response to its caller
   * without waiting for a microtask. Should not throw.
   */
  deliver?(req: Req, res: Res): void;
  /**
   * Optional (required for `Mesh.send`): told the call's failure, once, instead of a rejected
   * promise; never synchronously from inside `send`. Should not throw.
   */
  fail?(req: Req, err: unknown): void;
  /** Optional: receives a handle to abort the call, once, when the call starts. */
  bindCall?(req: Req, call: CallHandle): void;
  /**
   * Optional: a failure answer in words (e.g. a gRPC status's code and details), kept as its
   * endpoint's last failure for the "no healthy endpoint" error. Called only for failures; without
   * it the error names `attemptStatus`.
   */
  failureReason?(res: Res): string;
  /** Status attribute of an attempt for its span event (e.g. the HTTP status). */
  attemptStatus(res: Res | undefined, err: unknown): string | number;
}
