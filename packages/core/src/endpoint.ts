import { WindowedHistogram } from './stats/histogram.js';
import type { Clock } from './clock.js';

/** Health state of one endpoint as seen by stats and pickers. */
export type EndpointState = 'healthy' | 'ejected' | 'open' | 'half-open';

/** A normalized endpoint from config: `host:port` plus weight, zone and metadata. */
export interface EndpointSpec {
  /** `host:port` as configured. */
  readonly address: string;
  readonly host: string;
  readonly port: number;
  /** Relative weight (integer >= 1); default 1. */
  readonly weight: number;
  readonly zone: string | undefined;
  readonly metadata: Readonly<Record<string, string>>;
}

/**
 * One upstream endpoint of one service, with the live numbers the balancers read
 * (in-flight count, peak-EWMA latency) and the policies write (breaker, outlier state).
 *
 * Ordering: owned by a Service; the same object survives config updates that keep its
 * address, so its history (EWMA, ejection count) carries over.
 */
export class Endpoint {
  readonly address: string;
  readonly host: string;
  readonly port: number;
  weight: number;
  zone: string | undefined;
  metadata: Readonly<Record<string, string>>;

  /** Requests currently in flight to this endpoint. */
  inFlight = 0;
  /** Attempts sent, ever. */
  requests = 0;
  /** Attempts classified as failures (retryable or not), ever. */
  failures = 0;
  /** Times the outlier detector ejected this endpoint. */
  ejections = 0;

  /** True while the outlier detector has it ejected. */
  ejected = false;
  /** Breaker state, mirrored from the endpoint's circuit breaker. */
  breaker: 'closed' | 'open' | 'half-open' = 'closed';
  /** False once removed from its service (pending requests may still finish). */
  active = true;

  /** Peak-EWMA latency estimate in ms (0 until the first sample). */
  ewmaMs = 0;
  /** Clock time of the last EWMA update. */
  ewmaStamp = 0;

  // Outlier-detector bookkeeping (owned by policy/outlier-detector.ts).
  /** Consecutive failed attempts. */
  consecutiveFailures = 0;
  /** Successes and failures in the current detector interval (success-rate ejection). */
  intervalSuccesses = 0;
  intervalFailures = 0;
  /** Clock time of the current ejection's start. */
  ejectedAt = 0;
  /** Ejection-time multiplier (gRPC A50): +1 per ejection, -1 per healthy interval. */
  ejectionMultiplier = 0;

  /** Recent attempt latencies, for stats. */
  readonly latency: WindowedHistogram;

  constructor(spec: EndpointSpec, clock: Clock, statsWindowMs: number) {
    this.address = spec.address;
    this.host = spec.host;
    this.port = spec.port;
    this.weight = spec.weight;
    this.zone = spec.zone;
    this.metadata = spec.metadata;
    this.latency = new WindowedHistogram(clock, statsWindowMs);
  }

  /** The state shown in stats: ejection wins over the breaker's state. */
  get state(): EndpointState {
    if (this.ejected) return 'ejected';
    if (this.breaker === 'open') return 'open';
    if (this.breaker === 'half-open') return 'half-open';
    return 'healthy';
  }

  /** May the balancer send ordinary traffic here? (Half-open endpoints only get the probe.) */
  get pickable(): boolean {
    return !this.ejected && this.breaker === 'closed' && this.active;
  }

  /**
   * Peak-EWMA latency decayed to `now` (Finagle/Linkerd): an idle slow endpoint's cost
   * falls back over time so it is probed again instead of being starved forever.
   */
  decayedEwma(now: number, decayMs: number): number {
    const td = now - this.ewmaStamp;
    if (td <= 0 || this.ewmaMs === 0) return this.ewmaMs;
    return this.ewmaMs * Math.exp(-td / decayMs);
  }

  /** Records one attempt's latency into the peak EWMA. */
  observeLatency(ms: number, now: number, decayMs: number): void {
    const current = this.decayedEwma(now, decayMs);
    if (ms > current) {
      this.ewmaMs = ms;
    } else {
      const w = Math.exp(-(now - this.ewmaStamp) / decayMs);
      this.ewmaMs = this.ewmaMs * w + ms * (1 - w);
    }
    this.ewmaStamp = now;
  }
}
