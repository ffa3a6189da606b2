/**
 * HTTP classification (Linkerd/Envoy semantics): connection refused, reset, per-try
 * timeout and 502/503/504 are retryable; other 5xx are failures (they count toward outlier
 * detection and the breaker); 1xx–4xx are successes for health purposes. `retry.retryOn`
 * replaces the retryable set: tokens `connect-failure`, `reset`, `timeout`,
 * `gateway-error` (502/503/504), `5xx`, or a status code (`'409'`).
 *
 * Errors that are the caller's own fault are `'invalid-request'`, which core never counts
 * against the endpoint and never retries: what undici refuses locally (an invalid header,
 * path or method, an unsupported option, a body whose length differs from its
 * Content-Length) and the `InvalidRequestError`s the attempt raises for a request body
 * stream that failed or stalled. That verdict is checked before any other, so it holds
 * even when the attempt was also cut by a timeout.
 */
import type { CallContext, Classification, Classifier } from '@meshlet/core';
import type { HttpAttempt } from './attempt.js';

export const DEFAULT_RETRY_ON: readonly string[] = ['connect-failure', 'reset', 'timeout', 'gateway-error'];

const CONNECT_CODES = new Set([
  'ECONNREFUSED',
  'EHOSTUNREACH',
  'ENETUNREACH',
  'ENOTFOUND',
  'EAI_AGAIN',
  'UND_ERR_CONNECT_TIMEOUT',
]);
const RESET_CODES = new Set(['ECONNRESET', 'EPIPE', 'UND_ERR_SOCKET', 'ECONNABORTED']);
const TIMEOUT_CODES = new Set(['MESHLET_ERR_PER_TRY_TIMEOUT', 'UND_ERR_HEADERS_TIMEOUT', 'ETIMEDOUT']);
/** Refused before anything reached the endpoint, or the request's own body is inconsistent. */
const INVALID_REQUEST_CODES = new Set([
  'MESHLET_ERR_INVALID_REQUEST',
  'UND_ERR_INVALID_ARG',
  'UND_ERR_NOT_SUPPORTED',
  'UND_ERR_REQ_CONTENT_LENGTH_MISMATCH',
]);

/** True when the error (not its causes: a reset may wrap anything) is the caller's own request's fault. */
export function isInvalidRequest(err: unknown): boolean {
  const code = (err as { code?: unknown } | null | undefined)?.code;
  return typeof code === 'string' && INVALID_REQUEST_CODES.has(code);
}

/** What went wrong with an attempt that produced no response, as an `error.type`-style token. */
export function errorKind(err: unknown): 'connect-failure' | 'reset' | 'timeout' | 'other' {
  let e: unknown = err;
  for (let depth = 0; depth < 3 && e !== null && typeof e === 'object'; depth++) {
    const code = (e as { code?: unknown }).code;
    if (typeof code === 'string') {
      if (CONNECT_CODES.has(code)) return 'connect-failure';
      if (RESET_CODES.has(code)) return 'reset';
      if (TIMEOUT_CODES.has(code)) return 'timeout';
    }
    e = (e as { cause?: unknown }).cause;
  }
  return 'other';
}

export class HttpClassifier implements Classifier<HttpAttempt> {
  private readonly statuses = new Uint8Array(600);
  private readonly errors = new Set<string>();

  constructor(retryOn: readonly string[] | undefined) {
    for (const token of retryOn ?? DEFAULT_RETRY_ON) {
      if (token === 'gateway-error') this.statuses[502] = this.statuses[503] = this.statuses[504] = 1;
      else if (token === '5xx') for (let s = 500; s < 600; s++) this.statuses[s] = 1;
      else if (/^[1-5]\d\d$/.test(token)) this.statuses[Number(token)] = 1;
      else this.errors.add(token); // connect-failure, reset, timeout; gRPC names are ignored here
    }
  }

  classifyResult(res: HttpAttempt, _ctx: CallContext): Classification {
    const s = res.statusCode;
    if (s < 600 && this.statuses[s] === 1) return 'retryable';
    return s >= 500 ? 'failure' : 'success';
  }

  classifyError(err: unknown, _ctx: CallContext): Classification {
    if (isInvalidRequest(err)) return 'invalid-request';
    const kind = errorKind(err);
    return kind !== 'other' && this.errors.has(kind) ? 'retryable' : 'failure';
  }
}
