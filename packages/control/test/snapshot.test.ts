// Resources and versions: what the server serves for a config + DNS + registrations, and when the
// version moves.
import { describe, it } from 'node:test';
import assert from 'node:assert/strict';
import { decodeResource, ENDPOINT_SET_TYPE_URL, SERVICE_TYPE_URL } from '@meshlet/discovery/protocol';
import { buildResources } from '../src/resources.js';
import { SnapshotBuilder } from '../src/snapshot.js';
import type { StoredRegistration } from '../src/store.js';

const reg = (service: string, address: string, nodeId = 'n'): StoredRegistration => ({
  nodeId,
  service,
  address,
  weight: 3,
  zone: 'z',
  metadata: { v: '2' },
  since: 0,
});

describe('buildResources', () => {
  it('unions static, DNS and registered endpoints by address (static first) and strips endpoints and dns from services', () => {
    const set = buildResources(
      {
        users: { endpoints: ['10.0.0.1:80', { address: '10.0.0.2:80', weight: 5 }], retry: { maxAttempts: 2 } },
        dnsy: { dns: { name: 'x', port: 80, type: 'A' }, timeout: { requestMs: 100 } },
      },
      new Map([['dnsy', [{ address: '10.1.0.1:80', weight: 1 }]]]),
      [reg('users', '10.0.0.2:80'), reg('users', '10.0.0.3:80'), reg('solo', '10.2.0.1:80')],
    );
    assert.deepEqual([...set.services.keys()], ['dnsy', 'users']);
    assert.deepEqual(set.services.get('users'), { retry: { maxAttempts: 2 } });
    assert.deepEqual(set.services.get('dnsy'), { timeout: { requestMs: 100 } });
    assert.deepEqual([...set.endpointSets.keys()], ['dnsy', 'solo', 'users']);
    assert.deepEqual(set.endpointSets.get('users'), [
      { address: '10.0.0.1:80', weight: 1, zone: '', metadata: {} },
      { address: '10.0.0.2:80', weight: 5, zone: '', metadata: {} },
      { address: '10.0.0.3:80', weight: 3, zone: 'z', metadata: { v: '2' } },
    ]);
    assert.deepEqual(
      set.endpointSets.get('dnsy')!.map((e) => e.address),
      ['10.1.0.1:80'],
    );
    assert.deepEqual(
      set.endpointSets.get('solo')!.map((e) => e.address),
      ['10.2.0.1:80'],
    );
  });
});

describe('SnapshotBuilder', () => {
  it('bumps the version only for a real change, and only the types that changed get it', () => {
    const b = new SnapshotBuilder(() => 1000);
    const services = { users: { endpoints: ['10.0.0.1:80'], retry: { maxAttempts: 2 } } };
    const sources = new Map<string, object>([['users', services.users]]);
    assert.deepEqual(b.update(buildResources(services, new Map(), []), sources), [
      SERVICE_TYPE_URL,
      ENDPOINT_SET_TYPE_URL,
    ]);
    assert.equal(b.version, '1');
    assert.deepEqual(b.update(buildResources(services, new Map(), []), sources), []);
    assert.equal(b.version, '1');
    const prepared = b.type(SERVICE_TYPE_URL).prepared;

    assert.deepEqual(b.update(buildResources(services, new Map(), [reg('users', '10.0.0.9:80')]), sources), [
      ENDPOINT_SET_TYPE_URL,
    ]);
    assert.equal(b.version, '2');
    assert.equal(b.type(SERVICE_TYPE_URL).version, '1');
    assert.equal(b.type(ENDPOINT_SET_TYPE_URL).version, '2');
    // The Service bytes were not rebuilt: the same prepared object is still served.
    assert.equal(b.type(SERVICE_TYPE_URL).prepared, prepared);
    assert.equal(b.type(ENDPOINT_SET_TYPE_URL).prepared.count, 1);
  });

  it('re-encodes only the endpoint sets that changed', () => {
    const b = new SnapshotBuilder(() => 0);
    const services: Record<string, Record<string, unknown>> = {};
    for (let i = 0; i < 50; i++) services[`svc-${i}`] = { endpoints: [`10.0.0.${i}:80`] };
    const sources = new Map<string, object>(Object.entries(services));
    b.update(buildResources(services, new Map(), []), sources);
    const before = new Map(b.type(ENDPOINT_SET_TYPE_URL).encoded);
    b.update(buildResources(services, new Map(), [reg('svc-7', '10.9.9.9:80')]), sources);
    const after = b.type(ENDPOINT_SET_TYPE_URL).encoded;
    for (const [name, bytes] of after) {
      if (name === 'svc-7') assert.notEqual(bytes, before.get(name));
      else assert.equal(bytes, before.get(name), `${name} was re-encoded`);
    }
  });

  it('names each Service resource after its own service when two share one config object (YAML aliases)', () => {
    const b = new SnapshotBuilder(() => 0);
    const shared = { retry: { maxAttempts: 4 } };
    const services = { a: shared, b: shared };
    b.update(buildResources(services, new Map(), []), new Map(Object.entries(services)));
    const encoded = b.type(SERVICE_TYPE_URL).encoded;
    for (const name of ['a', 'b']) {
      const decoded = decodeResource({ typeUrl: SERVICE_TYPE_URL, value: encoded.get(name)! });
      assert.ok(decoded.ok);
      assert.equal(decoded.name, name);
    }
  });

  it('re-encodes after a reload only the services whose content changed', () => {
    const b = new SnapshotBuilder(() => 0);
    const load = (maxAttempts: number) => ({ a: { retry: { maxAttempts: 2 } }, b: { retry: { maxAttempts } } });
    const first = load(2);
    b.update(buildResources(first, new Map(), []), new Map(Object.entries(first)));
    const before = new Map(b.type(SERVICE_TYPE_URL).encoded);
    const second = load(3);
    assert.deepEqual(b.update(buildResources(second, new Map(), []), new Map(Object.entries(second))), [
      SERVICE_TYPE_URL,
    ]);
    const after = b.type(SERVICE_TYPE_URL).encoded;
    assert.equal(after.get('a'), before.get('a'));
    assert.notEqual(after.get('b'), before.get('b'));
  });

  it('encodes resources the client decodes back', () => {
    const b = new SnapshotBuilder(() => 0);
    const services = { users: { endpoints: [{ address: '10.0.0.1:80', zone: 'a' }], loadBalancer: 'round-robin' } };
    b.update(buildResources(services, new Map(), []), new Map([['users', services.users]]));
    assert.equal(b.type(SERVICE_TYPE_URL).encoded.size, 1);
    const any = { typeUrl: SERVICE_TYPE_URL, value: b.type(SERVICE_TYPE_URL).encoded.get('users')! };
    const decoded = decodeResource(any);
    assert.ok(decoded.ok);
    assert.deepEqual(decoded.ok && decoded.value, { loadBalancer: 'round-robin' });
  });
});
