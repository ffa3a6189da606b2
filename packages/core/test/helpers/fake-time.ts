import { afterEach, beforeEach, mock } from 'node:test';

/**
 * A mesh clock and Node's faked `setTimeout` that move together, for the tests of one `describe`:
 * each test starts at 1000 ms with `setTimeout` faked; `advance(ms)` moves both, then lets promise
 * chains (p-retry's included) run, since `setImmediate` is not faked.
 */
export function fakeTime(): { now: () => number; advance: (ms: number) => Promise<void> } {
  let now = 0;
  beforeEach(() => {
    now = 1000;
    mock.timers.enable({ apis: ['setTimeout'] });
  });
  afterEach(() => {
    mock.timers.reset();
  });
  return {
    now: () => now,
    advance: async (ms) => {
      now += ms;
      mock.timers.tick(ms);
      for (let i = 0; i < 3; i++) await new Promise((resolve) => setImmediate(resolve));
    },
  };
}
