// Property-based fuzzing of the resource decoder: random bytes, random Struct shapes, hostile
// names and deep nesting never throw; every result is a typed failure or a plain JSON value.
import { describe, it } from 'node:test';
import assert from 'node:assert/strict';
import fc from 'fast-check';
import protobuf from 'protobufjs';
import {
  ENDPOINT_SET_TYPE_URL,
  SERVICE_TYPE_URL,
  decodeResource,
  encodeEndpointSet,
  encodeService,
  type DecodedResource,
} from '../../src/protocol/index.js';

const typeUrl = fc.oneof(fc.constant(SERVICE_TYPE_URL), fc.constant(ENDPOINT_SET_TYPE_URL), fc.string());
const hostileName = fc.oneof(
  fc.string(),
  fc.constantFrom('__proto__', 'constructor', 'prototype', 'toString', '', '\u0000', '\ud800'),
  fc.string({ minLength: 2000, maxLength: 5000 }),
);

/** Checks a decoder result is well formed, and that a decoded value is plain JSON. */
function checkResult(res: DecodedResource): void {
  assert.equal(typeof res, 'object');
  if (!res.ok) {
    assert.equal(typeof res.reason, 'string');
    assert.ok(res.reason.length > 0);
    if (res.name !== undefined) assert.equal(typeof res.name, 'string');
    return;
  }
  assert.equal(typeof res.name, 'string');
  assert.ok(res.name.length > 0);
  checkJson(res.value, 0);
}

function checkJson(v: unknown, depth: number): void {
  assert.ok(depth <= 33, 'too deep');
  if (v === null || typeof v === 'string' || typeof v === 'boolean') return;
  if (typeof v === 'number') {
    assert.ok(Number.isFinite(v));
    return;
  }
  assert.equal(typeof v, 'object');
  if (Array.isArray(v)) {
    for (const x of v) checkJson(x, depth + 1);
    return;
  }
  assert.equal(Object.getPrototypeOf(v), Object.prototype);
  for (const k of Object.keys(v as object)) checkJson(Object.getOwnPropertyDescriptor(v, k)?.value, depth + 1);
}

/** Writes a Value of random (possibly illegal) shape, as a hostile server could. */
const rawValue: fc.Memo<(w: protobuf.Writer) => void> = fc.memo((n) =>
  fc.oneof(
    { depthSize: 'small' },
    fc.double().map((d) => (w: protobuf.Writer) => void w.uint32(17).double(d)),
    fc.string().map((s) => (w: protobuf.Writer) => void w.uint32(26).string(s)),
    fc.boolean().map((b) => (w: protobuf.Writer) => void w.uint32(32).bool(b)),
    fc.integer().map((i) => (w: protobuf.Writer) => void w.uint32(8).int32(i)),
    fc.constant((w: protobuf.Writer) => void w), // a Value with no kind
    fc.uint8Array({ maxLength: 16 }).map((b) => (w: protobuf.Writer) => void w.uint32(42).bytes(b)), // garbage struct
    fc
      .array(
        fc.tuple(
          hostileName,
          n > 1 ? rawValue(n - 1) : fc.constant((w: protobuf.Writer) => void w.uint32(26).string('x')),
        ),
        {
          maxLength: 4,
        },
      )
      .map((entries) => (w: protobuf.Writer) => {
        w.uint32(42).fork();
        for (const [k, v] of entries) {
          w.uint32(10).fork().uint32(10).string(k).uint32(18).fork();
          v(w);
          w.ldelim().ldelim();
        }
        w.ldelim();
      }),
    fc
      .array(n > 1 ? rawValue(n - 1) : fc.constant((w: protobuf.Writer) => void w.uint32(32).bool(true)), {
        maxLength: 4,
      })
      .map((items) => (w: protobuf.Writer) => {
        w.uint32(50).fork();
        for (const v of items) {
          w.uint32(10).fork();
          v(w);
          w.ldelim();
        }
        w.ldelim();
      }),
  ),
);

describe('protocol: decoder fuzzing', () => {
  it('random bytes under any type URL never throw', () => {
    fc.assert(
      fc.property(typeUrl, fc.uint8Array({ maxLength: 512 }), (url, bytes) => {
        checkResult(decodeResource({ typeUrl: url, value: bytes }));
      }),
      { numRuns: 3000 },
    );
  });

  it('random Struct shapes with hostile keys never throw and decode to plain JSON or a typed failure', () => {
    fc.assert(
      fc.property(hostileName, fc.array(fc.tuple(hostileName, rawValue(6)), { maxLength: 6 }), (name, entries) => {
        const w = protobuf.Writer.create().uint32(10).string(name).uint32(18).fork();
        for (const [k, v] of entries) {
          w.uint32(10).fork().uint32(10).string(k).uint32(18).fork();
          v(w);
          w.ldelim().ldelim();
        }
        w.ldelim();
        const res = decodeResource({ typeUrl: SERVICE_TYPE_URL, value: w.finish() });
        checkResult(res);
        assert.equal(({} as Record<string, unknown>).polluted, undefined);
      }),
      { numRuns: 1500 },
    );
  });

  it('valid JSON configs round-trip exactly, whatever their keys', () => {
    const json = fc.jsonValue({ maxDepth: 6 }).filter((v) => typeof v === 'object' && v !== null && !Array.isArray(v));
    fc.assert(
      fc.property(fc.string({ minLength: 1 }), json, (name, config) => {
        const res = decodeResource(encodeService(name, config as never));
        assert.equal(res.ok, true);
        const expected = JSON.parse(JSON.stringify(config, (k, v) => (Object.is(v, -0) ? 0 : v)));
        delete expected.endpoints;
        const got = JSON.parse(JSON.stringify(res.ok ? res.value : null, (k, v) => (Object.is(v, -0) ? 0 : v)));
        assert.deepEqual(got, expected);
      }),
      { numRuns: 500 },
    );
  });

  it('truncating or flipping bytes of a valid resource never throws', () => {
    const base = [
      encodeService('users', {
        retry: { maxAttempts: 2, retryOn: ['5xx'] },
        routes: [{ backends: [{ service: 'a' }] }],
      }),
      encodeEndpointSet('users', [
        '127.0.0.1:1',
        { address: '127.0.0.1:2', weight: 2, zone: 'z', metadata: { a: 'b' } },
      ]),
    ];
    fc.assert(
      fc.property(fc.constantFrom(...base), fc.nat(), fc.nat(255), fc.boolean(), (any, pos, byte, truncate) => {
        const bytes = Uint8Array.from(any.value);
        const at = pos % bytes.length;
        const value = truncate ? bytes.subarray(0, at) : (bytes.set([byte], at), bytes);
        checkResult(decodeResource({ typeUrl: any.typeUrl, value }));
      }),
      { numRuns: 3000 },
    );
  });

  it('nesting far beyond the limit (2 000 levels) is a typed failure, not a stack overflow', () => {
    // Build inside-out: each level wraps the previous bytes as { a: <struct> }.
    let inner = protobuf.Writer.create().finish();
    for (let i = 0; i < 2_000; i++) {
      const w = protobuf.Writer.create();
      w.uint32(10).fork().uint32(10).string('a').uint32(18).fork().uint32(42).bytes(inner).ldelim().ldelim();
      inner = w.finish();
    }
    const value = protobuf.Writer.create().uint32(10).string('deep').uint32(18).bytes(inner).finish();
    const res = decodeResource({ typeUrl: SERVICE_TYPE_URL, value });
    assert.equal(res.ok, false);
    assert.match(res.ok ? '' : res.reason, /nested deeper than 32 levels/);
  });
});
