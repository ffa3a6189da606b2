// Telemetry smoke test, run in the app that installed the tarballs next to the current
// @opentelemetry/sdk-node: the packages and the SDK must share one @opentelemetry/api, so
// a call through the mesh shows up as a span (with its attempt event), a duration metric
// point and a traceparent header at the server; and a gRPC call (meshGrpcOptions to a server
// with meshServerInterceptors) as a client span, the server's span as its child, and the
// rpc.client/server.call.duration metrics. The SDK's own pieces are loaded from
// where sdk-node resolves them, so this does not depend on how npm hoisted them.
import assert from 'node:assert/strict';
import { once } from 'node:events';
import http from 'node:http';
import { createRequire } from 'node:module';
import * as grpc from '@grpc/grpc-js';
import { createMesh } from '@meshlet/core';
import { meshGrpcOptions, meshServerInterceptors } from '@meshlet/grpc';
import { createMeshFetch } from '@meshlet/http';
import greeterModule from './greeter.cjs';

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

// gRPC: client span → server span (the interceptors continue the trace from the metadata).
const greeter = greeterModule.greeter;
const serverMesh = createMesh({ service: 'greeter', services: {} });
const grpcServer = new grpc.Server({ interceptors: meshServerInterceptors(serverMesh) });
grpcServer.addService(greeter, { sayHello: (call, callback) => callback(null, { hello: call.request.name }) });
const grpcPort = await new Promise((resolve, reject) =>
  grpcServer.bindAsync('127.0.0.1:0', grpc.ServerCredentials.createInsecure(), (e, p) => (e ? reject(e) : resolve(p))),
);
const grpcMesh = createMesh({ services: { greeter: { protocol: 'grpc', endpoints: [`127.0.0.1:${grpcPort}`] } } });
const Greeter = grpc.makeGenericClientConstructor(greeter, 'Greeter');
const client = new Greeter('meshlet:///greeter', grpc.credentials.createInsecure(), meshGrpcOptions(grpcMesh));
const reply = await new Promise((resolve, reject) =>
  client.sayHello({ name: 'traced' }, (err, r) => (err ? reject(err) : resolve(r))),
);
assert.deepEqual(reply, { hello: 'traced' });
const grpcClientSpan = ended.find((s) => s.name === 'smoke.Greeter/SayHello' && s.kind === 2);
const grpcServerSpan = ended.find((s) => s.name === 'smoke.Greeter/SayHello' && s.kind === 1);
assert.ok(grpcClientSpan && grpcServerSpan, `no gRPC client and server spans among ${ended.map((s) => s.name)}`);
assert.equal(grpcServerSpan.spanContext().traceId, grpcClientSpan.spanContext().traceId);
const serverParent = grpcServerSpan.parentSpanContext?.spanId ?? grpcServerSpan.parentSpanId;
assert.equal(serverParent, grpcClientSpan.spanContext().spanId, 'the server span is the client span’s child');

const { resourceMetrics } = await reader.collect();
const names = resourceMetrics.scopeMetrics.flatMap((s) => s.metrics.map((m) => m.descriptor.name));
for (const name of ['http.client.request.duration', 'rpc.client.call.duration', 'rpc.server.call.duration']) {
  assert.ok(names.includes(name), `no ${name} among ${names}`);
}

client.close();
await grpcMesh.close();
await serverMesh.close();
await new Promise((resolve) => grpcServer.tryShutdown(resolve));
await mesh.close();
server.close();
await once(server, 'close');
await sdk.shutdown();
console.log(
  `pack-smoke: telemetry ok on Node ${process.version} under sdk-node: span, attempt event, traceparent, metric; gRPC client → server span, rpc durations`,
);
