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
  /** Requests in flight beyond which new sends wait in a client-side queue (still timed from their intended time). */
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

/** What the client runner measured for one load point. */
export interface PointResult {
  point: LoadPoint;
  /** Measurement window actually used, seconds. */
  seconds: number;
  /** Requests completed successfully inside the measurement window (open loop: requests intended in it). */
  completed: number;
  errors: number;
  /** Open loop: requests still outstanding when the drain timed out (recorded at their lower-bound latency). */
  incomplete: number;
  /** Completed requests per second. */
  throughput: number;
  latencyUs: LatencySummary;
  /** Client process CPU (user + system, every thread) per completed request, µs. */
  cpuUsPerRequest: number;
  /** Client process RSS at the end of the point, MiB. */
  rssMiB: number;
  /** First error message seen, to explain a non-zero error count. */
  firstError: string | undefined;
  /** Sidecar processes' CPU per completed request (µs) and RSS (MiB), filled in by the orchestrator. */
  proxyCpuUsPerRequest?: number;
  proxyRssMiB?: number;
}

/** Messages from the orchestrator to a client runner. */
export type ParentMessage = { type: 'run'; id: number; point: LoadPoint } | { type: 'close' };

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
  /** How each figure was measured, and anything that could not be. */
  notes: string[];
}
