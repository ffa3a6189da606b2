// MemoryStore: registrations keyed by (node id, service, address), replace-by-node, change events.
import { describe, it } from 'node:test';
import assert from 'node:assert/strict';
import { MemoryStore, type StoredRegistration, type StoreChange } from '../src/store.js';

function reg(nodeId: string, service: string, address: string): StoredRegistration {
  return { nodeId, service, address, weight: 1, zone: undefined, metadata: {}, since: 0 };
}

describe('MemoryStore', () => {
  it("replaces a node's whole set and indexes it by service", () => {
    const store = new MemoryStore();
    const changes: StoreChange[] = [];
    store.watch((c) => changes.push(c));
    store.replaceRegistrations('n1', [reg('n1', 'users', 'a:1'), reg('n1', 'orders', 'b:1')]);
    store.replaceRegistrations('n2', [reg('n2', 'users', 'a:2')]);
    assert.deepEqual(
      store
        .registrationsOf('users')
        .map((r) => r.address)
        .sort(),
      ['a:1', 'a:2'],
    );
    store.replaceRegistrations('n1', [reg('n1', 'users', 'a:1')]);
    assert.deepEqual(store.registrationsOf('orders'), []);
    assert.equal(store.listRegistrations().length, 2);
    store.replaceRegistrations('n1', []);
    assert.deepEqual(store.registrationsOfNode('n1'), []);
    assert.deepEqual(
      store.registrationsOf('users').map((r) => r.address),
      ['a:2'],
    );
    assert.deepEqual(changes.at(-1), { kind: 'registrations', nodeId: 'n1', services: ['users'] });
    assert.deepEqual(changes[2], { kind: 'registrations', nodeId: 'n1', services: ['users', 'orders'] });
  });

  it('does not report a change when a node with nothing withdraws nothing', () => {
    const store = new MemoryStore();
    let n = 0;
    const off = store.watch(() => n++);
    store.replaceRegistrations('ghost', []);
    assert.equal(n, 0);
    store.setConfig({ path: 'x', services: {}, loadedAt: 0 });
    assert.equal(n, 1);
    off();
    store.setConfig({ path: 'x', services: {}, loadedAt: 0 });
    assert.equal(n, 1);
  });
});
