// HttpAttempt: caller faults become InvalidRequestError, and a committed
// response whose body is still arriving is cut when the call's deadline passes (fake timers).
import { describe, it, mock } from 'node:test';
import assert from 'node:assert/strict';
import type { CallContext } from '@meshlet/core';
import { BodyDeadlines, HttpAttempt, type LegacyHandler } from '../src/attempt.js';
import { CallerBody } from '../src/body.js';
import type { HttpRequest } from '../src/request.js';

function fakeCtx(remaining: number): CallContext & { abortHandler?: (r: unknown) => void } {
  const ctx = {
    service: 'svc',
    attempt: 1,
    endpoint: { address: '10.0.0.1:80' },
    onAbort(h: ((r: unknown) => void) | { handleAbort(r: unknown): void }) {
      ctx.abortHandler = typeof h === 'function' ? h : (r) => h.handleAbort(r);
    },
    remainingMs: () => remaining,
    markSent() {},
    abortHandler: undefined as ((r: unknown) => void) | undefined,
  };
  return ctx as unknown as CallContext & { abortHandler?: (r: unknown) => void };
}

/** A request as the attempt sees it once a response has ended: only `finished` is called. */
const fakeReq = { finished: () => undefined } as unknown as HttpRequest;

function start(ctx: CallContext, req: Partial<HttpRequest> = {}) {
  let settled: { ok: boolean; value: unknown } | undefined;
  const attempt = new HttpAttempt(
    {
      attemptResolved: (v) => (settled = { ok: true, value: v }),
      attemptRejected: (e) => (settled = { ok: false, value: e }),
    },
    ctx,
    { finished: () => undefined, ...req } as HttpRequest,
  );
  const aborts: unknown[] = [];
  attempt.onConnect((err) => aborts.push(err));
  return { attempt, aborts, settled: () => settled };
}

function sink(): LegacyHandler & { events: string[]; error?: Error } {
  const s = {
    events: [] as string[],
    error: undefined as Error | undefined,
    onHeaders: (status: number) => void s.events.push(`head ${status}`),
    onData: (c: Buffer) => void s.events.push(`data ${c}`),
    onComplete: () => void s.events.push('end'),
    onError: (e: Error) => {
      s.events.push('error');
      s.error = e;
    },
  };
  return s;
}

describe('HttpAttempt', () => {
  it('turns undici’s local refusal into InvalidRequestError with the undici error as cause', () => {
    const { attempt, settled } = start(fakeCtx(1000));
    const undiciErr = Object.assign(new Error('invalid header'), { code: 'UND_ERR_INVALID_ARG' });
    attempt.onError(undiciErr);
    const err = settled()!.value as { code: string; cause: unknown };
    assert.equal(err.code, 'MESHLET_ERR_INVALID_REQUEST');
    assert.equal(err.cause, undiciErr);
  });

  it('an attempt cut while waiting on the caller’s body stream is the caller’s fault', async () => {
    const ctx = fakeCtx(1000);
    const body = CallerBody.of(
      (async function* () {
        await new Promise(() => {});
      })(),
    );
    const { settled, aborts } = start(ctx, { callerBody: body });
    const read = body.next();
    assert.equal(body.waiting, true);
    const timeout = Object.assign(new Error('per-try'), { code: 'MESHLET_ERR_PER_TRY_TIMEOUT' });
    ctx.abortHandler!(timeout);
    const err = settled()!.value as { code: string; cause: unknown };
    assert.equal(err.code, 'MESHLET_ERR_INVALID_REQUEST');
    assert.equal(err.cause, timeout);
    assert.equal(aborts[0], timeout);
    await assert.rejects(read);
  });

  it('a network cut while the body is not waiting stays the network’s', () => {
    const ctx = fakeCtx(1000);
    const body = CallerBody.of([Buffer.from('a')]);
    const { settled } = start(ctx, { callerBody: body });
    const timeout = new Error('per-try');
    ctx.abortHandler!(timeout);
    assert.equal(settled()!.value, timeout);
  });

  it('cuts a committed body that is still arriving when the deadline passes', () => {
    mock.timers.enable({ apis: ['setTimeout'] });
    try {
      const { attempt, aborts } = start(fakeCtx(100));
      attempt.onHeaders(200, [], () => {}, 'OK');
      attempt.onData(Buffer.from('a'));
      const s = sink();
      attempt.commit(s);
      mock.timers.tick(99);
      assert.equal(aborts.length, 0);
      mock.timers.tick(1);
      assert.equal(aborts.length, 1);
      const err = aborts[0] as { code: string; message: string };
      assert.equal(err.code, 'MESHLET_ERR_DEADLINE');
      assert.match(err.message, /service "svc".*response body from 10\.0\.0\.1:80/);
      // undici reports the abort back as an error, which reaches the caller.
      attempt.onError(aborts[0] as Error);
      assert.deepEqual(s.events, ['head 200', 'data a', 'error']);
    } finally {
      mock.timers.reset();
    }
  });

  it('names the deadline that ran out: the inbound request’s, the caller’s own, or the service’s setting', () => {
    const cut = (fields: Record<string, unknown>) => {
      mock.timers.enable({ apis: ['setTimeout'] });
      try {
        const ctx = Object.assign(fakeCtx(100), { timeoutMs: 100 }, fields);
        const { attempt, aborts } = start(ctx);
        attempt.onHeaders(200, [], () => {}, 'OK');
        attempt.commit(sink());
        mock.timers.tick(100);
        assert.equal(aborts.length, 1);
        return aborts[0] as { code: string; message: string; source: string; inherited: boolean };
      } finally {
        mock.timers.reset();
      }
    };
    const inbound = cut({ deadlineSource: 'inbound' });
    assert.equal(inbound.code, 'MESHLET_ERR_DEADLINE');
    assert.equal(inbound.source, 'inbound');
    assert.equal(inbound.inherited, true);
    assert.match(inbound.message, /inherited from the inbound request.*give the caller a larger timeout/i);
    assert.doesNotMatch(inbound.message, /requestMs/);
    const caller = cut({ deadlineSource: 'caller' });
    assert.equal(caller.source, 'caller');
    assert.match(caller.message, /the caller's own deadline.*give the call a later deadline/i);
    assert.doesNotMatch(caller.message, /Raise/);
    const method = cut({
      deadlineSource: 'service',
      requestMsPath: 'services.svc.methods["/a.B/C"].timeout.requestMs',
    });
    assert.equal(method.source, 'service');
    assert.match(method.message, /Raise services\.svc\.methods\["\/a\.B\/C"\]\.timeout\.requestMs /);
    const own = cut({});
    assert.match(own.message, /Raise services\["svc"\]\.timeout\.requestMs /);
  });

  it('arms no timer for a body that had ended at commit, and clears it when the body ends', () => {
    mock.timers.enable({ apis: ['setTimeout'] });
    try {
      const ended = start(fakeCtx(100));
      ended.attempt.onHeaders(200, [], () => {}, 'OK');
      ended.attempt.onComplete(null);
      ended.attempt.commit(sink());
      const later = start(fakeCtx(100));
      later.attempt.onHeaders(200, [], () => {}, 'OK');
      later.attempt.commit(sink());
      later.attempt.onComplete(null);
      mock.timers.tick(1000);
      assert.equal(ended.aborts.length, 0);
      assert.equal(later.aborts.length, 0);
    } finally {
      mock.timers.reset();
    }
  });
});

describe('HttpAttempt commit', () => {
  it('an abort the caller makes while held bytes are replayed ends the response once', () => {
    const ctx = fakeCtx(1000);
    let settled: HttpAttempt | undefined;
    const attempt = new HttpAttempt({ attemptResolved: (v) => (settled = v), attemptRejected: () => {} }, ctx, fakeReq);
    // undici reports an abort back through onError synchronously.
    attempt.onConnect((err) => attempt.onError(err ?? new Error('aborted')));
    attempt.onHeaders(200, [], () => {}, 'OK');
    attempt.onData(Buffer.from('a'));
    attempt.onData(Buffer.from('b'));
    assert.ok(settled);
    const events: string[] = [];
    attempt.commit({
      onHeaders: () => void events.push('head'),
      onData: (c: Buffer) => {
        events.push(`data ${c}`);
        attempt.abort(new Error('caller stops'));
      },
      onComplete: () => void events.push('end'),
      onError: () => void events.push('error'),
    });
    assert.deepEqual(events, ['head', 'data a', 'error']);
  });
});

describe('HttpAttempt handlerFailed', () => {
  it('reports the handler’s own error once and cuts the response', () => {
    const attempt = new HttpAttempt({ attemptResolved: () => {}, attemptRejected: () => {} }, fakeCtx(1000), fakeReq);
    const aborts: unknown[] = [];
    attempt.onConnect((err) => {
      aborts.push(err);
      attempt.onError(new Error('undici: aborted'));
    });
    attempt.onHeaders(200, [], () => {}, 'OK');
    const errors: Error[] = [];
    const boom = new Error('handler threw');
    try {
      attempt.commit({
        onHeaders: () => {
          throw boom;
        },
        onError: (e: Error) => void errors.push(e),
      });
    } catch (err) {
      attempt.handlerFailed(err as Error);
    }
    assert.deepEqual(errors, [boom]);
    assert.deepEqual(aborts, [boom]);
  });
});

describe('BodyDeadlines (committed bodies still arriving, under one timer)', () => {
  function clockCtx(clock: { now: number }, deadline: number): CallContext {
    const ctx = fakeCtx(0) as unknown as Record<string, unknown>;
    ctx.deadline = deadline;
    ctx.timeoutMs = deadline;
    ctx.remainingMs = () => deadline - clock.now;
    return ctx as unknown as CallContext;
  }
  function committed(ctx: CallContext, deadlines: BodyDeadlines) {
    const aborts: unknown[] = [];
    const attempt = new HttpAttempt({ attemptResolved: () => {}, attemptRejected: () => {} }, ctx, fakeReq, deadlines);
    attempt.onConnect((err) => aborts.push(err));
    attempt.onHeaders(200, [], () => {}, 'OK');
    attempt.commit(sink());
    return { attempt, aborts };
  }

  it('cuts each body at its own deadline, in or out of order, and forgets bodies that ended', () => {
    mock.timers.enable({ apis: ['setTimeout'] });
    try {
      const clock = { now: 0 };
      const deadlines = new BodyDeadlines();
      const a = committed(clockCtx(clock, 100), deadlines);
      const ended = committed(clockCtx(clock, 150), deadlines);
      const b = committed(clockCtx(clock, 200), deadlines);
      // Due before the tail: refused by the queue, it gets a timer of its own.
      const early = committed(clockCtx(clock, 50), deadlines);
      ended.attempt.onComplete(null);
      const tick = (ms: number): void => {
        clock.now += ms;
        mock.timers.tick(ms);
      };
      tick(49);
      assert.equal(early.aborts.length, 0);
      tick(1);
      assert.equal(early.aborts.length, 1);
      tick(49);
      assert.equal(a.aborts.length, 0);
      tick(1);
      assert.equal(a.aborts.length, 1);
      assert.equal((a.aborts[0] as { code: string }).code, 'MESHLET_ERR_DEADLINE');
      tick(99);
      assert.equal(b.aborts.length, 0);
      tick(1);
      assert.equal(b.aborts.length, 1);
      tick(1000);
      assert.equal(ended.aborts.length, 0);
      assert.equal(a.aborts.length + b.aborts.length + early.aborts.length, 3);
    } finally {
      mock.timers.reset();
    }
  });
});
