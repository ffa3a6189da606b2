// Event-loop lag during a timed step. A deadline is a timer: when this process's event loop is
// late (other test processes on a shared 2-core CI box), every timer fires that much later and
// no library can do better. Tests that hold the mesh to "within deadline + N ms" add the loop's
// worst measured delay over the step to N, so they measure the mesh's time, not the machine's.
import { monitorEventLoopDelay } from 'node:perf_hooks';

/** Runs `step` and returns its result with the event loop's worst delay (ms) while it ran. */
export async function withLag<T>(step: () => Promise<T>): Promise<{ value: T; lagMs: number }> {
  const lag = monitorEventLoopDelay({ resolution: 5 });
  lag.enable();
  try {
    const value = await step();
    // One more sampling interval, so that a stall just before the step ended is recorded.
    await new Promise((r) => setTimeout(r, 6));
    return { value, lagMs: lag.max / 1e6 };
  } finally {
    lag.disable();
  }
}
