/**
 * Least request, power of two choices (Envoy `least_request`, active_request_bias 1): draw two
 * distinct endpoints (by weight when weights differ), send to the one with fewer requests in
 * flight per unit of weight. A tie goes to the first draw, which is weight-distributed, so an
 * idle service still splits traffic by weight; under load in-flight counts settle proportional
 * to weight. O(1) per pick.
 *
 * Ordering: a Picker snapshot over already-filtered (pickable) endpoints; reads the live
 * `endpoint.inFlight` that the endpoint tier's accounting maintains. Weights are read at
 * construction.
 */
import type { Endpoint } from '../endpoint.js';
import { AliasTable, endpointWeight } from './random.js';
import type { BalancerOptions, PickContext, Picker, PickerFactory } from './types.js';

const EMPTY: Picker = { pick: () => undefined };

class LeastRequestPicker implements Picker {
  private readonly endpoints: readonly Endpoint[];
  private readonly weights: Float64Array;
  private readonly table: AliasTable;
  private readonly random: () => number;

  constructor(endpoints: readonly Endpoint[], random: () => number) {
    this.endpoints = endpoints;
    this.random = random;
    this.weights = new Float64Array(endpoints.length);
    for (let i = 0; i < endpoints.length; i++) this.weights[i] = endpointWeight(endpoints[i]);
    this.table = new AliasTable(this.weights);
  }

  pick(ctx: PickContext): Endpoint | undefined {
    const endpoints = this.endpoints;
    if (endpoints.length === 1) return endpoints[0];
    const a = this.table.sample(this.random);
    const b = this.table.sampleOther(a, this.random);
    // inFlight_b / w_b < inFlight_a / w_a, cross-multiplied to avoid division.
    const bWins = endpoints[b].inFlight * this.weights[a] < endpoints[a].inFlight * this.weights[b];
    const chosen = endpoints[bWins ? b : a];
    if (chosen === ctx.avoid) return endpoints[bWins ? a : b];
    return chosen;
  }
}

/** Builds a weighted least-request (P2C) picker over a copy of `endpoints`. */
export function createLeastRequestPicker(endpoints: readonly Endpoint[], options: BalancerOptions): Picker {
  if (endpoints.length === 0) return EMPTY;
  return new LeastRequestPicker(endpoints.slice(), options.random);
}

/** `least-request`: P2C over in-flight requests per unit of weight. */
export const leastRequestPickerFactory: PickerFactory = createLeastRequestPicker;
