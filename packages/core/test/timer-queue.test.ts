import { describe, it } from 'node:test';
import assert from 'node:assert/strict';
import { TimerQueue, type TimerEntry } from '../src/timer-queue.js';
import { systemClock } from '../src/clock.js';

function entry(log: string[], name: string): TimerEntry {
  return {
    timerPrev: undefined,
    timerNext: undefined,
    timerAt: -1,
    onTimer: () => log.push(`${name}@${Math.round(performance.now())}`),
  };
}

const sleep = (ms: number): Promise<void> => new Promise((r) => setTimeout(r, ms));

describe('TimerQueue', () => {
  it('fires entries in order, each no earlier than ~1 ms before its time', async () => {
    const q = new TimerQueue(systemClock);
    const log: string[] = [];
    const now = performance.now();
    const fired: number[] = [];
    const at = [now + 20, now + 40, now + 60];
    at.forEach((t, i) => {
      const e = entry(log, String(i));
      e.onTimer = () => fired.push(performance.now() - t);
      assert.equal(q.add(e, t, now), true);
    });
    await sleep(120);
    assert.equal(fired.length, 3);
    for (const lateness of fired) assert.ok(lateness >= -1, `fired ${-lateness} ms early`);
  });

  it('refuses an entry due before the tail, so the caller can use its own timer', () => {
    const q = new TimerQueue(systemClock);
    const now = performance.now();
    assert.equal(q.add(entry([], 'a'), now + 100, now), true);
    const early = entry([], 'b');
    assert.equal(q.add(early, now + 50, now), false);
    assert.equal(early.timerAt, -1);
    q.clear();
  });

  it('removed entries never fire; the rest still do', async () => {
    const q = new TimerQueue(systemClock);
    const log: string[] = [];
    const now = performance.now();
    const a = entry(log, 'a');
    const b = entry(log, 'b');
    const c = entry(log, 'c');
    q.add(a, now + 15, now);
    q.add(b, now + 20, now);
    q.add(c, now + 25, now);
    q.remove(a);
    q.remove(c);
    q.remove(c); // twice is harmless
    await sleep(60);
    assert.deepEqual(
      log.map((l) => l.split('@')[0]),
      ['b'],
    );
    assert.equal(b.timerAt, -1);
  });

  it('clear drops everything and leaves no timer keeping the process alive', async () => {
    const before = process.getActiveResourcesInfo().filter((r) => r === 'Timeout').length;
    const q = new TimerQueue(systemClock);
    const log: string[] = [];
    const now = performance.now();
    q.add(entry(log, 'a'), now + 10, now);
    assert.equal(process.getActiveResourcesInfo().filter((r) => r === 'Timeout').length, before + 1);
    q.clear();
    assert.equal(process.getActiveResourcesInfo().filter((r) => r === 'Timeout').length, before);
    await sleep(30);
    assert.deepEqual(log, []);
  });

  it('an emptied queue does not hold the event loop, a non-empty one does', () => {
    const count = (): number => process.getActiveResourcesInfo().filter((r) => r === 'Timeout').length;
    const before = count();
    const q = new TimerQueue(systemClock);
    const now = performance.now();
    const a = entry([], 'a');
    q.add(a, now + 1000, now);
    assert.equal(count(), before + 1);
    q.remove(a);
    assert.equal(count(), before);
    q.add(entry([], 'b'), now + 2000, now);
    assert.equal(count(), before + 1);
    q.clear();
  });
});
