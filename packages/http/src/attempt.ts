/**
 * One HTTP attempt on one endpoint's pool, as an undici handler. The attempt's promise
 * resolves when the response head arrives; body bytes that come before the mesh decides
 * (retry or deliver) are held, and flow control pauses the socket past 64 KiB. Once
 * `commit` hands the response to the caller's handler, bytes stream straight through and
 * the response is never retried. `discard` drains a response that will be retried, so
 * the keep-alive connection survives.
 */

/** The caller-side handler, in undici's dispatch-handler form used by `request` and `fetch`. */
export interface LegacyHandler {
  onConnect?(abort: (err?: Error) => void, context?: object): void;
  onResponseStarted?(): void;
  onHeaders?(statusCode: number, rawHeaders: Buffer[], resume: () => void, statusText: string): boolean | void;
  onData?(chunk: Buffer): boolean | void;
  onComplete?(trailers: Buffer[] | null): void;
  onError?(err: Error): void;
  onUpgrade?(statusCode: number, rawHeaders: Buffer[], socket: unknown): void;
}

import type { CallContext } from '@meshlet/core';

const HOLD_LIMIT = 64 * 1024;
/** Bytes a discarded response may still drain before its connection is cut instead. */
const DRAIN_LIMIT = 256 * 1024;

const PENDING = 0;
const HEADED = 1;
const COMMITTED = 2;
const DISCARDED = 3;

export class HttpAttempt {
  statusCode = 0;
  statusText = '';
  rawHeaders: Buffer[] = [];

  private phase = PENDING;
  private resolve: ((v: HttpAttempt) => void) | undefined;
  private reject: ((e: unknown) => void) | undefined;
  private abortFn: ((err?: Error) => void) | undefined;
  private resumeFn: (() => void) | undefined;
  private held: Buffer[] | undefined;
  private heldBytes = 0;
  private paused = false;
  private ended = false;
  private trailers: Buffer[] | null = null;
  private error: Error | undefined;
  private sink: LegacyHandler | undefined;
  private drained = 0;

  private pendingAbort: unknown = undefined;

  constructor(resolve: (v: HttpAttempt) => void, reject: (e: unknown) => void, ctx: CallContext) {
    this.resolve = resolve;
    this.reject = reject;
    ctx.onAbort(this.onAbort);
  }

  /**
   * The mesh cut this attempt (timeout, deadline, caller). The promise rejects at once,
   * even while the request still waits in the pool's queue for a connection; the request
   * itself is aborted as soon as undici hands us its abort function.
   */
  private readonly onAbort = (reason: unknown): void => {
    if (this.phase !== PENDING) return;
    this.pendingAbort = reason;
    this.abortFn?.(reason as Error);
    const reject = this.reject;
    this.resolve = this.reject = undefined;
    reject?.(reason);
  };

  onConnect(abort: (err?: Error) => void): void {
    this.abortFn = abort;
    if (this.pendingAbort !== undefined) abort(this.pendingAbort as Error);
  }

  onHeaders(statusCode: number, rawHeaders: Buffer[], resume: () => void, statusText: string): boolean {
    if (statusCode < 200) return true; // 1xx informational: not the response
    this.statusCode = statusCode;
    this.statusText = statusText;
    this.rawHeaders = rawHeaders;
    this.resumeFn = resume;
    const resolve = this.resolve;
    if (resolve === undefined) return false; // already rejected by an abort
    this.phase = HEADED;
    this.resolve = this.reject = undefined;
    resolve(this);
    return true;
  }

  onData(chunk: Buffer): boolean {
    if (this.phase === COMMITTED) {
      const ok = this.sink!.onData?.(chunk);
      if (ok === false) this.paused = true;
      return ok !== false;
    }
    if (this.phase === DISCARDED) {
      this.drained += chunk.length;
      if (this.drained > DRAIN_LIMIT) this.abortFn?.(new Error('meshlet: discarded response too large to drain'));
      return true;
    }
    (this.held ??= []).push(chunk);
    this.heldBytes += chunk.length;
    if (this.heldBytes >= HOLD_LIMIT) {
      this.paused = true;
      return false;
    }
    return true;
  }

  onComplete(trailers: Buffer[] | null): void {
    this.ended = true;
    this.trailers = trailers;
    if (this.phase === COMMITTED) this.sink!.onComplete?.(trailers);
  }

  onError(err: Error): void {
    if (this.phase === PENDING) {
      const reject = this.reject;
      this.resolve = this.reject = undefined;
      reject?.(err);
      return;
    }
    this.ended = true;
    this.error = err;
    if (this.phase === COMMITTED) this.sink!.onError?.(err);
  }

  onUpgrade(): void {
    this.onError(new Error('meshlet: unexpected protocol upgrade on a mesh request'));
  }

  /** Delivers this response to the caller's handler; from here on it streams through. */
  commit(sink: LegacyHandler): void {
    this.phase = COMMITTED;
    this.sink = sink;
    sink.onResponseStarted?.();
    const go = sink.onHeaders?.(this.statusCode, this.rawHeaders, this.resumeSink, this.statusText);
    let paused = go === false;
    const held = this.held;
    this.held = undefined;
    if (held !== undefined) {
      for (let i = 0; i < held.length; i++) if (sink.onData?.(held[i]) === false) paused = true;
    }
    if (this.ended) {
      if (this.error !== undefined) sink.onError?.(this.error);
      else sink.onComplete?.(this.trailers);
      return;
    }
    if (!paused && this.paused) {
      this.paused = false;
      this.resumeFn?.();
    } else if (paused) this.paused = true;
  }

  private readonly resumeSink = (): void => {
    if (this.paused && this.phase === COMMITTED) {
      this.paused = false;
      this.resumeFn?.();
    }
  };

  /** Aborts a committed response (the caller gave up). */
  abort(reason?: Error): void {
    this.abortFn?.(reason);
  }

  /** Drops a response that will not reach the caller; small bodies drain to keep the connection. */
  discard(): void {
    if (this.phase !== HEADED) return;
    this.phase = DISCARDED;
    this.held = undefined;
    if (this.ended) return;
    if (this.heldBytes > DRAIN_LIMIT) {
      this.abortFn?.(new Error('meshlet: discarded response'));
      return;
    }
    if (this.paused) {
      this.paused = false;
      this.resumeFn?.();
    }
  }
}
