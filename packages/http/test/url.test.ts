// The one "is this a mesh URL" decision, over a fake mesh: every spelling the WHATWG parser reads
// as http://<service>/ is the service, whatever API form (origin string, URL object, full URL);
// a port, https and (in strict mode) unknown hosts are refused with the right error.
import { describe, it } from 'node:test';
import assert from 'node:assert/strict';
import { MeshError, type Mesh } from '@meshlet/core';
import { MeshUrlResolver, PendingVerdict } from '../src/url.js';

function fakeMesh(names: string[], ready = true): Mesh {
  const set = new Set(names);
  return {
    hasService: (n: string) => set.has(n),
    serviceNames: () => [...set],
    // As the mesh does it: before its first config, any name that could be a service.
    mayBeService: (n: string) =>
      !ready && /^[a-z0-9]([a-z0-9.-]*[a-z0-9])?$/.test(n) && !/^\d+\.\d+\.\d+\.\d+$/.test(n),
  } as unknown as Mesh;
}

const mesh = fakeMesh(['users', 'a.b-c']);

describe('MeshUrlResolver', () => {
  const r = new MeshUrlResolver(mesh, 'passthrough');

  it('reads canonical origins without a parse and caches them', () => {
    assert.equal(r.resolve('http://users'), 'users');
    assert.equal(r.resolve('http://users'), 'users'); // the Map fast path
    assert.equal(r.resolve('http://a.b-c'), 'a.b-c');
    assert.equal(r.resolve('http://users:80'), 'users');
  });

  it('resolves every spelling of the service, as an origin and as a full URL', () => {
    const spellings = [
      'HTTP://USERS',
      'http://%75sers',
      'http://users.',
      ' http://users ',
      'http:\\\\users',
      'http://users:0080',
      'http://user:pw@users',
      'http:users',
      'http://us\ters',
    ];
    for (const s of spellings) {
      assert.equal(r.resolve(s), 'users', `origin ${JSON.stringify(s)}`);
      const url = `${s.trimEnd()}/p?q#f${s.endsWith(' ') ? ' ' : ''}`;
      assert.equal(r.resolveUrl(url), 'users', `url ${JSON.stringify(url)}`);
    }
    assert.equal(r.resolve(new URL('http://USERS/x')), 'users');
    assert.equal(r.resolveUrl(new URL('http://users./x')), 'users');
    assert.equal(r.resolveUrl('http://users#frag'), 'users');
    assert.equal(r.resolveUrl('http://users?x'), 'users');
  });

  it('passes through hosts that are not services, and what is not a URL', () => {
    for (const s of [
      'http://example.org',
      'http://127.0.0.1:8080',
      'http://userz',
      'ftp://users',
      'not a url',
      'http://[::1]',
    ]) {
      assert.equal(r.resolve(s), undefined, s);
    }
    assert.equal(r.resolveUrl('http://users@example.org/x'), undefined, 'userinfo "users", host example.org');
    assert.equal(r.resolveUrl('http://users.example.org/x'), undefined);
    assert.equal(r.resolve(undefined), undefined);
  });

  it('the cache never answers for a service that is gone', () => {
    const names = new Set(['gone']);
    const m = {
      hasService: (n: string) => names.has(n),
      serviceNames: () => [...names],
      mayBeService: () => false,
    } as unknown as Mesh;
    const rr = new MeshUrlResolver(m, 'passthrough');
    assert.equal(rr.resolve('http://gone'), 'gone');
    names.delete('gone');
    assert.equal(rr.resolve('http://gone'), undefined);
  });

  it('refuses a non-default port with MESHLET_ERR_INVALID_REQUEST and https with MESHLET_ERR_UNSUPPORTED', () => {
    for (const s of ['http://users:8080', 'HTTP://USERS:8080', 'http://users.:81/x']) {
      const v = r.resolve(s);
      assert.ok(v instanceof MeshError, s);
      assert.equal(v.code, 'MESHLET_ERR_INVALID_REQUEST');
      assert.match(v.message, /service "users".*port/);
    }
    for (const s of ['https://users', 'HTTPS://%75sers/x', 'https://users:443']) {
      const v = r.resolveUrl(s);
      assert.ok(v instanceof MeshError, s);
      assert.equal(v.code, 'MESHLET_ERR_UNSUPPORTED');
    }
  });

  it('strict mode refuses any other host with MESHLET_ERR_UNKNOWN_SERVICE and close matches', () => {
    const strict = new MeshUrlResolver(mesh, 'reject');
    assert.equal(strict.resolve('http://users'), 'users');
    const v = strict.resolveUrl('http://userz/p') as MeshError & { suggestions: string[] };
    assert.equal(v.code, 'MESHLET_ERR_UNKNOWN_SERVICE');
    assert.deepEqual(v.suggestions, ['users']);
    for (const s of ['http://127.0.0.1:1', 'https://example.org/', 'not a url']) {
      assert.equal((strict.resolveUrl(s) as MeshError).code, 'MESHLET_ERR_UNKNOWN_SERVICE', s);
    }
  });

  it('before the mesh has a config, every spelling of a name that may be a service is pending, never passed through', () => {
    const notReady = fakeMesh(['known'], false);
    for (const mode of ['passthrough', 'reject'] as const) {
      const r2 = new MeshUrlResolver(notReady, mode);
      assert.equal(r2.resolve('http://known'), 'known', 'a known service goes through at once');
      for (const s of [
        'http://users',
        'HTTP://USERS/x',
        'http://%75sers/',
        'http://users.ns.svc:8080/x',
        'https://users/',
      ]) {
        const v = r2.resolveUrl(s);
        assert.ok(v instanceof PendingVerdict, `${mode} ${s}`);
        assert.equal(v.host, s.includes('ns.svc') ? 'users.ns.svc' : 'users');
      }
      // What can never be a service is decided at once.
      assert.ok(!(r2.resolveUrl('http://127.0.0.1:8080/') instanceof PendingVerdict));
      assert.ok(!(r2.resolve('http://[::1]:80') instanceof PendingVerdict));
    }
  });
});
