/**
 * The HTTP protocol for the mesh: the transport leaf (one attempt on the pool of the
 * addressed service on the picked endpoint, with W3C trace context injected), the
 * classifier, the prepare step (small request bodies read into memory for replay, under
 * the call's deadline), and request facts for routing.
 *
 * Telemetry: `attemptAttributes` returns cached, frozen attribute objects per (endpoint,
 * method, status or error type), so a metrics SDK does not hash a fresh object per point.
 * Methods outside the semconv list are reported as `_OTHER`; each endpoint's cache is
 * bounded.
 */
import type { Attributes } from '@opentelemetry/api';
import type { CallContext, Endpoint, Protocol } from '@meshlet/core';
import { BodyDeadlines, HttpAttempt, type AttemptTarget } from './attempt.js';
import { BODY_TO_BUFFER } from './body.js';
import { HttpClassifier, errorKind } from './classifier.js';
import { findHeader } from './headers.js';
import type { PoolSet } from './pools.js';
import type { HttpRequest } from './request.js';

export function createHttpProtocol(pools: PoolSet): Protocol<HttpRequest, HttpAttempt> {
  const attributes = new AttributeCache();
  const deadlines = new BodyDeadlines();
  return {
    name: 'http',
    durationMetric: 'http.client.request.duration',
    transport(req: HttpRequest, ctx: CallContext, ep: Endpoint): Promise<HttpAttempt> {
      // A shared executor hands over resolve/reject: no closure per attempt.
      const promise = new Promise<HttpAttempt>(capture);
      const target = new PromiseTarget(captured.resolve!, captured.reject!);
      captured.resolve = captured.reject = undefined;
      send(req, ctx, ep, target);
      return promise;
    },
    // The callback form (a call's first attempt): the call itself is told the outcome, no promise.
    start(req: HttpRequest, ctx: CallContext, ep: Endpoint, sink: AttemptTarget): void {
      send(req, ctx, ep, sink);
    },
    classifier: (retryOn) => new HttpClassifier(retryOn),
    method: (req) => req.method,
    path: (req) => req.path,
    header: (req, name) => findHeader(req.headers, name),
    replayable: (req, nonIdempotent) => req.replayable(nonIdempotent),
    discard: (res) => res.discard(),
    spanName: (req) => req.method,
    bindCall: (req, call) => req.bind(call),
    // The answer reaches the caller's handler at once (inside undici's head callback on the fast path).
    deliver: (req, res) => req.deliver(res),
    // A call's failure (the dispatcher sends calls with Mesh.send: no promise per call).
    fail: (req, err) => req.fail(err),
    prepare: (req, ctx) => req.prepare(ctx),
    attemptAttributes: (req, ctx, ep, res, err) =>
      res !== undefined
        ? attributes.forStatus(ep, ctx.service, req.method, res.statusCode)
        : attributes.forError(ep, ctx.service, req.method, err),
    attemptStatus: (res, err) => (res !== undefined ? res.statusCode : errorType(err)),
  };

  function send(req: HttpRequest, ctx: CallContext, ep: Endpoint, target: AttemptTarget): void {
    // A body meant for buffering that prepare did not read is sent once, as a stream.
    if (req.bodyKind === BODY_TO_BUFFER) req.sendUnbuffered();
    const pool = pools.get(ep, req.service);
    const opts = ctx.trace === undefined ? req.opts : req.tracedOptions(ctx.trace);
    req.setBudget(ctx.remainingMs());
    pool.dispatch(opts, new HttpAttempt(target, ctx, req, deadlines) as never);
  }
}

/** An attempt's outcome as a promise (the promise form of the transport: retries, breaker probes). */
class PromiseTarget implements AttemptTarget {
  constructor(
    private readonly resolve: (v: HttpAttempt) => void,
    private readonly reject: (e: unknown) => void,
  ) {}
  attemptResolved(res: HttpAttempt): void {
    this.resolve(res);
  }
  attemptRejected(err: unknown): void {
    this.reject(err);
  }
}

const captured: { resolve: ((v: HttpAttempt) => void) | undefined; reject: ((e: unknown) => void) | undefined } = {
  resolve: undefined,
  reject: undefined,
};
function capture(resolve: (v: HttpAttempt) => void, reject: (e: unknown) => void): void {
  captured.resolve = resolve;
  captured.reject = reject;
}

/** `error.type` of an attempt that produced no response. */
export function errorType(err: unknown): string {
  const kind = errorKind(err);
  if (kind !== 'other') return kind;
  const code = (err as { code?: unknown } | undefined)?.code;
  return typeof code === 'string' ? code : err instanceof Error ? err.name : '_OTHER';
}

/** Methods semconv names as they are; any other is `_OTHER`. */
const KNOWN_METHODS = ['GET', 'HEAD', 'POST', 'PUT', 'DELETE', 'CONNECT', 'OPTIONS', 'TRACE', 'PATCH', 'QUERY'];
const METHOD_INDEX = new Map(KNOWN_METHODS.map((m, i) => [m, i]));
const OTHER = KNOWN_METHODS.length;
/** Distinct attribute sets kept per endpoint; past it, points get fresh objects (still correct, just not cached). */
export const ATTRIBUTE_CACHE_LIMIT = 256;

class EndpointAttributes {
  readonly byStatus = new Map<number, Attributes>();
  readonly byError = new Map<string, Attributes>();
  size = 0;
}

/** Frozen attribute objects per (endpoint, method, status | error type), bounded per endpoint. */
export class AttributeCache {
  private readonly endpoints = new WeakMap<Endpoint, EndpointAttributes>();

  private entry(ep: Endpoint): EndpointAttributes {
    let e = this.endpoints.get(ep);
    if (e === undefined) {
      e = new EndpointAttributes();
      this.endpoints.set(ep, e);
    }
    return e;
  }

  /** `service`: the service the attempt went to (an endpoint object belongs to one service, so it is part of the endpoint's entry). */
  forStatus(ep: Endpoint, service: string, method: string, status: number): Attributes {
    const m = METHOD_INDEX.get(method) ?? OTHER;
    const e = this.entry(ep);
    const key = m * 1000 + status;
    let a = e.byStatus.get(key);
    if (a === undefined) {
      const attrs: Attributes = {
        'http.request.method': m === OTHER ? '_OTHER' : method,
        'server.address': ep.host,
        'server.port': ep.port,
        'http.response.status_code': status,
        'meshlet.service': service,
      };
      if (status >= 500) attrs['error.type'] = String(status);
      a = Object.freeze(attrs);
      if (e.size < ATTRIBUTE_CACHE_LIMIT) {
        e.byStatus.set(key, a);
        e.size++;
      }
    }
    return a;
  }

  forError(ep: Endpoint, service: string, method: string, err: unknown): Attributes {
    const m = METHOD_INDEX.get(method) ?? OTHER;
    const type = errorType(err);
    const e = this.entry(ep);
    const key = m === OTHER ? `_OTHER ${type}` : `${method} ${type}`;
    let a = e.byError.get(key);
    if (a === undefined) {
      a = Object.freeze({
        'http.request.method': m === OTHER ? '_OTHER' : method,
        'server.address': ep.host,
        'server.port': ep.port,
        'error.type': type,
        'meshlet.service': service,
      });
      if (e.size < ATTRIBUTE_CACHE_LIMIT) {
        e.byError.set(key, a);
        e.size++;
      }
    }
    return a;
  }
}
