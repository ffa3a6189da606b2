import { performance } from 'node:perf_hooks';
/** A monotonic millisecond clock. Injected everywhere time matters so tests can use a fake one. */
export interface Clock {
  /** Monotonic milliseconds (fractional), like `performance.now()`. */
  now(): number;
}

/** The process clock: `performance.now()`. */
export const systemClock: Clock = {
  now: () => performance.now(),
};
