/**
 * `dns` in a service config: endpoints discovered from DNS instead of a static list. A/AAAA need a
 * port, SRV records carry their own; `dns` and `endpoints` exclude each other; refreshMs is a timer.
 */
import assert from 'node:assert/strict';
import { describe, it } from 'node:test';
import { MAX_DURATION_MS, validateMeshConfig, validateServiceConfig } from '../../src/config/validate.js';
import { assertIssue, configError } from './config-error.js';

const users = (service: Record<string, unknown>) => ({ services: { users: service } });

describe('service dns', () => {
  it('resolves A, AAAA and SRV, with refreshMs defaulting to 30 s and no static endpoints', () => {
    const resolved = validateMeshConfig({
      services: {
        users: { dns: { name: 'Users.Internal', port: 8080, type: 'A' } },
        orders: { dns: { name: 'orders.internal.', port: 443, type: 'AAAA', refreshMs: 1000 } },
        billing: { dns: { name: '_http._tcp.billing.internal', type: 'SRV', refreshMs: MAX_DURATION_MS } },
      },
    }).services;
    assert.deepStrictEqual(resolved.get('users')!.dns, {
      name: 'users.internal',
      port: 8080,
      type: 'A',
      refreshMs: 30_000,
    });
    assert.deepStrictEqual(resolved.get('users')!.endpoints, []);
    assert.deepStrictEqual(resolved.get('orders')!.dns, {
      name: 'orders.internal.',
      port: 443,
      type: 'AAAA',
      refreshMs: 1000,
    });
    assert.deepStrictEqual(resolved.get('billing')!.dns, {
      name: '_http._tcp.billing.internal',
      port: undefined,
      type: 'SRV',
      refreshMs: MAX_DURATION_MS,
    });
  });

  it('is undefined for a service with static endpoints', () => {
    const s = validateServiceConfig('users', { endpoints: ['10.0.0.1:80'] });
    assert.equal(s.dns, undefined);
    assert.equal(s.endpoints.length, 1);
  });

  it('copies the dns object: mutating the input later changes nothing', () => {
    const dns = { name: 'users.internal', port: 80, type: 'A' as const };
    const s = validateServiceConfig('users', { dns });
    dns.port = 81;
    assert.equal(s.dns!.port, 80);
    assert.notEqual(s.dns as object, dns);
  });

  it('refuses dns together with endpoints', () => {
    assertIssue(
      () =>
        validateMeshConfig(users({ endpoints: ['10.0.0.1:80'], dns: { name: 'users.internal', port: 80, type: 'A' } })),
      'services.users.dns',
      'expected either endpoints or dns, got both; dns discovers the endpoints, so remove endpoints (or remove dns to keep a static list)',
    );
  });

  it('requires a port for A and AAAA records', () => {
    for (const type of ['A', 'AAAA']) {
      assertIssue(
        () => validateMeshConfig(users({ dns: { name: 'users.internal', type } })),
        'services.users.dns.port',
        `expected a port from 1 to 65535 (required: "${type}" records carry no port), got nothing`,
      );
    }
  });

  it('refuses a port with SRV records', () => {
    assertIssue(
      () => validateMeshConfig(users({ dns: { name: '_http._tcp.users', type: 'SRV', port: 80 } })),
      'services.users.dns.port',
      `SRV records carry each endpoint's port, so port is not allowed with type "SRV", got 80; remove port`,
    );
  });

  it('names the path and the value of every other mistake', () => {
    const cases: Array<[unknown, string, string]> = [
      [
        { name: 'users.internal', port: 80, type: 'MX' },
        'services.users.dns.type',
        'expected one of "A", "AAAA", "SRV", got "MX"',
      ],
      [{ name: 'users.internal', port: 80, type: 'srv' }, 'services.users.dns.type', 'got "srv" (did you mean "SRV"?)'],
      [{ name: 'users.internal', port: 0, type: 'A' }, 'services.users.dns.port', 'expected an integer >= 1, got 0'],
      [{ name: 'users.internal', port: 80.5, type: 'A' }, 'services.users.dns.port', 'got 80.5'],
      [
        { name: 'users.internal', port: 80, type: 'A', refreshMs: 999 },
        'services.users.dns.refreshMs',
        'expected an integer >= 1000, got 999',
      ],
      [
        { name: 'users.internal', port: 80, type: 'A', refreshMs: 2 ** 31 },
        'services.users.dns.refreshMs',
        'expected an integer from 1000 to 2147483647, got 2147483648',
      ],
      [
        { name: 'users internal', port: 80, type: 'A' },
        'services.users.dns.name',
        'expected a DNS name such as "users.internal", got "users internal"',
      ],
      [{ name: '', port: 80, type: 'A' }, 'services.users.dns.name', 'got ""'],
      [{ port: 80, type: 'A' }, 'services.users.dns.name', 'got nothing'],
      [{ name: 'users.internal', port: 80 }, 'services.users.dns.type', 'got nothing'],
      [
        { name: '10.0.0.1', port: 80, type: 'A' },
        'services.users.dns.name',
        'expected a DNS name, got the IP address "10.0.0.1"; list it under endpoints instead of dns',
      ],
      [
        { name: 'users.internal', port: 80, type: 'A', refreshMS: 5000 },
        'services.users.dns.refreshMS',
        'unknown key (did you mean "refreshMs"?)',
      ],
      [
        'users.internal',
        'services.users.dns',
        'expected an object { name, port?, type, refreshMs? }, got "users.internal"',
      ],
    ];
    for (const [dns, path, fragment] of cases) {
      const err = configError(() => validateMeshConfig(users({ dns })));
      assert.equal(err.path, path, err.message);
      assert.ok(err.message.includes(fragment), `${err.message} lacks ${fragment}`);
      assert.equal(err.issues.length, 1, JSON.stringify(err.issues));
    }
  });

  it('refuses a name longer than a DNS name can be', () => {
    const name = `${'a'.repeat(60)}.`.repeat(5);
    assertIssue(
      () => validateServiceConfig('users', { dns: { name, port: 80, type: 'A' } }),
      'services.users.dns.name',
      `expected a DNS name such as "users.internal" of at most 253 characters, got ${name.length} characters`,
    );
  });
});
