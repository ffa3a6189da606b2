import type { Dispatcher } from 'undici';
import type { CallHandle } from '@meshlet/core';
import { withHeaders, type HeaderInput } from './headers.js';

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
  ) {}

  /**
   * Options with trace headers added: the base headers (with Host) plus `extra`. Built at
   * most once per attempt, and only when there is a span context to propagate.
   */
  withTraceHeaders(extra: string[]): Dispatcher.DispatchOptions {
    return { ...this.opts, headers: withHeaders(this.opts.headers as HeaderInput, extra) };
  }

  bind(call: CallHandle): void {
    this.owner?.bind(call);
  }

  /** May this request be sent again? Idempotent (or opted in) with a replayable body. */
  replayable(nonIdempotent: boolean): boolean {
    return this.bodyReplayable && (IDEMPOTENT.has(this.method) || nonIdempotent || this.idempotencyKey);
  }
}
