/**
 * Config validation: turns untrusted input (user code, files, the control server) into a
 * `ResolvedMeshConfig` with every default filled in, or throws one `MeshConfigError` that lists
 * every issue at once, so a user fixes a config in one round instead of one error per run.
 *
 * Hand-written because core may not depend on a schema library. It runs on config change only,
 * so clarity wins over speed, but every pass stays linear in the size of the input: duplicates
 * and route targets are found through Maps and Sets, and suggestions are only computed for keys
 * or names that are wrong.
 *
 * The input is never read directly: `read.ts` copies it one level at a time into null-prototype
 * objects and dense arrays, turning getters and Proxies that throw into issues, so nothing is read
 * from `Object.prototype` and no `__proto__` key reaches a prototype setter. The output never
 * shares an object with the input: a caller mutating its config afterwards cannot change a
 * running mesh. Nothing is frozen, because the mesh may keep and extend it, except the one empty
 * metadata record shared by endpoints without metadata.
 */
import { isIPv4, isIPv6 } from 'node:net';
import type { LoadBalancerName } from '../balancer/types.js';
import { MeshConfigError } from '../errors.js';
import { didYouMean } from '../util/suggest.js';
import {
  INVALID,
  type Issue,
  type Obj,
  kindOf,
  join,
  readArray,
  readObject,
  ROOT,
  show,
  throwIfIssues,
} from './read.js';
import { MAX_REGEX_LENGTH, regexRisk } from './regex-safety.js';
import { retryOnProblem, SERVICE_PROTOCOLS, type ServiceProtocol } from './retry-on.js';
import type {
  ResolvedEndpoint,
  ResolvedHeaderMatch,
  ResolvedMeshConfig,
  ResolvedRoute,
  ResolvedServiceConfig,
} from './types.js';

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

/** Every default of the config format, in one place (also the source of the config reference). */
export const DEFAULTS = deepFreeze({
  endpoint: { weight: 1 },
  protocol: 'http' as ServiceProtocol,
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

const LOAD_BALANCERS: readonly LoadBalancerName[] = ['p2c-ewma', 'least-request', 'round-robin', 'random', 'ring-hash'];

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
  'protocol',
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

/** Beyond this many issues, unknown names get no did-you-mean (each costs a scan of the candidates). */
const MAX_SUGGESTED_ISSUES = 100;

/**
 * Validates a whole mesh config and fills in every default.
 * Throws one `MeshConfigError` listing every issue (`err.issues`); `err.path` is the first one's.
 */
export function validateMeshConfig(input: unknown): ResolvedMeshConfig {
  const issues: Issue[] = [];
  const root = readObject(issues, input, ROOT, 'an object like { services: { ... } }', MESH_KEYS);
  const services = root === INVALID ? new Map<string, ResolvedServiceConfig>() : resolveServices(issues, root.services);
  throwIfIssues(issues);
  return { services };
}

/**
 * Resolves the `services` map of a config, adding issues instead of throwing (for callers that
 * validate more than services, such as `createMesh`'s options).
 */
export function resolveServices(issues: Issue[], input: unknown): Map<string, ResolvedServiceConfig> {
  const services = new Map<string, ResolvedServiceConfig>();
  const path = 'services';
  const raw = readObject(issues, input, path, 'an object mapping service names to service configs');
  if (raw === INVALID) return services;
  // Every key counts as "defined" for route references; a badly named one is reported on its own.
  const known = new Set(Object.keys(raw));
  for (const name of known) {
    services.set(name, resolveService(issues, name, raw[name], join(path, name), known));
  }
  return services;
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
  if (typeof name !== 'string') {
    issues.push({ path: path || ROOT, message: `expected a service name, got ${show(name)}` });
    throw new MeshConfigError(issues);
  }
  const resolved = resolveService(issues, name, input, path || ROOT, knownServices);
  throwIfIssues(issues);
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

  const protocol = readEnum(issues, obj, 'protocol', path, SERVICE_PROTOCOLS, DEFAULTS.protocol);
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
    protocol: protocol ?? DEFAULTS.protocol,
    endpoints: resolveEndpoints(issues, obj.endpoints, join(path, 'endpoints')),
    loadBalancer: loadBalancer ?? DEFAULTS.loadBalancer,
    hashKey,
    // Not a timer, but a duration all the same: one bound for every *Ms key keeps the rule simple.
    ewmaDecayMs: readDuration(issues, obj, 'ewmaDecayMs', path, DEFAULTS.ewmaDecayMs, 1),
    retry: resolveRetry(issues, obj.retry, join(path, 'retry'), protocol, name),
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
  // Length first: the pattern below is linear, but there is no reason to run it over megabytes.
  if (name.length > 253) {
    issues.push({ path, message: `expected a service name of at most 253 characters, got ${name.length}` });
  } else if (!SERVICE_NAME.test(name)) {
    issues.push({ path, message: `${expected}, got ${show(name)}` });
  } else if (name.includes('..')) {
    issues.push({ path, message: `expected a service name without empty labels (".."), got ${show(name)}` });
  } else if (/^\d+$/.test(name.slice(name.lastIndexOf('.') + 1))) {
    // URL parsers read a host whose last label is numeric as an IPv4 address (`http://123/` is 0.0.0.123).
    issues.push({
      path,
      message: `expected a service name whose last label is not all digits (URLs would read it as an IPv4 address), got ${show(name)}`,
    });
  } else if (name === 'localhost' || name.endsWith('.localhost')) {
    // RFC 6761: *.localhost is the loopback host. The mesh fetch routes a URL to the service its
    // host names, so this name would send every local call through the mesh instead.
    issues.push({
      path,
      message:
        `${show(name)} names the local host (RFC 6761), so http://${name}/ sent through the mesh fetch or dispatcher ` +
        'would go to this service instead of this machine; choose another name',
    });
  }
}

// ---------------------------------------------------------------------------
// Endpoints

/** The metadata of endpoints that have none: one shared, frozen, prototype-less empty record. */
const NO_METADATA: Readonly<Record<string, string>> = Object.freeze(Object.create(null) as Record<string, string>);

function resolveEndpoints(issues: Issue[], input: unknown, path: string): ResolvedEndpoint[] {
  const out: ResolvedEndpoint[] = [];
  if (input === undefined) return out;
  const items = readArray(issues, input, path, 'an array of "host:port" strings or endpoint objects');
  if (items === INVALID) return out;
  const seen = new Map<string, number>();
  for (let i = 0; i < items.length; i++) {
    const item = items[i];
    const itemPath = `${path}[${i}]`;
    let addressPath = itemPath;
    let address: unknown = item;
    let weight: number = DEFAULTS.endpoint.weight;
    let zone: string | undefined;
    let metadata: Readonly<Record<string, string>> = NO_METADATA;
    const kind = kindOf(issues, item, itemPath);
    if (kind === INVALID) continue;
    if (kind === 'object') {
      const obj = readObject(issues, item, itemPath, 'an endpoint object', ENDPOINT_KEYS);
      if (obj === INVALID) continue;
      addressPath = join(itemPath, 'address');
      address = obj.address;
      weight = readNumber(issues, obj, 'weight', itemPath, DEFAULTS.endpoint.weight, {
        integer: true,
        min: 1,
        max: MAX_WEIGHT,
      });
      zone = readOptionalString(issues, obj, 'zone', itemPath);
      metadata = resolveStringRecord(issues, obj.metadata, join(itemPath, 'metadata'));
    } else if (typeof item !== 'string') {
      issues.push({
        path: itemPath,
        message: `expected a "host:port" string or an object { address, weight?, zone?, metadata? }, got ${show(item)}`,
      });
      continue;
    }
    if (typeof address !== 'string') {
      issues.push({ path: addressPath, message: `expected a "host:port" string, got ${show(address)}` });
      continue;
    }
    const parsed = parseAddress(address);
    if (typeof parsed === 'string') {
      issues.push({ path: addressPath, message: parsed });
      continue;
    }
    const first = seen.get(parsed.address);
    if (first !== undefined) {
      issues.push({
        path: addressPath,
        message: `duplicate endpoint ${show(parsed.address)} (already ${path}[${first}]); list each address once and use weight instead`,
      });
      continue;
    }
    seen.set(parsed.address, i);
    out.push({ address: parsed.address, host: parsed.host, port: parsed.port, weight, zone, metadata });
  }
  return out;
}

/** Parses `host:port` / `[v6]:port`; returns the error message when invalid. */
function parseAddress(s: string): { address: string; host: string; port: number } | string {
  const got = (): string => `got ${show(s)}`; // rendered only for an error message
  // The longest valid address is a 253-character name, ":" and a 5-digit port (or a bracketed IPv6).
  if (s.length > 300) return `expected "host:port" of at most 300 characters, got ${s.length} characters`;
  if (s.includes('/') || s.includes('@')) {
    return `expected "host:port" without scheme, credentials or path (e.g. "10.0.0.1:8080"), ${got()}`;
  }
  let host: string;
  let portText: string;
  let v6 = false;
  if (s.startsWith('[')) {
    const m = /^\[([^\]]*)\](?::(.*))?$/.exec(s);
    if (m === null || !isIPv6(m[1] ?? '')) {
      return `expected a bracketed IPv6 address and a port, e.g. "[::1]:8080", ${got()}`;
    }
    if (m[2] === undefined) return `expected "host:port" (the port is missing), ${got()}`;
    host = m[1]!.toLowerCase();
    portText = m[2];
    v6 = true;
  } else {
    const colon = s.lastIndexOf(':');
    if (colon === -1) return `expected "host:port" (the port is missing), ${got()}`;
    host = s.slice(0, colon);
    portText = s.slice(colon + 1);
    if (host.includes(':')) return `expected an IPv6 address in brackets, e.g. "[::1]:8080", ${got()}`;
    if (!isHost(host)) return `expected a hostname or IPv4 address before ":port", ${got()}`;
    host = host.toLowerCase();
  }
  const port = /^\d{1,5}$/.test(portText) ? Number(portText) : NaN;
  if (!(port >= 1 && port <= 65535)) return `expected a port from 1 to 65535 in "host:port", ${got()}`;
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
  const before = issues.length;
  const obj = readObject(issues, input, path, expected.slice('expected '.length), HASH_KEY_KEYS);
  if (obj === INVALID) return undefined;
  const hasHeader = obj.header !== undefined;
  const hasPath = obj.path !== undefined;
  if (hasHeader && hasPath) {
    issues.push({ path, message: `${expected}, not both` });
    return undefined;
  }
  if (hasHeader) {
    const header = obj.header;
    if (typeof header !== 'string' || !HTTP_TOKEN.test(header)) {
      issues.push({ path: join(path, 'header'), message: `expected a header name, got ${show(header)}` });
      return undefined;
    }
    return { header: header.toLowerCase() };
  }
  if (hasPath) {
    if (obj.path !== true) {
      issues.push({ path: join(path, 'path'), message: `expected true, got ${show(obj.path)}` });
      return undefined;
    }
    return { path: true };
  }
  // An object with only unknown (or unreadable) keys already has issues; an empty one needs its own.
  if (issues.length === before) issues.push({ path, message: `${expected}, got an empty object` });
  return undefined;
}

// ---------------------------------------------------------------------------
// Retry and timeout

function resolveRetry(
  issues: Issue[],
  input: unknown,
  path: string,
  protocol: ServiceProtocol | undefined,
  service: string,
): ResolvedServiceConfig['retry'] {
  const d = DEFAULTS.retry;
  const obj = section(issues, input, path, RETRY_KEYS);
  const backoffPath = join(path, 'backoff');
  const budgetPath = join(path, 'budget');
  const backoff = section(issues, obj.backoff, backoffPath, BACKOFF_KEYS);
  const budget = section(issues, obj.budget, budgetPath, BUDGET_KEYS);
  return {
    maxAttempts: readNumber(issues, obj, 'maxAttempts', path, d.maxAttempts, { integer: true, min: 1, max: 10 }),
    backoff: readBackoff(issues, backoff, backoffPath, d.backoff, 0),
    budget: {
      ratio: readNumber(issues, budget, 'ratio', budgetPath, d.budget.ratio, { min: 0, max: 1000 }),
      minPerSecond: readNumber(issues, budget, 'minPerSecond', budgetPath, d.budget.minPerSecond, { min: 0 }),
      ttlMs: readNumber(issues, budget, 'ttlMs', budgetPath, d.budget.ttlMs, { integer: true, min: 1000, max: 60_000 }),
    },
    retryOn: resolveRetryOn(issues, obj.retryOn, join(path, 'retryOn'), protocol, service),
    nonIdempotent: readBoolean(issues, obj, 'nonIdempotent', path, d.nonIdempotent),
  };
}

/**
 * Integer `baseMs` >= `min` and `maxMs` >= baseMs, both at most MAX_DURATION_MS. When only baseMs
 * is given and it exceeds the default maxMs, maxMs follows it instead of failing on a value the
 * user never wrote.
 */
function readBackoff(
  issues: Issue[],
  obj: Obj,
  path: string,
  d: { readonly baseMs: number; readonly maxMs: number },
  min: number,
  max: DurationCap = { ms: MAX_DURATION_MS },
): { baseMs: number; maxMs: number } {
  const baseMs = readDuration(issues, obj, 'baseMs', path, d.baseMs, min, undefined, undefined, max);
  const maxMs = readDuration(issues, obj, 'maxMs', path, d.maxMs, min, baseMs, 'baseMs', max);
  return { baseMs, maxMs };
}

/** An upper bound of a duration, and why it is below MAX_DURATION_MS when it is. */
type DurationCap = { ms: number; why?: string };

const BREAKER_BACKOFF_CAP: DurationCap = {
  ms: MAX_BREAKER_BACKOFF_MS,
  why: `${MAX_DURATION_MS} / 1.2: the open time gets up to +20% jitter and must fit a Node timer`,
};

/**
 * A duration in whole ms from `min` to MAX_DURATION_MS. With `base` (the value of the key named
 * `baseKey`), the duration must be >= base, and its default rises to base when base is larger.
 */
function readDuration(
  issues: Issue[],
  obj: Obj,
  key: string,
  path: string,
  def: number,
  min: number,
  base?: number,
  baseKey?: string,
  cap: DurationCap = { ms: MAX_DURATION_MS },
): number {
  const max = cap.ms;
  const maxLabel = cap.why === undefined ? undefined : `${max} (${cap.why})`;
  if (base === undefined || Number.isNaN(base)) {
    return readNumber(issues, obj, key, path, def, { integer: true, min, max, maxLabel });
  }
  return readNumber(issues, obj, key, path, Math.max(def, base), {
    integer: true,
    min: base,
    minLabel: `${baseKey} (${base})`,
    floor: min,
    max,
    maxLabel,
  });
}

function resolveRetryOn(
  issues: Issue[],
  input: unknown,
  path: string,
  protocol: ServiceProtocol | undefined,
  service: string,
): string[] | undefined {
  if (input === undefined) return undefined;
  const items = readArray(issues, input, path, 'an array of retry conditions (e.g. ["gateway-error", "reset"])');
  if (items === INVALID) return undefined;
  const out = new Set<string>(); // duplicates are harmless; drop them
  for (let i = 0; i < items.length; i++) {
    const token = items[i];
    const problem = retryOnProblem(token, protocol, service, show(token));
    if (problem === undefined) out.add(token as string);
    else issues.push({ path: `${path}[${i}]`, message: problem });
  }
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
    windowMs: readDuration(issues, obj, 'windowMs', path, d.windowMs, 100),
    backoff: readBackoff(issues, backoff, backoffPath, d.backoff, 1, BREAKER_BACKOFF_CAP),
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
  const baseEjectionMs = readDuration(issues, obj, 'baseEjectionMs', path, d.baseEjectionMs, 1);
  return {
    enabled: readBoolean(issues, obj, 'enabled', path, d.enabled),
    consecutiveFailures: readNumber(issues, obj, 'consecutiveFailures', path, d.consecutiveFailures, {
      integer: true,
      min: 1,
    }),
    intervalMs: readDuration(issues, obj, 'intervalMs', path, d.intervalMs, 10),
    baseEjectionMs,
    // Like backoff: a larger baseEjectionMs lifts the default cap rather than failing on it.
    maxEjectionMs: readDuration(
      issues,
      obj,
      'maxEjectionMs',
      path,
      d.maxEjectionMs,
      1,
      baseEjectionMs,
      'baseEjectionMs',
    ),
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
  const d = DEFAULTS.outlierDetection.successRate;
  const obj = section(issues, input, path, SUCCESS_RATE_KEYS, 'false (disabled) or an object');
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
  const items = readArray(issues, input, path, 'an array of routes');
  if (items === INVALID) return out;
  const names = new Map<string, number>();
  for (let i = 0; i < items.length; i++) {
    const routePath = `${path}[${i}]`;
    const route = readObject(issues, items[i], routePath, 'a route object { name?, match?, backends }', ROUTE_KEYS);
    if (route === INVALID) continue;

    let name = `route-${i}`;
    let namePath = routePath;
    if (route.name !== undefined) {
      namePath = join(routePath, 'name');
      if (typeof route.name === 'string' && route.name !== '') name = route.name;
      else issues.push({ path: namePath, message: `expected a non-empty string, got ${show(route.name)}` });
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

    const match = resolveMatch(issues, route.match, join(routePath, 'match'));
    const { backends, totalWeight } = resolveBackends(issues, route.backends, join(routePath, 'backends'), known);
    out.push({ name, ...match, backends, totalWeight });
  }
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
  const obj = readObject(issues, input, path, 'an object mapping header names to matchers');
  if (obj === INVALID) return out;
  const seen = new Set<string>();
  // Own keys of the copy only: a header named "constructor" or "__proto__" is an ordinary name.
  for (const rawName of Object.keys(obj)) {
    const headerPath = join(path, rawName);
    if (!HTTP_TOKEN.test(rawName)) {
      issues.push({ path: headerPath, message: `expected a header name, got ${show(rawName)}` });
      continue;
    }
    const name = rawName.toLowerCase();
    if (seen.has(name)) {
      issues.push({
        path: headerPath,
        message: `header ${show(name)} is matched twice (header names ignore case); keep one`,
      });
      continue;
    }
    seen.add(name);
    const resolved = resolveHeaderMatch(issues, name, obj[rawName], headerPath);
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
  const before = issues.length;
  const obj = readObject(issues, input, path, expected.slice('expected '.length), HEADER_MATCH_KINDS);
  if (obj === INVALID) return undefined;
  const kinds = HEADER_MATCH_KINDS.filter((k) => obj[k] !== undefined);
  if (kinds.length !== 1) {
    // With only unknown keys, readObject has reported them already.
    if (kinds.length > 1 || issues.length === before) {
      issues.push({ path, message: `${expected}, got ${kinds.length > 1 ? kinds.join(' and ') : 'an empty object'}` });
    }
    return undefined;
  }
  const kind = kinds[0]!;
  const value = obj[kind];
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
    regex = compileRegex(issues, value, valuePath);
    if (regex === undefined) return undefined;
  }
  return { name, kind, value, regex, present: true };
}

/** Compiles a route regex, refusing long ones and ones that can backtrack catastrophically. */
function compileRegex(issues: Issue[], source: string, path: string): RegExp | undefined {
  if (source.length > MAX_REGEX_LENGTH) {
    issues.push({
      path,
      message: `expected a regular expression of at most ${MAX_REGEX_LENGTH} characters, got ${source.length} characters`,
    });
    return undefined;
  }
  let regex: RegExp;
  try {
    regex = new RegExp(source);
  } catch (err) {
    issues.push({
      path,
      message: `expected a valid regular expression, got ${show(source)} (${(err as Error).message})`,
    });
    return undefined;
  }
  const risk = regexRisk(source);
  if (risk !== undefined) {
    issues.push({ path, message: `${show(source)} can backtrack catastrophically ${risk}` });
    return undefined;
  }
  return regex;
}

function resolveBackends(
  issues: Issue[],
  input: unknown,
  path: string,
  known: ReadonlySet<string> | undefined,
): { backends: ResolvedRoute['backends']; totalWeight: number } {
  const backends: ResolvedRoute['backends'] = [];
  const expected = 'a non-empty array of { service, weight? }';
  const items = readArray(issues, input, path, expected);
  if (items === INVALID) return { backends, totalWeight: 0 };
  if (items.length === 0) {
    issues.push({ path, message: `expected ${expected}, got ${show(input)}` });
    return { backends, totalWeight: 0 };
  }
  let totalWeight = 0;
  let valid = true;
  for (let i = 0; i < items.length; i++) {
    const itemPath = `${path}[${i}]`;
    const item = readObject(issues, items[i], itemPath, 'an object { service, weight? }', BACKEND_KEYS);
    if (item === INVALID) {
      valid = false;
      continue;
    }
    const service = item.service;
    const servicePath = join(itemPath, 'service');
    if (typeof service !== 'string') {
      issues.push({ path: servicePath, message: `expected a service name, got ${show(service)}` });
      valid = false;
    } else if (known === undefined ? !SERVICE_NAME.test(service) : !known.has(service)) {
      let message: string;
      if (known === undefined) {
        message = `expected a service name, got ${show(service)}`;
      } else {
        const hint = issues.length < MAX_SUGGESTED_ISSUES ? didYouMean(service, [...known]) : '';
        message = `unknown service ${show(service)} (known: ${listKnown(known)})${hint !== '' ? `; ${hint.slice(2, -1)}` : ''}`;
      }
      issues.push({ path: servicePath, message });
      valid = false;
    }
    const weight = readNumber(issues, item, 'weight', itemPath, DEFAULTS.route.backendWeight, {
      integer: true,
      min: 0,
      max: MAX_WEIGHT,
    });
    if (Number.isNaN(weight)) valid = false;
    else totalWeight += weight;
    backends.push({ service: typeof service === 'string' ? service : '', weight });
  }
  if (valid && totalWeight <= 0) {
    issues.push({ path, message: 'expected at least one backend with weight > 0, got a total weight of 0' });
  }
  return { backends, totalWeight };
}

// Sorting the known names once per set, not once per bad backend, keeps a config full of bad
// routes linear too.
const listed = new WeakMap<ReadonlySet<string>, string>();

function listKnown(known: ReadonlySet<string>): string {
  let text = listed.get(known);
  if (text === undefined) {
    const names = [...known].sort();
    text =
      names.length === 0
        ? 'none'
        : names.length > 20
          ? `${names.slice(0, 20).join(', ')}, … ${names.length - 20} more`
          : names.join(', ');
    listed.set(known, text);
  }
  return text;
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
  /** With `minLabel`: the key's own lower bound, shown when the value is above `max`. */
  floor?: number;
  max?: number;
  maxLabel?: string | undefined;
}

function readNumber(issues: Issue[], obj: Obj, key: string, path: string, def: number, spec: NumberSpec): number {
  const value = obj[key];
  if (value === undefined) return def;
  return checkNumber(issues, value, join(path, key), spec);
}

/**
 * Messages: too low says `>= min` (`expected an integer >= 1, got 0`); too high gives the whole
 * range (`expected an integer from 1 to 2147483647, got 3000000000`); not a number gives both.
 */
export function checkNumber(issues: Issue[], value: unknown, path: string, spec: NumberSpec): number {
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
    const floor = spec.minLabel !== undefined ? (spec.floor ?? spec.minLabel) : spec.min;
    message =
      floor !== undefined && spec.minExclusive !== true
        ? `expected ${kind} from ${floor} to ${spec.maxLabel ?? spec.max}, got ${show(value)}`
        : `expected ${kind} ${hi}, got ${show(value)}`;
  }
  if (message !== undefined) {
    issues.push({ path, message });
    return NaN;
  }
  return n === 0 ? 0 : n; // -0 becomes 0: it prints as 0 and divides like 0 everywhere after
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

/** A record of strings, as a null-prototype object (a `__proto__` key is data, and lookups never inherit). */
function resolveStringRecord(issues: Issue[], input: unknown, path: string): Readonly<Record<string, string>> {
  if (input === undefined) return NO_METADATA;
  const out = Object.create(null) as Record<string, string>;
  const obj = readObject(issues, input, path, 'an object of string values');
  if (obj === INVALID) return out;
  for (const k of Object.keys(obj)) {
    const v = obj[k];
    if (typeof v === 'string') out[k] = v;
    else issues.push({ path: join(path, k), message: `expected a string, got ${show(v)}` });
  }
  return out;
}

/**
 * An optional nested object: absent gives an empty copy (all defaults); a non-object is an issue
 * and also gives an empty copy, so the rest of the config is still checked. Unknown keys are
 * reported here.
 */
function section(issues: Issue[], input: unknown, path: string, known: readonly string[], what = 'an object'): Obj {
  if (input !== undefined) {
    const obj = readObject(issues, input, path, what, known);
    if (obj !== INVALID) return obj;
  }
  return Object.create(null) as Obj;
}

// ---------------------------------------------------------------------------

type DeepReadonly<T> = T extends object ? { readonly [K in keyof T]: DeepReadonly<T[K]> } : T;

function deepFreeze<T>(value: T): DeepReadonly<T> {
  if (typeof value === 'object' && value !== null) {
    for (const v of Object.values(value)) deepFreeze(v);
    Object.freeze(value);
  }
  return value as DeepReadonly<T>;
}
