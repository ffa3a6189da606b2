// Scenario: the server sleeps past the call's deadline. Whether the deadline comes from the
// grpc-js caller's `deadline` call option or from the service's `timeout.requestMs`, the caller gets
// DEADLINE_EXCEEDED (code 4) within deadline + 50 ms, the server saw the deadline (grpc-timeout),
// and no attempt was started after the deadline. With a per-try timeout shorter than the deadline,
// the retries that fit are made, none is started past the deadline, and the call ends by the
// deadline (DEADLINE_EXCEEDED, or the last per-try timeout when no further retry could fit).
import { after, describe, it } from 'node:test';
import assert from 'node:assert/strict';
import * as grpc from '@grpc/grpc-js';
import { unary } from './fixtures/grpc/client.ts';
import { GrpcHarness } from './fixtures/grpc/harness.ts';
import type { GrpcTestServer } from './fixtures/grpc/servers.ts';

const DEADLINE_MS = 200;
const SLEEP_MS = 1000;
const SLACK_MS = 50;

describe('gRPC deadlines', () => {
  const h = new GrpcHarness();
  after(() => h.close());

  /** Asserts every call `servers` received arrived before `deadlineAt` (performance.now()). */
  function noAttemptAfter(servers: readonly GrpcTestServer[], deadlineAt: number): void {
    for (const s of servers) {
      for (const c of s.calls) {
        assert.ok(c.at <= deadlineAt, `${s.id} got an attempt ${Math.round(c.at - deadlineAt)} ms after the deadline`);
      }
    }
  }

  it("the caller's deadline call option: DEADLINE_EXCEEDED within deadline + 50 ms, one attempt", async () => {
    const slow = await h.servers.start('slow-caller', { sleepMs: SLEEP_MS });
    const mesh = h.mesh({ services: { echo: { protocol: 'grpc', endpoints: [slow.address] } } });
    const client = h.client(mesh, 'echo');
    // Warm the channel so connection set-up is not part of the measured call.
    assert.ok((await unary(client, { payload: 'warm', sleepMs: 1 })).ok);
    slow.reset();

    const start = performance.now();
    const deadline = Date.now() + DEADLINE_MS;
    const o = await unary(client, { payload: 'late' }, { deadline });
    assert.ok(!o.ok, 'the call should fail');
    assert.equal(o.code, grpc.status.DEADLINE_EXCEEDED, `got ${o.code} ${o.error.details}`);
    assert.ok(
      o.ms <= DEADLINE_MS + SLACK_MS,
      `DEADLINE_EXCEEDED after ${Math.round(o.ms)} ms (deadline ${DEADLINE_MS} ms)`,
    );
    assert.equal(slow.count, 1, 'DEADLINE_EXCEEDED is not retried');
    noAttemptAfter([slow], start + DEADLINE_MS);
    // The server was told the deadline (grpc-timeout): not later than the caller's.
    const seen = slow.calls[0].deadline;
    assert.ok(Number.isFinite(seen), 'the server saw no deadline');
    assert.ok(seen <= deadline + 5, `the server's deadline is ${seen - deadline} ms after the caller's`);
  });

  it('the service timeout.requestMs: DEADLINE_EXCEEDED within requestMs + 50 ms, one attempt', async () => {
    const slow = await h.servers.start('slow-config', { sleepMs: SLEEP_MS });
    const mesh = h.mesh({
      services: { echo: { protocol: 'grpc', endpoints: [slow.address], timeout: { requestMs: DEADLINE_MS } } },
    });
    const client = h.client(mesh, 'echo');
    assert.ok((await unary(client, { payload: 'warm', sleepMs: 1 })).ok);
    slow.reset();

    const start = performance.now();
    const startEpoch = Date.now();
    const o = await unary(client, { payload: 'late' });
    assert.ok(!o.ok, 'the call should fail');
    assert.equal(o.code, grpc.status.DEADLINE_EXCEEDED, `got ${o.code} ${o.error.details}`);
    assert.ok(
      o.ms <= DEADLINE_MS + SLACK_MS,
      `DEADLINE_EXCEEDED after ${Math.round(o.ms)} ms (requestMs ${DEADLINE_MS})`,
    );
    assert.equal(slow.count, 1, 'DEADLINE_EXCEEDED is not retried');
    noAttemptAfter([slow], start + DEADLINE_MS);
    const seen = slow.calls[0].deadline;
    assert.ok(Number.isFinite(seen), 'the server saw no deadline: requestMs should travel as grpc-timeout');
    assert.ok(seen <= startEpoch + DEADLINE_MS + 5, `the server's deadline is later than requestMs`);

    // A caller deadline shorter than requestMs wins.
    slow.reset();
    const shorter = await unary(client, { payload: 'shorter' }, { deadline: Date.now() + 80 });
    assert.ok(!shorter.ok);
    assert.equal(shorter.code, grpc.status.DEADLINE_EXCEEDED);
    assert.ok(
      shorter.ms <= 80 + SLACK_MS,
      `the caller's 80 ms deadline ended the call after ${Math.round(shorter.ms)} ms`,
    );
  });

  it('perTryMs below the deadline: the retries that fit are made, none starts after the deadline', async () => {
    const slow = await h.servers.startMany('slow-try-', 3, { sleepMs: SLEEP_MS });
    const mesh = h.mesh({
      services: {
        echo: {
          protocol: 'grpc',
          loadBalancer: 'round-robin',
          endpoints: slow.map((s) => s.address),
          timeout: { requestMs: DEADLINE_MS, perTryMs: 60 },
          retry: { maxAttempts: 10 },
        },
      },
    });
    const client = h.client(mesh, 'echo');
    for (let i = 0; i < 3; i++) assert.ok((await unary(client, { payload: 'warm', sleepMs: 1 })).ok);
    for (const s of slow) s.reset();

    const start = performance.now();
    const o = await unary(client, { payload: 'late' });
    assert.ok(!o.ok, 'the call should fail');
    // Either the deadline ended the call, or the engine declined a retry that could not fit in what
    // was left (its backoff plus the service's typical latency) and returned the last attempt's
    // per-try timeout (UNAVAILABLE) before the deadline.
    const meshletCode = (o.error as { meshletCode?: string }).meshletCode;
    if (o.code === grpc.status.UNAVAILABLE) {
      assert.equal(meshletCode, 'MESHLET_ERR_UPSTREAM', o.error.details);
      assert.match(o.error.details, /MESHLET_ERR_PER_TRY_TIMEOUT/);
      assert.ok(mesh.stats().services.echo.retriesSkippedByDeadline >= 1, 'UNAVAILABLE without a retry skipped');
    } else {
      assert.equal(o.code, grpc.status.DEADLINE_EXCEEDED, `got ${o.code} ${o.error.details}`);
    }
    assert.ok(o.ms <= DEADLINE_MS + SLACK_MS, `the call ended after ${Math.round(o.ms)} ms`);
    const attempts = slow.reduce((n, s) => n + s.count, 0);
    assert.ok(
      attempts >= 2,
      `a per-try timeout is retryable: expected a retry within the deadline, got ${attempts} attempt(s)`,
    );
    assert.ok(attempts <= 4, `${attempts} attempts of 60 ms cannot fit in ${DEADLINE_MS} ms`);
    noAttemptAfter(slow, start + DEADLINE_MS);
    // Each attempt cut by its per-try timeout is cancelled at its server.
    await new Promise((r) => setTimeout(r, 50));
    for (const s of slow) for (const c of s.calls) assert.ok(c.cancelled, `${s.id}: the cut attempt was not cancelled`);
  });
});
