/**
 * One logical HTTP request as the mesh sees it, built once per call by the dispatcher, and
 * the dispatch options its attempts send.
 *
 * Attempt options: when nothing about the caller's request must change (no Host header of
 * its own, a body sent as is), every attempt dispatches the caller's own options object, so
 * a request costs no copy. Otherwise they are an `AttemptOptions`, a class with one fixed
 * shape (not a spread of the caller's object, which would give every caller's object shape
 * its own hidden class). Pools ignore `origin`: each is bound to its (service, endpoint).
 *
 * Host: the endpoint's pool writes `Host: <service>` itself from the validated service
 * name; a Host header of the caller's is dropped.
 */
import { errors, type Dispatcher } from 'undici';
import { propagation, type Context, type TextMapSetter } from '@opentelemetry/api';
import { InvalidRequestError, type CallContext, type CallHandle } from '@meshlet/core';
import {
  BODY_NONE,
  BODY_ONCE,
  BODY_REPLAYABLE,
  BODY_TO_BUFFER,
  CallerBody,
  bodyKind,
  isStreamBody,
  readBody,
} from './body.js';
import type { HttpAttempt, LegacyHandler } from './attempt.js';
import { scanHeaders, withHeaders, type HeaderFacts, type HeaderInput } from './headers.js';

const arraySetter: TextMapSetter<string[]> = {
  set(carrier, key, value) {
    carrier.push(key, value);
  },
};

/** Methods that may be sent again without changing the outcome (RFC 9110 §9.2.2). */
const IDEMPOTENT = new Set(['GET', 'HEAD', 'OPTIONS', 'PUT', 'DELETE', 'TRACE']);
const NO_EXTRA: readonly string[] = [];

/** Dispatch options of an attempt, with one fixed shape: what undici's Request reads, copied once per call. */
export class AttemptOptions {
  readonly path: string;
  readonly method: string;
  body: unknown;
  headers: unknown;
  readonly query: Record<string, unknown> | undefined;
  readonly idempotent: boolean | undefined;
  readonly blocking: boolean | undefined;
  readonly headersTimeout: number | null | undefined;
  readonly bodyTimeout: number | null | undefined;
  readonly reset: boolean | undefined;
  readonly expectContinue: boolean | undefined;
  readonly throwOnError: boolean | undefined;
  readonly maxRedirections: number | undefined;
  readonly typeOfService: number | undefined;

  constructor(src: Dispatcher.DispatchOptions, body: unknown, headers: unknown) {
    this.path = src.path;
    this.method = src.method;
    this.body = body;
    this.headers = headers;
    this.query = src.query;
    this.idempotent = src.idempotent;
    this.blocking = src.blocking;
    this.headersTimeout = src.headersTimeout;
    this.bodyTimeout = src.bodyTimeout;
    this.reset = src.reset;
    this.expectContinue = src.expectContinue;
    this.throwOnError = (src as { throwOnError?: boolean }).throwOnError;
    this.maxRedirections = (src as { maxRedirections?: number }).maxRedirections;
    this.typeOfService = (src as { typeOfService?: number }).typeOfService;
  }
}

export class HttpRequest implements HeaderFacts {
  /** Upper-case method, for routing, replay and telemetry. */
  readonly method: string;
  readonly path: string;
  /** The caller's headers, for route matching and hash keys. */
  readonly headers: HeaderInput;
  hasHost = false;
  contentLength = NaN;
  idempotencyKey = false;
  /** `BODY_*` of body.ts: what the replay rule says about the body. */
  bodyKind: number;
  /** The unbuffered caller stream being sent, if any (tells a body fault from a network one). */
  callerBody: CallerBody | undefined = undefined;
  /** Options every attempt dispatches. */
  opts: Dispatcher.DispatchOptions;
  /** This call's options with its trace headers, built on its first attempt (every attempt shares the span). */
  private traced: Dispatcher.DispatchOptions | undefined = undefined;
  /** True when `opts.headers` is a flat array built for this call (safe to append to). */
  private ownsHeaders = false;

  // The caller's side, when the request came through the dispatcher (one object per request:
  // the request is also the state that relays the caller's abort and delivers its answer).
  /** The caller aborted before the mesh call started. */
  abortReason: Error | undefined = undefined;
  private call: CallHandle | undefined = undefined;
  private committed: HttpAttempt | undefined = undefined;
  /** Given to the caller's `onConnect` (undefined without a handler). */
  readonly abort: ((reason?: Error) => void) | undefined;
  /** The mesh call's rejection, reported to the caller's handler (undefined without a handler). */
  readonly fail: ((err: unknown) => void) | undefined;

  constructor(
    /** The service the caller addressed: the Host sent, and the name errors carry. */
    readonly service: string,
    /** The caller's dispatch options. */
    private readonly callerOpts: Dispatcher.DispatchOptions,
    /** The caller's undici handler: told the answer, its abort relayed to the call. */
    private readonly handler?: LegacyHandler,
  ) {
    if (handler !== undefined) {
      this.abort = (reason?: Error): void => this.callerAbort(reason);
      this.fail = (err: unknown): void => handler.onError?.(err as Error);
    } else this.abort = this.fail = undefined;
    const method = callerOpts.method;
    this.method = typeof method === 'string' ? method.toUpperCase() : 'GET';
    this.path = callerOpts.path;
    const headers = callerOpts.headers as HeaderInput;
    this.headers = headers;
    scanHeaders(headers, this);
    const body = callerOpts.body;
    this.bodyKind = bodyKind(body, this.contentLength);
    const streamOnce = this.bodyKind === BODY_ONCE && isStreamBody(body);
    if (!this.hasHost && !streamOnce) {
      this.opts = callerOpts;
      return;
    }
    let sendHeaders: unknown = headers;
    if (this.hasHost) {
      sendHeaders = withHeaders(headers, NO_EXTRA, 'host');
      this.ownsHeaders = true;
    }
    let sendBody: unknown = body;
    if (streamOnce) sendBody = this.callerBody = CallerBody.of(body);
    this.opts = new AttemptOptions(callerOpts, sendBody, sendHeaders) as unknown as Dispatcher.DispatchOptions;
  }

  /**
   * Reads a body announced within the replay limit into memory (the protocol's `prepare`
   * step, raced by core against the deadline and the caller's abort); undefined when there
   * is nothing to read, so the common request allocates no promise.
   */
  prepare(cut: AbortSignal | CallContext | undefined): Promise<void> | undefined {
    if (this.bodyKind !== BODY_TO_BUFFER) return undefined;
    return this.buffer(cut);
  }

  private async buffer(cut: AbortSignal | CallContext | undefined): Promise<void> {
    const holder: { cancel: ((reason: unknown) => void) | undefined } = { cancel: undefined };
    const release = (): void => holder.cancel?.(undefined);
    let signal: AbortSignal | undefined;
    if (cut instanceof AbortSignal) {
      signal = cut;
      signal.addEventListener('abort', release, { once: true });
    } else if (cut !== undefined) {
      // Core arms the call's cancellation state right after prepare returns: listen then.
      queueMicrotask(() => {
        signal = cut.signal;
        if (signal.aborted) release();
        else signal.addEventListener('abort', release, { once: true });
      });
    }
    try {
      const [buffered, rest] = await readBody(this.callerOpts.body as AsyncIterable<unknown>, holder);
      if (buffered !== undefined) this.setBody(buffered, BODY_REPLAYABLE, undefined);
      else this.setBody(rest, BODY_ONCE, rest);
    } catch (err) {
      throw new InvalidRequestError(this.service, 'the request body stream failed while it was read', err);
    } finally {
      signal?.removeEventListener('abort', release);
    }
  }

  /** Sends a body meant for buffering as a stream instead (prepare did not run). */
  sendUnbuffered(): void {
    const body = this.callerOpts.body;
    if (isStreamBody(body)) {
      const wrapped = (this.callerBody = CallerBody.of(body));
      this.setBody(wrapped, BODY_ONCE, wrapped);
    } else this.bodyKind = BODY_ONCE; // a Blob: undici sends it
  }

  private setBody(body: unknown, kind: number, callerBody: CallerBody | undefined): void {
    this.bodyKind = kind;
    this.callerBody = callerBody;
    if (this.opts === this.callerOpts) {
      this.opts = new AttemptOptions(
        this.callerOpts,
        body,
        this.callerOpts.headers,
      ) as unknown as Dispatcher.DispatchOptions;
    } else (this.opts as unknown as AttemptOptions).body = body;
    this.traced = undefined;
  }

  /**
   * Options carrying the call's trace context (W3C `traceparent`, through the registered
   * propagator), built once per call: retries share the call's span. When the request
   * already has a header list of its own, the headers are appended to it in place; the
   * caller's own headers are copied, never changed.
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
      const opts = this.opts;
      const headers = withHeaders(opts.headers as HeaderInput, extra);
      if (opts === this.callerOpts) {
        this.traced = new AttemptOptions(opts, opts.body, headers) as unknown as Dispatcher.DispatchOptions;
      } else {
        (opts as unknown as AttemptOptions).headers = headers;
        this.traced = opts;
      }
      this.ownsHeaders = true;
      this.opts = this.traced;
    }
    return this.traced;
  }

  /** The caller gave up: cut the response once committed, else the mesh call, else remember it for when the call starts. */
  private callerAbort(reason?: Error): void {
    const why = reason ?? new errors.RequestAbortedError();
    if (this.committed !== undefined) this.committed.abort(why);
    else if (this.call !== undefined) this.call.abort(why);
    else this.abortReason ??= why;
  }

  /** The protocol's bindCall hook: the mesh call started (an abort the caller made already reaches it). */
  bind(call: CallHandle): void {
    if (this.handler === undefined) return;
    this.call = call;
    if (this.abortReason !== undefined) call.abort(this.abortReason);
  }

  /** The call's answer, as soon as the mesh has decided it: it streams to the caller's handler from here. */
  deliver(res: HttpAttempt): void {
    if (this.handler === undefined) return;
    this.committed = res;
    try {
      res.commit(this.handler);
    } catch (err) {
      res.handlerFailed(err as Error);
    }
  }

  /** May this request be sent again? Idempotent (or opted in) with a replayable body. */
  replayable(nonIdempotent: boolean): boolean {
    const kind = this.bodyKind;
    return (
      (kind === BODY_NONE || kind === BODY_REPLAYABLE) &&
      (IDEMPOTENT.has(this.method) || nonIdempotent || this.idempotencyKey)
    );
  }
}
