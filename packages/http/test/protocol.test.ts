// Telemetry attributes: cached, frozen objects per (endpoint, method, status | error), semconv
// _OTHER for unknown methods, bounded per endpoint.
import { describe, it } from 'node:test';
import assert from 'node:assert/strict';
import type { Endpoint } from '@meshlet/core';
import { ATTRIBUTE_CACHE_LIMIT, AttributeCache } from '../src/protocol.js';

const ep = (host: string, port: number): Endpoint => ({ host, port, address: `${host}:${port}` }) as Endpoint;

describe('AttributeCache', () => {
  it('returns the same frozen object for the same endpoint, method and status', () => {
    const cache = new AttributeCache();
    const e = ep('10.0.0.1', 80);
    const a = cache.forStatus(e, 'users', 'GET', 200);
    assert.equal(cache.forStatus(e, 'users', 'GET', 200), a);
    assert.ok(Object.isFrozen(a));
    assert.deepEqual(a, {
      'http.request.method': 'GET',
      'server.address': '10.0.0.1',
      'server.port': 80,
      'http.response.status_code': 200,
      'meshlet.service': 'users',
    });
    assert.notEqual(cache.forStatus(e, 'users', 'POST', 200), a);
    assert.notEqual(cache.forStatus(ep('10.0.0.2', 80), 'users', 'GET', 200), a);
    assert.equal(cache.forStatus(e, 'users', 'GET', 503)['error.type'], '503');
  });

  it('reports unknown methods as _OTHER and shares their objects', () => {
    const cache = new AttributeCache();
    const e = ep('h', 1);
    const a = cache.forStatus(e, 'users', 'PURGE', 200);
    assert.equal(a['http.request.method'], '_OTHER');
    assert.equal(cache.forStatus(e, 'users', 'FOO', 200), a);
  });

  it('caches error attributes by error type', () => {
    const cache = new AttributeCache();
    const e = ep('h', 1);
    const refused = Object.assign(new Error('x'), { code: 'ECONNREFUSED' });
    const a = cache.forError(e, 'users', 'GET', refused);
    assert.equal(a['error.type'], 'connect-failure');
    assert.equal(cache.forError(e, 'users', 'GET', Object.assign(new Error('y'), { code: 'ECONNREFUSED' })), a);
  });

  it('is bounded per endpoint: past the limit, points still get correct (uncached) attributes', () => {
    const cache = new AttributeCache();
    const e = ep('h', 1);
    for (let s = 0; s < ATTRIBUTE_CACHE_LIMIT; s++) cache.forStatus(e, 'users', 'GET', 100 + s);
    const a = cache.forStatus(e, 'users', 'GET', 999);
    assert.equal(a['http.response.status_code'], 999);
    assert.notEqual(cache.forStatus(e, 'users', 'GET', 999), a, 'not cached past the limit');
  });
});
