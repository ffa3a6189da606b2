/**
 * Weighted random balancer: Vose's alias method, built once per picker, O(1) and one random draw
 * per pick; plain `floor(random * n)` when all weights are equal.
 *
 * Ordering: a Picker snapshot over already-filtered (pickable) endpoints; weights are read at
 * construction, so a weight change needs a new picker (balancers rebuild on any change).
 * `AliasTable` is also the weighted candidate sampler of least-request and p2c-ewma.
 */
import type { Endpoint } from '../endpoint.js';
import type { BalancerOptions, PickContext, Picker, PickerFactory } from './types.js';

/** Effective weight of an endpoint: an integer >= 1 (anything else counts as 1). */
export function endpointWeight(endpoint: Endpoint): number {
  const w = endpoint.weight;
  return w >= 1 && Number.isFinite(w) ? Math.floor(w) : 1;
}

/**
 * Samples indices 0..n-1 with probability proportional to their weights (Vose's alias method).
 * Immutable after construction; `sample` allocates nothing.
 */
export class AliasTable {
  readonly size: number;
  /** True when every weight is equal: sampling is a plain uniform draw. */
  readonly uniform: boolean;
  private readonly prob: Float64Array;
  private readonly alias: Int32Array;

  constructor(weights: ArrayLike<number>) {
    const n = weights.length;
    this.size = n;
    let total = 0;
    let uniform = true;
    for (let i = 0; i < n; i++) {
      total += weights[i];
      if (weights[i] !== weights[0]) uniform = false;
    }
    this.uniform = uniform;
    this.prob = new Float64Array(uniform ? 0 : n);
    this.alias = new Int32Array(uniform ? 0 : n);
    if (uniform) return;

    // Vose: scaled[i] = w_i * n / total; pair each under-full column with an over-full one.
    const scaled = new Float64Array(n);
    const small = new Int32Array(n);
    const large = new Int32Array(n);
    let ns = 0;
    let nl = 0;
    for (let i = 0; i < n; i++) {
      scaled[i] = (weights[i] * n) / total;
      if (scaled[i] < 1) small[ns++] = i;
      else large[nl++] = i;
    }
    while (ns > 0 && nl > 0) {
      const s = small[--ns];
      const l = large[--nl];
      this.prob[s] = scaled[s];
      this.alias[s] = l;
      scaled[l] = scaled[l] + scaled[s] - 1;
      if (scaled[l] < 1) small[ns++] = l;
      else large[nl++] = l;
    }
    // Leftovers are 1 up to rounding error.
    while (nl > 0) this.prob[large[--nl]] = 1;
    while (ns > 0) this.prob[small[--ns]] = 1;
  }

  /** One weighted index from one draw of `random` (in [0, 1)). */
  sample(random: () => number): number {
    const n = this.size;
    const r = random() * n;
    let i = Math.floor(r);
    if (i >= n) i = n - 1; // guard against a random() that rounds up to 1
    if (this.uniform) return i;
    return r - i < this.prob[i] ? i : this.alias[i];
  }

  /**
   * A second index different from `first` (n >= 2). Uniform draws are exact; weighted draws
   * redraw once, then fall back to a uniform other index so skewed weights cannot loop.
   */
  sampleOther(first: number, random: () => number): number {
    const n = this.size;
    if (!this.uniform) {
      const b = this.sample(random);
      if (b !== first) return b;
    }
    let b = Math.floor(random() * (n - 1));
    if (b >= n - 1) b = n - 2;
    return b >= first ? b + 1 : b;
  }
}

const EMPTY: Picker = { pick: () => undefined };

class RandomPicker implements Picker {
  private readonly endpoints: readonly Endpoint[];
  private readonly table: AliasTable;
  private readonly random: () => number;

  constructor(endpoints: readonly Endpoint[], random: () => number) {
    this.endpoints = endpoints;
    this.random = random;
    const weights = new Float64Array(endpoints.length);
    for (let i = 0; i < endpoints.length; i++) weights[i] = endpointWeight(endpoints[i]);
    this.table = new AliasTable(weights);
  }

  pick(ctx: PickContext): Endpoint | undefined {
    const endpoints = this.endpoints;
    let i = this.table.sample(this.random);
    if (endpoints[i] === ctx.avoid && endpoints.length > 1) {
      i = this.table.sample(this.random);
      if (endpoints[i] === ctx.avoid) i = i + 1 === endpoints.length ? 0 : i + 1;
    }
    return endpoints[i];
  }
}

/** Builds a weighted random picker over a copy of `endpoints`. */
export function createRandomPicker(endpoints: readonly Endpoint[], options: BalancerOptions): Picker {
  if (endpoints.length === 0) return EMPTY;
  return new RandomPicker(endpoints.slice(), options.random);
}

/** `random`: weighted random (alias method). */
export const randomPickerFactory: PickerFactory = createRandomPicker;
