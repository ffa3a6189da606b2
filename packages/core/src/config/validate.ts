/**
 * Config validation: turns untrusted input (user code, files, the control server) into a
 * `ResolvedMeshConfig` with every default filled in, or throws one `MeshConfigError` that lists
 * every issue at once, so a user fixes a config in one round instead of one error per run.
 *
 * The structure — keys, types, bounds, enums, patterns, required keys, defaults — is the schema's
 * (`schema.ts`), checked by the walker (`walk.ts`). What a schema cannot express is here, as small
 * checks the schema names with `x-check`: address parsing and duplicate endpoints, service names
 * (localhost, numeric last labels), maxMs >= baseMs, perTryMs <= requestMs, regex safety, route
 * targets that exist, retryOn tokens of the service's protocol, `dns` beside `endpoints`. Then
 * `resolveService` builds the resolved form from the checked copy.
 *
 * Every pass stays linear in the size of the input: duplicates and route targets are found through
 * Maps and Sets, and suggestions are only computed for keys or names that are wrong.
 *
 * The input is never read directly: `read.ts` copies it one level at a time into null-prototype
 * objects and dense arrays, turning getters and Proxies that throw into issues, so nothing is read
 * from `Object.prototype` and no `__proto__` key reaches a prototype setter. The output never
 * shares an object with the input: a caller mutating its config afterwards cannot change a
 * running mesh. Nothing is frozen, because the mesh may keep and extend it, except the one empty
 * metadata record shared by endpoints without metadata.
 */
import { isIP } from 'node:net';
import { MeshConfigError } from '../errors.js';
import { didYouMean } from '../util/suggest.js';
import { parseAddress } from './address.js';
import { DEFAULTS, type DnsRecordType } from './defaults.js';
import { INVALID, type Issue, type Obj, join, readObject, ROOT, show, throwIfIssues } from './read.js';
import { regexRisk } from './regex-safety.js';
import { methodRetryOnScope, retryOnProblem, serviceRetryOnScope, type ServiceProtocol } from './retry-on.js';
import {
  HTTP_TOKEN_PATTERN,
  MeshConfigSchema,
  METHOD_KEY_PATTERN,
  SERVICE_NAME_SHAPE,
  ServiceConfigSchema,
} from './schema.js';
import type {
  ResolvedCallPolicy,
  ResolvedDnsConfig,
  ResolvedEndpoint,
  ResolvedHeaderMatch,
  ResolvedMeshConfig,
  ResolvedRoute,
  ResolvedServiceConfig,
} from './types.js';
import {
  type Check,
  checkNumber,
  compileSchema,
  type KeyCheck,
  type ObjectNode,
  walk,
  type WalkContext,
} from './walk.js';

export {
  DEFAULTS,
  MAX_BREAKER_BACKOFF_MS,
  MAX_DURATION_MS,
  MAX_REQUEST_MS,
  MAX_WEIGHT,
  MIN_DNS_REFRESH_MS,
} from './defaults.js';
export { checkNumber } from './walk.js';

/** Beyond this many issues, unknown names get no did-you-mean (each costs a scan of the candidates). */
const MAX_SUGGESTED_ISSUES = 100;

// ---------------------------------------------------------------------------
// Public API

/**
 * Validates a whole mesh config and fills in every default.
 * Throws one `MeshConfigError` listing every issue (`err.issues`); `err.path` is the first one's.
 */
export function validateMeshConfig(input: unknown): ResolvedMeshConfig {
  const issues: Issue[] = [];
  const root = readObject(issues, input, ROOT, MESH.expected, MESH.keys);
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
  const raw = readObject(issues, input, path, SERVICES_EXPECTED);
  if (raw === INVALID) return services;
  // Every key counts as "defined" for route references; a badly named one is reported on its own.
  const known = new Set(Object.keys(raw));
  const ctx: WalkContext = { issues, service: '', known };
  for (const name of known) {
    const servicePath = join(path, name);
    const before = issues.length;
    checkServiceName(issues, name, servicePath);
    ctx.service = name;
    const checked = walk(SERVICE, raw[name], servicePath, ctx);
    // With issues the caller throws: only a clean service is worth resolving.
    if (issues.length === before) services.set(name, resolveService(name, checked));
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
  checkServiceName(issues, name, path || ROOT);
  const checked = walk(SERVICE, input, path || ROOT, { issues, service: name, known: knownServices });
  throwIfIssues(issues);
  return resolveService(name, checked);
}

// ---------------------------------------------------------------------------
// Service names

/** Whether `name` is a valid service name (the config's rule; the mesh asks it on the call path before readiness). */
export function isServiceName(name: string): boolean {
  const issues: Issue[] = [];
  checkServiceName(issues, name, '');
  return issues.length === 0;
}

function checkServiceName(issues: Issue[], name: string, path: string): void {
  const expected =
    'expected a service name of lower-case letters, digits, "." and "-", starting and ending with a letter or digit' +
    ' (it becomes the host in http://<name>/)';
  // Length first: the pattern below is linear, but there is no reason to run it over megabytes.
  if (name.length > 253) {
    issues.push({ path, message: `expected a service name of at most 253 characters, got ${name.length}` });
  } else if (!SERVICE_NAME_SHAPE.test(name)) {
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
// Semantic checks, named by the schema's `x-check`. Each gets the walked copy of its node.

const valid = (v: unknown): boolean => v !== undefined && v !== INVALID;

/** The metadata of endpoints that have none: one shared, frozen, prototype-less empty record. */
const NO_METADATA: Readonly<Record<string, string>> = Object.freeze(Object.create(null) as Record<string, string>);

const checks: Record<string, Check> = {
  service(s: Obj, path, ctx) {
    const { issues } = ctx;
    const loadBalancer = s.loadBalancer ?? DEFAULTS.loadBalancer;
    if (valid(s.hashKey) && loadBalancer !== INVALID && loadBalancer !== 'ring-hash') {
      const which = s.loadBalancer === undefined ? `"${loadBalancer}" (the default)` : `"${loadBalancer}"`;
      issues.push({
        path: join(path, 'hashKey'),
        message: `hashKey only applies to loadBalancer 'ring-hash', got loadBalancer ${which}; set loadBalancer: 'ring-hash' or remove hashKey`,
      });
    }
    if (s.dns !== undefined && s.endpoints !== undefined) {
      issues.push({
        path: join(path, 'dns'),
        message:
          'expected either endpoints or dns, got both; dns discovers the endpoints, so remove endpoints (or remove dns to keep a static list)',
      });
    }
    // retryOn tokens depend on the protocol: checked here, once both are known.
    const protocols = protocolsOf(s.protocol);
    const retry = s.retry;
    if (valid(retry) && valid((retry as Obj).retryOn)) {
      const scope = serviceRetryOnScope(ctx.service, protocols);
      (retry as Obj).retryOn = checkRetryOn(
        ctx,
        (retry as Obj).retryOn as unknown[],
        join(join(path, 'retry'), 'retryOn'),
        scope,
      );
    }
    if (valid(s.methods)) checkMethods(ctx, s, protocols, join(path, 'methods'));
    return s;
  },

  protocols(items: unknown[], path, ctx) {
    const first = new Map<unknown, number>();
    let ok = true;
    for (let i = 0; i < items.length; i++) {
      const p = items[i];
      if (p === INVALID) {
        ok = false;
        continue;
      }
      const at = first.get(p);
      if (at !== undefined) {
        ctx.issues.push({
          path: `${path}[${i}]`,
          message: `duplicate protocol ${show(p)} (already ${path}[${at}]); list each protocol once`,
        });
        ok = false;
      } else first.set(p, i);
    }
    return ok ? items : INVALID;
  },

  endpoints(items: unknown[], path, ctx): ResolvedEndpoint[] {
    // Items are "host:port" strings or checked endpoint copies; the address is parsed here, where
    // duplicates (after normalising: "Users:080" is "users:80") can be found in one Map.
    const out: ResolvedEndpoint[] = [];
    const seen = new Map<string, number>();
    for (let i = 0; i < items.length; i++) {
      const item = items[i] as string | Obj | typeof INVALID;
      if (item === INVALID) continue;
      const isObject = typeof item !== 'string';
      const address = isObject ? item.address : item;
      if (typeof address !== 'string') continue; // reported by the walk
      // Paths are built only for an issue.
      const addressPath = (): string => (isObject ? join(`${path}[${i}]`, 'address') : `${path}[${i}]`);
      const parsed = parseAddress(address);
      if (typeof parsed === 'string') {
        ctx.issues.push({ path: addressPath(), message: parsed });
        continue;
      }
      const first = seen.get(parsed.address);
      if (first !== undefined) {
        ctx.issues.push({
          path: addressPath(),
          message: `duplicate endpoint ${show(parsed.address)} (already ${path}[${first}]); list each address once and use weight instead`,
        });
        continue;
      }
      seen.set(parsed.address, i);
      if (!isObject) {
        out.push({
          address: parsed.address,
          host: parsed.host,
          port: parsed.port,
          weight: DEFAULTS.endpoint.weight,
          zone: undefined,
          metadata: NO_METADATA,
        });
      } else if (item.weight !== INVALID && item.zone !== INVALID && item.metadata !== INVALID) {
        out.push({
          address: parsed.address,
          host: parsed.host,
          port: parsed.port,
          weight: (item.weight as number | undefined) ?? DEFAULTS.endpoint.weight,
          zone: item.zone as string | undefined,
          metadata: (item.metadata as Record<string, string> | undefined) ?? NO_METADATA,
        });
      }
    }
    return out;
  },

  backoff(b: Obj, path, ctx) {
    checkAtLeast(ctx, b, path, 'baseMs', 'maxMs');
    return b;
  },

  timeout(t: Obj, path, ctx) {
    const requestMs = t.requestMs === undefined ? DEFAULTS.timeout.requestMs : t.requestMs;
    const perTryMs = t.perTryMs;
    if (typeof requestMs === 'number' && typeof perTryMs === 'number' && perTryMs > requestMs) {
      ctx.issues.push({
        path: join(path, 'perTryMs'),
        message: `expected an integer from 1 to requestMs (${requestMs}), got ${show(perTryMs)}`,
      });
      t.perTryMs = INVALID;
    }
    return t;
  },

  outlierDetection(o: Obj, path, ctx) {
    checkAtLeast(ctx, o, path, 'baseEjectionMs', 'maxEjectionMs');
    return o;
  },

  dns(d: Obj, path, ctx): ResolvedDnsConfig | typeof INVALID {
    const { issues } = ctx;
    let ok = valid(d.name) && valid(d.type) && d.port !== INVALID && d.refreshMs !== INVALID;
    if (typeof d.name === 'string' && isIP(d.name.endsWith('.') ? d.name.slice(0, -1) : d.name) !== 0) {
      issues.push({
        path: join(path, 'name'),
        message: `expected a DNS name, got the IP address ${show(d.name)}; list it under endpoints instead of dns`,
      });
      ok = false;
    }
    if (d.type === 'SRV' && valid(d.port)) {
      issues.push({
        path: join(path, 'port'),
        message: `SRV records carry each endpoint's port, so port is not allowed with type "SRV", got ${show(d.port)}; remove port`,
      });
      ok = false;
    } else if ((d.type === 'A' || d.type === 'AAAA') && d.port === undefined) {
      issues.push({
        path: join(path, 'port'),
        message: `expected a port from 1 to 65535 (required: "${d.type}" records carry no port), got nothing`,
      });
      ok = false;
    }
    if (!ok) return INVALID;
    return {
      name: (d.name as string).toLowerCase(),
      port: d.port as number | undefined,
      type: d.type as DnsRecordType,
      refreshMs: (d.refreshMs as number | undefined) ?? DEFAULTS.dns.refreshMs,
    };
  },

  regex(source: string, path, ctx) {
    let regex: RegExp;
    try {
      regex = new RegExp(source);
    } catch (err) {
      ctx.issues.push({
        path,
        message: `expected a valid regular expression, got ${show(source)} (${(err as Error).message})`,
      });
      return INVALID;
    }
    const risk = regexRisk(source);
    if (risk !== undefined) {
      ctx.issues.push({ path, message: `${show(source)} can backtrack catastrophically ${risk}` });
      return INVALID;
    }
    return { source, regex };
  },

  match(m: Obj, path, ctx) {
    if (m.path !== undefined && m.pathPrefix !== undefined) {
      ctx.issues.push({
        path,
        message: 'path and pathPrefix cannot both be set; use path for an exact match or pathPrefix for a prefix',
      });
    }
    return m;
  },

  headers(h: Obj): ResolvedHeaderMatch[] | typeof INVALID {
    const out: ResolvedHeaderMatch[] = [];
    let ok = true;
    for (const rawName of Object.keys(h)) {
      const m = h[rawName];
      if (m === INVALID) {
        ok = false;
        continue;
      }
      const name = rawName.toLowerCase();
      if (typeof m === 'string') {
        out.push({ name, kind: 'exact', value: m, regex: undefined, present: true });
        continue;
      }
      const o = m as Obj;
      if (o.exact !== undefined)
        out.push({ name, kind: 'exact', value: o.exact as string, regex: undefined, present: true });
      else if (o.prefix !== undefined)
        out.push({ name, kind: 'prefix', value: o.prefix as string, regex: undefined, present: true });
      else if (o.regex !== undefined) {
        if (o.regex === INVALID) ok = false;
        else {
          const r = o.regex as { source: string; regex: RegExp };
          out.push({ name, kind: 'regex', value: r.source, regex: r.regex, present: true });
        }
      } else if (o.present !== INVALID) {
        out.push({ name, kind: 'present', value: '', regex: undefined, present: o.present as boolean });
      } else ok = false;
    }
    return ok ? out : INVALID;
  },

  backends(items: unknown[], path, ctx) {
    const { issues, known } = ctx;
    let totalWeight = 0;
    let ok = true;
    for (let i = 0; i < items.length; i++) {
      const b = items[i] as Obj | typeof INVALID;
      if (b === INVALID || b.service === INVALID || b.weight === INVALID) {
        ok = false;
        continue;
      }
      const service = b.service as string;
      if (known !== undefined && !known.has(service)) {
        const hint = issues.length < MAX_SUGGESTED_ISSUES ? didYouMean(service, [...known]) : '';
        issues.push({
          path: join(`${path}[${i}]`, 'service'),
          message: `unknown service ${show(service)} (known: ${listKnown(known)})${hint !== '' ? `; ${hint.slice(2, -1)}` : ''}`,
        });
        ok = false;
      }
      totalWeight += (b.weight as number | undefined) ?? DEFAULTS.route.backendWeight;
    }
    if (!ok) return INVALID;
    if (totalWeight <= 0) {
      issues.push({ path, message: 'expected at least one backend with weight > 0, got a total weight of 0' });
      return INVALID;
    }
    return items;
  },

  routes(items: unknown[], path, ctx): ResolvedRoute[] {
    const out: ResolvedRoute[] = [];
    const names = new Map<string, number>();
    for (let i = 0; i < items.length; i++) {
      const r = items[i] as Obj | typeof INVALID;
      if (r === INVALID) continue;
      const routePath = `${path}[${i}]`;
      const given = typeof r.name === 'string';
      const name = given ? (r.name as string) : `route-${i}`;
      const first = names.get(name);
      if (first !== undefined) {
        ctx.issues.push({
          path: given ? join(routePath, 'name') : routePath,
          message: `duplicate route name ${show(name)} (already ${path}[${first}]); route names must be unique per service`,
        });
      } else {
        names.set(name, i);
      }
      const match = (valid(r.match) ? r.match : EMPTY) as Obj;
      const backends = valid(r.backends) ? (r.backends as Obj[]) : [];
      let totalWeight = 0;
      const resolvedBackends = backends.map((b) => {
        const weight = (b.weight as number | undefined) ?? DEFAULTS.route.backendWeight;
        totalWeight += weight;
        return { service: b.service as string, weight };
      });
      out.push({
        name,
        path: valid(match.path) ? (match.path as string) : undefined,
        pathPrefix: valid(match.pathPrefix) ? (match.pathPrefix as string) : undefined,
        method: valid(match.method) ? (match.method as string).toUpperCase() : undefined,
        headers: valid(match.headers) ? (match.headers as ResolvedHeaderMatch[]) : [],
        backends: resolvedBackends,
        totalWeight,
      });
    }
    return out;
  },
};

/** The protocols a checked `protocol` value names; undefined when it is invalid. */
function protocolsOf(value: unknown): readonly ServiceProtocol[] | undefined {
  if (value === undefined) return [DEFAULTS.protocol];
  if (value === INVALID) return undefined;
  if (typeof value === 'string') return [value as ServiceProtocol];
  return value as ServiceProtocol[];
}

/** Checks a `retryOn` list against its scope; returns the valid tokens without repeats. */
function checkRetryOn(
  ctx: WalkContext,
  tokens: unknown[],
  path: string,
  scope: ReturnType<typeof serviceRetryOnScope>,
): string[] {
  const out = new Set<string>(); // duplicates are harmless; drop them
  for (let i = 0; i < tokens.length; i++) {
    const token = tokens[i];
    const problem = retryOnProblem(token, scope, show(token));
    if (problem === undefined) out.add(token as string);
    else ctx.issues.push({ path: `${path}[${i}]`, message: problem });
  }
  return [...out];
}

/**
 * `methods`: only for a service that speaks gRPC; each entry's retryOn holds gRPC names only,
 * its perTryMs fits its requestMs and its backoff's maxMs its baseMs (the service's filling in
 * whatever the entry leaves out).
 */
function checkMethods(ctx: WalkContext, s: Obj, protocols: readonly ServiceProtocol[] | undefined, path: string): void {
  const { issues } = ctx;
  if (protocols !== undefined && !protocols.includes('grpc')) {
    const shown = protocols.length === 1 ? `"${protocols[0]}"` : `[${protocols.map((p) => `"${p}"`).join(', ')}]`;
    issues.push({
      path,
      message:
        `methods apply to gRPC calls only, but service "${ctx.service}" has protocol ${shown}; ` +
        'set protocol: "grpc" (or ["http", "grpc"] if it speaks both), or remove methods',
    });
    return;
  }
  const retry = section(s, 'retry');
  const timeout = section(s, 'timeout');
  const serviceRequestMs = get(timeout, 'requestMs', DEFAULTS.timeout.requestMs);
  const serviceBackoff = resolveBackoff(section(retry, 'backoff'), DEFAULTS.retry.backoff);
  const methods = s.methods as Obj;
  for (const key of Object.keys(methods)) {
    const m = methods[key];
    if (!valid(m)) continue;
    const methodPath = join(path, key);
    const mr = section(m as Obj, 'retry');
    if (valid(mr.retryOn)) {
      mr.retryOn = checkRetryOn(
        ctx,
        mr.retryOn as unknown[],
        join(join(methodPath, 'retry'), 'retryOn'),
        methodRetryOnScope(ctx.service, key),
      );
    }
    const mb = section(mr, 'backoff');
    if (mb !== EMPTY && typeof mb.maxMs === 'number' && mb.baseMs === undefined && mb.maxMs < serviceBackoff.baseMs) {
      issues.push({
        path: join(join(join(methodPath, 'retry'), 'backoff'), 'maxMs'),
        message: `expected an integer >= baseMs (${serviceBackoff.baseMs}, the service's), got ${show(mb.maxMs)}`,
      });
      mb.maxMs = INVALID;
    }
    const mt = section(m as Obj, 'timeout');
    if (typeof mt.perTryMs === 'number') {
      const own = typeof mt.requestMs === 'number';
      const requestMs = own ? (mt.requestMs as number) : serviceRequestMs;
      if (typeof requestMs === 'number' && mt.perTryMs > requestMs) {
        issues.push({
          path: join(join(methodPath, 'timeout'), 'perTryMs'),
          message: `expected an integer from 1 to requestMs (${requestMs}${own ? '' : ", the service's"}), got ${show(mt.perTryMs)}`,
        });
        mt.perTryMs = INVALID;
      }
    }
  }
}

const EMPTY: Obj = Object.freeze(Object.create(null) as Obj);

/** `max >= base` for a pair of durations of `obj`; with the base over the default max, max's default follows. */
function checkAtLeast(ctx: WalkContext, obj: Obj, path: string, baseKey: string, maxKey: string): void {
  const base = obj[baseKey];
  const max = obj[maxKey];
  if (typeof base === 'number' && typeof max === 'number' && max < base) {
    ctx.issues.push({
      path: join(path, maxKey),
      message: `expected an integer >= ${baseKey} (${base}), got ${show(max)}`,
    });
    obj[maxKey] = INVALID;
  }
}

const METHOD_KEY = new RegExp(METHOD_KEY_PATTERN);

const keyChecks: Record<string, KeyCheck> = {
  method(key, path, ctx) {
    if (METHOD_KEY.test(key)) return true;
    const bare = key.startsWith('/') ? key.slice(1) : undefined;
    const hint =
      bare !== undefined && METHOD_KEY.test(bare)
        ? `; write it without the leading "/": ${show(bare)}`
        : key.includes('/') && key.slice(key.indexOf('/') + 1).includes('*') && !key.endsWith('/*')
          ? '; a wildcard stands for a whole method name: "package.Service/*"'
          : '';
    ctx.issues.push({
      path,
      message: `expected a gRPC method "package.Service/Method" or "package.Service/*", got ${show(key)}${hint}`,
    });
    return false;
  },
  header(key, path, ctx, seen) {
    if (!HTTP_TOKEN.test(key)) {
      ctx.issues.push({ path, message: `expected a header name, got ${show(key)}` });
      return false;
    }
    const name = key.toLowerCase();
    if (seen.has(name)) {
      ctx.issues.push({ path, message: `header ${show(name)} is matched twice (header names ignore case); keep one` });
      return false;
    }
    seen.add(name);
    return true;
  },
};

// ---------------------------------------------------------------------------
// The compiled schema

const SERVICE = compileSchema(ServiceConfigSchema, checks, keyChecks) as ObjectNode;
// The root and the services map are read here rather than walked: route targets need every
// service name before any service is checked.
const MESH = {
  keys: Object.keys(MeshConfigSchema.properties),
  expected: (MeshConfigSchema as unknown as Record<string, string>)['x-expected']!,
};
const SERVICES_EXPECTED = (MeshConfigSchema.properties.services as unknown as Record<string, string>)['x-expected']!;
const HTTP_TOKEN = new RegExp(HTTP_TOKEN_PATTERN);

// ---------------------------------------------------------------------------
// Resolution: the checked copy, with every default filled in, as plain objects of the mesh's own.

function get<T>(o: Obj, key: string, def: T): T {
  const v = o[key];
  return v === undefined || v === INVALID ? def : (v as T);
}

function section(o: Obj, key: string): Obj {
  const v = o[key];
  return v === undefined || v === INVALID ? EMPTY : (v as Obj);
}

function resolveBackoff(o: Obj, def: { readonly baseMs: number; readonly maxMs: number }) {
  const baseMs = get(o, 'baseMs', def.baseMs);
  // Only baseMs given and above the default maxMs: maxMs follows it instead of failing on a value
  // the user never wrote.
  return { baseMs, maxMs: get(o, 'maxMs', Math.max(def.maxMs, baseMs)) };
}

function resolveService(name: string, checked: unknown): ResolvedServiceConfig {
  // A service that is not an object has been reported; it resolves to all defaults.
  const s = (checked === INVALID ? EMPTY : checked) as Obj;
  const retry = section(s, 'retry');
  const rb = section(retry, 'backoff');
  const budget = section(retry, 'budget');
  const timeout = section(s, 'timeout');
  const cb = section(s, 'circuitBreaker');
  const cbb = section(cb, 'backoff');
  const od = section(s, 'outlierDetection');
  const d = DEFAULTS;

  const successRateInput = od.successRate;
  let successRate: ResolvedServiceConfig['outlierDetection']['successRate'];
  if (successRateInput === false) successRate = false;
  else {
    const sr = (valid(successRateInput) ? successRateInput : EMPTY) as Obj;
    const dsr = d.outlierDetection.successRate;
    successRate = {
      minimumHosts: get(sr, 'minimumHosts', dsr.minimumHosts),
      requestVolume: get(sr, 'requestVolume', dsr.requestVolume),
      stdevFactor: get(sr, 'stdevFactor', dsr.stdevFactor),
      enforcementPercent: get(sr, 'enforcementPercent', dsr.enforcementPercent),
    };
  }

  const hashKeyInput = s.hashKey;
  let hashKey: ResolvedServiceConfig['hashKey'];
  if (valid(hashKeyInput)) {
    const h = hashKeyInput as Obj;
    if (typeof h.header === 'string') hashKey = { header: h.header.toLowerCase() };
    else if (h.path === true) hashKey = { path: true };
  }

  const dns = get<ResolvedDnsConfig | undefined>(s, 'dns', undefined);
  const endpoints = dns === undefined ? get(s, 'endpoints', [] as ResolvedEndpoint[]) : [];
  const baseEjectionMs = get(od, 'baseEjectionMs', d.outlierDetection.baseEjectionMs);
  const retryOn = get<string[] | undefined>(retry, 'retryOn', undefined);
  const protocolInput = get<ServiceProtocol | ServiceProtocol[]>(s, 'protocol', d.protocol);
  const protocols: ServiceProtocol[] = typeof protocolInput === 'string' ? [protocolInput] : [...protocolInput];
  const servicePath = join('services', name);
  const own: ResolvedCallPolicy = {
    key: undefined,
    maxAttempts: get(retry, 'maxAttempts', d.retry.maxAttempts),
    backoff: resolveBackoff(rb, d.retry.backoff),
    retryOn: retryOn === undefined ? undefined : [...retryOn],
    nonIdempotent: get(retry, 'nonIdempotent', d.retry.nonIdempotent),
    requestMs: get(timeout, 'requestMs', d.timeout.requestMs),
    perTryMs: get<number | undefined>(timeout, 'perTryMs', undefined),
    requestMsPath: join(join(servicePath, 'timeout'), 'requestMs'),
    perTryMsPath: join(join(servicePath, 'timeout'), 'perTryMs'),
  };

  return {
    name,
    protocol: typeof protocolInput === 'string' ? protocolInput : [...protocols],
    protocols,
    endpoints,
    dns,
    loadBalancer: get(s, 'loadBalancer', d.loadBalancer),
    hashKey,
    ewmaDecayMs: get(s, 'ewmaDecayMs', d.ewmaDecayMs),
    retry: {
      maxAttempts: get(retry, 'maxAttempts', d.retry.maxAttempts),
      backoff: resolveBackoff(rb, d.retry.backoff),
      budget: {
        ratio: get(budget, 'ratio', d.retry.budget.ratio),
        minPerSecond: get(budget, 'minPerSecond', d.retry.budget.minPerSecond),
        ttlMs: get(budget, 'ttlMs', d.retry.budget.ttlMs),
      },
      retryOn: retryOn === undefined ? undefined : [...retryOn],
      nonIdempotent: get(retry, 'nonIdempotent', d.retry.nonIdempotent),
    },
    timeout: {
      requestMs: get(timeout, 'requestMs', d.timeout.requestMs),
      perTryMs: get<number | undefined>(timeout, 'perTryMs', undefined),
    },
    circuitBreaker: {
      enabled: get(cb, 'enabled', d.circuitBreaker.enabled),
      consecutiveFailures: get(cb, 'consecutiveFailures', d.circuitBreaker.consecutiveFailures),
      errorRatePercent: get(cb, 'errorRatePercent', d.circuitBreaker.errorRatePercent),
      minRequests: get(cb, 'minRequests', d.circuitBreaker.minRequests),
      windowMs: get(cb, 'windowMs', d.circuitBreaker.windowMs),
      backoff: resolveBackoff(cbb, d.circuitBreaker.backoff),
      maxPending: get(cb, 'maxPending', d.circuitBreaker.maxPending),
      maxRequests: get(cb, 'maxRequests', d.circuitBreaker.maxRequests),
    },
    outlierDetection: {
      enabled: get(od, 'enabled', d.outlierDetection.enabled),
      consecutiveFailures: get(od, 'consecutiveFailures', d.outlierDetection.consecutiveFailures),
      intervalMs: get(od, 'intervalMs', d.outlierDetection.intervalMs),
      baseEjectionMs,
      // Like backoff: a larger baseEjectionMs lifts the default cap rather than failing on it.
      maxEjectionMs: get(od, 'maxEjectionMs', Math.max(d.outlierDetection.maxEjectionMs, baseEjectionMs)),
      maxEjectionPercent: get(od, 'maxEjectionPercent', d.outlierDetection.maxEjectionPercent),
      successRate,
    },
    routes: get(s, 'routes', [] as ResolvedRoute[]),
    policy: own,
    methods: resolveMethods(s, own, join(servicePath, 'methods')),
  };
}

/** Each `methods` entry as a complete policy: the entry's fields over the service's own. */
function resolveMethods(s: Obj, own: ResolvedCallPolicy, path: string): Map<string, ResolvedCallPolicy> | undefined {
  const methods = s.methods;
  if (!valid(methods)) return undefined;
  const out = new Map<string, ResolvedCallPolicy>();
  for (const key of Object.keys(methods as Obj)) {
    const m = (methods as Obj)[key];
    if (!valid(m)) continue;
    const r = section(m as Obj, 'retry');
    const t = section(m as Obj, 'timeout');
    const retryOn = get<string[] | undefined>(r, 'retryOn', undefined);
    const at = join(path, key);
    const requestMs = get<number | undefined>(t, 'requestMs', undefined);
    const perTryMs = get<number | undefined>(t, 'perTryMs', undefined);
    out.set(key, {
      key,
      maxAttempts: get(r, 'maxAttempts', own.maxAttempts),
      backoff: resolveBackoff(section(r, 'backoff'), own.backoff),
      retryOn: retryOn === undefined ? (own.retryOn === undefined ? undefined : [...own.retryOn]) : [...retryOn],
      nonIdempotent: own.nonIdempotent,
      requestMs: requestMs ?? own.requestMs,
      perTryMs: perTryMs ?? own.perTryMs,
      requestMsPath: requestMs === undefined ? own.requestMsPath : join(join(at, 'timeout'), 'requestMs'),
      perTryMsPath: perTryMs === undefined ? own.perTryMsPath : join(join(at, 'timeout'), 'perTryMs'),
    });
  }
  return out.size === 0 ? undefined : out;
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
