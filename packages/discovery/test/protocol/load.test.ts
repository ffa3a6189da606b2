// The .proto is found from the module's own URL (src/ here, dist/ or an installed tarball in
// use) and can be loaded with asynchronous reads; both loaders share one set of types.
import { describe, it } from 'node:test';
import assert from 'node:assert/strict';
import { existsSync } from 'node:fs';
import { DISCOVERY_PROTO, PROTO_DIR, loadProtocolTypes, protocolTypes } from '../../src/protocol/index.js';

describe('protocol types', () => {
  it('load asynchronously from the package proto/ directory, once', async () => {
    assert.ok(existsSync(DISCOVERY_PROTO));
    assert.ok(DISCOVERY_PROTO.startsWith(PROTO_DIR));
    const [a, b] = await Promise.all([loadProtocolTypes(), loadProtocolTypes()]);
    assert.equal(a, b);
    assert.ok(a.root.files.some((f) => f.endsWith('meshlet/v1/discovery.proto')));
    assert.deepEqual(Object.keys(a.DiscoveryResponse.fields), [
      'versionInfo',
      'resources',
      'typeUrl',
      'nonce',
      'errorDetail',
      'incremental',
      'removedResources',
    ]);
    assert.equal(protocolTypes(), a, 'the synchronous accessor returns the same types');
  });
});
