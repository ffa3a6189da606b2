/**
 * The `retry.retryOn` vocabulary of each protocol, and the check of one token against a service's
 * protocol. A token of the other protocol is never silently ignored: an HTTP classifier has no use
 * for `UNAVAILABLE`, so a gRPC name in an HTTP service is almost always a service declared with
 * the wrong protocol, and the error says so.
 */
import { GRPC_STATUS_NAMES } from '../inbound/grpc-status.js';
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
export const GRPC_RETRY_ON_CODES: readonly string[] = GRPC_STATUS_NAMES.slice(1);

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

/** Where a `retryOn` list applies: the protocols its tokens may belong to, and how to name that in a message. */
export interface RetryOnScope {
  /** The protocols the list serves; undefined when the service's own `protocol` is invalid (either vocabulary passes). */
  protocols: readonly ServiceProtocol[] | undefined;
  /** Names the scope, e.g. `service "users" has protocol "http"`. */
  says: string;
  /** What to do with a token of `other` protocol here, e.g. `set protocol: "grpc" if the service speaks gRPC`. */
  fix(other: ServiceProtocol): string;
}

/** The scope of a service's own `retry.retryOn`. */
export function serviceRetryOnScope(service: string, protocols: readonly ServiceProtocol[] | undefined): RetryOnScope {
  const shown =
    protocols === undefined
      ? ''
      : protocols.length === 1
        ? `"${protocols[0]}"`
        : `[${protocols.map((p) => `"${p}"`).join(', ')}]`;
  return {
    protocols,
    says: `service "${service}" has protocol ${shown}`,
    fix: (other) =>
      `set protocol: "${other}" if the service speaks ${other === 'grpc' ? 'gRPC' : 'HTTP'}` +
      ` (or protocol: ["http", "grpc"] if it speaks both)`,
  };
}

/** The scope of `methods[key].retry.retryOn`: gRPC status names only, whatever else the service speaks. */
export function methodRetryOnScope(service: string, key: string): RetryOnScope {
  return {
    protocols: ['grpc'],
    says: `methods[${JSON.stringify(key)}] applies to gRPC calls only`,
    fix: () => `HTTP retry conditions belong in services.${service}.retry.retryOn`,
  };
}

/**
 * The issue message for a `retryOn` item that is not a valid token of its scope's protocols
 * (undefined when it is valid: a token of any listed protocol is). With no protocols (the
 * service's protocol is itself invalid) either vocabulary passes.
 */
export function retryOnProblem(token: unknown, scope: RetryOnScope, got: string): string | undefined {
  const protocols = scope.protocols;
  if (typeof token === 'string') {
    if (protocols === undefined) {
      if (isRetryOnToken(token, 'http') || isRetryOnToken(token, 'grpc')) return undefined;
    } else {
      for (const p of protocols) if (isRetryOnToken(token, p)) return undefined;
    }
  }
  if (protocols === undefined) {
    return `expected ${HTTP_VALID} (HTTP), or ${GRPC_VALID} (gRPC), got ${got}`;
  }
  const http = protocols.includes('http');
  const grpc = protocols.includes('grpc');
  const valid = http && grpc ? `${HTTP_VALID} (HTTP), or ${GRPC_VALID} (gRPC)` : http ? HTTP_VALID : GRPC_VALID;
  const setTo = scope.says;
  if (typeof token === 'string') {
    const upper = token.toUpperCase();
    if (grpc && upper === 'OK') {
      return `OK is a success and is never retried; expected ${valid}`;
    }
    if (!grpc && GRPC_BY_UPPER.has(upper)) {
      return `${got} is a gRPC status, but ${setTo}; expected ${valid}, or ${scope.fix('grpc')}`;
    }
    if (!http && (HTTP_BY_UPPER.has(upper) || HTTP_STATUS.test(token) || upper === '5XX')) {
      return `${got} is an HTTP retry condition, but ${setTo}; expected ${valid}, or ${scope.fix('http')}`;
    }
    const candidates =
      http && grpc
        ? [...HTTP_RETRY_ON_KEYWORDS, ...GRPC_RETRY_ON_CODES]
        : http
          ? HTTP_RETRY_ON_KEYWORDS
          : GRPC_RETRY_ON_CODES;
    const hint = didYouMean(token, candidates);
    return `expected ${valid} (${setTo}), got ${got}${hint}`;
  }
  const hint =
    typeof token === 'number' && http && HTTP_STATUS.test(String(token)) ? ` (did you mean "${token}"?)` : '';
  return `expected ${valid} (${setTo}), got ${got}${hint}`;
}

/**
 * The tokens of `list` a classifier of protocol `name` takes: for the mesh's own protocols only
 * their own tokens (undefined, the protocol's default, when none is listed); any other protocol
 * (tests, extensions) gets the whole list.
 */
export function tokensFor(list: readonly string[] | undefined, name: string): string[] | undefined {
  if (list === undefined) return undefined;
  if (name !== 'http' && name !== 'grpc') return [...list];
  const own = list.filter((t) => isRetryOnToken(t, name));
  return own.length === 0 ? undefined : own;
}
