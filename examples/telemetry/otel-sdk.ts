/**
 * An OpenTelemetry SDK set-up for a meshlet service (docs/telemetry.md shows this file): spans to
 * an OTLP/HTTP collector, metrics for Prometheus to scrape, and OpenTelemetry's own http server
 * instrumentation beside meshlet's (meshMiddleware then enriches its server span instead of
 * making a second one). Load it before the application:
 *
 *   node --import tsx --import ./telemetry/otel-sdk.ts express-service/users.ts
 *
 * Variables: OTEL_EXPORTER_OTLP_ENDPOINT (default http://localhost:4318), OTEL_EXPORTER_PROMETHEUS_PORT
 * (default 9464), and the SDK's own (OTEL_SERVICE_NAME, OTEL_BSP_SCHEDULE_DELAY, …).
 */
import { NodeSDK } from '@opentelemetry/sdk-node';
import { PrometheusExporter } from '@opentelemetry/exporter-prometheus';
import { OTLPTraceExporter } from '@opentelemetry/exporter-trace-otlp-http';
import { HttpInstrumentation } from '@opentelemetry/instrumentation-http';

const sdk = new NodeSDK({
  serviceName: process.env.MESHLET_SERVICE ?? 'my-service',
  // Spans to an OTLP/HTTP collector: OTEL_EXPORTER_OTLP_ENDPOINT, default http://localhost:4318.
  traceExporter: new OTLPTraceExporter(),
  // Metrics for Prometheus to scrape on http://<host>:9464/metrics (OTEL_EXPORTER_PROMETHEUS_PORT).
  metricReader: new PrometheusExporter({ port: Number(process.env.OTEL_EXPORTER_PROMETHEUS_PORT ?? 9464) }),
  // Optional: server spans and http.server.request.duration from the http module itself.
  instrumentations: [new HttpInstrumentation()],
});
sdk.start();

// Flush what is buffered when the process is asked to stop (the app's own handlers still run).
for (const signal of ['SIGTERM', 'SIGINT'] as const) {
  process.once(signal, () => void sdk.shutdown().catch(() => undefined));
}
