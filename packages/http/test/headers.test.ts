// Header helpers read only a header object's own properties and gather facts in one pass.
import { describe, it } from 'node:test';
import assert from 'node:assert/strict';
import { findHeader, meshHeaders, scanHeaders, type HeaderFacts } from '../src/headers.js';

describe('headers', () => {
  it('findHeader never reads inherited properties', () => {
    assert.equal(findHeader({}, 'constructor'), undefined);
    assert.equal(findHeader({}, 'tostring'), undefined);
    const proto = { 'x-inherited': 'yes' };
    assert.equal(findHeader(Object.create(proto), 'x-inherited'), undefined);
    assert.equal(findHeader({ Host: 'a' }, 'host'), 'a');
    assert.equal(findHeader(['X-A', '1', 'x-a', '2'], 'x-a'), '1');
    assert.equal(findHeader(new Map([['X-A', '3']]) as never, 'x-a'), '3');
  });

  it('scanHeaders finds Host, Content-Length and Idempotency-Key in every form', () => {
    const facts: HeaderFacts = { hasHost: false, contentLength: NaN, idempotencyKey: false };
    scanHeaders({ HOST: 'x', 'Content-Length': '12', 'idempotency-key': 'k' }, facts);
    assert.deepEqual(facts, { hasHost: true, contentLength: 12, idempotencyKey: true });
    scanHeaders(['content-length', '3'], facts);
    assert.deepEqual(facts, { hasHost: false, contentLength: 3, idempotencyKey: false });
    scanHeaders(new Map([['Host', 'h']]) as never, facts);
    assert.equal(facts.hasHost, true);
    scanHeaders(Object.create({ host: 'inherited' }), facts);
    assert.equal(facts.hasHost, false);
    scanHeaders(undefined, facts);
    assert.ok(Number.isNaN(facts.contentLength));
  });

  it("meshHeaders copies, drops Host and the caller's own mesh headers, and appends the mesh's", () => {
    assert.deepEqual(
      meshHeaders({ Host: 'x', a: ['1', '2'], b: null, 'Meshlet-Timeout': '99999S', 'MESHLET-CALLER': 'spoof' }, 'web'),
      ['a', '1', 'a', '2', 'meshlet-caller', 'web', 'meshlet-timeout', ''],
    );
    assert.deepEqual(meshHeaders(['HOST', 'x', 'c', '3'], undefined), ['c', '3', 'meshlet-timeout', '']);
    assert.deepEqual(meshHeaders(Object.create({ inherited: '1' }), undefined), ['meshlet-timeout', '']);
  });
});
