/**
 * Large configs validate correctly: duplicate detection, route targets and suggestions go through
 * Maps and Sets, so validation stays linear (the time is measured by bench/config-validate.ts,
 * not asserted here).
 */
import assert from 'node:assert/strict';
import { describe, it } from 'node:test';
import { MAX_LIST_ITEMS } from '../../src/config/read.js';
import { validateMeshConfig } from '../../src/config/validate.js';
import { configError } from './config-error.js';

/** `n` distinct endpoints, alternating "host:port" strings and objects. */
function endpoints(n: number, tag = 0): unknown[] {
  const out: unknown[] = [];
  for (let i = 0; i < n; i++) {
    out.push(
      i % 2 === 0
        ? `10.${(i >> 16) & 255}.${(i >> 8) & 255}.${i & 255}:${8000 + tag}`
        : { address: `users-${tag}-${i}.internal:8080`, weight: 1 + (i % 5), zone: `z${i % 3}` },
    );
  }
  return out;
}

describe('validation at scale', () => {
  it('validates one service with 10,000 endpoints', () => {
    const s = validateMeshConfig({ services: { users: { endpoints: endpoints(10_000) } } }).services.get('users')!;
    assert.equal(s.endpoints.length, 10_000);
    assert.equal(new Set(s.endpoints.map((e) => e.address)).size, 10_000);
    assert.deepEqual(s.endpoints[1], {
      address: 'users-0-1.internal:8080',
      host: 'users-0-1.internal',
      port: 8080,
      weight: 2,
      zone: 'z1',
      metadata: s.endpoints[0]!.metadata,
    });
  });

  it('finds the one duplicate among 10,000 endpoints, and only it', () => {
    const list = endpoints(10_000);
    list[9_999] = list[4]; // the same "host:port" string as index 4
    const err = configError(() => validateMeshConfig({ services: { users: { endpoints: list } } }));
    assert.equal(err.issues.length, 1);
    assert.equal(err.path, 'services.users.endpoints[9999]');
    assert.match(err.message, /duplicate endpoint "10\.0\.0\.4:8000" \(already services\.users\.endpoints\[4\]\)/);
  });

  it('validates 1,000 services of 10 endpoints routing to each other', () => {
    const services: Record<string, unknown> = {};
    for (let i = 0; i < 1_000; i++) {
      services[`svc-${i}`] = {
        endpoints: endpoints(10, i),
        routes: [
          {
            match: { headers: { 'x-version': { regex: '^v[0-9]+$' } } },
            backends: [{ service: `svc-${(i + 1) % 1_000}` }],
          },
        ],
      };
    }
    const resolved = validateMeshConfig({ services });
    assert.equal(resolved.services.size, 1_000);
    assert.equal(resolved.services.get('svc-999')!.routes[0]!.backends[0]!.service, 'svc-0');
    assert.equal(resolved.services.get('svc-500')!.endpoints.length, 10);
  });

  it('reports every bad route target among 1,000 services, with a suggestion for a typo', () => {
    const services: Record<string, unknown> = {};
    for (let i = 0; i < 1_000; i++) services[`svc-${i}`] = { endpoints: endpoints(10, i) };
    services.web = { routes: [{ backends: [{ service: 'svc-1' }, { service: 'svx-12' }, { service: 'nope' }] }] };
    const err = configError(() => validateMeshConfig({ services }));
    assert.deepEqual(
      err.issues.map((i) => i.path),
      ['services.web.routes[0].backends[1].service', 'services.web.routes[0].backends[2].service'],
    );
    assert.match(
      err.issues[0]!.message,
      /unknown service "svx-12" \(known: svc-0, svc-1, .*, … 981 more\); did you mean "svc-12"\?$/,
    );
    assert.ok(!err.issues[1]!.message.includes('did you mean'), err.issues[1]!.message);
  });

  it('refuses a list longer than the cap without walking it', () => {
    const sparse: unknown[] = [];
    sparse.length = 2 ** 32 - 1;
    const err = configError(() => validateMeshConfig({ services: { users: { endpoints: sparse } } }));
    assert.equal(err.path, 'services.users.endpoints');
    assert.equal(
      err.message,
      `services.users.endpoints: expected at most ${MAX_LIST_ITEMS} items, got an array of length 4294967295`,
    );
  });
});
