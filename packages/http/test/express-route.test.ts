// routeTemplate against Express 4's shapes, which are not installed here (Express 5 is, and
// express.test.ts covers it on real apps): an Express 4 app keeps `_router.stack` of layers with
// a compiled `regexp` (with `fast_slash` for `/`) and `keys`, and no path string. The regexps and
// keys below are those Express 4.22.3 (path-to-regexp 0.1) builds for `app.use(path, router)`.
import { describe, it } from 'node:test';
import assert from 'node:assert/strict';
import { routeTemplate } from '../src/express/route.js';

function fastSlash(): RegExp {
  return Object.assign(/^\/?(?=\/|$)/i, { fast_slash: true });
}

function mount(regexp: RegExp, keys: Array<{ name: string; optional: boolean }>, stack: unknown[]) {
  return { regexp, keys, handle: { stack } };
}

describe('routeTemplate on Express 4 shapes', () => {
  it('rebuilds a parameterised mount from the layer regexp and keys', () => {
    const route = { path: '/posts/:pid' };
    const app = {
      _router: {
        stack: [
          { regexp: fastSlash(), keys: [], handle: {} }, // query, expressInit
          mount(/^\/orgs(?:\/([^/]+?))\/?(?=\/|$)/i, [{ name: 'org', optional: false }], [{ route }]),
        ],
      },
    };
    assert.equal(routeTemplate({ route, baseUrl: '/orgs/42', app }), '/orgs/:org/posts/:pid');
    // Cached per route: a later request with another org gets the same template.
    assert.equal(routeTemplate({ route, baseUrl: '/orgs/43', app }), '/orgs/:org/posts/:pid');
  });

  it('follows nested routers and a router mounted at / (fast_slash)', () => {
    const route = { path: '/leaf/:l' };
    const inner = mount(/^\/in(?:\/([^/]+?))\/?(?=\/|$)/i, [{ name: 'i', optional: false }], [{ route }]);
    const app = {
      _router: {
        stack: [
          mount(
            fastSlash(),
            [],
            [
              mount(
                /^\/teams(?:\/([^/]+?))\/v(?:([^/]+?))\/?(?=\/|$)/i,
                [
                  { name: 'team', optional: false },
                  { name: 'ver', optional: false },
                ],
                [inner],
              ),
            ],
          ),
        ],
      },
    };
    assert.equal(routeTemplate({ route, baseUrl: '/teams/a/v2/in/9', app }), '/teams/:team/v:ver/in/:i/leaf/:l');
  });

  it('falls back to the concrete prefix, bounded, when a router is mounted twice', () => {
    const route = { path: '/x' };
    const shared = [{ route }];
    const app = {
      _router: {
        stack: [
          mount(/^\/a\/?(?=\/|$)/i, [], shared),
          mount(/^\/b(?:\/([^/]+?))\/?(?=\/|$)/i, [{ name: 'n', optional: false }], shared),
        ],
      },
    };
    const seen = new Set<string>();
    for (let n = 0; n < 40; n++) seen.add(routeTemplate({ route, baseUrl: `/b/${n}`, app }));
    assert.equal(seen.size, 17);
    assert.ok(seen.has('/b/0/x'));
    assert.ok(seen.has('/(other)/x'));
  });

  it('does not guess when an optional mount parameter was left out of the first request', () => {
    const route = { path: '/y' };
    const app = {
      _router: { stack: [mount(/^\/opt(?:\/([^/]+?))?\/?(?=\/|$)/i, [{ name: 'o', optional: true }], [{ route }])] },
    };
    assert.equal(routeTemplate({ route, baseUrl: '/opt', app }), '/opt/y');
  });

  it('reports (unmatched) when no route was matched, and an unmounted route by its own path', () => {
    assert.equal(routeTemplate({ route: undefined, baseUrl: '' }), '(unmatched)');
    assert.equal(routeTemplate({ route: { path: '/users/:id' }, baseUrl: '' }), '/users/:id');
    assert.equal(routeTemplate({ route: { path: ['/a', '/b'] }, baseUrl: '' }), '/a,/b');
  });
});
