// Scenario: one meaning for a URL. Every spelling the WHATWG URL parser reads as
// http://<service>/… goes through the mesh, through fetch and through the dispatcher alike (none
// leaks to DNS); a port on a mesh URL and https://<service> are refused with clear errors; strict
// mode refuses hosts that are not services; Host is always the service name; and one replay rule
// holds for both APIs.
import { after, before, describe, it } from 'node:test';
import assert from 'node:assert/strict';
import { Readable } from 'node:stream';
import { request, type Dispatcher } from 'undici';
import { createMesh, type UnknownServiceError } from '@meshlet/core';
import { createMeshDispatcher, createMeshFetch } from '@meshlet/http';
import { ServerSet, type TestServer } from './helpers/servers.ts';
import type { Mesh } from './helpers/load.ts';

/** Spellings of http://users/p (or of its root) that must all reach the mesh endpoint. */
const SPELLINGS: string[] = [
  'http://users/p',
  'HTTP://USERS/p',
  'http://USERS/p',
  'Http://Users/p',
  'http://%75sers/p',
  'http://us%65rs/p',
  'http://%55SERS/p',
  'http://users/p#frag',
  'http://users#frag',
  'http:\\\\users\\p',
  'http://users\\p',
  '  http://users/p  ',
  '\thttp://users/p\n',
  'http://users./p',
  'http://USERS./p',
  'http://users:80/p',
  'http://users:0080/p',
  'http://users:/p',
  'http://users?x=1',
  'http://users/p?q=1#f',
  'http:users/p',
  'http:/users/p',
  'http:///users/p',
  'http://us\ters/p',
  'http://users.:80/p?x#y',
];

/** Spellings only the dispatcher API carries: fetch refuses URLs with credentials (WHATWG fetch). */
const DISPATCHER_ONLY: string[] = ['http://user:pw@users/p', 'HTTP://u@USERS./p'];

/** Raw `dispatch` origins that name the service. */
const ORIGINS: Array<string | URL> = [
  'http://users',
  'HTTP://USERS',
  'http://users:80',
  'http://users/',
  'http://users.',
  ' http://users ',
  'http://%75sers',
  'http://user:pw@users',
  new URL('http://users/ignored/path'),
];

async function fetchText(fetch: ReturnType<typeof createMeshFetch>, url: string, init?: object): Promise<string> {
  const res = await fetch(url, init);
  return res.text();
}

async function requestText(url: string | URL, opts: Parameters<typeof request>[1]): Promise<string> {
  const res = await request(url, opts);
  return res.body.text();
}

/** A raw dispatch with the given origin; resolves the body or rejects with the error. */
function rawDispatch(dispatcher: Dispatcher, origin: string | URL, path = '/raw'): Promise<string> {
  return new Promise((resolve, reject) => {
    const chunks: Buffer[] = [];
    dispatcher.dispatch({ origin, path, method: 'GET', headers: {} }, {
      onConnect() {},
      onHeaders() {
        return true;
      },
      onData(chunk: Buffer) {
        chunks.push(chunk);
        return true;
      },
      onComplete() {
        resolve(Buffer.concat(chunks).toString());
      },
      onError(err: Error) {
        reject(err);
      },
    } as Dispatcher.DispatchHandler);
  });
}

describe('http urls: one meaning for a URL', () => {
  const servers = new ServerSet();
  let users: TestServer;
  let plain: TestServer;
  let mesh: Mesh;
  let fetch: ReturnType<typeof createMeshFetch>;
  let dispatcher: ReturnType<typeof createMeshDispatcher>;

  before(async () => {
    users = await servers.start('users0');
    plain = await servers.start('plain');
    mesh = createMesh({ services: { users: { endpoints: [users.address] } } });
    fetch = createMeshFetch(mesh);
    dispatcher = createMeshDispatcher(mesh);
  });

  after(async () => {
    await mesh?.close();
    await servers.closeAll();
  });

  it(`${SPELLINGS.length} spellings of http://users/ reach the mesh endpoint through fetch`, async () => {
    for (const url of SPELLINGS) {
      const before = users.count;
      assert.equal(await fetchText(fetch, url), 'users0', url);
      assert.equal(users.count, before + 1, url);
      assert.equal(users.requests.at(-1)!.headers.host, 'users', url);
    }
  });

  it(`${SPELLINGS.length + DISPATCHER_ONLY.length} spellings of http://users/ reach the mesh endpoint through undici.request`, async () => {
    for (const url of [...SPELLINGS, ...DISPATCHER_ONLY]) {
      const before = users.count;
      assert.equal(await requestText(url, { dispatcher }), 'users0', JSON.stringify(url));
      assert.equal(users.count, before + 1, url);
      assert.equal(users.requests.at(-1)!.headers.host, 'users', url);
    }
  });

  it('raw dispatch origins in any spelling (string or URL) reach the mesh endpoint', async () => {
    for (const origin of ORIGINS) {
      const before = users.count;
      assert.equal(await rawDispatch(dispatcher, origin), 'users0', String(origin));
      assert.equal(users.count, before + 1, String(origin));
      assert.equal(users.requests.at(-1)!.headers.host, 'users');
    }
  });

  it('Host is the service name, never the caller’s Host header or the raw origin', async () => {
    await requestText('http://USERS.:80/h', { dispatcher, headers: { Host: 'evil.example' } });
    assert.equal(users.requests.at(-1)!.headers.host, 'users');
    await requestText('http://users/h', { dispatcher, headers: ['x-a', '1', 'HOST', 'evil.example'] });
    assert.equal(users.requests.at(-1)!.headers.host, 'users');
    assert.equal(users.requests.at(-1)!.headers['x-a'], '1');
    await requestText('http://users/h', { dispatcher, headers: new Map([['host', 'evil.example']]) as never });
    assert.equal(users.requests.at(-1)!.headers.host, 'users');
    await fetchText(fetch, 'http://%75sers./h', { headers: { host: 'evil.example' } });
    assert.equal(users.requests.at(-1)!.headers.host, 'users');
  });

  it('a port other than the default is refused with MESHLET_ERR_INVALID_REQUEST naming the service', async () => {
    const before = users.count;
    const check = (err: { code?: string; message: string }): boolean => {
      assert.equal(err.code, 'MESHLET_ERR_INVALID_REQUEST');
      assert.match(err.message, /service "users"/);
      assert.match(err.message, /endpoints carry their own ports/);
      return true;
    };
    await assert.rejects(fetch('http://users:8080/p'), check);
    await assert.rejects(request('http://users:8080/p', { dispatcher }), check);
    await assert.rejects(rawDispatch(dispatcher, 'HTTP://USERS:8080'), check);
    assert.equal(users.count, before);
  });

  it('https://<service>/ is refused with MESHLET_ERR_UNSUPPORTED, never sent to DNS', async () => {
    const check = (err: { code?: string; message: string }): boolean => {
      assert.equal(err.code, 'MESHLET_ERR_UNSUPPORTED');
      assert.match(err.message, /service "users"/);
      return true;
    };
    await assert.rejects(fetch('https://users/p'), check);
    await assert.rejects(fetch('HTTPS://%75SERS/p'), check);
    await assert.rejects(request('https://users/p', { dispatcher }), check);
  });

  it('strict mode: unknownHosts "reject" fails other hosts with MESHLET_ERR_UNKNOWN_SERVICE and close matches', async () => {
    const strictFetch = createMeshFetch(mesh, { unknownHosts: 'reject' });
    const strict = createMeshDispatcher(mesh, { unknownHosts: 'reject' });
    const before = plain.count;
    const typo = (err: UnknownServiceError): boolean => {
      assert.equal(err.code, 'MESHLET_ERR_UNKNOWN_SERVICE');
      assert.match(err.message, /"userz"/);
      assert.match(err.message, /did you mean "users"/);
      assert.deepEqual(err.suggestions, ['users']);
      return true;
    };
    await assert.rejects(strictFetch('http://userz/p'), typo);
    await assert.rejects(request('http://userz/p', { dispatcher: strict }), typo);
    const other = (err: { code?: string }): boolean => err.code === 'MESHLET_ERR_UNKNOWN_SERVICE';
    await assert.rejects(strictFetch(`${plain.url}/x`), other);
    await assert.rejects(request(`${plain.url}/x`, { dispatcher: strict }), other);
    assert.equal(plain.count, before, 'nothing reached the non-mesh host');
    assert.equal(await fetchText(strictFetch, 'HTTP://USERS/p'), 'users0');
    assert.equal(await requestText('http://users/p', { dispatcher: strict }), 'users0');
  });

  it('options are validated: unknown keys and bad values name the option', () => {
    assert.throws(
      () => createMeshFetch(mesh, { unknownHosts: 'deny' as never }),
      (err: { code?: string; message: string }) =>
        err.code === 'MESHLET_ERR_CONFIG' && /unknownHosts/.test(err.message) && /"deny"/.test(err.message),
    );
    assert.throws(
      () => createMeshDispatcher(mesh, { unknwonHosts: 'reject' } as never),
      (err: { code?: string; message: string }) =>
        err.code === 'MESHLET_ERR_CONFIG' && /unknwonHosts/.test(err.message) && /unknown option/.test(err.message),
    );
    assert.throws(
      () => createMeshDispatcher(mesh, { drainGraceMs: -1 }),
      (err: { code?: string; message: string }) =>
        err.code === 'MESHLET_ERR_CONFIG' && /drainGraceMs/.test(err.message),
    );
  });
});

describe('http urls: one replay rule for fetch and undici.request', () => {
  const servers = new ServerSet();
  let mesh: Mesh;
  let fetch: ReturnType<typeof createMeshFetch>;
  let dispatcher: ReturnType<typeof createMeshDispatcher>;
  const names = ['big-fetch', 'big-request', 'small-fetch', 'small-request', 'small-stream', 'big-buffer'];
  const byName = new Map<string, TestServer[]>();

  before(async () => {
    const services: Record<string, { endpoints: string[]; retry: { maxAttempts: number } }> = {};
    for (const name of names) {
      // One endpoint per service, answering its first request with a 503.
      const pair = await servers.startMany(`${name}-`, 1, { failFirst: 1 });
      byName.set(name, pair);
      services[name] = { endpoints: pair.map((s) => s.address), retry: { maxAttempts: 2 } };
    }
    mesh = createMesh({ services });
    fetch = createMeshFetch(mesh);
    dispatcher = createMeshDispatcher(mesh);
  });

  after(async () => {
    await mesh?.close();
    await servers.closeAll();
  });

  const received = (name: string): number => byName.get(name)!.reduce((n, s) => n + s.count, 0);
  const big = 'x'.repeat(100 * 1024);
  const small = 'y'.repeat(1024);

  it('≤ 64 KiB is replayed and 100 KiB is sent once, in every body form, through fetch and undici.request alike', async () => {
    const res1 = await fetch('http://small-fetch/up', { method: 'PUT', body: small });
    assert.equal(res1.status, 200);
    await res1.text();
    assert.equal(received('small-fetch'), 2);
    const res2 = await request('http://small-request/up', { dispatcher, method: 'PUT', body: small });
    assert.equal(res2.statusCode, 200);
    await res2.body.text();
    assert.equal(received('small-request'), 2);
    const res3 = await request('http://small-stream/up', {
      dispatcher,
      method: 'PUT',
      headers: { 'content-length': String(small.length) },
      body: Readable.from([Buffer.from(small.slice(0, 100)), Buffer.from(small.slice(100))]),
    });
    assert.equal(res3.statusCode, 200);
    await res3.body.text();
    assert.equal(received('small-stream'), 2);
    for (const s of byName.get('small-stream')!) {
      if (s.requests.length > 0) assert.equal(s.requests[0].body.toString(), small);
    }

    const res4 = await fetch('http://big-fetch/up', { method: 'PUT', body: big });
    assert.equal(res4.status, 503);
    await res4.text();
    assert.equal(received('big-fetch'), 1);
    const res5 = await request('http://big-request/up', { dispatcher, method: 'PUT', body: big });
    assert.equal(res5.statusCode, 503);
    await res5.body.text();
    assert.equal(received('big-request'), 1);
    const res6 = await request('http://big-buffer/up', { dispatcher, method: 'PUT', body: Buffer.from(big) });
    assert.equal(res6.statusCode, 503);
    await res6.body.text();
    assert.equal(received('big-buffer'), 1);
  });
});
