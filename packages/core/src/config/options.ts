/**
 * Validation of `createMesh(options)` and `mesh.update(config)`: the services (through
 * `validate.ts`) and the options beside them, all reported in one `MeshConfigError`.
 *
 * Options hold objects the user made (a clock, OpenTelemetry providers), which are class
 * instances with methods on their prototypes, so they are read as members rather than copied as
 * config data; each read is still guarded, so a getter that throws becomes an issue. What is
 * returned is what was read, so the mesh never reads the options object a second time.
 */
import type { Clock } from '../clock.js';
import type { TelemetryOptions } from '../telemetry/telemetry.js';
import { didYouMean } from '../util/suggest.js';
import { fail, INVALID, type Issue, join, readMember, readObject, ROOT, show, throwIfIssues } from './read.js';
import type { ResolvedMeshConfig } from './types.js';
import { checkNumber, MAX_DURATION_MS, resolveServices } from './validate.js';

/** Default of `statsWindowMs`. */
export const DEFAULT_STATS_WINDOW_MS = 10_000;

/**
 * Every `createMesh` option key; any other is an unknown-key issue with a did-you-mean. A new
 * option is added here (and read where it belongs).
 */
export const OPTION_KEYS: readonly string[] = [
  'services',
  'statsWindowMs',
  'telemetry',
  'clock',
  'random',
  'service',
  'discovery',
  'startupTimeoutMs',
  'dnsResolver',
];
const MESH_UPDATE_KEYS = ['services'];
const TELEMETRY_KEYS = ['meterProvider', 'tracerProvider'];

/** `createMesh` options, checked, with defaults left to the mesh where they are objects. */
export interface ValidatedMeshOptions {
  config: ResolvedMeshConfig;
  statsWindowMs: number;
  telemetry: TelemetryOptions | undefined;
  clock: Clock | undefined;
  random: (() => number) | undefined;
}

/** Validates `createMesh` options. Throws one `MeshConfigError` listing every issue. */
export function validateMeshOptions(options: unknown): ValidatedMeshOptions {
  const issues: Issue[] = [];
  const obj = readObject(
    issues,
    options,
    ROOT,
    'an options object like { services: { ... }, statsWindowMs?, telemetry?, clock?, random? }',
    OPTION_KEYS,
  );
  if (obj === INVALID) fail(issues);

  const services = resolveServices(issues, obj.services);
  const statsWindowMs =
    obj.statsWindowMs === undefined
      ? DEFAULT_STATS_WINDOW_MS
      : checkNumber(issues, obj.statsWindowMs, 'statsWindowMs', { integer: true, min: 100, max: MAX_DURATION_MS });
  const telemetry = readTelemetry(issues, obj.telemetry);
  const clock = readClock(issues, obj.clock);
  let random: (() => number) | undefined;
  if (obj.random !== undefined) {
    if (typeof obj.random === 'function') random = obj.random as () => number;
    else
      issues.push({
        path: 'random',
        message: `expected a function returning a number in [0, 1), got ${show(obj.random)}`,
      });
  }

  throwIfIssues(issues);
  return { config: { services }, statsWindowMs, telemetry, clock, random };
}

/**
 * Validates the argument of `mesh.update()`: `{ services }` and nothing else, since the other
 * options are fixed when the mesh is created.
 */
export function validateMeshUpdate(config: unknown): ResolvedMeshConfig {
  const issues: Issue[] = [];
  const obj = readObject(issues, config, ROOT, 'an object like { services: { ... } }');
  if (obj === INVALID) fail(issues);
  for (const key of Object.keys(obj)) {
    if (key === 'services') continue;
    issues.push({
      path: join('', key),
      message: OPTION_KEYS.includes(key)
        ? `update() accepts only "services"; ${key} is fixed when the mesh is created (createMesh({ ${key} }))`
        : `unknown key${didYouMean(key, MESH_UPDATE_KEYS)}: update() accepts only "services"`,
    });
  }
  const services = resolveServices(issues, obj.services);
  throwIfIssues(issues);
  return { services };
}

function readTelemetry(issues: Issue[], input: unknown): TelemetryOptions | undefined {
  if (input === undefined) return undefined;
  const path = 'telemetry';
  const obj = readObject(issues, input, path, 'an object { meterProvider?, tracerProvider? }', TELEMETRY_KEYS);
  if (obj === INVALID) return undefined;
  const out: TelemetryOptions = {};
  const meterProvider = readProvider(issues, obj.meterProvider, join(path, 'meterProvider'), 'getMeter');
  const tracerProvider = readProvider(issues, obj.tracerProvider, join(path, 'tracerProvider'), 'getTracer');
  if (meterProvider !== undefined) out.meterProvider = meterProvider as TelemetryOptions['meterProvider'];
  if (tracerProvider !== undefined) out.tracerProvider = tracerProvider as TelemetryOptions['tracerProvider'];
  return out;
}

/** An OpenTelemetry provider: any object with the factory method `method`. */
function readProvider(issues: Issue[], input: unknown, path: string, method: string): object | undefined {
  if (input === undefined) return undefined;
  const expected = `an OpenTelemetry provider (an object with a ${method}() method)`;
  if (typeof input !== 'object' || input === null) {
    issues.push({ path, message: `expected ${expected}, got ${show(input)}` });
    return undefined;
  }
  const fn = readMember(issues, input, method, path);
  if (fn === INVALID) return undefined;
  if (typeof fn !== 'function') {
    issues.push({ path, message: `expected ${expected}, got ${show(input)} whose ${method} is ${show(fn)}` });
    return undefined;
  }
  return input;
}

function readClock(issues: Issue[], input: unknown): Clock | undefined {
  if (input === undefined) return undefined;
  const expected = 'a clock (an object with a now() method returning milliseconds)';
  if (typeof input !== 'object' || input === null) {
    issues.push({ path: 'clock', message: `expected ${expected}, got ${show(input)}` });
    return undefined;
  }
  const now = readMember(issues, input, 'now', 'clock');
  if (now === INVALID) return undefined;
  if (typeof now !== 'function') {
    issues.push({ path: 'clock', message: `expected ${expected}, got ${show(input)} whose now is ${show(now)}` });
    return undefined;
  }
  return input as Clock;
}
