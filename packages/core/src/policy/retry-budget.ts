/**
 * Retry budget (after Finagle `RetryBudget` and Linkerd `retryBudget`): retries may add
 * at most `ratio` extra load on top of the requests, plus a reserve of `minPerSecond`
 * retries per second so low-traffic services can still retry.
 *
 *   ratio part:  ratio × deposits − ratio-funded withdrawals, both within the last `ttlMs`
 *   reserve:     a token bucket filling at `minPerSecond`, holding at most one second's worth
 *
 * A retry takes a token from the ratio part when it holds one, else from the reserve;
 * with neither it is refused. First attempts only deposit; they are never refused here.
 *
 * Why the reserve is a rate and not Finagle's `minPerSecond × ttl` lump: the lump lets an
 * outage that starts at once spend ttl seconds of reserve (100 retries at the defaults)
 * in its first second, which is exactly the retry storm a budget exists to stop. As a
 * rate, a steady outage at R requests/s costs at most ratio × R + minPerSecond retries/s
 * from the first second on.
 *
 * Time is cut into 10 slots of `ttlMs / 10`, aligned to the clock; a slot is dropped
 * when it falls out of the window, so a deposit or withdrawal counts for between
 * 0.9 × ttl and ttl. Every call is O(1) amortized and allocation-free.
 *
 * Exactness: the ratio part is kept in integer micro-tokens (1 retry = 1 000 000), with
 * the ratio rounded to 6 decimals, so `ratio × deposits` never drifts by a float ulp and
 * a budget of exactly one retry is exactly 1 (e.g. ratio 0.1 × 10 deposits).
 *
 * Ordering: the retry step of the service tier — deposit once per logical call,
 * `tryWithdraw` before each retry (after the attempt failed retryably and attempts are
 * left). One budget per service per process, shared by all its callers.
 */
import type { Clock } from '../clock.js';

const SLOTS = 10;
/** Micro-tokens per retry. */
const SCALE = 1_000_000;

export interface RetryBudgetOptions {
  /** Retries allowed per deposited request. Config default 0.2. */
  ratio: number;
  /** Retries always allowed per second (the reserve). Config default 10. */
  minPerSecond: number;
  /** How long deposits and withdrawals count, ms. Config default 10 000. */
  ttlMs: number;
}

export class RetryBudget {
  private readonly clock: Clock;
  private readonly slotMs: number;
  /** Micro-tokens per deposit: round(ratio × SCALE). */
  private readonly depositScaled: number;
  /** Reserve refill per ms, and its capacity (one second's worth, at least one retry). */
  private readonly reservePerMs: number;
  private readonly reserveCap: number;
  private reserveTokens: number;
  private reserveStamp: number;
  private readonly deposits = new Float64Array(SLOTS);
  private readonly withdrawals = new Float64Array(SLOTS);
  private depositTotal = 0;
  private withdrawalTotal = 0;
  /** Absolute slot number (floor(now / slotMs)) of the newest slot in use. */
  private slot: number;

  constructor(opts: RetryBudgetOptions, clock: Clock) {
    this.clock = clock;
    const ttlMs = opts.ttlMs > 0 ? opts.ttlMs : 1;
    this.slotMs = ttlMs / SLOTS;
    this.depositScaled = Math.round(Math.max(0, opts.ratio) * SCALE);
    const perSecond = Math.max(0, opts.minPerSecond);
    this.reservePerMs = perSecond / 1000;
    this.reserveCap = perSecond > 0 ? Math.max(1, perSecond) : 0;
    this.reserveTokens = this.reserveCap;
    this.reserveStamp = clock.now();
    this.slot = Math.floor(clock.now() / this.slotMs);
  }

  /** Records one logical request (call once per call, not per attempt); `now` saves a clock read when the caller has it. */
  deposit(now?: number): void {
    const i = this.advance(now);
    this.deposits[i]++;
    this.depositTotal++;
  }

  /** Takes one retry token (ratio part first, then the reserve); false means "do not retry". */
  tryWithdraw(): boolean {
    const i = this.advance();
    if (this.scaledBalance() >= SCALE) {
      this.withdrawals[i]++;
      this.withdrawalTotal++;
      return true;
    }
    this.refill();
    if (this.reserveTokens >= 1) {
      this.reserveTokens -= 1;
      return true;
    }
    return false;
  }

  /** Whole retries available now (≥ 0). */
  balance(): number {
    this.advance();
    this.refill();
    const scaled = this.scaledBalance();
    return (scaled > 0 ? Math.floor(scaled / SCALE) : 0) + Math.floor(this.reserveTokens);
  }

  /** The ratio part, in micro-tokens. */
  private scaledBalance(): number {
    // Integers well below 2^53 for any realistic traffic, so this is exact.
    return this.depositScaled * this.depositTotal - SCALE * this.withdrawalTotal;
  }

  private refill(): void {
    const now = this.clock.now();
    const elapsed = now - this.reserveStamp;
    this.reserveStamp = now;
    if (elapsed > 0) this.reserveTokens = Math.min(this.reserveCap, this.reserveTokens + elapsed * this.reservePerMs);
  }

  /** Drops slots that left the window; returns the ring index of the current slot. */
  private advance(at?: number): number {
    const now = Math.floor((at ?? this.clock.now()) / this.slotMs);
    let from = this.slot;
    if (now > from) {
      // At most SLOTS slots need clearing however long we were idle.
      if (now - from > SLOTS) from = now - SLOTS;
      for (let s = from + 1; s <= now; s++) {
        const i = ringIndex(s);
        this.depositTotal -= this.deposits[i];
        this.withdrawalTotal -= this.withdrawals[i];
        this.deposits[i] = 0;
        this.withdrawals[i] = 0;
      }
      this.slot = now;
    }
    return ringIndex(this.slot);
  }
}

/** Non-negative ring index even for a clock that starts below zero. */
function ringIndex(slot: number): number {
  const i = slot % SLOTS;
  return i < 0 ? i + SLOTS : i;
}
