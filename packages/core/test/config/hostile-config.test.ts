/**
 * Property: whatever object reaches `createMesh` or `mesh.update` (from user code, a file, the
 * control server), the mesh either accepts it or throws a `MeshConfigError` with a non-empty path.
 * Never another exception, never a polluted `Object.prototype`, never a stall.
 *
 * Inputs are hostile shapes (throwing getters, Proxies with throwing traps, revoked Proxies,
 * `__proto__` / `constructor` / `prototype` own keys, null-prototype and frozen objects, cycles,
 * holes, sparse arrays of length 2^32 − 1, NaN, -0, Infinity, BigInt, symbols, long strings)
 * and random mutations of a valid config. The 1 s bound per input is a bug detector (a
 * catastrophic regex, a walk over a sparse array), not a speed benchmark.
 */
import assert from 'node:assert/strict';
import { after, describe, it } from 'node:test';
import fc from 'fast-check';
import { MeshConfigError } from '../../src/errors.js';
import { createMesh, type Mesh, type MeshOptions } from '../../src/mesh.js';
import type { MeshConfig } from '../../src/config/types.js';

// ---------------------------------------------------------------------------
// Descriptions of hostile values. Arbitraries produce descriptions; `build` turns one into a
// fresh object for each run, so cycles, Proxies and revocations never leak between runs.

type ProxyMode = 'none' | 'pass' | 'throw-get' | 'throw-keys' | 'throw-proto' | 'throw-has' | 'revoked';
type ObjMode = 'plain' | 'null-proto' | 'frozen' | 'json';

type Desc =
  | { t: 'leaf'; v: unknown }
  | { t: 'long'; n: number; c: string }
  | { t: 'symbol' }
  | { t: 'fn' }
  | { t: 'cycle' }
  | {
      t: 'obj';
      entries: Array<[string, Desc]>;
      mode: ObjMode;
      throwingGetter: string | null;
      symbolKey: boolean;
      proxy: ProxyMode;
    }
  | { t: 'arr'; items: Desc[]; holes: number[]; sparseHuge: boolean; proxy: ProxyMode };

const SCHEMA_KEYS = [
  'services',
  'statsWindowMs',
  'telemetry',
  'clock',
  'random',
  'endpoints',
  'protocol',
  'loadBalancer',
  'hashKey',
  'header',
  'path',
  'ewmaDecayMs',
  'retry',
  'maxAttempts',
  'backoff',
  'baseMs',
  'maxMs',
  'budget',
  'ratio',
  'ttlMs',
  'retryOn',
  'timeout',
  'requestMs',
  'perTryMs',
  'circuitBreaker',
  'windowMs',
  'outlierDetection',
  'intervalMs',
  'maxEjectionMs',
  'successRate',
  'routes',
  'name',
  'match',
  'pathPrefix',
  'method',
  'headers',
  'exact',
  'prefix',
  'regex',
  'present',
  'backends',
  'service',
  'weight',
  'address',
  'zone',
  'metadata',
  'users',
  'web',
  'x-id',
];
const PROTO_KEYS = [
  '__proto__',
  'constructor',
  'prototype',
  'toString',
  'hasOwnProperty',
  'valueOf',
  '__defineGetter__',
];

const keyArb = fc.oneof(
  { weight: 3, arbitrary: fc.constantFrom(...SCHEMA_KEYS) },
  { weight: 2, arbitrary: fc.constantFrom(...PROTO_KEYS) },
  { weight: 1, arbitrary: fc.string({ maxLength: 12 }) },
);

const leafArb: fc.Arbitrary<Desc> = fc.oneof(
  fc
    .constantFrom<unknown>(
      NaN,
      -0,
      0,
      1,
      -1,
      Infinity,
      -Infinity,
      2 ** 31 - 1,
      2 ** 31,
      3_000_000_000,
      2 ** 53,
      Number.MAX_VALUE,
      Number.MIN_VALUE,
      1.5,
      null,
      undefined,
      true,
      false,
      '',
      '10.0.0.1:8080',
      'users',
      'localhost',
      '(a+)+$',
      '^v[0-9]+$',
      'UNAVAILABLE',
      '5xx',
      'grpc',
      'ring-hash',
      '/api',
      'GET',
      '__proto__',
    )
    .map((v) => ({ t: 'leaf' as const, v })),
  fc.double().map((v) => ({ t: 'leaf' as const, v })),
  fc.integer().map((v) => ({ t: 'leaf' as const, v })),
  fc.string({ maxLength: 20 }).map((v) => ({ t: 'leaf' as const, v })),
  fc.bigInt().map((v) => ({ t: 'leaf' as const, v })),
  fc
    .record({ n: fc.constantFrom(300, 5_000, 1_000_000), c: fc.constantFrom('a', '-', '(', '1') })
    .map(({ n, c }) => ({ t: 'long' as const, n, c })),
  fc.constant({ t: 'symbol' as const }),
  fc.constant({ t: 'fn' as const }),
);

const proxyArb = fc.oneof(
  { weight: 6, arbitrary: fc.constant<ProxyMode>('none') },
  {
    weight: 1,
    arbitrary: fc.constantFrom<ProxyMode>('pass', 'throw-get', 'throw-keys', 'throw-proto', 'throw-has', 'revoked'),
  },
);

const { value: valueArb } = fc.letrec<{ value: Desc; obj: Desc; arr: Desc }>((tie) => ({
  value: fc.oneof(
    { depthSize: 'small', withCrossShrink: true },
    leafArb,
    tie('obj'),
    tie('arr'),
    fc.constant<Desc>({ t: 'cycle' }),
  ),
  obj: fc.record({
    t: fc.constant('obj' as const),
    entries: fc.array(fc.tuple(keyArb, tie('value')), { maxLength: 5 }),
    mode: fc.constantFrom<ObjMode>('plain', 'null-proto', 'frozen', 'json'),
    throwingGetter: fc.option(keyArb, { freq: 4, nil: null }) as fc.Arbitrary<string | null>,
    symbolKey: fc.nat({ max: 4 }).map((n) => n === 0),
    proxy: proxyArb,
  }),
  arr: fc.record({
    t: fc.constant('arr' as const),
    items: fc.array(tie('value'), { maxLength: 5 }),
    holes: fc.array(fc.nat({ max: 6 }), { maxLength: 2 }),
    sparseHuge: fc.nat({ max: 9 }).map((n) => n === 0), // one array in ten
    proxy: proxyArb,
  }),
}));

function build(d: Desc, parent: object | undefined): unknown {
  switch (d.t) {
    case 'leaf':
      return d.v;
    case 'long':
      return d.c.repeat(d.n);
    case 'symbol':
      return Symbol('hostile');
    case 'fn':
      return () => 0.5;
    case 'cycle':
      return parent ?? {};
    case 'obj': {
      let obj: Record<string, unknown>;
      if (d.mode === 'json') {
        // JSON.parse makes "__proto__" an own data property, as a config file would.
        obj = JSON.parse(`{${d.entries.map(([k], i) => `${JSON.stringify(k)}:${i}`).join(',')}}`) as Record<
          string,
          unknown
        >;
      } else {
        obj = d.mode === 'null-proto' ? (Object.create(null) as Record<string, unknown>) : {};
      }
      for (const [k, child] of d.entries) {
        Object.defineProperty(obj, k, {
          value: build(child, obj),
          enumerable: true,
          configurable: true,
          writable: true,
        });
      }
      if (d.throwingGetter !== null) {
        Object.defineProperty(obj, d.throwingGetter, {
          get() {
            throw new Error(`getter ${d.throwingGetter} throws`);
          },
          enumerable: true,
          configurable: true,
        });
      }
      if (d.symbolKey) {
        Object.defineProperty(obj, Symbol('services'), { value: { users: {} }, enumerable: true, configurable: true });
      }
      if (d.mode === 'frozen') Object.freeze(obj);
      return wrap(obj, d.proxy);
    }
    case 'arr': {
      const arr: unknown[] = [];
      for (const item of d.items) arr.push(build(item, arr));
      for (const h of d.holes) if (h < arr.length) delete arr[h];
      if (d.sparseHuge) arr.length = 2 ** 32 - 1;
      return wrap(arr, d.proxy);
    }
  }
}

function wrap(target: object, mode: ProxyMode): unknown {
  const boom = (): never => {
    throw new TypeError(`proxy trap (${mode})`);
  };
  switch (mode) {
    case 'none':
      return target;
    case 'pass':
      return new Proxy(target, {});
    case 'throw-get':
      return new Proxy(target, { get: boom });
    case 'throw-keys':
      return new Proxy(target, { ownKeys: boom });
    case 'throw-proto':
      return new Proxy(target, { getPrototypeOf: boom });
    case 'throw-has':
      return new Proxy(target, { has: boom, getOwnPropertyDescriptor: boom });
    case 'revoked': {
      const { proxy, revoke } = Proxy.revocable(target, {});
      revoke();
      return proxy;
    }
  }
}

// ---------------------------------------------------------------------------
// Mutations of a valid config.

function validConfig(): Record<string, unknown> {
  return {
    services: {
      users: {
        endpoints: ['10.0.0.1:8080', { address: 'users-1.internal:8080', weight: 2, zone: 'a', metadata: { v: '1' } }],
        loadBalancer: 'ring-hash',
        hashKey: { header: 'x-user' },
        retry: { maxAttempts: 3, backoff: { baseMs: 10, maxMs: 100 }, budget: { ratio: 0.2 }, retryOn: ['5xx'] },
        timeout: { requestMs: 2000, perTryMs: 500 },
        circuitBreaker: { windowMs: 1000, backoff: { baseMs: 100, maxMs: 1000 } },
        outlierDetection: {
          intervalMs: 1000,
          baseEjectionMs: 1000,
          maxEjectionMs: 10_000,
          successRate: { minimumHosts: 3 },
        },
      },
      orders: { protocol: 'grpc', endpoints: ['10.0.1.1:50051'], retry: { retryOn: ['UNAVAILABLE'] } },
      web: {
        routes: [
          {
            name: 'canary',
            match: { pathPrefix: '/api', method: 'GET', headers: { 'x-id': { regex: '^v[0-9]+$' }, 'x-b': 'on' } },
            backends: [
              { service: 'users', weight: 9 },
              { service: 'orders', weight: 1 },
            ],
          },
        ],
      },
    },
  };
}

type Mutation = { target: number; key: number; op: 'replace' | 'delete' | 'add'; newKey: string; value: Desc };

const mutationArb: fc.Arbitrary<Mutation> = fc.record({
  target: fc.nat(),
  key: fc.nat(),
  op: fc.constantFrom<Mutation['op']>('replace', 'delete', 'add'),
  newKey: keyArb,
  value: valueArb,
});

/** Every object and array reachable from `value`, once each (earlier mutations may add cycles). */
function containers(
  value: unknown,
  out: Array<Record<string, unknown> | unknown[]>,
  seen = new Set<unknown>(),
): typeof out {
  if (typeof value === 'object' && value !== null && !seen.has(value)) {
    seen.add(value);
    out.push(value as Record<string, unknown>);
    // Data properties only: a getter placed by an earlier mutation must not fire here, and a
    // Proxy placed by one may throw on any question.
    let descriptors: PropertyDescriptor[] = [];
    try {
      descriptors = Object.values(Object.getOwnPropertyDescriptors(value));
    } catch {
      // not walked into
    }
    for (const desc of descriptors) if ('value' in desc) containers(desc.value, out, seen);
  }
  return out;
}

function mutate(config: Record<string, unknown>, mutations: Mutation[]): Record<string, unknown> {
  for (const m of mutations) {
    const all = containers(config, []);
    const target = all[m.target % all.length]!;
    const value = build(m.value, target);
    try {
      const keys = Object.keys(target);
      const key = keys.length === 0 || m.op === 'add' ? m.newKey : keys[m.key % keys.length]!;
      if (m.op === 'delete' && keys.length > 0) delete (target as Record<string, unknown>)[key];
      else Object.defineProperty(target, key, { value, enumerable: true, configurable: true, writable: true });
    } catch {
      // a frozen object or a Proxy placed by an earlier mutation: this mutation is a no-op
    }
  }
  return config;
}

// ---------------------------------------------------------------------------
// The property.

/** One input: how to build it afresh, and its description (shown in a counterexample). */
type Input = { kind: string; desc: unknown; make: () => unknown };

const inputArb: fc.Arbitrary<Input> = fc.oneof(
  valueArb.map((d) => ({ kind: 'root', desc: d, make: () => build(d, undefined) })),
  valueArb.map((d) => ({ kind: 'services', desc: d, make: () => ({ services: build(d, undefined) }) })),
  fc.tuple(fc.constantFrom(...SCHEMA_KEYS, ...PROTO_KEYS), valueArb).map(([k, d]) => ({
    kind: `service.${k}`,
    desc: d,
    make: () => {
      const users = {};
      Object.defineProperty(users, k, { value: build(d, users), enumerable: true, configurable: true, writable: true });
      return { services: { users } };
    },
  })),
  fc
    .array(mutationArb, { minLength: 1, maxLength: 4 })
    .map((ms) => ({ kind: 'mutated', desc: ms, make: () => mutate(validConfig(), ms) })),
);

function prototypeState(): string {
  const names = (o: object) =>
    [...Object.getOwnPropertyNames(o), ...Object.getOwnPropertySymbols(o).map(String)].sort().join(',');
  return `${names(Object.prototype)}|${names(Array.prototype)}|${String(Object.getPrototypeOf(Object.prototype))}`;
}

/**
 * Runs `fn`; it must succeed or throw a MeshConfigError with a non-empty path, within 1 s of CPU
 * time. `fn` is synchronous, so a stall is CPU spent in it; this process's CPU time, unlike the
 * wall clock, does not grow when other processes on a loaded machine take the cores.
 */
function expectAcceptedOrConfigError<T>(fn: () => T, what: string): T | undefined {
  const start = process.cpuUsage();
  try {
    return fn();
  } catch (err) {
    if (!(err instanceof MeshConfigError)) {
      assert.fail(`${what} threw ${err instanceof Error ? `${err.name}: ${err.message}` : String(err)}`);
    }
    assert.ok(err.path.length > 0, `${what}: MeshConfigError without a path: ${err.message}`);
    for (const issue of err.issues) assert.ok(issue.path.length > 0, `${what}: issue without a path: ${issue.message}`);
    return undefined;
  } finally {
    const used = process.cpuUsage(start);
    const ms = (used.user + used.system) / 1000;
    assert.ok(ms < 1000, `${what} took ${ms.toFixed(0)} ms of CPU`);
  }
}

/** Runs per property; raise it for a longer search (`HOSTILE_CONFIG_RUNS=20000`). */
const RUNS = Number(process.env.HOSTILE_CONFIG_RUNS) || 400;

describe('hostile config property', () => {
  const live: Mesh = createMesh({ services: { users: { endpoints: ['10.0.0.1:8080'] } } });
  after(() => live.close());

  it('createMesh and mesh.update accept or throw MeshConfigError with a path, never pollute, never stall', async () => {
    const before = prototypeState();
    await fc.assert(
      fc.asyncProperty(inputArb, async (input) => {
        const options = input.make() as MeshOptions;
        const mesh = expectAcceptedOrConfigError(() => createMesh(options), `createMesh(${input.kind})`);
        await mesh?.close();
        const config = input.make() as MeshOptions;
        expectAcceptedOrConfigError(() => live.update(config as MeshConfig), `update(${input.kind})`);
        assert.equal(prototypeState(), before, `${input.kind} changed Object.prototype or Array.prototype`);
        assert.equal(({} as Record<string, unknown>).services, undefined);
      }),
      { numRuns: RUNS, includeErrorInReport: true },
    );
  });

  it('turns a throwing getter into an issue naming its path', () => {
    const endpoint = {
      get address(): string {
        throw new Error('secret store offline');
      },
    };
    const err = expectAcceptedOrConfigError(
      () => createMesh({ services: { users: { endpoints: [endpoint as never] } } }),
      'getter',
    );
    assert.equal(err, undefined);
    try {
      createMesh({ services: { users: { endpoints: [endpoint as never] } } });
    } catch (e) {
      assert.ok(e instanceof MeshConfigError);
      assert.equal(e.path, 'services.users.endpoints[0].address');
      assert.equal(
        e.message,
        'services.users.endpoints[0].address: could not be read (Error: secret store offline); pass plain data, not getters or Proxies that throw',
      );
    }
  });

  it('reports a revoked Proxy and a Proxy whose traps throw at their paths', () => {
    const { proxy, revoke } = Proxy.revocable({}, {});
    revoke();
    const trap = new Proxy(
      {},
      {
        ownKeys() {
          throw new RangeError('no keys');
        },
      },
    );
    for (const [input, path] of [
      [{ services: { users: proxy } }, 'services.users'],
      [{ services: { users: { retry: trap } } }, 'services.users.retry'],
      [proxy, '(root)'],
    ] as const) {
      try {
        createMesh(input as MeshOptions);
        assert.fail('expected a MeshConfigError');
      } catch (e) {
        assert.ok(e instanceof MeshConfigError, String(e));
        assert.equal(e.path, path);
        assert.match(e.message, /could not be read \((TypeError|RangeError): /);
      }
    }
  });
});
