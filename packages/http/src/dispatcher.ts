/**
 * `createMeshDispatcher(mesh)`: an undici Dispatcher. Which origins go through the mesh is
 * decided by `url.ts` (the WHATWG reading of the origin: `http://<service>` for a
 * configured service, in any spelling the URL parser accepts); they get routing, retries,
 * balancing, breakers and telemetry, on one keep-alive Pool per (service, endpoint). Every
 * other origin goes to a plain undici Agent untouched, or, with `unknownHosts: 'reject'`,
 * fails with `MESHLET_ERR_UNKNOWN_SERVICE`.
 *
 * Bodies follow one replay rule (see body.ts): at most 64 KiB is held and replayable, in
 * any form; larger or unsized bodies are sent once. Streams within the limit are read
 * inside the call (the protocol's prepare step), under its deadline and abort.
 *
 * The caller's handler may be of either undici style (legacy `onConnect/onHeaders/…` or
 * controller-based `onRequestStart/onResponseStart/…`); `toLegacy` adapts the latter.
 */
import { Agent, Dispatcher, errors, util, type Pool } from 'undici';
import {
  MeshClosedError,
  MeshConfigError,
  MeshError,
  UnsupportedError,
  type CallHandle,
  type Mesh,
  type Protocol,
} from '@meshlet/core';
import type { HttpAttempt, LegacyHandler } from './attempt.js';
import { REPLAY_BUFFER_LIMIT } from './body.js';
import { DEFAULT_CLOSE_GRACE_MS, DEFAULT_DRAIN_GRACE_MS, PoolSet } from './pools.js';
import { createHttpProtocol } from './protocol.js';
import { HttpRequest } from './request.js';
import { MeshUrlResolver, PendingVerdict, type UnknownHosts, type UrlVerdict } from './url.js';

/** Largest body buffered for replay on retry. */
export { REPLAY_BUFFER_LIMIT };

export interface MeshDispatcherOptions {
  /** Options of each (service, endpoint) undici Pool (connections, keepAliveTimeout, …). Its `connect` may be an object or a function. */
  pool?: Pool.Options;
  /** Options of the Agent used for origins that are not mesh services. */
  passthrough?: Agent.Options;
  /** What to do with a host that is not a configured service: `'passthrough'` (default) to plain undici, or `'reject'` with MESHLET_ERR_UNKNOWN_SERVICE. */
  unknownHosts?: UnknownHosts;
  /** Ms a retired endpoint's pool may take to finish its requests before its sockets are destroyed. Default 10 000. */
  drainGraceMs?: number;
  /** Ms pools still busy when the mesh closes may take before their sockets are destroyed. Default 1000. */
  closeGraceMs?: number;
}

const OPTION_KEYS = ['pool', 'passthrough', 'unknownHosts', 'drainGraceMs', 'closeGraceMs'];

/** Validates dispatcher (and fetch) options; throws MeshConfigError naming the option. */
export function validateDispatcherOptions(options: unknown, api: string): MeshDispatcherOptions {
  if (options === undefined) return {};
  const issues: { path: string; message: string }[] = [];
  if (typeof options !== 'object' || options === null || Array.isArray(options)) {
    issues.push({ path: `${api} options`, message: `expected an object, got ${show(options)}` });
    throw new MeshConfigError(issues);
  }
  const o = options as Record<string, unknown>;
  for (const key of Object.keys(o)) {
    if (!OPTION_KEYS.includes(key)) {
      issues.push({ path: `${api} options.${key}`, message: `unknown option (known: ${OPTION_KEYS.join(', ')})` });
    }
  }
  if (o.unknownHosts !== undefined && o.unknownHosts !== 'passthrough' && o.unknownHosts !== 'reject') {
    issues.push({
      path: `${api} options.unknownHosts`,
      message: `expected "passthrough" or "reject", got ${show(o.unknownHosts)}`,
    });
  }
  for (const key of ['pool', 'passthrough']) {
    const v = o[key];
    if (v !== undefined && (typeof v !== 'object' || v === null || Array.isArray(v))) {
      issues.push({ path: `${api} options.${key}`, message: `expected an object of undici options, got ${show(v)}` });
    }
  }
  for (const key of ['drainGraceMs', 'closeGraceMs']) {
    const v = o[key];
    if (v !== undefined && (typeof v !== 'number' || !Number.isInteger(v) || v < 0)) {
      issues.push({ path: `${api} options.${key}`, message: `expected an integer >= 0 (ms), got ${show(v)}` });
    }
  }
  if (issues.length > 0) throw new MeshConfigError(issues);
  return o as MeshDispatcherOptions;
}

function show(v: unknown): string {
  if (typeof v === 'string') return JSON.stringify(v);
  if (Array.isArray(v)) return 'an array';
  return v === null ? 'null' : typeof v === 'object' ? 'an object' : String(v);
}

type AnyHandler = LegacyHandler & {
  onRequestStart?: (controller: unknown, context: unknown) => void;
  onResponseStart?: (...args: unknown[]) => void;
  onResponseData?: (...args: unknown[]) => void;
  onResponseEnd?: (...args: unknown[]) => void;
  onResponseError?: (...args: unknown[]) => void;
};

export class MeshDispatcher extends Dispatcher {
  readonly mesh: Mesh;
  private readonly pools: PoolSet;
  private readonly protocol: Protocol<HttpRequest, HttpAttempt>;
  private readonly passthroughOptions: Agent.Options | undefined;
  /** The one place that decides what a URL or an origin means (url.ts). */
  readonly urls: MeshUrlResolver;
  private agent: Agent | undefined;
  private closed = false;
  private readonly unsubscribe: () => void;

  constructor(mesh: Mesh, options?: MeshDispatcherOptions, api = 'createMeshDispatcher') {
    super();
    const o = validateDispatcherOptions(options, api);
    this.mesh = mesh;
    this.pools = new PoolSet(mesh, {
      pool: o.pool ?? {},
      drainGraceMs: o.drainGraceMs ?? DEFAULT_DRAIN_GRACE_MS,
      closeGraceMs: o.closeGraceMs ?? DEFAULT_CLOSE_GRACE_MS,
    });
    this.protocol = createHttpProtocol(this.pools);
    this.passthroughOptions = o.passthrough;
    this.urls = new MeshUrlResolver(mesh, o.unknownHosts ?? 'passthrough');
    this.unsubscribe = mesh.subscribe({ closed: () => this.close() });
  }

  /** Undici pools open to mesh endpoints (one per service and endpoint), retiring ones included. */
  get poolCount(): number {
    return this.pools.poolCount;
  }

  /** The verdict on an origin: a service name, a MeshError to fail with, or undefined (pass through). */
  resolve(origin: unknown): UrlVerdict {
    return this.urls.resolve(origin);
  }

  /** The logical service an origin names, or undefined when it is not (or cannot be) a mesh call. */
  serviceOf(origin: unknown): string | undefined {
    const v = this.urls.resolve(origin);
    return typeof v === 'string' ? v : undefined;
  }

  override dispatch(opts: Dispatcher.DispatchOptions, handler: Dispatcher.DispatchHandler): boolean {
    const verdict = this.urls.resolve(opts.origin);
    if (verdict === undefined) return this.passthrough().dispatch(opts, handler);
    if (verdict instanceof PendingVerdict) {
      // The mesh has no config yet: wait for it (bounded by startupTimeoutMs), then decide again.
      this.mesh.waitReady(verdict.host).then(
        () => this.dispatch(opts, handler),
        (err: Error) => refuse(toLegacy(handler as AnyHandler), err),
      );
      return true;
    }
    const legacy = toLegacy(handler as AnyHandler);
    if (typeof verdict !== 'string') {
      refuse(legacy, verdict);
      return true;
    }
    this.meshDispatch(verdict, opts, legacy);
    return true;
  }

  private passthrough(): Agent {
    if (this.closed) {
      throw new MeshError(
        'MESHLET_ERR_CLOSED',
        'the mesh dispatcher is closed (its mesh was closed, or close() was called); create a new one',
      );
    }
    return (this.agent ??= new Agent(this.passthroughOptions));
  }

  private meshDispatch(service: string, opts: Dispatcher.DispatchOptions, handler: LegacyHandler): void {
    const state = new MeshCallState(handler);
    handler.onConnect?.(state.abort);
    if (state.abortReason !== undefined) {
      handler.onError?.(state.abortReason);
      return;
    }
    if (this.closed) {
      handler.onError?.(new MeshClosedError(service));
      return;
    }
    const req = new HttpRequest(service, opts, state, this.mesh.service);
    if (req.upgrade || req.method === 'CONNECT') {
      handler.onError?.(
        new UnsupportedError(
          service,
          'upgrade and CONNECT requests are not supported through the mesh; call an endpoint directly',
        ),
      );
      return;
    }
    // No promise: the answer reaches the handler through the protocol's deliver hook (state.deliver),
    // a failure through its fail hook (state.fail), always after send has returned.
    this.mesh.send(service, req, this.protocol);
  }

  override close(): Promise<void>;
  override close(callback: () => void): void;
  override close(callback?: () => void): Promise<void> | void {
    const p = this.shutdown();
    if (callback) {
      p.then(callback, callback);
      return;
    }
    return p;
  }

  override destroy(): Promise<void>;
  override destroy(err: Error | null): Promise<void>;
  override destroy(callback: () => void): void;
  override destroy(err: Error | null, callback: () => void): void;
  override destroy(a?: unknown, b?: unknown): Promise<void> | void {
    const callback = typeof a === 'function' ? (a as () => void) : (b as (() => void) | undefined);
    const p = this.shutdown(true);
    if (callback) {
      p.then(callback, callback);
      return;
    }
    return p;
  }

  private async shutdown(force = false): Promise<void> {
    if (this.closed) return;
    this.closed = true;
    this.unsubscribe();
    const agent = this.agent;
    this.agent = undefined;
    await Promise.all([this.pools.close(), agent && (force ? agent.destroy() : agent.close())]);
  }
}

/** Creates an undici Dispatcher that sends mesh-service origins through the mesh. */
export function createMeshDispatcher(mesh: Mesh, options?: MeshDispatcherOptions): MeshDispatcher {
  return new MeshDispatcher(mesh, options);
}

/**
 * One mesh call made through the dispatcher: relays the caller's abort to the mesh call
 * (or, once committed, to the response), and delivers the outcome to the caller's handler.
 */
class MeshCallState {
  abortReason: Error | undefined = undefined;
  private call: CallHandle | undefined = undefined;
  private committed: HttpAttempt | undefined = undefined;

  constructor(readonly handler: LegacyHandler) {}

  /** Given to the caller's `onConnect`. */
  readonly abort = (reason?: Error): void => {
    const why = reason ?? new errors.RequestAbortedError();
    if (this.committed !== undefined) this.committed.abort(why);
    else if (this.call !== undefined) this.call.abort(why);
    else this.abortReason ??= why;
  };

  /** HttpRequest's bind hook: the mesh call started. */
  bind(call: CallHandle): void {
    this.call = call;
    if (this.abortReason !== undefined) call.abort(this.abortReason);
  }

  /** The call's answer (HttpRequest's deliver hook, as soon as the mesh decides it). */
  deliver(res: HttpAttempt): void {
    this.committed = res;
    try {
      res.commit(this.handler);
    } catch (err) {
      res.handlerFailed(err as Error);
    }
  }

  /** The call failed (HttpRequest's fail hook, from a microtask, as a rejection would come). */
  fail(err: unknown): void {
    this.release();
    this.handler.onError?.(err as Error);
  }

  /**
   * The response ended (or the call failed): drop the call and its answer. The caller's handler
   * keeps `abort` for as long as it lives (undici's fetch holds it on its controller, which lives
   * as long as the Response), and without this the whole call — request, options, headers,
   * attempt, undici's own request — would live that long too, so every fetch would carry ~2 KB
   * more into the old generation. An abort after the end has nothing to cut.
   */
  release(): void {
    this.call = undefined;
    this.committed = undefined;
  }
}

/** Fails a request the URL rules refused, in the order undici's callers expect (connect, then error). */
function refuse(handler: LegacyHandler, err: Error): void {
  handler.onConnect?.(noop);
  handler.onError?.(err);
}

function noop(): void {}

/** Adapts a controller-style (new) undici handler to the callback form the mesh drives. */
function toLegacy(handler: AnyHandler): LegacyHandler {
  return typeof handler.onRequestStart === 'function' ? new ControllerAdapter(handler) : handler;
}

/**
 * A controller-style handler seen as a callback-style one. The adapter is at once the
 * handler the mesh drives and the controller the caller's handler receives (one object, one
 * fixed shape per request). Once the caller aborts, or the response has ended or failed,
 * nothing more is delivered and a late abort is ignored.
 */
class ControllerAdapter implements LegacyHandler {
  paused = false;
  aborted = false;
  reason: Error | null = null;
  rawHeaders: Buffer[] | null = null;
  rawTrailers: Buffer[] | null = null;
  private done = false;
  private abortFn: ((err?: Error) => void) | undefined = undefined;
  private resumeFn: (() => void) | undefined = undefined;

  constructor(private readonly handler: AnyHandler) {}

  // The controller.
  abort(err?: Error): void {
    if (this.aborted || this.done) return;
    this.aborted = true;
    this.reason = err ?? null;
    this.abortFn?.(err);
  }
  pause(): void {
    this.paused = true;
  }
  resume(): void {
    if (this.paused) {
      this.paused = false;
      this.resumeFn?.();
    }
  }

  // The callback-style handler.
  onConnect(abort: (err?: Error) => void): void {
    this.abortFn = abort;
    this.handler.onRequestStart!(this, {});
  }
  onHeaders(statusCode: number, rawHeaders: Buffer[], resume: () => void, statusText: string): boolean {
    if (this.done) return false;
    this.resumeFn = resume;
    this.rawHeaders = rawHeaders;
    this.handler.onResponseStart?.(this, statusCode, util.parseHeaders(rawHeaders), statusText);
    return !this.paused;
  }
  onData(chunk: Buffer): boolean {
    if (this.done) return false;
    this.handler.onResponseData?.(this, chunk);
    return !this.paused;
  }
  onComplete(trailers: Buffer[] | null): void {
    if (this.done) return;
    this.done = true;
    this.rawTrailers = trailers;
    this.handler.onResponseEnd?.(this, util.parseHeaders(trailers ?? []));
  }
  onError(err: Error): void {
    if (this.done) return;
    this.done = true;
    this.handler.onResponseError?.(this, err);
  }
}
