// Scenario: calls made before the mesh has its first config.
// - A fetch to a service the mesh does not know yet waits, and succeeds once the control server
//   comes up (within startupTimeoutMs) and delivers the config.
// - With no control server at all it fails with MESHLET_ERR_NOT_READY naming the control-plane
//   address, and the name never goes to DNS: the error is the mesh's (a lookup of "users" would
//   end in ENOTFOUND / a fetch TypeError), and a spy on dns.lookup (which net.connect, under
//   undici, uses) sees no lookup of it, while it does see one of a plain non-mesh host.
// Client options: backoff { initialMs: 100, maxMs: 300 } so the client finds the late server
// quickly; startupTimeoutMs 60 000 for the first case (the default 10 000 is less than a control
// process's start-up took on a loaded machine), 1 000 for the second.
import { after, before, describe, it } from 'node:test';
import assert from 'node:assert/strict';
import dns from 'node:dns';
import { setTimeout as sleep } from 'node:timers/promises';
import { createMesh, MeshError } from '@meshlet/core';
import { controlPlane } from '@meshlet/discovery';
import { createMeshFetch } from '@meshlet/http';
import { ServerSet, type TestServer } from './helpers/servers.ts';
import { call, type Mesh } from './helpers/load.ts';
import { ConfigDir, ControlProcess, freePort } from './fixtures/control.ts';

const BACKOFF = { initialMs: 100, maxMs: 300 };

describe('before the first config', () => {
  const servers = new ServerSet();
  let users: TestServer;
  let config: ConfigDir;
  let control: ControlProcess | undefined;
  const meshes: Mesh[] = [];

  before(async () => {
    users = await servers.start('users-1');
    config = await ConfigDir.create(`services:\n  users:\n    endpoints: ["${users.address}"]\n`);
  });

  after(async () => {
    for (const m of meshes) await m.close();
    await control?.kill();
    await servers.closeAll();
    await config?.remove();
  });

  it('a call to a not-yet-known service waits and succeeds once the control server comes up', async () => {
    const port = await freePort();
    const address = `127.0.0.1:${port}`;
    const mesh = createMesh({
      service: 'front',
      startupTimeoutMs: 60_000,
      discovery: [controlPlane({ address, backoff: BACKOFF })],
    });
    meshes.push(mesh);
    const fetch = createMeshFetch(mesh);
    const pending = call(fetch, 'http://users/early');
    let settled = false;
    void pending.then(() => (settled = true));
    await sleep(300);
    assert.equal(settled, false, 'the call did not wait for the config');
    assert.equal(mesh.isReady, false);

    control = await ControlProcess.start(config.configPath, { port });
    const outcome = await pending;
    assert.ok(
      outcome.ok && outcome.status === 200 && outcome.body === 'users-1',
      `the early call: ${outcome.ok ? outcome.status : String(outcome.error)}`,
    );
    assert.equal(users.requests[0]?.url, '/early');
    assert.equal(mesh.isReady, true);
  });

  it('with no control server it fails with MESHLET_ERR_NOT_READY naming the address, never via DNS', async () => {
    const address = `127.0.0.1:${await freePort()}`;
    const mesh = createMesh({
      service: 'front',
      startupTimeoutMs: 1000,
      discovery: [controlPlane({ address, backoff: BACKOFF })],
    });
    meshes.push(mesh);
    const fetch = createMeshFetch(mesh);
    const looked: string[] = [];
    const lookup = dns.lookup;
    dns.lookup = ((hostname: string, ...rest: unknown[]) => {
      looked.push(hostname);
      return (lookup as (...a: unknown[]) => unknown)(hostname, ...rest);
    }) as typeof dns.lookup;
    try {
      await checkNotReady(fetch, address);
      // The spy works: a host that cannot be a service (localhost) passes through to undici and DNS.
      const plain = await call(fetch, `http://localhost:${users.port}/plain`);
      assert.ok(plain.ok && plain.status === 200, `plain fetch: ${plain.ok ? plain.status : String(plain.error)}`);
    } finally {
      dns.lookup = lookup;
    }
    assert.ok(looked.includes('localhost'), `the dns.lookup spy saw ${JSON.stringify(looked)}`);
    assert.deepEqual(
      looked.filter((h) => h !== 'localhost'),
      [],
      'a name that may be a service went to DNS',
    );
    await assert.rejects(mesh.ready({ timeoutMs: 100 }), { code: 'MESHLET_ERR_NOT_READY' });
  });
});

/** Calls to two names that may be services fail with NOT_READY naming the control plane and the name. */
async function checkNotReady(fetch: ReturnType<typeof createMeshFetch>, address: string): Promise<void> {
  for (const url of ['http://users/x', 'http://inventory.internal/y']) {
    const outcome = await call(fetch, url);
    assert.equal(outcome.ok, false, `${url} succeeded`);
    if (outcome.ok) continue;
    assert.ok(outcome.error instanceof MeshError, `${url}: not a MeshError: ${String(outcome.error)}`);
    assert.equal(outcome.code, 'MESHLET_ERR_NOT_READY', String(outcome.error));
    const message = (outcome.error as Error).message;
    assert.ok(message.includes(`control plane ${address}`), `the error names the address: ${message}`);
    assert.ok(message.includes(new URL(url).hostname), `the error names the service: ${message}`);
  }
}
