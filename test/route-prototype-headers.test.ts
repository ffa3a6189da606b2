// Scenario: route header matchers named like Object.prototype members (`constructor`,
// `__proto__`, `toString`), written in a JSON config file. They are ordinary header names end
// to end: a request without such a header never matches them through an inherited property,
// and one that sends it does.
import { after, before, describe, it } from 'node:test';
import assert from 'node:assert/strict';
import { createMesh, type Mesh } from '@meshlet/core';
import { createMeshDispatcher, createMeshFetch } from '@meshlet/http';
import { Headers, request } from 'undici';
import { ServerSet, type TestServer } from './helpers/servers.ts';

describe('route header matchers named like Object.prototype members', () => {
  const servers = new ServerSet();
  let stable: TestServer;
  let special: TestServer;
  let mesh: Mesh;
  let fetch: ReturnType<typeof createMeshFetch>;
  let dispatcher: ReturnType<typeof createMeshDispatcher>;

  before(async () => {
    stable = await servers.start('stable');
    special = await servers.start('special');
    // As read from a config file: JSON.parse keeps "__proto__" as an own key.
    const config = JSON.parse(`{
      "services": {
        "api": {
          "routes": [
            { "name": "proto", "match": { "headers": { "__proto__": { "present": true } } }, "backends": [{ "service": "special" }] },
            { "name": "ctor", "match": { "headers": { "constructor": { "prefix": "" } } }, "backends": [{ "service": "special" }] },
            { "name": "tostring", "match": { "headers": { "toString": { "regex": "^yes$" } } }, "backends": [{ "service": "special" }] },
            { "name": "default", "backends": [{ "service": "stable" }] }
          ]
        },
        "stable": { "endpoints": ["${stable.address}"] },
        "special": { "endpoints": ["${special.address}"] }
      }
    }`);
    mesh = createMesh(config);
    fetch = createMeshFetch(mesh);
    dispatcher = createMeshDispatcher(mesh);
  });

  after(async () => {
    await dispatcher?.close();
    await mesh?.close();
    await servers.closeAll();
  });

  it('a request with none of those headers takes the default route, whatever form its headers have', async () => {
    const forms: Array<Record<string, string> | Headers | undefined> = [
      undefined,
      {},
      { accept: 'text/plain' },
      new Headers({ accept: 'text/plain' }),
    ];
    for (const headers of forms) {
      const res = await fetch('http://api/items', headers === undefined ? {} : { headers });
      assert.ok((await res.text()).startsWith('stable'), `headers ${String(headers)}`);
    }
  });

  it('a request that sends one of those headers takes its route', async () => {
    for (const headers of [{ constructor: 'x' }, { tostring: 'yes' }, { '__proto__-x': 'no', constructor: '' }]) {
      const res = await fetch('http://api/items', { headers });
      assert.ok((await res.text()).startsWith('special'), JSON.stringify(headers));
    }
    const res = await fetch('http://api/items', { headers: { tostring: 'no' } });
    assert.ok((await res.text()).startsWith('stable'));
  });

  it('through the dispatcher with a plain header object, no inherited property matches', async () => {
    // A plain object is the form whose lookup could fall back on Object.prototype.
    for (const headers of [{}, { accept: 'text/plain' }]) {
      const res = await request('http://api/items', { dispatcher, headers });
      assert.ok((await res.body.text()).startsWith('stable'), JSON.stringify(headers));
    }
    const res = await request('http://api/items', { dispatcher, headers: { Constructor: 'set' } });
    assert.ok((await res.body.text()).startsWith('special'));
  });
});
