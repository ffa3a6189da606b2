/**
 * Every default and bound of the config format, in one place: the schema (`schema.ts`) states
 * them for editors and the JSON Schema, the validator (`validate.ts`) fills them in.
 */
import type { LoadBalancerName } from '../balancer/types.js';
import type { ServiceProtocol } from './retry-on.js';

/**
 * Longest duration a Node timer honours, ms (2^31 − 1, about 24.8 days). `setTimeout` turns a
 * longer delay into 1 ms, so every duration in the config is capped here.
 */
export const MAX_DURATION_MS = 2_147_483_647;

/**
 * Largest breaker backoff, ms. The open time gets ±20% jitter (`jitteredExponential`) before it
 * becomes opossum's `setTimeout`, so the cap leaves room for the +20%.
 */
export const MAX_BREAKER_BACKOFF_MS = Math.floor(MAX_DURATION_MS / 1.2);

/**
 * Largest endpoint or backend weight. Keeps the sum of the weights of a full list
 * (100 000 × 1 000 000) an exact integer for the weighted pickers.
 */
export const MAX_WEIGHT = 1_000_000;

/** Longest `timeout.requestMs` (and so `perTryMs`): one hour. */
export const MAX_REQUEST_MS = 3_600_000;

/** Shortest DNS re-resolution interval, ms: faster polling only loads the resolver. */
export const MIN_DNS_REFRESH_MS = 1_000;

/** The record types a `dns` service can resolve. */
export const DNS_RECORD_TYPES = ['A', 'AAAA', 'SRV'] as const;
export type DnsRecordType = (typeof DNS_RECORD_TYPES)[number];

export const LOAD_BALANCERS: readonly LoadBalancerName[] = [
  'p2c-ewma',
  'least-request',
  'round-robin',
  'random',
  'ring-hash',
];

/** Every default of the config format, in one place (also the source of the config reference). */
export const DEFAULTS = deepFreeze({
  endpoint: { weight: 1 },
  protocol: 'http' as ServiceProtocol,
  loadBalancer: 'p2c-ewma' as LoadBalancerName,
  ewmaDecayMs: 10_000,
  dns: { refreshMs: 30_000 },
  retry: {
    maxAttempts: 3,
    backoff: { baseMs: 25, maxMs: 250 },
    budget: { ratio: 0.2, minPerSecond: 10, ttlMs: 10_000 },
    /** undefined: the protocol's own default (HTTP: connect-failure, reset, timeout, gateway-error; gRPC: UNAVAILABLE). */
    retryOn: undefined as string[] | undefined,
    nonIdempotent: false,
  },
  timeout: { requestMs: 15_000, perTryMs: undefined as number | undefined },
  circuitBreaker: {
    enabled: true,
    consecutiveFailures: 7,
    errorRatePercent: 50,
    minRequests: 20,
    windowMs: 10_000,
    backoff: { baseMs: 1_000, maxMs: 60_000 },
    maxPending: 1_024,
    maxRequests: 1_024,
  },
  outlierDetection: {
    enabled: true,
    consecutiveFailures: 5,
    intervalMs: 10_000,
    baseEjectionMs: 30_000,
    maxEjectionMs: 300_000,
    maxEjectionPercent: 50,
    successRate: { minimumHosts: 5, requestVolume: 100, stdevFactor: 1_900, enforcementPercent: 100 },
  },
  route: { backendWeight: 1 },
});

type DeepReadonly<T> = T extends object ? { readonly [K in keyof T]: DeepReadonly<T[K]> } : T;

function deepFreeze<T>(value: T): DeepReadonly<T> {
  if (typeof value === 'object' && value !== null) {
    for (const v of Object.values(value)) deepFreeze(v);
    Object.freeze(value);
  }
  return value as DeepReadonly<T>;
}
