/**
 * One logical HTTP request as the mesh sees it, built once per call by the dispatcher, and
 * the dispatch options its attempts send.
 *
 * Attempt options: every attempt dispatches an `AttemptOptions`, one fixed-shape copy of
 * the caller's options made once per call (the caller's object is read once, and undici
 * reads a monomorphic object; see the class). Pools ignore `origin`: each is bound to its
 * (service, endpoint).
 *
 * Host: the endpoint's pool writes `Host: <service>` itself from the validated service
 * name; a Host header of the caller's is dropped.
 */
import type { Dispatcher } from 'undici';
import { propagation, type Context, type TextMapSetter } from '@opentelemetry/api';
import { InvalidRequestError, formatTimeoutHeader, type CallContext, type CallHandle } from '@meshlet/core';
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
import type { HttpAttempt } from './attempt.js';
import { meshHeaders, scanHeaders, type HeaderFacts, type HeaderInput } from './headers.js';

const arraySetter: TextMapSetter<string[]> = {
  set(carrier, key, value) {
    carrier.push(key, value);
  },
};

/** The method in upper case; no copy (and no ICU call) when it already is. */
function upperCase(m: string): string {
  for (let i = 0; i < m.length; i++) {
    const c = m.charCodeAt(i);
    if (c >= 97 && c <= 122) return m.toUpperCase();
  }
  return m;
}

/**
 * The `meshlet-timeout` value for `remainingMs`, formatted once per whole ms: the value only
 * depends on the ms rounded up, and calls of a service are sent with nearly all of the same
 * `timeout.requestMs` left, so the last string is almost always the one needed (no string per
 * attempt).
 */
let lastBudgetMs = 0;
let lastBudget = '';
function budgetHeader(remainingMs: number): string {
  const whole = remainingMs >= 1 ? Math.ceil(remainingMs) : 1;
  if (whole !== lastBudgetMs) {
    lastBudgetMs = whole;
    lastBudget = formatTimeoutHeader(whole);
  }
  return lastBudget;
}

/** Methods that may be sent again without changing the outcome (RFC 9110 §9.2.2). */
const IDEMPOTENT = new Set(['GET', 'HEAD', 'OPTIONS', 'PUT', 'DELETE', 'TRACE']);

/**
 * Dispatch options of an attempt, with one fixed shape: every member undici's `Request`
 * reads, copied once per call from the caller's options.
 *
 * Why a copy is cheaper than none: undici.request hands a dispatcher `{ ...opts, origin,
 * path, method }`, and objects built by a spread in optimized code get a map of their own,
 * so every property read on them is a megamorphic miss (several hundred ns when the
 * property is absent, as most options are). Reading the caller's object once, by a
 * `for…in` over its own keys (which visits only what is there), and handing undici this
 * monomorphic object instead saves both our reads and undici's own 16-member read.
 */
export class AttemptOptions {
  path: string = undefined as unknown as string;
  method: string = undefined as unknown as string;
  body: unknown = undefined;
  headers: unknown = undefined;
  query: Record<string, unknown> | undefined = undefined;
  idempotent: boolean | undefined = undefined;
  blocking: boolean | undefined = undefined;
  upgrade: string | null | undefined = undefined;
  headersTimeout: number | null | undefined = undefined;
  bodyTimeout: number | null | undefined = undefined;
  reset: boolean | undefined = undefined;
  expectContinue: boolean | undefined = undefined;
  servername: string | null | undefined = undefined;
  throwOnError: boolean | undefined = undefined;
  maxRedirections: number | undefined = undefined;
  typeOfService: number | undefined = undefined;

  constructor(src: Dispatcher.DispatchOptions) {
    const o = src as unknown as Record<string, unknown>;
    if (Object.getPrototypeOf(o) === Object.prototype) {
      // A plain object (what undici's own APIs hand over): visit only the keys it has.
      for (const k in o) this.take(k, o[k]);
      return;
    }
    // Anything else (a class instance, getters on a prototype): read each member.
    for (let i = 0; i < MEMBERS.length; i++) this.take(MEMBERS[i], o[MEMBERS[i]]);
  }

  private take(k: string, v: unknown): void {
    switch (k) {
      case 'path':
        this.path = v as string;
        break;
      case 'method':
        this.method = v as string;
        break;
      case 'body':
        this.body = v;
        break;
      case 'headers':
        this.headers = v;
        break;
      case 'query':
        this.query = v as Record<string, unknown> | undefined;
        break;
      case 'idempotent':
        this.idempotent = v as boolean | undefined;
        break;
      case 'blocking':
        this.blocking = v as boolean | undefined;
        break;
      case 'upgrade':
        this.upgrade = v as string | null | undefined;
        break;
      case 'headersTimeout':
        this.headersTimeout = v as number | null | undefined;
        break;
      case 'bodyTimeout':
        this.bodyTimeout = v as number | null | undefined;
        break;
      case 'reset':
        this.reset = v as boolean | undefined;
        break;
      case 'expectContinue':
        this.expectContinue = v as boolean | undefined;
        break;
      case 'servername':
        this.servername = v as string | null | undefined;
        break;
      case 'throwOnError':
        this.throwOnError = v as boolean | undefined;
        break;
      case 'maxRedirections':
        this.maxRedirections = v as number | undefined;
        break;
      case 'typeOfService':
        this.typeOfService = v as number | undefined;
        break;
    }
  }
}

const MEMBERS = [
  'path',
  'method',
  'body',
  'headers',
  'query',
  'idempotent',
  'blocking',
  'upgrade',
  'headersTimeout',
  'bodyTimeout',
  'reset',
  'expectContinue',
  'servername',
  'throwOnError',
  'maxRedirections',
  'typeOfService',
];

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
  /** Options every attempt dispatches: this call's own fixed-shape copy of the caller's. */
  readonly opts: Dispatcher.DispatchOptions;
  /** The caller asked for a protocol upgrade (refused through the mesh). */
  readonly upgrade: boolean;
  /** The body as the caller gave it (before any wrapping). */
  private readonly callerBodySource: unknown;
  /** This call's options with its trace headers, built on its first attempt (every attempt shares the span). */
  private traced: Dispatcher.DispatchOptions | undefined = undefined;
  /** Index in `opts.headers` of the `meshlet-timeout` value, rewritten before each attempt. */
  private budgetSlot = -1;

  constructor(
    /** The service the caller addressed: the Host sent, and the name errors carry. */
    readonly service: string,
    /** The caller's dispatch options (read once, here). */
    callerOpts: Dispatcher.DispatchOptions,
    /** Told the mesh call's handle when the call starts, and its answer or failure once decided (the dispatcher's caller state). */
    private readonly owner?: {
      bind(call: CallHandle): void;
      deliver(res: HttpAttempt): void;
      fail(err: unknown): void;
      release(): void;
    },
    /** This process's service name (`mesh.service`), sent as `meshlet-caller`. */
    caller?: string,
  ) {
    const opts = new AttemptOptions(callerOpts);
    this.opts = opts as unknown as Dispatcher.DispatchOptions;
    this.upgrade = Boolean(opts.upgrade);
    const method = opts.method;
    this.method = typeof method === 'string' ? upperCase(method) : 'GET';
    this.path = opts.path;
    const headers = opts.headers as HeaderInput;
    this.headers = headers;
    scanHeaders(headers, this);
    const body = opts.body;
    this.callerBodySource = body;
    this.bodyKind = bodyKind(body, this.contentLength);
    // Always a flat list of this call's own: the Host goes, and the mesh's headers get their slots.
    const own = meshHeaders(headers, caller);
    opts.headers = own;
    this.budgetSlot = own.length - 1;
    if (this.bodyKind === BODY_ONCE && isStreamBody(body)) opts.body = this.callerBody = CallerBody.of(body);
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
      const [buffered, rest] = await readBody(this.callerBodySource as AsyncIterable<unknown>, holder);
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
    const body = this.callerBodySource;
    if (isStreamBody(body)) {
      const wrapped = (this.callerBody = CallerBody.of(body));
      this.setBody(wrapped, BODY_ONCE, wrapped);
    } else this.bodyKind = BODY_ONCE; // a Blob: undici sends it
  }

  private setBody(body: unknown, kind: number, callerBody: CallerBody | undefined): void {
    this.bodyKind = kind;
    this.callerBody = callerBody;
    (this.opts as unknown as AttemptOptions).body = body;
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
    // The header list is this call's own (see the constructor): append in place.
    const headers = this.opts.headers as string[];
    for (let i = 0; i < extra.length; i++) headers.push(extra[i]);
    this.traced = this.opts;
    return this.traced;
  }

  /**
   * Writes the call's remaining budget into the `meshlet-timeout` header before an attempt is
   * sent (undici copies the headers when it takes the attempt, so the next attempt may rewrite
   * the slot).
   */
  setBudget(remainingMs: number): void {
    (this.opts.headers as string[])[this.budgetSlot] = budgetHeader(remainingMs);
  }

  bind(call: CallHandle): void {
    this.owner?.bind(call);
  }

  /** The response was handed over to its end (complete or failed): the owner may let go of the call. */
  finished(): void {
    this.owner?.release();
  }

  /** The call failed (a call made with `Mesh.send`): handed to the owner. */
  fail(err: unknown): void {
    this.owner?.fail(err);
  }

  /** The call's answer, as soon as the mesh has decided it: handed to the owner (the dispatcher's caller). */
  deliver(res: HttpAttempt): void {
    this.owner?.deliver(res);
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
