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
// skips decoding and validation by comparing bytes), a push with one service changed, and an
// identical EndpointSet push.
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
  const rows = { first: [], identical: [], oneChanged: [], identicalEndpoints: [] };
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
    await mesh?.close();
  }
  console.log(
    `${mode}: first push (both types) ${median(rows.first).toFixed(1)} ms CPU, identical Service push ${median(rows.identical).toFixed(1)} ms, ` +
      `Service push with one service changed ${median(rows.oneChanged).toFixed(1)} ms, ` +
      `identical EndpointSet push ${median(rows.identicalEndpoints).toFixed(1)} ms (medians of ${ROUNDS})`,
  );
}
