/**
 * A child process that runs one client module under the load points the orchestrator sends
 * over IPC, and reports latency, throughput, CPU and RSS per point. Every setup (and every
 * protocol) runs through this one runner so the loops and the accounting are identical.
 *
 * argv: <client module name> <targets as JSON array> <path>
 */
import { createHistogram, type RecordableHistogram } from 'node:perf_hooks';
import v8 from 'node:v8';
import type {
  BenchClient,
  ChildMessage,
  ClientModule,
  ClosedLoopPoint,
  LatencySummary,
  LoadPoint,
  OpenLoopPoint,
  ParentMessage,
  PointResult,
  RoundResult,
} from './lib/types.ts';

function send(message: ChildMessage): void {
  process.send?.(message);
}

/** Monotonic nanoseconds as a double: exact to the ns for ~100 days, and cheaper to do maths on than bigint. */
const epoch = process.hrtime.bigint();
function nowNs(): number {
  return Number(process.hrtime.bigint() - epoch);
}

function newHistogram(): RecordableHistogram {
  // Nanoseconds, 3 significant figures: 0.1% resolution at every magnitude.
  return createHistogram({ lowest: 1, highest: 600e9, figures: 3 });
}

function recordNs(histogram: RecordableHistogram, ns: number): void {
  histogram.record(Math.max(1, Math.min(600e9, Math.round(ns))));
}

function summarize(histogram: RecordableHistogram): LatencySummary {
  if (histogram.count === 0) return { p50: 0, p90: 0, p99: 0, p999: 0, max: 0, mean: 0 };
  const us = (ns: number): number => Math.round(ns / 10) / 100;
  return {
    p50: us(histogram.percentile(50)),
    p90: us(histogram.percentile(90)),
    p99: us(histogram.percentile(99)),
    p999: us(histogram.percentile(99.9)),
    max: us(histogram.max),
    mean: us(histogram.mean),
  };
}

function cpuMicros(): number {
  const usage = process.cpuUsage();
  return usage.user + usage.system;
}

/**
 * JS heap bytes allocated between `start()` and `stop()`: the heap's growth plus what every GC in
 * between freed. node:v8's GCProfiler (Node >= 18.15) records the heap statistics before and after
 * each GC; `v8.getHeapStatistics()` has no allocation counter on Node 20, and a bare heap delta
 * is wrong as soon as one scavenge runs (several per second under load).
 */
class AllocationMeter {
  private profiler: v8.GCProfiler | undefined;
  private used0 = 0;

  start(): void {
    try {
      this.profiler = new v8.GCProfiler();
      this.profiler.start();
    } catch {
      this.profiler = undefined;
    }
    this.used0 = v8.getHeapStatistics().used_heap_size;
  }

  /** Bytes allocated since `start()`, or undefined when the GC profiler is unavailable. */
  stop(): number | undefined {
    const used1 = v8.getHeapStatistics().used_heap_size;
    const profiler = this.profiler;
    this.profiler = undefined;
    if (profiler === undefined) return undefined;
    const profile = profiler.stop() as { statistics?: Array<{ beforeGC: GcHeap; afterGC: GcHeap }> } | undefined;
    let freed = 0;
    for (const gc of profile?.statistics ?? []) {
      freed += gc.beforeGC.heapStatistics.usedHeapSize - gc.afterGC.heapStatistics.usedHeapSize;
    }
    return Math.max(0, used1 - this.used0 + freed);
  }
}

interface GcHeap {
  heapStatistics: { usedHeapSize: number };
}

function errorText(err: unknown): string {
  if (err instanceof Error) {
    const code = (err as { code?: unknown }).code;
    return `${err.name}${typeof code === 'string' ? ` ${code}` : ''}: ${err.message}`;
  }
  return String(err);
}

const sleep = (ms: number): Promise<void> => new Promise((resolve) => setTimeout(resolve, ms));

/** What was measured in one round, or (merged) in every round of a load point. */
interface Accumulator {
  histogram: RecordableHistogram;
  rounds: number;
  seconds: number;
  /** Successes whose latency was recorded (closed: completed in the window; open: intended in it). */
  completed: number;
  /** Successes completed inside the window, for throughput and CPU per request. */
  completedByTime: number;
  errors: number;
  incomplete: number;
  cpuMicros: number;
  /** JS heap bytes allocated in the windows; undefined once one window could not be measured. */
  allocatedBytes: number | undefined;
  firstError: string | undefined;
}

function newAccumulator(): Accumulator {
  return {
    histogram: newHistogram(),
    rounds: 0,
    seconds: 0,
    completed: 0,
    completedByTime: 0,
    errors: 0,
    incomplete: 0,
    cpuMicros: 0,
    allocatedBytes: 0,
    firstError: undefined,
  };
}

/** Adds one round into the point's accumulator and remembers the round's own figures. */
function merge(acc: Accumulator, round: Accumulator, perRound: RoundResult[]): void {
  acc.histogram.add(round.histogram);
  acc.rounds += round.rounds;
  acc.seconds += round.seconds;
  acc.completed += round.completed;
  acc.completedByTime += round.completedByTime;
  acc.errors += round.errors;
  acc.incomplete += round.incomplete;
  acc.cpuMicros += round.cpuMicros;
  acc.allocatedBytes =
    acc.allocatedBytes === undefined || round.allocatedBytes === undefined
      ? undefined
      : acc.allocatedBytes + round.allocatedBytes;
  acc.firstError ??= round.firstError;
  const n = round.completedByTime;
  perRound.push({
    throughput: round.seconds > 0 ? n / round.seconds : 0,
    latencyUs: summarize(round.histogram),
    cpuUsPerRequest: n > 0 ? round.cpuMicros / n : 0,
    ...(round.allocatedBytes === undefined || n === 0 ? {} : { bytesPerRequest: round.allocatedBytes / n }),
  });
}

function median(values: number[]): number {
  const sorted = [...values].sort((a, b) => a - b);
  const mid = sorted.length >> 1;
  return sorted.length % 2 === 1 ? sorted[mid] : (sorted[mid - 1] + sorted[mid]) / 2;
}

function toResult(point: LoadPoint, acc: Accumulator, perRound: RoundResult[]): PointResult {
  const lat = (key: keyof LatencySummary): number => median(perRound.map((r) => r.latencyUs[key]));
  return {
    point,
    rounds: acc.rounds,
    seconds: acc.seconds,
    completed: acc.completed,
    completedInWindows: acc.completedByTime,
    errors: acc.errors,
    incomplete: acc.incomplete,
    throughput: median(perRound.map((r) => r.throughput)),
    latencyUs: {
      p50: lat('p50'),
      p90: lat('p90'),
      p99: lat('p99'),
      p999: lat('p999'),
      max: Math.max(...perRound.map((r) => r.latencyUs.max)),
      mean: lat('mean'),
    },
    pooled: {
      throughput: acc.seconds > 0 ? acc.completedByTime / acc.seconds : 0,
      latencyUs: summarize(acc.histogram),
    },
    perRound,
    cpuUsPerRequest: acc.completedByTime > 0 ? acc.cpuMicros / acc.completedByTime : 0,
    ...(acc.allocatedBytes === undefined || acc.completedByTime === 0
      ? {}
      : { bytesPerRequest: acc.allocatedBytes / acc.completedByTime }),
    rssMiB: process.memoryUsage.rss() / 2 ** 20,
    firstError: acc.firstError,
  };
}

async function runClosed(client: BenchClient, point: ClosedLoopPoint, id: number, acc: Accumulator): Promise<void> {
  let measuring = false;
  let stop = false;

  const worker = async (): Promise<void> => {
    while (!stop) {
      const start = nowNs();
      try {
        await client.send();
        if (measuring) {
          recordNs(acc.histogram, nowNs() - start);
          acc.completed++;
          acc.completedByTime++;
        }
      } catch (err) {
        if (measuring) {
          acc.errors++;
          acc.firstError ??= errorText(err);
        }
      }
    }
  };
  const workers = Array.from({ length: point.concurrency }, worker);

  await sleep(point.warmupMs);
  measuring = true;
  send({ type: 'window-start', id });
  const alloc = new AllocationMeter();
  alloc.start();
  const cpu0 = cpuMicros();
  const t0 = nowNs();
  await sleep(point.durationMs);
  const t1 = nowNs();
  const cpu1 = cpuMicros();
  const allocated = alloc.stop();
  measuring = false;
  send({ type: 'window-end', id });
  stop = true;
  await Promise.all(workers);

  acc.rounds++;
  acc.seconds += (t1 - t0) / 1e9;
  acc.cpuMicros += cpu1 - cpu0;
  acc.allocatedBytes = allocated;
}

/**
 * Open loop: the i-th request is due at start + i/rate. A timer wakes up (at best every
 * millisecond, Node's timer resolution) and sends everything that is due; latency runs from
 * the intended time, so time spent waiting for the timer, for the event loop or in the
 * client-side queue is charged to the request, as a real caller would see it.
 */
async function runOpen(client: BenchClient, point: OpenLoopPoint, id: number, acc: Accumulator): Promise<void> {
  const intervalNs = 1e9 / point.rate;
  const start = nowNs() + 1e6;
  const windowStart = start + point.warmupMs * 1e6;
  const windowEnd = windowStart + point.durationMs * 1e6;
  const total = Math.floor(((point.warmupMs + point.durationMs) * 1e6) / intervalNs);

  let next = 0;
  let inFlight = 0;
  let finished = false;
  // Requests due while maxInFlight were outstanding: their intended times, FIFO.
  const queue: number[] = [];
  let queueHead = 0;
  // Requests intended inside the window that have not finished yet, for the drain.
  const pendingInWindow = new Set<number>();
  let cpu0 = 0;
  let cpu1 = 0;
  const alloc = new AllocationMeter();
  let allocated: number | undefined;
  let windowOpen = false;
  let windowClosed = false;
  let onIdle: (() => void) | undefined;
  let onSettled: (() => void) | undefined;

  const checkWindow = (now: number): void => {
    if (!windowOpen && now >= windowStart) {
      windowOpen = true;
      alloc.start();
      cpu0 = cpuMicros();
      send({ type: 'window-start', id });
    }
    if (windowOpen && !windowClosed && now >= windowEnd) {
      windowClosed = true;
      cpu1 = cpuMicros();
      allocated = alloc.stop();
      send({ type: 'window-end', id });
    }
  };

  const fire = (intended: number): void => {
    inFlight++;
    const inWindow = intended >= windowStart && intended < windowEnd;
    const done = (err: unknown): void => {
      inFlight--;
      if (finished) {
        if (inFlight === 0) onSettled?.();
        return;
      }
      const now = nowNs();
      if (windowOpen && !windowClosed && err === undefined) acc.completedByTime++;
      if (inWindow) {
        pendingInWindow.delete(intended);
        if (err === undefined) {
          recordNs(acc.histogram, now - intended);
          acc.completed++;
        } else {
          acc.errors++;
          acc.firstError ??= errorText(err);
        }
      }
      if (queueHead < queue.length && inFlight < point.maxInFlight) fire(queue[queueHead++]);
      if (onIdle !== undefined && pendingInWindow.size === 0) onIdle();
    };
    client.send().then(
      () => done(undefined),
      (err: unknown) => done(err ?? new Error('rejected')),
    );
  };

  await new Promise<void>((resolve) => {
    const tick = (): void => {
      const now = nowNs();
      checkWindow(now);
      const due = Math.min(total, Math.floor((now - start) / intervalNs) + 1);
      while (next < due) {
        const intended = start + next * intervalNs;
        next++;
        // Tracked from the moment it is due, so one still queued at the end counts as unfinished.
        if (intended >= windowStart && intended < windowEnd) pendingInWindow.add(intended);
        if (inFlight < point.maxInFlight) fire(intended);
        else queue.push(intended);
      }
      if (next >= total && windowClosed) {
        resolve();
        return;
      }
      const wake = Math.min(start + next * intervalNs, windowClosed ? Infinity : windowEnd);
      setTimeout(tick, Math.max(0, (wake - nowNs()) / 1e6));
    };
    setTimeout(tick, 1);
  });

  // Drain: wait for the window's stragglers, then charge the rest their latency so far (a lower bound).
  if (pendingInWindow.size > 0) {
    await new Promise<void>((resolve) => {
      const timer = setTimeout(resolve, point.drainMs);
      onIdle = () => {
        clearTimeout(timer);
        resolve();
      };
    });
  }
  finished = true;
  const end = nowNs();
  acc.incomplete += pendingInWindow.size;
  for (const intended of pendingInWindow) recordNs(acc.histogram, end - intended);
  // Never sent: dropped. Sent: awaited (uncounted), so an overloaded setup's backlog does not
  // load the upstreams while the next setup is measured.
  queue.length = 0;
  if (inFlight > 0) {
    await new Promise<void>((resolve) => {
      const timer = setTimeout(resolve, 30_000);
      onSettled = () => {
        clearTimeout(timer);
        resolve();
      };
    });
  }

  acc.rounds++;
  acc.seconds += point.durationMs / 1e3;
  acc.cpuMicros += cpu1 - cpu0;
  acc.allocatedBytes = allocated;
}

async function main(): Promise<void> {
  const [clientName, targetsJson, path] = process.argv.slice(2);
  if (clientName === undefined || targetsJson === undefined || path === undefined) {
    throw new Error('usage: client-runner.ts <client> <targets JSON> <path>');
  }
  const mod = (await import(`./clients/${clientName}.ts`)) as ClientModule;
  const client = await mod.setup({ targets: JSON.parse(targetsJson) as string[], path });

  let closing = false;
  const close = async (): Promise<void> => {
    if (closing) return;
    closing = true;
    // Whatever happens, the process goes away: a hung close must not leave sockets behind.
    setTimeout(() => process.exit(0), 3000).unref();
    try {
      await client.close();
    } finally {
      process.exit(0);
    }
  };
  // The orchestrator died or closed the channel: do not outlive it.
  process.on('disconnect', () => void close());
  process.on('SIGINT', () => void close());
  process.on('SIGTERM', () => void close());

  const accumulators = new Map<string, { acc: Accumulator; perRound: RoundResult[] }>();
  let busy: Promise<void> = Promise.resolve();
  process.on('message', (message: ParentMessage) => {
    if (message.type === 'close') {
      void busy.then(close);
      return;
    }
    const { id, key, point } = message;
    const run = async (): Promise<void> => {
      let entry = accumulators.get(key);
      if (entry === undefined) accumulators.set(key, (entry = { acc: newAccumulator(), perRound: [] }));
      const round = newAccumulator();
      if (point.mode === 'closed') await runClosed(client, point, id, round);
      else await runOpen(client, point, id, round);
      merge(entry.acc, round, entry.perRound);
      send({ type: 'result', id, result: toResult(point, entry.acc, entry.perRound) });
    };
    busy = busy.then(run).catch((err: unknown) => send({ type: 'fatal', message: errorText(err) }));
  });
  send({ type: 'ready' });
}

main().catch((err: unknown) => {
  send({ type: 'fatal', message: err instanceof Error ? (err.stack ?? err.message) : String(err) });
  process.exitCode = 1;
  process.disconnect?.();
});
