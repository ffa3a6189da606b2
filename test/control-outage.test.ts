// Scenario: the control server goes away.
// - SIGKILLed under steady load: no request fails while it is down (the mesh keeps its last good
//   config); restarted on the same ports, the client reconnects by itself (backoff) and a later
//   edit reaches it (traffic moves, /clients shows the ACK).
// - A client with a disk cache: a NEW mesh starts while the control server is down and serves from
//   the cache (ready() resolves), and again while a fake server accepts the stream but never answers.
// Client options: backoff { initialMs: 100, maxMs: 500 } so the reconnect is quick; the rest default.
import { after, before, describe, it } from 'node:test';
import assert from 'node:assert/strict';
import { readdir, readFile } from 'node:fs/promises';
import * as grpc from '@grpc/grpc-js';
import { createMesh } from '@meshlet/core';
import { controlPlane } from '@meshlet/discovery';
import { SERVICE_TYPE_URL, discoveryService } from '@meshlet/discovery/protocol';
import { createMeshFetch } from '@meshlet/http';
import { setTimeout as sleep } from 'node:timers/promises';
import { ServerSet, type TestServer } from './helpers/servers.ts';
import { call, type Mesh } from './helpers/load.ts';
import {
  ConfigDir,
  ControlProcess,
  Load,
  describeSamples,
  servedBy,
  splitRouteYaml,
  waitFor,
} from './fixtures/control.ts';

const BACKOFF = { initialMs: 100, maxMs: 500 };

describe('control server killed with SIGKILL under load', () => {
  const servers = new ServerSet();
  let v1: TestServer;
  let v2: TestServer;
  let config: ConfigDir;
  const controls: ControlProcess[] = [];
  let mesh: Mesh;

  before(async () => {
    v1 = await servers.start('v1');
    v2 = await servers.start('v2');
    config = await ConfigDir.create(splitRouteYaml(v1, v2, 100, 0));
  });

  after(async () => {
    await mesh?.close();
    for (const c of controls) await c.kill();
    await servers.closeAll();
    await config?.remove();
  });

  it('serves with zero failures while it is down; after a restart the client reconnects and a later edit reaches it', async () => {
    const first = await ControlProcess.start(config.configPath);
    controls.push(first);
    mesh = createMesh({
      service: 'front',
      discovery: [controlPlane({ address: first.address, node: { id: 'front-1' }, backoff: BACKOFF })],
    });
    const fetch = createMeshFetch(mesh);
    await mesh.ready({ timeoutMs: 10_000 });

    const load = new Load(fetch, 'http://api/');
    let killedAt = 0;
    let restartedAt = 0;
    let editedAt = 0;
    try {
      await load.more(100);
      const { signal } = await first.kill('SIGKILL');
      assert.equal(signal, 'SIGKILL');
      killedAt = performance.now();
      // The client notices: its source reports the lost stream, and the mesh keeps serving.
      await waitFor('the client to report the lost control plane', () => mesh.discoveryStatus()[0].lastError);
      await sleep(1000); // a second with no control server
      // Traffic flows meanwhile: 100 requests, however long a loaded machine takes to make them.
      await waitFor('traffic to flow while the control server is down', () => load.since(killedAt).length >= 100);

      const second = await ControlProcess.start(config.configPath, {
        port: first.port,
        adminPort: first.adminPort,
      });
      controls.push(second);
      restartedAt = performance.now();
      // The client reconnects on its own and ACKs the restarted server's snapshot.
      const c = await waitFor('front-1 to reconnect and ACK the restarted server', async () => {
        const { body } = await second.admin('/clients');
        const me = (
          body as Array<{ nodeId: string; acked: Record<string, string>; current: Record<string, string> }>
        ).find((x) => x.nodeId === 'front-1');
        return me && me.acked[SERVICE_TYPE_URL] !== '' && me.acked[SERVICE_TYPE_URL] === me.current[SERVICE_TYPE_URL]
          ? me
          : undefined;
      });
      assert.ok(c);

      editedAt = performance.now();
      await config.write(splitRouteYaml(v1, v2, 0, 100));
      await waitFor(
        'the edit after the restart to move the traffic to v2',
        () => {
          const recent = load.since(editedAt);
          return recent.length >= 50 && recent.slice(-50).every((s) => servedBy(s) === 'v2');
        },
        10_000,
        5,
      );
    } finally {
      await load.stop();
    }
    assert.deepEqual(load.failures(), [], `failed requests: ${describeSamples(load.failures())}`);
    const down = load.samples.filter((s) => s.at > killedAt && s.at < restartedAt);
    assert.ok(down.length >= 100, `only ${down.length} requests while the server was down`);
    assert.ok(
      down.every((s) => servedBy(s) === 'v1'),
      'while down, the last good config (route to v1) served',
    );
    assert.ok(load.since(editedAt).some((s) => servedBy(s) === 'v2'));
    assert.equal(mesh.discoveryStatus()[0].ready, true);
  });
});

describe('a client with a disk cache starts while the control server is down or silent', () => {
  const servers = new ServerSet();
  let users: TestServer;
  let config: ConfigDir;
  let control: ControlProcess | undefined;
  let silent: grpc.Server | undefined;
  const meshes: Mesh[] = [];

  before(async () => {
    users = await servers.start('users-1');
    config = await ConfigDir.create(`services:\n  users:\n    endpoints: ["${users.address}"]\n`);
  });

  after(async () => {
    for (const m of meshes) await m.close();
    await control?.kill();
    silent?.forceShutdown();
    await servers.closeAll();
    await config?.remove();
  });

  function newMesh(address: string): Mesh {
    const mesh = createMesh({
      service: 'front',
      startupTimeoutMs: 3000,
      discovery: [controlPlane({ address, cacheDir: config.path('cache'), backoff: BACKOFF })],
    });
    meshes.push(mesh);
    return mesh;
  }

  it('a first run fills the cache; a new mesh serves from it with the server down, then with a server that never answers', async () => {
    control = await ControlProcess.start(config.configPath);
    const address = control.address;
    const port = control.port;

    // First run: gets the config from the server, which writes the cache.
    const m1 = newMesh(address);
    await m1.ready();
    const r1 = await call(createMeshFetch(m1), 'http://users/a');
    assert.ok(r1.ok && r1.body === 'users-1', `first run: ${JSON.stringify(r1)}`);
    const files = await waitFor('the cache file', async () => {
      const names = await readdir(config.path('cache')).catch(() => []);
      const json = names.filter((n) => n.endsWith('.json'));
      return json.length > 0 ? json : undefined;
    });
    const cached = JSON.parse(await readFile(config.path(`cache/${files[0]}`), 'utf8'));
    assert.equal(cached.address, address);
    assert.deepEqual(Object.keys(cached.services), ['users']);
    await m1.close();

    // The control server dies; a new mesh starts from the cache.
    await control.kill('SIGKILL');
    control = undefined;
    const m2 = newMesh(address);
    await m2.ready({ timeoutMs: 3000 });
    const r2 = await call(createMeshFetch(m2), 'http://users/b');
    assert.ok(r2.ok && r2.status === 200 && r2.body === 'users-1', `served from the cache: ${JSON.stringify(r2)}`);
    assert.match(m2.discoveryStatus()[0].description, /cache/);
    await m2.close();

    // A server on the same port that accepts the stream and never answers.
    let streams = 0;
    silent = new grpc.Server();
    silent.addService(discoveryService, {
      StreamResources: (stream: grpc.ServerDuplexStream<unknown, unknown>) => {
        streams++;
        stream.on('error', () => {});
      },
    });
    await new Promise<void>((resolve, reject) =>
      silent!.bindAsync(`127.0.0.1:${port}`, grpc.ServerCredentials.createInsecure(), (err) =>
        err ? reject(err) : resolve(),
      ),
    );
    const m3 = newMesh(address);
    await m3.ready({ timeoutMs: 3000 });
    const r3 = await call(createMeshFetch(m3), 'http://users/c');
    assert.ok(r3.ok && r3.status === 200 && r3.body === 'users-1', `served from the cache: ${JSON.stringify(r3)}`);
    await waitFor('the client to open a stream on the silent server', () => streams > 0);
    assert.match(m3.discoveryStatus()[0].description, /cache/);
    assert.equal(users.count, 3);
  });
});
