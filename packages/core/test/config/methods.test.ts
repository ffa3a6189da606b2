/**
 * `methods`: per-method retry and timeout overrides of a gRPC service, keyed
 * `package.Service/Method` or `package.Service/*`, each resolved once into a complete policy
 * (the method's fields over the service's), with config errors naming the exact path.
 */
import assert from 'node:assert/strict';
import { describe, it } from 'node:test';
import { GRPC_RETRY_ON_CODES } from '../../src/config/retry-on.js';
import { validateMeshConfig, validateServiceConfig } from '../../src/config/validate.js';
import { assertIssue, configError } from './config-error.js';

function rg(cfg: Record<string, unknown>): unknown {
  return { services: { rg: { protocol: 'grpc', endpoints: ['10.0.0.1:50051'], ...cfg } } };
}

const GRPC_LIST = `a gRPC status name: ${GRPC_RETRY_ON_CODES.join(', ')}`;

describe('methods', () => {
  it('resolves each entry once, the method’s fields over the service’s', () => {
    const s = validateMeshConfig(
      rg({
        retry: { maxAttempts: 4, backoff: { baseMs: 10, maxMs: 100 }, retryOn: ['UNAVAILABLE', 'ABORTED'] },
        timeout: { requestMs: 2000, perTryMs: 500 },
        methods: {
          'routeguide.RouteGuide/GetFeature': { retry: { maxAttempts: 2, retryOn: ['RESOURCE_EXHAUSTED'] } },
          'routeguide.RouteGuide/*': { timeout: { requestMs: 300 }, retry: { backoff: { baseMs: 200 } } },
        },
      }),
    ).services.get('rg')!;
    assert.deepEqual([...s.methods!.keys()], ['routeguide.RouteGuide/GetFeature', 'routeguide.RouteGuide/*']);
    assert.deepStrictEqual(s.methods!.get('routeguide.RouteGuide/GetFeature'), {
      key: 'routeguide.RouteGuide/GetFeature',
      maxAttempts: 2,
      backoff: { baseMs: 10, maxMs: 100 },
      retryOn: ['RESOURCE_EXHAUSTED'],
      nonIdempotent: false,
      requestMs: 2000,
      perTryMs: 500,
      requestMsPath: 'services.rg.timeout.requestMs',
      perTryMsPath: 'services.rg.timeout.perTryMs',
    });
    assert.deepStrictEqual(s.methods!.get('routeguide.RouteGuide/*'), {
      key: 'routeguide.RouteGuide/*',
      maxAttempts: 4,
      // baseMs above the service's maxMs: maxMs follows it, as for the service's own backoff.
      backoff: { baseMs: 200, maxMs: 200 },
      retryOn: ['UNAVAILABLE', 'ABORTED'],
      nonIdempotent: false,
      requestMs: 300,
      perTryMs: 500,
      requestMsPath: 'services.rg.methods["routeguide.RouteGuide/*"].timeout.requestMs',
      perTryMsPath: 'services.rg.timeout.perTryMs',
    });
    assert.equal(s.policy.key, undefined);
    assert.equal(s.policy.maxAttempts, 4);
  });

  it('is undefined for a service without methods, and for an empty methods object', () => {
    assert.equal(validateMeshConfig(rg({})).services.get('rg')!.methods, undefined);
    assert.equal(validateMeshConfig(rg({ methods: {} })).services.get('rg')!.methods, undefined);
  });

  it('accepts keys without a package, and on a service speaking both protocols', () => {
    const s = validateMeshConfig(
      rg({ protocol: ['http', 'grpc'], methods: { 'Greeter/SayHello': { retry: { maxAttempts: 1 } } } }),
    ).services.get('rg')!;
    assert.equal(s.methods!.get('Greeter/SayHello')!.maxAttempts, 1);
  });

  it('refuses an HTTP token in a method’s retryOn, naming its path, even on a service speaking both', () => {
    for (const protocol of ['grpc', ['http', 'grpc']]) {
      assertIssue(
        () => validateMeshConfig(rg({ protocol, methods: { 'a.B/C': { retry: { retryOn: ['reset'] } } } })),
        'services.rg.methods["a.B/C"].retry.retryOn[0]',
        `"reset" is an HTTP retry condition, but methods["a.B/C"] applies to gRPC calls only; expected ${GRPC_LIST}, ` +
          'or HTTP retry conditions belong in services.rg.retry.retryOn',
      );
    }
    assertIssue(
      () => validateMeshConfig(rg({ methods: { 'a.B/C': { retry: { retryOn: ['UNAVAILBLE'] } } } })),
      'services.rg.methods["a.B/C"].retry.retryOn[0]',
      `expected ${GRPC_LIST} (methods["a.B/C"] applies to gRPC calls only), got "UNAVAILBLE" (did you mean "UNAVAILABLE"?)`,
    );
  });

  it('refuses methods on an HTTP-only service, naming the path', () => {
    assertIssue(
      () => validateMeshConfig(rg({ protocol: 'http', methods: { 'a.B/C': {} } })),
      'services.rg.methods',
      'methods apply to gRPC calls only, but service "rg" has protocol "http"; set protocol: "grpc" ' +
        '(or ["http", "grpc"] if it speaks both), or remove methods',
    );
    // The default protocol is http.
    const err = configError(() =>
      validateMeshConfig({ services: { web: { endpoints: ['10.0.0.1:80'], methods: { 'a.B/C': {} } } } }),
    );
    assert.equal(err.path, 'services.web.methods');
  });

  it('refuses malformed keys, with a hint for a leading slash and a partial wildcard', () => {
    assertIssue(
      () => validateMeshConfig(rg({ methods: { '/routeguide.RouteGuide/GetFeature': {} } })),
      'services.rg.methods["/routeguide.RouteGuide/GetFeature"]',
      'expected a gRPC method "package.Service/Method" or "package.Service/*", got "/routeguide.RouteGuide/GetFeature"; ' +
        'write it without the leading "/": "routeguide.RouteGuide/GetFeature"',
    );
    assertIssue(
      () => validateMeshConfig(rg({ methods: { 'a.B/Get*': {} } })),
      'services.rg.methods["a.B/Get*"]',
      'expected a gRPC method "package.Service/Method" or "package.Service/*", got "a.B/Get*"; ' +
        'a wildcard stands for a whole method name: "package.Service/*"',
    );
    // A key JSON.parse makes an own property is reported, never reaching a prototype.
    assertIssue(
      () => validateMeshConfig(JSON.parse('{"services":{"rg":{"protocol":"grpc","methods":{"__proto__":{}}}}}')),
      'services.rg.methods.__proto__',
      'expected a gRPC method "package.Service/Method" or "package.Service/*", got "__proto__"',
    );
    for (const key of ['a.B', 'a.B/', '*/C', 'a..B/C', 'a.B/C/D', 'a.B/C ', '']) {
      const err = configError(() => validateMeshConfig(rg({ methods: { [key]: {} } })));
      assert.match(err.message, /expected a gRPC method "package.Service\/Method" or "package.Service\/\*"/, key);
    }
  });

  it('checks each entry’s fields with the service’s rules, filling in the service’s values', () => {
    assertIssue(
      () => validateMeshConfig(rg({ methods: { 'a.B/C': { retry: { maxAttempts: 0 } } } })),
      'services.rg.methods["a.B/C"].retry.maxAttempts',
      'expected an integer >= 1, got 0',
    );
    assertIssue(
      () => validateMeshConfig(rg({ methods: { 'a.B/C': { retry: { budget: { ratio: 1 } } } } })),
      'services.rg.methods["a.B/C"].retry.budget',
      'unknown key (known keys: maxAttempts, backoff, retryOn)',
    );
    // perTryMs against the method's requestMs, else the service's.
    assertIssue(
      () => validateMeshConfig(rg({ methods: { 'a.B/C': { timeout: { requestMs: 100, perTryMs: 200 } } } })),
      'services.rg.methods["a.B/C"].timeout.perTryMs',
      'expected an integer from 1 to requestMs (100), got 200',
    );
    assertIssue(
      () =>
        validateMeshConfig(rg({ timeout: { requestMs: 1000 }, methods: { 'a.B/C': { timeout: { perTryMs: 2000 } } } })),
      'services.rg.methods["a.B/C"].timeout.perTryMs',
      "expected an integer from 1 to requestMs (1000, the service's), got 2000",
    );
    // A method may lengthen the deadline beyond the service's own, and its perTryMs with it.
    const long = validateMeshConfig(
      rg({ timeout: { requestMs: 1000 }, methods: { 'a.B/C': { timeout: { requestMs: 5000, perTryMs: 2000 } } } }),
    ).services.get('rg')!;
    assert.equal(long.methods!.get('a.B/C')!.perTryMs, 2000);
    // maxMs below the service's baseMs.
    assertIssue(
      () =>
        validateMeshConfig(
          rg({ retry: { backoff: { baseMs: 50 } }, methods: { 'a.B/C': { retry: { backoff: { maxMs: 10 } } } } }),
        ),
      'services.rg.methods["a.B/C"].retry.backoff.maxMs',
      "expected an integer >= baseMs (50, the service's), got 10",
    );
    assertIssue(
      () => validateMeshConfig(rg({ methods: { 'a.B/C': { retry: { backoff: { baseMs: 50, maxMs: 10 } } } } })),
      'services.rg.methods["a.B/C"].retry.backoff.maxMs',
      'expected an integer >= baseMs (50), got 10',
    );
  });

  it('reports every bad entry at once', () => {
    const err = configError(() =>
      validateMeshConfig(
        rg({
          methods: {
            'a.B/C': { retry: { retryOn: ['UNAVAILABLE', '503'] } },
            'a.B/*': { timeout: { requestMs: -1 } },
            nope: {},
          },
        }),
      ),
    );
    assert.deepEqual(
      new Set(err.issues.map((i) => i.path)),
      new Set([
        'services.rg.methods["a.B/*"].timeout.requestMs',
        'services.rg.methods.nope',
        'services.rg.methods["a.B/C"].retry.retryOn[1]',
      ]),
    );
    assert.equal(err.issues.length, 3);
  });

  it('validates through validateServiceConfig too (control-plane resources)', () => {
    const s = validateServiceConfig('rg', {
      protocol: 'grpc',
      methods: { 'a.B/*': { retry: { maxAttempts: 5 } } },
    });
    assert.equal(s.methods!.get('a.B/*')!.maxAttempts, 5);
    assertIssue(
      () => validateServiceConfig('rg', { methods: { 'a.B/*': {} } }),
      'services.rg.methods',
      'methods apply to gRPC calls only, but service "rg" has protocol "http"; set protocol: "grpc" ' +
        '(or ["http", "grpc"] if it speaks both), or remove methods',
    );
  });
});
