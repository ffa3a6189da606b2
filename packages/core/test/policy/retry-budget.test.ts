import { describe, it } from 'node:test';
import assert from 'node:assert/strict';
import { RetryBudget } from '../../src/policy/retry-budget.js';

function fakeClock(start = 0): { now: () => number; t: number } {
  const clock = { t: start, now: () => clock.t };
  return clock;
}

function withdrawAll(budget: RetryBudget, limit = 10_000): number {
  let n = 0;
  while (n < limit && budget.tryWithdraw()) n++;
  return n;
}

describe('RetryBudget', () => {
  it('allows ratio × requests retries and refuses after', () => {
    const budget = new RetryBudget({ ratio: 0.2, minPerSecond: 0, ttlMs: 10_000 }, fakeClock());
    for (let i = 0; i < 100; i++) budget.deposit();
    assert.equal(budget.balance(), 20);
    assert.equal(withdrawAll(budget), 20);
    assert.equal(budget.tryWithdraw(), false);
    assert.equal(budget.balance(), 0);
  });

  it('adds a reserve of minPerSecond retries per second, one second of it available at once', () => {
    const clock = fakeClock(0);
    const budget = new RetryBudget({ ratio: 0.2, minPerSecond: 10, ttlMs: 10_000 }, clock);
    assert.equal(budget.balance(), 10);
    for (let i = 0; i < 50; i++) budget.deposit();
    assert.equal(withdrawAll(budget), 20); // 0.2 × 50 + 10 reserve
    clock.t = 500;
    assert.equal(withdrawAll(budget), 5); // half a second refills half the reserve
    clock.t = 60_000;
    assert.equal(budget.balance(), 10); // the reserve never holds more than one second's worth
  });

  it('holds a steady outage to ratio × requests + minPerSecond retries per second', () => {
    const clock = fakeClock(0);
    const budget = new RetryBudget({ ratio: 0.2, minPerSecond: 10, ttlMs: 10_000 }, clock);
    let requests = 0;
    let retries = 0;
    // 200 requests/s for 3 s, every one wanting up to 2 retries.
    for (let ms = 0; ms < 3_000; ms += 5) {
      clock.t = ms;
      budget.deposit();
      requests++;
      if (budget.tryWithdraw()) retries++;
      if (budget.tryWithdraw()) retries++;
    }
    assert.equal(requests, 600);
    assert.ok(retries <= 0.2 * 600 + 10 * 3 + 10, `retries ${retries}`);
    assert.ok(retries >= 0.2 * 600 + 10 * 3 - 2, `retries ${retries}`);
    assert.ok((requests + retries) / requests <= 1.3);
  });

  it('needs a whole token: 4 deposits at 0.2 allow no retry, the 5th allows one', () => {
    const budget = new RetryBudget({ ratio: 0.2, minPerSecond: 0, ttlMs: 10_000 }, fakeClock());
    for (let i = 0; i < 4; i++) budget.deposit();
    assert.equal(budget.tryWithdraw(), false);
    budget.deposit();
    assert.equal(budget.tryWithdraw(), true);
    assert.equal(budget.tryWithdraw(), false);
  });

  it('is exact where floats are not (0.1 × 10 and 0.7 × 10)', () => {
    for (const [ratio, deposits, expected] of [
      [0.1, 10, 1],
      [0.7, 10, 7],
      [0.3, 10, 3],
    ] as const) {
      const budget = new RetryBudget({ ratio, minPerSecond: 0, ttlMs: 10_000 }, fakeClock());
      for (let i = 0; i < deposits; i++) budget.deposit();
      assert.equal(withdrawAll(budget), expected, `ratio ${ratio}`);
    }
  });

  it('expires deposits after ttl', () => {
    const clock = fakeClock(0);
    const budget = new RetryBudget({ ratio: 1, minPerSecond: 0, ttlMs: 10_000 }, clock);
    for (let i = 0; i < 5; i++) budget.deposit();
    clock.t = 9_999;
    assert.equal(budget.balance(), 5);
    clock.t = 10_000;
    assert.equal(budget.balance(), 0);
    assert.equal(budget.tryWithdraw(), false);
  });

  it('expires deposits slot by slot', () => {
    const clock = fakeClock(0);
    const budget = new RetryBudget({ ratio: 1, minPerSecond: 0, ttlMs: 10_000 }, clock);
    budget.deposit(); // slot [0, 1000)
    clock.t = 5_000;
    budget.deposit();
    budget.deposit(); // slot [5000, 6000)
    clock.t = 10_500;
    assert.equal(budget.balance(), 2);
    clock.t = 15_000;
    assert.equal(budget.balance(), 0);
  });

  it('expires ratio-funded withdrawals after ttl', () => {
    const clock = fakeClock(0);
    const budget = new RetryBudget({ ratio: 1, minPerSecond: 0, ttlMs: 1_000 }, clock);
    budget.deposit();
    budget.deposit();
    assert.equal(withdrawAll(budget), 2);
    clock.t = 999;
    assert.equal(budget.tryWithdraw(), false); // 2 deposits − 2 withdrawals, still in the window
    clock.t = 1_000; // deposits and withdrawals leave the window together
    budget.deposit();
    budget.deposit();
    assert.equal(budget.balance(), 2); // had the withdrawals stayed, this would be 0
  });

  it('never reports a negative balance when deposits expire before withdrawals', () => {
    const clock = fakeClock(0);
    const budget = new RetryBudget({ ratio: 1, minPerSecond: 0, ttlMs: 10_000 }, clock);
    for (let i = 0; i < 5; i++) budget.deposit();
    clock.t = 5_000;
    assert.equal(withdrawAll(budget), 5);
    clock.t = 10_000; // deposits gone, withdrawals still count
    assert.equal(budget.balance(), 0);
    for (let i = 0; i < 5; i++) budget.deposit();
    assert.equal(budget.tryWithdraw(), false); // 5 − 5 = 0
    clock.t = 15_000; // withdrawals gone too
    assert.equal(budget.balance(), 5);
  });

  it('survives a long idle period and a clock far from zero', () => {
    const clock = fakeClock(123_456_789.5);
    const budget = new RetryBudget({ ratio: 0.5, minPerSecond: 0, ttlMs: 10_000 }, clock);
    budget.deposit();
    budget.deposit();
    assert.equal(budget.balance(), 1);
    clock.t += 3_600_000;
    assert.equal(budget.balance(), 0);
    budget.deposit();
    budget.deposit();
    assert.equal(budget.tryWithdraw(), true);
  });
});
