// A client that stops reading does not make the server queue every version for it: once the
// stream's buffer is full, newer versions replace the queued one, and when the client reads
// again it gets the latest version (state of the world: only the latest matters).
import { after, before, describe, it } from 'node:test';
import assert from 'node:assert/strict';
import {
  ENDPOINT_SET_TYPE_URL,
  eventually,
  REGISTRATION_TYPE_URL,
  SERVICE_TYPE_URL,
  startServer,
  TestClient,
  type TestServer,
} from './helpers.js';

const ENDPOINTS = 2000;
const VERSIONS = 80;

describe('control server: back-pressure', () => {
  let s: TestServer;
  before(async () => {
    const endpoints = Array.from({ length: ENDPOINTS }, (_, i) => `"10.0.${i >> 8}.${i & 255}:8080"`).join(', ');
    s = await startServer(
      `{ "services": { "users": { "endpoints": [${endpoints}] } } }`,
      { debounceMs: 0 },
      'mesh.json',
    );
  });
  after(async () => {
    await s.close();
  });

  it('coalesces versions for a client that stops reading, then sends it the latest', async () => {
    const slow = new TestClient(s.server.address.port);
    const registrar = new TestClient(s.server.address.port);
    try {
      slow.subscribe('slow');
      await slow.next(SERVICE_TYPE_URL);
      await slow.next(ENDPOINT_SET_TYPE_URL);
      slow.call.pause();

      for (let r = 1; r <= VERSIONS; r++) {
        const before = s.server.version;
        registrar.send({
          ...(r === 1 ? { node: { id: 'registrar' } } : {}),
          typeUrl: REGISTRATION_TYPE_URL,
          registrationRevision: r,
          registrations: [{ service: 'users', endpoint: { address: `10.9.0.${r}:8080` } }],
        });
        await registrar.next(REGISTRATION_TYPE_URL);
        await eventually(() => s.server.version !== before);
      }
      const latest = s.server.version;
      assert.equal(Number(latest), VERSIONS + 1);

      slow.call.resume();
      const versions: string[] = [];
      for (;;) {
        const r = await slow.nextOf(ENDPOINT_SET_TYPE_URL);
        versions.push(r.response.versionInfo);
        if (r.response.versionInfo === latest) break;
      }
      assert.ok(versions.length < VERSIONS, `got ${versions.length} responses for ${VERSIONS} versions: not coalesced`);
      // Versions only move forward.
      assert.deepEqual(
        versions.map(Number),
        [...versions.map(Number)].sort((a, b) => a - b),
      );
    } finally {
      slow.close();
      registrar.close();
    }
  });
});
