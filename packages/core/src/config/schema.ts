/**
 * The config format, declared once as a TypeBox schema. TypeBox schemas are JSON Schema, so this
 * one definition gives:
 *
 * - the TypeScript input types (`types.ts` declares them with their TSDoc; the assertions at the
 *   end of this file fail the build if they drift from `Static<typeof …>`);
 * - the published JSON Schema (`schema/mesh.schema.json`, written by `npm run schema`), which
 *   lets an editor validate and complete a `mesh.yaml`;
 * - the structure the validator (`validate.ts`) walks: the keys of each object, types, bounds,
 *   enums, patterns, required keys and defaults, with the error path of every mistake.
 *
 * Keywords prefixed `x-` are meshlet's own annotations for the validator and are left out of the
 * published file: `x-expected` words the "expected …" part of a message, `x-why` explains a bound
 * below the usual one, `x-check` names a semantic check (`validate.ts`) the schema cannot express
 * (address parsing, maxMs >= baseMs, regex safety, route targets that exist, …), `x-key` names
 * the check of a record's keys, and `x-deferred` leaves a node's whole check to such a function
 * (its messages depend on other keys). Where a rule is expressible, the schema states it too
 * (`if`/`then`, `not`), for editors, and the validator's check gives the precise message.
 */
import Type, { type Static, type TSchema } from 'typebox';
import {
  DEFAULTS,
  DNS_RECORD_TYPES,
  LOAD_BALANCERS,
  MAX_BREAKER_BACKOFF_MS,
  MAX_DURATION_MS,
  MAX_REQUEST_MS,
  MAX_WEIGHT,
  MIN_DNS_REFRESH_MS,
} from './defaults.js';
import { MAX_LIST_ITEMS } from './read.js';
import { MAX_REGEX_LENGTH } from './regex-safety.js';
import { GRPC_RETRY_ON_CODES, HTTP_RETRY_ON_KEYWORDS, SERVICE_PROTOCOLS } from './retry-on.js';
import type {
  CircuitBreakerConfig,
  DnsConfig,
  EndpointConfig,
  HeaderMatch,
  MeshConfig,
  MethodPolicyConfig,
  OutlierDetectionConfig,
  RetryConfig,
  RouteConfig,
  ServiceConfig,
  TimeoutConfig,
} from './types.js';

// ---------------------------------------------------------------------------
// Patterns (JSON Schema patterns are ECMA-262 regexes, so the same text serves both)

/**
 * A service name: it becomes the host in `http://<name>/`, so lower-case DNS-like labels, at most
 * 253 characters, no empty label, a last label that is not all digits (URL parsers would read an
 * IPv4 address) and not `localhost` or `*.localhost` (RFC 6761: the local host).
 */
export const SERVICE_NAME_PATTERN =
  '^(?=.{1,253}$)(?!localhost$)(?!.*\\.localhost$)(?!.*\\.\\.)(?!(?:.*\\.)?[0-9]+$)[a-z0-9](?:[a-z0-9.-]*[a-z0-9])?$';

/** A service name's shape alone (route backends; the other rules are reported on the service itself). */
export const SERVICE_NAME_SHAPE = /^[a-z0-9]([a-z0-9.-]*[a-z0-9])?$/;

/** RFC 9110 token: what HTTP accepts as a method or a header name. */
export const HTTP_TOKEN_PATTERN = "^[!#$%&'*+\\-.^_`|~0-9A-Za-z]+$";

/** A DNS name of letters, digits, `_` and `-` labels (SRV names start with `_service._proto.`); may end in ".". */
export const DNS_NAME_PATTERN =
  '^[A-Za-z0-9_](?:[A-Za-z0-9_-]{0,61}[A-Za-z0-9_])?(?:\\.[A-Za-z0-9_](?:[A-Za-z0-9_-]{0,61}[A-Za-z0-9_])?)*\\.?$';

const HTTP_STATUS_PATTERN = '^[1-5][0-9][0-9]$';

// ---------------------------------------------------------------------------
// Building blocks

/** A whole number of milliseconds from `min` to `max` (default: the Node timer limit). */
function duration(min: number, description: string, def?: number, max = MAX_DURATION_MS, why?: string) {
  return Type.Integer({
    minimum: min,
    maximum: max,
    description,
    ...(def === undefined ? {} : { default: def }),
    ...(why === undefined ? {} : { 'x-why': why }),
  });
}

function int(min: number, description: string, def?: number, max?: number) {
  return Type.Integer({
    minimum: min,
    ...(max === undefined ? {} : { maximum: max }),
    description,
    ...(def === undefined ? {} : { default: def }),
  });
}

function num(min: number, description: string, def: number, max?: number) {
  return Type.Number({ minimum: min, ...(max === undefined ? {} : { maximum: max }), description, default: def });
}

function bool(description: string, def: boolean) {
  return Type.Boolean({ description, default: def });
}

function list<T extends TSchema>(items: T, expected: string, description: string, extra: object = {}) {
  return Type.Array(items, { maxItems: MAX_LIST_ITEMS, description, 'x-expected': expected, ...extra });
}

/** A closed object: unknown keys are errors (with a did-you-mean) in the validator and in editors. */
const closed = { additionalProperties: false } as const;

const BREAKER_WHY = `${MAX_DURATION_MS} / 1.2: the open time gets up to +20% jitter and must fit a Node timer`;

function backoff(def: { readonly baseMs: number; readonly maxMs: number }, min: number, max: number, what: string) {
  const why = max === MAX_DURATION_MS ? undefined : BREAKER_WHY;
  return Type.Object(
    {
      baseMs: Type.Optional(duration(min, `First ${what}, ms. Default ${def.baseMs}.`, def.baseMs, max, why)),
      maxMs: Type.Optional(
        duration(
          min,
          `Largest ${what}, ms, at least baseMs. Default ${def.maxMs} (or baseMs when that is larger).`,
          def.maxMs,
          max,
          why,
        ),
      ),
    },
    { ...closed, 'x-check': 'backoff', description: `Exponential ${what} with jitter.` },
  );
}

// ---------------------------------------------------------------------------
// Endpoints and DNS

export const EndpointSchema = Type.Union(
  [
    Type.String({ description: '"host:port" (a hostname, an IPv4 address or a bracketed IPv6 address, and a port).' }),
    Type.Object(
      {
        address: Type.String({ description: '"host:port" of the endpoint.', 'x-expected': 'a "host:port" string' }),
        weight: Type.Optional(int(1, 'Relative weight, integer from 1 to 1 000 000. Default 1.', 1, MAX_WEIGHT)),
        zone: Type.Optional(Type.String({ minLength: 1, description: 'Zone (e.g. "eu-west-1a"), for stats.' })),
        metadata: Type.Optional(
          Type.Record(Type.String(), Type.String(), {
            description: 'Free-form string labels.',
            'x-expected': 'an object of string values',
          }),
        ),
      },
      { ...closed, 'x-expected': 'an endpoint object' },
    ),
  ],
  {
    'x-expected': 'a "host:port" string or an object { address, weight?, zone?, metadata? }',
  },
);

export const DnsSchema = Type.Object(
  {
    name: Type.String({
      maxLength: 253,
      pattern: DNS_NAME_PATTERN,
      description: 'The DNS name to resolve, e.g. "users.internal" or "_http._tcp.users.internal" for SRV.',
      'x-expected': 'a DNS name such as "users.internal"',
    }),
    port: Type.Optional(
      int(1, 'Port of every resolved address: required for A and AAAA, not allowed for SRV.', undefined, 65_535),
    ),
    type: Type.Enum([...DNS_RECORD_TYPES], {
      description: 'Record type: "A" (IPv4), "AAAA" (IPv6) or "SRV" (host, port and weight per record).',
    }),
    refreshMs: Type.Optional(
      duration(
        MIN_DNS_REFRESH_MS,
        `Re-resolution interval, ms (sooner when a record's TTL ends). Default ${DEFAULTS.dns.refreshMs}.`,
        DEFAULTS.dns.refreshMs,
      ),
    ),
  },
  {
    ...closed,
    'x-expected': 'an object { name, port?, type, refreshMs? }',
    'x-check': 'dns',
    description:
      'Endpoints from DNS instead of `endpoints`, re-resolved every refreshMs; a failed resolution keeps the last good set.',
    if: Type.Object({ type: Type.Literal('SRV') }),
    then: Type.Object({ port: Type.Optional(Type.Never()) }),
    else: Type.Object({}, { required: ['port'] }),
  },
);

// ---------------------------------------------------------------------------
// Policies

export const RetrySchema = Type.Object(
  {
    maxAttempts: Type.Optional(
      int(1, 'Attempts including the first, 1 to 10. `1` disables retries. Default 3.', DEFAULTS.retry.maxAttempts, 10),
    ),
    backoff: Type.Optional(backoff(DEFAULTS.retry.backoff, 0, MAX_DURATION_MS, 'retry backoff (full jitter)')),
    budget: Type.Optional(
      Type.Object(
        {
          ratio: Type.Optional(
            num(0, 'Retries allowed per request deposited. Default 0.2.', DEFAULTS.retry.budget.ratio, 1000),
          ),
          minPerSecond: Type.Optional(
            num(0, 'Retries always allowed per second. Default 10.', DEFAULTS.retry.budget.minPerSecond),
          ),
          ttlMs: Type.Optional(
            int(1000, 'How long a deposit counts, ms. Default 10 000.', DEFAULTS.retry.budget.ttlMs, 60_000),
          ),
        },
        { ...closed, description: 'Retry budget shared by all callers of the service in this process.' },
      ),
    ),
    retryOn: Type.Optional(
      list(
        Type.Union(
          [
            Type.Enum([...HTTP_RETRY_ON_KEYWORDS]),
            Type.String({ pattern: HTTP_STATUS_PATTERN }),
            Type.Enum([...GRPC_RETRY_ON_CODES]),
          ],
          { 'x-deferred': true },
        ),
        'an array of retry conditions (e.g. ["gateway-error", "reset"])',
        'What is retried. HTTP: connect-failure, reset, timeout, gateway-error (502/503/504), 5xx, or a status ' +
          'code such as "503". gRPC: status code names (UNAVAILABLE, …). Default: the protocol\'s (HTTP ' +
          'connect-failure, reset, timeout, gateway-error; gRPC UNAVAILABLE).',
      ),
    ),
    nonIdempotent: Type.Optional(
      bool('Retry non-idempotent requests (POST, PATCH) too. Default false.', DEFAULTS.retry.nonIdempotent),
    ),
  },
  { ...closed, description: 'Retries: attempts, backoff, budget and what is retried.' },
);

export const TimeoutSchema = Type.Object(
  {
    requestMs: Type.Optional(
      int(
        1,
        'Deadline for the whole call, all attempts and backoff included, ms (at most one hour). Default 15 000.',
        DEFAULTS.timeout.requestMs,
        MAX_REQUEST_MS,
      ),
    ),
    perTryMs: Type.Optional(
      int(
        1,
        'Timeout of one attempt, ms, at most requestMs. Default: none (only the request deadline).',
        undefined,
        MAX_REQUEST_MS,
      ),
    ),
  },
  { ...closed, 'x-check': 'timeout', description: 'Deadlines.' },
);

const cb = DEFAULTS.circuitBreaker;
export const CircuitBreakerSchema = Type.Object(
  {
    enabled: Type.Optional(bool('Default true.', cb.enabled)),
    consecutiveFailures: Type.Optional(
      int(1, "Open an endpoint's breaker after this many consecutive failures. Default 7.", cb.consecutiveFailures),
    ),
    errorRatePercent: Type.Optional(
      num(
        0,
        'Also open when the failure % over windowMs exceeds this (0 disables). Default 50.',
        cb.errorRatePercent,
        100,
      ),
    ),
    minRequests: Type.Optional(
      int(1, 'Minimum attempts in the window before the error rate counts. Default 20.', cb.minRequests),
    ),
    windowMs: Type.Optional(duration(100, 'Rolling window of the error rate, ms. Default 10 000.', cb.windowMs)),
    backoff: Type.Optional(backoff(cb.backoff, 1, MAX_BREAKER_BACKOFF_MS, 'open time before the half-open probe')),
    maxPending: Type.Optional(
      int(0, 'Calls waiting for a concurrency slot before new ones are rejected. Default 1024.', cb.maxPending),
    ),
    maxRequests: Type.Optional(int(1, 'Calls in flight for the whole service. Default 1024.', cb.maxRequests)),
  },
  { ...closed, description: 'Per-endpoint circuit breakers and the service-wide concurrency limits.' },
);

const od = DEFAULTS.outlierDetection;
const sr = od.successRate;
export const OutlierDetectionSchema = Type.Object(
  {
    enabled: Type.Optional(bool('Default true.', od.enabled)),
    consecutiveFailures: Type.Optional(
      int(1, 'Eject after this many consecutive failures. Default 5.', od.consecutiveFailures),
    ),
    intervalMs: Type.Optional(
      duration(10, 'How often success rates are evaluated and ejections expire, ms. Default 10 000.', od.intervalMs),
    ),
    baseEjectionMs: Type.Optional(
      duration(1, 'Ejection time = baseEjectionMs × times ejected, ms. Default 30 000.', od.baseEjectionMs),
    ),
    maxEjectionMs: Type.Optional(
      duration(
        1,
        "Cap on one ejection's time, ms, at least baseEjectionMs. Default 300 000 (or baseEjectionMs when larger).",
        od.maxEjectionMs,
      ),
    ),
    maxEjectionPercent: Type.Optional(
      num(
        0,
        'At most this % of endpoints ejected at once (at least one always kept). Default 50.',
        od.maxEjectionPercent,
        100,
      ),
    ),
    successRate: Type.Optional(
      Type.Union(
        [
          Type.Literal(false),
          Type.Object(
            {
              minimumHosts: Type.Optional(int(1, 'Minimum endpoints with enough volume. Default 5.', sr.minimumHosts)),
              requestVolume: Type.Optional(
                int(1, 'Minimum requests per endpoint per interval. Default 100.', sr.requestVolume),
              ),
              stdevFactor: Type.Optional(
                num(0, 'Eject below mean − stdev × stdevFactor / 1000. Default 1900.', sr.stdevFactor),
              ),
              enforcementPercent: Type.Optional(
                num(0, 'Chance (%) an outlier is actually ejected. Default 100.', sr.enforcementPercent, 100),
              ),
            },
            closed,
          ),
        ],
        {
          description: 'gRPC A50 success-rate ejection; `false` disables.',
          'x-expected': 'false (disabled) or an object',
        },
      ),
    ),
  },
  { ...closed, 'x-check': 'outlierDetection', description: 'Ejection of failing endpoints.' },
);

// ---------------------------------------------------------------------------
// Routes

const headerValue = (description: string) => Type.String({ description });

export const HeaderMatchSchema = Type.Union(
  [
    Type.String({ description: 'Exact match.' }),
    Type.Object({ exact: headerValue('Exact match.') }, closed),
    Type.Object({ prefix: headerValue('Prefix match.') }, closed),
    Type.Object(
      {
        regex: Type.String({
          maxLength: MAX_REGEX_LENGTH,
          description: 'JavaScript regular expression; patterns that can backtrack catastrophically are refused.',
          'x-expected': 'a regular expression',
          'x-check': 'regex',
        }),
      },
      closed,
    ),
    Type.Object({ present: Type.Boolean({ description: 'true: the header must be present; false: absent.' }) }, closed),
  ],
  { 'x-expected': 'a string (exact match) or one of { exact }, { prefix }, { regex }, { present }' },
);

const urlPath = (description: string) =>
  Type.String({ pattern: '^/', description, 'x-expected': 'a string starting with "/"' });

export const RouteSchema = Type.Object(
  {
    name: Type.Optional(Type.String({ minLength: 1, description: 'Name used in telemetry. Default `route-<index>`.' })),
    match: Type.Optional(
      Type.Object(
        {
          path: Type.Optional(urlPath('Exact path.')),
          pathPrefix: Type.Optional(urlPath('Path prefix.')),
          method: Type.Optional(
            Type.String({
              pattern: HTTP_TOKEN_PATTERN,
              description: 'HTTP method, e.g. GET (any case).',
              'x-expected': 'an HTTP method such as "GET"',
            }),
          ),
          headers: Type.Optional(
            Type.Record(Type.String({ pattern: HTTP_TOKEN_PATTERN }), HeaderMatchSchema, {
              ...closed,
              description: 'Header name (any case) to matcher.',
              'x-expected': 'an object mapping header names to matchers',
              'x-key': 'header',
              'x-check': 'headers',
            }),
          ),
        },
        {
          ...closed,
          'x-expected': 'an object { path?, pathPrefix?, method?, headers? }',
          'x-check': 'match',
          description: 'All given conditions must hold. An empty match matches everything.',
          not: Type.Object({}, { required: ['path', 'pathPrefix'] }),
        },
      ),
    ),
    backends: list(
      Type.Object(
        {
          service: Type.String({
            pattern: SERVICE_NAME_SHAPE.source,
            description: 'A service of this config.',
            'x-expected': 'a service name',
          }),
          weight: Type.Optional(int(0, 'Relative weight, integer from 0 to 1 000 000. Default 1.', 1, MAX_WEIGHT)),
        },
        { ...closed, 'x-expected': 'an object { service, weight? }' },
      ),
      'a non-empty array of { service, weight? }',
      'Weighted backend services (at least one with weight > 0).',
      { minItems: 1, 'x-check': 'backends' },
    ),
  },
  { ...closed, 'x-expected': 'a route object { name?, match?, backends }' },
);

// ---------------------------------------------------------------------------
// Service and mesh

/**
 * A gRPC method key: `package.Service/Method` or `package.Service/*` (every method of the
 * service); the package may be absent (`Service/Method`) for a .proto without one.
 */
export const METHOD_KEY_PATTERN =
  '^(?:[A-Za-z_][A-Za-z0-9_]*\\.)*[A-Za-z_][A-Za-z0-9_]*/(?:[A-Za-z_][A-Za-z0-9_]*|\\*)$';

export const MethodPolicySchema = Type.Object(
  {
    retry: Type.Optional(
      Type.Object(
        {
          maxAttempts: RetrySchema.properties.maxAttempts,
          backoff: RetrySchema.properties.backoff,
          retryOn: Type.Optional(
            list(
              Type.Enum([...GRPC_RETRY_ON_CODES], { 'x-deferred': true }),
              'an array of gRPC status names (e.g. ["UNAVAILABLE", "RESOURCE_EXHAUSTED"])',
              "gRPC status names retried for this method. Default: the service's retry.retryOn (its gRPC names), else UNAVAILABLE.",
            ),
          ),
        },
        { ...closed, description: "This method's retries; each field overrides the service's retry." },
      ),
    ),
    timeout: Type.Optional(
      Type.Object(
        {
          requestMs: TimeoutSchema.properties.requestMs,
          perTryMs: TimeoutSchema.properties.perTryMs,
        },
        { ...closed, description: "This method's deadlines; each field overrides the service's timeout." },
      ),
    ),
  },
  { ...closed, 'x-expected': 'an object { retry?, timeout? }', description: 'Policies of one gRPC method.' },
);

export const MethodsSchema = Type.Record(Type.String({ pattern: METHOD_KEY_PATTERN }), MethodPolicySchema, {
  ...closed,
  'x-key': 'method',
  'x-expected':
    'an object mapping gRPC methods ("package.Service/Method" or "package.Service/*") to { retry?, timeout? }',
  description:
    'gRPC services only: per-method retry and timeout overrides, keyed "package.Service/Method" or "package.Service/*". ' +
    'A call uses its exact method, else its service\'s "/*" entry, else the service\'s own policies.',
});

export const ServiceConfigSchema = Type.Object(
  {
    endpoints: Type.Optional(
      list(
        EndpointSchema,
        'an array of "host:port" strings or endpoint objects',
        'Endpoints of this service. Default [] (a service that only routes elsewhere, or uses dns).',
        { 'x-check': 'endpoints' },
      ),
    ),
    loadBalancer: Type.Optional(
      Type.Enum([...LOAD_BALANCERS], { description: 'Default "p2c-ewma".', default: DEFAULTS.loadBalancer }),
    ),
    hashKey: Type.Optional(
      Type.Union(
        [
          Type.Object(
            {
              header: Type.String({
                pattern: HTTP_TOKEN_PATTERN,
                description: "Hash this header's value.",
                'x-expected': 'a header name',
              }),
            },
            closed,
          ),
          Type.Object({ path: Type.Literal(true, { description: 'Hash the request path.' }) }, closed),
        ],
        {
          description: "Request key hashed by ring-hash: one header's value, or the request path.",
          'x-expected': '{ header: "<name>" } or { path: true }',
        },
      ),
    ),
    protocol: Type.Optional(
      Type.Union(
        [
          Type.Enum([...SERVICE_PROTOCOLS]),
          Type.Array(Type.Enum([...SERVICE_PROTOCOLS]), {
            minItems: 1,
            maxItems: SERVICE_PROTOCOLS.length,
            uniqueItems: true,
            'x-expected': `a non-empty list of protocols without repeats, such as ["http", "grpc"]`,
            'x-check': 'protocols',
          }),
        ],
        {
          description:
            'What the service speaks: "http", "grpc", or both as ["http", "grpc"] (e.g. REST and gRPC on one port set). ' +
            'Decides which retry.retryOn tokens are valid, and a mesh refuses calls of a protocol the service does not speak. Default "http".',
          default: DEFAULTS.protocol,
          'x-expected': '"http", "grpc", or a list of them such as ["http", "grpc"]',
        },
      ),
    ),
    ewmaDecayMs: Type.Optional(duration(1, 'Peak-EWMA decay for p2c-ewma, ms. Default 10 000.', DEFAULTS.ewmaDecayMs)),
    retry: Type.Optional(RetrySchema),
    timeout: Type.Optional(TimeoutSchema),
    circuitBreaker: Type.Optional(CircuitBreakerSchema),
    outlierDetection: Type.Optional(OutlierDetectionSchema),
    routes: Type.Optional(
      list(RouteSchema, 'an array of routes', 'Routes, matched in order; the first match picks a backend.', {
        'x-check': 'routes',
      }),
    ),
    dns: Type.Optional(DnsSchema),
    methods: Type.Optional(MethodsSchema),
  },
  {
    ...closed,
    'x-expected': 'an object (the service config)',
    'x-check': 'service',
    description: 'One service: its endpoints (or dns), policies and routes.',
    not: Type.Object({}, { required: ['endpoints', 'dns'] }),
  },
);

export const MeshConfigSchema = Type.Object(
  {
    services: Type.Record(Type.String({ pattern: SERVICE_NAME_PATTERN }), ServiceConfigSchema, {
      ...closed,
      description: 'Services by name; the name is the host in http://<name>/.',
      'x-expected': 'an object mapping service names to service configs',
    }),
  },
  {
    ...closed,
    title: 'meshlet mesh config',
    description:
      "The config of a meshlet mesh: createMesh({ services }), mesh.update(), a watchFile file, the control server's mesh.yaml.",
    'x-expected': 'an object like { services: { ... } }',
  },
);

// ---------------------------------------------------------------------------
// The hand-written input types (types.ts, with their TSDoc) must be exactly the schema's.

type Equal<A, B> = (<T>() => T extends A ? 1 : 2) extends <T>() => T extends B ? 1 : 2 ? true : false;
type Assert<T extends true> = T;

export type SchemaTypesMatch = [
  Assert<Equal<MeshConfig, Static<typeof MeshConfigSchema>>>,
  Assert<Equal<ServiceConfig, Static<typeof ServiceConfigSchema>>>,
  Assert<Equal<EndpointConfig, Static<typeof EndpointSchema>>>,
  Assert<Equal<DnsConfig, Static<typeof DnsSchema>>>,
  Assert<Equal<RetryConfig, Static<typeof RetrySchema>>>,
  Assert<Equal<TimeoutConfig, Static<typeof TimeoutSchema>>>,
  Assert<Equal<CircuitBreakerConfig, Static<typeof CircuitBreakerSchema>>>,
  Assert<Equal<OutlierDetectionConfig, Static<typeof OutlierDetectionSchema>>>,
  Assert<Equal<RouteConfig, Static<typeof RouteSchema>>>,
  Assert<Equal<HeaderMatch, Static<typeof HeaderMatchSchema>>>,
  Assert<Equal<MethodPolicyConfig, Static<typeof MethodPolicySchema>>>,
];

// ---------------------------------------------------------------------------
// The published JSON Schema

/**
 * The JSON Schema of a mesh config file (`mesh.yaml` / `mesh.json`), as published in
 * `@meshlet/core/schema/mesh.schema.json`: the schema above without meshlet's `x-` annotations.
 */
export function meshConfigJsonSchema(): Record<string, unknown> {
  const schema = strip(MeshConfigSchema) as Record<string, unknown>;
  // A JSON config file may name its schema with a top-level "$schema" string (the file reader
  // drops it); createMesh itself does not take one.
  const properties = {
    $schema: { type: 'string', description: 'The JSON Schema of this file, for editors. Ignored by meshlet.' },
    ...(schema.properties as Record<string, unknown>),
  };
  return { $schema: 'http://json-schema.org/draft-07/schema#', ...schema, properties };
}

/** A plain-JSON copy without `x-` keywords (and without TypeBox's symbol-keyed markers). */
function strip(value: unknown): unknown {
  if (Array.isArray(value)) return value.map(strip);
  if (typeof value !== 'object' || value === null) return value;
  const out: Record<string, unknown> = {};
  for (const [k, v] of Object.entries(value)) if (!k.startsWith('x-')) out[k] = strip(v);
  return out;
}
