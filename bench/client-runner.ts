/**
 * A child process that runs one client module under the load points the orchestrator sends
 * over IPC, and reports latency, throughput, CPU and RSS per point. Every setup (and every
 * protocol) runs through this one runner so the loops and the accounting are identical.
 *
 * argv: <client module name> <targets as JSON array> <path>
 */
import { createHistogram, type RecordableHistogram } from 'node:perf_hooks';
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

function errorText(err: unknown): string {
  if (err instanceof Error) {
    const code = (err as { code?: unknown }).code;
    return `${err.name}${typeof code === 'string' ? ` ${code}` : ''}: ${err.message}`;
  }
  return String(err);
}

const sleep = (ms: number): Promise<void> => new Promise((resolve) => setTimeout(resolve, ms));

async function runClosed(client: BenchClient, point: ClosedLoopPoint, id: number): Promise<PointResult> {
  const histogram = newHistogram();
  let measuring = false;
  let stop = false;
  let completed = 0;
  let errors = 0;
  let firstError: string | undefined;

  const worker = async (): Promise<void> => {
    while (!stop) {
      const start = nowNs();
      try {
        await client.send();
        if (measuring) {
          recordNs(histogram, nowNs() - start);
          completed++;
        }
      } catch (err) {
        if (measuring) {
          errors++;
          firstError ??= errorText(err);
        }
      }
    }
  };
  const workers = Array.from({ length: point.concurrency }, worker);

  await sleep(point.warmupMs);
  measuring = true;
  send({ type: 'window-start', id });
  const cpu0 = cpuMicros();
  const t0 = nowNs();
  await sleep(point.durationMs);
  const t1 = nowNs();
  const cpu1 = cpuMicros();
  measuring = false;
  send({ type: 'window-end', id });
  stop = true;
  await Promise.all(workers);

  const seconds = (t1 - t0) / 1e9;
  return {
    point,
    seconds,
    completed,
    errors,
    incomplete: 0,
    throughput: completed / seconds,
    latencyUs: summarize(histogram),
    cpuUsPerRequest: completed > 0 ? (cpu1 - cpu0) / completed : 0,
    rssMiB: process.memoryUsage.rss() / 2 ** 20,
    firstError,
  };
}

/**
 * Open loop: the i-th request is due at start + i/rate. A timer wakes up (at best every
 * millisecond, Node's timer resolution) and sends everything that is due; latency runs from
 * the intended time, so time spent waiting for the timer, for the event loop or in the
 * client-side queue is charged to the request, as a real caller would see it.
 */
async function runOpen(client: BenchClient, point: OpenLoopPoint, id: number): Promise<PointResult> {
  const histogram = newHistogram();
  const intervalNs = 1e9 / point.rate;
  const start = nowNs() + 1e6;
  const windowStart = start + point.warmupMs * 1e6;
  const windowEnd = windowStart + point.durationMs * 1e6;
  const total = Math.floor((point.warmupMs + point.durationMs) * 1e6 / intervalNs);

  let next = 0;
  let inFlight = 0;
  let finished = false;
  // Requests due while maxInFlight were outstanding: their intended times, FIFO.
  const queue: number[] = [];
  let queueHead = 0;
  // Requests intended inside the window that have not finished yet, for the drain.
  const pendingInWindow = new Set<number>();
  let completed = 0;
  let completedByTime = 0;
  let errors = 0;
  let firstError: string | undefined;
  let cpu0 = 0;
  let cpu1 = 0;
  let windowOpen = false;
  let windowClosed = false;
  let onIdle: (() => void) | undefined;

  const checkWindow = (now: number): void => {
    if (!windowOpen && now >= windowStart) {
      windowOpen = true;
      cpu0 = cpuMicros();
      send({ type: 'window-start', id });
    }
    if (windowOpen && !windowClosed && now >= windowEnd) {
      windowClosed = true;
      cpu1 = cpuMicros();
      send({ type: 'window-end', id });
    }
  };

  const fire = (intended: number): void => {
    inFlight++;
    const inWindow = intended >= windowStart && intended < windowEnd;
    if (inWindow) pendingInWindow.add(intended);
    const done = (err: unknown): void => {
      inFlight--;
      if (finished) return;
      const now = nowNs();
      if (windowOpen && !windowClosed && err === undefined) completedByTime++;
      if (inWindow) {
        pendingInWindow.delete(intended);
        if (err === undefined) {
          recordNs(histogram, now - intended);
          completed++;
        } else {
          errors++;
          firstError ??= errorText(err);
        }
      }
      if (queueHead < queue.length && inFlight < point.maxInFlight) fire(queue[queueHead++]);
      if (onIdle !== undefined && pendingInWindow.size === 0 && next >= total) onIdle();
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
        if (inFlight < point.maxInFlight) fire(intended);
        else queue.push(intended);
      }
      if (next >= total && now >= windowEnd) {
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
  const incomplete = pendingInWindow.size;
  for (const intended of pendingInWindow) recordNs(histogram, end - intended);
  queue.length = 0;

  const seconds = point.durationMs / 1e3;
  return {
    point,
    seconds,
    completed,
    errors,
    incomplete,
    throughput: completedByTime / seconds,
    latencyUs: summarize(histogram),
    cpuUsPerRequest: completedByTime > 0 ? (cpu1 - cpu0) / completedByTime : 0,
    rssMiB: process.memoryUsage.rss() / 2 ** 20,
    firstError,
  };
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

  let busy: Promise<void> = Promise.resolve();
  process.on('message', (message: ParentMessage) => {
    if (message.type === 'close') {
      void busy.then(close);
      return;
    }
    const run = async (point: LoadPoint): Promise<void> => {
      const result = point.mode === 'closed' ? await runClosed(client, point, message.id) : await runOpen(client, point, message.id);
      send({ type: 'result', id: message.id, result });
    };
    busy = busy.then(() => run(message.point)).catch((err: unknown) => send({ type: 'fatal', message: errorText(err) }));
  });
  send({ type: 'ready' });
}

main().catch((err: unknown) => {
  send({ type: 'fatal', message: err instanceof Error ? (err.stack ?? err.message) : String(err) });
  process.exitCode = 1;
  process.disconnect?.();
});
