// CPU the control-plane client spends on one push of a large mesh (default 1000 services × 10
// endpoints): decoding, per-resource validation, combining, and the mesh's own update, measured
// in-process (no network) by handing decoded responses straight to the client. Figures are for
// comparing builds on one machine; the end-to-end figures (edit → ACK with 100 and 1000 clients)
// come from `bench/control.ts`.
//
//   npm run build
//   node packages/discovery/bench/client-push.mjs [services] [endpointsPerService] [rounds]
//
// Rows: the first push (everything new), an identical push (every resource unchanged: the client
// skips decoding and validation by comparing bytes), a push with one service changed, an
// identical EndpointSet push, and incremental pushes of one Service and of one EndpointSet.
// With a real mesh, the unchanged services reach it as the same objects as before, so its
// per-entry validation cache (core's discovery/merge.ts) skips them.
import { createMesh } from '@meshlet/core';
import {
  ENDPOINT_SET_TYPE_URL,
  SERVICE_TYPE_URL,
  decodeResponse,
  encodeEndpointSet,
  encodeResponse,
  encodeService,
  prepareResources,
} from '@meshlet/discovery/protocol';
import { ControlPlaneSource } from '../dist/control-plane/client.js';
import { resolveControlPlaneOptions } from '../dist/control-plane/options.js';

const N = Number(process.argv[2] ?? 1000);
const E = Number(process.argv[3] ?? 10);
const ROUNDS = Number(process.argv[4] ?? 15);

function services(changed) {
  const out = [];
  for (let i = 0; i < N; i++) {
    const config = { retry: { maxAttempts: 2 }, timeout: { requestMs: i === 0 && changed ? 2000 : 1000 } };
    if (i % 10 === 0) config.routes = [{ match: { pathPrefix: '/v2' }, backends: [{ service: `svc-${(i + 1) % N}` }] }];
    out.push(encodeService(`svc-${i}`, config));
  }
  return out;
}
const endpointSets = [];
for (let i = 0; i < N; i++) {
  const eps = [];
  for (let j = 0; j < E; j++) eps.push({ address: `10.${(i >> 8) & 255}.${i & 255}.${j + 1}:8080`, zone: `z${j % 3}` });
  endpointSets.push(encodeEndpointSet(`svc-${i}`, eps));
}
const wire = (typeUrl, version, resources) =>
  encodeResponse({ typeUrl, versionInfo: version, nonce: version, prepared: prepareResources(resources) });
const svcA = wire(SERVICE_TYPE_URL, '1', services(false));
const svcB = wire(SERVICE_TYPE_URL, '2', services(true));
const eps = wire(ENDPOINT_SET_TYPE_URL, '1', endpointSets);
// Incremental responses (what meshlet's control server sends an up-to-date client): one Service, one EndpointSet.
const incremental = (typeUrl, version, resources) =>
  encodeResponse({
    typeUrl,
    versionInfo: version,
    nonce: version,
    incremental: true,
    prepared: prepareResources(resources),
  });
const svcDelta = incremental(SERVICE_TYPE_URL, '3', [services(false)[0]]);
const epsDelta = incremental(ENDPOINT_SET_TYPE_URL, '2', [
  encodeEndpointSet('svc-0', [{ address: '10.255.0.1:8080' }, { address: '10.255.0.2:8080' }]),
]);
console.log(
  `${N} services × ${E} endpoints: Service response ${svcA.length} bytes, EndpointSet response ${eps.length} bytes`,
);

function cpuMs(fn) {
  const t = process.cpuUsage();
  fn();
  const d = process.cpuUsage(t);
  return (d.user + d.system) / 1000;
}
const median = (xs) => [...xs].sort((a, b) => a - b)[Math.floor(xs.length / 2)];

for (const mode of ['no-op sink', 'real mesh']) {
  const rows = { first: [], identical: [], oneChanged: [], identicalEndpoints: [], svcDelta: [], epsDelta: [] };
  for (let r = 0; r < ROUNDS; r++) {
    let mesh;
    let sink = { update() {}, error() {} };
    if (mode === 'real mesh') {
      mesh = createMesh({
        discovery: [{ name: 'bench', start: (s) => (sink = s), describe: () => '', close: async () => {} }],
      });
    }
    const src = new ControlPlaneSource(resolveControlPlaneOptions({ address: '127.0.0.1:1' }));
    src['sink'] = sink;
    src['send'] = () => true; // no stream: the ACK/NACK is built but not written
    rows.first.push(cpuMs(() => (src['onResponse'](decodeResponse(svcA)), src['onResponse'](decodeResponse(eps)))));
    rows.identical.push(cpuMs(() => src['onResponse'](decodeResponse(svcA))));
    rows.oneChanged.push(cpuMs(() => src['onResponse'](decodeResponse(svcB))));
    rows.identicalEndpoints.push(cpuMs(() => src['onResponse'](decodeResponse(eps))));
    rows.svcDelta.push(cpuMs(() => src['onResponse'](decodeResponse(svcDelta))));
    rows.epsDelta.push(cpuMs(() => src['onResponse'](decodeResponse(epsDelta))));
    await mesh?.close();
  }
  console.log(
    `${mode}: first push (both types) ${median(rows.first).toFixed(1)} ms CPU, identical Service push ${median(rows.identical).toFixed(1)} ms, ` +
      `Service push with one service changed ${median(rows.oneChanged).toFixed(1)} ms, ` +
      `identical EndpointSet push ${median(rows.identicalEndpoints).toFixed(1)} ms, ` +
      `incremental Service push (one changed) ${median(rows.svcDelta).toFixed(1)} ms, ` +
      `incremental EndpointSet push (one changed) ${median(rows.epsDelta).toFixed(1)} ms (medians of ${ROUNDS})`,
  );
}
