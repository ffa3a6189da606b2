/**
 * The contract between the orchestrator, the generic client runner and the client modules.
 * A protocol (HTTP today, gRPC later) joins the benchmark by adding a client module under
 * `bench/clients/` and a row in `bench/setups.ts`; the load loops, histograms and CPU/RSS
 * accounting live once, in `client-runner.ts`.
 */

/** What a client module gets to build its client. */
export interface ClientSetupOptions {
  /**
   * `host:port` addresses to spread requests over: the three upstreams for direct and
   * in-process-mesh setups, or the single sidecar address for the proxy setups.
   */
  targets: string[];
  /** Request path on the upstream (starts with `/`). */
  path: string;
}

/** One client instance, alive for every load point of its setup. */
export interface BenchClient {
  /** Sends one request and consumes the whole response; rejects on any failure (including a non-2xx status). */
  send(): Promise<void>;
  /** Releases sockets, timers and SDKs. */
  close(): Promise<void>;
}

/** What every file in `bench/clients/` exports. */
export interface ClientModule {
  setup(options: ClientSetupOptions): Promise<BenchClient>;
}

/** A closed-loop point: `concurrency` workers each sending the next request when the last one finished. */
export interface ClosedLoopPoint {
  mode: 'closed';
  concurrency: number;
  warmupMs: number;
  durationMs: number;
}

/**
 * An open-loop point: requests are scheduled at a fixed rate regardless of completions, and
 * latency is measured from each request's intended send time (no coordinated omission).
 */
export interface OpenLoopPoint {
  mode: 'open';
  /** Requests per second. */
  rate: number;
  /** Label such as `50%` (of the baseline's maximum throughput). */
  label: string;
  warmupMs: number;
  durationMs: number;
  /**
   * Requests in flight beyond which new sends wait in a client-side queue (still timed from
   * their intended time), as an application bounds its concurrency. Without it an overloaded
   * client opens a connection per queued request and the run measures a connection storm.
   */
  maxInFlight: number;
  /** How long to wait for stragglers after the window before counting them as incomplete. */
  drainMs: number;
}

export type LoadPoint = ClosedLoopPoint | OpenLoopPoint;

/** Latency summary in microseconds. */
export interface LatencySummary {
  p50: number;
  p90: number;
  p99: number;
  p999: number;
  max: number;
  mean: number;
}

/** What one round measured. */
export interface RoundResult {
  throughput: number;
  latencyUs: LatencySummary;
  /** Client process CPU (user + system) per request completed in the round's window, µs. */
  cpuUsPerRequest?: number;
  /** JS heap bytes the client process allocated in the round's window, per completed request (see `bytesPerRequest`). */
  bytesPerRequest?: number;
}

/** What the client runner measured for one load point, over all its rounds so far. */
export interface PointResult {
  point: LoadPoint;
  /** Rounds accumulated into this result. */
  rounds: number;
  /** Measurement windows, summed over the rounds, seconds. */
  seconds: number;
  /** Successes whose latency was recorded (closed loop: completed in a window; open loop: intended in one). */
  completed: number;
  /** Successes completed inside the windows (throughput and CPU per request are based on these). */
  completedInWindows: number;
  errors: number;
  /** Open loop: requests still outstanding when the drain timed out (recorded at their lower-bound latency). */
  incomplete: number;
  /**
   * Headline throughput (req/s) and latency (µs): the median over the rounds of each round's
   * figure. A stall caused by another tenant of the machine spoils one round, not the result.
   */
  throughput: number;
  latencyUs: LatencySummary;
  /** The same figures over all rounds pooled into one histogram. */
  pooled: RoundResult;
  perRound: RoundResult[];
  /** Client process CPU (user + system, every thread) per request completed in the windows, µs. */
  cpuUsPerRequest: number;
  /**
   * JS heap bytes allocated by the client process per request completed in the windows, pooled over
   * the rounds: the heap's growth over each window plus what every GC inside it freed (node:v8
   * `GCProfiler`, which records the heap before and after each GC). Undefined if it could not be measured.
   */
  bytesPerRequest?: number;
  /** Client process RSS at the end of the point, MiB. */
  rssMiB: number;
  /** First error message seen, to explain a non-zero error count. */
  firstError: string | undefined;
  /** Sidecar processes' CPU per completed request (µs) and RSS (MiB), filled in by the orchestrator. */
  proxyCpuUsPerRequest?: number;
  proxyRssMiB?: number;
}

/** Messages from the orchestrator to a client runner. */
export type ParentMessage =
  /**
   * Run one round of a load point. Rounds with the same `key` accumulate (histogram, counts,
   * CPU) and each result is the total so far: a point is measured in several short rounds,
   * interleaved with the other setups, so that a drift in the machine's load is shared.
   */
  { type: 'run'; id: number; key: string; point: LoadPoint } | { type: 'close' };

/** Messages from a client runner to the orchestrator. */
export type ChildMessage =
  | { type: 'ready' }
  | { type: 'window-start'; id: number }
  | { type: 'window-end'; id: number }
  | { type: 'result'; id: number; result: PointResult }
  | { type: 'fatal'; message: string };

/** Microbenchmark results (bench/micro.ts). */
export interface MicroResults {
  /** ns per `pick()` for each balancer and endpoint count, and the picker's construction time. */
  pick: Array<{ balancer: string; endpoints: number; nsPerPick: number; buildUs: number }>;
  /** The whole core stack per call over a transport that resolves at once. */
  stack: Array<{ name: string; label: string; nsPerCall: number; bytesPerCall: number | undefined }>;
  /** Bytes allocated per HTTP request (sequential requests to the upstreams), per client. */
  alloc: Array<{ setup: string; label: string; bytesPerRequest: number | undefined }>;
  /** meshlet's own added cost with an OpenTelemetry SDK, net of what the SDK itself costs (absent in older runs). */
  otel?: OtelCost;
  /** `mesh.update()` and `createMesh` at scale (absent in older runs). */
  update?: UpdateTiming[];
  /** Sections that failed, with the reason: the other sections are still reported. */
  failed?: Array<{ section: string; reason: string }>;
  /** How each figure was measured, and anything that could not be. */
  notes: string[];
}

/** One variant of the telemetry micro-benchmark: ns and bytes per call. */
export interface CostPerCall {
  label: string;
  nsPerCall: number;
  bytesPerCall: number | undefined;
}

/**
 * meshlet's added cost with an SDK = (b − a) − c: (a) mesh.call with default policies and no SDK,
 * (b) the same with an SDK, (c) the SDK alone doing what an instrumented application does per request.
 */
export interface OtelCost {
  noSdk: CostPerCall;
  withSdk: CostPerCall;
  sdkAlone: CostPerCall;
  /** (b − a) − c, ns per call. */
  addedNs: number;
  /** (b − a) − c, bytes per call; undefined when one of the three could not be measured. */
  addedBytes: number | undefined;
  /** What meshlet hands to the SDK per call (one attempt per call here), counted through wrapping providers. */
  perCall:
    | {
        spans: number;
        spanAttributes: number;
        events: number;
        metricRecords: number;
        /** Attribute objects passed to the SDK (events, records, span options). */
        attributeObjects: number;
        /** Of those, objects not seen before in the run (allocated per call rather than reused). */
        newAttributeObjects: number;
        /** Keys over all attribute objects. */
        attributeKeys: number;
      }
    | undefined;
}

/** One `mesh.update()` / `createMesh` measurement, and the first call over an instant transport after it. */
export interface UpdateTiming {
  /** Balancer of the service(s) involved. */
  balancer: string;
  /** What was done, e.g. `update 0 → 10,000 endpoints`. */
  step: string;
  /** Median over the repetitions, ms. */
  ms: number;
  /** The first `mesh.call` after it (the picker is built or first used there), median ms. */
  firstCallMs: number;
  /** Every repetition, ms. */
  samplesMs: number[];
}
