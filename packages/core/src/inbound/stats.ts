/**
 * Inbound golden metrics per (route, caller), for `mesh.stats().inbound`: requests, success rate,
 * rate and latency percentiles over the stats window, as Linkerd shows per route and per client.
 *
 * Bounded: route templates come from the application's router and callers are validated service
 * names, but both arrive with requests, so the table holds at most {@link MAX_PAIRS} pairs; later
 * pairs fold into `(other)`. Recording is two map lookups and a histogram bump, no allocation once
 * the pair exists.
 */
import type { Clock } from '../clock.js';
import { WindowedHistogram } from '../stats/histogram.js';

/** Most (route, caller) pairs kept apart; later ones are counted under `(other)`. */
export const MAX_PAIRS = 1024;
export const OTHER = '(other)';
/** Caller of a request without a (valid) `meshlet-caller` header. */
export const UNKNOWN_CALLER = '(unknown)';
/** Route of a request the application's router matched to no route. */
export const UNMATCHED_ROUTE = '(unmatched)';

/** How one inbound request ended, as the table counts it (see `InboundStats`). */
export type InboundOutcome = typeof SUCCESS | typeof FAILURE | typeof CANCELLED;
export const SUCCESS = 0;
export const FAILURE = 1;
export const CANCELLED = 2;

/**
 * One (route, caller) pair's figures, from `mesh.stats().inbound`.
 *
 * HTTP: a status below 500 is a success, 500 and above a failure, 499 (the caller left) cancelled.
 * gRPC (route = the full method path, `/routeguide.RouteGuide/GetFeature`): `OK` and the
 * application's answers (`NOT_FOUND`, `INVALID_ARGUMENT`, `RESOURCE_EXHAUSTED`, …) are successes;
 * `UNAVAILABLE`, `INTERNAL`, `UNKNOWN`, `DATA_LOSS` and `DEADLINE_EXCEEDED` are failures (as the
 * client side classifies them); `CANCELLED` (the client cancelled) is cancelled.
 */
export interface InboundStats {
  /** The route template (HTTP) or the full gRPC method path (`/pkg.Service/Method`). */
  route: string;
  /** The caller's service name, `(unknown)` when it sent none. */
  caller: string;
  requests: number;
  /** HTTP: answered below 500. gRPC: `OK` or an application status (see above). */
  successes: number;
  /** HTTP: answered 500 or above (a spent deadline's 504 included). gRPC: a server-side failure status, `DEADLINE_EXCEEDED` included. */
  failures: number;
  /** The caller went away before the answer (HTTP: recorded as status 499; gRPC: `CANCELLED`). */
  cancelled: number;
  /** successes / (successes + failures); 1 when there were none. */
  successRate: number;
  /** Requests in the recent window (0: the percentiles and rate below mean nothing). */
  recentRequests: number;
  /** Requests per second over the recent window. */
  rps: number;
  /** Latency percentiles over the recent window, ms (0 when `recentRequests` is 0). */
  latencyMs: { p50: number; p90: number; p99: number };
}

/** A (route, caller) pair as the table keeps it. */
export interface InboundPair {
  readonly route: string;
  readonly caller: string;
}

class Entry implements InboundPair {
  requests = 0;
  successes = 0;
  failures = 0;
  cancelled = 0;
  readonly latency: WindowedHistogram;
  constructor(
    readonly route: string,
    readonly caller: string,
    clock: Clock,
    windowMs: number,
  ) {
    this.latency = new WindowedHistogram(clock, windowMs);
  }
}

export class InboundTable {
  private readonly routes = new Map<string, Map<string, Entry>>();
  private pairs = 0;

  constructor(
    private readonly clock: Clock,
    private readonly windowMs: number,
  ) {}

  /** Counts one request; returns its pair, whose `route` and `caller` are `(other)` once the table is full. */
  record(route: string, caller: string | undefined, outcome: InboundOutcome, durationMs: number): InboundPair {
    const e = this.entry(route, caller ?? UNKNOWN_CALLER);
    e.requests++;
    if (outcome === SUCCESS) e.successes++;
    else if (outcome === FAILURE) e.failures++;
    else e.cancelled++;
    if (durationMs >= 0) e.latency.record(durationMs);
    return e;
  }

  stats(): InboundStats[] {
    const out: InboundStats[] = [];
    for (const byCaller of this.routes.values()) {
      for (const e of byCaller.values()) {
        const recent = e.latency.count();
        const covered = e.latency.coveredMs();
        const answered = e.successes + e.failures;
        out.push({
          route: e.route,
          caller: e.caller,
          requests: e.requests,
          successes: e.successes,
          failures: e.failures,
          cancelled: e.cancelled,
          successRate: answered === 0 ? 1 : e.successes / answered,
          recentRequests: recent,
          rps: recent === 0 || covered <= 0 ? 0 : (recent * 1000) / Math.max(covered, 1000),
          latencyMs:
            recent === 0
              ? { p50: 0, p90: 0, p99: 0 }
              : { p50: e.latency.percentile(0.5), p90: e.latency.percentile(0.9), p99: e.latency.percentile(0.99) },
        });
      }
    }
    return out;
  }

  private entry(route: string, caller: string): Entry {
    let byCaller = this.routes.get(route);
    let e = byCaller?.get(caller);
    if (e !== undefined) return e;
    if (this.pairs >= MAX_PAIRS) {
      // Full: everything new folds into one pair (made once, beyond the cap).
      route = caller = OTHER;
      byCaller = this.routes.get(OTHER);
      e = byCaller?.get(OTHER);
      if (e !== undefined) return e;
    }
    if (byCaller === undefined) this.routes.set(route, (byCaller = new Map()));
    e = new Entry(route, caller, this.clock, this.windowMs);
    byCaller.set(caller, e);
    this.pairs++;
    return e;
  }
}
