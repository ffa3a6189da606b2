/**
 * An OpenTelemetry SDK as an application would start it — metrics and traces, always-on
 * sampling, W3C propagation — with exporters that drop everything, so the benchmark measures
 * what the instrumentation costs in the process, not an exporter.
 *
 * No context manager is registered: on Node 20 the AsyncLocalStorage one installs promise
 * hooks that tax every promise in the application, meshlet or not, so it would charge an
 * application-wide cost to meshlet alone (the raw undici baseline runs without it). meshlet
 * carries the call's span context explicitly to the transport, so the traceparent is still written.
 *
 * The SDK packages come from the examples workspace (hoisted to the root node_modules).
 */
import { metrics, propagation, trace } from '@opentelemetry/api';
import { ExportResultCode, W3CTraceContextPropagator, type ExportResult } from '@opentelemetry/core';
import {
  AggregationTemporality,
  MeterProvider,
  PeriodicExportingMetricReader,
  type PushMetricExporter,
  type ResourceMetrics,
} from '@opentelemetry/sdk-metrics';
import {
  AlwaysOnSampler,
  BasicTracerProvider,
  BatchSpanProcessor,
  type ReadableSpan,
  type SpanExporter,
} from '@opentelemetry/sdk-trace-base';

class NoopMetricExporter implements PushMetricExporter {
  export(_metrics: ResourceMetrics, done: (result: ExportResult) => void): void {
    done({ code: ExportResultCode.SUCCESS });
  }
  selectAggregationTemporality(): AggregationTemporality {
    return AggregationTemporality.CUMULATIVE;
  }
  forceFlush(): Promise<void> {
    return Promise.resolve();
  }
  shutdown(): Promise<void> {
    return Promise.resolve();
  }
}

class NoopSpanExporter implements SpanExporter {
  export(_spans: ReadableSpan[], done: (result: ExportResult) => void): void {
    done({ code: ExportResultCode.SUCCESS });
  }
  shutdown(): Promise<void> {
    return Promise.resolve();
  }
}

export interface OtelSdk {
  meterProvider: MeterProvider;
  tracerProvider: BasicTracerProvider;
  shutdown(): Promise<void>;
}

/**
 * Starts the SDK and, unless `global: false`, registers it globally (metrics, traces, propagator)
 * as an application's bootstrap would. The micro-benchmark keeps it local so that a mesh without
 * explicit providers measured beside it stays without an SDK.
 */
export function startOtelSdk(options: { global?: boolean } = {}): OtelSdk {
  const global = options.global ?? true;
  const meterProvider = new MeterProvider({
    readers: [
      new PeriodicExportingMetricReader({
        exporter: new NoopMetricExporter(),
        // Long enough that no collection lands in a measurement window.
        exportIntervalMillis: 3_600_000,
        exportTimeoutMillis: 30_000,
      }),
    ],
  });
  const tracerProvider = new BasicTracerProvider({
    sampler: new AlwaysOnSampler(),
    spanProcessors: [new BatchSpanProcessor(new NoopSpanExporter())],
  });
  if (global) {
    propagation.setGlobalPropagator(new W3CTraceContextPropagator());
    trace.setGlobalTracerProvider(tracerProvider);
    metrics.setGlobalMeterProvider(meterProvider);
  }
  return {
    meterProvider,
    tracerProvider,
    async shutdown() {
      await Promise.all([meterProvider.shutdown(), tracerProvider.shutdown()]);
      if (global) {
        metrics.disable();
        trace.disable();
        propagation.disable();
      }
    },
  };
}
