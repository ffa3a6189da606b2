// Outbound calls made while handling an inbound request: clamped to its deadline, failed at once
// when it has passed, cancelled when its caller goes away. Fake protocol, no sockets.
import { describe, it } from 'node:test';
import assert from 'node:assert/strict';
import { getEventListeners } from 'node:events';
import { DeadlineExceededError } from '../../src/errors.js';
import { runWithInbound } from '../../src/inbound/context.js';
import { codeOf, fakeProtocol, get, hang, meshesClosedAfter, ok } from '../helpers/fake-protocol.js';

const ctx = (budgetMs: number, signal?: AbortSignal, caller?: string) => ({
  deadlineAt: performance.now() + budgetMs,
  signal,
  caller,
});

describe('inbound deadline and cancellation', () => {
  const make = meshesClosedAfter();

  it('clamps a call to the inbound deadline and says the deadline was inherited', async () => {
    const mesh = make({ s: { endpoints: ['a:1'] } }); // the service's own timeout: 15 s
    const t0 = performance.now();
    const err = await runWithInbound(ctx(150), () => mesh.call('s', get(), fakeProtocol(hang))).catch(
      (e: unknown) => e,
    );
    const took = performance.now() - t0;
    assert.ok(err instanceof DeadlineExceededError, String(err));
    assert.equal(err.code, 'MESHLET_ERR_DEADLINE');
    assert.equal(err.inherited, true);
    assert.match(err.message, /inherited from the inbound request/);
    assert.ok(took >= 140 && took < 5000, `took ${took.toFixed(0)} ms`);
    assert.ok(err.timeoutMs <= 150);
  });

  it('keeps the service’s own, shorter timeout', async () => {
    const mesh = make({ s: { endpoints: ['a:1'], timeout: { requestMs: 50 } } });
    const err = await runWithInbound(ctx(10_000), () => mesh.call('s', get(), fakeProtocol(hang))).catch(
      (e: unknown) => e,
    );
    assert.ok(err instanceof DeadlineExceededError);
    assert.equal(err.inherited, false);
    assert.equal(err.timeoutMs, 50);
    assert.match(err.message, /raise services\.s\.timeout\.requestMs/);
  });

  it('fails at once, without an attempt, when the inbound deadline has passed', async () => {
    const mesh = make({ s: { endpoints: ['a:1'] } });
    const log: string[] = [];
    const err = await runWithInbound(ctx(-1), () => mesh.call('s', get(), fakeProtocol(ok, log))).catch(
      (e: unknown) => e,
    );
    assert.ok(err instanceof DeadlineExceededError);
    assert.equal(err.attempts, 0);
    assert.match(err.message, /had already passed, so the call was not sent/);
    assert.deepEqual(log, [], 'the transport was never asked');
    const s = mesh.stats().services.s;
    assert.equal(s.failures, 0, 'the caller’s spent budget is not the service’s failure');
    assert.equal(s.cancelled, 1);
  });

  it('holds across awaits: a call made later in the handler sees the remaining budget', async () => {
    const mesh = make({ s: { endpoints: ['a:1'] } });
    const log: string[] = [];
    const code = await runWithInbound(ctx(60), async () => {
      await new Promise((r) => setTimeout(r, 80));
      return codeOf(mesh.call('s', get(), fakeProtocol(ok, log)));
    });
    assert.equal(code, 'MESHLET_ERR_DEADLINE');
    assert.deepEqual(log, []);
  });

  it('cancels calls in flight when the inbound caller goes away, and leaves no listener behind', async () => {
    const mesh = make({ s: { endpoints: ['a:1'] } });
    const ac = new AbortController();
    let sawAbort = false;
    const behaviour = (_ep: unknown, signal: AbortSignal) =>
      new Promise<never>((_, reject) =>
        signal.addEventListener('abort', () => {
          sawAbort = true;
          reject(signal.reason);
        }),
      );
    const p = runWithInbound(ctx(10_000, ac.signal), () => mesh.call('s', get(), fakeProtocol(behaviour)));
    const result = p.catch((e: unknown) => e);
    await new Promise((r) => setTimeout(r, 20));
    assert.equal(getEventListeners(ac.signal, 'abort').length, 1);
    const gone = new DOMException('the caller went away', 'AbortError');
    ac.abort(gone);
    assert.equal(await result, gone);
    assert.ok(sawAbort, 'the attempt was cut');
    assert.equal(mesh.stats().services.s.cancelled, 1);
    assert.equal(mesh.stats().services.s.failures, 0);
    assert.equal(getEventListeners(ac.signal, 'abort').length, 0, 'no listener left on the inbound signal');
    // A call made after the caller left fails at once.
    const log: string[] = [];
    assert.equal(
      await runWithInbound(ctx(10_000, ac.signal), () => mesh.call('s', get(), fakeProtocol(ok, log))).catch(
        (e: unknown) => e,
      ),
      gone,
    );
    assert.deepEqual(log, []);
  });

  it('removes its inbound listener when a call succeeds', async () => {
    const mesh = make({ s: { endpoints: ['a:1'] } });
    const ac = new AbortController();
    const res = await runWithInbound(ctx(10_000, ac.signal), () => mesh.call('s', get(), fakeProtocol(ok)));
    assert.equal(res.status, 200);
    assert.equal(getEventListeners(ac.signal, 'abort').length, 0);
  });

  it('does nothing outside an inbound request', async () => {
    const mesh = make({ s: { endpoints: ['a:1'], timeout: { requestMs: 40 } } });
    const err = await mesh.call('s', get(), fakeProtocol(hang)).catch((e: unknown) => e);
    assert.ok(err instanceof DeadlineExceededError);
    assert.equal(err.inherited, false);
  });
});
