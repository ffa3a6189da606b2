// The protocol codec: resources round-trip, hostile bytes and shapes come back as typed failures
// naming the resource, requests/responses round-trip, and a prepared resource list decodes the
// same as one encoded per response.
import { describe, it } from 'node:test';
import assert from 'node:assert/strict';
import protobuf from 'protobufjs';
import {
  ENDPOINT_SET_TYPE_URL,
  MAX_RESOURCE_BYTES,
  REGISTRATION_TYPE_URL,
  SERVICE_TYPE_URL,
  decodeRegistration,
  decodeRequest,
  decodeResource,
  decodeResponse,
  decodeStruct,
  discoveryService,
  encodeEndpointSet,
  encodeRegistration,
  encodeRequest,
  encodeResponse,
  encodeService,
  encodeStruct,
  prepareResources,
} from '../../src/protocol/index.js';

function nested(depth: number): Record<string, unknown> {
  let v: Record<string, unknown> = { leaf: 1 };
  for (let i = 1; i < depth; i++) v = { a: v };
  return v;
}

/** A Service resource whose config bytes are given raw. */
function rawService(name: string, structBytes: Uint8Array) {
  const w = protobuf.Writer.create().uint32(10).string(name).uint32(18).bytes(structBytes);
  return { typeUrl: SERVICE_TYPE_URL, value: w.finish() };
}

describe('protocol: Service resources', () => {
  it('round-trips a config and drops endpoints (they travel in the EndpointSet)', () => {
    const config = {
      endpoints: ['127.0.0.1:1'],
      protocol: 'http',
      retry: { maxAttempts: 2, retryOn: ['5xx', '503'], nonIdempotent: false },
      routes: [{ match: { pathPrefix: '/v2' }, backends: [{ service: 'users-v2', weight: 10 }] }],
      outlierDetection: { successRate: false },
      x: null,
      n: -1.5,
    };
    const res = decodeResource(encodeService('users', config as never));
    assert.deepEqual(res, {
      ok: true,
      kind: 'service',
      name: 'users',
      value: {
        protocol: 'http',
        retry: { maxAttempts: 2, retryOn: ['5xx', '503'], nonIdempotent: false },
        routes: [{ match: { pathPrefix: '/v2' }, backends: [{ service: 'users-v2', weight: 10 }] }],
        outlierDetection: { successRate: false },
        x: null,
        n: -1.5,
      },
    });
  });

  it('a Service with no config decodes as an empty config', () => {
    const w = protobuf.Writer.create().uint32(10).string('a').finish();
    assert.deepEqual(decodeResource({ typeUrl: SERVICE_TYPE_URL, value: w }), {
      ok: true,
      kind: 'service',
      name: 'a',
      value: {},
    });
  });

  it('refuses non-JSON configs when encoding, naming the path', () => {
    assert.throws(
      () => encodeService('a', { retry: { maxAttempts: Number.NaN } } as never),
      /retry\.maxAttempts: NaN is not a JSON number/,
    );
    assert.throws(() => encodeService('a', { f: () => 1 } as never), /f: a function is not a JSON value/);
    assert.throws(() => encodeService('a', { d: new Date() } as never), /d: expected a plain object/);
    assert.throws(() => encodeService('a', nested(33) as never), /nested deeper than 32 levels/);
    assert.doesNotThrow(() => encodeService('a', nested(32) as never));
  });

  it('decodes 32 levels and refuses 33, naming the resource', () => {
    const ok = decodeResource(encodeService('deep', nested(32) as never));
    assert.equal(ok.ok, true);
    // Build 33 levels by hand (the encoder refuses them).
    const w = protobuf.Writer.create();
    const writeLevel = (level: number): void => {
      w.uint32(10).fork().uint32(10).string('a').uint32(18).fork();
      if (level === 33) w.uint32(17).double(1);
      else {
        w.uint32(42).fork();
        writeLevel(level + 1);
        w.ldelim();
      }
      w.ldelim().ldelim();
    };
    writeLevel(1);
    const res = decodeResource(rawService('deep', w.finish()));
    assert.equal(res.ok, false);
    assert.equal(res.ok === false && res.name, 'deep');
    assert.match(res.ok === false ? res.reason : '', /nested deeper than 32 levels/);
  });

  it('a __proto__ key becomes an own property and never reaches a prototype', () => {
    const struct = encodeStruct(JSON.parse('{"__proto__": {"polluted": true}, "retry": {"__proto__": {"x": 1}}}'));
    const obj = decodeStruct(struct) as Record<string, unknown>;
    assert.equal(Object.getPrototypeOf(obj), Object.prototype);
    assert.deepEqual(Object.keys(obj), ['__proto__', 'retry']);
    assert.equal(({} as Record<string, unknown>).polluted, undefined);
    assert.equal((obj as { polluted?: unknown }).polluted, undefined);
    assert.deepEqual(Object.getOwnPropertyDescriptor(obj, '__proto__')?.value, { polluted: true });
    const retry = obj.retry as Record<string, unknown>;
    assert.equal(Object.getPrototypeOf(retry), Object.prototype);
    assert.equal((retry as { x?: unknown }).x, undefined);
  });

  it('refuses NaN/Infinity doubles and Values without a kind', () => {
    const nan = protobuf.Writer.create();
    nan
      .uint32(10)
      .fork()
      .uint32(10)
      .string('k')
      .uint32(18)
      .fork()
      .uint32(17)
      .double(Number.POSITIVE_INFINITY)
      .ldelim()
      .ldelim();
    const r1 = decodeResource(rawService('s', nan.finish()));
    assert.deepEqual(r1, { ok: false, name: 's', reason: 'config k: Infinity is not a JSON number' });
    const empty = protobuf.Writer.create();
    empty.uint32(10).fork().uint32(10).string('k').uint32(18).fork().ldelim().ldelim();
    const r2 = decodeResource(rawService('s', empty.finish()));
    assert.deepEqual(r2, { ok: false, name: 's', reason: 'config k: a Value with no kind is not a JSON value' });
  });

  it('malformed bytes, unknown types, a type other than the response type and oversized resources are typed failures', () => {
    const bad = decodeResource({
      typeUrl: SERVICE_TYPE_URL,
      value: Uint8Array.from([0x0a, 0xff, 0xff, 0xff, 0xff, 0x0f]),
    });
    assert.equal(bad.ok, false);
    assert.match(bad.ok === false ? bad.reason : '', /undecodable Service bytes/);

    assert.deepEqual(decodeResource({ typeUrl: 'type.googleapis.com/x.Y', value: new Uint8Array() }), {
      ok: false,
      reason: 'unknown resource type "type.googleapis.com/x.Y"',
    });
    const svc = encodeService('a', {});
    assert.deepEqual(decodeResource(svc, ENDPOINT_SET_TYPE_URL), {
      ok: false,
      reason: `a resource of type "${SERVICE_TYPE_URL}" in a response of type "${ENDPOINT_SET_TYPE_URL}"`,
    });

    const big = encodeService('huge', { blob: 'x'.repeat(MAX_RESOURCE_BYTES) } as never);
    const r = decodeResource(big);
    assert.equal(r.ok, false);
    assert.equal(r.ok === false && r.name, 'huge');
    assert.match(r.ok === false ? r.reason : '', /more than the 1048576 allowed/);

    assert.deepEqual(
      decodeResource({
        typeUrl: SERVICE_TYPE_URL,
        value: protobuf.Writer.create().uint32(18).bytes(new Uint8Array()).finish(),
      }),
      {
        ok: false,
        reason: 'a Service resource without a name',
      },
    );
    assert.equal(decodeResource(null as never).ok, false);
    assert.equal(decodeResource({ typeUrl: SERVICE_TYPE_URL, value: 'abc' } as never).ok, false);
  });
});

describe('protocol: EndpointSet resources', () => {
  it('round-trips endpoints; weight 0 and empty zone/metadata are left out', () => {
    const any = encodeEndpointSet('users', [
      '127.0.0.1:1',
      { address: '127.0.0.1:2', weight: 3, zone: 'a', metadata: { v: '2', __proto__: 'x' } as never },
    ]);
    assert.equal(any.typeUrl, ENDPOINT_SET_TYPE_URL);
    const res = decodeResource(any, ENDPOINT_SET_TYPE_URL);
    assert.equal(res.ok && res.kind, 'endpointSet');
    assert.deepEqual(res.ok && res.value, [
      { address: '127.0.0.1:1' },
      { address: '127.0.0.1:2', weight: 3, zone: 'a', metadata: { v: '2' } },
    ]);
  });

  it('a metadata key __proto__ on the wire stays an own property', () => {
    const entry = protobuf.Writer.create().uint32(10).string('__proto__').uint32(18).string('evil').finish();
    const ep = protobuf.Writer.create().uint32(10).string('127.0.0.1:1').uint32(34).bytes(entry).finish();
    const set = protobuf.Writer.create().uint32(10).string('users').uint32(18).bytes(ep).finish();
    const res = decodeResource({ typeUrl: ENDPOINT_SET_TYPE_URL, value: set });
    assert.equal(res.ok, true);
    const md = res.ok && res.kind === 'endpointSet' ? res.value[0].metadata : undefined;
    assert.ok(md);
    assert.equal(Object.getPrototypeOf(md), Object.prototype);
    assert.deepEqual(Object.keys(md), ['__proto__']);
  });

  it('an EndpointSet without a service name is refused', () => {
    const res = decodeResource(encodeEndpointSet('', ['127.0.0.1:1']));
    assert.deepEqual(res, { ok: false, reason: 'an EndpointSet resource without a service name' });
  });
});

describe('protocol: registrations', () => {
  it('round-trip through a DiscoveryRequest', () => {
    const reg = { service: 'users', address: '127.0.0.1:4001', zone: 'a', weight: 2, metadata: { v: '1' } };
    const bytes = encodeRequest({
      typeUrl: REGISTRATION_TYPE_URL,
      registrations: [encodeRegistration(reg)],
      registrationRevision: 7,
    });
    const req = decodeRequest(bytes);
    assert.equal(req.typeUrl, REGISTRATION_TYPE_URL);
    assert.equal(req.registrationRevision, 7);
    assert.equal(req.registrations.length, 1);
    assert.deepEqual(decodeRegistration(req.registrations[0]), { ok: true, value: reg });
  });

  it('refuses registrations without a service or address', () => {
    assert.deepEqual(decodeRegistration({ service: '', endpoint: null }), {
      ok: false,
      reason: 'registration has no service name',
    });
    assert.deepEqual(decodeRegistration({ service: 'u', endpoint: null }), {
      ok: false,
      reason: 'registration for service "u" has no endpoint address',
    });
  });
});

describe('protocol: requests, responses and the service definition', () => {
  it('a request round-trips with defaults filled in', () => {
    const req = decodeRequest(
      encodeRequest({
        typeUrl: SERVICE_TYPE_URL,
        node: { id: 'h/1/x', cluster: 'orders', metadata: { a: 'b' } },
        versionInfo: '3',
        responseNonce: 'n1',
        errorDetail: { code: 3, message: 'a: bad', details: [{ name: 'a', reason: 'bad' }] },
      }),
    );
    assert.equal(req.typeUrl, SERVICE_TYPE_URL);
    assert.equal(req.node?.id, 'h/1/x');
    assert.equal(req.node?.cluster, 'orders');
    assert.deepEqual({ ...req.node?.metadata }, { a: 'b' });
    assert.equal(req.versionInfo, '3');
    assert.equal(req.responseNonce, 'n1');
    assert.deepEqual(req.resourceNames, []);
    assert.equal(req.errorDetail?.code, 3);
    assert.equal(req.errorDetail?.details[0].name, 'a');
    assert.equal(req.registrationRevision, 0);
    const empty = decodeRequest(new Uint8Array());
    assert.equal(empty.typeUrl, '');
    assert.equal(empty.node, null);
    assert.equal(empty.errorDetail, null);
  });

  it('a prepared resource list decodes like resources encoded per response', () => {
    const resources = [encodeService('a', { protocol: 'grpc' }), encodeService('b', {})];
    const prepared = prepareResources(resources);
    assert.equal(prepared.count, 2);
    const viaPrepared = decodeResponse(
      encodeResponse({ versionInfo: '9', typeUrl: SERVICE_TYPE_URL, nonce: 'x', prepared }),
    );
    const direct = decodeResponse(
      encodeResponse({ versionInfo: '9', typeUrl: SERVICE_TYPE_URL, nonce: 'x', resources }),
    );
    assert.equal(viaPrepared.versionInfo, '9');
    assert.equal(viaPrepared.nonce, 'x');
    assert.deepEqual(
      viaPrepared.resources.map((r) => decodeResource(r)),
      direct.resources.map((r) => decodeResource(r)),
    );
    assert.equal(viaPrepared.resources.length, 2);
    assert.deepEqual(
      viaPrepared.resources.map((r) => decodeResource(r, SERVICE_TYPE_URL)),
      [
        { ok: true, kind: 'service', name: 'a', value: { protocol: 'grpc' } },
        { ok: true, kind: 'service', name: 'b', value: {} },
      ],
    );
    // The same prepared bytes serve another client's header.
    const other = decodeResponse(
      discoveryService.StreamResources.responseSerialize({
        versionInfo: '9',
        typeUrl: SERVICE_TYPE_URL,
        nonce: 'y',
        prepared,
      }),
    );
    assert.equal(other.nonce, 'y');
    assert.equal(other.resources.length, 2);
  });

  it('the service definition names the xDS-like path and is a bidi stream', () => {
    const m = discoveryService.StreamResources;
    assert.equal(m.path, '/meshlet.v1.AggregatedDiscoveryService/StreamResources');
    assert.equal(m.requestStream, true);
    assert.equal(m.responseStream, true);
    const req = m.requestDeserialize(m.requestSerialize({ typeUrl: 'x' }));
    assert.equal(req.typeUrl, 'x');
  });
});
