/**
 * Reconnect delays: exponential (initial × multiplier^n, capped) with ± jitter, as gRPC's
 * connection backoff. `reset()` after the server answered, so a healthy stream that later breaks
 * reconnects quickly.
 */
import type { BackoffOptions } from './options.js';

export class Backoff {
  private readonly opts: Required<BackoffOptions>;
  private readonly random: () => number;
  private current: number;

  constructor(opts: Required<BackoffOptions>, random: () => number = Math.random) {
    this.opts = opts;
    this.random = random;
    this.current = opts.initialMs;
  }

  /** The delay before the next attempt; grows the one after. */
  next(): number {
    const base = this.current;
    this.current = Math.min(this.opts.maxMs, this.current * this.opts.multiplier);
    const spread = base * this.opts.jitter;
    const delay = base + (this.random() * 2 - 1) * spread;
    return Math.max(0, Math.min(2 ** 31 - 1, Math.round(delay)));
  }

  reset(): void {
    this.current = this.opts.initialMs;
  }
}
