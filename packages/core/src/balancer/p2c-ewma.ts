/**
 * Power of two choices over peak-EWMA cost (Linkerd's default, Finagle's `P2CPeakEwma`): draw two
 * distinct endpoints (by weight when weights differ) and send to the cheaper one, where
 *
 *   cost = (decayed peak-EWMA latency + epsilon) × (inFlight / weight + 1).
 *
 * The estimate decays toward the service's neutral latency with wall time and with the
 * service's traffic (see `Endpoint.decayedEwma`), and a new endpoint is seeded with the
 * neutral latency: at concurrency 1, where in-flight counts say nothing, one slow sample (a
 * cold connection) no longer starves an endpoint for tens of seconds.
 *
 * An endpoint of weight w counts as w replicas sharing its in-flight requests, so in-flight
 * counts settle proportional to weight, and equal costs (a cold start) tie; a tie goes to the
 * first draw, which is weight-distributed. The decay lets an idle slow endpoint's cost fall back
 * so it is probed again rather than starved. An endpoint with no sample yet (ewmaMs 0) costs
 * almost nothing, so it gets traffic until its first response; while that probe is out it costs a
 * large penalty (Finagle), so a new endpoint is not flooded before its latency is known.
 * O(1) per pick.
 *
 * Ordering: a Picker snapshot over already-filtered (pickable) endpoints; reads the live
 * `inFlight` and EWMA that the endpoint tier's accounting writes, at `ctx.now`.
 */
import type { Endpoint, ServiceLoad } from '../endpoint.js';
import { AliasTable, endpointWeight } from './random.js';
import type { BalancerOptions, PickContext, Picker, PickerFactory } from './types.js';

/** Keeps in-flight counts meaningful when a latency has decayed to ~0. In ms. */
const EPSILON_MS = 1e-3;
/**
 * The second draw wins only when it is more than 15% cheaper: costs closer than that are
 * latency noise, and the first draw (random, by weight) keeps identical endpoints sharing
 * evenly instead of the momentarily cheapest one taking two thirds of the calls.
 */
const CLEARLY_CHEAPER = 0.85;
/** Cost of an endpoint whose first request has not answered yet (Finagle's penalty). */
const PENALTY = 1e12;

const EMPTY: Picker = { pick: () => undefined };

class P2cEwmaPicker implements Picker {
  private readonly endpoints: readonly Endpoint[];
  private readonly weights: Float64Array;
  private readonly table: AliasTable;
  private readonly random: () => number;
  private readonly decayMs: number;
  private readonly load: ServiceLoad;

  constructor(endpoints: readonly Endpoint[], options: BalancerOptions) {
    this.endpoints = endpoints;
    this.random = options.random;
    this.decayMs = options.ewmaDecayMs;
    this.load = options.load ?? { seq: 0, neutralMs: 0, endpoints: endpoints.length };
    this.weights = new Float64Array(endpoints.length);
    for (let i = 0; i < endpoints.length; i++) this.weights[i] = endpointWeight(endpoints[i]);
    this.table = new AliasTable(this.weights);
  }

  private cost(i: number, now: number): number {
    const e = this.endpoints[i];
    const load = e.inFlight / this.weights[i];
    if (e.ewmaMs === 0 && e.inFlight > 0) return PENALTY + load;
    return (e.decayedEwma(now, this.decayMs, this.load) + EPSILON_MS) * (load + 1);
  }

  pick(ctx: PickContext): Endpoint | undefined {
    const endpoints = this.endpoints;
    if (endpoints.length === 1) return endpoints[0];
    const a = this.table.sample(this.random);
    const b = this.table.sampleOther(a, this.random);
    const bWins = this.cost(b, ctx.now) < this.cost(a, ctx.now) * CLEARLY_CHEAPER;
    const chosen = endpoints[bWins ? b : a];
    if (chosen === ctx.avoid) return endpoints[bWins ? a : b];
    return chosen;
  }
}

/** Builds a P2C peak-EWMA picker over a copy of `endpoints`. */
export function createP2cEwmaPicker(endpoints: readonly Endpoint[], options: BalancerOptions): Picker {
  if (endpoints.length === 0) return EMPTY;
  return new P2cEwmaPicker(endpoints.slice(), options);
}

/** `p2c-ewma`: P2C over peak-EWMA latency × load (the default balancer). */
export const p2cEwmaPickerFactory: PickerFactory = createP2cEwmaPicker;
