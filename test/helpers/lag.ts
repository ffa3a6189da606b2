// Event-loop lag during a timed step. A deadline is a timer: when this process's event loop is
// late (other test processes on a shared 2-core CI box), every timer fires that much later and
// no library can do better. Tests that hold the mesh to "within deadline + N ms" add the loop's
// measured lateness over the step to N, so they measure the mesh's time, not the machine's.

/** Ticks of the lag probe; a tick later than this by more than STALL_MS counts as a stall. */
const TICK_MS = 5;
const STALL_MS = 5;

/**
 * Runs `step` and returns its result with `lagMs`, the total time the event loop stalled while it
 * ran: the sum of every stall, not only the longest, since a call's end can be held up by more
 * than one (its deadline timer fires late, then its rejection is delivered late). Jitter below
 * STALL_MS is not counted, so on an idle machine `lagMs` stays near 0.
 */
export async function withLag<T>(step: () => Promise<T>): Promise<{ value: T; lagMs: number }> {
  let stalled = 0;
  let last = performance.now();
  const tick = (): void => {
    const now = performance.now();
    const late = now - last - TICK_MS;
    if (late > STALL_MS) stalled += late;
    last = now;
  };
  const probe = setInterval(tick, TICK_MS);
  try {
    const value = await step();
    // One more probe interval, so that a stall just before the step ended is counted.
    await new Promise((r) => setTimeout(r, TICK_MS + 1));
    tick();
    return { value, lagMs: stalled };
  } finally {
    clearInterval(probe);
  }
}
