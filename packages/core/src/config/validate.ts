/**
 * Config validation: turns untrusted input (user code, files, the control server) into a
 * `ResolvedMeshConfig` with every default filled in, or throws one `MeshConfigError` that lists
 * every issue at once, so a user fixes a config in one round instead of one error per run.
 *
 * Hand-written because core may not depend on a schema library. It runs on config change only,
 * so clarity wins over speed, but every pass stays linear in the size of the input.
 * The output never shares an object with the input: a caller mutating its config afterwards
 * cannot change a running mesh. Nothing is frozen, because the mesh may keep and extend it.
 */
import { isIPv4, isIPv6 } from 'node:net';
import type { LoadBalancerName } from '../balancer/types.js';
import { MeshConfigError } from '../errors.js';
import { didYouMean } from '../util/suggest.js';
import type {
  ResolvedEndpoint,
  ResolvedHeaderMatch,
  ResolvedMeshConfig,
  ResolvedRoute,
  ResolvedServiceConfig,
} from './types.js';

/** Every default of the config format, in one place (also the source of the config reference). */
export const DEFAULTS = deepFreeze({
  endpoint: { weight: 1 },
  loadBalancer: 'p2c-ewma' as LoadBalancerName,
  ewmaDecayMs: 10_000,
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

/** Path reported for issues about the config object itself. */
const ROOT = '(root)';

const LOAD_BALANCERS: readonly LoadBalancerName[] = ['p2c-ewma', 'least-request', 'round-robin', 'random', 'ring-hash'];

const RETRY_ON_KEYWORDS = ['connect-failure', 'reset', 'timeout', 'gateway-error', '5xx'];
const GRPC_STATUS_NAMES = [
  'OK',
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
const RETRY_ON_TOKENS = [...RETRY_ON_KEYWORDS, ...GRPC_STATUS_NAMES];

const MESH_KEYS = ['services'];
const SERVICE_KEYS = [
  'endpoints',
  'loadBalancer',
  'hashKey',
  'ewmaDecayMs',
  'retry',
  'timeout',
  'circuitBreaker',
  'outlierDetection',
  'routes',
];
const ENDPOINT_KEYS = ['address', 'weight', 'zone', 'metadata'];
const HASH_KEY_KEYS = ['header', 'path'];
const RETRY_KEYS = ['maxAttempts', 'backoff', 'budget', 'retryOn', 'nonIdempotent'];
const BACKOFF_KEYS = ['baseMs', 'maxMs'];
const BUDGET_KEYS = ['ratio', 'minPerSecond', 'ttlMs'];
const TIMEOUT_KEYS = ['requestMs', 'perTryMs'];
const BREAKER_KEYS = [
  'enabled',
  'consecutiveFailures',
  'errorRatePercent',
  'minRequests',
  'windowMs',
  'backoff',
  'maxPending',
  'maxRequests',
];
const OUTLIER_KEYS = [
  'enabled',
  'consecutiveFailures',
  'intervalMs',
  'baseEjectionMs',
  'maxEjectionMs',
  'maxEjectionPercent',
  'successRate',
];
const SUCCESS_RATE_KEYS = ['minimumHosts', 'requestVolume', 'stdevFactor', 'enforcementPercent'];
const ROUTE_KEYS = ['name', 'match', 'backends'];
const MATCH_KEYS = ['path', 'pathPrefix', 'method', 'headers'];
const HEADER_MATCH_KINDS = ['exact', 'prefix', 'regex', 'present'] as const;
const BACKEND_KEYS = ['service', 'weight'];

// Service names become URL hosts (`http://users/`), hence the DNS-like shape.
const SERVICE_NAME = /^[a-z0-9]([a-z0-9.-]*[a-z0-9])?$/;
// RFC 9110 token: what HTTP accepts as a method or a header name.
const HTTP_TOKEN = /^[!#$%&'*+\-.^_`|~0-9A-Za-z]+$/;
const HOST_LABEL = /^[A-Za-z0-9_]([A-Za-z0-9_-]{0,61}[A-Za-z0-9_])?$/;

type Issue = { path: string; message: string };
type Obj = Record<string, unknown>;

/**
 * Validates a whole mesh config and fills in every default.
 * Throws one `MeshConfigError` listing every issue (`err.issues`); `err.path` is the first one's.
 */
export function validateMeshConfig(input: unknown): ResolvedMeshConfig {
  const issues: Issue[] = [];
  const services = new Map<string, ResolvedServiceConfig>();
  if (!isPlainObject(input)) {
    issues.push({ path: ROOT, message: `expected an object like { services: { ... } }, got ${show(input)}` });
    throw new MeshConfigError(issues);
  }
  checkKeys(issues, input, MESH_KEYS, '');
  const raw = input.services;
  if (!isPlainObject(raw)) {
    issues.push({
      path: 'services',
      message: `expected an object mapping service names to service configs, got ${show(raw)}`,
    });
  } else {
    // Every key counts as "defined" for route references; a badly named one is reported on its own.
    const known = new Set(Object.keys(raw));
    for (const name of known) {
      services.set(name, resolveService(issues, name, raw[name], join('services', name), known));
    }
  }
  if (issues.length > 0) throw new MeshConfigError(issues);
  return { services };
}

/**
 * Validates one service's config (e.g. one control-plane resource) and fills in its defaults.
 * `path` prefixes issue paths (default `services.<name>`). Route backends are checked against
 * `knownServices` when given; without it, any well-formed service name is accepted.
 */
export function validateServiceConfig(
  name: string,
  input: unknown,
  path: string = join('services', name),
  knownServices?: ReadonlySet<string>,
): ResolvedServiceConfig {
  const issues: Issue[] = [];
  const resolved = resolveService(issues, name, input, path, knownServices);
  if (issues.length > 0) throw new MeshConfigError(issues);
  return resolved;
}

// ---------------------------------------------------------------------------
// Service

function resolveService(
  issues: Issue[],
  name: string,
  input: unknown,
  path: string,
  known: ReadonlySet<string> | undefined,
): ResolvedServiceConfig {
  checkServiceName(issues, name, path);
  const obj = section(issues, input, path, SERVICE_KEYS, 'an object (the service config)');

  const loadBalancer = readEnum(issues, obj, 'loadBalancer', path, LOAD_BALANCERS, DEFAULTS.loadBalancer);
  const hashKey = resolveHashKey(issues, obj.hashKey, join(path, 'hashKey'));
  if (hashKey !== undefined && loadBalancer !== undefined && loadBalancer !== 'ring-hash') {
    const which = obj.loadBalancer === undefined ? `"${loadBalancer}" (the default)` : `"${loadBalancer}"`;
    issues.push({
      path: join(path, 'hashKey'),
      message: `hashKey only applies to loadBalancer 'ring-hash', got loadBalancer ${which}; set loadBalancer: 'ring-hash' or remove hashKey`,
    });
  }

  return {
    name,
    endpoints: resolveEndpoints(issues, obj.endpoints, join(path, 'endpoints')),
    loadBalancer: loadBalancer ?? DEFAULTS.loadBalancer,
    hashKey,
    ewmaDecayMs: readNumber(issues, obj, 'ewmaDecayMs', path, DEFAULTS.ewmaDecayMs, { min: 0, minExclusive: true }),
    retry: resolveRetry(issues, obj.retry, join(path, 'retry')),
    timeout: resolveTimeout(issues, obj.timeout, join(path, 'timeout')),
    circuitBreaker: resolveCircuitBreaker(issues, obj.circuitBreaker, join(path, 'circuitBreaker')),
    outlierDetection: resolveOutlierDetection(issues, obj.outlierDetection, join(path, 'outlierDetection')),
    routes: resolveRoutes(issues, obj.routes, join(path, 'routes'), known),
  };
}

function checkServiceName(issues: Issue[], name: string, path: string): void {
  const expected =
    'expected a service name of lower-case letters, digits, "." and "-", starting and ending with a letter or digit' +
    ' (it becomes the host in http://<name>/)';
  if (!SERVICE_NAME.test(name)) {
    issues.push({ path, message: `${expected}, got ${show(name)}` });
  } else if (name.length > 253) {
    issues.push({ path, message: `expected a service name of at most 253 characters, got ${name.length}` });
  } else if (name.includes('..')) {
    issues.push({ path, message: `expected a service name without empty labels (".."), got ${show(name)}` });
  } else if (/^\d+$/.test(name.slice(name.lastIndexOf('.') + 1))) {
    // URL parsers read a host whose last label is numeric as an IPv4 address (`http://123/` is 0.0.0.123).
    issues.push({
      path,
      message: `expected a service name whose last label is not all digits (URLs would read it as an IPv4 address), got ${show(name)}`,
    });
  }
}

// ---------------------------------------------------------------------------
// Endpoints

function resolveEndpoints(issues: Issue[], input: unknown, path: string): ResolvedEndpoint[] {
  const out: ResolvedEndpoint[] = [];
  if (input === undefined) return out;
  if (!Array.isArray(input)) {
    issues.push({ path, message: `expected an array of "host:port" strings or endpoint objects, got ${show(input)}` });
    return out;
  }
  const seen = new Map<string, number>();
  input.forEach((item: unknown, i) => {
    const itemPath = `${path}[${i}]`;
    let addressPath = itemPath;
    let address: unknown = item;
    let weight: number = DEFAULTS.endpoint.weight;
    let zone: string | undefined;
    let metadata: Record<string, string> = {};
    if (isPlainObject(item)) {
      checkKeys(issues, item, ENDPOINT_KEYS, itemPath);
      addressPath = join(itemPath, 'address');
      address = item.address;
      weight = readNumber(issues, item, 'weight', itemPath, DEFAULTS.endpoint.weight, { integer: true, min: 1 });
      zone = readOptionalString(issues, item, 'zone', itemPath);
      metadata = resolveStringRecord(issues, item.metadata, join(itemPath, 'metadata'));
    } else if (typeof item !== 'string') {
      issues.push({
        path: itemPath,
        message: `expected a "host:port" string or an object { address, weight?, zone?, metadata? }, got ${show(item)}`,
      });
      return;
    }
    if (typeof address !== 'string') {
      issues.push({ path: addressPath, message: `expected a "host:port" string, got ${show(address)}` });
      return;
    }
    const parsed = parseAddress(address);
    if (typeof parsed === 'string') {
      issues.push({ path: addressPath, message: parsed });
      return;
    }
    const first = seen.get(parsed.address);
    if (first !== undefined) {
      issues.push({
        path: addressPath,
        message: `duplicate endpoint ${show(parsed.address)} (already ${path}[${first}]); list each address once and use weight instead`,
      });
      return;
    }
    seen.set(parsed.address, i);
    out.push({ address: parsed.address, host: parsed.host, port: parsed.port, weight, zone, metadata });
  });
  return out;
}

/** Parses `host:port` / `[v6]:port`; returns the error message when invalid. */
function parseAddress(s: string): { address: string; host: string; port: number } | string {
  const got = `got ${show(s)}`;
  if (s.includes('/') || s.includes('@')) {
    return `expected "host:port" without scheme, credentials or path (e.g. "10.0.0.1:8080"), ${got}`;
  }
  let host: string;
  let portText: string;
  let v6 = false;
  if (s.startsWith('[')) {
    const m = /^\[([^\]]*)\](?::(.*))?$/.exec(s);
    if (m === null || !isIPv6(m[1] ?? '')) {
      return `expected a bracketed IPv6 address and a port, e.g. "[::1]:8080", ${got}`;
    }
    if (m[2] === undefined) return `expected "host:port" (the port is missing), ${got}`;
    host = m[1]!.toLowerCase();
    portText = m[2];
    v6 = true;
  } else {
    const colon = s.lastIndexOf(':');
    if (colon === -1) return `expected "host:port" (the port is missing), ${got}`;
    host = s.slice(0, colon);
    portText = s.slice(colon + 1);
    if (host.includes(':')) return `expected an IPv6 address in brackets, e.g. "[::1]:8080", ${got}`;
    if (!isHost(host)) return `expected a hostname or IPv4 address before ":port", ${got}`;
    host = host.toLowerCase();
  }
  const port = /^\d{1,5}$/.test(portText) ? Number(portText) : NaN;
  if (!(port >= 1 && port <= 65535)) return `expected a port from 1 to 65535 in "host:port", ${got}`;
  return { address: v6 ? `[${host}]:${port}` : `${host}:${port}`, host, port };
}

function isHost(host: string): boolean {
  if (/^[\d.]+$/.test(host)) return isIPv4(host);
  const name = host.endsWith('.') ? host.slice(0, -1) : host; // a fully qualified name may end in "."
  if (name.length === 0 || name.length > 253) return false;
  return name.split('.').every((label) => HOST_LABEL.test(label));
}

// ---------------------------------------------------------------------------
// Load balancing

function resolveHashKey(issues: Issue[], input: unknown, path: string): ResolvedServiceConfig['hashKey'] {
  if (input === undefined) return undefined;
  const expected = 'expected { header: "<name>" } or { path: true }';
  if (!isPlainObject(input)) {
    issues.push({ path, message: `${expected}, got ${show(input)}` });
    return undefined;
  }
  checkKeys(issues, input, HASH_KEY_KEYS, path);
  const hasHeader = input.header !== undefined;
  const hasPath = input.path !== undefined;
  if (hasHeader && hasPath) {
    issues.push({ path, message: `${expected}, not both` });
    return undefined;
  }
  if (hasHeader) {
    const header = input.header;
    if (typeof header !== 'string' || !HTTP_TOKEN.test(header)) {
      issues.push({ path: join(path, 'header'), message: `expected a header name, got ${show(header)}` });
      return undefined;
    }
    return { header: header.toLowerCase() };
  }
  if (hasPath) {
    if (input.path !== true) {
      issues.push({ path: join(path, 'path'), message: `expected true, got ${show(input.path)}` });
      return undefined;
    }
    return { path: true };
  }
  // An object with only unknown keys already has issues; an empty one needs its own.
  if (Object.keys(input).length === 0) issues.push({ path, message: `${expected}, got an empty object` });
  return undefined;
}

// ---------------------------------------------------------------------------
// Retry and timeout

function resolveRetry(issues: Issue[], input: unknown, path: string): ResolvedServiceConfig['retry'] {
  const d = DEFAULTS.retry;
  const obj = section(issues, input, path, RETRY_KEYS);
  const backoffPath = join(path, 'backoff');
  const budgetPath = join(path, 'budget');
  const backoff = section(issues, obj.backoff, backoffPath, BACKOFF_KEYS);
  const budget = section(issues, obj.budget, budgetPath, BUDGET_KEYS);
  return {
    maxAttempts: readNumber(issues, obj, 'maxAttempts', path, d.maxAttempts, { integer: true, min: 1, max: 10 }),
    backoff: readBackoff(issues, backoff, backoffPath, d.backoff, 0, false),
    budget: {
      ratio: readNumber(issues, budget, 'ratio', budgetPath, d.budget.ratio, { min: 0, max: 1000 }),
      minPerSecond: readNumber(issues, budget, 'minPerSecond', budgetPath, d.budget.minPerSecond, { min: 0 }),
      ttlMs: readNumber(issues, budget, 'ttlMs', budgetPath, d.budget.ttlMs, { integer: true, min: 1000, max: 60_000 }),
    },
    retryOn: resolveRetryOn(issues, obj.retryOn, join(path, 'retryOn')),
    nonIdempotent: readBoolean(issues, obj, 'nonIdempotent', path, d.nonIdempotent),
  };
}

/**
 * `maxMs >= baseMs`. When only baseMs is given and it exceeds the default maxMs, maxMs follows it
 * instead of failing on a value the user never wrote.
 */
function readBackoff(
  issues: Issue[],
  obj: Obj,
  path: string,
  d: { readonly baseMs: number; readonly maxMs: number },
  min: number,
  integer: boolean,
): { baseMs: number; maxMs: number } {
  const baseMs = readNumber(issues, obj, 'baseMs', path, d.baseMs, { integer, min });
  const base = Number.isNaN(baseMs) ? min : baseMs;
  const maxMs = readNumber(issues, obj, 'maxMs', path, Math.max(d.maxMs, base), {
    integer,
    min: base,
    minLabel: Number.isNaN(baseMs) ? undefined : `baseMs (${baseMs})`,
  });
  return { baseMs, maxMs };
}

function resolveRetryOn(issues: Issue[], input: unknown, path: string): string[] | undefined {
  if (input === undefined) return undefined;
  if (!Array.isArray(input)) {
    issues.push({
      path,
      message: `expected an array of retry conditions (e.g. ["gateway-error", "reset"]), got ${show(input)}`,
    });
    return undefined;
  }
  const out = new Set<string>(); // duplicates are harmless; drop them
  input.forEach((token: unknown, i) => {
    if (typeof token === 'string' && (RETRY_ON_TOKENS.includes(token) || /^[1-5]\d\d$/.test(token))) {
      out.add(token);
      return;
    }
    const hint =
      typeof token === 'string'
        ? didYouMean(token, RETRY_ON_TOKENS)
        : typeof token === 'number'
          ? ` (did you mean "${token}"?)`
          : '';
    issues.push({
      path: `${path}[${i}]`,
      message:
        `expected ${RETRY_ON_KEYWORDS.join(', ')}, an HTTP status such as "503", or a gRPC status name such as ` +
        `"UNAVAILABLE", got ${show(token)}${hint}`,
    });
  });
  return [...out];
}

function resolveTimeout(issues: Issue[], input: unknown, path: string): ResolvedServiceConfig['timeout'] {
  const obj = section(issues, input, path, TIMEOUT_KEYS);
  const requestMs = readNumber(issues, obj, 'requestMs', path, DEFAULTS.timeout.requestMs, {
    integer: true,
    min: 1,
    max: 3_600_000,
  });
  const perTry = obj.perTryMs;
  let perTryMs: number | undefined;
  if (perTry !== undefined) {
    const max = Number.isNaN(requestMs) ? 3_600_000 : requestMs;
    const label = Number.isNaN(requestMs) ? undefined : `requestMs (${requestMs})`;
    perTryMs = checkNumber(issues, perTry, join(path, 'perTryMs'), { integer: true, min: 1, max, maxLabel: label });
  }
  return { requestMs, perTryMs };
}

// ---------------------------------------------------------------------------
// Circuit breaker and outlier detection

function resolveCircuitBreaker(issues: Issue[], input: unknown, path: string): ResolvedServiceConfig['circuitBreaker'] {
  const d = DEFAULTS.circuitBreaker;
  const obj = section(issues, input, path, BREAKER_KEYS);
  const backoffPath = join(path, 'backoff');
  const backoff = section(issues, obj.backoff, backoffPath, BACKOFF_KEYS);
  return {
    enabled: readBoolean(issues, obj, 'enabled', path, d.enabled),
    consecutiveFailures: readNumber(issues, obj, 'consecutiveFailures', path, d.consecutiveFailures, {
      integer: true,
      min: 1,
    }),
    errorRatePercent: readNumber(issues, obj, 'errorRatePercent', path, d.errorRatePercent, { min: 0, max: 100 }),
    minRequests: readNumber(issues, obj, 'minRequests', path, d.minRequests, { integer: true, min: 1 }),
    windowMs: readNumber(issues, obj, 'windowMs', path, d.windowMs, { integer: true, min: 100 }),
    backoff: readBackoff(issues, backoff, backoffPath, d.backoff, 1, false),
    maxPending: readNumber(issues, obj, 'maxPending', path, d.maxPending, { integer: true, min: 0 }),
    maxRequests: readNumber(issues, obj, 'maxRequests', path, d.maxRequests, { integer: true, min: 1 }),
  };
}

function resolveOutlierDetection(
  issues: Issue[],
  input: unknown,
  path: string,
): ResolvedServiceConfig['outlierDetection'] {
  const d = DEFAULTS.outlierDetection;
  const obj = section(issues, input, path, OUTLIER_KEYS);
  const baseEjectionMs = readNumber(issues, obj, 'baseEjectionMs', path, d.baseEjectionMs, { integer: true, min: 1 });
  const base = Number.isNaN(baseEjectionMs) ? 1 : baseEjectionMs;
  return {
    enabled: readBoolean(issues, obj, 'enabled', path, d.enabled),
    consecutiveFailures: readNumber(issues, obj, 'consecutiveFailures', path, d.consecutiveFailures, {
      integer: true,
      min: 1,
    }),
    intervalMs: readNumber(issues, obj, 'intervalMs', path, d.intervalMs, { integer: true, min: 10 }),
    baseEjectionMs,
    // Like backoff: a larger baseEjectionMs lifts the default cap rather than failing on it.
    maxEjectionMs: readNumber(issues, obj, 'maxEjectionMs', path, Math.max(d.maxEjectionMs, base), {
      integer: true,
      min: base,
      minLabel: Number.isNaN(baseEjectionMs) ? undefined : `baseEjectionMs (${baseEjectionMs})`,
    }),
    maxEjectionPercent: readNumber(issues, obj, 'maxEjectionPercent', path, d.maxEjectionPercent, { min: 0, max: 100 }),
    successRate: resolveSuccessRate(issues, obj.successRate, join(path, 'successRate')),
  };
}

function resolveSuccessRate(
  issues: Issue[],
  input: unknown,
  path: string,
): ResolvedServiceConfig['outlierDetection']['successRate'] {
  if (input === false) return false;
  if (input !== undefined && !isPlainObject(input)) {
    issues.push({ path, message: `expected false (disabled) or an object, got ${show(input)}` });
  }
  const d = DEFAULTS.outlierDetection.successRate;
  const obj = section(issues, isPlainObject(input) ? input : undefined, path, SUCCESS_RATE_KEYS);
  return {
    minimumHosts: readNumber(issues, obj, 'minimumHosts', path, d.minimumHosts, { integer: true, min: 1 }),
    requestVolume: readNumber(issues, obj, 'requestVolume', path, d.requestVolume, { integer: true, min: 1 }),
    stdevFactor: readNumber(issues, obj, 'stdevFactor', path, d.stdevFactor, { min: 0 }),
    enforcementPercent: readNumber(issues, obj, 'enforcementPercent', path, d.enforcementPercent, { min: 0, max: 100 }),
  };
}

// ---------------------------------------------------------------------------
// Routes

function resolveRoutes(
  issues: Issue[],
  input: unknown,
  path: string,
  known: ReadonlySet<string> | undefined,
): ResolvedRoute[] {
  const out: ResolvedRoute[] = [];
  if (input === undefined) return out;
  if (!Array.isArray(input)) {
    issues.push({ path, message: `expected an array of routes, got ${show(input)}` });
    return out;
  }
  const names = new Map<string, number>();
  input.forEach((item: unknown, i) => {
    const routePath = `${path}[${i}]`;
    if (!isPlainObject(item)) {
      issues.push({
        path: routePath,
        message: `expected a route object { name?, match?, backends }, got ${show(item)}`,
      });
      return;
    }
    checkKeys(issues, item, ROUTE_KEYS, routePath);

    let name = `route-${i}`;
    let namePath = routePath;
    if (item.name !== undefined) {
      namePath = join(routePath, 'name');
      if (typeof item.name === 'string' && item.name !== '') name = item.name;
      else issues.push({ path: namePath, message: `expected a non-empty string, got ${show(item.name)}` });
    }
    const first = names.get(name);
    if (first !== undefined) {
      issues.push({
        path: namePath,
        message: `duplicate route name ${show(name)} (already ${path}[${first}]); route names must be unique per service`,
      });
    } else {
      names.set(name, i);
    }

    const match = resolveMatch(issues, item.match, join(routePath, 'match'));
    const { backends, totalWeight } = resolveBackends(issues, item.backends, join(routePath, 'backends'), known);
    out.push({ name, ...match, backends, totalWeight });
  });
  return out;
}

function resolveMatch(
  issues: Issue[],
  input: unknown,
  path: string,
): Pick<ResolvedRoute, 'path' | 'pathPrefix' | 'method' | 'headers'> {
  const obj = section(issues, input, path, MATCH_KEYS, 'an object { path?, pathPrefix?, method?, headers? }');
  const urlPath = readUrlPath(issues, obj, 'path', path);
  const pathPrefix = readUrlPath(issues, obj, 'pathPrefix', path);
  if (obj.path !== undefined && obj.pathPrefix !== undefined) {
    issues.push({
      path,
      message: 'path and pathPrefix cannot both be set; use path for an exact match or pathPrefix for a prefix',
    });
  }
  let method: string | undefined;
  if (obj.method !== undefined) {
    if (typeof obj.method === 'string' && HTTP_TOKEN.test(obj.method)) method = obj.method.toUpperCase();
    else
      issues.push({
        path: join(path, 'method'),
        message: `expected an HTTP method such as "GET", got ${show(obj.method)}`,
      });
  }
  return { path: urlPath, pathPrefix, method, headers: resolveHeaders(issues, obj.headers, join(path, 'headers')) };
}

function readUrlPath(issues: Issue[], obj: Obj, key: string, path: string): string | undefined {
  const value = obj[key];
  if (value === undefined) return undefined;
  if (typeof value === 'string' && value.startsWith('/')) return value;
  issues.push({ path: join(path, key), message: `expected a string starting with "/", got ${show(value)}` });
  return undefined;
}

function resolveHeaders(issues: Issue[], input: unknown, path: string): ResolvedHeaderMatch[] {
  const out: ResolvedHeaderMatch[] = [];
  if (input === undefined) return out;
  if (!isPlainObject(input)) {
    issues.push({ path, message: `expected an object mapping header names to matchers, got ${show(input)}` });
    return out;
  }
  const seen = new Set<string>();
  for (const [rawName, matcher] of Object.entries(input)) {
    const headerPath = join(path, rawName);
    const name = rawName.toLowerCase();
    if (!HTTP_TOKEN.test(rawName)) {
      issues.push({ path: headerPath, message: `expected a header name, got ${show(rawName)}` });
      continue;
    }
    if (seen.has(name)) {
      issues.push({
        path: headerPath,
        message: `header ${show(name)} is matched twice (header names ignore case); keep one`,
      });
      continue;
    }
    seen.add(name);
    const resolved = resolveHeaderMatch(issues, name, matcher, headerPath);
    if (resolved !== undefined) out.push(resolved);
  }
  return out;
}

function resolveHeaderMatch(
  issues: Issue[],
  name: string,
  input: unknown,
  path: string,
): ResolvedHeaderMatch | undefined {
  if (typeof input === 'string') return { name, kind: 'exact', value: input, regex: undefined, present: true };
  const expected = 'expected a string (exact match) or one of { exact }, { prefix }, { regex }, { present }';
  if (!isPlainObject(input)) {
    issues.push({ path, message: `${expected}, got ${show(input)}` });
    return undefined;
  }
  checkKeys(issues, input, HEADER_MATCH_KINDS, path);
  const kinds = HEADER_MATCH_KINDS.filter((k) => input[k] !== undefined);
  if (kinds.length !== 1) {
    // With only unknown keys, checkKeys has reported them already.
    if (kinds.length > 1 || Object.keys(input).length === 0) {
      issues.push({ path, message: `${expected}, got ${kinds.length > 1 ? kinds.join(' and ') : 'an empty object'}` });
    }
    return undefined;
  }
  const kind = kinds[0]!;
  const value = input[kind];
  const valuePath = join(path, kind);
  if (kind === 'present') {
    if (typeof value === 'boolean') return { name, kind, value: '', regex: undefined, present: value };
    issues.push({ path: valuePath, message: `expected true or false, got ${show(value)}` });
    return undefined;
  }
  if (typeof value !== 'string') {
    issues.push({ path: valuePath, message: `expected a string, got ${show(value)}` });
    return undefined;
  }
  let regex: RegExp | undefined;
  if (kind === 'regex') {
    try {
      regex = new RegExp(value);
    } catch (err) {
      issues.push({
        path: valuePath,
        message: `expected a valid regular expression, got ${show(value)} (${(err as Error).message})`,
      });
      return undefined;
    }
  }
  return { name, kind, value, regex, present: true };
}

function resolveBackends(
  issues: Issue[],
  input: unknown,
  path: string,
  known: ReadonlySet<string> | undefined,
): { backends: ResolvedRoute['backends']; totalWeight: number } {
  const backends: ResolvedRoute['backends'] = [];
  if (!Array.isArray(input) || input.length === 0) {
    issues.push({ path, message: `expected a non-empty array of { service, weight? }, got ${show(input)}` });
    return { backends, totalWeight: 0 };
  }
  let totalWeight = 0;
  let valid = true;
  input.forEach((item: unknown, i) => {
    const itemPath = `${path}[${i}]`;
    if (!isPlainObject(item)) {
      issues.push({ path: itemPath, message: `expected an object { service, weight? }, got ${show(item)}` });
      valid = false;
      return;
    }
    checkKeys(issues, item, BACKEND_KEYS, itemPath);
    const service = item.service;
    const servicePath = join(itemPath, 'service');
    if (typeof service !== 'string') {
      issues.push({ path: servicePath, message: `expected a service name, got ${show(service)}` });
      valid = false;
    } else if (known === undefined ? !SERVICE_NAME.test(service) : !known.has(service)) {
      const message =
        known === undefined
          ? `expected a service name, got ${show(service)}`
          : `unknown service ${show(service)} (known: ${listKnown(known)})`;
      issues.push({ path: servicePath, message });
      valid = false;
    }
    const weight = readNumber(issues, item, 'weight', itemPath, DEFAULTS.route.backendWeight, {
      integer: true,
      min: 0,
    });
    if (Number.isNaN(weight)) valid = false;
    else totalWeight += weight;
    backends.push({ service: typeof service === 'string' ? service : '', weight });
  });
  if (valid && totalWeight <= 0) {
    issues.push({ path, message: 'expected at least one backend with weight > 0, got a total weight of 0' });
  }
  return { backends, totalWeight };
}

function listKnown(known: ReadonlySet<string>): string {
  const names = [...known].sort();
  if (names.length === 0) return 'none';
  return names.length > 20 ? `${names.slice(0, 20).join(', ')}, … ${names.length - 20} more` : names.join(', ');
}

// ---------------------------------------------------------------------------
// Readers: each adds an issue and returns NaN / undefined when the value is bad, so checks that
// depend on it (maxMs >= baseMs) can tell "invalid" from "default" and stay quiet.

interface NumberSpec {
  integer?: boolean;
  min?: number;
  minExclusive?: boolean;
  /** Names the bound when it comes from another key, e.g. `baseMs (25)`. */
  minLabel?: string | undefined;
  max?: number;
  maxLabel?: string | undefined;
}

function readNumber(issues: Issue[], obj: Obj, key: string, path: string, def: number, spec: NumberSpec): number {
  const value = obj[key];
  if (value === undefined) return def;
  return checkNumber(issues, value, join(path, key), spec);
}

function checkNumber(issues: Issue[], value: unknown, path: string, spec: NumberSpec): number {
  const kind = spec.integer === true ? 'an integer' : 'a number';
  const lo =
    spec.min === undefined ? undefined : `${spec.minExclusive === true ? '>' : '>='} ${spec.minLabel ?? spec.min}`;
  const hi = spec.max === undefined ? undefined : `<= ${spec.maxLabel ?? spec.max}`;
  let message: string | undefined;
  const n = typeof value === 'number' ? value : NaN;
  if (!Number.isFinite(n) || (spec.integer === true && !Number.isSafeInteger(n))) {
    const range =
      lo !== undefined && hi !== undefined
        ? spec.minLabel === undefined && spec.maxLabel === undefined && spec.minExclusive !== true
          ? ` from ${spec.min} to ${spec.max}`
          : ` ${lo} and ${hi}`
        : lo !== undefined
          ? ` ${lo}`
          : hi !== undefined
            ? ` ${hi}`
            : '';
    message = `expected ${kind}${range}, got ${show(value)}`;
  } else if (spec.min !== undefined && (spec.minExclusive === true ? n <= spec.min : n < spec.min)) {
    message = `expected ${kind} ${lo}, got ${show(value)}`;
  } else if (spec.max !== undefined && n > spec.max) {
    message = `expected ${kind} ${hi}, got ${show(value)}`;
  }
  if (message !== undefined) {
    issues.push({ path, message });
    return NaN;
  }
  return n;
}

function readBoolean(issues: Issue[], obj: Obj, key: string, path: string, def: boolean): boolean {
  const value = obj[key];
  if (value === undefined) return def;
  if (typeof value === 'boolean') return value;
  issues.push({ path: join(path, key), message: `expected true or false, got ${show(value)}` });
  return def;
}

function readOptionalString(issues: Issue[], obj: Obj, key: string, path: string): string | undefined {
  const value = obj[key];
  if (value === undefined) return undefined;
  if (typeof value === 'string' && value !== '') return value;
  issues.push({ path: join(path, key), message: `expected a non-empty string, got ${show(value)}` });
  return undefined;
}

function readEnum<T extends string>(
  issues: Issue[],
  obj: Obj,
  key: string,
  path: string,
  allowed: readonly T[],
  def: T,
): T | undefined {
  const value = obj[key];
  if (value === undefined) return def;
  if (typeof value === 'string' && (allowed as readonly string[]).includes(value)) return value as T;
  const hint = typeof value === 'string' ? didYouMean(value, allowed) : '';
  issues.push({
    path: join(path, key),
    message: `expected one of ${allowed.map((a) => `"${a}"`).join(', ')}, got ${show(value)}${hint}`,
  });
  return undefined;
}

function resolveStringRecord(issues: Issue[], input: unknown, path: string): Record<string, string> {
  if (input === undefined) return {};
  if (!isPlainObject(input)) {
    issues.push({ path, message: `expected an object of string values, got ${show(input)}` });
    return {};
  }
  const entries: Array<[string, string]> = [];
  for (const [k, v] of Object.entries(input)) {
    if (typeof v === 'string') entries.push([k, v]);
    else issues.push({ path: join(path, k), message: `expected a string, got ${show(v)}` });
  }
  // fromEntries defines own properties, so a "__proto__" key stays data, not a prototype.
  return Object.fromEntries(entries);
}

/**
 * An optional nested object: absent gives `{}` (all defaults); a non-object is an issue and also
 * gives `{}`, so the rest of the config is still checked. Unknown keys are reported here.
 */
function section(issues: Issue[], input: unknown, path: string, known: readonly string[], what = 'an object'): Obj {
  if (input === undefined) return {};
  if (!isPlainObject(input)) {
    issues.push({ path, message: `expected ${what}, got ${show(input)}` });
    return {};
  }
  checkKeys(issues, input, known, path);
  return input;
}

function checkKeys(issues: Issue[], obj: Obj, known: readonly string[], path: string): void {
  for (const key of Object.keys(obj)) {
    if (known.includes(key)) continue;
    const hint = didYouMean(key, known);
    issues.push({
      path: path === '' ? join('', key) : join(path, key),
      message: hint !== '' ? `unknown key${hint}` : `unknown key (known keys: ${known.join(', ')})`,
    });
  }
}

// ---------------------------------------------------------------------------
// Formatting

/** `services.users`, `services["users.v2"]`: dotted when unambiguous, JSON-quoted otherwise. */
function join(path: string, key: string): string {
  if (/^[A-Za-z0-9_$-]+$/.test(key)) return path === '' ? key : `${path}.${key}`;
  return `${path}[${JSON.stringify(key)}]`;
}

/** Renders a got-value briefly: numbers and booleans as is, strings JSON-quoted, containers by kind. */
function show(value: unknown): string {
  switch (typeof value) {
    case 'undefined':
      return 'nothing';
    case 'number':
    case 'boolean':
      return String(value);
    case 'bigint':
      return `${value}n (a bigint)`;
    case 'string':
      return JSON.stringify(value.length > 80 ? `${value.slice(0, 77)}...` : value);
    case 'function':
      return 'a function';
    case 'symbol':
      return 'a symbol';
    default:
      if (value === null) return 'null';
      if (Array.isArray(value)) return value.length === 0 ? 'an empty array' : 'an array';
      if (isPlainObject(value)) return 'an object';
      return `an instance of ${(value as object).constructor?.name ?? 'an unknown class'}`;
  }
}

function isPlainObject(value: unknown): value is Obj {
  if (typeof value !== 'object' || value === null || Array.isArray(value)) return false;
  const proto: unknown = Object.getPrototypeOf(value);
  // The last test accepts plain objects from another realm (vm contexts, workers' structured clones).
  return proto === null || proto === Object.prototype || Object.getPrototypeOf(proto) === null;
}

type DeepReadonly<T> = T extends object ? { readonly [K in keyof T]: DeepReadonly<T[K]> } : T;

function deepFreeze<T>(value: T): DeepReadonly<T> {
  if (typeof value === 'object' && value !== null) {
    for (const v of Object.values(value)) deepFreeze(v);
    Object.freeze(value);
  }
  return value as DeepReadonly<T>;
}
