/**
 * Telemetry through `@opentelemetry/api` only: no-op until the application registers an
 * SDK (globally or via `createMesh({ telemetry })`). Instruments are resolved lazily and
 * re-resolved when the global meter provider changes, so a mesh created before the SDK
 * starts still reports once it does. With no SDK, `metricsOn` is false and callers skip
 * building attribute objects: the cost is one clock comparison per call (a provider
 * registered after the mesh was created is picked up within a second).
 *
 * Ordering: the service tier opens one span per logical call before the retry loop;
 * every attempt adds an event and records one duration point.
 */
import {
  ProxyTracerProvider,
  createNoopMeter,
  propagation,
  metrics,
  trace,
  type Attributes,
  type Counter,
  type Histogram,
  type Meter,
  type MeterProvider,
  type Tracer,
  type TracerProvider,
} from '@opentelemetry/api';

const SCOPE = '@meshlet/core';
const VERSION = '0.1.0';
const NOOP_METER = createNoopMeter().constructor;

/** Duration buckets (s) from the OTel HTTP semantic conventions, finer at the low end for in-process calls. */
const DURATION_BUCKETS = [
  0.0005, 0.001, 0.0025, 0.005, 0.0075, 0.01, 0.025, 0.05, 0.075, 0.1, 0.25, 0.5, 0.75, 1, 2.5, 5, 7.5, 10,
];

/** The class of the API's no-op tracer provider, which a proxy provider delegates to until an SDK registers. */
const NOOP_TRACER_PROVIDER = new ProxyTracerProvider().getDelegate().constructor;

/** True when the global tracer provider delegates to something other than the API's no-op. */
export function globalTracingOn(): boolean {
  const provider = trace.getTracerProvider();
  const delegate = provider instanceof ProxyTracerProvider ? provider.getDelegate() : provider;
  return !(delegate instanceof NOOP_TRACER_PROVIDER);
}

export interface TelemetryOptions {
  /** Meter provider to use instead of the global one. */
  meterProvider?: MeterProvider;
  /** Tracer provider to use instead of the global one. */
  tracerProvider?: TracerProvider;
}

export class MeshTelemetry {
  readonly tracer: Tracer;
  /** True when a real meter provider is registered; gate attribute building on it. */
  metricsOn = false;
  /**
   * True when a real tracer provider is registered (or one was passed in). When false and the
   * caller has no active span, the engine starts no span at all: no no-op span, no context.
   */
  tracingOn = false;
  /**
   * True when a text-map propagator is registered: only then can a caller's span (with no
   * tracer of ours) be worth a span context to inject, so only then is the active context read.
   */
  propagationOn = false;
  private readonly explicitTracerProvider: TracerProvider | undefined;

  private readonly explicitMeterProvider: MeterProvider | undefined;
  private provider: MeterProvider | undefined;
  private checkedAt = Number.NEGATIVE_INFINITY;
  private meter: Meter | undefined;
  private readonly durations = new Map<string, Histogram>();
  private readonly byService = new Map<string, Attributes>();
  private retriesCounter: Counter | undefined;
  private budgetCounter: Counter | undefined;
  private ejectionCounter: Counter | undefined;
  private breakerCounter: Counter | undefined;

  constructor(options: TelemetryOptions = {}) {
    this.explicitMeterProvider = options.meterProvider;
    this.explicitTracerProvider = options.tracerProvider;
    this.tracer = (options.tracerProvider ?? trace.getTracerProvider()).getTracer(SCOPE, VERSION);
    this.refresh();
  }

  /**
   * Re-resolves instruments if the meter provider changed. Called once per logical call
   * with the clock time; looks at the global provider at most once a second.
   */
  refresh(now = Number.POSITIVE_INFINITY): void {
    if (now - this.checkedAt < 1000) return;
    this.checkedAt = now === Number.POSITIVE_INFINITY ? Number.NEGATIVE_INFINITY : now;
    this.tracingOn = this.explicitTracerProvider !== undefined || globalTracingOn();
    // The API's no-op propagator has no fields; any real one (W3C, B3, …) names its headers.
    this.propagationOn = propagation.fields().length > 0;
    const provider = this.explicitMeterProvider ?? metrics.getMeterProvider();
    if (provider === this.provider) return;
    this.provider = provider;
    this.meter = provider.getMeter(SCOPE, VERSION);
    this.durations.clear();
    this.retriesCounter = this.meter.createCounter('meshlet.client.retries', {
      description: 'Retries sent (attempts after the first).',
    });
    this.budgetCounter = this.meter.createCounter('meshlet.client.retry_budget.refusals', {
      description: 'Retries not sent because the retry budget was exhausted.',
    });
    this.ejectionCounter = this.meter.createCounter('meshlet.outlier.ejections', {
      description: 'Endpoints ejected by outlier detection.',
    });
    this.breakerCounter = this.meter.createCounter('meshlet.circuit_breaker.transitions', {
      description: 'Circuit breaker state transitions.',
    });
    this.metricsOn = !(this.meter instanceof NOOP_METER);
  }

  /** The duration histogram of a protocol (e.g. `http.client.request.duration`), in seconds. */
  duration(name: string): Histogram {
    return this.histogram(name, 'Duration of outbound mesh calls: one point per attempt (HTTP) or per call (gRPC).');
  }

  /** The duration histogram of an inbound protocol (e.g. `http.server.request.duration`), in seconds. */
  serverDuration(name: string): Histogram {
    return this.histogram(name, 'Duration of inbound requests handled by this process.');
  }

  private histogram(name: string, description: string): Histogram {
    let h = this.durations.get(name);
    if (h === undefined) {
      h = this.meter!.createHistogram(name, {
        unit: 's',
        description,
        advice: { explicitBucketBoundaries: DURATION_BUCKETS },
      });
      this.durations.set(name, h);
    }
    return h;
  }

  retry(service: string): void {
    if (this.metricsOn) this.retriesCounter!.add(1, this.serviceAttributes(service));
  }

  budgetRefusal(service: string): void {
    if (this.metricsOn) this.budgetCounter!.add(1, this.serviceAttributes(service));
  }

  /**
   * One frozen attribute set per service name, so an SDK sees the same object every time
   * (service names come from config, so the cache is bounded by it; capped all the same).
   */
  private serviceAttributes(service: string): Attributes {
    let a = this.byService.get(service);
    if (a === undefined) {
      a = Object.freeze({ 'meshlet.service': service });
      if (this.byService.size < 10_000) this.byService.set(service, a);
    }
    return a;
  }

  ejection(service: string, endpoint: string, reason: string): void {
    if (this.metricsOn)
      this.ejectionCounter!.add(1, {
        'meshlet.service': service,
        'meshlet.endpoint': endpoint,
        'meshlet.ejection.reason': reason,
      });
  }

  breakerTransition(service: string, endpoint: string, state: string): void {
    if (this.metricsOn)
      this.breakerCounter!.add(1, { 'meshlet.service': service, 'meshlet.endpoint': endpoint, 'meshlet.state': state });
  }

  recordDuration(name: string, seconds: number, attributes: Attributes): void {
    this.duration(name).record(seconds, attributes);
  }
}
