// Hostile and malformed requests never take the server down: random request sequences over real
// streams (fast-check), after which the server still answers a well-behaved client.
import { after, before, describe, it } from 'node:test';
import assert from 'node:assert/strict';
import fc from 'fast-check';
import type { DiscoveryRequestInput } from '@meshlet/discovery/protocol';
import {
  ENDPOINT_SET_TYPE_URL,
  REGISTRATION_TYPE_URL,
  SERVICE_TYPE_URL,
  startServer,
  TestClient,
  type TestServer,
} from './helpers.js';

const text = fc.oneof(
  fc.string({ maxLength: 40 }),
  fc.constantFrom(
    '',
    '*',
    '__proto__',
    'constructor',
    'users',
    '127.0.0.1:1',
    '[::1]:80',
    'a'.repeat(5000),
    '\u0000\uffff',
  ),
);
const typeUrl = fc.oneof(fc.constantFrom(SERVICE_TYPE_URL, ENDPOINT_SET_TYPE_URL, REGISTRATION_TYPE_URL), text);
const metadata = fc.dictionary(text, text, { maxKeys: 3 });
const request: fc.Arbitrary<DiscoveryRequestInput> = fc.record(
  {
    versionInfo: text,
    node: fc.record({ id: text, cluster: text, zone: text, metadata }, { requiredKeys: [] }),
    resourceNames: fc.array(text, { maxLength: 3 }),
    typeUrl,
    responseNonce: fc.oneof(text, fc.constantFrom('S1', 'E1', 'S2', 'E1.1')),
    errorDetail: fc.record(
      {
        code: fc.integer({ min: -5, max: 20 }),
        message: text,
        details: fc.array(fc.record({ name: text, reason: text }), { maxLength: 3 }),
      },
      { requiredKeys: [] },
    ),
    registrations: fc.array(
      fc.record(
        {
          service: text,
          endpoint: fc.record(
            { address: text, weight: fc.integer({ min: 0, max: 2_000_000 }), zone: text, metadata },
            { requiredKeys: [] },
          ),
        },
        { requiredKeys: [] },
      ),
      { maxLength: 4 },
    ),
    registrationRevision: fc.nat(),
  },
  { requiredKeys: [] },
);

describe('control server: hostile requests', () => {
  let s: TestServer;
  before(async () => {
    s = await startServer("services:\n  users:\n    endpoints: ['127.0.0.1:4001']\n", { registrationGraceMs: 50 });
  });
  after(async () => {
    await s.close();
  });

  it('survives random request sequences and keeps serving', async () => {
    await fc.assert(
      fc.asyncProperty(fc.array(request, { minLength: 1, maxLength: 8 }), async (requests) => {
        const c = new TestClient(s.server.address.port);
        try {
          for (const r of requests) c.send(r);
          // Let the server process them (or end the stream).
          await new Promise((r) => setTimeout(r, 5));
        } finally {
          c.close();
        }
      }),
      { numRuns: 150 },
    );
    assert.equal((await s.admin('/healthz')).status, 200);
    // Nothing reached the catch-all that ends a stream on an unforeseen exception.
    assert.deepEqual(
      s.lines.filter((l) => l.level >= 50),
      [],
    );
    const good = new TestClient(s.server.address.port);
    try {
      good.subscribe('after-fuzz');
      const svc = await good.next(SERVICE_TYPE_URL);
      assert.ok(svc.resources.some((r) => r.ok && r.name === 'users'));
    } finally {
      good.close();
    }
  });
});
