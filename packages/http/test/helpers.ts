// Shared by the inbound-adapter tests.
import { setTimeout as sleep } from 'node:timers/promises';

/** Polls `fn` until it returns a value (at most 3 s): span export and stats lag the client's response slightly. */
export async function eventually<T>(fn: () => T | undefined, what: string): Promise<T> {
  for (let i = 0; i < 300; i++) {
    const v = fn();
    if (v !== undefined) return v;
    await sleep(10);
  }
  throw new Error(`timed out waiting for ${what}`);
}
