import type { LoadBalancerName } from '../balancer/types.js';
import type { DnsRecordType } from './defaults.js';
import type { ServiceProtocol } from './retry-on.js';

export type { DnsRecordType, ServiceProtocol };

/**
 * Input config, as written by users, in files (JSON/YAML) and by the control server.
 * Every field is optional except where noted; `validateMeshConfig` fills the defaults
 * (listed on each field) and rejects unknown keys. Every duration (`*Ms`) is a whole number of
 * milliseconds, at most 2 147 483 647 (the longest delay a Node timer honours).
 *
 * These types are checked at compile time to be exactly those of the schema (`schema.ts`), which
 * is also published as JSON Schema (`@meshlet/core/schema/mesh.schema.json`).
 */
export interface MeshConfig {
  services: Record<string, ServiceConfig>;
}

/** `'host:port'` or an object with weight, zone and metadata. */
export type EndpointConfig =
  | string
  | {
      address: string;
      /** Relative weight, integer from 1 to 1 000 000. Default 1. */
      weight?: number;
      zone?: string;
      metadata?: Record<string, string>;
    };

export interface ServiceConfig {
  /** Endpoints of this service. Default `[]` (a service that only routes elsewhere, or uses `dns`). */
  endpoints?: EndpointConfig[];
  /**
   * What the service speaks: `'http'`, `'grpc'`, or both as `['http', 'grpc']` (e.g. REST and gRPC
   * on one port set; non-empty, no repeats). Decides which `retry.retryOn` tokens are valid, and a
   * mesh refuses calls of a protocol the service does not speak. Default `'http'`.
   */
  protocol?: ServiceProtocol | ServiceProtocol[];
  /** Default `'p2c-ewma'`. */
  loadBalancer?: LoadBalancerName;
  /** Request key hashed by `ring-hash`: one header's value, or the request path. */
  hashKey?: { header: string } | { path: true };
  /** Peak-EWMA decay in ms for `p2c-ewma`. Default 10 000. */
  ewmaDecayMs?: number;
  retry?: RetryConfig;
  timeout?: TimeoutConfig;
  circuitBreaker?: CircuitBreakerConfig;
  outlierDetection?: OutlierDetectionConfig;
  routes?: RouteConfig[];
  /** Endpoints from DNS, re-resolved on an interval, instead of `endpoints` (not both). */
  dns?: DnsConfig;
  /**
   * gRPC services only: per-method overrides, keyed `package.Service/Method` or
   * `package.Service/*`. A call uses its exact method's entry, else its service's `/*` entry,
   * else the service's own `retry` and `timeout`; each field given overrides the service's.
   */
  methods?: Record<string, MethodPolicyConfig>;
}

/** One gRPC method's (or a gRPC service's `/*`) overrides of the service's policies. */
export interface MethodPolicyConfig {
  retry?: {
    /** Attempts including the first, 1 to 10. Default: the service's. */
    maxAttempts?: number;
    /** Default: the service's. */
    backoff?: { baseMs?: number; maxMs?: number };
    /** gRPC status names retried. Default: the service's `retry.retryOn` (its gRPC names), else `UNAVAILABLE`. */
    retryOn?: string[];
  };
  timeout?: {
    /** Deadline of the whole call, ms. Default: the service's. */
    requestMs?: number;
    /** Timeout of one attempt, ms, at most requestMs. Default: the service's. */
    perTryMs?: number;
  };
}

/**
 * DNS discovery of a service's endpoints. A and AAAA records give addresses (the port comes from
 * `port`, required); SRV records give host, port and weight each (`port` is not allowed).
 */
export interface DnsConfig {
  /** The name to resolve, e.g. `users.internal` or `_http._tcp.users.internal` (SRV). */
  name: string;
  /** Port of every resolved address, 1 to 65535: required for A/AAAA, not allowed for SRV. */
  port?: number;
  /** Record type. */
  type: DnsRecordType;
  /** Re-resolution interval, ms (sooner when a record's TTL ends), 1000 to 2^31 − 1. Default 30 000. */
  refreshMs?: number;
}

export interface RetryConfig {
  /** Attempts including the first, integer >= 1. Default 3. `1` disables retries. */
  maxAttempts?: number;
  /** Full-jitter exponential backoff. Default `{ baseMs: 25, maxMs: 250 }`. */
  backoff?: { baseMs?: number; maxMs?: number };
  /** Retry budget shared by all callers of the service in this process. */
  budget?: {
    /** Retries allowed per request deposited. Default 0.2. */
    ratio?: number;
    /** Retries always allowed per second. Default 10. */
    minPerSecond?: number;
    /** How long a deposit counts, ms. Default 10 000. */
    ttlMs?: number;
  };
  /**
   * What is retried. HTTP: `connect-failure`, `reset`, `timeout`, `gateway-error`
   * (502/503/504), `5xx`, or a status code such as `'503'`. gRPC: status code names
   * (`UNAVAILABLE`, …). Default: the protocol's (HTTP `connect-failure, reset, timeout,
   * gateway-error`; gRPC `UNAVAILABLE`).
   */
  retryOn?: string[];
  /** Retry non-idempotent requests (POST, PATCH) too. Default false. */
  nonIdempotent?: boolean;
}

export interface TimeoutConfig {
  /** Deadline for the whole call, all attempts and backoff included. Default 15 000. */
  requestMs?: number;
  /** Timeout of one attempt. Default: none (only the request deadline). */
  perTryMs?: number;
}

export interface CircuitBreakerConfig {
  /** Default true. */
  enabled?: boolean;
  /** Open an endpoint's breaker after this many consecutive failures. Default 7. */
  consecutiveFailures?: number;
  /** Also open when the failure % over `windowMs` exceeds this (0 disables). Default 50. */
  errorRatePercent?: number;
  /** Minimum attempts in the window before the error rate counts. Default 20. */
  minRequests?: number;
  /** Rolling window of the error rate, ms. Default 10 000. */
  windowMs?: number;
  /** Open time before the half-open probe: jittered exponential. Default `{ baseMs: 1000, maxMs: 60000 }`. */
  backoff?: { baseMs?: number; maxMs?: number };
  /** Calls waiting for a concurrency slot before new ones are rejected. Default 1024. */
  maxPending?: number;
  /** Calls in flight for the whole service. Default 1024. */
  maxRequests?: number;
}

export interface OutlierDetectionConfig {
  /** Default true. */
  enabled?: boolean;
  /** Eject after this many consecutive failures. Default 5. */
  consecutiveFailures?: number;
  /** How often success rates are evaluated and ejections expire, ms. Default 10 000. */
  intervalMs?: number;
  /** Ejection time = baseEjectionMs × times ejected, ms. Default 30 000. */
  baseEjectionMs?: number;
  /** Cap on one ejection's time, ms. Default 300 000. */
  maxEjectionMs?: number;
  /** At most this % of endpoints ejected at once (at least one always kept). Default 50. */
  maxEjectionPercent?: number;
  /** gRPC A50 success-rate ejection; `false` disables. */
  successRate?:
    | false
    | {
        /** Minimum endpoints with enough volume. Default 5. */
        minimumHosts?: number;
        /** Minimum requests per endpoint per interval. Default 100. */
        requestVolume?: number;
        /** Eject below mean − stdev × stdevFactor / 1000. Default 1900. */
        stdevFactor?: number;
        /** Chance (%) an outlier is actually ejected. Default 100. */
        enforcementPercent?: number;
      };
}

/** A header matcher: a string is an exact match. */
export type HeaderMatch = string | { exact: string } | { prefix: string } | { regex: string } | { present: boolean };

export interface RouteConfig {
  /** Name used in telemetry. Default `route-<index>`. */
  name?: string;
  /** All given conditions must hold. An empty match matches everything. */
  match?: {
    path?: string;
    pathPrefix?: string;
    /** Upper-case method, e.g. `GET`. */
    method?: string;
    /** Header name (any case) to matcher. */
    headers?: Record<string, HeaderMatch>;
  };
  /** Weighted backend services (integer weights from 0 to 1 000 000, at least one > 0). */
  backends: Array<{ service: string; weight?: number }>;
}

// ---------------------------------------------------------------------------
// Resolved config: every default filled in, values checked. What the mesh runs on.

export interface ResolvedEndpoint {
  address: string;
  host: string;
  port: number;
  weight: number;
  zone: string | undefined;
  /** A null-prototype object: a lookup of a missing key never reaches `Object.prototype`. */
  metadata: Readonly<Record<string, string>>;
}

export interface ResolvedHeaderMatch {
  /** Lower-cased header name. */
  name: string;
  kind: 'exact' | 'prefix' | 'regex' | 'present';
  value: string;
  regex: RegExp | undefined;
  /** For `present`: whether the header must be present (true) or absent (false). */
  present: boolean;
}

export interface ResolvedRoute {
  name: string;
  path: string | undefined;
  pathPrefix: string | undefined;
  method: string | undefined;
  headers: ResolvedHeaderMatch[];
  backends: Array<{ service: string; weight: number }>;
  /** Sum of backend weights (> 0). */
  totalWeight: number;
}

export interface ResolvedDnsConfig {
  name: string;
  /** undefined for SRV (each record carries its port). */
  port: number | undefined;
  type: DnsRecordType;
  refreshMs: number;
}

/**
 * The policies one call runs under: the service's own, or a gRPC method's (`methods`) with the
 * service's filled in where the method sets nothing. Resolved once per config.
 */
export interface ResolvedCallPolicy {
  /** The `methods` key this policy comes from; undefined for the service's own. */
  key: string | undefined;
  maxAttempts: number;
  backoff: { baseMs: number; maxMs: number };
  /** undefined: the protocol's default. */
  retryOn: string[] | undefined;
  nonIdempotent: boolean;
  requestMs: number;
  perTryMs: number | undefined;
  /** Config path of `requestMs` and of `perTryMs`, for error messages (e.g. `services.rg.timeout.requestMs`). */
  requestMsPath: string;
  perTryMsPath: string;
}

export interface ResolvedServiceConfig {
  name: string;
  /** As written: one protocol, or the list. Prefer `protocols`. */
  protocol: ServiceProtocol | readonly ServiceProtocol[];
  /** The protocols the service speaks (non-empty, no repeats). */
  protocols: readonly ServiceProtocol[];
  /** `[]` when `dns` is set: the DNS watcher supplies the endpoints. */
  endpoints: ResolvedEndpoint[];
  /** DNS discovery, or undefined for a service with static endpoints. */
  dns: ResolvedDnsConfig | undefined;
  loadBalancer: LoadBalancerName;
  hashKey: { header: string } | { path: true } | undefined;
  ewmaDecayMs: number;
  retry: {
    maxAttempts: number;
    backoff: { baseMs: number; maxMs: number };
    budget: { ratio: number; minPerSecond: number; ttlMs: number };
    /** undefined: the protocol's default. */
    retryOn: string[] | undefined;
    nonIdempotent: boolean;
  };
  timeout: { requestMs: number; perTryMs: number | undefined };
  circuitBreaker: {
    enabled: boolean;
    consecutiveFailures: number;
    errorRatePercent: number;
    minRequests: number;
    windowMs: number;
    backoff: { baseMs: number; maxMs: number };
    maxPending: number;
    maxRequests: number;
  };
  outlierDetection: {
    enabled: boolean;
    consecutiveFailures: number;
    intervalMs: number;
    baseEjectionMs: number;
    maxEjectionMs: number;
    maxEjectionPercent: number;
    successRate:
      false | { minimumHosts: number; requestVolume: number; stdevFactor: number; enforcementPercent: number };
  };
  routes: ResolvedRoute[];
  /** The service's own call policy (`retry` and `timeout` as one call reads them). */
  policy: ResolvedCallPolicy;
  /**
   * Per-method policies (`methods`), keyed as written (`package.Service/Method`,
   * `package.Service/*`), each complete; undefined when the service has none.
   */
  methods: ReadonlyMap<string, ResolvedCallPolicy> | undefined;
}

export interface ResolvedMeshConfig {
  services: Map<string, ResolvedServiceConfig>;
}
