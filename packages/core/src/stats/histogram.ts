/**
 * Latency histograms with log-linear (HDR-like) buckets: values are kept in whole
 * microseconds, exact below 16 µs, then 16 sub-buckets per power of two up to 2^27 µs
 * (~134 s); larger values are clamped into the last bucket. A bucket is at most 1/16 of
 * its lower bound wide, so a percentile (the bucket's midpoint) is within ~3% of the
 * true sample. `record` is O(1) and allocation-free.
 *
 * Ordering: a leaf of the stack — the accounting step of the endpoint tier and the
 * telemetry step of the service tier write here; `mesh.stats()` reads.
 */
import type { Clock } from '../clock.js';

/** Sub-buckets per power of two (2^SUB_BITS). */
const SUB_BITS = 4;
const SUB_COUNT = 1 << SUB_BITS;
/** Highest power of two tracked: values up to 2^MAX_EXP - 1 µs (~134 s). */
const MAX_EXP = 27;
const MAX_US = 2 ** MAX_EXP - 1;
/** Linear region (0..15 µs, one bucket per µs) + 16 buckets for each power 2^4 … 2^26. */
const BUCKET_COUNT = SUB_COUNT + (MAX_EXP - SUB_BITS) * SUB_COUNT;

/** Bucket of a latency in ms. Negative and NaN count as 0; beyond ~134 s clamps to the last bucket. */
function bucketIndex(ms: number): number {
  let us = ms * 1000;
  if (!(us >= 0))
    us = 0; // also catches NaN
  else if (us > MAX_US) us = MAX_US;
  const v = us | 0;
  // Position of the highest set bit; below 16 the buckets are linear (shift 0).
  const e = 31 - Math.clz32(v);
  const shift = e >= SUB_BITS ? e - SUB_BITS : 0;
  return (shift << SUB_BITS) + (v >>> shift);
}

/** Midpoint of a bucket, in ms. */
function bucketMidpointMs(index: number): number {
  if (index < SUB_COUNT) return (index + 0.5) / 1000;
  const shift = (index >>> SUB_BITS) - 1;
  const lower = (SUB_COUNT + (index & (SUB_COUNT - 1))) * 2 ** shift;
  return (lower + 2 ** shift / 2) / 1000;
}

/** Percentile over one or two bucket arrays holding `total` samples between them. */
function percentileOf(a: Uint32Array, b: Uint32Array | undefined, total: number, q: number): number {
  if (total === 0) return 0;
  // Nearest-rank: the smallest value with at least ceil(q × n) samples at or below it.
  const rank = !(q > 0) ? 1 : q >= 1 ? total : Math.max(1, Math.ceil(q * total));
  let seen = 0;
  for (let i = 0; i < BUCKET_COUNT; i++) {
    seen += b === undefined ? a[i] : a[i] + b[i];
    if (seen >= rank) return bucketMidpointMs(i);
  }
  return bucketMidpointMs(BUCKET_COUNT - 1);
}

/** A cumulative latency histogram (all samples since the last `reset`). Counts wrap after 2^32 per bucket. */
export class Histogram {
  private readonly counts = new Uint32Array(BUCKET_COUNT);
  private total = 0;

  /** Records one latency in ms. O(1), allocation-free. */
  record(ms: number): void {
    this.counts[bucketIndex(ms)]++;
    this.total++;
  }

  /** The q-quantile (q in [0, 1]) in ms, as its bucket's midpoint; 0 when empty. */
  percentile(q: number): number {
    return percentileOf(this.counts, undefined, this.total, q);
  }

  /** Samples recorded since the last reset. */
  count(): number {
    return this.total;
  }

  /** Drops every sample. */
  reset(): void {
    this.counts.fill(0);
    this.total = 0;
  }
}

/**
 * A histogram of the recent past: two halves of `windowMs` each (current and previous),
 * rotated lazily on record and read at window boundaries aligned to the first use, so
 * a read covers between `windowMs` and `2 × windowMs` of history. No timer.
 */
/** Shared all-zero counts of a half that has had no sample: never written to (fill(0) on it is a no-op). */
const NO_COUNTS = new Uint32Array(BUCKET_COUNT);

export class WindowedHistogram {
  // Allocated on the first sample (1.5 KB each): a service of 10,000 idle endpoints costs nothing.
  private current = NO_COUNTS;
  private previous = NO_COUNTS;
  private currentCount = 0;
  private previousCount = 0;
  /** Start of the current half on the clock; NaN until the first use. */
  private windowStart = Number.NaN;
  /** Clock time of the first use (NaN before): the window covers no time before it. */
  private firstUse = Number.NaN;

  private readonly clock: Clock;
  private readonly windowMs: number;

  /** @param windowMs length of one half, ms (the mesh passes `statsWindowMs`, default 10 000). */
  constructor(clock: Clock, windowMs: number) {
    this.clock = clock;
    this.windowMs = windowMs > 0 ? windowMs : 1;
  }

  /** Records one latency in ms. O(1), allocation-free. `now` (the clock's time) saves a clock read when the caller has it. */
  record(ms: number, now?: number): void {
    this.rotate(now);
    if (this.current === NO_COUNTS) this.current = new Uint32Array(BUCKET_COUNT);
    this.current[bucketIndex(ms)]++;
    this.currentCount++;
  }

  /** The q-quantile (q in [0, 1]) in ms over the recent window, as its bucket's midpoint; 0 when empty. */
  percentile(q: number): number {
    this.rotate();
    return percentileOf(this.current, this.previous, this.currentCount + this.previousCount, q);
  }

  /** Samples in the recent window. */
  count(): number {
    this.rotate();
    return this.currentCount + this.previousCount;
  }

  /**
   * How much time, ms, the samples `count()` reports were collected over: from the start of the
   * previous half (or the first use, if later) until now. `count() / coveredMs()` is a rate.
   */
  coveredMs(): number {
    const now = this.clock.now();
    this.rotate(now);
    if (Number.isNaN(this.firstUse)) return 0;
    return now - Math.max(this.firstUse, this.windowStart - this.windowMs);
  }

  /** Drops every sample. */
  reset(): void {
    this.current.fill(0);
    this.previous.fill(0);
    this.currentCount = 0;
    this.previousCount = 0;
    this.windowStart = Number.NaN;
    this.firstUse = Number.NaN;
  }

  private rotate(at?: number): void {
    const now = at ?? this.clock.now();
    const elapsed = now - this.windowStart;
    if (!(elapsed >= this.windowMs)) {
      if (Number.isNaN(elapsed)) this.windowStart = this.firstUse = now; // first use
      return;
    }
    // Boundaries stay aligned so the previous half never spans more than windowMs.
    const halves = Math.floor(elapsed / this.windowMs);
    this.windowStart += halves * this.windowMs;
    if (halves === 1) {
      const spare = this.previous;
      this.previous = this.current;
      this.previousCount = this.currentCount;
      this.current = spare;
    } else {
      this.previous.fill(0);
      this.previousCount = 0;
    }
    this.current.fill(0);
    this.currentCount = 0;
  }
}
