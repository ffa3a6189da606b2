/**
 * `createMesh(options)` and `mesh.update(config)`: every option is validated, every issue has a
 * non-empty path (`(root)` for the argument itself), and all issues come in one error.
 */
import assert from 'node:assert/strict';
import { describe, it } from 'node:test';
import { validateMeshOptions } from '../../src/config/options.js';
import { createMesh, type MeshOptions } from '../../src/mesh.js';
import type { MeshConfig } from '../../src/config/types.js';
import { assertIssue, configError } from './config-error.js';

const anyOptions = (o: unknown) => o as MeshOptions & MeshConfig;

describe('createMesh options', () => {
  for (const [name, value, got] of [
    ['undefined', undefined, 'nothing'],
    ['null', null, 'null'],
    ['a string', 'users', '"users"'],
    ['an array', [], 'an empty array'],
    ['a symbol', Symbol('x'), 'a symbol'],
    ['a function', () => ({}), 'a function'],
  ] as const) {
    it(`refuses ${name} with the path (root)`, () => {
      assertIssue(
        () => createMesh(anyOptions(value)),
        '(root)',
        `expected an options object like { services: { ... }, statsWindowMs?, telemetry?, clock?, random? }, got ${got}`,
      );
    });
  }

  it('reports unknown options with a suggestion, with every other issue', () => {
    const err = configError(() =>
      createMesh(anyOptions({ services: { users: { retry: { maxAttempts: 0 } } }, statsWindow: 1000, random: 4 })),
    );
    assert.deepEqual(
      err.issues.map((i) => `${i.path}: ${i.message}`),
      [
        'statsWindow: unknown key (did you mean "statsWindowMs"?)',
        'services.users.retry.maxAttempts: expected an integer >= 1, got 0',
        'random: expected a function returning a number in [0, 1), got 4',
      ],
    );
  });

  it('checks the clock', () => {
    assertIssue(
      () => createMesh(anyOptions({ services: {}, clock: Date })),
      'clock',
      'expected a clock (an object with a now() method returning milliseconds), got a function',
    );
    assertIssue(
      () => createMesh(anyOptions({ services: {}, clock: { now: 5 } })),
      'clock',
      'expected a clock (an object with a now() method returning milliseconds), got an object whose now is 5',
    );
  });

  it('accepts a clock whose now() lives on its prototype', async () => {
    class FakeClock {
      t = 0;
      now(): number {
        return this.t;
      }
    }
    const clock = new FakeClock();
    const valid = validateMeshOptions({ services: {}, clock });
    assert.equal(valid.clock, clock);
    const mesh = createMesh({ services: { users: { endpoints: ['10.0.0.1:80'] } }, clock });
    await mesh.close();
  });

  it('checks telemetry: an object of providers with their factory methods', () => {
    assertIssue(
      () => createMesh(anyOptions({ services: {}, telemetry: { meterProvider: {} } })),
      'telemetry.meterProvider',
      'expected an OpenTelemetry provider (an object with a getMeter() method), got an object whose getMeter is nothing',
    );
    assertIssue(
      () => createMesh(anyOptions({ services: {}, telemetry: { tracerProvider: 'otel' } })),
      'telemetry.tracerProvider',
      'expected an OpenTelemetry provider (an object with a getTracer() method), got "otel"',
    );
    assertIssue(
      () => createMesh(anyOptions({ services: {}, telemetry: { meterprovider: {} } })),
      'telemetry.meterprovider',
      'unknown key (did you mean "meterProvider"?)',
    );
    assertIssue(
      () => createMesh(anyOptions({ services: {}, telemetry: true })),
      'telemetry',
      'expected an object { meterProvider?, tracerProvider? }, got true',
    );
  });

  it('turns a throwing getter on an option into an issue naming it', () => {
    const options = {
      services: {},
      get statsWindowMs(): number {
        throw new Error('boom');
      },
    };
    assertIssue(
      () => createMesh(anyOptions(options)),
      'statsWindowMs',
      'could not be read (Error: boom); pass plain data, not getters or Proxies that throw',
    );
    const clock = {
      get now(): () => number {
        throw new TypeError('no clock');
      },
    };
    assertIssue(
      () => createMesh(anyOptions({ services: {}, clock })),
      'clock.now',
      'could not be read (TypeError: no clock); pass plain data, not getters or Proxies that throw',
    );
  });

  it('reads each option once, and the mesh uses what was validated', async () => {
    let reads = 0;
    const options = {
      services: {},
      get statsWindowMs(): number {
        reads++;
        return reads === 1 ? 1000 : -1;
      },
    };
    const mesh = createMesh(anyOptions(options));
    assert.equal(reads, 1);
    await mesh.close();
  });
});

describe('mesh.update', () => {
  it('refuses a non-object with the path (root)', async () => {
    const mesh = createMesh({ services: {} });
    for (const bad of [undefined, null, 42, 'x', []]) {
      const err = configError(() => mesh.update(anyOptions(bad)));
      assert.equal(err.path, '(root)');
    }
    await mesh.close();
  });

  it('accepts only services, and says the other options are fixed at creation', async () => {
    const mesh = createMesh({ services: {} });
    assertIssue(
      () => mesh.update(anyOptions({ services: {}, statsWindowMs: 1000 })),
      'statsWindowMs',
      'update() accepts only "services"; statsWindowMs is fixed when the mesh is created (createMesh({ statsWindowMs }))',
    );
    assertIssue(
      () => mesh.update(anyOptions({ services: {}, sevices: {} })),
      'sevices',
      'unknown key (did you mean "services"?): update() accepts only "services"',
    );
    assertIssue(
      () => mesh.update(anyOptions({})),
      'services',
      'expected an object mapping service names to service configs, got nothing',
    );
    assertIssue(
      () => mesh.update(anyOptions({ services: {}, colour: 'red' })),
      'colour',
      'unknown key: update() accepts only "services"',
    );
    await mesh.close();
  });

  it('keeps the running config when an update is refused', async () => {
    const mesh = createMesh({ services: { users: { endpoints: ['10.0.0.1:80'] } } });
    configError(() =>
      mesh.update({ services: { users: { endpoints: ['10.0.0.1:80'], timeout: { requestMs: 2 ** 31 } } } }),
    );
    assert.deepEqual(mesh.serviceNames(), ['users']);
    await mesh.close();
  });
});
