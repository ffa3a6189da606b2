/**
 * The headers one mesh process sends another: the remaining time budget of the call
 * (`meshlet-timeout`, relative, so the two clocks need not agree) and the caller's service name
 * (`meshlet-caller`). The timeout uses gRPC's `grpc-timeout` syntax: 1–8 digits and a unit.
 */
import { isServiceName } from '../config/validate.js';

/** The remaining budget of the call, e.g. `300m` (gRPC's `grpc-timeout` syntax). */
export const TIMEOUT_HEADER = 'meshlet-timeout';
/** The calling process's service name (`createMesh({ service })`). */
export const CALLER_HEADER = 'meshlet-caller';

const MAX_DIGITS_VALUE = 99_999_999;
/** ms per unit: Hours, Minutes, Seconds, milli-, micro-, nanoseconds. */
const UNIT_MS: Record<string, number> = { H: 3_600_000, M: 60_000, S: 1000, m: 1, u: 1e-3, n: 1e-6 };

/**
 * The budget in ms, or undefined when the header is absent or malformed (then the request runs
 * without an inbound deadline, as if the header were not sent). A repeated header uses the first.
 */
export function parseTimeoutHeader(value: string | string[] | undefined): number | undefined {
  const v = Array.isArray(value) ? value[0] : value;
  if (typeof v !== 'string') return undefined;
  const n = v.length;
  // 1–8 digits and a one-letter unit; surrounding whitespace is the HTTP parser's to strip.
  if (n < 2 || n > 9) return undefined;
  let digits = 0;
  for (let i = 0; i < n - 1; i++) {
    const c = v.charCodeAt(i);
    if (c < 48 || c > 57) return undefined;
    digits = digits * 10 + (c - 48);
  }
  const unit = UNIT_MS[v[n - 1]!];
  if (unit === undefined || !Object.hasOwn(UNIT_MS, v[n - 1]!)) return undefined;
  return digits * unit;
}

/** The header value for a budget of `ms` (at least `1m`; whole ms, rounded up; seconds when ms would not fit). */
export function formatTimeoutHeader(ms: number): string {
  if (!(ms >= 1)) return '1m';
  const whole = Math.ceil(ms);
  if (whole <= MAX_DIGITS_VALUE) return `${whole}m`;
  const s = Math.ceil(whole / 1000);
  return s <= MAX_DIGITS_VALUE ? `${s}S` : `${MAX_DIGITS_VALUE}S`;
}

/** Longest caller name kept (a DNS name's limit). */
const MAX_CALLER = 253;

/** The caller header's value when it is a valid service name, else undefined (never trusted beyond that). */
export function parseCallerHeader(value: string | string[] | undefined): string | undefined {
  const v = Array.isArray(value) ? value[0] : value;
  if (typeof v !== 'string' || v.length === 0 || v.length > MAX_CALLER) return undefined;
  return isServiceName(v) ? v : undefined;
}
