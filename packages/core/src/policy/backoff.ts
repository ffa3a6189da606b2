/**
 * Backoff curves. Pure functions over an injected `random` so tests are deterministic.
 *
 * Ordering: used by the retry step of the service tier (delay between attempts) and by
 * the circuit breaker of the endpoint tier (open time before the half-open probe).
 */

/** Exponents above this overflow nothing useful: 2^52 ms is far beyond any cap. */
const MAX_EXPONENT = 52;

/**
 * Full-jitter exponential backoff (Envoy, AWS): `random() × min(maxMs, baseMs × 2^(retry-1))`.
 * @param retry 1-based retry number (the first retry is 1); values below 1 count as 1.
 * @param random uniform in [0, 1), e.g. `Math.random`.
 */
export function fullJitterBackoff(retry: number, baseMs: number, maxMs: number, random: () => number): number {
  return random() * cappedExponential(retry, baseMs, maxMs);
}

/**
 * Exponential backoff with proportional jitter, for breaker open times:
 * `min(maxMs, baseMs × 2^(n-1)) × (1 ± jitter)`, uniform within the ± band.
 * @param n 1-based count of consecutive openings; values below 1 count as 1.
 * @param jitter fraction of the delay, default 0.2 (±20%).
 */
export function jitteredExponential(
  n: number,
  baseMs: number,
  maxMs: number,
  random: () => number,
  jitter = 0.2,
): number {
  return cappedExponential(n, baseMs, maxMs) * (1 + jitter * (2 * random() - 1));
}

function cappedExponential(n: number, baseMs: number, maxMs: number): number {
  const exponent = n > 1 ? Math.min(n - 1, MAX_EXPONENT) : 0;
  // Capping the exponent keeps baseMs = 0 from becoming 0 × Infinity = NaN.
  return Math.min(maxMs, baseMs * 2 ** exponent);
}
