/**
 * Microbenchmarks, in their own process (started by run.ts with --expose-gc and a large young
 * generation):
 *  - ns per `pick()` for every balancer at 10, 100 and 1000 endpoints, and picker construction;
 *  - the whole core stack per call (`mesh.call`) over a transport that resolves at once;
 *  - bytes allocated on the JS heap per call / per HTTP request.
 *
 * argv: JSON `{ quick: boolean, upstreams: string[] }`. Reports `{ type: 'micro', results }` over IPC.
 */
import { PerformanceObserver } from 'node:perf_hooks';
import {
  buildPicker,
  createMesh,
  Endpoint,
  systemClock,
  type Classifier,
  type LoadBalancerName,
  type PickContext,
  type Picker,
  type Protocol,
  type ServiceConfig,
} from '@meshlet/core';
import { startOtelSdk } from './lib/otel-sdk.ts';
import type { ClientModule, MicroResults } from './lib/types.ts';

const BALANCERS: LoadBalancerName[] = ['p2c-ewma', 'least-request', 'round-robin', 'random', 'ring-hash'];
const COUNTS = [10, 100, 1000];

const { quick, upstreams } = JSON.parse(process.argv[2] ?? '{}') as { quick?: boolean; upstreams?: string[] };
const notes: string[] = [];

function gc(): void {
  (globalThis as { gc?: () => void }).gc?.();
}

function median(values: number[]): number {
  const sorted = [...values].sort((a, b) => a - b);
  return sorted[Math.floor(sorted.length / 2)];
}

// ---------------------------------------------------------------------------------------------
// Allocation: the heap grows by exactly what was allocated as long as no GC runs in between; a
// GC observer tells us when one did, and the batch is then retried smaller.

let gcCount = 0;
new PerformanceObserver((list) => {
  gcCount += list.getEntries().length;
}).observe({ entryTypes: ['gc'] });

/** Flushes pending GC performance entries (they are delivered asynchronously). */
const settle = (): Promise<void> => new Promise((resolve) => setTimeout(resolve, 20));

async function bytesPer(batch: number, op: () => Promise<void> | void): Promise<number | undefined> {
  for (let n = batch, attempt = 0; attempt < 4; attempt++, n = Math.max(50, Math.floor(n / 2))) {
    gc();
    await settle();
    const gcBefore = gcCount;
    const before = process.memoryUsage().heapUsed;
    for (let i = 0; i < n; i++) await op();
    const after = process.memoryUsage().heapUsed;
    await settle();
    if (gcCount === gcBefore && after > before) return (after - before) / n;
  }
  return undefined;
}

// ---------------------------------------------------------------------------------------------
// Balancers

function makeEndpoints(n: number): Endpoint[] {
  const now = systemClock.now();
  return Array.from({ length: n }, (_, i) => {
    const host = `10.${(i >> 16) & 255}.${(i >> 8) & 255}.${i & 255}`;
    const ep = new Endpoint(
      { address: `${host}:8080`, host, port: 8080, weight: 1 + (i % 3), zone: undefined, metadata: {} },
      systemClock,
      10_000,
    );
    // Live-looking state, so the load-aware pickers compare real numbers.
    ep.inFlight = i % 7;
    ep.ewmaMs = 1 + ((i * 7919) % 100) / 10;
    ep.ewmaStamp = now;
    return ep;
  });
}

type PickLoop = (picker: Picker, ctx: PickContext, hashes: Uint32Array, iterations: number) => number;

/**
 * A fresh copy of the loop per balancer: V8's inline caches are per function, so a shared loop
 * would turn `picker.pick` megamorphic and charge every balancer for the others.
 */
function freshPickLoop(): PickLoop {
  return new Function(
    'picker',
    'ctx',
    'hashes',
    'iterations',
    `let sink = 0;
     for (let i = 0; i < iterations; i++) {
       ctx.hash = hashes[i & 1023];
       const ep = picker.pick(ctx);
       if (ep !== undefined) sink += ep.port;
     }
     return sink;`,
  ) as PickLoop;
}

function benchPick(): MicroResults['pick'] {
  const out: MicroResults['pick'] = [];
  const hashes = new Uint32Array(1024).map(() => Math.floor(Math.random() * 2 ** 32));
  const iterations = quick ? 200_000 : 2_000_000;
  for (const balancer of BALANCERS) {
    for (const n of COUNTS) {
      const endpoints = makeEndpoints(n);
      // Construction (ring-hash builds its ring here): mean over enough builds for ~tens of ms.
      const builds = Math.max(3, Math.floor((quick ? 20_000 : 100_000) / n));
      let picker = buildPicker(balancer, endpoints);
      const b0 = process.hrtime.bigint();
      for (let i = 0; i < builds; i++) picker = buildPicker(balancer, endpoints);
      const buildUs = Number(process.hrtime.bigint() - b0) / 1e3 / builds;

      const loop = freshPickLoop();
      const ctx: PickContext = { now: systemClock.now(), avoid: undefined, hash: 0 };
      loop(picker, ctx, hashes, iterations / 10); // warm-up, to get the optimized code
      const samples: number[] = [];
      for (let rep = 0; rep < 5; rep++) {
        ctx.now = systemClock.now();
        const t0 = process.hrtime.bigint();
        loop(picker, ctx, hashes, iterations / 5);
        samples.push(Number(process.hrtime.bigint() - t0) / (iterations / 5));
      }
      // The minimum is the cost without interference from the other processes on the machine.
      out.push({ balancer, endpoints: n, nsPerPick: Math.min(...samples), buildUs });
    }
  }
  notes.push(
    `Pick: ${iterations.toLocaleString('en-US')} picks per balancer and size in 5 batches, minimum batch mean (ns); ` +
      'endpoints carry varied in-flight counts, EWMA and weights; the loop (a hash per pick from a table) is included.',
  );
  return out;
}

// ---------------------------------------------------------------------------------------------
// The core stack over an instant transport

interface FakeReq {
  method: string;
  path: string;
}
const REQ: FakeReq = { method: 'GET', path: '/' };
const RES = { status: 200 };
const RESOLVED = Promise.resolve(RES);

const classifier: Classifier<typeof RES> = {
  classifyResult: () => 'success',
  classifyError: () => 'failure',
};

const instantProtocol: Protocol<FakeReq, typeof RES> = {
  name: 'bench',
  durationMetric: 'bench.client.duration',
  transport: () => RESOLVED,
  classifier: () => classifier,
  method: (req) => req.method,
  path: (req) => req.path,
  header: () => undefined,
  replayable: () => true,
  discard: () => undefined,
  spanName: (req) => req.method,
  attemptAttributes: (req) => ({
    'http.request.method': req.method,
    'server.address': 'upstream',
    'server.port': 8080,
  }),
  attemptStatus: (res) => res?.status ?? 0,
};

const ENDPOINTS = ['127.0.0.1:10001', '127.0.0.1:10002', '127.0.0.1:10003'];
const BALANCER_ONLY: ServiceConfig = {
  endpoints: ENDPOINTS,
  loadBalancer: 'p2c-ewma',
  retry: { maxAttempts: 1 },
  circuitBreaker: { enabled: false },
  outlierDetection: { enabled: false },
};

async function timeCalls(call: () => Promise<unknown>): Promise<number> {
  const iterations = quick ? 20_000 : 200_000;
  for (let i = 0; i < iterations / 4; i++) await call();
  const samples: number[] = [];
  for (let rep = 0; rep < 5; rep++) {
    const n = iterations / 5;
    const t0 = process.hrtime.bigint();
    for (let i = 0; i < n; i++) await call();
    samples.push(Number(process.hrtime.bigint() - t0) / n);
  }
  return Math.min(...samples);
}

async function benchStack(): Promise<MicroResults['stack']> {
  const out: MicroResults['stack'] = [];
  const measure = async (name: string, label: string, call: () => Promise<unknown>): Promise<void> => {
    const nsPerCall = await timeCalls(call);
    const bytesPerCall = await bytesPer(quick ? 1000 : 5000, async () => {
      await call();
    });
    out.push({ name, label, nsPerCall, bytesPerCall });
  };

  await measure('transport', 'the transport alone (await of a resolved promise): the floor', () =>
    instantProtocol.transport(REQ, undefined as never, undefined as never),
  );
  const variants: Array<[string, string, ServiceConfig]> = [
    ['balancer', 'mesh.call: route + admission + pick (p2c-ewma), no policies', BALANCER_ONLY],
    [
      'policies',
      'mesh.call: + retry/budget, deadline, breaker, outlier detection (defaults)',
      { endpoints: ENDPOINTS },
    ],
  ];
  for (const [name, label, service] of variants) {
    const mesh = createMesh({ services: { upstream: service } });
    await measure(name, label, () => mesh.call('upstream', REQ, instantProtocol));
    await mesh.close();
  }
  // Last: registering the SDK globally would turn telemetry on for the variants above too.
  const sdk = startOtelSdk();
  const mesh = createMesh({
    services: { upstream: { endpoints: ENDPOINTS } },
    telemetry: { meterProvider: sdk.meterProvider, tracerProvider: sdk.tracerProvider },
  });
  await measure('full', 'mesh.call: + OTel SDK (span per call, attempt event, duration histogram)', () =>
    mesh.call('upstream', REQ, instantProtocol),
  );
  await mesh.close();
  await sdk.shutdown();
  notes.push(
    'Core stack: sequential `await mesh.call(...)` over a transport returning an already-resolved promise, ' +
      'minimum of 5 batch means; bytes/call is the JS heap growth over a batch with no GC in it (V8 young ' +
      'generation enlarged so none runs), per call.',
  );
  return out;
}

// ---------------------------------------------------------------------------------------------
// Bytes per HTTP request, with the benchmark's own client modules against the upstreams

async function benchHttpAlloc(): Promise<MicroResults['alloc']> {
  const out: MicroResults['alloc'] = [];
  if (upstreams === undefined || upstreams.length === 0) {
    notes.push('HTTP allocation: not measured (no upstreams given).');
    return out;
  }
  const clients: Array<[string, string]> = [
    ['undici-request', 'raw undici request (baseline)'],
    ['meshlet-passthrough', 'meshlet dispatcher, passthrough'],
    ['meshlet-balancer', 'meshlet + balancer'],
    ['meshlet-policies', 'meshlet + retry/budget/breaker/outlier'],
    // The two with an OTel SDK go last and shut it down when closed.
    ['meshlet-full', 'meshlet full (+ OTel SDK)'],
    ['undici-fetch', 'raw undici fetch'],
    ['meshlet-fetch', 'meshlet fetch, full (+ OTel SDK)'],
  ];
  for (const [name, label] of clients) {
    const mod = (await import(`./clients/${name}.ts`)) as ClientModule;
    const client = await mod.setup({ targets: upstreams, path: '/' });
    for (let i = 0; i < (quick ? 300 : 2000); i++) await client.send();
    const samples: number[] = [];
    for (let rep = 0; rep < 3; rep++) {
      const bytes = await bytesPer(quick ? 300 : 1000, () => client.send());
      if (bytes !== undefined) samples.push(bytes);
    }
    out.push({ setup: name, label, bytesPerRequest: samples.length > 0 ? median(samples) : undefined });
    await client.close();
  }
  notes.push(
    'HTTP allocation: sequential requests (concurrency 1) after a warm-up, JS heap growth per request with no GC ' +
      'in the batch, median of 3 batches; socket buffers outside the JS heap are not counted.',
  );
  return out;
}

async function main(): Promise<void> {
  if ((globalThis as { gc?: unknown }).gc === undefined)
    notes.push('Run without --expose-gc: allocation figures are less stable.');
  const pick = benchPick();
  process.stderr.write(`  picks done\n`);
  const stack = await benchStack();
  process.stderr.write(`  core stack done\n`);
  const alloc = await benchHttpAlloc();
  process.stderr.write(`  HTTP allocation done\n`);
  const results: MicroResults = { pick, stack, alloc, notes };
  if (process.send !== undefined) process.send({ type: 'micro', results }, () => process.exit(0));
  else {
    process.stdout.write(JSON.stringify(results, null, 2) + '\n');
    process.exit(0);
  }
}

main().catch((err: unknown) => {
  const message = err instanceof Error ? (err.stack ?? err.message) : String(err);
  if (process.send !== undefined) process.send({ type: 'fatal', message }, () => process.exit(1));
  else {
    console.error(message);
    process.exit(1);
  }
});
