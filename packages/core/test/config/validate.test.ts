/**
 * Tests for config validation: the documented defaults, one table of invalid configs (each must name
 * the exact path and say what was expected and what was given), issue collection, input isolation,
 * and a full config that must come back exactly as written.
 */
import assert from 'node:assert/strict';
import { describe, it } from 'node:test';
import { DEFAULTS, validateMeshConfig, validateServiceConfig } from '../../src/config/validate.js';
import { configError } from './config-error.js';

/** A null-prototype record, as the resolved config holds endpoint metadata. */
function record(entries: Record<string, string> = {}): Record<string, string> {
  return Object.assign(Object.create(null) as Record<string, string>, entries);
}

/** A mesh with one valid service `users`, extended with `extra`. */
function users(extra: Record<string, unknown>): unknown {
  return { services: { users: { endpoints: ['10.0.0.1:8080'], ...extra } } };
}

/** `users` plus a `web` service whose routes are `routes`. */
function web(routes: unknown): unknown {
  return { services: { users: { endpoints: ['10.0.0.1:8080'] }, web: { routes } } };
}

describe('validateMeshConfig defaults', () => {
  it('resolves a minimal config to the DESIGN.md defaults', () => {
    const resolved = validateMeshConfig({ services: { users: {} } });
    assert.deepEqual([...resolved.services.keys()], ['users']);
    assert.deepStrictEqual(resolved.services.get('users'), {
      name: 'users',
      protocol: 'http',
      protocols: ['http'],
      endpoints: [],
      dns: undefined,
      loadBalancer: 'p2c-ewma',
      hashKey: undefined,
      ewmaDecayMs: 10_000,
      retry: {
        maxAttempts: 3,
        backoff: { baseMs: 25, maxMs: 250 },
        budget: { ratio: 0.2, minPerSecond: 10, ttlMs: 10_000 },
        retryOn: undefined,
        nonIdempotent: false,
      },
      timeout: { requestMs: 15_000, perTryMs: undefined },
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
      routes: [],
      policy: {
        key: undefined,
        maxAttempts: 3,
        backoff: { baseMs: 25, maxMs: 250 },
        retryOn: undefined,
        nonIdempotent: false,
        requestMs: 15_000,
        perTryMs: undefined,
        requestMsPath: 'services.users.timeout.requestMs',
        perTryMsPath: 'services.users.timeout.perTryMs',
      },
      methods: undefined,
    });
  });

  it('fills endpoint and route defaults', () => {
    const resolved = validateMeshConfig({
      services: {
        users: { endpoints: ['10.0.0.1:8080'] },
        web: { routes: [{ backends: [{ service: 'users' }] }] },
      },
    });
    assert.deepStrictEqual(resolved.services.get('users')!.endpoints, [
      { address: '10.0.0.1:8080', host: '10.0.0.1', port: 8080, weight: 1, zone: undefined, metadata: record() },
    ]);
    assert.deepStrictEqual(resolved.services.get('web')!.routes, [
      {
        name: 'route-0',
        path: undefined,
        pathPrefix: undefined,
        method: undefined,
        headers: [],
        backends: [{ service: 'users', weight: 1 }],
        totalWeight: 1,
      },
    ]);
  });

  it('exports the same defaults, frozen', () => {
    const resolved = validateMeshConfig({ services: { users: {} } }).services.get('users')!;
    assert.equal(DEFAULTS.loadBalancer, resolved.loadBalancer);
    assert.equal(DEFAULTS.ewmaDecayMs, resolved.ewmaDecayMs);
    assert.deepStrictEqual({ ...DEFAULTS.retry }, { ...resolved.retry });
    assert.deepStrictEqual({ ...DEFAULTS.timeout }, { ...resolved.timeout });
    assert.deepStrictEqual({ ...DEFAULTS.circuitBreaker }, { ...resolved.circuitBreaker });
    assert.deepStrictEqual({ ...DEFAULTS.outlierDetection }, { ...resolved.outlierDetection });
    assert.equal(DEFAULTS.endpoint.weight, 1);
    assert.equal(DEFAULTS.route.backendWeight, 1);
    assert.ok(Object.isFrozen(DEFAULTS) && Object.isFrozen(DEFAULTS.retry.backoff));
    // The resolved config is the mesh's own: not frozen, and not the shared DEFAULTS objects.
    assert.notEqual(resolved.retry.backoff, DEFAULTS.retry.backoff);
    assert.ok(!Object.isFrozen(resolved.retry.backoff));
  });

  it('lets a larger base lift an unset maximum instead of failing on it', () => {
    const s = validateMeshConfig(
      users({
        retry: { backoff: { baseMs: 1000 } },
        circuitBreaker: { backoff: { baseMs: 120_000 } },
        outlierDetection: { baseEjectionMs: 600_000 },
      }),
    ).services.get('users')!;
    assert.deepStrictEqual(s.retry.backoff, { baseMs: 1000, maxMs: 1000 });
    assert.deepStrictEqual(s.circuitBreaker.backoff, { baseMs: 120_000, maxMs: 120_000 });
    assert.equal(s.outlierDetection.maxEjectionMs, 600_000);
    // A smaller base keeps the documented maximum.
    const t = validateMeshConfig(users({ retry: { backoff: { baseMs: 10 } } })).services.get('users')!;
    assert.deepStrictEqual(t.retry.backoff, { baseMs: 10, maxMs: 250 });
  });
});

describe('validateMeshConfig rejects invalid configs', () => {
  const cases: Array<{ name: string; input: unknown; path: string; fragment: string; issues?: number }> = [
    // root and service names
    {
      name: 'null root',
      input: null,
      path: '(root)',
      fragment: 'expected an object like { services: { ... } }, got null',
    },
    { name: 'array root', input: [], path: '(root)', fragment: 'got an empty array' },
    { name: 'string root', input: 'users', path: '(root)', fragment: 'got "users"' },
    { name: 'missing services', input: {}, path: 'services', fragment: 'got nothing' },
    { name: 'services is an array', input: { services: [{}] }, path: 'services', fragment: 'got an array' },
    {
      name: 'top-level typo',
      input: { services: {}, servces: {} },
      path: 'servces',
      fragment: 'unknown key (did you mean "services"?)',
    },
    {
      name: 'upper-case service name',
      input: { services: { Users: {} } },
      path: 'services.Users',
      fragment: 'expected a service name of lower-case letters',
    },
    {
      name: 'underscore in service name',
      input: { services: { users_v2: {} } },
      path: 'services.users_v2',
      fragment: 'got "users_v2"',
    },
    {
      name: 'leading dash in service name',
      input: { services: { '-users': {} } },
      path: 'services.-users',
      fragment: 'starting and ending with a letter or digit',
    },
    { name: 'empty service name', input: { services: { '': {} } }, path: 'services[""]', fragment: 'got ""' },
    {
      name: 'empty label in service name',
      input: { services: { 'a..b': {} } },
      path: 'services["a..b"]',
      fragment: 'without empty labels',
    },
    {
      name: 'numeric service name',
      input: { services: { '42': {} } },
      path: 'services.42',
      fragment: 'last label is not all digits',
    },
    {
      name: 'localhost as a service name',
      input: { services: { localhost: {} } },
      path: 'services.localhost',
      fragment:
        '"localhost" names the local host (RFC 6761), so http://localhost/ sent through the mesh fetch or dispatcher would go to this service instead of this machine; choose another name',
    },
    {
      name: 'a .localhost service name',
      input: { services: { 'api.localhost': {} } },
      path: 'services["api.localhost"]',
      fragment: '"api.localhost" names the local host (RFC 6761)',
    },
    {
      name: 'IPv4 literal as a service name',
      input: { services: { '127.0.0.1': {} } },
      path: 'services["127.0.0.1"]',
      fragment: 'last label is not all digits',
    },
    {
      name: 'very long service name',
      input: { services: { ['a'.repeat(300)]: {} } },
      path: `services[${JSON.stringify('a'.repeat(100))}...(300 characters)]`,
      fragment: 'expected a service name of at most 253 characters, got 300',
    },
    {
      name: 'service config is a string',
      input: { services: { users: 'x' } },
      path: 'services.users',
      fragment: 'expected an object (the service config), got "x"',
    },
    // unknown keys
    {
      name: 'service-level typo',
      input: users({ retyr: {} }),
      path: 'services.users.retyr',
      fragment: 'unknown key (did you mean "retry"?)',
    },
    {
      name: 'case typo',
      input: users({ loadbalancer: 'random' }),
      path: 'services.users.loadbalancer',
      fragment: 'did you mean "loadBalancer"?',
    },
    {
      name: 'nested typo',
      input: users({ circuitBreaker: { consecutiveFailure: 3 } }),
      path: 'services.users.circuitBreaker.consecutiveFailure',
      fragment: 'unknown key (did you mean "consecutiveFailures"?)',
    },
    {
      name: 'unrelated key lists the known ones',
      input: users({ colour: 'red' }),
      path: 'services.users.colour',
      fragment: 'unknown key (known keys: endpoints, loadBalancer',
    },
    // numbers
    {
      name: 'maxAttempts 0',
      input: users({ retry: { maxAttempts: 0 } }),
      path: 'services.users.retry.maxAttempts',
      fragment: 'expected an integer >= 1, got 0',
    },
    {
      name: 'maxAttempts 11',
      input: users({ retry: { maxAttempts: 11 } }),
      path: 'services.users.retry.maxAttempts',
      fragment: 'expected an integer from 1 to 10, got 11',
    },
    {
      name: 'string number',
      input: users({ retry: { maxAttempts: '3' } }),
      path: 'services.users.retry.maxAttempts',
      fragment: 'expected an integer from 1 to 10, got "3"',
    },
    {
      name: 'fractional integer',
      input: users({ retry: { maxAttempts: 2.5 } }),
      path: 'services.users.retry.maxAttempts',
      fragment: 'expected an integer from 1 to 10, got 2.5',
    },
    {
      name: 'NaN',
      input: users({ ewmaDecayMs: NaN }),
      path: 'services.users.ewmaDecayMs',
      fragment: 'expected an integer from 1 to 2147483647, got NaN',
    },
    {
      name: 'zero decay',
      input: users({ ewmaDecayMs: 0 }),
      path: 'services.users.ewmaDecayMs',
      fragment: 'expected an integer >= 1, got 0',
    },
    {
      name: 'Infinity',
      input: users({ outlierDetection: { intervalMs: Infinity } }),
      path: 'services.users.outlierDetection.intervalMs',
      fragment: 'expected an integer from 10 to 2147483647, got Infinity',
    },
    {
      name: 'null number',
      input: users({ timeout: { requestMs: null } }),
      path: 'services.users.timeout.requestMs',
      fragment: 'got null',
    },
    // endpoints
    {
      name: 'endpoints not an array',
      input: users({ endpoints: '10.0.0.1:80' }),
      path: 'services.users.endpoints',
      fragment: 'expected an array of "host:port" strings or endpoint objects, got "10.0.0.1:80"',
    },
    {
      name: 'missing port',
      input: users({ endpoints: ['users'] }),
      path: 'services.users.endpoints[0]',
      fragment: 'the port is missing), got "users"',
    },
    {
      name: 'port 0',
      input: users({ endpoints: ['10.0.0.1:0'] }),
      path: 'services.users.endpoints[0]',
      fragment: 'expected a port from 1 to 65535 in "host:port", got "10.0.0.1:0"',
    },
    {
      name: 'port 65536',
      input: users({ endpoints: ['10.0.0.1:65536'] }),
      path: 'services.users.endpoints[0]',
      fragment: 'port from 1 to 65535',
    },
    {
      name: 'named port',
      input: users({ endpoints: ['users:http'] }),
      path: 'services.users.endpoints[0]',
      fragment: 'got "users:http"',
    },
    {
      name: 'unbracketed IPv6',
      input: users({ endpoints: ['::1:8080'] }),
      path: 'services.users.endpoints[0]',
      fragment: 'expected an IPv6 address in brackets, e.g. "[::1]:8080"',
    },
    {
      name: 'bad bracketed IPv6',
      input: users({ endpoints: ['[zz::1]:80'] }),
      path: 'services.users.endpoints[0]',
      fragment: 'expected a bracketed IPv6 address and a port',
    },
    {
      name: 'bad IPv4',
      input: users({ endpoints: ['10.0.0.256:80'] }),
      path: 'services.users.endpoints[0]',
      fragment: 'expected a hostname or IPv4 address before ":port"',
    },
    {
      name: 'bad hostname',
      input: users({ endpoints: ['bad host:80'] }),
      path: 'services.users.endpoints[0]',
      fragment: 'got "bad host:80"',
    },
    {
      name: 'URL instead of address',
      input: users({ endpoints: ['http://users:80'] }),
      path: 'services.users.endpoints[0]',
      fragment: 'without scheme, credentials or path',
    },
    {
      name: 'number endpoint',
      input: users({ endpoints: [8080] }),
      path: 'services.users.endpoints[0]',
      fragment: 'got 8080',
    },
    {
      name: 'object endpoint without address',
      input: users({ endpoints: [{ weight: 2 }] }),
      path: 'services.users.endpoints[0].address',
      fragment: 'expected a "host:port" string, got nothing',
    },
    {
      name: 'duplicate endpoints',
      input: users({ endpoints: ['10.0.0.1:8080', { address: '10.0.0.1:8080', weight: 2 }] }),
      path: 'services.users.endpoints[1].address',
      fragment: 'duplicate endpoint "10.0.0.1:8080" (already services.users.endpoints[0])',
    },
    {
      name: 'duplicate after normalizing',
      input: users({ endpoints: ['Users:80', 'users:080'] }),
      path: 'services.users.endpoints[1]',
      fragment: 'duplicate endpoint "users:80"',
    },
    {
      name: 'negative endpoint weight',
      input: users({ endpoints: ['10.0.0.1:8080', { address: '10.0.0.2:8080', weight: -1 }] }),
      path: 'services.users.endpoints[1].weight',
      fragment: 'expected an integer >= 1, got -1',
    },
    {
      name: 'zero endpoint weight',
      input: users({ endpoints: [{ address: '10.0.0.2:8080', weight: 0 }] }),
      path: 'services.users.endpoints[0].weight',
      fragment: 'got 0',
    },
    {
      name: 'empty zone',
      input: users({ endpoints: [{ address: '10.0.0.2:8080', zone: '' }] }),
      path: 'services.users.endpoints[0].zone',
      fragment: 'expected a non-empty string, got ""',
    },
    {
      name: 'non-string metadata',
      input: users({ endpoints: [{ address: '10.0.0.2:8080', metadata: { v: 2 } }] }),
      path: 'services.users.endpoints[0].metadata.v',
      fragment: 'expected a string, got 2',
    },
    {
      name: 'endpoint typo',
      input: users({ endpoints: [{ address: '10.0.0.2:8080', wieght: 2 }] }),
      path: 'services.users.endpoints[0].wieght',
      fragment: 'did you mean "weight"?',
    },
    // load balancing
    {
      name: 'unknown balancer',
      input: users({ loadBalancer: 'fastest' }),
      path: 'services.users.loadBalancer',
      fragment: 'expected one of "p2c-ewma", "least-request", "round-robin", "random", "ring-hash", got "fastest"',
    },
    {
      name: 'balancer typo',
      input: users({ loadBalancer: 'round_robin' }),
      path: 'services.users.loadBalancer',
      fragment: '(did you mean "round-robin"?)',
    },
    {
      name: 'hashKey with default balancer',
      input: users({ hashKey: { header: 'x-user' } }),
      path: 'services.users.hashKey',
      fragment: "hashKey only applies to loadBalancer 'ring-hash'",
    },
    {
      name: 'hashKey with round-robin',
      input: users({ loadBalancer: 'round-robin', hashKey: { path: true } }),
      path: 'services.users.hashKey',
      fragment: 'got loadBalancer "round-robin"',
    },
    {
      name: 'hashKey path false',
      input: users({ loadBalancer: 'ring-hash', hashKey: { path: false } }),
      path: 'services.users.hashKey.path',
      fragment: 'expected true, got false',
    },
    {
      name: 'hashKey both',
      input: users({ loadBalancer: 'ring-hash', hashKey: { header: 'x', path: true } }),
      path: 'services.users.hashKey',
      fragment: 'expected { header: "<name>" } or { path: true }, got header and path',
    },
    {
      name: 'hashKey empty',
      input: users({ loadBalancer: 'ring-hash', hashKey: {} }),
      path: 'services.users.hashKey',
      fragment: 'got an empty object',
    },
    {
      name: 'hashKey string',
      input: users({ loadBalancer: 'ring-hash', hashKey: 'x-user' }),
      path: 'services.users.hashKey',
      fragment: 'expected { header: "<name>" } or { path: true }, got "x-user"',
    },
    // retry
    {
      name: 'backoff max below base',
      input: users({ retry: { backoff: { baseMs: 100, maxMs: 50 } } }),
      path: 'services.users.retry.backoff.maxMs',
      fragment: 'expected an integer >= baseMs (100), got 50',
    },
    {
      name: 'negative backoff base',
      input: users({ retry: { backoff: { baseMs: -1 } } }),
      path: 'services.users.retry.backoff.baseMs',
      fragment: 'expected an integer >= 0, got -1',
    },
    {
      name: 'budget ratio too high',
      input: users({ retry: { budget: { ratio: 1001 } } }),
      path: 'services.users.retry.budget.ratio',
      fragment: 'expected a number from 0 to 1000, got 1001',
    },
    {
      name: 'budget ttl too short',
      input: users({ retry: { budget: { ttlMs: 999 } } }),
      path: 'services.users.retry.budget.ttlMs',
      fragment: 'expected an integer >= 1000, got 999',
    },
    {
      name: 'negative minPerSecond',
      input: users({ retry: { budget: { minPerSecond: -5 } } }),
      path: 'services.users.retry.budget.minPerSecond',
      fragment: 'got -5',
    },
    {
      name: 'retryOn bad token',
      input: users({ retry: { retryOn: ['5xx', 'flaky'] } }),
      path: 'services.users.retry.retryOn[1]',
      fragment:
        'expected connect-failure, reset, timeout, gateway-error, 5xx, or an HTTP status such as "503" (service "users" has protocol "http"), got "flaky"',
    },
    {
      name: 'retryOn lower-case gRPC name',
      input: users({ retry: { retryOn: ['unavailable'] } }),
      path: 'services.users.retry.retryOn[0]',
      fragment: '"unavailable" is a gRPC status, but service "users" has protocol "http"',
    },
    {
      name: 'retryOn status out of range',
      input: users({ retry: { retryOn: ['600'] } }),
      path: 'services.users.retry.retryOn[0]',
      fragment: 'got "600"',
    },
    {
      name: 'retryOn numeric status',
      input: users({ retry: { retryOn: [503] } }),
      path: 'services.users.retry.retryOn[0]',
      fragment: 'got 503 (did you mean "503"?)',
    },
    {
      name: 'retryOn not an array',
      input: users({ retry: { retryOn: '5xx' } }),
      path: 'services.users.retry.retryOn',
      fragment: 'expected an array of retry conditions',
    },
    {
      name: 'nonIdempotent not boolean',
      input: users({ retry: { nonIdempotent: 'yes' } }),
      path: 'services.users.retry.nonIdempotent',
      fragment: 'expected true or false, got "yes"',
    },
    // timeout
    {
      name: 'perTry above request',
      input: users({ timeout: { requestMs: 1000, perTryMs: 2000 } }),
      path: 'services.users.timeout.perTryMs',
      fragment: 'expected an integer from 1 to requestMs (1000), got 2000',
    },
    {
      name: 'perTry above default request',
      input: users({ timeout: { perTryMs: 20_000 } }),
      path: 'services.users.timeout.perTryMs',
      fragment: 'requestMs (15000), got 20000',
    },
    {
      name: 'perTry zero',
      input: users({ timeout: { perTryMs: 0 } }),
      path: 'services.users.timeout.perTryMs',
      fragment: 'expected an integer >= 1, got 0',
    },
    {
      name: 'request above one hour',
      input: users({ timeout: { requestMs: 3_600_001 } }),
      path: 'services.users.timeout.requestMs',
      fragment: 'expected an integer from 1 to 3600000, got 3600001',
    },
    {
      name: 'timeout is a number',
      input: users({ timeout: 500 }),
      path: 'services.users.timeout',
      fragment: 'expected an object, got 500',
    },
    // circuit breaker and outlier detection
    {
      name: 'error rate above 100',
      input: users({ circuitBreaker: { errorRatePercent: 150 } }),
      path: 'services.users.circuitBreaker.errorRatePercent',
      fragment: 'expected a number from 0 to 100, got 150',
    },
    {
      name: 'window too short',
      input: users({ circuitBreaker: { windowMs: 50 } }),
      path: 'services.users.circuitBreaker.windowMs',
      fragment: 'expected an integer >= 100, got 50',
    },
    {
      name: 'negative maxPending',
      input: users({ circuitBreaker: { maxPending: -1 } }),
      path: 'services.users.circuitBreaker.maxPending',
      fragment: 'expected an integer >= 0, got -1',
    },
    {
      name: 'breaker enabled 1',
      input: users({ circuitBreaker: { enabled: 1 } }),
      path: 'services.users.circuitBreaker.enabled',
      fragment: 'expected true or false, got 1',
    },
    {
      name: 'breaker backoff max below base',
      input: users({ circuitBreaker: { backoff: { baseMs: 5000, maxMs: 4000 } } }),
      path: 'services.users.circuitBreaker.backoff.maxMs',
      fragment: '>= baseMs (5000), got 4000',
    },
    {
      name: 'max ejection below base',
      input: users({ outlierDetection: { baseEjectionMs: 10_000, maxEjectionMs: 5000 } }),
      path: 'services.users.outlierDetection.maxEjectionMs',
      fragment: 'expected an integer >= baseEjectionMs (10000), got 5000',
    },
    {
      name: 'successRate true',
      input: users({ outlierDetection: { successRate: true } }),
      path: 'services.users.outlierDetection.successRate',
      fragment: 'expected false (disabled) or an object, got true',
    },
    {
      name: 'negative stdevFactor',
      input: users({ outlierDetection: { successRate: { stdevFactor: -1 } } }),
      path: 'services.users.outlierDetection.successRate.stdevFactor',
      fragment: 'expected a number >= 0, got -1',
    },
    // routes
    {
      name: 'routes not an array',
      input: web({ backends: [] }),
      path: 'services.web.routes',
      fragment: 'expected an array of routes, got an object',
    },
    {
      name: 'route to unknown service',
      input: web([{ backends: [{ service: 'users' }, { service: 'usrs' }] }]),
      path: 'services.web.routes[0].backends[1].service',
      fragment: 'unknown service "usrs" (known: users, web)',
    },
    {
      name: 'bad regex',
      input: web([{ match: { headers: { 'x-version': { regex: '(' } } }, backends: [{ service: 'users' }] }]),
      path: 'services.web.routes[0].match.headers.x-version.regex',
      fragment: 'expected a valid regular expression, got "("',
    },
    {
      name: 'empty backends',
      input: web([{ backends: [] }]),
      path: 'services.web.routes[0].backends',
      fragment: 'expected a non-empty array of { service, weight? }, got an empty array',
    },
    {
      name: 'missing backends',
      input: web([{ match: { path: '/' } }]),
      path: 'services.web.routes[0].backends',
      fragment: 'got nothing',
    },
    {
      name: 'zero total weight',
      input: web([
        {
          backends: [
            { service: 'users', weight: 0 },
            { service: 'web', weight: 0 },
          ],
        },
      ]),
      path: 'services.web.routes[0].backends',
      fragment: 'expected at least one backend with weight > 0, got a total weight of 0',
    },
    {
      name: 'negative backend weight',
      input: web([{ backends: [{ service: 'users', weight: -2 }] }]),
      path: 'services.web.routes[0].backends[0].weight',
      fragment: 'expected an integer >= 0, got -2',
    },
    {
      name: 'path without slash',
      input: web([{ match: { path: 'users' }, backends: [{ service: 'users' }] }]),
      path: 'services.web.routes[0].match.path',
      fragment: 'expected a string starting with "/", got "users"',
    },
    {
      name: 'pathPrefix without slash',
      input: web([{ match: { pathPrefix: 'api' }, backends: [{ service: 'users' }] }]),
      path: 'services.web.routes[0].match.pathPrefix',
      fragment: 'got "api"',
    },
    {
      name: 'path and pathPrefix',
      input: web([{ match: { path: '/a', pathPrefix: '/b' }, backends: [{ service: 'users' }] }]),
      path: 'services.web.routes[0].match',
      fragment: 'path and pathPrefix cannot both be set',
    },
    {
      name: 'bad method',
      input: web([{ match: { method: 'GET POST' }, backends: [{ service: 'users' }] }]),
      path: 'services.web.routes[0].match.method',
      fragment: 'expected an HTTP method such as "GET", got "GET POST"',
    },
    {
      name: 'duplicate route names',
      input: web([
        { name: 'a', backends: [{ service: 'users' }] },
        { name: 'a', backends: [{ service: 'users' }] },
      ]),
      path: 'services.web.routes[1].name',
      fragment: 'duplicate route name "a" (already services.web.routes[0])',
    },
    {
      name: 'explicit name clashes with a default one',
      input: web([{ backends: [{ service: 'users' }] }, { name: 'route-0', backends: [{ service: 'users' }] }]),
      path: 'services.web.routes[1].name',
      fragment: 'duplicate route name "route-0"',
    },
    {
      name: 'two header matchers',
      input: web([{ match: { headers: { 'x-a': { exact: 'a', prefix: 'b' } } }, backends: [{ service: 'users' }] }]),
      path: 'services.web.routes[0].match.headers.x-a',
      fragment: 'got exact and prefix',
    },
    {
      name: 'present not boolean',
      input: web([{ match: { headers: { 'x-a': { present: 'yes' } } }, backends: [{ service: 'users' }] }]),
      path: 'services.web.routes[0].match.headers.x-a.present',
      fragment: 'expected true or false, got "yes"',
    },
    {
      name: 'same header twice in different case',
      input: web([{ match: { headers: { 'X-A': 'a', 'x-a': 'b' } }, backends: [{ service: 'users' }] }]),
      path: 'services.web.routes[0].match.headers.x-a',
      fragment: 'header "x-a" is matched twice',
    },
    {
      name: 'route match typo',
      input: web([{ match: { prefix: '/a' }, backends: [{ service: 'users' }] }]),
      path: 'services.web.routes[0].match.prefix',
      fragment: 'unknown key',
    },
    {
      name: 'backend not an object',
      input: web([{ backends: ['users'] }]),
      path: 'services.web.routes[0].backends[0]',
      fragment: 'expected an object { service, weight? }, got "users"',
    },
  ];

  for (const c of cases) {
    it(c.name, () => {
      const err = configError(() => validateMeshConfig(c.input));
      assert.equal(err.code, 'MESHLET_ERR_CONFIG');
      assert.equal(err.path, c.path);
      assert.ok(err.message.startsWith(`${c.path}: `), err.message);
      assert.ok(
        err.message.includes(c.fragment),
        `message ${JSON.stringify(err.message)} lacks ${JSON.stringify(c.fragment)}`,
      );
      // One mistake, one issue: no cascade of follow-up complaints.
      assert.equal(err.issues.length, c.issues ?? 1, JSON.stringify(err.issues));
    });
  }

  it('reports maxAttempts 0 with the exact documented message', () => {
    const err = configError(() => validateMeshConfig(users({ retry: { maxAttempts: 0 } })));
    assert.equal(err.message, 'services.users.retry.maxAttempts: expected an integer >= 1, got 0');
  });
});

describe('validateMeshConfig collects every issue', () => {
  it('reports all issues across services and sections in one error', () => {
    const err = configError(() =>
      validateMeshConfig({
        services: {
          users: { endpoints: ['10.0.0.1:8080', 'nope'], retry: { maxAttempts: 0, retyr: 1 } },
          Bad: {},
          web: { timeout: { perTryMs: 0 }, routes: [{ backends: [{ service: 'usrs' }] }] },
        },
      }),
    );
    assert.deepEqual(
      err.issues.map((i) => i.path),
      [
        'services.users.endpoints[1]',
        'services.users.retry.retyr',
        'services.users.retry.maxAttempts',
        'services.Bad',
        'services.web.timeout.perTryMs',
        'services.web.routes[0].backends[0].service',
      ],
    );
    assert.equal(err.path, 'services.users.endpoints[1]');
    assert.ok(err.message.includes('(and 5 more: '), err.message);
    assert.ok(err.message.includes('services.web.routes[0].backends[0].service: unknown service "usrs"'), err.message);
  });
});

describe('validateMeshConfig copies its input', () => {
  const input = () => ({
    services: {
      users: {
        endpoints: ['10.0.0.1:8080', { address: '10.0.0.2:8080', weight: 2, zone: 'a', metadata: { v: '1' } }],
        loadBalancer: 'ring-hash' as const,
        hashKey: { header: 'X-User' },
        retry: { backoff: { baseMs: 10, maxMs: 100 }, budget: { ratio: 0.5 }, retryOn: ['5xx'] },
        timeout: { requestMs: 2000, perTryMs: 500 },
        circuitBreaker: { backoff: { baseMs: 100, maxMs: 1000 } },
        outlierDetection: { successRate: { minimumHosts: 3 } },
      },
      web: {
        routes: [
          {
            match: { pathPrefix: '/api', headers: { 'x-beta': { exact: '1' } } },
            backends: [{ service: 'users', weight: 3 }],
          },
        ],
      },
    },
  });

  it('shares no object with the input, so later mutation cannot change it', () => {
    const given = input();
    const resolved = validateMeshConfig(given);
    const snapshot = validateMeshConfig(input());

    const inputObjects = new Set<object>();
    collect(given, inputObjects);
    const outputObjects = new Set<object>();
    collect(resolved, outputObjects);
    for (const o of outputObjects)
      assert.ok(!inputObjects.has(o), `resolved config aliases input object ${JSON.stringify(o)}`);

    given.services.users.endpoints.push('10.0.0.3:8080');
    (given.services.users.endpoints[1] as { metadata: Record<string, string> }).metadata.v = '2';
    given.services.users.hashKey.header = 'x-other';
    given.services.users.retry.backoff.maxMs = 1;
    given.services.users.retry.retryOn.push('reset');
    given.services.users.timeout.requestMs = 1;
    given.services.users.outlierDetection.successRate.minimumHosts = 99;
    given.services.web.routes[0]!.backends[0]!.weight = 0;
    given.services.web.routes[0]!.match.headers['x-beta'].exact = '2';
    (given.services as Record<string, unknown>).extra = {};
    assert.deepStrictEqual(resolved, snapshot);
  });
});

describe('validateMeshConfig accepts a full config', () => {
  it('resolves every option as given', () => {
    const resolved = validateMeshConfig({
      services: {
        users: {
          endpoints: [
            'users-0.internal:8080',
            '[2001:DB8::1]:9090',
            { address: '10.0.0.3:8080', weight: 5, zone: 'eu-west-1a', metadata: { version: 'v2', canary: 'true' } },
          ],
          loadBalancer: 'ring-hash',
          hashKey: { header: 'X-User-ID' },
          ewmaDecayMs: 5000,
          retry: {
            maxAttempts: 5,
            backoff: { baseMs: 0, maxMs: 1000 },
            budget: { ratio: 0, minPerSecond: 0.5, ttlMs: 60_000 },
            retryOn: ['connect-failure', 'reset', 'timeout', 'gateway-error', '5xx', '429'],
            nonIdempotent: true,
          },
          timeout: { requestMs: 3_600_000, perTryMs: 3_600_000 },
          circuitBreaker: {
            enabled: false,
            consecutiveFailures: 1,
            errorRatePercent: 0,
            minRequests: 1,
            windowMs: 100,
            backoff: { baseMs: 1, maxMs: 1 },
            maxPending: 0,
            maxRequests: 1,
          },
          outlierDetection: {
            enabled: false,
            consecutiveFailures: 1,
            intervalMs: 10,
            baseEjectionMs: 1,
            maxEjectionMs: 1,
            maxEjectionPercent: 100,
            successRate: { minimumHosts: 1, requestVolume: 1, stdevFactor: 0, enforcementPercent: 0 },
          },
        },
        'users.v2': {
          endpoints: ['10.0.1.1:8080'],
          loadBalancer: 'ring-hash',
          hashKey: { path: true },
          outlierDetection: { successRate: false },
        },
        orders: {
          protocol: 'grpc',
          endpoints: ['10.0.2.1:50051'],
          retry: { retryOn: ['UNAVAILABLE', 'RESOURCE_EXHAUSTED'] },
        },
        web: {
          loadBalancer: 'least-request',
          routes: [
            {
              name: 'canary',
              match: {
                pathPrefix: '/users/',
                method: 'get',
                headers: {
                  'X-Canary': 'always',
                  'x-tenant': { prefix: 'acme-' },
                  'X-Version': { regex: '^v[0-9]+$' },
                  'x-debug': { present: false },
                  cookie: { exact: 'a=b' },
                },
              },
              backends: [
                { service: 'users', weight: 90 },
                { service: 'users.v2', weight: 10 },
                { service: 'web', weight: 0 },
              ],
            },
            { match: { path: '/health' }, backends: [{ service: 'web' }] },
          ],
        },
      },
    });

    assert.deepEqual([...resolved.services.keys()], ['users', 'users.v2', 'orders', 'web']);
    const u = resolved.services.get('users')!;
    assert.deepStrictEqual(u, {
      name: 'users',
      endpoints: [
        {
          address: 'users-0.internal:8080',
          host: 'users-0.internal',
          port: 8080,
          weight: 1,
          zone: undefined,
          metadata: record(),
        },
        {
          address: '[2001:db8::1]:9090',
          host: '2001:db8::1',
          port: 9090,
          weight: 1,
          zone: undefined,
          metadata: record(),
        },
        {
          address: '10.0.0.3:8080',
          host: '10.0.0.3',
          port: 8080,
          weight: 5,
          zone: 'eu-west-1a',
          metadata: record({ version: 'v2', canary: 'true' }),
        },
      ],
      protocol: 'http',
      protocols: ['http'],
      dns: undefined,
      loadBalancer: 'ring-hash',
      hashKey: { header: 'x-user-id' },
      ewmaDecayMs: 5000,
      retry: {
        maxAttempts: 5,
        backoff: { baseMs: 0, maxMs: 1000 },
        budget: { ratio: 0, minPerSecond: 0.5, ttlMs: 60_000 },
        retryOn: ['connect-failure', 'reset', 'timeout', 'gateway-error', '5xx', '429'],
        nonIdempotent: true,
      },
      timeout: { requestMs: 3_600_000, perTryMs: 3_600_000 },
      circuitBreaker: {
        enabled: false,
        consecutiveFailures: 1,
        errorRatePercent: 0,
        minRequests: 1,
        windowMs: 100,
        backoff: { baseMs: 1, maxMs: 1 },
        maxPending: 0,
        maxRequests: 1,
      },
      outlierDetection: {
        enabled: false,
        consecutiveFailures: 1,
        intervalMs: 10,
        baseEjectionMs: 1,
        maxEjectionMs: 1,
        maxEjectionPercent: 100,
        successRate: { minimumHosts: 1, requestVolume: 1, stdevFactor: 0, enforcementPercent: 0 },
      },
      routes: [],
      policy: {
        key: undefined,
        maxAttempts: 5,
        backoff: { baseMs: 0, maxMs: 1000 },
        retryOn: ['connect-failure', 'reset', 'timeout', 'gateway-error', '5xx', '429'],
        nonIdempotent: true,
        requestMs: 3_600_000,
        perTryMs: 3_600_000,
        requestMsPath: 'services.users.timeout.requestMs',
        perTryMsPath: 'services.users.timeout.perTryMs',
      },
      methods: undefined,
    });

    const v2 = resolved.services.get('users.v2')!;
    assert.deepStrictEqual(v2.hashKey, { path: true });
    assert.equal(v2.outlierDetection.successRate, false);

    const orders = resolved.services.get('orders')!;
    assert.equal(orders.protocol, 'grpc');
    assert.deepStrictEqual(orders.retry.retryOn, ['UNAVAILABLE', 'RESOURCE_EXHAUSTED']);

    const w = resolved.services.get('web')!;
    assert.equal(w.loadBalancer, 'least-request');
    assert.deepStrictEqual(w.routes, [
      {
        name: 'canary',
        path: undefined,
        pathPrefix: '/users/',
        method: 'GET',
        headers: [
          { name: 'x-canary', kind: 'exact', value: 'always', regex: undefined, present: true },
          { name: 'x-tenant', kind: 'prefix', value: 'acme-', regex: undefined, present: true },
          { name: 'x-version', kind: 'regex', value: '^v[0-9]+$', regex: /^v[0-9]+$/, present: true },
          { name: 'x-debug', kind: 'present', value: '', regex: undefined, present: false },
          { name: 'cookie', kind: 'exact', value: 'a=b', regex: undefined, present: true },
        ],
        backends: [
          { service: 'users', weight: 90 },
          { service: 'users.v2', weight: 10 },
          { service: 'web', weight: 0 },
        ],
        totalWeight: 100,
      },
      {
        name: 'route-1',
        path: '/health',
        pathPrefix: undefined,
        method: undefined,
        headers: [],
        backends: [{ service: 'web', weight: 1 }],
        totalWeight: 1,
      },
    ]);
  });

  it('accepts ring-hash without a hashKey and an empty services map', () => {
    const s = validateMeshConfig(users({ loadBalancer: 'ring-hash' })).services.get('users')!;
    assert.equal(s.hashKey, undefined);
    assert.equal(validateMeshConfig({ services: {} }).services.size, 0);
  });

  it('treats explicit undefined as absent', () => {
    const s = validateMeshConfig(users({ retry: undefined, timeout: { perTryMs: undefined } })).services.get('users')!;
    assert.equal(s.retry.maxAttempts, 3);
    assert.equal(s.timeout.perTryMs, undefined);
  });
});

describe('validateServiceConfig', () => {
  it('validates one service, with paths under services.<name>', () => {
    const s = validateServiceConfig('users', { endpoints: ['10.0.0.1:80'] });
    assert.equal(s.name, 'users');
    const err = configError(() => validateServiceConfig('users', { retry: { maxAttempts: 0 } }));
    assert.equal(err.path, 'services.users.retry.maxAttempts');
    const custom = configError(() => validateServiceConfig('users', { ewmaDecayMs: -1 }, 'resources[3]'));
    assert.equal(custom.path, 'resources[3].ewmaDecayMs');
  });

  it('checks route backends against knownServices only when given', () => {
    const routes = [{ backends: [{ service: 'orders' }] }];
    assert.equal(validateServiceConfig('web', { routes }).routes[0]!.backends[0]!.service, 'orders');
    const err = configError(() => validateServiceConfig('web', { routes }, undefined, new Set(['web', 'users'])));
    assert.equal(err.path, 'services.web.routes[0].backends[0].service');
    assert.ok(err.message.endsWith('unknown service "orders" (known: users, web)'), err.message);
    const bad = configError(() => validateServiceConfig('web', { routes: [{ backends: [{ service: 'Orders' }] }] }));
    assert.ok(bad.message.includes('expected a service name, got "Orders"'), bad.message);
  });

  it('rejects a bad name', () => {
    const err = configError(() => validateServiceConfig('users.', {}));
    assert.equal(err.path, 'services["users."]');
  });
});

function collect(value: unknown, into: Set<object>): void {
  if (typeof value !== 'object' || value === null || into.has(value)) return;
  into.add(value);
  const children = value instanceof Map ? [...value.values()] : Object.values(value);
  for (const child of children) collect(child, into);
}
