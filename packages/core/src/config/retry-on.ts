/**
 * The `retry.retryOn` vocabulary of each protocol, and the check of one token against a service's
 * protocol. A token of the other protocol is never silently ignored: an HTTP classifier has no use
 * for `UNAVAILABLE`, so a gRPC name in an HTTP service is almost always a service declared with
 * the wrong protocol, and the error says so.
 */
import { didYouMean } from '../util/suggest.js';

/** The protocol a service speaks. */
export type ServiceProtocol = 'http' | 'grpc';

export const SERVICE_PROTOCOLS: readonly ServiceProtocol[] = ['http', 'grpc'];

/** HTTP retry conditions besides status codes. `gateway-error` is 502, 503 and 504. */
export const HTTP_RETRY_ON_KEYWORDS: readonly string[] = [
  'connect-failure',
  'reset',
  'timeout',
  'gateway-error',
  '5xx',
];

/** gRPC status names a call can be retried on (every code but OK, which is a success). */
export const GRPC_RETRY_ON_CODES: readonly string[] = [
  'CANCELLED',
  'UNKNOWN',
  'INVALID_ARGUMENT',
  'DEADLINE_EXCEEDED',
  'NOT_FOUND',
  'ALREADY_EXISTS',
  'PERMISSION_DENIED',
  'RESOURCE_EXHAUSTED',
  'FAILED_PRECONDITION',
  'ABORTED',
  'OUT_OF_RANGE',
  'UNIMPLEMENTED',
  'INTERNAL',
  'UNAVAILABLE',
  'DATA_LOSS',
  'UNAUTHENTICATED',
];

const HTTP_STATUS = /^[1-5]\d\d$/;
const HTTP_KEYWORDS = new Set(HTTP_RETRY_ON_KEYWORDS);
const GRPC_CODES = new Set(GRPC_RETRY_ON_CODES);
// Upper-case lookups of the tokens of each protocol, to recognise "unavailable" or "RESET".
const GRPC_BY_UPPER = new Map(GRPC_RETRY_ON_CODES.map((c) => [c, c]));
const HTTP_BY_UPPER = new Map(HTTP_RETRY_ON_KEYWORDS.map((k) => [k.toUpperCase(), k]));

const HTTP_VALID = `${HTTP_RETRY_ON_KEYWORDS.join(', ')}, or an HTTP status such as "503"`;
const GRPC_VALID = `a gRPC status name: ${GRPC_RETRY_ON_CODES.join(', ')}`;

/** True when `token` is a retry condition of `protocol`. */
export function isRetryOnToken(token: string, protocol: ServiceProtocol): boolean {
  return protocol === 'http' ? HTTP_KEYWORDS.has(token) || HTTP_STATUS.test(token) : GRPC_CODES.has(token);
}

/**
 * The issue message for a `retryOn` item that is not a valid token of `protocol` (undefined when it
 * is valid). `protocol` undefined (the service's protocol is itself invalid) accepts either vocabulary.
 */
export function retryOnProblem(
  token: unknown,
  protocol: ServiceProtocol | undefined,
  service: string,
  got: string,
): string | undefined {
  if (typeof token === 'string') {
    if (protocol === undefined) {
      if (isRetryOnToken(token, 'http') || isRetryOnToken(token, 'grpc')) return undefined;
    } else if (isRetryOnToken(token, protocol)) {
      return undefined;
    }
  }
  if (protocol === undefined) {
    return `expected ${HTTP_VALID} (HTTP), or ${GRPC_VALID} (gRPC), got ${got}`;
  }
  const valid = protocol === 'http' ? HTTP_VALID : GRPC_VALID;
  const setTo = `service "${service}" has protocol "${protocol}"`;
  if (typeof token === 'string') {
    const upper = token.toUpperCase();
    if (protocol === 'grpc' && upper === 'OK') {
      return `OK is a success and is never retried; expected ${valid}`;
    }
    if (protocol === 'http' && GRPC_BY_UPPER.has(upper)) {
      return `${got} is a gRPC status, but ${setTo}; expected ${valid}, or set protocol: "grpc" if the service speaks gRPC`;
    }
    if (protocol === 'grpc' && (HTTP_BY_UPPER.has(upper) || HTTP_STATUS.test(token) || upper === '5XX')) {
      return `${got} is an HTTP retry condition, but ${setTo}; expected ${valid}, or set protocol: "http" if the service speaks HTTP`;
    }
    const hint = didYouMean(token, protocol === 'http' ? HTTP_RETRY_ON_KEYWORDS : GRPC_RETRY_ON_CODES);
    return `expected ${valid} (${setTo}), got ${got}${hint}`;
  }
  const hint =
    typeof token === 'number' && protocol === 'http' && HTTP_STATUS.test(String(token))
      ? ` (did you mean "${token}"?)`
      : '';
  return `expected ${valid} (${setTo}), got ${got}${hint}`;
}
