// The disk cache: written atomically after each applied update; read at start so the mesh gets
// ready while the control server is down or silent; a corrupt file is reported and left alone.
import { afterEach, describe, it } from 'node:test';
import assert from 'node:assert/strict';
import { mkdtemp, readFile, readdir, rm, writeFile } from 'node:fs/promises';
import { tmpdir } from 'node:os';
import { join } from 'node:path';
import { validateMeshConfig } from '@meshlet/core';
import { ENDPOINT_SET_TYPE_URL, SERVICE_TYPE_URL, encodeEndpointSet, encodeService } from '../../src/protocol/index.js';
import { controlPlane, DiscoveryCacheError } from '../../src/index.js';
import { cacheFile } from '../../src/control-plane/cache.js';
import { FakeControlServer, FakeSink } from './fake-server.js';

const fast = { initialMs: 20, multiplier: 1.6, maxMs: 200, jitter: 0.2 };
const cleanups: Array<() => unknown> = [];
afterEach(async () => {
  for (const c of cleanups.splice(0).reverse()) await c();
});

async function tempDir(): Promise<string> {
  const dir = await mkdtemp(join(tmpdir(), 'meshlet-cache-'));
  cleanups.push(() => rm(dir, { recursive: true, force: true }));
  return dir;
}

async function eventually<T>(fn: () => Promise<T | undefined>, timeoutMs = 10_000): Promise<T> {
  const until = Date.now() + timeoutMs;
  for (;;) {
    const v = await fn().catch(() => undefined);
    if (v !== undefined) return v;
    if (Date.now() > until) throw new Error('condition not met in time');
    await new Promise((r) => setTimeout(r, 10));
  }
}

function meshSink(): FakeSink {
  const sink = new FakeSink();
  sink.validate = (services) => void validateMeshConfig({ services });
  return sink;
}

/** Runs a first client against a server that answers, so the cache file gets written. */
async function primeCache(server: FakeControlServer, dir: string): Promise<string> {
  const sink = meshSink();
  const source = controlPlane({ address: server.address, cacheDir: dir, backoff: fast });
  source.start(sink, { service: 'orders' });
  const stream = await server.stream(server.streams.length);
  stream.send({
    typeUrl: SERVICE_TYPE_URL,
    versionInfo: '4',
    nonce: 'a',
    resources: [encodeService('users', { retry: { maxAttempts: 2 } })],
  });
  stream.send({
    typeUrl: ENDPOINT_SET_TYPE_URL,
    versionInfo: '5',
    nonce: 'b',
    resources: [encodeEndpointSet('users', ['127.0.0.1:4001'])],
  });
  await sink.updated(1);
  const file = cacheFile(dir, server.address);
  await eventually(async () =>
    JSON.parse(await readFile(file, 'utf8')).versions[ENDPOINT_SET_TYPE_URL] === '5' ? true : undefined,
  );
  await source.close();
  return file;
}

describe('controlPlane disk cache', () => {
  it('writes the merged good view as { format, address, savedAt, versions, services }, with no temporary file left', async () => {
    const server = await new FakeControlServer().start();
    cleanups.push(() => server.stop());
    const dir = await tempDir();
    const file = await primeCache(server, dir);
    const saved = JSON.parse(await readFile(file, 'utf8'));
    assert.equal(saved.format, 1);
    assert.equal(saved.address, server.address);
    assert.ok(!Number.isNaN(Date.parse(saved.savedAt)));
    assert.deepEqual(saved.versions, { [SERVICE_TYPE_URL]: '4', [ENDPOINT_SET_TYPE_URL]: '5' });
    assert.deepEqual(saved.services, {
      users: { retry: { maxAttempts: 2 }, endpoints: [{ address: '127.0.0.1:4001' }] },
    });
    assert.deepEqual(await readdir(dir), [file.slice(dir.length + 1)]);
  });

  it('serves the cache when the server accepts the stream but never answers', async () => {
    const server = await new FakeControlServer().start();
    cleanups.push(() => server.stop());
    const dir = await tempDir();
    await primeCache(server, dir);

    const sink = meshSink();
    const source = controlPlane({ address: server.address, cacheDir: dir, backoff: fast });
    cleanups.push(() => source.close());
    source.start(sink, { service: 'orders' });
    const silent = await server.stream(1);
    await silent.next(); // subscribed, and the server says nothing
    await sink.updated(1);
    assert.deepEqual(sink.updates[0], {
      users: { retry: { maxAttempts: 2 }, endpoints: [{ address: '127.0.0.1:4001' }] },
    });
    assert.match(source.describe(), /serving the disk cache .* saved at \d{4}-/);

    // The stream's first config then replaces it, type by type: new endpoints with the cached Service.
    silent.send({
      typeUrl: ENDPOINT_SET_TYPE_URL,
      versionInfo: '6',
      nonce: 'c',
      resources: [encodeEndpointSet('users', ['127.0.0.1:4002'])],
    });
    await sink.updated(2);
    assert.deepEqual(sink.last, { users: { retry: { maxAttempts: 2 }, endpoints: [{ address: '127.0.0.1:4002' }] } });
  });

  it('serves the cache when the server is down', async () => {
    const server = await new FakeControlServer().start();
    const dir = await tempDir();
    await primeCache(server, dir);
    const address = server.address;
    server.stop();

    const sink = meshSink();
    const source = controlPlane({ address, cacheDir: dir, backoff: fast });
    cleanups.push(() => source.close());
    source.start(sink, { service: 'orders' });
    await sink.updated(1);
    assert.deepEqual(Object.keys(sink.updates[0]), ['users']);
    await sink.erred((e) => e.message.includes('reconnecting'));
    assert.equal(sink.updates.length, 1, 'a failed connection does not empty the view');
  });

  it('a corrupt cache file is reported, ignored and not deleted; the first config from the stream rewrites it', async () => {
    const server = await new FakeControlServer().start();
    cleanups.push(() => server.stop());
    const dir = await tempDir();
    const file = cacheFile(dir, server.address);
    await writeFile(file, '{"format": 1, "address": "trunc');

    const sink = meshSink();
    const source = controlPlane({ address: server.address, cacheDir: dir, backoff: fast });
    cleanups.push(() => source.close());
    source.start(sink, { service: undefined });
    const err = await sink.erred((e) => e instanceof DiscoveryCacheError);
    assert.equal((err as DiscoveryCacheError).code, 'MESHLET_ERR_DISCOVERY_CACHE');
    assert.match(err.message, /is not valid JSON/);
    assert.ok(err.message.includes(file));
    assert.equal(sink.updates.length, 0);
    assert.equal(await readFile(file, 'utf8'), '{"format": 1, "address": "trunc', 'left as it was');

    const stream = await server.stream(0);
    stream.send({ typeUrl: SERVICE_TYPE_URL, versionInfo: '1', nonce: 'a', resources: [] });
    stream.send({
      typeUrl: ENDPOINT_SET_TYPE_URL,
      versionInfo: '1',
      nonce: 'b',
      resources: [encodeEndpointSet('users', ['127.0.0.1:1'])],
    });
    await sink.updated(1);
    await eventually(async () => (JSON.parse(await readFile(file, 'utf8')).format === 1 ? true : undefined));
  });

  it('a cache holding a config the mesh refuses is reported and ignored', async () => {
    const server = await new FakeControlServer().start();
    cleanups.push(() => server.stop());
    const dir = await tempDir();
    const file = cacheFile(dir, server.address);
    await writeFile(
      file,
      JSON.stringify({
        format: 1,
        address: server.address,
        savedAt: 'x',
        versions: {},
        services: { users: { retry: { maxAttempts: 0 } } },
      }),
    );
    const sink = meshSink();
    const source = controlPlane({ address: server.address, cacheDir: dir, backoff: fast });
    cleanups.push(() => source.close());
    source.start(sink, { service: undefined });
    const err = await sink.erred((e) => e instanceof DiscoveryCacheError);
    assert.match(err.message, /does not hold a valid config .*services\.users\.retry\.maxAttempts/);
    assert.equal(sink.updates.length, 0);

    // A cache of another format or address is refused the same way.
    await writeFile(file, JSON.stringify({ format: 2, address: server.address, services: {} }));
    const sink2 = meshSink();
    const source2 = controlPlane({ address: server.address, cacheDir: dir, backoff: fast });
    cleanups.push(() => source2.close());
    source2.start(sink2, { service: undefined });
    assert.match((await sink2.erred((e) => e instanceof DiscoveryCacheError)).message, /has format 2, expected 1/);
  });
});
