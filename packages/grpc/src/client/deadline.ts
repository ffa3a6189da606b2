/**
 * A gRPC call's deadline, held by the mesh rather than by grpc-js.
 *
 * The engine already bounds every attempt with its own timer (the call's deadline, or `perTryMs`)
 * in a per-service queue that costs two pointer writes per attempt. Handing grpc-js the same
 * deadline as well would add its own timer, `Date` arithmetic and timeout string per call: about
 * 19 µs of client CPU per call at 16 concurrent unary calls on the benchmark machine, more than the
 * rest of the mesh. So an attempt's grpc-js call gets no deadline; the mesh writes the
 * `grpc-timeout` header the server needs itself (`grpcTimeoutValue`), and once a stream has
 * committed, when the engine's timer is no longer armed, the channel's deadline queue bounds the
 * rest of it (`StreamDeadlineError`).
 *
 * A call made with a grpc-js `parent` (a server call whose deadline propagates) keeps grpc-js's
 * deadline: grpc-js takes the earlier of the two and writes the header itself.
 */
import { DeadlineExceededError, type CallContext } from '@meshlet/core';

/** Node timers hold at most 2³¹−1 ms. */
export const MAX_TIMER_MS = 2 ** 31 - 1;

/**
 * The `grpc-timeout` header value for `ms` from now: at most 8 digits and a unit, rounded up
 * (gRPC over HTTP/2: `TimeoutValue` is "positive integer as ASCII string of at most 8 digits").
 */
export function grpcTimeoutValue(ms: number): string {
  const millis = ms > 0 ? Math.ceil(ms) : 0;
  if (millis < 1e8) return millis + 'm';
  const seconds = Math.ceil(ms / 1000);
  if (seconds < 1e8) return seconds + 'S';
  const minutes = Math.ceil(ms / 60_000);
  if (minutes < 1e8) return minutes + 'M';
  return Math.min(Math.ceil(ms / 3_600_000), 99_999_999) + 'H';
}

/** The call's deadline passed while its committed stream was still open: the stream was cut. */
export class StreamDeadlineError extends DeadlineExceededError {
  constructor(ctx: CallContext, endpoint: string) {
    super(ctx.service, ctx.timeoutMs, ctx.attempt, endpoint, ctx.deadlineSource, ctx.requestMsPath);
    const ms = Math.round(ctx.timeoutMs);
    const setting = ctx.requestMsPath ?? `services.${ctx.service}.timeout.requestMs`;
    const fix =
      ctx.deadlineSource === 'caller'
        ? 'The deadline was the caller’s own (its `deadline` call option): give the call a later one if it must stream longer'
        : ctx.deadlineSource === 'inbound'
          ? 'the deadline was inherited from the inbound request this call was made for'
          : `Raise ${setting}, or give this method its own timeout under methods, if it legitimately streams this long`;
    this.message =
      `service "${ctx.service}": deadline of ${ms} ms exceeded while the response stream from ${endpoint} was ` +
      `still open (its first message came in time, attempt ${ctx.attempt}); the stream was cut. ${fix}`;
  }
}
