import { describe, it } from 'node:test';
import assert from 'node:assert/strict';
import { ConcurrencyLimiter } from '../../src/policy/concurrency-limiter.js';

/** Settles pending promise callbacks. */
const flush = (): Promise<void> => new Promise((resolve) => setImmediate(resolve));

function track(p: Promise<void>, log: string[], name: string): void {
  p.then(
    () => log.push(`${name} ok`),
    (err: unknown) => log.push(`${name} ${(err as Error).message}`),
  );
}

function waiter(limiter: ConcurrencyLimiter, signal?: AbortSignal): Promise<void> {
  assert.equal(limiter.tryAcquire(), false);
  const p = limiter.acquire(signal);
  assert.ok(p instanceof Promise, 'expected to be queued');
  return p;
}

describe('ConcurrencyLimiter', () => {
  it('admits up to maxRequests on the fast path and counts releases', () => {
    const limiter = new ConcurrencyLimiter(2, 2);
    assert.equal(limiter.tryAcquire(), true);
    assert.equal(limiter.tryAcquire(), true);
    assert.equal(limiter.tryAcquire(), false);
    assert.equal(limiter.inFlight, 2);
    limiter.release();
    assert.equal(limiter.inFlight, 1);
    assert.equal(limiter.tryAcquire(), true);
    limiter.release();
    limiter.release();
    assert.equal(limiter.inFlight, 0);
    limiter.release(); // an extra release never goes negative
    assert.equal(limiter.inFlight, 0);
  });

  it('hands slots over to waiters in FIFO order without freeing them in between', async () => {
    const limiter = new ConcurrencyLimiter(1, 10);
    assert.equal(limiter.tryAcquire(), true);
    const log: string[] = [];
    track(waiter(limiter), log, 'a');
    track(waiter(limiter), log, 'b');
    track(waiter(limiter), log, 'c');
    assert.equal(limiter.pending, 3);

    limiter.release();
    assert.equal(limiter.inFlight, 1, 'the slot moved to a, it was not freed');
    assert.equal(limiter.pending, 2);
    assert.equal(limiter.tryAcquire(), false, 'a newcomer cannot jump the queue');
    await flush();
    assert.deepEqual(log, ['a ok']);

    limiter.release();
    limiter.release();
    await flush();
    assert.deepEqual(log, ['a ok', 'b ok', 'c ok']);
    assert.equal(limiter.inFlight, 1);
    assert.equal(limiter.pending, 0);
    limiter.release();
    assert.equal(limiter.inFlight, 0);
  });

  it('returns false when maxPending callers already wait', () => {
    const limiter = new ConcurrencyLimiter(1, 2);
    limiter.tryAcquire();
    void waiter(limiter);
    void waiter(limiter);
    assert.equal(limiter.acquire(), false);
    assert.equal(limiter.pending, 2);
  });

  it('maxPending 0 refuses any queueing', () => {
    const limiter = new ConcurrencyLimiter(1, 0);
    limiter.tryAcquire();
    assert.equal(limiter.acquire(), false);
  });

  it('an abort removes the waiter and rejects with the signal reason', async () => {
    const limiter = new ConcurrencyLimiter(1, 10);
    limiter.tryAcquire();
    const log: string[] = [];
    const ac = new AbortController();
    track(waiter(limiter), log, 'a');
    track(waiter(limiter, ac.signal), log, 'b');
    track(waiter(limiter), log, 'c');
    ac.abort(new Error('gave up'));
    assert.equal(limiter.pending, 2);
    await flush();
    assert.deepEqual(log, ['b gave up']);

    limiter.release();
    limiter.release();
    await flush();
    assert.deepEqual(log, ['b gave up', 'a ok', 'c ok']);
    assert.equal(limiter.inFlight, 1);
  });

  it('aborting the tail or the head keeps the queue intact', async () => {
    const limiter = new ConcurrencyLimiter(1, 10);
    limiter.tryAcquire();
    const log: string[] = [];
    const head = new AbortController();
    const tail = new AbortController();
    track(waiter(limiter, head.signal), log, 'a');
    track(waiter(limiter), log, 'b');
    track(waiter(limiter, tail.signal), log, 'c');
    tail.abort(new Error('tail'));
    head.abort(new Error('head'));
    track(waiter(limiter), log, 'd');
    limiter.release();
    limiter.release();
    await flush();
    assert.deepEqual(log, ['c tail', 'a head', 'b ok', 'd ok']);
    assert.equal(limiter.pending, 0);
  });

  it('an already-aborted signal rejects at once without queueing', async () => {
    const limiter = new ConcurrencyLimiter(1, 10);
    limiter.tryAcquire();
    const reason = new Error('already');
    await assert.rejects(limiter.acquire(AbortSignal.abort(reason)) as Promise<void>, (e) => e === reason);
    assert.equal(limiter.pending, 0);
  });

  it('an abort after the handover changes nothing: the caller owns the slot', async () => {
    const limiter = new ConcurrencyLimiter(1, 10);
    limiter.tryAcquire();
    const ac = new AbortController();
    const p = waiter(limiter, ac.signal);
    limiter.release();
    ac.abort(new Error('late'));
    await p;
    assert.equal(limiter.inFlight, 1);
    limiter.release();
    assert.equal(limiter.inFlight, 0);
  });

  it('setLimits: raising maxRequests admits waiters at once; lowering never drops them', async () => {
    const limiter = new ConcurrencyLimiter(1, 3);
    limiter.tryAcquire();
    const log: string[] = [];
    track(waiter(limiter), log, 'a');
    track(waiter(limiter), log, 'b');
    track(waiter(limiter), log, 'c');

    limiter.setLimits(1, 0);
    assert.equal(limiter.pending, 3, 'lowering maxPending keeps queued waiters');
    assert.equal(limiter.acquire(), false);

    limiter.setLimits(3, 0);
    await flush();
    assert.deepEqual(log, ['a ok', 'b ok']);
    assert.equal(limiter.inFlight, 3);
    assert.equal(limiter.pending, 1);

    limiter.setLimits(1, 0); // 3 in flight, limit 1: releases shrink before handing over
    limiter.release();
    limiter.release();
    await flush();
    assert.deepEqual(log, ['a ok', 'b ok']);
    assert.equal(limiter.inFlight, 1);
    limiter.release();
    await flush();
    assert.deepEqual(log, ['a ok', 'b ok', 'c ok']);
    assert.equal(limiter.inFlight, 1);
  });

  it('close rejects every waiter and later acquisitions', async () => {
    const limiter = new ConcurrencyLimiter(1, 10);
    limiter.tryAcquire();
    const log: string[] = [];
    track(waiter(limiter), log, 'a');
    track(waiter(limiter, new AbortController().signal), log, 'b');
    limiter.close(new Error('closed'));
    await flush();
    assert.deepEqual(log, ['a closed', 'b closed']);
    assert.equal(limiter.pending, 0);
    limiter.release();
    assert.equal(limiter.tryAcquire(), false);
    await assert.rejects(limiter.acquire() as Promise<void>, /closed/);
  });
});
