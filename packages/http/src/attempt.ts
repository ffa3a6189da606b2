/**
 * One HTTP attempt on one endpoint's pool, as an undici handler. The attempt's promise
 * resolves when the response head arrives; body bytes that come before the mesh decides
 * (retry or deliver) are held, and flow control pauses the socket past 64 KiB. Once
 * `commit` hands the response to the caller's handler, bytes stream straight through and
 * the response is never retried. `discard` drains a response that will be retried, so
 * the keep-alive connection survives. 1xx informational heads are skipped (not forwarded).
 *
 * Faults land on the right party: an error undici raises locally (invalid header, path,
 * method), a request body stream of the caller's that errors, or an attempt cut while it
 * waits on that stream (a stalled body) rejects with an `InvalidRequestError`, which the
 * classifier reads as the caller's fault, never the endpoint's.
 *
 * Body deadline: the call's deadline also bounds the response body. At commit, unless the
 * body has already ended (small responses cost nothing), a timer is armed for what is
 * left of the deadline; if it fires before the body ends, the response is aborted with a
 * `DeadlineExceededError` (MESHLET_ERR_DEADLINE), so no call outlives its deadline.
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

import { DeadlineExceededError, InvalidRequestError, type CallContext, type DeadlineSource } from '@meshlet/core';

/** Where an attempt reports its outcome (the mesh call itself, or a promise's resolvers), once. */
export interface AttemptTarget {
  attemptResolved(res: HttpAttempt): void;
  attemptRejected(err: unknown): void;
}
import { isInvalidRequest } from './classifier.js';
import type { HttpRequest } from './request.js';

/**
 * The call's deadline passed while the response body was still arriving; the response was cut.
 * The advice names the deadline that ran out (`source`): the service's `timeout.requestMs` (or
 * the setting at `requestMsPath`), the inbound request's budget, or the caller's own deadline.
 */
export class ResponseBodyDeadlineError extends DeadlineExceededError {
  constructor(
    service: string,
    timeoutMs: number,
    attempts: number,
    endpoint: string | undefined,
    source: DeadlineSource = 'service',
    requestMsPath?: string,
  ) {
    super(service, timeoutMs, attempts, endpoint, source, requestMsPath);
    const setting = requestMsPath ?? `services["${service}"].timeout.requestMs`;
    const ms = Math.round(timeoutMs);
    this.message =
      `service "${service}": deadline exceeded while the response body${endpoint ? ` from ${endpoint}` : ''} was still ` +
      `arriving (the head came in time, attempt ${attempts}, ` +
      (source === 'inbound'
        ? `deadline ${ms} ms inherited from the inbound request this call was made for, its caller's meshlet-timeout); ` +
          `the response was cut. The caller's time budget ran out: give the caller a larger timeout, or make this ` +
          `handler faster`
        : source === 'caller'
          ? `deadline ${ms} ms, the caller's own deadline for this call, shorter than ${setting}); the response was ` +
            `cut. Give the call a later deadline if the upstream legitimately streams this long`
          : `timeout ${ms} ms); the response was cut. Raise ${setting} if the upstream legitimately streams this long`);
  }
}

const HOLD_LIMIT = 64 * 1024;
const MAX_TIMER_MS = 2 ** 31 - 1;
/** Bytes a discarded response may still drain before its connection is cut instead. */
const DRAIN_LIMIT = 256 * 1024;

/** An attempt's `rawHeaders` until its response head arrives (shared: nothing writes to it). */
const NO_HEADERS: Buffer[] = Object.freeze([]) as unknown as Buffer[];

const PENDING = 0;
const HEADED = 1;
const COMMITTED = 2;
const DISCARDED = 3;

export class HttpAttempt {
  statusCode = 0;
  statusText = '';
  rawHeaders: Buffer[] = NO_HEADERS;

  private phase = PENDING;
  /** Told the outcome (head or failure) once, then cleared. */
  private target: AttemptTarget | undefined;
  private abortFn: ((err?: Error) => void) | undefined;
  private resumeFn: (() => void) | undefined;
  /** Body bytes that came before commit: the first chunk, then any more (one chunk is the common case). */
  private held1: Buffer | undefined = undefined;
  private held: Buffer[] | undefined = undefined;
  private heldBytes = 0;
  private paused = false;
  private ended = false;
  private trailers: Buffer[] | null = null;
  private error: Error | undefined;
  private sink: LegacyHandler | undefined = undefined;
  private drained = 0;

  private pendingAbort: unknown = undefined;
  private readonly ctx: CallContext;
  private readonly req: HttpRequest;
  private bodyTimer: ReturnType<typeof setTimeout> | undefined = undefined;
  private sinkDone = false;
  /** True while the mesh is told the head, inside undici's onHeaders: a commit then comes before any body byte. */
  private inHead = false;
  /** Links in the dispatcher's body-deadline queue. */
  deadlinePrev: HttpAttempt | undefined = undefined;
  deadlineNext: HttpAttempt | undefined = undefined;
  deadlineQueued = false;
  private readonly deadlines: BodyDeadlines | undefined;

  constructor(target: AttemptTarget, ctx: CallContext, req: HttpRequest, deadlines?: BodyDeadlines) {
    this.target = target;
    this.deadlines = deadlines;
    this.ctx = ctx;
    this.req = req;
    ctx.onAbort(this);
  }

  /** Rejects the pending attempt with `err`, as the caller's fault when it is one. */
  private fail(err: unknown): void {
    const target = this.target;
    this.target = undefined;
    if (target === undefined) return;
    const body = this.req.callerBody;
    if (body !== undefined && body.failed) {
      target.attemptRejected(
        new InvalidRequestError(this.ctx.service, 'the request body stream failed', body.sourceError),
      );
      return;
    }
    // The request is dead: release the caller's stream (undici leaves a pending read of an iterable to its owner).
    body?.cancel(err);
    if (isInvalidRequest(err) && !(err instanceof InvalidRequestError)) {
      target.attemptRejected(
        new InvalidRequestError(this.ctx.service, 'undici refused the request before sending it', err),
      );
    } else target.attemptRejected(err);
  }

  /**
   * The mesh cut this attempt (timeout, deadline, caller). The promise rejects at once,
   * even while the request still waits in the pool's queue for a connection; the request
   * itself is aborted as soon as undici hands us its abort function.
   */
  handleAbort(reason: unknown): void {
    if (this.phase !== PENDING) return;
    this.pendingAbort = reason;
    // Settle first: undici may report the abort back through onError synchronously.
    const target = this.target;
    this.target = undefined;
    const body = this.req.callerBody;
    if (body !== undefined && body.waiting && target !== undefined) {
      // Cut while waiting on the caller's own body stream: the caller's fault, not the endpoint's.
      const err = new InvalidRequestError(
        this.ctx.service,
        'the request body stream stalled (the attempt was cut while waiting for its next chunk)',
        reason,
      );
      target.attemptRejected(err);
      body.cancel(err);
      this.abortFn?.(reason as Error);
      return;
    }
    target?.attemptRejected(reason);
    this.abortFn?.(reason as Error);
    body?.cancel(reason);
  }

  onConnect(abort: (err?: Error) => void): void {
    this.abortFn = abort;
    if (this.pendingAbort !== undefined) abort(this.pendingAbort as Error);
    else this.ctx.markSent();
  }

  onHeaders(statusCode: number, rawHeaders: Buffer[], resume: () => void, statusText: string): boolean {
    if (statusCode < 200) return true; // 1xx informational (100 Continue, 103 Early Hints): not the response
    this.statusCode = statusCode;
    this.statusText = statusText;
    this.rawHeaders = rawHeaders;
    this.resumeFn = resume;
    const target = this.target;
    if (target === undefined) return false; // already rejected by an abort
    this.phase = HEADED;
    this.target = undefined;
    // The mesh may decide at once and commit from inside this callback (its fast path).
    this.inHead = true;
    target.attemptResolved(this);
    this.inHead = false;
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
    if (this.held1 === undefined) this.held1 = chunk;
    else (this.held ??= []).push(chunk);
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
    if (this.phase === COMMITTED) {
      this.clearBodyTimer();
      this.finishSink();
    }
  }

  onError(err: Error): void {
    if (this.phase === PENDING) {
      this.fail(err);
      return;
    }
    this.ended = true;
    this.error = err;
    if (this.phase === COMMITTED) {
      this.clearBodyTimer();
      this.finishSink();
    }
  }

  onUpgrade(): void {
    this.onError(new Error('meshlet: unexpected protocol upgrade on a mesh request'));
  }

  /** Delivers this response to the caller's handler; from here on it streams through. */
  commit(sink: LegacyHandler): void {
    this.phase = COMMITTED;
    this.sink = sink;
    sink.onResponseStarted?.();
    // A body that has already ended needs no resume, and one committed inside the head callback
    // (nothing held) can resume undici directly: no closure in either case.
    const resume = this.ended ? noop : this.inHead ? this.resumeFn! : () => this.resumeSink();
    const go = sink.onHeaders?.(this.statusCode, this.rawHeaders, resume, this.statusText);
    let paused = go === false;
    const held1 = this.held1;
    const held = this.held;
    this.held1 = this.held = undefined;
    if (held1 !== undefined && !this.sinkDone && sink.onData?.(held1) === false) paused = true;
    if (held !== undefined) {
      for (let i = 0; i < held.length && !this.sinkDone; i++) if (sink.onData?.(held[i]) === false) paused = true;
    }
    if (this.ended) {
      this.finishSink();
      return;
    }
    // The body is still coming: bound it by what is left of the call's deadline, in the
    // dispatcher's body-deadline queue (two pointer writes; the body usually ends in the same
    // read and unlinks it again), or with a timer of its own when the queue refuses it.
    if (this.deadlines === undefined || !this.deadlines.add(this)) this.armBodyTimer();
    if (!paused && this.paused) {
      this.paused = false;
      this.resumeFn?.();
    } else if (paused) this.paused = true;
  }

  /** Arms the body-deadline timer for what is left of the call's deadline. */
  private armBodyTimer(): void {
    const left = this.ctx.remainingMs();
    this.bodyTimer = setTimeout(onBodyDeadline, left > 0 ? Math.min(left, MAX_TIMER_MS) : 0, this);
  }

  private resumeSink(): void {
    if (this.paused && this.phase === COMMITTED) {
      this.paused = false;
      this.resumeFn?.();
    }
  }

  /**
   * Tells the caller's handler how the response ended, once: an abort the caller makes from
   * inside a callback during `commit` is reported back by undici synchronously.
   */
  private finishSink(): void {
    if (this.sinkDone) return;
    this.sinkDone = true;
    if (this.error !== undefined) this.sink!.onError?.(this.error);
    else this.sink!.onComplete?.(this.trailers);
    this.req.finished();
  }

  /** The caller's handler threw while the response was handed over: report that error to it once, and cut the response. */
  handlerFailed(err: Error): void {
    this.clearBodyTimer();
    if (!this.sinkDone) {
      this.ended = true;
      this.error = err;
      this.finishSink();
    }
    this.abortFn?.(err);
  }

  /** Aborts a committed response (the caller gave up). */
  abort(reason?: Error): void {
    this.clearBodyTimer();
    this.abortFn?.(reason);
  }

  /** The deadline passed with the body still arriving: cut it (the sink gets the error through onError). */
  bodyDeadline(): void {
    this.bodyTimer = undefined;
    this.deadlineQueued = false;
    if (this.ended || this.phase !== COMMITTED) return;
    const ctx = this.ctx;
    this.abortFn?.(
      new ResponseBodyDeadlineError(
        ctx.service,
        ctx.timeoutMs,
        ctx.attempt,
        ctx.endpoint?.address,
        ctx.deadlineSource,
        ctx.requestMsPath,
      ),
    );
  }

  private clearBodyTimer(): void {
    if (this.deadlineQueued) this.deadlines!.remove(this);
    else if (this.bodyTimer !== undefined) {
      clearTimeout(this.bodyTimer);
      this.bodyTimer = undefined;
    }
  }

  /** The call's deadline on the mesh clock (the body-deadline queue's order). */
  get deadline(): number {
    return this.ctx.deadline;
  }

  /** Ms left until the call's deadline. */
  remainingMs(): number {
    return this.ctx.remainingMs();
  }

  /** Drops a response that will not reach the caller; small bodies drain to keep the connection. */
  discard(): void {
    if (this.phase !== HEADED) return;
    this.phase = DISCARDED;
    this.held1 = this.held = undefined;
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

function noop(): void {}

/**
 * The body deadlines of one dispatcher's committed responses whose body is still arriving:
 * a FIFO linked list through the attempts themselves under one timer (as core's
 * TimerQueue does for attempt timeouts). Calls of one service share `timeout.requestMs`, so
 * deadlines arrive in order: adding and removing are O(1) with no allocation. An attempt
 * due before the tail is refused (it arms a timer of its own). Once the queue empties the
 * timer is unref'd, not cleared.
 */
export class BodyDeadlines {
  private head: HttpAttempt | undefined = undefined;
  private tail: HttpAttempt | undefined = undefined;
  private timer: ReturnType<typeof setTimeout> | undefined = undefined;
  /** Mesh-clock deadline the armed timer is set for. */
  private armedAt = Number.POSITIVE_INFINITY;

  /** Queues `a`; false (nothing queued) when its deadline is earlier than the tail's. */
  add(a: HttpAttempt): boolean {
    const at = a.deadline;
    const tail = this.tail;
    if (tail !== undefined && at < tail.deadline) return false;
    a.deadlinePrev = tail;
    a.deadlineNext = undefined;
    a.deadlineQueued = true;
    if (tail === undefined) this.head = a;
    else tail.deadlineNext = a;
    this.tail = a;
    if (this.timer === undefined || at < this.armedAt) this.arm(a);
    else if (tail === undefined) this.timer.ref();
    return true;
  }

  remove(a: HttpAttempt): void {
    if (!a.deadlineQueued) return;
    a.deadlineQueued = false;
    const prev = a.deadlinePrev;
    const next = a.deadlineNext;
    if (prev === undefined) this.head = next;
    else prev.deadlineNext = next;
    if (next === undefined) this.tail = prev;
    else next.deadlinePrev = prev;
    a.deadlinePrev = a.deadlineNext = undefined;
    if (this.head === undefined) this.timer?.unref();
  }

  private arm(a: HttpAttempt): void {
    if (this.timer !== undefined) clearTimeout(this.timer);
    this.armedAt = a.deadline;
    const left = a.remainingMs();
    this.timer = setTimeout(this.fire, left > 1 ? Math.min(Math.ceil(left), MAX_TIMER_MS) : 1);
  }

  private readonly fire = (): void => {
    this.timer = undefined;
    this.armedAt = Number.POSITIVE_INFINITY;
    // Node timers may fire up to ~1 ms early relative to a fractional clock: allow for it.
    while (this.head !== undefined && this.head.remainingMs() <= 1) {
      const a = this.head;
      this.remove(a);
      a.bodyDeadline();
    }
    if (this.head !== undefined) this.arm(this.head);
  };
}

function onBodyDeadline(attempt: HttpAttempt): void {
  attempt.bodyDeadline();
}
