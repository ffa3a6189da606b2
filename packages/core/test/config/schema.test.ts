/**
 * The published JSON Schema (schema/mesh.schema.json) is the validator's schema: the checked-in
 * file is what the TypeBox schema generates, editors get the bounds, enums, defaults and closed
 * objects the validator enforces, and a standard JSON Schema validator (TypeBox's compiled one)
 * never accepts a config the mesh would refuse for its structure.
 */
import assert from 'node:assert/strict';
import { readFileSync } from 'node:fs';
import { describe, it } from 'node:test';
import fc from 'fast-check';
import { Compile } from 'typebox/compile';
import { MeshConfigSchema, meshConfigJsonSchema, SERVICE_NAME_PATTERN } from '../../src/config/schema.js';
import { MAX_DURATION_MS, validateMeshConfig } from '../../src/config/validate.js';
import { MeshConfigError } from '../../src/errors.js';

const file = JSON.parse(readFileSync(new URL('../../schema/mesh.schema.json', import.meta.url), 'utf8')) as Record<
  string,
  any
>;
const jsonSchema = Compile(meshConfigJsonSchema() as never);

function accepted(input: unknown): boolean {
  try {
    validateMeshConfig(input);
    return true;
  } catch (err) {
    assert.ok(err instanceof MeshConfigError, String(err));
    return false;
  }
}

describe('published JSON Schema', () => {
  it('is the checked-in schema/mesh.schema.json (npm run schema rewrites it)', () => {
    assert.deepStrictEqual(file, JSON.parse(JSON.stringify(meshConfigJsonSchema())));
  });

  it('carries what an editor needs: closed objects, enums, bounds, defaults, descriptions', () => {
    assert.equal(file.$schema, 'http://json-schema.org/draft-07/schema#');
    assert.deepEqual(file.required, ['services']);
    assert.equal(file.additionalProperties, false);
    const services = file.properties.services;
    assert.equal(services.additionalProperties, false);
    const service = services.patternProperties[SERVICE_NAME_PATTERN];
    assert.equal(service.additionalProperties, false);
    assert.ok(service.description.length > 0);
    const p = service.properties;
    assert.deepEqual(p.loadBalancer.enum, ['p2c-ewma', 'least-request', 'round-robin', 'random', 'ring-hash']);
    assert.equal(p.loadBalancer.default, 'p2c-ewma');
    assert.deepEqual(p.protocol.anyOf[0].enum, ['http', 'grpc']);
    assert.deepEqual(
      { ...p.protocol.anyOf[1], description: undefined },
      {
        type: 'array',
        items: { enum: ['http', 'grpc'] },
        minItems: 1,
        maxItems: 2,
        uniqueItems: true,
        description: undefined,
      },
    );
    assert.equal(p.methods.additionalProperties, false);
    assert.equal(Object.keys(p.methods.patternProperties).length, 1);
    const method = Object.values(p.methods.patternProperties)[0] as any;
    assert.equal(method.additionalProperties, false);
    assert.deepEqual(Object.keys(method.properties.retry.properties), ['maxAttempts', 'backoff', 'retryOn']);
    assert.deepEqual(Object.keys(method.properties.timeout.properties), ['requestMs', 'perTryMs']);
    assert.equal(p.retry.additionalProperties, false);
    assert.deepEqual(
      { ...p.retry.properties.maxAttempts, description: undefined },
      { type: 'integer', minimum: 1, maximum: 10, default: 3, description: undefined },
    );
    assert.equal(p.outlierDetection.properties.maxEjectionMs.maximum, MAX_DURATION_MS);
    assert.equal(p.circuitBreaker.properties.backoff.properties.maxMs.maximum, Math.floor(MAX_DURATION_MS / 1.2));
    assert.equal(p.dns.properties.refreshMs.minimum, 1000);
    assert.equal(p.dns.properties.refreshMs.default, 30_000);
    assert.deepEqual(p.dns.properties.type.enum, ['A', 'AAAA', 'SRV']);
    assert.ok(p.dns.description.includes('instead of `endpoints`'));
    // meshlet's own x- annotations stay out of the published file.
    assert.ok(!JSON.stringify(file).includes('"x-'), 'x- keywords leaked into the published schema');
  });

  it('caps every duration (*Ms) at the Node timer limit, and types every one an integer', () => {
    const found: string[] = [];
    const visit = (node: unknown, path: string): void => {
      if (Array.isArray(node)) return node.forEach((n, i) => visit(n, `${path}[${i}]`));
      if (typeof node !== 'object' || node === null) return;
      for (const [key, value] of Object.entries(node)) {
        if (key.endsWith('Ms') && path.endsWith('properties')) {
          const v = value as { type: string; maximum: number; minimum: number };
          found.push(`${path}.${key}`);
          assert.equal(v.type, 'integer', `${path}.${key}`);
          assert.ok(v.maximum <= MAX_DURATION_MS, `${path}.${key} maximum ${v.maximum}`);
          assert.ok(v.minimum >= 0, `${path}.${key} minimum ${v.minimum}`);
        }
        visit(value, `${path}.${key}`);
      }
    };
    visit(file, '');
    // ewmaDecayMs, retry backoff x2 + ttlMs, timeout x2, breaker windowMs + backoff x2, outlier x3, dns refreshMs,
    // methods' retry backoff x2 and timeout x2
    assert.equal(found.length, 17, found.join('\n'));
  });

  it('agrees with the validator on service names', () => {
    const pattern = new RegExp(SERVICE_NAME_PATTERN);
    const names = [
      'users',
      'users.v2',
      'a',
      '9lives',
      'a-b.c-d',
      'constructor',
      'Users',
      'users_v2',
      '-users',
      'users-',
      '',
      'a..b',
      '42',
      'a.42',
      '127.0.0.1',
      'localhost',
      'api.localhost',
      'localhost.api',
      'a'.repeat(253),
      'a'.repeat(254),
      'users.',
    ];
    for (const name of names) {
      assert.equal(pattern.test(name), accepted({ services: { [name]: {} } }), name);
    }
  });

  it('refuses, like the validator, configs whose structure is wrong', () => {
    const bad: unknown[] = [
      {},
      { services: {}, servces: {} },
      { services: { Users: {} } },
      { services: { users: { retyr: {} } } },
      { services: { users: { retry: { maxAttempts: 11 } } } },
      { services: { users: { ewmaDecayMs: 3_000_000_000 } } },
      { services: { users: { loadBalancer: 'fastest' } } },
      { services: { users: { endpoints: [8080] } } },
      { services: { users: { endpoints: [{ weight: 2 }] } } },
      { services: { users: { outlierDetection: { successRate: true } } } },
      { services: { users: { routes: [{ backends: [] }] } } },
      { services: { users: { routes: [{ match: { path: 'x' }, backends: [{ service: 'users' }] }] } } },
      {
        services: {
          users: { routes: [{ match: { path: '/a', pathPrefix: '/b' }, backends: [{ service: 'users' }] }] },
        },
      },
      { services: { users: { dns: { name: 'u.internal', type: 'A' } } } },
      { services: { users: { dns: { name: 'u.internal', type: 'SRV', port: 80 } } } },
      { services: { users: { endpoints: [], dns: { name: 'u.internal', type: 'A', port: 80 } } } },
      { services: { users: { circuitBreaker: { backoff: { maxMs: MAX_DURATION_MS } } } } },
      { services: { users: { protocol: [] } } },
      { services: { users: { protocol: ['grpc', 'grpc'] } } },
      { services: { users: { protocol: ['http', 'smtp'] } } },
      { services: { users: { protocol: 'grpc', methods: { '/a.B/C': {} } } } },
      { services: { users: { protocol: 'grpc', methods: { 'a.B/C*': {} } } } },
      { services: { users: { protocol: 'grpc', methods: { 'a.B/C': { retry: { retryOn: ['reset'] } } } } } },
      { services: { users: { protocol: 'grpc', methods: { 'a.B/C': { retry: { budget: {} } } } } } },
      { services: { users: { protocol: 'grpc', methods: { 'a.B/C': { timeout: { requestMs: 0 } } } } } },
    ];
    for (const input of bad) {
      assert.equal(jsonSchema.Check(input), false, JSON.stringify(input));
      assert.equal(accepted(input), false, JSON.stringify(input));
    }
  });

  it('accepts a full config the validator accepts', () => {
    const config = {
      services: {
        users: {
          endpoints: ['10.0.0.1:8080', { address: '10.0.0.3:8080', weight: 5, zone: 'a', metadata: { v: '2' } }],
          loadBalancer: 'ring-hash',
          hashKey: { header: 'x-user' },
          retry: { maxAttempts: 5, backoff: { baseMs: 0, maxMs: 1000 }, budget: { ratio: 0 }, retryOn: ['5xx', '429'] },
          timeout: { requestMs: 3_600_000, perTryMs: 1000 },
          circuitBreaker: { enabled: false, backoff: { baseMs: 1, maxMs: 1 } },
          outlierDetection: { successRate: false, maxEjectionMs: MAX_DURATION_MS },
          routes: [
            {
              name: 'canary',
              match: { pathPrefix: '/api', method: 'get', headers: { 'x-a': 'b', 'x-v': { regex: '^v[0-9]+$' } } },
              backends: [{ service: 'users', weight: 9 }, { service: 'orders' }],
            },
          ],
        },
        orders: {
          protocol: 'grpc',
          dns: { name: '_grpc._tcp.orders', type: 'SRV' },
          retry: { retryOn: ['UNAVAILABLE'] },
          methods: {
            'shop.Orders/Get': { retry: { maxAttempts: 5, retryOn: ['UNAVAILABLE', 'RESOURCE_EXHAUSTED'] } },
            'shop.Orders/*': { timeout: { requestMs: 500, perTryMs: 100 }, retry: { backoff: { baseMs: 5 } } },
          },
        },
        both: { protocol: ['http', 'grpc'], retry: { retryOn: ['reset', 'UNAVAILABLE'] } },
      },
    };
    assert.ok(accepted(config));
    assert.ok(jsonSchema.Check(config), JSON.stringify(jsonSchema.Errors(config)));
  });

  it('property: what the validator accepts, the JSON Schema accepts', () => {
    const leaf = fc.constantFrom<unknown>(
      0,
      1,
      -1,
      1.5,
      10,
      11,
      100,
      2 ** 31,
      'x',
      '10.0.0.1:80',
      '/a',
      'GET',
      true,
      false,
      null,
      [],
      {},
    );
    const retry = fc.record(
      {
        maxAttempts: leaf,
        backoff: fc.record({ baseMs: leaf, maxMs: leaf }, { requiredKeys: [] }),
        retryOn: fc.array(fc.constantFrom<unknown>('5xx', 'reset', 'UNAVAILABLE', '503', 503, 'x')),
        nonIdempotent: leaf,
      },
      { requiredKeys: [] },
    );
    const service = fc.record(
      {
        endpoints: fc.array(
          fc.oneof(leaf, fc.record({ address: leaf, weight: leaf, zone: leaf }, { requiredKeys: [] })),
        ),
        loadBalancer: fc.constantFrom<unknown>('p2c-ewma', 'ring-hash', 'x'),
        hashKey: fc.constantFrom<unknown>({ header: 'x-a' }, { path: true }, { path: false }, {}),
        protocol: fc.constantFrom<unknown>('http', 'grpc', 'smtp', ['http', 'grpc'], ['grpc'], [], ['http', 'http']),
        methods: fc.dictionary(
          fc.constantFrom('a.B/C', 'a.B/*', 'B/C', '/a.B/C', 'a.B', 'x'),
          fc.record(
            {
              retry: fc.record(
                {
                  maxAttempts: leaf,
                  backoff: fc.record({ baseMs: leaf, maxMs: leaf }, { requiredKeys: [] }),
                  retryOn: fc.array(fc.constantFrom<unknown>('UNAVAILABLE', 'reset', 'OK', 'x')),
                },
                { requiredKeys: [] },
              ),
              timeout: fc.record({ requestMs: leaf, perTryMs: leaf }, { requiredKeys: [] }),
            },
            { requiredKeys: [] },
          ),
          { maxKeys: 3 },
        ),
        ewmaDecayMs: leaf,
        retry,
        timeout: fc.record({ requestMs: leaf, perTryMs: leaf }, { requiredKeys: [] }),
        outlierDetection: fc.record(
          { successRate: leaf, baseEjectionMs: leaf, maxEjectionMs: leaf },
          { requiredKeys: [] },
        ),
        dns: fc.record(
          {
            name: fc.constantFrom<unknown>('u.internal', '', 1),
            port: leaf,
            type: fc.constantFrom<unknown>('A', 'SRV', 'X'),
          },
          { requiredKeys: [] },
        ),
        routes: fc.array(
          fc.record(
            {
              name: leaf,
              match: fc.record({ path: leaf, pathPrefix: leaf, method: leaf }, { requiredKeys: [] }),
              backends: fc.array(fc.record({ service: fc.constantFrom<unknown>('users', 'nope', 'X'), weight: leaf })),
            },
            { requiredKeys: [] },
          ),
          { maxLength: 2 },
        ),
      },
      { requiredKeys: [] },
    );
    fc.assert(
      fc.property(service, (users) => {
        const config = { services: { users } };
        if (accepted(config)) assert.ok(jsonSchema.Check(config), JSON.stringify(jsonSchema.Errors(config)));
      }),
      { numRuns: 2000 },
    );
  });

  it('is the same schema object the validator walks', () => {
    assert.deepStrictEqual(
      Object.keys(MeshConfigSchema.properties.services.patternProperties),
      Object.keys(file.properties.services.patternProperties),
    );
  });
});
