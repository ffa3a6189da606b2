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
  /**
   * What its latest failed attempt ended with (the error, or the protocol's status of a failure
   * answer), and when (mesh clock): the reason a "no healthy endpoint" error gives.
   */
  lastFailure: unknown = undefined;
  lastFailureAt = 0;
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

  /** Service attempt count at the last EWMA update (see `ServiceLoad.seq`). */
  ewmaSeq = 0;

  /**
   * How much of the last estimate still holds: it ages with wall time (`decayMs`, Linkerd's
   * and Finagle's decay) and with the service's own traffic (`DECAY_ATTEMPTS_PER_ENDPOINT` ×
   * endpoints attempts per e-fold), so at high request rates one slow sample (a cold
   * connection, a GC pause) is forgotten within tens of requests instead of tens of seconds.
   */
  private decayWeight(now: number, decayMs: number, load: ServiceLoad): number {
    const dt = now - this.ewmaStamp;
    const dn = load.seq - this.ewmaSeq;
    const x =
      (dt > 0 ? dt / decayMs : 0) + (dn > 0 ? dn / (DECAY_ATTEMPTS_PER_ENDPOINT * Math.max(1, load.endpoints)) : 0);
    return Math.exp(-x);
  }

  /**
   * Peak-EWMA latency (ms) as of `now`: the estimate decays toward the service's neutral
   * (typical) latency, so an idle endpoint, slow or fast, drifts back to "average" and is
   * probed again instead of being starved or flooded. An endpoint with no sample yet is
   * seeded with the neutral latency.
   */
  decayedEwma(now: number, decayMs: number, load: ServiceLoad = STATIC_LOAD): number {
    if (this.ewmaMs === 0) return load.neutralMs;
    const w = this.decayWeight(now, decayMs, load);
    return this.ewmaMs * w + load.neutralMs * (1 - w);
  }

  /** Records one attempt's latency: a peak above the current estimate is taken at once, else it is averaged in. */
  observeLatency(ms: number, now: number, decayMs: number, load: ServiceLoad = STATIC_LOAD): void {
    if (this.ewmaMs === 0) {
      this.ewmaMs = ms > 0 ? ms : Number.MIN_VALUE;
    } else if (ms > this.decayedEwma(now, decayMs, load)) {
      this.ewmaMs = ms;
    } else {
      const w = this.decayWeight(now, decayMs, load);
      this.ewmaMs = Math.max(Number.MIN_VALUE, this.ewmaMs * w + ms * (1 - w));
    }
    this.ewmaStamp = now;
    this.ewmaSeq = load.seq;
  }
}

/** Without a service (unit tests, standalone pickers): time decay only, toward 0. */
const STATIC_LOAD: ServiceLoad = Object.freeze({ seq: 0, neutralMs: 0, endpoints: 1 });

/** Attempts per endpoint over which an unrefreshed latency estimate loses 1/e of its weight. */
export const DECAY_ATTEMPTS_PER_ENDPOINT = 4;

/**
 * Live traffic facts of one service that its balancer reads: the attempt count (the
 * traffic clock of the EWMA decay), the neutral latency (an EWMA of every attempt's
 * time on the wire) and the endpoint count.
 */
export interface ServiceLoad {
  seq: number;
  neutralMs: number;
  endpoints: number;
}
