// AttemptOptions: the fixed-shape copy of the caller's dispatch options that every attempt sends.
import { describe, it } from 'node:test';
import assert from 'node:assert/strict';
import type { Dispatcher } from 'undici';
import { AttemptOptions } from '../src/request.js';

const copy = (o: object): AttemptOptions => new AttemptOptions(o as Dispatcher.DispatchOptions);

describe('AttemptOptions', () => {
  it('copies the members undici reads from a spread of the caller’s options, and nothing else', () => {
    const headers = { a: '1' };
    const userOpts = { dispatcher: {}, method: 'POST', headers, body: 'x', opaque: 1 };
    const o = copy({ ...userOpts, origin: 'http://svc', path: '/p?q=1', method: 'POST' });
    assert.equal(o.path, '/p?q=1');
    assert.equal(o.method, 'POST');
    assert.equal(o.headers, headers);
    assert.equal(o.body, 'x');
    assert.equal(o.query, undefined);
    assert.deepEqual(Object.keys(o).sort(), Object.keys(copy({})).sort());
    assert.equal('origin' in o, false);
  });

  it('reads an object that is not plain (a class with getters) member by member', () => {
    class Opts {
      get path(): string {
        return '/g';
      }
      get method(): string {
        return 'PUT';
      }
    }
    const o = copy(new Opts());
    assert.equal(o.path, '/g');
    assert.equal(o.method, 'PUT');
  });

  it('takes nothing from the prototype named by an own "__proto__" key', () => {
    const o = copy(
      JSON.parse('{"__proto__": {"headers": {"evil": "1"}, "path": "/evil"}, "path": "/x", "method": "GET"}'),
    );
    assert.equal(o.path, '/x');
    assert.equal(o.method, 'GET');
    assert.equal(o.headers, undefined);
  });
});
