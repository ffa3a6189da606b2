import { closeMatches } from './util/suggest.js';

/** Base class of every error meshlet throws. `code` is stable; match on it, not on messages. */
export class MeshError extends Error {
  readonly code: string;
  constructor(code: string, message: string, options?: { cause?: unknown }) {
    super(message, options);
    this.code = code;
    this.name = new.target.name;
  }
}

/** Invalid config. `path` names the config key (e.g. `services.users.retry.maxAttempts`). */
export class MeshConfigError extends MeshError {
  readonly path: string;
  readonly issues: ReadonlyArray<{ path: string; message: string }>;
  constructor(issues: ReadonlyArray<{ path: string; message: string }>) {
    const first = issues[0] ?? { path: '', message: 'invalid config' };
    const more =
      issues.length > 1
        ? ` (and ${issues.length - 1} more: ${issues
            .slice(1)
            .map((i) => `${i.path}: ${i.message}`)
            .join('; ')})`
        : '';
    super('MESHLET_ERR_CONFIG', `${first.path}: ${first.message}${more}`);
    this.path = first.path;
    this.issues = issues;
  }
}

/** A call named a service (or, in strict mode, a host) the mesh has no config for. */
export class UnknownServiceError extends MeshError {
  readonly service: string;
  /** Configured services whose names are close to `service` (typos). */
  readonly suggestions: readonly string[];
  constructor(service: string, known: Iterable<string>, detail?: string) {
    const list = [...known];
    const close = closeMatches(service, list);
    const hint = close.length > 0 ? `did you mean ${close.map((n) => `"${n}"`).join(' or ')}? ` : '';
    super(
      'MESHLET_ERR_UNKNOWN_SERVICE',
      `unknown service "${service}"${detail ? ` (${detail})` : ''}: ${hint}add it under services["${service}"] in the mesh config ` +
        `(known: ${list.length > 20 ? `${list.slice(0, 20).join(', ')}, … ${list.length - 20} more` : list.join(', ') || 'none'})`,
    );
    this.service = service;
    this.suggestions = close;
  }
}

/**
 * The caller's own request is at fault (a header or path undici refuses, a request body
 * stream that errored or stalled, a URL the mesh cannot route). Never counted against an
 * endpoint. `cause` is the underlying error.
 */
export class InvalidRequestError extends MeshError {
  readonly service: string;
  constructor(service: string, what: string, cause?: unknown) {
    super(
      'MESHLET_ERR_INVALID_REQUEST',
      `service "${service}": ${what}${cause !== undefined ? ` (${describe(cause)})` : ''}; ` +
        `this is the request's fault, not the upstream's: fix the request`,
      cause !== undefined ? { cause } : undefined,
    );
    this.service = service;
  }
}

/** A request the mesh cannot carry (upgrade, CONNECT, https to a mesh service). */
export class UnsupportedError extends MeshError {
  readonly service: string;
  constructor(service: string, what: string) {
    super('MESHLET_ERR_UNSUPPORTED', `service "${service}": ${what}`);
    this.service = service;
  }
}

/** The service has no endpoints at all. */
export class NoEndpointsError extends MeshError {
  readonly service: string;
  constructor(service: string) {
    super(
      'MESHLET_ERR_NO_ENDPOINTS',
      `service "${service}" has no endpoints: set services.${service}.endpoints or check its discovery source`,
    );
    this.service = service;
  }
}

/** Every endpoint of the service is ejected or has its breaker open. */
export class NoHealthyEndpointsError extends MeshError {
  readonly service: string;
  readonly total: number;
  readonly ejected: number;
  readonly open: number;
  readonly halfOpen: number;
  /** The most recent failure among the endpoints (what took them out), when one is known. */
  readonly lastFailure: { endpoint: string; reason: string } | undefined;
  constructor(
    service: string,
    counts: { total: number; ejected: number; open: number; halfOpen: number },
    lastFailure?: { endpoint: string; reason: string },
  ) {
    super(
      'MESHLET_ERR_NO_HEALTHY_ENDPOINTS',
      `service "${service}": no healthy endpoint among ${counts.total} (${counts.ejected} ejected by outlier detection, ` +
        `${counts.open} with an open circuit breaker, ${counts.halfOpen} half-open awaiting a probe); ` +
        `the upstream is failing: check its health, or mesh.stats().services["${service}"].endpoints` +
        (lastFailure === undefined ? '' : `. The last failure, on ${lastFailure.endpoint}: ${lastFailure.reason}`),
    );
    this.lastFailure = lastFailure;
    this.service = service;
    this.total = counts.total;
    this.ejected = counts.ejected;
    this.open = counts.open;
    this.halfOpen = counts.halfOpen;
  }
}

/** The picked endpoint's breaker refused the attempt (e.g. its half-open probe is already out). */
export class CircuitOpenError extends MeshError {
  readonly service: string;
  readonly endpoint: string;
  constructor(service: string, endpoint: string) {
    super(
      'MESHLET_ERR_CIRCUIT_OPEN',
      `service "${service}": circuit breaker of endpoint ${endpoint} is open; the call was not sent there ` +
        `(it is retried on another endpoint when the retry policy allows); if every endpoint trips, check the upstream's health`,
    );
    this.service = service;
    this.endpoint = endpoint;
  }
}

/** The call's deadline passed before a response. */
/** Whose deadline a call ran out of: the service's `timeout.requestMs`, the inbound request's, or the caller's own. */
export type DeadlineSource = 'service' | 'inbound' | 'caller';

export class DeadlineExceededError extends MeshError {
  readonly service: string;
  readonly timeoutMs: number;
  readonly attempts: number;
  readonly endpoint: string | undefined;
  /** True when the deadline was the inbound request's (its caller's `meshlet-timeout`), not this service's own. */
  readonly inherited: boolean;
  /** Whose deadline it was: `service` (`timeout.requestMs`), `inbound` (inherited), or `caller` (the call's own, e.g. a gRPC deadline). */
  readonly source: DeadlineSource;
  /** `source` true is `inbound`, false `service` (the older boolean form). */
  constructor(
    service: string,
    timeoutMs: number,
    attempts: number,
    endpoint: string | undefined,
    source: DeadlineSource | boolean = 'service',
    /** Config path of the `requestMs` the deadline came from, when not the service's own (a gRPC method's). */
    requestMsPath?: string,
  ) {
    const ms = Math.round(timeoutMs);
    const setting = requestMsPath ?? `services.${service}.timeout.requestMs`;
    const from: DeadlineSource = source === true ? 'inbound' : source === false ? 'service' : source;
    const unsent = attempts === 0 && endpoint === undefined && ms <= 0;
    const after =
      `exceeded after ${attempts} attempt(s)` +
      (endpoint ? `, the last on ${endpoint}` : ', before any attempt was sent');
    super(
      'MESHLET_ERR_DEADLINE',
      from === 'inbound'
        ? unsent
          ? `service "${service}": the deadline of the inbound request this call was made for had already passed, ` +
            `so the call was not sent; the caller's time budget (its meshlet-timeout) ran out before this handler ` +
            `got here: give the caller a larger timeout, or do less before this call`
          : `service "${service}": deadline of ${ms} ms, inherited from the inbound request this call was made for ` +
            `(its caller's meshlet-timeout), ${after}` +
            `; the caller's time budget ran out: give the caller a larger timeout, or make this handler faster`
        : from === 'caller'
          ? unsent
            ? `service "${service}": the caller's own deadline for this call had already passed, so the call was not ` +
              `sent; give the call a later deadline (or none, to use ${setting})`
            : `service "${service}": deadline of ${ms} ms, the caller's own deadline for this call ` +
              `(shorter than ${setting}), ${after}` +
              `; give the call a later deadline if the upstream is legitimately slow`
          : `service "${service}": deadline of ${ms} ms ${after}` +
            `; raise ${setting} if the upstream is legitimately slow`,
    );
    this.inherited = from === 'inbound';
    this.source = from;
    this.service = service;
    this.timeoutMs = timeoutMs;
    this.attempts = attempts;
    this.endpoint = endpoint;
  }
}

/** Concurrency limits are full: `maxRequests` in flight and `maxPending` queued. */
export class OverloadedError extends MeshError {
  readonly service: string;
  constructor(service: string, maxRequests: number, maxPending: number) {
    super(
      'MESHLET_ERR_OVERLOADED',
      `service "${service}": overloaded, ${maxRequests} calls in flight and ${maxPending} queued; ` +
        `shed load or raise services.${service}.circuitBreaker.maxRequests / maxPending`,
    );
    this.service = service;
  }
}

/** An attempt failed with an error and the retry budget refused a retry. `cause` is the attempt's error. */
export class RetryBudgetExhaustedError extends MeshError {
  readonly service: string;
  readonly endpoint: string | undefined;
  constructor(service: string, attempts: number, endpoint: string | undefined, cause: unknown) {
    super(
      'MESHLET_ERR_BUDGET_EXHAUSTED',
      `service "${service}": attempt ${attempts} failed on ${endpoint ?? 'no endpoint'} (${describe(cause)}) and the retry ` +
        `budget is exhausted, so it was not retried; many calls are failing: check the upstream`,
      { cause },
    );
    this.service = service;
    this.endpoint = endpoint;
  }
}

/** Every allowed attempt failed with an error. `cause` is the last attempt's error. */
export class UpstreamError extends MeshError {
  readonly service: string;
  readonly endpoint: string | undefined;
  readonly attempts: number;
  constructor(service: string, attempts: number, endpoint: string | undefined, cause: unknown) {
    super(
      'MESHLET_ERR_UPSTREAM',
      `service "${service}": ${attempts} attempt(s) failed, the last on ${endpoint ?? 'no endpoint'}: ${describe(cause)}; ` +
        `check that the upstream is up and reachable (mesh.stats().services["${service}"].endpoints shows each endpoint's failures), ` +
        `or raise services["${service}"].retry.maxAttempts if failures are transient`,
      { cause },
    );
    this.service = service;
    this.endpoint = endpoint;
    this.attempts = attempts;
  }
}

/** The mesh was closed. */
export class MeshClosedError extends MeshError {
  constructor(service?: string) {
    super(
      'MESHLET_ERR_CLOSED',
      `the mesh is closed${service ? ` (call to service "${service}")` : ''}: calls made after mesh.close(), ` +
        `or still in flight when its grace period ran out, are refused; create a new mesh if the process goes on`,
    );
  }
}

/**
 * The reason outbound calls are cut with when the inbound request they were made for loses its
 * caller (the connection closed before the answer): inbound adapters abort their context's signal
 * with it. Counted as `cancelled`, never as a failure of the service called.
 */
export class CallerGoneError extends MeshError {
  /** The inbound route whose caller left, when the adapter knows it. */
  readonly route: string | undefined;
  constructor(route?: string) {
    super(
      'MESHLET_ERR_CALLER_GONE',
      `the inbound request${route ? ` to ${route}` : ''} this call was made for lost its caller (the connection closed ` +
        `before it was answered), so the call was cancelled; nothing to fix here unless callers give up too early ` +
        `(look at their timeouts)`,
    );
    this.route = route;
  }
}

/** Abort reason of an attempt cut by `timeout.perTryMs`; classified retryable by protocols. */
export class PerTryTimeoutError extends MeshError {
  /** `perTryMsPath`: the config path of the setting, when not the service's own (a gRPC method's). */
  constructor(service: string, endpoint: string, ms: number, perTryMsPath?: string) {
    super(
      'MESHLET_ERR_PER_TRY_TIMEOUT',
      `service "${service}": attempt on ${endpoint} timed out after ${ms} ms; ` +
        `raise ${perTryMsPath ?? `services["${service}"].timeout.perTryMs`} if the upstream is legitimately slow`,
    );
  }
}

/**
 * A DNS lookup for a service's `dns` config failed, or answered with no usable address. The
 * service keeps its last good endpoint set (`kept` of them). `resolverCode` is Node's resolver
 * code (`ENOTFOUND` = NXDOMAIN, `ENODATA` = no record of that type, `ESERVFAIL`, `ETIMEOUT`, …).
 */
export class DnsResolutionError extends MeshError {
  readonly service: string;
  readonly dnsName: string;
  readonly recordType: 'A' | 'AAAA' | 'SRV';
  readonly resolverCode: string;
  /** Endpoints the service keeps serving from the last good answer (0 before the first one). */
  readonly kept: number;
  constructor(
    service: string,
    dnsName: string,
    recordType: 'A' | 'AAAA' | 'SRV',
    resolverCode: string,
    detail: string,
    kept: number,
    cause?: unknown,
  ) {
    const next =
      resolverCode === 'ENOTFOUND' || resolverCode === 'ENODATA' || resolverCode === 'EBADNAME'
        ? `check services["${service}"].dns.name and .type (and that the records exist)`
        : `check that the DNS server in /etc/resolv.conf is up and answers for ${dnsName}`;
    super(
      'MESHLET_ERR_DNS',
      `service "${service}": DNS ${recordType} lookup of "${dnsName}" failed (${resolverCode}: ${detail}); ` +
        (kept > 0
          ? `keeping the last good set of ${kept} endpoint(s)`
          : 'the service has no endpoints until a lookup succeeds') +
        `; retried automatically; ${next}`,
      cause !== undefined ? { cause } : undefined,
    );
    this.service = service;
    this.dnsName = dnsName;
    this.recordType = recordType;
    this.resolverCode = resolverCode;
    this.kept = kept;
  }
}

function describe(err: unknown): string {
  if (err instanceof Error) {
    const code = (err as { code?: unknown }).code;
    return typeof code === 'string' && !err.message.includes(code) ? `${code}: ${err.message}` : err.message;
  }
  return String(err);
}

/**
 * The mesh has discovery sources and none of them (nor a disk cache) delivered a config
 * within the start-up wait (`startupTimeoutMs`, default 10 s), so a call to a name that may be a
 * mesh service could not be routed. Never thrown once the mesh has a config.
 */
export class NotReadyError extends MeshError {
  readonly service: string | undefined;
  /** What each source last saw (`DiscoverySource.describe()`). */
  readonly sources: readonly string[];
  constructor(service: string | undefined, waitedMs: number, sources: readonly string[]) {
    super(
      'MESHLET_ERR_NOT_READY',
      `the mesh has no config yet${service ? ` for a call to "${service}"` : ''} after waiting ${waitedMs} ms ` +
        `(${sources.join('; ') || 'no sources'}): check that the control plane is reachable from this process, ` +
        `give it a cacheDir so the process can start from the last good config, or raise startupTimeoutMs`,
    );
    this.service = service;
    this.sources = sources;
  }
}
