import type { Endpoint, ServiceLoad } from '../endpoint.js';

/** Per-request inputs to a pick. One object is reused per call; pickers must not keep it. */
export interface PickContext {
  /** Clock time of this pick, read once per attempt. */
  now: number;
  /** The endpoint the previous attempt failed on; avoided when another is available. */
  avoid: Endpoint | undefined;
  /** 32-bit hash of the request key for ring-hash; undefined when the request has none. */
  hash: number | undefined;
}

/**
 * An immutable snapshot over the currently pickable endpoints (grpc-js style). A balancer
 * builds a new Picker whenever the endpoint set, weights or health change.
 * `pick` must be allocation-free and sub-linear in the number of endpoints.
 */
export interface Picker {
  /** Returns an endpoint, or undefined when the snapshot is empty. */
  pick(ctx: PickContext): Endpoint | undefined;
}

/** Options every balancer receives; each uses what it needs. */
export interface BalancerOptions {
  /** Peak-EWMA decay time constant in ms (p2c-ewma). Default 10 000. */
  ewmaDecayMs: number;
  /** Random source in [0, 1); injectable for tests. Default Math.random. */
  random: () => number;
  /**
   * The service's live traffic facts (attempt count, neutral latency, endpoint count) that
   * `p2c-ewma` decays its estimates with. A picker built without one gets a private, static one.
   */
  load?: ServiceLoad;
}

/** Builds pickers for one load-balancing algorithm. */
export type PickerFactory = (endpoints: readonly Endpoint[], options: BalancerOptions) => Picker;

/** Names accepted by `loadBalancer` in service config. */
export type LoadBalancerName = 'p2c-ewma' | 'least-request' | 'round-robin' | 'random' | 'ring-hash';
