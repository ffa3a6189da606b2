import type { Dispatcher } from 'undici';
import { propagation, type Context, type TextMapSetter } from '@opentelemetry/api';
import type { CallHandle } from '@meshlet/core';
import { withHeaders, type HeaderInput } from './headers.js';

const arraySetter: TextMapSetter<string[]> = {
  set(carrier, key, value) {
    carrier.push(key, value);
  },
};

/** Methods that may be sent again without changing the outcome (RFC 9110 §9.2.2). */
const IDEMPOTENT = new Set(['GET', 'HEAD', 'OPTIONS', 'PUT', 'DELETE', 'TRACE']);

/** One logical HTTP request as the mesh sees it. Built once per call; attempts reuse `opts`. */
export class HttpRequest {
  constructor(
    readonly method: string,
    readonly path: string,
    /** The caller's headers, for route matching and hash keys. */
    readonly headers: HeaderInput,
    /** Dispatch options for every attempt: the caller's, with the logical Host and a replayable body. */
    readonly opts: Dispatcher.DispatchOptions,
    /** False when the body is a stream that was not (or could not be) buffered. */
    readonly bodyReplayable: boolean,
    readonly idempotencyKey: boolean,
    /** Told the mesh call's handle when the call starts, so the caller's abort can reach it. */
    private readonly owner?: { bind(call: CallHandle): void },
    /** True when `opts.headers` is a flat array the dispatcher built for this call (safe to append to). */
    private readonly ownsHeaders = false,
  ) {}

  /** This call's options with its trace headers, built on its first attempt (every attempt shares the span). */
  private traced: Dispatcher.DispatchOptions | undefined = undefined;

  /**
   * Options carrying the call's trace context (W3C `traceparent`, through the registered
   * propagator), built once per call: retries share the call's span. When the dispatcher
   * built the header list itself (to add Host), the headers are appended to it in place;
   * the caller's own headers are copied, never changed.
   */
  tracedOptions(trace: Context): Dispatcher.DispatchOptions {
    if (this.traced !== undefined) return this.traced;
    const extra: string[] = [];
    propagation.inject(trace, extra, arraySetter);
    if (extra.length === 0) this.traced = this.opts;
    else if (this.ownsHeaders) {
      const headers = this.opts.headers as string[];
      for (let i = 0; i < extra.length; i++) headers.push(extra[i]);
      this.traced = this.opts;
    } else {
      this.traced = { ...this.opts, headers: withHeaders(this.opts.headers as HeaderInput, extra) };
    }
    return this.traced;
  }

  bind(call: CallHandle): void {
    this.owner?.bind(call);
  }

  /** May this request be sent again? Idempotent (or opted in) with a replayable body. */
  replayable(nonIdempotent: boolean): boolean {
    return this.bodyReplayable && (IDEMPOTENT.has(this.method) || nonIdempotent || this.idempotencyKey);
  }
}
