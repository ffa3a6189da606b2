/**
 * Microbenchmarks, in their own process (started by run.ts with --expose-gc and a large young
 * generation):
 *  - ns per `pick()` for every balancer at 10, 100 and 1000 endpoints, and picker construction;
 *  - the whole core stack per call (`mesh.call`) over a transport that resolves at once;
 *  - meshlet's own cost with an OpenTelemetry SDK, net of the SDK's, and what it hands the SDK;
 *  - `mesh.update()` and `createMesh` at 10,000 endpoints / 1000 services, and the first call after;
 *  - bytes allocated on the JS heap per call / per HTTP request.
 * Each section runs on its own: one that throws is reported as failed and the others still run.
 *
 * argv: JSON `{ quick?: boolean, upstreams?: string[], only?: string[] }` (`only`: section names,
 * `pick`, `stack`, `otel`, `update`, `alloc`). Reports `{ type: 'micro', results }` over IPC, or
 * prints the JSON when run by hand:
 *   node --import tsx --expose-gc --min-semi-space-size=64 --max-semi-space-size=64 bench/micro.ts '{"only":["otel"]}'
 */
import { PerformanceObserver } from 'node:perf_hooks';
import {
  SpanKind,
  type Attributes,
  type Meter,
  type MeterProvider,
  type Span,
  type Tracer,
  type TracerProvider,
} from '@opentelemetry/api';
import {
  buildPicker,
  createMesh,
  Endpoint,
  type Mesh,
  systemClock,
  type Classifier,
  type LoadBalancerName,
  type PickContext,
  type Picker,
  type Protocol,
  type ServiceConfig,
} from '@meshlet/core';
import { startOtelSdk } from './lib/otel-sdk.ts';
import type { ClientModule, CostPerCall, MicroResults, OtelCost, UpdateTiming } from './lib/types.ts';

const BALANCERS: LoadBalancerName[] = ['p2c-ewma', 'least-request', 'round-robin', 'random', 'ring-hash'];
const COUNTS = [10, 100, 1000];

const { quick, upstreams, only } = JSON.parse(process.argv[2] ?? '{}') as {
  quick?: boolean;
  upstreams?: string[];
  only?: string[];
};
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

// Named `http`, as the services' default protocol: a mesh may refuse a call whose protocol is not
// the one its service is configured for, and the benchmark must not depend on that option.
const instantProtocol: Protocol<FakeReq, typeof RES> = {
  name: 'http',
  durationMetric: 'http.client.request.duration',
  transport: () => RESOLVED,
  classifier: () => classifier,
  method: (req) => req.method,
  path: (req) => req.path,
  header: () => undefined,
  replayable: () => true,
  discard: () => undefined,
  spanName: (req) => req.method,
  // What the HTTP protocol records per attempt (4 attributes).
  attemptAttributes: (req, _ctx, ep, res) => ({
    'http.request.method': req.method,
    'server.address': ep.host,
    'server.port': ep.port,
    'http.response.status_code': res?.status ?? 0,
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
// OpenTelemetry: meshlet's own added cost with an SDK, separately from the SDK's

/** Like timeCalls for a synchronous operation (no await in the loop: it would be charged to the op). */
function timeSync(op: () => void): number {
  const iterations = quick ? 20_000 : 200_000;
  for (let i = 0; i < iterations / 4; i++) op();
  const samples: number[] = [];
  for (let rep = 0; rep < 5; rep++) {
    const n = iterations / 5;
    const t0 = process.hrtime.bigint();
    for (let i = 0; i < n; i++) op();
    samples.push(Number(process.hrtime.bigint() - t0) / n);
  }
  return Math.min(...samples);
}

async function bytesPerSync(batch: number, op: () => void): Promise<number | undefined> {
  for (let n = batch, attempt = 0; attempt < 4; attempt++, n = Math.max(50, Math.floor(n / 2))) {
    gc();
    await settle();
    const gcBefore = gcCount;
    const before = process.memoryUsage().heapUsed;
    for (let i = 0; i < n; i++) op();
    const after = process.memoryUsage().heapUsed;
    await settle();
    if (gcCount === gcBefore && after > before) return (after - before) / n;
  }
  return undefined;
}

const SPAN_OPTIONS = { kind: SpanKind.CLIENT };

/**
 * (c): what an application instrumenting its own outbound requests does per request with the same
 * SDK: start a client span with one attribute, add one event with 5 attributes, record one
 * duration point with 4 attributes (fresh attribute objects, as such code builds them), end the
 * span. Its timing is not included (meshlet measures the attempt's time anyway, without an SDK too).
 */
function sdkAloneOp(tracer: Tracer, meter: Meter): () => void {
  const histogram = meter.createHistogram('app.client.request.duration', {
    unit: 's',
    advice: { explicitBucketBoundaries: [0.0005, 0.001, 0.0025, 0.005, 0.0075, 0.01, 0.025, 0.05, 0.075, 0.1, 0.25] },
  });
  let i = 0;
  return () => {
    const span = tracer.startSpan('GET', SPAN_OPTIONS);
    span.setAttribute('meshlet.service', 'upstream');
    const ms = 0.1 + (i++ & 7) / 100;
    span.addEvent('attempt', {
      'meshlet.attempt': 1,
      'meshlet.endpoint': '127.0.0.1:10001',
      'meshlet.outcome': 'success',
      'meshlet.status': 200,
      'meshlet.duration_ms': ms,
    });
    histogram.record(ms / 1000, {
      'http.request.method': 'GET',
      'server.address': '127.0.0.1',
      'server.port': 10001,
      'http.response.status_code': 200,
    });
    span.end();
  };
}

type PerCall = NonNullable<OtelCost['perCall']>;

/**
 * Tracer and meter providers that forward to the SDK's and count what meshlet hands them: spans,
 * span attributes, events, metric records, attribute objects (and how many were never seen before,
 * i.e. allocated for this call rather than reused).
 */
function countingProviders(
  tracerProvider: TracerProvider,
  meterProvider: MeterProvider,
): { tracerProvider: TracerProvider; meterProvider: MeterProvider; counts: PerCall } {
  const counts: PerCall = {
    spans: 0,
    spanAttributes: 0,
    events: 0,
    metricRecords: 0,
    attributeObjects: 0,
    newAttributeObjects: 0,
    attributeKeys: 0,
  };
  const seen = new WeakSet<object>();
  const attrs = (a: unknown): void => {
    if (a === undefined || a === null || typeof a !== 'object') return;
    counts.attributeObjects++;
    counts.attributeKeys += Object.keys(a).length;
    if (!seen.has(a)) {
      seen.add(a);
      counts.newAttributeObjects++;
    }
  };
  // Methods are bound to the real object: SDK classes keep private state.
  const forward = <T extends object>(target: T, overrides: Record<string, unknown>): T =>
    new Proxy(target, {
      get(t, prop) {
        if (typeof prop === 'string' && prop in overrides) return overrides[prop];
        const v = Reflect.get(t, prop, t) as unknown;
        return typeof v === 'function' ? (v as (...args: unknown[]) => unknown).bind(t) : v;
      },
    });
  const wrapSpan = (span: Span): Span => {
    const wrapped: Span = forward(span, {
      setAttribute: (key: string, value: unknown) => {
        counts.spanAttributes++;
        span.setAttribute(key, value as never);
        return wrapped;
      },
      setAttributes: (a: Attributes) => {
        counts.spanAttributes += Object.keys(a).length;
        attrs(a);
        span.setAttributes(a);
        return wrapped;
      },
      addEvent: (name: string, a?: unknown, time?: unknown) => {
        counts.events++;
        attrs(a);
        span.addEvent(name, a as never, time as never);
        return wrapped;
      },
    });
    return wrapped;
  };
  const wrapTracer = (tracer: Tracer): Tracer =>
    forward(tracer, {
      startSpan: (name: string, options?: { attributes?: Attributes }, ctx?: unknown) => {
        counts.spans++;
        if (options?.attributes !== undefined) {
          counts.spanAttributes += Object.keys(options.attributes).length;
          attrs(options.attributes);
        }
        return wrapSpan(tracer.startSpan(name, options, ctx as never));
      },
    });
  const wrapInstrument = <T extends object>(instrument: T, method: 'record' | 'add'): T =>
    forward(instrument, {
      [method]: (value: number, a?: Attributes, ctx?: unknown) => {
        counts.metricRecords++;
        attrs(a);
        (instrument as unknown as Record<string, (...args: unknown[]) => void>)[method](value, a, ctx);
      },
    });
  const wrapMeter = (meter: Meter): Meter =>
    forward(meter, {
      createHistogram: (...args: Parameters<Meter['createHistogram']>) =>
        wrapInstrument(meter.createHistogram(...args), 'record'),
      createCounter: (...args: Parameters<Meter['createCounter']>) =>
        wrapInstrument(meter.createCounter(...args), 'add'),
      createUpDownCounter: (...args: Parameters<Meter['createUpDownCounter']>) =>
        wrapInstrument(meter.createUpDownCounter(...args), 'add'),
      createGauge: (...args: Parameters<Meter['createGauge']>) => wrapInstrument(meter.createGauge(...args), 'record'),
    });
  return {
    tracerProvider: forward(tracerProvider, {
      getTracer: (...args: Parameters<TracerProvider['getTracer']>) => wrapTracer(tracerProvider.getTracer(...args)),
    }),
    meterProvider: forward(meterProvider, {
      getMeter: (...args: Parameters<MeterProvider['getMeter']>) => wrapMeter(meterProvider.getMeter(...args)),
    }),
    counts,
  };
}

async function benchOtel(): Promise<OtelCost> {
  // The SDK stays local (not registered globally): (a) is a mesh without providers, so without an SDK.
  const sdk = startOtelSdk({ global: false });
  const providers = { meterProvider: sdk.meterProvider, tracerProvider: sdk.tracerProvider };
  const meshA = createMesh({ services: { upstream: { endpoints: ENDPOINTS } } });
  const meshB = createMesh({ services: { upstream: { endpoints: ENDPOINTS } }, telemetry: providers });
  const callA = (): Promise<unknown> => meshA.call('upstream', REQ, instantProtocol);
  const callB = (): Promise<unknown> => meshB.call('upstream', REQ, instantProtocol);
  const opC = sdkAloneOp(sdk.tracerProvider.getTracer('app'), sdk.meterProvider.getMeter('app'));
  try {
    // Interleaved, best of three passes each: a drift in the machine's load falls on all three.
    const ns = { a: Infinity, b: Infinity, c: Infinity };
    for (let pass = 0; pass < 3; pass++) {
      ns.a = Math.min(ns.a, await timeCalls(callA));
      ns.b = Math.min(ns.b, await timeCalls(callB));
      ns.c = Math.min(ns.c, timeSync(opC));
    }
    const batch = quick ? 1000 : 5000;
    const bytesA = await bytesPer(batch, async () => {
      await callA();
    });
    const bytesB = await bytesPer(batch, async () => {
      await callB();
    });
    const bytesC = await bytesPerSync(batch, opC);

    // What meshlet hands the SDK per call, through counting providers (not timed).
    const counting = countingProviders(sdk.tracerProvider, sdk.meterProvider);
    const meshCount = createMesh({
      services: { upstream: { endpoints: ENDPOINTS } },
      telemetry: { meterProvider: counting.meterProvider, tracerProvider: counting.tracerProvider },
    });
    for (let i = 0; i < 100; i++) await meshCount.call('upstream', REQ, instantProtocol);
    const zero = { ...counting.counts };
    const calls = 2000;
    for (let i = 0; i < calls; i++) await meshCount.call('upstream', REQ, instantProtocol);
    const perCall = Object.fromEntries(
      Object.entries(counting.counts).map(([k, v]) => [k, (v - zero[k as keyof PerCall]) / calls]),
    ) as PerCall;
    await meshCount.close();

    const cost = (label: string, nsPerCall: number, bytesPerCall: number | undefined): CostPerCall => ({
      label,
      nsPerCall,
      bytesPerCall,
    });
    notes.push(
      'OpenTelemetry: (a) `mesh.call` with the default policies and no SDK, (b) the same mesh with the SDK of ' +
        '`bench/lib/otel-sdk.ts` (always-on spans, metrics, no-op exporters) handed to `createMesh`, (c) that SDK alone ' +
        'doing what an application instrumenting its own requests does per request: start a client span with one ' +
        'attribute, one event with 5 attributes, one histogram point with 4 attributes, end the span. meshlet’s own ' +
        'cost is (b − a) − c. Times are the best of 3 interleaved passes (each the minimum of 5 batch means); bytes ' +
        'as for the core stack. The per-call counts come from providers that wrap the SDK’s and count what meshlet passes.',
    );
    return {
      noSdk: cost('mesh.call, default policies, no SDK', ns.a, bytesA),
      withSdk: cost('mesh.call, default policies, with the SDK', ns.b, bytesB),
      sdkAlone: cost('the SDK alone: span + 1 attribute, event (5 attrs), histogram point (4 attrs)', ns.c, bytesC),
      addedNs: ns.b - ns.a - ns.c,
      addedBytes:
        bytesA === undefined || bytesB === undefined || bytesC === undefined ? undefined : bytesB - bytesA - bytesC,
      perCall,
    };
  } finally {
    await meshA.close();
    await meshB.close();
    await sdk.shutdown();
  }
}

// ---------------------------------------------------------------------------------------------
// mesh.update() and createMesh at scale

/** `n` distinct `host:port` addresses starting at index `from` (10.a.b.c:8080). */
function addresses(n: number, from: number): string[] {
  return Array.from({ length: n }, (_, k) => {
    const i = from + k;
    return `10.${(i >> 16) & 255}.${(i >> 8) & 255}.${i & 255}:8080`;
  });
}

function ms(t0: bigint): number {
  return Number(process.hrtime.bigint() - t0) / 1e6;
}

async function benchUpdate(): Promise<UpdateTiming[]> {
  const reps = quick ? 3 : 5;
  const N = 10_000;
  const samples = new Map<string, { balancer: string; step: string; ms: number[]; first: number[] }>();
  // Repetition 0 of each sequence warms the code up (V8 compiles update, validation, picker builds)
  // and is not recorded: the figures are the steady cost of a long-running process's pushes.
  let recording = false;
  // A sequence stops repeating past this budget (one recorded repetition at least), so a slow
  // update() (seconds per step, as on the morning of issue 6) cannot stretch the run past its time.
  const budgetMs = quick ? 8_000 : 20_000;
  const more = (rep: number, startedAt: number): boolean =>
    rep <= reps && (rep <= 1 || Date.now() - startedAt < budgetMs);
  const add = (balancer: string, step: string, t: number, first: number): void => {
    if (!recording) return;
    const key = `${balancer}\u0000${step}`;
    let s = samples.get(key);
    if (s === undefined) samples.set(key, (s = { balancer, step, ms: [], first: [] }));
    s.ms.push(t);
    s.first.push(first);
  };
  /** Times `op`, then the first call of `service` after it. */
  const timed = async (mesh: Mesh, service: string, op: () => void): Promise<[number, number]> => {
    gc();
    const t0 = process.hrtime.bigint();
    op();
    const t = ms(t0);
    const t1 = process.hrtime.bigint();
    await mesh.call(service, REQ, instantProtocol);
    return [t, ms(t1)];
  };

  const A = addresses(N, 0);
  const B = addresses(N, N);
  const B1 = [...B.slice(0, N - 1), addresses(1, 2 * N)[0]];
  for (const balancer of ['p2c-ewma', 'ring-hash'] as const) {
    const service = (endpoints: string[]): ServiceConfig => ({
      endpoints,
      loadBalancer: balancer,
      ...(balancer === 'ring-hash' ? { hashKey: { path: true as const } } : {}),
    });
    // Built outside the timings: the config objects are the caller's, not the mesh's work.
    const cfg0 = { services: { big: service([]) } };
    const cfgA = { services: { big: service(A) } };
    const cfgB = { services: { big: service(B) } };
    const cfgB1 = { services: { big: service(B1) } };
    const startedAt = Date.now();
    for (let rep = 0; more(rep, startedAt); rep++) {
      recording = rep > 0;
      const mesh = createMesh(cfg0);
      try {
        add(balancer, 'update 0 → 10,000 endpoints', ...(await timed(mesh, 'big', () => mesh.update(cfgA))));
        add(
          balancer,
          'update 10,000 → another 10,000 (full churn)',
          ...(await timed(mesh, 'big', () => mesh.update(cfgB))),
        );
        add(balancer, 'update 10,000 → 10,000 with 1 changed', ...(await timed(mesh, 'big', () => mesh.update(cfgB1))));
      } finally {
        await mesh.close();
      }
    }
  }

  // 1000 services × 10 endpoints: creation, then an update that changes one endpoint of one service.
  const services: Record<string, ServiceConfig> = {};
  for (let s = 0; s < 1000; s++) services[`svc-${s}`] = { endpoints: addresses(10, s * 10) };
  const big = { services };
  const changed = {
    services: { ...services, 'svc-500': { endpoints: [...addresses(9, 5000), addresses(1, 20_000)[0]] } },
  };
  const startedAt = Date.now();
  for (let rep = 0; more(rep, startedAt); rep++) {
    recording = rep > 0;
    gc();
    const t0 = process.hrtime.bigint();
    const mesh = createMesh(big);
    const t = ms(t0);
    try {
      const t1 = process.hrtime.bigint();
      await mesh.call('svc-0', REQ, instantProtocol);
      add('p2c-ewma', 'createMesh with 1000 services × 10 endpoints', t, ms(t1));
      add(
        'p2c-ewma',
        'update 1000 × 10 with 1 endpoint changed in 1 service',
        ...(await timed(mesh, 'svc-500', () => mesh.update(changed))),
      );
    } finally {
      await mesh.close();
    }
  }
  notes.push(
    `Update at scale: the public API over the instant transport; each step timed on its own (GC run before it), then ` +
      `the first \`mesh.call\` to the service (its first pick after the change); up to ${reps} repetitions (fewer ` +
      `past ${budgetMs / 1000} s per sequence) after an unrecorded warm-up one, each on a new mesh, median shown. Config objects are built before the timing; validation is part of \`update()\`/\`createMesh\`.`,
  );
  return [...samples.values()].map((s) => ({
    balancer: s.balancer,
    step: s.step,
    ms: median(s.ms),
    firstCallMs: median(s.first),
    samplesMs: s.ms,
  }));
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
    ['meshlet-fetch-policies', 'meshlet fetch + retry/budget/breaker/outlier'],
    ['meshlet-fetch', 'meshlet fetch, full (+ OTel SDK)'],
  ];
  for (const [name, label] of clients) {
    // One client failing (an API changed under the benchmark) leaves its row empty, not the table.
    let client: Awaited<ReturnType<ClientModule['setup']>> | undefined;
    try {
      const mod = (await import(`./clients/${name}.ts`)) as ClientModule;
      client = await mod.setup({ targets: upstreams, path: '/' });
      for (let i = 0; i < (quick ? 300 : 2000); i++) await client.send();
      const samples: number[] = [];
      for (let rep = 0; rep < 3; rep++) {
        const bytes = await bytesPer(quick ? 300 : 1000, () => client!.send());
        if (bytes !== undefined) samples.push(bytes);
      }
      out.push({ setup: name, label, bytesPerRequest: samples.length > 0 ? median(samples) : undefined });
    } catch (err) {
      const reason = err instanceof Error ? `${err.name}: ${err.message}` : String(err);
      notes.push(`HTTP allocation: ${name} FAILED: ${reason.split('\n')[0]}`);
      out.push({ setup: name, label: `${label} (failed)`, bytesPerRequest: undefined });
    } finally {
      await client?.close().catch(() => undefined);
    }
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
  const failed: NonNullable<MicroResults['failed']> = [];
  const wanted = (section: string): boolean => only === undefined || only.includes(section);
  /** Runs one section; a failure is recorded and the next section runs. */
  const section = async <T>(name: string, fallback: T, run: () => T | Promise<T>): Promise<T> => {
    if (!wanted(name)) return fallback;
    const t0 = Date.now();
    try {
      const result = await run();
      process.stderr.write(`  ${name} done (${((Date.now() - t0) / 1000).toFixed(1)} s)\n`);
      return result;
    } catch (err) {
      const reason = err instanceof Error ? `${err.name}: ${err.message}` : String(err);
      process.stderr.write(`  ${name} FAILED: ${reason}\n`);
      failed.push({ section: name, reason: reason.split('\n')[0] });
      return fallback;
    }
  };
  const pick = await section('pick', [], benchPick);
  const stack = await section('stack', [], benchStack);
  const otel = await section<OtelCost | undefined>('otel', undefined, benchOtel);
  const update = await section<UpdateTiming[] | undefined>('update', undefined, benchUpdate);
  // Last: it loads the client modules, and the OTel ones shut their SDK down when closed.
  const alloc = await section('alloc', [], benchHttpAlloc);
  const results: MicroResults = {
    pick,
    stack,
    alloc,
    ...(otel === undefined ? {} : { otel }),
    ...(update === undefined ? {} : { update }),
    ...(failed.length > 0 ? { failed } : {}),
    notes,
  };
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
