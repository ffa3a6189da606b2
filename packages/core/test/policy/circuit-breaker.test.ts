import { afterEach, beforeEach, describe, it, mock } from 'node:test';
import assert from 'node:assert/strict';
import {
  BreakerRejectedError,
  BreakerShared,
  EndpointBreaker,
  type BreakerState,
  type EndpointBreakerOptions,
} from '../../src/policy/circuit-breaker.js';

const ok = (): Promise<string> => Promise.resolve('ok');
const boom = (): Promise<string> => Promise.reject(new Error('boom'));
const never = (): boolean => false;
const always = (): boolean => true;

interface Harness {
  breaker: EndpointBreaker;
  states: BreakerState[];
  shared: BreakerShared;
  succeed(): Promise<string>;
  fail(): Promise<unknown>;
}

const DEFAULTS: EndpointBreakerOptions = {
  consecutiveFailures: 3,
  errorRatePercent: 0,
  minRequests: 10,
  windowMs: 10_000,
  backoff: { baseMs: 1_000, maxMs: 3_000 },
};

let cleanup: Array<() => void> = [];

/** random() = 0.5 makes the ±20% jitter exactly 0, so open times are exact. */
function harness(opts: Partial<EndpointBreakerOptions> = {}, random: () => number = () => 0.5): Harness {
  const shared = new BreakerShared(opts.windowMs ?? DEFAULTS.windowMs, random);
  const states: BreakerState[] = [];
  const breaker = new EndpointBreaker({ ...DEFAULTS, ...opts }, { onStateChange: (s) => states.push(s) }, shared);
  cleanup.push(() => {
    breaker.shutdown();
    shared.close();
  });
  return {
    breaker,
    states,
    shared,
    succeed: () => breaker.run(ok, never, always),
    fail: () =>
      breaker.run(boom, never, always).then(
        () => assert.fail('expected a rejection'),
        (err: unknown) => err,
      ),
  };
}

function deferred<T>(): { promise: Promise<T>; resolve(v: T): void; reject(e: unknown): void } {
  let resolve!: (v: T) => void;
  let reject!: (e: unknown) => void;
  const promise = new Promise<T>((res, rej) => {
    resolve = res;
    reject = rej;
  });
  return { promise, resolve, reject };
}

async function failTimes(h: Harness, n: number): Promise<void> {
  for (let i = 0; i < n; i++) {
    const err = await h.fail();
    assert.ok(!(err instanceof BreakerRejectedError), `attempt ${i + 1} was rejected by the breaker`);
  }
}

describe('EndpointBreaker', () => {
  beforeEach(() => {
    mock.timers.enable({ apis: ['setTimeout', 'setInterval', 'Date'], now: 0 });
  });
  afterEach(() => {
    for (const c of cleanup) c();
    cleanup = [];
    mock.timers.reset();
  });

  it('passes results and errors through while closed', async () => {
    const h = harness();
    assert.equal(await h.succeed(), 'ok');
    const err = await h.fail();
    assert.ok(err instanceof Error && err.message === 'boom');
    assert.equal(h.breaker.state, 'closed');
  });

  it('opens after N consecutive failures, not N−1', async () => {
    const h = harness({ consecutiveFailures: 3 });
    await failTimes(h, 2);
    assert.equal(h.breaker.state, 'closed');
    await failTimes(h, 1);
    assert.equal(h.breaker.state, 'open');
    assert.deepEqual(h.states, ['open']);

    let called = false;
    await assert.rejects(
      h.breaker.run(
        () => {
          called = true;
          return ok();
        },
        never,
        always,
      ),
      BreakerRejectedError,
    );
    assert.equal(called, false, 'an open breaker must not run the attempt');
  });

  it('a success resets the consecutive count', async () => {
    const h = harness({ consecutiveFailures: 3 });
    await failTimes(h, 2);
    await h.succeed();
    await failTimes(h, 2);
    assert.equal(h.breaker.state, 'closed');
  });

  it('counts a failure-classified result as a failure and still returns it', async () => {
    const h = harness({ consecutiveFailures: 2 });
    const response = { status: 503 };
    const isFailure = (r: { status: number }): boolean => r.status >= 500;
    assert.equal(await h.breaker.run(() => Promise.resolve(response), isFailure, always), response);
    assert.equal(h.breaker.state, 'closed');
    assert.equal(await h.breaker.run(() => Promise.resolve(response), isFailure, always), response);
    assert.equal(h.breaker.state, 'open');
  });

  it('an error that is not a failure neither counts nor resets the count', async () => {
    const h = harness({ consecutiveFailures: 3 });
    const aborted = new Error('aborted by caller');
    const abort = (): Promise<string> => Promise.reject(aborted);
    for (let i = 0; i < 5; i++) {
      await assert.rejects(h.breaker.run(abort, never, never), (e) => e === aborted);
    }
    assert.equal(h.breaker.state, 'closed');
    await failTimes(h, 2);
    await assert.rejects(h.breaker.run(abort, never, never), (e) => e === aborted);
    await failTimes(h, 1);
    assert.equal(h.breaker.state, 'open');
  });

  it('half-opens after the open time and lets exactly one probe through; success closes', async () => {
    const h = harness({ consecutiveFailures: 1, backoff: { baseMs: 1_000, maxMs: 60_000 } });
    await failTimes(h, 1);
    mock.timers.tick(999);
    assert.equal(h.breaker.state, 'open');
    mock.timers.tick(1);
    assert.equal(h.breaker.state, 'half-open');

    const probe = deferred<string>();
    const probeResult = h.breaker.run(() => probe.promise, never, always);
    await assert.rejects(h.succeed(), BreakerRejectedError);
    probe.resolve('probed');
    assert.equal(await probeResult, 'probed');
    assert.equal(h.breaker.state, 'closed');
    assert.deepEqual(h.states, ['open', 'half-open', 'closed']);
    assert.equal(await h.succeed(), 'ok');
  });

  it('a failed probe reopens for longer each time, capped, and closing resets the backoff', async () => {
    const h = harness({ consecutiveFailures: 2, backoff: { baseMs: 1_000, maxMs: 3_000 } });
    await failTimes(h, 2);

    const expectOpenFor = async (ms: number): Promise<void> => {
      assert.equal(h.breaker.state, 'open');
      mock.timers.tick(ms - 1);
      assert.equal(h.breaker.state, 'open', `still open just before ${ms} ms`);
      mock.timers.tick(1);
      assert.equal(h.breaker.state, 'half-open', `half-open at ${ms} ms`);
    };

    await expectOpenFor(1_000);
    await failTimes(h, 1); // the probe fails: one failure reopens, whatever the threshold
    await expectOpenFor(2_000);
    await failTimes(h, 1);
    await expectOpenFor(3_000); // 4 000 capped at maxMs
    await failTimes(h, 1);
    await expectOpenFor(3_000);
    await h.succeed();
    assert.equal(h.breaker.state, 'closed');

    await failTimes(h, 2);
    await expectOpenFor(1_000);
  });

  it('jitters the open time by ±20%', async () => {
    const h = harness({ consecutiveFailures: 1, backoff: { baseMs: 1_000, maxMs: 60_000 } }, () => 0);
    await failTimes(h, 1);
    mock.timers.tick(799);
    assert.equal(h.breaker.state, 'open');
    mock.timers.tick(1);
    assert.equal(h.breaker.state, 'half-open');
  });

  it('a probe that ends without a verdict reopens at the same backoff step', async () => {
    const h = harness({ consecutiveFailures: 1, backoff: { baseMs: 1_000, maxMs: 60_000 } });
    await failTimes(h, 1);
    mock.timers.tick(1_000);
    assert.equal(h.breaker.state, 'half-open');
    await assert.rejects(h.breaker.run(() => Promise.reject(new Error('aborted')), never, never));
    assert.equal(h.breaker.state, 'open');
    mock.timers.tick(999);
    assert.equal(h.breaker.state, 'open');
    mock.timers.tick(1);
    assert.equal(h.breaker.state, 'half-open');
  });

  it('error-rate rule: opens above X% only once minRequests attempts are in the window', async () => {
    const h = harness({ consecutiveFailures: 0, errorRatePercent: 50, minRequests: 10 });
    await failTimes(h, 9);
    assert.equal(h.breaker.state, 'closed', '9 attempts < minRequests');
    await failTimes(h, 1);
    assert.equal(h.breaker.state, 'open');
  });

  it('error-rate rule: exactly X% does not open, above X% does', async () => {
    const h = harness({ consecutiveFailures: 0, errorRatePercent: 50, minRequests: 10 });
    for (let i = 0; i < 10; i++) {
      await h.succeed();
      await failTimes(h, 1);
    }
    assert.equal(h.breaker.state, 'closed', '10 of 20 = 50%');
    await failTimes(h, 1);
    assert.equal(h.breaker.state, 'open', '11 of 21 > 50%');
  });

  it('errorRatePercent 0 makes the rate rule inert', async () => {
    const h = harness({ consecutiveFailures: 0, errorRatePercent: 0, minRequests: 1 });
    await failTimes(h, 50);
    assert.equal(h.breaker.state, 'closed');
  });

  it('failures slide out of the window through the shared rotation timer', async () => {
    const h = harness({ consecutiveFailures: 0, errorRatePercent: 50, minRequests: 10, windowMs: 10_000 });
    await failTimes(h, 9);
    mock.timers.tick(10_000); // ten rotations of 1 s: the window is empty again
    await failTimes(h, 9);
    assert.equal(h.breaker.state, 'closed');
    await failTimes(h, 1);
    assert.equal(h.breaker.state, 'open');
  });

  it('closing starts the error rate afresh', async () => {
    const h = harness({ consecutiveFailures: 0, errorRatePercent: 50, minRequests: 10 });
    await failTimes(h, 10);
    mock.timers.tick(1_000);
    await h.succeed(); // probe
    assert.equal(h.breaker.state, 'closed');
    await failTimes(h, 1);
    assert.equal(h.breaker.state, 'closed', 'the failures before the opening no longer count');
  });

  it('one shared rotation timer serves many breakers; no opossum circuit until one trips', async () => {
    const shared = new BreakerShared(10_000);
    const breakers = Array.from(
      { length: 20 },
      () => new EndpointBreaker(DEFAULTS, { onStateChange: () => {} }, shared),
    );
    // Closed breakers only count: they sit in the shared set, with no opossum circuit listening.
    assert.equal(shared.breakers.size, 20);
    assert.equal(shared.rotateBucketController.listenerCount('rotate'), 0);
    for (let i = 0; i < DEFAULTS.consecutiveFailures; i++) breakers[0].record(false);
    assert.equal(breakers[0].state, 'open');
    // The tripped one now has its opossum circuit (its probe window rotates too).
    assert.equal(shared.rotateBucketController.listenerCount('rotate'), 1);
    for (const b of breakers) b.shutdown();
    assert.equal(shared.breakers.size, 0);
    assert.equal(shared.rotateBucketController.listenerCount('rotate'), 0);
    shared.close();
  });

  it('after shutdown, runs attempts unprotected', async () => {
    const h = harness({ consecutiveFailures: 1 });
    await failTimes(h, 1);
    h.breaker.shutdown();
    assert.equal(await h.succeed(), 'ok');
  });
});
