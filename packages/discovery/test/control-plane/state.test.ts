// Per-resource evaluation of one response (A46/A88), combining Service and EndpointSet into
// service configs, and finding the services a config error names.
import { describe, it } from 'node:test';
import assert from 'node:assert/strict';
import protobuf from 'protobufjs';
import { encodeEndpointSet, encodeService, ENDPOINT_SET_TYPE_URL, SERVICE_TYPE_URL } from '../../src/protocol/index.js';
import { writeStruct } from '../../src/protocol/struct.js';
import {
  combine,
  evaluateResponse,
  servicesNamed,
  split,
  type ResourceMap,
  type ResourceMemo,
} from '../../src/control-plane/state.js';

describe('evaluateResponse', () => {
  it('valid resources replace, invalid ones keep their last good version, absent ones go', () => {
    const current: ResourceMap = new Map<string, never>([
      ['a', { retry: { maxAttempts: 2 } } as never],
      ['b', {} as never],
      ['gone', {} as never],
    ]);
    const { next, rejected } = evaluateResponse(
      'service',
      [
        encodeService('a', { retry: { maxAttempts: 0 } }),
        encodeService('b', { protocol: 'grpc' }),
        encodeService('c', { loadBalancer: 'nope' as never }),
      ],
      current,
    );
    assert.deepEqual(Object.fromEntries(next), { a: { retry: { maxAttempts: 2 } }, b: { protocol: 'grpc' } });
    assert.deepEqual(
      rejected.map((r) => r.name),
      ['a', 'c'],
    );
    assert.match(rejected[0].reason, /^services\.a\.retry\.maxAttempts: /);
    assert.match(rejected[1].reason, /^services\.c\.loadBalancer: /);
  });

  it('a Service carrying endpoints is refused (they belong in the EndpointSet)', () => {
    const { rejected } = evaluateResponse(
      'service',
      [encodeWithEndpoints('a', { endpoints: ['127.0.0.1:1'] })],
      new Map(),
    );
    assert.match(rejected[0].reason, /services\.a\.endpoints: a Service resource carries no endpoints/);
  });

  it('an undecodable resource removes nothing (it may be one of the absent ones)', () => {
    const current: ResourceMap = new Map([['a', [{ address: '127.0.0.1:1' }]]]);
    const { next, rejected } = evaluateResponse(
      'endpointSet',
      [{ typeUrl: ENDPOINT_SET_TYPE_URL, value: Uint8Array.from([0xff]) }],
      current,
    );
    assert.deepEqual([...next.keys()], ['a']);
    assert.equal(rejected[0].name, '*');
  });

  it('a resource named twice applies neither version', () => {
    const current: ResourceMap = new Map([['a', [{ address: '127.0.0.1:1' }]]]);
    const { next, rejected } = evaluateResponse(
      'endpointSet',
      [encodeEndpointSet('a', ['127.0.0.1:2']), encodeEndpointSet('a', ['127.0.0.1:3'])],
      current,
    );
    assert.deepEqual(next.get('a'), [{ address: '127.0.0.1:1' }]);
    assert.equal(rejected[0].name, 'a');
  });
});

/** encodeService drops endpoints; a hostile server would not. */
function encodeWithEndpoints(name: string, config: Record<string, unknown>) {
  const w = protobuf.Writer.create().uint32(10).string(name).uint32(18).fork();
  writeStruct(w, config, 1, '');
  return { typeUrl: SERVICE_TYPE_URL, value: w.ldelim().finish() };
}

describe('evaluateResponse with a memo of unchanged resources', () => {
  it('reuses the decoded value of a resource whose bytes did not change, and re-checks changed ones', () => {
    const memo: ResourceMemo = new Map();
    const a1 = encodeService('a', { retry: { maxAttempts: 2 } });
    const b1 = encodeService('b', {});
    const first = evaluateResponse('service', [a1, b1], new Map(), memo);
    assert.deepEqual([...memo.keys()], ['a', 'b']);
    const aValue = first.next.get('a');

    // Same bytes in a new buffer: the very same value object comes back, no re-decode.
    const a1copy = { typeUrl: a1.typeUrl, value: Uint8Array.from(a1.value) };
    const second = evaluateResponse(
      'service',
      [a1copy, encodeService('b', { retry: { maxAttempts: 0 } })],
      first.next,
      memo,
    );
    assert.equal(second.next.get('a'), aValue);
    assert.equal(second.rejected.length, 1, 'the changed b is checked again, and refused');
    assert.equal(second.rejected[0].name, 'b');
    assert.deepEqual([...memo.keys()], ['a'], 'invalid and absent resources leave the memo');
  });

  it('a resource naming itself twice on the wire is judged by its last name, as protobuf decodes it', () => {
    const memo: ResourceMemo = new Map();
    evaluateResponse('service', [encodeService('a', {})], new Map(), memo);
    // field 1 = "a", config, field 1 = "b": decodes as "b", whatever the first name says.
    const tricky = encodeService('a', { retry: { maxAttempts: 0 } });
    const w = protobuf.Writer.create().uint32(10).string('b').finish();
    const value = new Uint8Array(tricky.value.length + w.length);
    value.set(tricky.value);
    value.set(w, tricky.value.length);
    const res = evaluateResponse('service', [{ typeUrl: SERVICE_TYPE_URL, value }], new Map(), memo);
    assert.equal(res.rejected[0].name, 'b');
  });
});

describe('combine and split', () => {
  it('joins a Service and its EndpointSet; either alone makes a service', () => {
    const services: ResourceMap = new Map<string, never>([
      ['a', { protocol: 'grpc' } as never],
      ['dns-only', { dns: { name: 'x.example', port: 80, type: 'A' } } as never],
    ]);
    const eps: ResourceMap = new Map([
      ['a', [{ address: '127.0.0.1:1' }]],
      ['reg', [{ address: '127.0.0.1:2' }]],
    ]);
    const view = combine(services, eps);
    assert.deepEqual(view, {
      a: { protocol: 'grpc', endpoints: [{ address: '127.0.0.1:1' }] },
      'dns-only': { dns: { name: 'x.example', port: 80, type: 'A' } },
      reg: { endpoints: [{ address: '127.0.0.1:2' }] },
    });
    const back = split(view);
    assert.deepEqual(Object.fromEntries(back.services), {
      a: { protocol: 'grpc' },
      'dns-only': { dns: { name: 'x.example', port: 80, type: 'A' } },
    });
    assert.deepEqual(Object.fromEntries(back.endpointSets), Object.fromEntries(eps));
  });
});

describe('servicesNamed', () => {
  it('finds the longest known service name at the start of each issue path', () => {
    const known = new Set(['a', 'a.b', 'users']);
    const named = servicesNamed(
      [
        { path: 'services.a.b.routes[0].backends[0].service', message: 'unknown service "x"' },
        { path: 'services.a.retry', message: 'bad' },
        { path: 'services.users', message: 'bad' },
        { path: 'services["weird name"].x', message: 'bad' },
        { path: 'other', message: 'bad' },
      ],
      (n) => known.has(n),
    );
    assert.deepEqual([...named.keys()], ['a.b', 'a', 'users', '*']);
    assert.deepEqual(named.get('*'), ['services["weird name"].x: bad', 'other: bad']);
  });
});
