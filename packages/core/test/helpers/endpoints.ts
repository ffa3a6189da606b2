import { Endpoint } from '../../src/endpoint.js';

/** A clock frozen at 0, for tests whose endpoints never need time to pass. */
export const frozenClock = { now: (): number => 0 };

/** Fake endpoints 10.0.0.1:80, 10.0.0.2:80, … with the given weights (no sockets). */
export function makeEndpoints(weights: readonly number[]): Endpoint[] {
  return weights.map(
    (weight, i) =>
      new Endpoint(
        { address: `10.0.0.${i + 1}:80`, host: `10.0.0.${i + 1}`, port: 80, weight, zone: undefined, metadata: {} },
        frozenClock,
        10_000,
      ),
  );
}
