/**
 * The HTTP protocol for the mesh: the transport leaf (one attempt on the endpoint's pool,
 * with W3C trace context injected), the classifier, and request facts for routing.
 */
import type { Attributes } from '@opentelemetry/api';
import type { CallContext, Endpoint, Protocol } from '@meshlet/core';
import { HttpAttempt } from './attempt.js';
import { HttpClassifier, errorKind } from './classifier.js';
import { findHeader } from './headers.js';
import type { PoolSet } from './pools.js';
import type { HttpRequest } from './request.js';

export function createHttpProtocol(pools: PoolSet): Protocol<HttpRequest, HttpAttempt> {
  return {
    name: 'http',
    durationMetric: 'http.client.request.duration',
    transport(req: HttpRequest, ctx: CallContext, ep: Endpoint): Promise<HttpAttempt> {
      const pool = pools.get(ep);
      const opts = ctx.trace === undefined ? req.opts : req.tracedOptions(ctx.trace);
      return new Promise((resolve, reject) => {
        pool.dispatch(opts, new HttpAttempt(resolve, reject, ctx) as never);
      });
    },
    classifier: (retryOn) => new HttpClassifier(retryOn),
    method: (req) => req.method,
    path: (req) => req.path,
    header: (req, name) => findHeader(req.headers, name),
    replayable: (req, nonIdempotent) => req.replayable(nonIdempotent),
    discard: (res) => res.discard(),
    spanName: (req) => req.method,
    bindCall: (req, call) => req.bind(call),
    attemptAttributes(req, _ctx, ep, res, err): Attributes {
      if (res === undefined) {
        return {
          'http.request.method': req.method,
          'server.address': ep.host,
          'server.port': ep.port,
          'error.type': errorType(err),
        };
      }
      const attributes: Attributes = {
        'http.request.method': req.method,
        'server.address': ep.host,
        'server.port': ep.port,
        'http.response.status_code': res.statusCode,
      };
      if (res.statusCode >= 500) attributes['error.type'] = String(res.statusCode);
      return attributes;
    },
    attemptStatus: (res, err) => (res !== undefined ? res.statusCode : errorType(err)),
  };
}

function errorType(err: unknown): string {
  const kind = errorKind(err);
  if (kind !== 'other') return kind;
  const code = (err as { code?: unknown } | undefined)?.code;
  return typeof code === 'string' ? code : err instanceof Error ? err.name : '_OTHER';
}
