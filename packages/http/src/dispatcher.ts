/**
 * `createMeshDispatcher(mesh)`: an undici Dispatcher. Requests to `http://<service>/…`
 * where `<service>` is configured in the mesh go through the mesh (routing, retries,
 * balancing, breakers, telemetry) to one keep-alive Pool per endpoint; every other
 * origin goes to a plain undici Agent, untouched.
 *
 * Bodies: strings and buffers are replayable. A streamed body (an iterable, a Readable,
 * or what `fetch` hands a dispatcher) whose `content-length` is at most 64 KiB is read
 * into memory first so it can be replayed; a larger or unsized stream is sent once and
 * never retried.
 */
import { Agent, Dispatcher, errors, util, type Pool } from 'undici';
import { MeshClosedError, MeshError, type CallHandle, type Mesh, type Protocol } from '@meshlet/core';
import type { HttpAttempt, LegacyHandler } from './attempt.js';
import { findHeader, withHeaders, type HeaderInput } from './headers.js';
import { PoolSet } from './pools.js';
import { createHttpProtocol } from './protocol.js';
import { HttpRequest } from './request.js';

/** Largest body buffered for replay on retry. */
export const REPLAY_BUFFER_LIMIT = 64 * 1024;

export interface MeshDispatcherOptions {
  /** Options of each endpoint's undici Pool (connections, keepAliveTimeout, …). */
  pool?: Pool.Options;
  /** Options of the Agent used for origins that are not mesh services. */
  passthrough?: Agent.Options;
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
  private agent: Agent | undefined;
  private closed = false;
  private readonly unsubscribe: () => void;

  constructor(mesh: Mesh, options: MeshDispatcherOptions = {}) {
    super();
    this.mesh = mesh;
    this.pools = new PoolSet(mesh, options.pool ?? {});
    this.protocol = createHttpProtocol(this.pools);
    this.passthroughOptions = options.passthrough;
    this.unsubscribe = mesh.subscribe({ closed: () => this.close() });
  }

  /** The logical service an origin names, or undefined when it is not a mesh service. */
  serviceOf(origin: unknown): string | undefined {
    let host: string;
    if (typeof origin === 'string') {
      if (!origin.startsWith('http://')) return undefined;
      let end = origin.length;
      for (let i = 7; i < origin.length; i++) {
        const c = origin.charCodeAt(i);
        if (c === 58 /* : */ || c === 47 /* / */) {
          end = i;
          break;
        }
      }
      host = origin.slice(7, end);
    } else if (origin instanceof URL) {
      if (origin.protocol !== 'http:') return undefined;
      host = origin.hostname;
    } else return undefined;
    return this.mesh.hasService(host) ? host : undefined;
  }

  override dispatch(opts: Dispatcher.DispatchOptions, handler: Dispatcher.DispatchHandler): boolean {
    const service = this.serviceOf(opts.origin);
    if (service === undefined) return this.passthrough().dispatch(opts, handler);
    this.meshDispatch(service, opts, toLegacy(handler as AnyHandler));
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
    const method = (opts.method ?? 'GET').toUpperCase();
    if (opts.upgrade || method === 'CONNECT') {
      handler.onError?.(
        new MeshError(
          'MESHLET_ERR_UNSUPPORTED',
          `service "${service}": upgrade and CONNECT requests are not supported through the mesh; call an endpoint directly`,
        ),
      );
      return;
    }
    const body = opts.body;
    if (body == null || typeof body === 'string' || body instanceof Uint8Array) {
      this.start(service, opts, body, true, state);
      return;
    }
    const length = Number(findHeader(opts.headers as HeaderInput, 'content-length'));
    if (isAsyncIterable(body) && Number.isInteger(length) && length <= REPLAY_BUFFER_LIMIT) {
      bufferBody(body).then(
        ([buffered, whole]) => this.start(service, opts, buffered, whole, state),
        (err) => handler.onError?.(err),
      );
      return;
    }
    this.start(service, opts, body, false, state);
  }

  private start(
    service: string,
    opts: Dispatcher.DispatchOptions,
    body: unknown,
    replayable: boolean,
    state: MeshCallState,
  ): void {
    if (state.abortReason !== undefined) {
      state.handler.onError?.(state.abortReason);
      return;
    }
    const userHeaders = opts.headers as HeaderInput;
    // The logical authority travels as Host, as Linkerd preserves it.
    const ownsHeaders = findHeader(userHeaders, 'host') === undefined;
    const headers = ownsHeaders
      ? withHeaders(userHeaders, [
          'host',
          typeof opts.origin === 'string' ? opts.origin.slice(7) : (opts.origin as URL).host,
        ])
      : userHeaders;
    // Pools ignore `origin`: each is bound to its endpoint.
    const attemptOpts = { ...opts, headers, body } as Dispatcher.DispatchOptions;
    const req = new HttpRequest(
      (opts.method ?? 'GET').toUpperCase(),
      opts.path,
      userHeaders,
      attemptOpts,
      replayable,
      findHeader(userHeaders, 'idempotency-key') !== undefined,
      state,
      ownsHeaders,
    );
    this.mesh.call(service, req, this.protocol).then(state.deliver, state.fail);
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

  readonly deliver = (res: HttpAttempt): void => {
    this.committed = res;
    try {
      res.commit(this.handler);
    } catch (err) {
      res.abort(err as Error);
      this.handler.onError?.(err as Error);
    }
  };

  readonly fail = (err: unknown): void => {
    this.handler.onError?.(err as Error);
  };
}

function isAsyncIterable(body: unknown): body is AsyncIterable<unknown> {
  return typeof (body as AsyncIterable<unknown>)?.[Symbol.asyncIterator] === 'function';
}

/**
 * Reads a streamed body of at most the replay limit into one Buffer. If the stream turns
 * out longer than announced, what was read is sent followed by the rest, unreplayable.
 */
async function bufferBody(body: AsyncIterable<unknown>): Promise<[unknown, boolean]> {
  const chunks: Buffer[] = [];
  let size = 0;
  const it = body[Symbol.asyncIterator]();
  for (;;) {
    const { value, done } = await it.next();
    if (done) return [Buffer.concat(chunks, size), true];
    const chunk = typeof value === 'string' ? Buffer.from(value) : Buffer.from(value as Uint8Array);
    chunks.push(chunk);
    size += chunk.length;
    if (size > REPLAY_BUFFER_LIMIT) {
      const rest = (async function* () {
        yield* chunks;
        for (;;) {
          const next = await it.next();
          if (next.done) return;
          yield next.value;
        }
      })();
      return [rest, false];
    }
  }
}

/** Adapts a controller-style (new) undici handler to the callback form the mesh drives. */
function toLegacy(handler: AnyHandler): LegacyHandler {
  if (typeof handler.onRequestStart !== 'function') return handler;
  let abortFn: (err?: Error) => void = () => {};
  let resumeFn: (() => void) | undefined;
  let paused = false;
  let aborted = false;
  let reason: Error | null = null;
  const controller = {
    abort(err?: Error) {
      if (aborted) return;
      aborted = true;
      reason = err ?? null;
      abortFn(err);
    },
    pause() {
      paused = true;
    },
    resume() {
      if (paused) {
        paused = false;
        resumeFn?.();
      }
    },
    get paused() {
      return paused;
    },
    get aborted() {
      return aborted;
    },
    get reason() {
      return reason;
    },
    rawHeaders: null as Buffer[] | null,
    rawTrailers: null as Buffer[] | null,
  };
  return {
    onConnect(abort) {
      abortFn = abort;
      handler.onRequestStart!(controller, {});
    },
    onHeaders(statusCode, rawHeaders, resume, statusText) {
      resumeFn = resume;
      controller.rawHeaders = rawHeaders;
      handler.onResponseStart?.(controller, statusCode, util.parseHeaders(rawHeaders), statusText);
      return !paused;
    },
    onData(chunk) {
      handler.onResponseData?.(controller, chunk);
      return !paused;
    },
    onComplete(trailers) {
      controller.rawTrailers = trailers;
      handler.onResponseEnd?.(controller, util.parseHeaders(trailers ?? []));
    },
    onError(err) {
      handler.onResponseError?.(controller, err);
    },
  };
}
