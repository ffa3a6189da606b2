/**
 * Outlier detection (Envoy, gRPC A50) over a service's endpoints: ejects an endpoint
 * at once after N consecutive failures, and at each interval tick ejects endpoints whose
 * success rate is a statistical outlier. An ejection lasts
 * `min(baseEjectionMs × multiplier, max(baseEjectionMs, maxEjectionMs))`, where the
 * multiplier grows by one per ejection and shrinks by one per healthy interval. Never
 * more than `floor(maxEjectionPercent% × n)` endpoints are ejected, and never all of them.
 *
 * All per-endpoint state lives on the `Endpoint` objects, so a detector rebuilt on a
 * config update adopts current ejections (they still expire on time).
 *
 * Ordering: endpoint tier, accounting step — `record` is called once per finished
 * attempt with its classification (caller aborts are not recorded). Ejections flip
 * `Endpoint.ejected`; the hooks let the service rebuild its picker.
 */
import type { Clock } from '../clock.js';
import type { ResolvedServiceConfig } from '../config/types.js';
import type { Endpoint } from '../endpoint.js';

export type OutlierDetectionConfig = ResolvedServiceConfig['outlierDetection'];
export type EjectionReason = 'consecutive-failures' | 'success-rate';

export interface OutlierDetectorHooks {
  /** An endpoint was ejected (its `ejected` flag is already set). */
  onEject(ep: Endpoint, reason: EjectionReason): void;
  /** An endpoint's ejection ended (its `ejected` flag is already cleared). */
  onUneject(ep: Endpoint): void;
}

export class OutlierDetector {
  private readonly cfg: OutlierDetectionConfig;
  private readonly clock: Clock;
  private readonly hooks: OutlierDetectorHooks;
  private readonly random: () => number;
  private endpoints: readonly Endpoint[] = [];
  /** Membership check for the (rare) ejection path: records may arrive for removed endpoints. */
  private members = new Set<Endpoint>();
  private ejected = 0;
  private timer: ReturnType<typeof setInterval> | undefined;

  /** @param random uniform [0, 1) for `enforcementPercent`; default `Math.random`. */
  constructor(
    cfg: OutlierDetectionConfig,
    clock: Clock,
    hooks: OutlierDetectorHooks,
    random: () => number = Math.random,
  ) {
    this.cfg = cfg;
    this.clock = clock;
    this.hooks = hooks;
    this.random = random;
  }

  /**
   * Replaces the endpoint set. Removed endpoints are forgotten (left as they are);
   * already-ejected new ones are adopted. If removals left more ejected than the cap
   * allows, the ejections closest to expiry end now; when detection is disabled, all do.
   */
  setEndpoints(eps: readonly Endpoint[]): void {
    this.endpoints = eps.slice();
    this.members = new Set(this.endpoints);
    this.ejected = 0;
    for (const ep of this.endpoints) if (ep.ejected) this.ejected++;
    const allowed = this.cfg.enabled ? this.maxEjected() : 0;
    if (this.ejected <= allowed) return;
    const byExpiry = this.endpoints.filter((ep) => ep.ejected);
    byExpiry.sort((a, b) => this.ejectionEnd(a) - this.ejectionEnd(b));
    for (let i = 0; this.ejected > allowed; i++) this.uneject(byExpiry[i]);
  }

  /** Records one finished attempt. Hot path: O(1), allocation-free. No-op when disabled. */
  record(ep: Endpoint, success: boolean): void {
    if (!this.cfg.enabled) return;
    if (success) {
      ep.intervalSuccesses++;
      ep.consecutiveFailures = 0;
      return;
    }
    ep.intervalFailures++;
    ep.consecutiveFailures++;
    if (
      ep.consecutiveFailures >= this.cfg.consecutiveFailures &&
      !ep.ejected &&
      this.ejected < this.maxEjected() &&
      this.members.has(ep)
    ) {
      this.eject(ep, 'consecutive-failures', this.clock.now());
    }
  }

  /**
   * One interval tick: ends expired ejections, lets the multiplier of healthy endpoints
   * decay, runs success-rate ejection, then starts a new interval. No-op when disabled.
   */
  evaluate(): void {
    if (!this.cfg.enabled) return;
    const now = this.clock.now();
    for (const ep of this.endpoints) {
      if (ep.ejected) {
        if (now >= this.ejectionEnd(ep)) this.uneject(ep);
      } else if (ep.ejectionMultiplier > 0) {
        ep.ejectionMultiplier--;
      }
    }
    if (this.cfg.successRate !== false) this.successRateEjection(now, this.cfg.successRate);
    for (const ep of this.endpoints) {
      ep.intervalSuccesses = 0;
      ep.intervalFailures = 0;
    }
  }

  /** Runs `evaluate` every `intervalMs` on an unref'd timer (idempotent). */
  start(): void {
    if (this.timer !== undefined || !this.cfg.enabled) return;
    this.timer = setInterval(() => this.evaluate(), this.cfg.intervalMs);
    this.timer.unref();
  }

  /** Stops the timer. Ejections in place stay until a detector evaluates them. */
  close(): void {
    if (this.timer !== undefined) clearInterval(this.timer);
    this.timer = undefined;
  }

  /** Endpoints currently ejected. */
  ejectedCount(): number {
    return this.ejected;
  }

  /** Cap on simultaneous ejections: floor(pct% × n), and always at least one endpoint kept. */
  private maxEjected(): number {
    const n = this.endpoints.length;
    return Math.max(0, Math.min(Math.floor((n * this.cfg.maxEjectionPercent) / 100), n - 1));
  }

  private ejectionEnd(ep: Endpoint): number {
    const base = this.cfg.baseEjectionMs;
    return ep.ejectedAt + Math.min(base * ep.ejectionMultiplier, Math.max(base, this.cfg.maxEjectionMs));
  }

  private eject(ep: Endpoint, reason: EjectionReason, now: number): void {
    ep.ejected = true;
    ep.ejectedAt = now;
    ep.ejectionMultiplier++;
    ep.ejections++;
    this.ejected++;
    this.hooks.onEject(ep, reason);
  }

  private uneject(ep: Endpoint): void {
    ep.ejected = false;
    // A fresh start: the failures that got it ejected must not re-eject it on the next one.
    ep.consecutiveFailures = 0;
    this.ejected--;
    this.hooks.onUneject(ep);
  }

  /**
   * gRPC A50 success-rate ejection. Candidates are non-ejected endpoints with at least
   * `requestVolume` attempts this interval; with fewer than `minimumHosts` of them, nothing
   * happens. Candidates below mean − stdev × stdevFactor / 1000 (population stdev) are
   * ejected with `enforcementPercent`% probability, while the cap allows.
   */
  private successRateEjection(now: number, sr: Exclude<OutlierDetectionConfig['successRate'], false>): void {
    let hosts = 0;
    let sum = 0;
    for (const ep of this.endpoints) {
      const volume = ep.intervalSuccesses + ep.intervalFailures;
      if (ep.ejected || volume < sr.requestVolume || volume === 0) continue;
      hosts++;
      sum += ep.intervalSuccesses / volume;
    }
    if (hosts === 0 || hosts < sr.minimumHosts) return;
    const mean = sum / hosts;
    let squares = 0;
    for (const ep of this.endpoints) {
      const volume = ep.intervalSuccesses + ep.intervalFailures;
      if (ep.ejected || volume < sr.requestVolume || volume === 0) continue;
      const d = ep.intervalSuccesses / volume - mean;
      squares += d * d;
    }
    const threshold = mean - Math.sqrt(squares / hosts) * (sr.stdevFactor / 1000);
    for (const ep of this.endpoints) {
      if (this.ejected >= this.maxEjected()) return;
      const volume = ep.intervalSuccesses + ep.intervalFailures;
      if (ep.ejected || volume < sr.requestVolume || volume === 0) continue;
      if (ep.intervalSuccesses / volume >= threshold) continue;
      if (this.random() * 100 < sr.enforcementPercent) this.eject(ep, 'success-rate', now);
    }
  }
}
