/**
 * The RouteGuide client: `npm run -w @meshlet/examples grpc-service:client` (`-- --calls 30` for more).
 *
 * A plain grpc-js client (loaded from routeguide.proto by @grpc/proto-loader) on the target
 * `meshlet:///routeguide` with `meshGrpcOptions(mesh)`: every call goes through the mesh — P2C over
 * peak EWMA across the servers, retries of UNAVAILABLE on another server within the retry budget, the
 * deadlines and per-method policies of client.mesh.yaml, outlier ejection and circuit breaking. It
 * makes `--calls` GetFeature calls and one ListFeatures stream, prints what it got, then
 * `mesh.stats()` for routeguide (calls, retries, and per server: requests, failures, state).
 *
 * Configured like the other examples (../shared/mesh-env.ts): MESHLET_CONFIG (default
 * client.mesh.yaml), MESHLET_CONTROL_PLANE, MESHLET_SERVICE (default `frontend`, sent to the servers as
 * `meshlet-caller`).
 */
import { parseArgs } from 'node:util';
import * as grpc from '@grpc/grpc-js';
import { meshGrpcOptions } from '@meshlet/grpc';
import { fail, meshFromEnv } from '../shared/mesh-env.ts';
import { RouteGuide, type Feature, type Point } from './routeguide.ts';

const calls = (() => {
  try {
    const raw = parseArgs({ options: { calls: { type: 'string' } } }).values.calls ?? '12';
    if (!/^\d+$/.test(raw) || Number(raw) < 1 || Number(raw) > 100_000) {
      throw new Error(`--calls: expected a number of calls from 1 to 100000, got ${JSON.stringify(raw)}`);
    }
    return Number(raw);
  } catch (err) {
    fail(err);
  }
})();

const mesh = await meshFromEnv('frontend', new URL('./client.mesh.yaml', import.meta.url)).catch(fail);
// With a control plane: wait for its first config, so the first call knows the servers.
await mesh.ready().catch(fail);

// The one line that puts a grpc-js client on the mesh.
const client = new RouteGuide('meshlet:///routeguide', grpc.credentials.createInsecure(), meshGrpcOptions(mesh));

/** What a failed call says: the gRPC status a grpc-js user expects, and the mesh's reason. */
function describe(err: grpc.ServiceError): string {
  const meshletCode = (err as grpc.ServiceError & { meshletCode?: string }).meshletCode;
  // A mesh error's details start with its meshlet code; grpc-js's own (a server's status) do not.
  const extra = meshletCode === undefined || err.details.startsWith(meshletCode) ? '' : ` ${meshletCode}`;
  return `${grpc.status[err.code]} (${err.code})${extra}: ${err.details}`;
}

function getFeature(point: Point): Promise<Feature> {
  return new Promise((resolve, reject) =>
    client.getFeature(point, {}, (err, feature) =>
      err === null && feature !== undefined ? resolve(feature) : reject(err),
    ),
  );
}

const POINTS: Point[] = [
  { latitude: 409146138, longitude: -746188906 },
  { latitude: 414008389, longitude: -743951297 },
  { latitude: 0, longitude: 0 }, // nothing there: a feature with an empty name
];

let ok = 0;
for (let i = 0; i < calls; i++) {
  const point = POINTS[i % POINTS.length];
  const started = performance.now();
  try {
    const feature = await getFeature(point);
    ok++;
    const ms = (performance.now() - started).toFixed(1);
    console.log(`GetFeature #${i + 1}: ${feature.name === '' ? '(no feature)' : feature.name} in ${ms} ms`);
  } catch (err) {
    console.log(`GetFeature #${i + 1} failed: ${describe(err as grpc.ServiceError)}`);
  }
}
console.log(`${ok} of ${calls} GetFeature calls succeeded`);

const stream = client.listFeatures({
  lo: { latitude: 400000000, longitude: -750000000 },
  hi: { latitude: 420000000, longitude: -730000000 },
});
let streamed = 0;
try {
  for await (const feature of stream as AsyncIterable<Feature>) {
    streamed++;
    console.log(`ListFeatures: ${feature.name}`);
  }
  console.log(`ListFeatures: ${streamed} features`);
} catch (err) {
  console.log(`ListFeatures failed after ${streamed} features: ${describe(err as grpc.ServiceError)}`);
}

// What the mesh saw: calls, retries and, per server, attempts, failures and state.
const stats = mesh.stats().services.routeguide;
console.log(
  `\nmesh.stats().services.routeguide: ${stats.requests} calls, ${stats.successes} ok, ${stats.failures} failed, ` +
    `${stats.retries} retries (${stats.retriesSkippedByBudget} refused by the budget), p50 ${stats.latencyMs.p50} ms`,
);
for (const e of stats.endpoints) {
  console.log(
    `  ${e.address}  ${e.state.padEnd(8)} attempts ${e.requests}, failures ${e.failures}, ejections ${e.ejections}, ` +
      `EWMA ${e.ewmaMs.toFixed(1)} ms`,
  );
}

client.close();
await mesh.close();
process.exitCode = ok === 0 ? 1 : 0;
