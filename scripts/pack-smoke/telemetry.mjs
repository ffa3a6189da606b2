// Telemetry smoke test, run in the app that installed the tarballs next to the current
// @opentelemetry/sdk-node: the packages and the SDK must share one @opentelemetry/api, so
// a call through the mesh shows up as a span (with its attempt event), a duration metric
// point and a traceparent header at the server. The SDK's own pieces are loaded from
// where sdk-node resolves them, so this does not depend on how npm hoisted them.
import assert from 'node:assert/strict';
import { once } from 'node:events';
import http from 'node:http';
import { createRequire } from 'node:module';
import { createMesh } from '@meshlet/core';
import { createMeshFetch } from '@meshlet/http';

const sdkRequire = createRequire(createRequire(import.meta.url).resolve('@opentelemetry/sdk-node'));
const { NodeSDK } = sdkRequire('@opentelemetry/sdk-node');
const { MetricReader } = sdkRequire('@opentelemetry/sdk-metrics');

class CollectOnDemand extends MetricReader {
  async onForceFlush() {}
  async onShutdown() {}
}
// A span processor is a plain interface, stable across SDK majors (the SDK's own processors' constructors are not).
const ended = [];
const collectSpans = {
  onStart() {},
  onEnd: (span) => ended.push(span),
  forceFlush: async () => {},
  shutdown: async () => {},
};
const reader = new CollectOnDemand();
const sdk = new NodeSDK({ spanProcessors: [collectSpans], metricReaders: [reader], instrumentations: [] });
sdk.start();

let traceparent;
const server = http.createServer((req, res) => {
  traceparent = req.headers.traceparent;
  res.end('traced');
});
server.listen(0, '127.0.0.1');
await once(server, 'listening');
const { port } = server.address();

const mesh = createMesh({ services: { traced: { endpoints: [`127.0.0.1:${port}`] } } });
const fetch = createMeshFetch(mesh);
const res = await fetch('http://traced/t');
assert.equal(await res.text(), 'traced');

const span = ended.find((s) => s.attributes['meshlet.service'] === 'traced');
assert.ok(span, `no span with meshlet.service=traced among ${ended.length} spans`);
assert.ok(
  span.events.some((e) => e.name === 'attempt'),
  'the span has no attempt event',
);
assert.match(traceparent ?? '', new RegExp(`^00-${span.spanContext().traceId}-[0-9a-f]{16}-0[01]$`));

const { resourceMetrics } = await reader.collect();
const names = resourceMetrics.scopeMetrics.flatMap((s) => s.metrics.map((m) => m.descriptor.name));
assert.ok(names.includes('http.client.request.duration'), `no http.client.request.duration among ${names}`);

await mesh.close();
server.close();
await once(server, 'close');
await sdk.shutdown();
console.log(
  `pack-smoke: telemetry ok on Node ${process.version} under sdk-node: span, attempt event, traceparent, metric`,
);
