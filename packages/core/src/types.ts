import type { Context } from '@opentelemetry/api';
import type { Endpoint } from './endpoint.js';
import type { DeadlineSource } from './errors.js';

/**
 * Result of classifying one attempt. Policies see only this, never a status code.
 * `invalid-request`: the caller's own request is at fault (refused locally, its body stream
 * failed or stalled); it never counts against the endpoint and is never retried.
 */
export type Classification = 'success' | 'retryable' | 'failure' | 'invalid-request';

/**
 * Per-call state that flows down the stack. One object per logical call, mutated per
 * attempt (attempt number, endpoint, signal).
 */
export interface CallContext {
  /** The service whose endpoints serve this call (after routing). */
  readonly service: string;
  /** The service the caller addressed (before routing). */
  readonly requestedService: string;
  /** Name of the matched route, or undefined. */
  readonly route: string | undefined;
  /** Protocol method (HTTP method, gRPC full method name). */
  readonly method: string;
  /** 1-based attempt number. */
  attempt: number;
  /** Absolute deadline on the mesh clock (ms). */
  readonly deadline: number;
  /** The call's whole timeout (`timeout.requestMs` when it started), ms. */
  readonly timeoutMs: number;
  /** Whose deadline `deadline` is: the service's `timeout.requestMs`, the inbound request's, or the caller's own. */
  readonly deadlineSource: DeadlineSource;
  /** Config path of the `requestMs` the service deadline came from when it is not the service's own (a gRPC method's). */
  readonly requestMsPath: string | undefined;
  /**
   * Aborted when the current attempt is cut (caller abort, request deadline, per-try
   * timeout), with the reason. Created on first read; transports on the hot path should
   * prefer `onAbort`, which costs no EventTarget.
   */
  readonly signal: AbortSignal;
  /**
   * Registers the current attempt's abort handler, called at most once with the reason
   * the attempt is cut; at once if it already was. Cleared when the attempt ends. An object
   * with `handleAbort` may stand in for a function (no closure per attempt).
   */
  onAbort(handler: AbortHandler): void;
  /** The endpoint picked for the current attempt. */
  endpoint: Endpoint | undefined;
  /** Ms left until the call's deadline (<= 0 once it has passed); valid after the call settles too. */
  remainingMs(): number;
  /**
   * Optional: the transport says the current attempt has been written to a connection. The
   * endpoint's latency estimate then counts from here, leaving out pool queueing and
   * connection set-up, which are not the endpoint's response time.
   */
  markSent(): void;
  /** OpenTelemetry context holding the call's span, for trace-context injection; undefined when there is none. */
  trace: Context | undefined;
  /**
   * For a call whose answer the protocol called provisional (`Protocol.provisional`): the call
   * has really ended. `ok` is its endpoint's health — true a success, false a failure for the
   * outlier detector and the breaker, undefined nothing either way (the caller cancelled, the
   * deadline cut a long stream). The service's stats count the call here (a success when `ok`,
   * a failure when not or when `error` is given, else cancelled), and its span, left open at the
   * answer, ends here, with an error status when `error` (its message) is given. At most once; a
   * no-op otherwise.
   */
  reportOutcome(ok: boolean | undefined, error?: string): void;
}

/** Told why an attempt was cut: a function, or an object's `handleAbort` method. */
export type AbortHandler = ((reason: unknown) => void) | { handleAbort(reason: unknown): void };

/** Where a callback-style transport (`Protocol.start`) reports its attempt's outcome, once. */
export interface AttemptSink<Res> {
  attemptResolved(res: Res): void;
  attemptRejected(err: unknown): void;
}

/** The leaf of the stack: sends one attempt to one endpoint. */
export type Transport<Req, Res> = (req: Req, ctx: CallContext, endpoint: Endpoint) => Promise<Res>;

/** Turns a protocol result or error into a classification. */
export interface Classifier<Res> {
  classifyResult(res: Res, ctx: CallContext): Classification;
  classifyError(err: unknown, ctx: CallContext): Classification;
}

/** undici-style: a behaviour is a function over the next step. */
export type Dispatch<Req, Res> = (req: Req, ctx: CallContext) => Promise<Res>;
export type Middleware<Req, Res> = (next: Dispatch<Req, Res>) => Dispatch<Req, Res>;

/** Lets a protocol abort a call whose caller cancels through a callback rather than an AbortSignal. */
export interface CallHandle {
  /** Aborts the call: the attempt in flight is cut and the call rejects with `reason`. */
  abort(reason: unknown): void;
}
