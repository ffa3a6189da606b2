/**
 * The balancer registry: one `PickerFactory` per `loadBalancer` name. An explicit object, nothing
 * registered at import time.
 *
 * Ordering: a service's balancer calls `buildPicker` with its pickable endpoints whenever the
 * endpoint set, weights or health change, and swaps the new picker in for the pick step.
 */
import type { Endpoint } from '../endpoint.js';
import { leastRequestPickerFactory } from './least-request.js';
import { p2cEwmaPickerFactory } from './p2c-ewma.js';
import { randomPickerFactory } from './random.js';
import { ringHashPickerFactory } from './ring-hash.js';
import { roundRobinPickerFactory } from './round-robin.js';
import type { BalancerOptions, LoadBalancerName, Picker, PickerFactory } from './types.js';

export type { BalancerOptions, LoadBalancerName, PickContext, Picker, PickerFactory } from './types.js';
export { hashString } from './hash.js';

/** Every load-balancing algorithm by its config name. */
export const pickerFactories: Readonly<Record<LoadBalancerName, PickerFactory>> = {
  'p2c-ewma': p2cEwmaPickerFactory,
  'least-request': leastRequestPickerFactory,
  'round-robin': roundRobinPickerFactory,
  random: randomPickerFactory,
  'ring-hash': ringHashPickerFactory,
};

/** Defaults: `ewmaDecayMs` 10 000 (Linkerd), `random` Math.random. */
export const defaultBalancerOptions: Readonly<BalancerOptions> = {
  ewmaDecayMs: 10_000,
  random: Math.random,
};

/** Builds a picker for `name` over `endpoints` (copied); unset options take the defaults. */
export function buildPicker(
  name: LoadBalancerName,
  endpoints: readonly Endpoint[],
  options: Partial<BalancerOptions> = {},
): Picker {
  // Guarded at runtime too: names can come from untyped config.
  if (!Object.hasOwn(pickerFactories, name)) {
    throw new TypeError(
      `unknown load balancer "${String(name)}": expected one of ${Object.keys(pickerFactories).join(', ')}`,
    );
  }
  return pickerFactories[name](endpoints, {
    ewmaDecayMs: options.ewmaDecayMs ?? defaultBalancerOptions.ewmaDecayMs,
    random: options.random ?? defaultBalancerOptions.random,
    load: options.load,
  });
}
