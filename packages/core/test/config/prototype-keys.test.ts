/**
 * Keys that name Object.prototype members (`__proto__`, `constructor`, `toString`,
 * `hasOwnProperty`) are ordinary data or a reported unknown key, at every level; nothing is read
 * from Object.prototype (a polluted one included), nothing pollutes it, and what the engine
 * reads at request time has no prototype to fall back on.
 */
import assert from 'node:assert/strict';
import { afterEach, describe, it } from 'node:test';
import { validateMeshConfig } from '../../src/config/validate.js';
import { createMesh } from '../../src/mesh.js';
import { configError } from './config-error.js';

const PROTO_NAMES = ['__proto__', 'constructor', 'toString', 'hasOwnProperty', 'valueOf', 'prototype'];

/** Sets enumerable keys on Object.prototype, as a polluting library would; undone after each test. */
const polluted: string[] = [];
function pollute(key: string, value: unknown): void {
  (Object.prototype as Record<string, unknown>)[key] = value;
  polluted.push(key);
}
afterEach(() => {
  for (const key of polluted.splice(0)) delete (Object.prototype as Record<string, unknown>)[key];
});

describe('keys named like Object.prototype members', () => {
  it('are unknown keys with a path at every fixed-key level, parsed from JSON', () => {
    for (const name of PROTO_NAMES) {
      const key = JSON.stringify(name);
      const levels: Array<[string, string]> = [
        [`{"services":{},${key}:{}}`, name],
        [`{"services":{"users":{${key}:{}}}}`, `services.users.${name}`],
        [`{"services":{"users":{"retry":{${key}:1}}}}`, `services.users.retry.${name}`],
        [
          `{"services":{"users":{"endpoints":[{"address":"10.0.0.1:80",${key}:1}]}}}`,
          `services.users.endpoints[0].${name}`,
        ],
        [
          `{"services":{"users":{"routes":[{"backends":[{"service":"users"}],"match":{${key}:1}}]}}}`,
          `services.users.routes[0].match.${name}`,
        ],
        [
          `{"services":{"users":{"routes":[{"backends":[{"service":"users"}],"match":{"headers":{"x-a":{${key}:"1"}}}}]}}}`,
          `services.users.routes[0].match.headers.x-a.${name}`,
        ],
      ];
      for (const [json, path] of levels) {
        const err = configError(() => validateMeshConfig(JSON.parse(json)));
        assert.equal(err.path, path, `${json}: ${err.message}`);
        assert.match(err.message, /unknown key/);
      }
    }
    assert.equal(({} as Record<string, unknown>).retry, undefined);
  });

  it('are ordinary names in records: header names and metadata keys', () => {
    const config = JSON.parse(`{
      "services": {
        "users": {
          "endpoints": [{ "address": "10.0.0.1:80", "metadata": { "__proto__": "a", "constructor": "b", "toString": "c" } }],
          "routes": [{
            "match": { "headers": { "__proto__": { "present": true }, "constructor": "x", "hasOwnProperty": { "prefix": "y" } } },
            "backends": [{ "service": "users" }]
          }]
        }
      }
    }`);
    const s = validateMeshConfig(config).services.get('users')!;
    const metadata = s.endpoints[0]!.metadata;
    assert.equal(Object.getPrototypeOf(metadata), null);
    assert.deepEqual(Object.keys(metadata), ['__proto__', 'constructor', 'toString']);
    assert.equal(metadata.__proto__, 'a');
    assert.equal(metadata.constructor, 'b');
    assert.deepEqual(
      s.routes[0]!.headers.map((h) => [h.name, h.kind]),
      [
        ['__proto__', 'present'],
        ['constructor', 'exact'],
        ['hasownproperty', 'prefix'],
      ],
    );
    assert.equal(({} as Record<string, unknown>).present, undefined);
  });

  it('resolves metadata without a prototype, so a missing key reads as undefined', () => {
    const s = validateMeshConfig({
      services: { users: { endpoints: [{ address: '10.0.0.1:80', metadata: { v: '1' } }] } },
    }).services.get('users')!;
    const metadata = s.endpoints[0]!.metadata as Record<string, unknown>;
    assert.equal(metadata.toString, undefined);
    assert.equal(metadata.constructor, undefined);
    assert.equal('hasOwnProperty' in metadata, false);
  });

  it('refuses service names that are not host names, "__proto__" and "toString" included, with their path', () => {
    const err = configError(() => validateMeshConfig(JSON.parse('{"services":{"__proto__":{},"toString":{}}}')));
    assert.deepEqual(
      err.issues.map((i) => i.path),
      ['services.__proto__', 'services.toString'],
    );
    assert.match(err.issues[0]!.message, /expected a service name of lower-case letters/);
  });

  it('accepts a service named "constructor" as an ordinary service', async () => {
    const config = {
      services: {
        constructor: { endpoints: ['10.0.0.1:80'] },
        web: { routes: [{ backends: [{ service: 'constructor' }] }] },
      },
    };
    assert.deepEqual([...validateMeshConfig(config).services.keys()], ['constructor', 'web']);
    const mesh = createMesh(config);
    assert.ok(mesh.hasService('constructor'));
    assert.ok(!mesh.hasService('toString'));
    await mesh.close();
  });

  it('never reads a polluted Object.prototype', () => {
    pollute('retry', { maxAttempts: 0 });
    pollute('endpoints', ['not an address']);
    pollute('backends', []);
    pollute('weight', -1);
    pollute('regex', '(a+)+$');
    const s = validateMeshConfig({
      services: {
        users: {
          endpoints: [{ address: '10.0.0.1:80' }],
          routes: [{ backends: [{ service: 'users' }], match: { headers: { 'x-a': { exact: '1' } } } }],
        },
      },
    }).services.get('users')!;
    assert.equal(s.retry.maxAttempts, 3);
    assert.equal(s.endpoints[0]!.weight, 1);
    assert.equal(s.routes[0]!.backends[0]!.weight, 1);
    assert.equal(s.routes[0]!.headers[0]!.kind, 'exact');
  });

  it('does not take a polluted "services" for a missing one', () => {
    pollute('services', { users: {} });
    const err = configError(() => validateMeshConfig({}));
    assert.equal(err.path, 'services');
    assert.match(err.message, /got nothing/);
  });

  it('does not read an index inherited from a polluted Array.prototype into a hole', () => {
    (Array.prototype as unknown as Record<number, unknown>)[1] = '10.0.0.9:80';
    try {
      // eslint-disable-next-line no-sparse-arrays
      const err = configError(() =>
        validateMeshConfig({ services: { users: { endpoints: ['10.0.0.1:80', , '10.0.0.2:80'] } } }),
      );
      assert.equal(err.path, 'services.users.endpoints[1]');
      assert.match(err.message, /got nothing/);
    } finally {
      delete (Array.prototype as unknown as Record<number, unknown>)[1];
    }
  });
});
