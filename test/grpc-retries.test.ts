// Scenario: retries and deadlines of gRPC calls, on real grpc-js servers.
//
// Outage: every backend of a gRPC service answers UNAVAILABLE. The retry budget keeps the load the
// mesh adds small: attempts ÷ calls <= 1.3 with the default budget, both with the default breakers
// and ejection and with the budget alone. It is one budget per service shared by both protocols:
// on a service with `protocol: ['http', 'grpc']` (each endpoint one port speaking HTTP/1.1 and
// gRPC, test/fixtures/grpc/dual.ts) an HTTP outage drains what gRPC calls to it may retry.
//
// Per-method policies of a gRPC service (`methods` config, keys `package.Service/Method`
// or `package.Service/*`). One backend answers ABORTED to everything, the other answers normally
// (round-robin, so every other first attempt hits the failing one):
// - ABORTED is retryable on Unary (its own `retry.retryOn`), so every Unary call succeeds;
// - ClientStream has the service's policy (UNAVAILABLE only): its ABORTED answers reach the caller,
//   never retried;
// - a `Service/*` entry covers the methods with no entry of their own (Bidi retried on ABORTED).
// And the config check: an HTTP token in a method's retryOn is an error naming the path.
//
// Deadlines: the server sleeps past the call's deadline. Whether the deadline comes from the
// grpc-js caller's `deadline` call option or from the service's `timeout.requestMs`, the caller gets
// DEADLINE_EXCEEDED (code 4) within deadline + 50 ms, the server saw the deadline (grpc-timeout),
// and no attempt was started after the deadline. With a per-try timeout shorter than the deadline,
// the retries that fit are made, none is started past the deadline, and the call ends by the
// deadline (DEADLINE_EXCEEDED, or the last per-try timeout when no further retry could fit).
import { after, describe, it } from 'node:test';
import assert from 'node:assert/strict';
import * as grpc from '@grpc/grpc-js';
import { createMesh, MeshConfigError } from '@meshlet/core';
import { createMeshFetch } from '@meshlet/http';
import { ServerSet, totalCount } from './helpers/servers.ts';
import { call, outageBar, runConcurrent, runPaced, tally } from './helpers/load.ts';
import { withLag } from './helpers/lag.ts';
import { waitFor } from './fixtures/control.ts';
import {
  bidiLockStep,
  clientStream,
  serverStream,
  tallyOutcomes,
  unary,
  type MeshServiceError,
} from './fixtures/grpc/client.ts';
import { DualPort } from './fixtures/grpc/dual.ts';
import { GrpcHarness, fixedRotation } from './fixtures/grpc/harness.ts';
import { METHOD, totalCalls, type GrpcTestServer } from './fixtures/grpc/servers.ts';

describe('gRPC outage: the retry budget', () => {
  const h = new GrpcHarness();
  const http = new ServerSet();
  const dualPorts: DualPort[] = [];
  after(async () => {
    await h.close();
    await Promise.all(dualPorts.map((d) => d.close()));
    await http.closeAll();
  });

  it('every backend UNAVAILABLE, default config: attempts ÷ calls <= 1.3, every caller gets UNAVAILABLE', async (t) => {
    const backends = await h.servers.startMany('down-', 3, { failCode: grpc.status.UNAVAILABLE });
    const mesh = h.mesh({ services: { echo: { protocol: 'grpc', endpoints: backends.map((s) => s.address) } } });
    const client = h.client(mesh, 'echo');

    const TOTAL = 400;
    // 400 calls per second for 1 s, paced.
    const started = performance.now();
    const outcomes = await runPaced(TOTAL, 400, (i) => unary(client, { payload: `p${i}` }));
    const bar = outageBar(1.3, TOTAL, 1000, performance.now() - started);
    assert.deepEqual(tallyOutcomes(outcomes), { UNAVAILABLE: TOTAL });
    const meshCodes = tally(outcomes.map((o) => (o.ok ? 'ok' : String((o.error as MeshServiceError).meshletCode))));
    for (const code of meshCodes.keys()) {
      // The server's own UNAVAILABLE (no meshletCode), or the mesh's refusal once every endpoint is out.
      assert.ok(
        code === 'undefined' || code === 'MESHLET_ERR_NO_HEALTHY_ENDPOINTS' || code === 'MESHLET_ERR_BUDGET_EXHAUSTED',
        `unexpected meshletCode ${code} (all: ${JSON.stringify([...meshCodes])})`,
      );
    }
    const attempts = totalCalls(backends);
    const ratio = attempts / TOTAL;
    assert.ok(attempts >= 3, `the backends saw only ${attempts} attempts`);
    t.diagnostic(`attempts ÷ calls = ${attempts} / ${TOTAL} = ${ratio.toFixed(3)}`);
    assert.ok(
      ratio <= bar,
      `attempts ÷ calls = ${attempts} / ${TOTAL} = ${ratio.toFixed(3)} (want <= ${bar.toFixed(3)}: 1.3 for a run on time)`,
    );
    const stats = mesh.stats().services.echo;
    assert.equal(stats.requests, TOTAL);
    assert.equal(stats.successes, 0);
    assert.equal(stats.failures, TOTAL);
  });

  it('every backend UNAVAILABLE, budget only (no breaker, no ejection): attempts ÷ calls <= 1.3, retries refused', async (t) => {
    const backends = await h.servers.startMany('budget-down-', 3, { failCode: grpc.status.UNAVAILABLE });
    const mesh = h.mesh({
      services: {
        echo: {
          protocol: 'grpc',
          endpoints: backends.map((s) => s.address),
          // Only the default budget stands between the outage and 3x the load.
          circuitBreaker: { enabled: false },
          outlierDetection: { enabled: false },
        },
      },
    });
    const client = h.client(mesh, 'echo');

    const TOTAL = 400;
    const started = performance.now();
    const outcomes = await runPaced(TOTAL, 400, (i) => unary(client, { payload: `p${i}` }));
    const bar = outageBar(1.3, TOTAL, 1000, performance.now() - started);
    assert.deepEqual(tallyOutcomes(outcomes), { UNAVAILABLE: TOTAL });
    const attempts = totalCalls(backends);
    const ratio = attempts / TOTAL;
    t.diagnostic(`attempts ÷ calls = ${attempts} / ${TOTAL} = ${ratio.toFixed(3)}`);
    assert.ok(
      ratio <= bar,
      `attempts ÷ calls = ${attempts} / ${TOTAL} = ${ratio.toFixed(3)} (want <= ${bar.toFixed(3)}: 1.3 for a run on time)`,
    );
    assert.ok(attempts > TOTAL, 'some UNAVAILABLE answers should have been retried');
    const stats = mesh.stats().services.echo;
    assert.equal(stats.retries, attempts - TOTAL, 'stats.retries should equal the attempts after the first');
    assert.ok(stats.retriesSkippedByBudget > 0, `retriesSkippedByBudget = ${stats.retriesSkippedByBudget}`);
  });

  it('HTTP calls to a dual-protocol service drain the budget its gRPC calls then retry from', async (t) => {
    // Two endpoints; each is one port in front of an HTTP server answering 503 and a gRPC server
    // answering UNAVAILABLE.
    const httpDown = await http.startMany('http-down-', 2, { status: 503, body: 'down' });
    const grpcDown = await h.servers.startMany('grpc-down-', 2, { failCode: grpc.status.UNAVAILABLE });
    for (let i = 0; i < 2; i++) dualPorts.push(await new DualPort(httpDown[i].port, grpcDown[i].port).listen());
    const service = {
      protocol: ['http', 'grpc'] as ['http', 'grpc'],
      endpoints: dualPorts.map((d) => d.address),
      // Only the budget decides whether a call is retried: no breaker, no ejection, and a backoff
      // short enough that the budget's reserve does not refill meanwhile. Default budget.
      circuitBreaker: { enabled: false },
      outlierDetection: { enabled: false },
      retry: { backoff: { baseMs: 1, maxMs: 1 } },
    };
    const drained = h.mesh({ services: { dual: service } });
    const fresh = h.mesh({ services: { dual: service } });

    // The ports really speak both protocols (through the mesh).
    const fetch = createMeshFetch(drained);

    // 1. The HTTP outage: 100 GETs, each retryable (503), spend the whole budget.
    const httpOutcomes = await runConcurrent(100, 10, (i) => call(fetch, `http://dual/item/${i}`));
    assert.ok(
      httpOutcomes.every((o) => o.ok && o.status === 503 && o.body === 'down'),
      'every HTTP call should end with the upstream 503',
    );
    const afterHttp = drained.stats().services.dual;
    const drainedAt = performance.now();
    const httpAttempts = totalCount(httpDown);
    assert.equal(afterHttp.requests, 100);
    assert.equal(afterHttp.retries, httpAttempts - 100, 'the HTTP retries reached the HTTP servers');
    assert.ok(afterHttp.retries >= 25, `the HTTP outage should have spent the budget: ${afterHttp.retries} retries`);
    assert.ok(afterHttp.retriesSkippedByBudget > 0, 'the HTTP outage should have exhausted the budget');
    assert.equal(totalCalls(grpcDown), 0, 'HTTP calls must not reach the gRPC servers');

    // 2. 20 gRPC calls at once to the same service, on the drained mesh and on a fresh one.
    const grpcBurst = async (mesh: typeof drained): Promise<number> => {
      const client = h.client(mesh, 'dual');
      const before = totalCalls(grpcDown);
      const outcomes = await runConcurrent(20, 20, (i) => unary(client, { payload: `g${i}` }));
      assert.deepEqual(tallyOutcomes(outcomes), { UNAVAILABLE: 20 });
      return totalCalls(grpcDown) - before;
    };
    const drainedAttempts = await grpcBurst(drained);
    // The reserve refills at 10 retries/s: what it may have regained since the HTTP outage.
    const refilled = Math.ceil((performance.now() - drainedAt) / 100);
    const afterGrpc = drained.stats().services.dual;
    const drainedRetries = afterGrpc.retries - afterHttp.retries;
    const drainedSkipped = afterGrpc.retriesSkippedByBudget - afterHttp.retriesSkippedByBudget;
    assert.equal(afterGrpc.requests, 120, 'one service row counts both protocols');
    assert.equal(drainedAttempts, 20 + drainedRetries);

    const freshAttempts = await grpcBurst(fresh);
    const freshStats = fresh.stats().services.dual;
    assert.equal(freshAttempts, 20 + freshStats.retries);

    t.diagnostic(
      `HTTP retries ${afterHttp.retries}; gRPC retries after the HTTP outage ${drainedRetries}, on a fresh budget ${freshStats.retries}`,
    );
    // Fresh: the reserve (10) plus 20 % of the 20 calls' deposits (4) = 14 retries, of the 40 wanted.
    assert.ok(freshStats.retries >= 12, `a fresh budget should allow ~14 gRPC retries, got ${freshStats.retries}`);
    // Drained: only the gRPC calls' own deposits (4), plus what the reserve refilled meanwhile.
    assert.ok(
      drainedRetries <= 4 + refilled + 1,
      `after the HTTP outage the gRPC calls got ${drainedRetries} retries (allowed 4 + ${refilled} refilled; ` +
        `fresh budget: ${freshStats.retries})`,
    );
    assert.ok(
      drainedRetries < freshStats.retries,
      `${drainedRetries} retries after the outage vs ${freshStats.retries} fresh`,
    );
    // Every one of the 20 calls ends on a refused retry either way (fresh: once the 14 are spent).
    assert.ok(drainedSkipped >= 13, `only ${drainedSkipped} gRPC retries were refused after the HTTP outage`);
  });
});

describe('gRPC per-method retry policy', () => {
  const h = new GrpcHarness();
  after(() => h.close());

  it('a code retried on one method is not retried on another', async () => {
    const aborts = await h.servers.start('aborts', { failCode: grpc.status.ABORTED });
    const good = await h.servers.start('good');
    // A retryable answer counts against its endpoint: keep the ABORTED one in the rotation so
    // round-robin alternates deterministically. The budget's reserve covers these retries.
    const mesh = h.mesh({
      services: {
        echo: fixedRotation([aborts.address, good.address], {
          methods: { [METHOD.unary]: { retry: { retryOn: ['ABORTED'] } } },
        }),
      },
    });
    const client = h.client(mesh, 'echo');

    for (let i = 0; i < 8; i++) {
      const o = await unary(client, { payload: `u${i}` });
      assert.ok(o.ok, o.ok ? '' : `Unary ${i}: ${o.code} ${o.error.details}`);
      assert.equal(o.reply.server, 'good');
    }
    const unaryRetries = aborts.countOf('Unary');
    assert.ok(unaryRetries >= 3, `only ${unaryRetries} Unary calls hit the ABORTED backend first`);
    assert.equal(mesh.stats().services.echo.retries, unaryRetries);

    let aborted = 0;
    for (let i = 0; i < 8; i++) {
      const o = await clientStream(client, [`c${i}`]);
      if (!o.ok) {
        assert.equal(o.code, grpc.status.ABORTED, o.error.details);
        aborted++;
      }
    }
    assert.ok(aborted >= 3, `only ${aborted} ClientStream calls hit the ABORTED backend`);
    assert.equal(aborts.countOf('ClientStream'), aborted, 'an ABORTED ClientStream call was retried');
    assert.equal(good.countOf('ClientStream'), 8 - aborted);
    assert.equal(mesh.stats().services.echo.retries, unaryRetries, 'ClientStream calls were retried');
  });

  it('a Service/* entry applies to the methods without their own; the exact entry wins', async () => {
    const aborts = await h.servers.start('star-aborts', { failCode: grpc.status.ABORTED });
    const good = await h.servers.start('star-good');
    const mesh = h.mesh({
      services: {
        echo: fixedRotation([aborts.address, good.address], {
          methods: {
            'meshlet.test.Echo/*': { retry: { retryOn: ['ABORTED'] } },
            [METHOD.unary]: { retry: { maxAttempts: 1 } },
          },
        }),
      },
    });
    const client = h.client(mesh, 'echo');

    for (let i = 0; i < 6; i++) {
      const o = await bidiLockStep(client, [`b${i}`]);
      assert.equal(o.error, undefined, `Bidi ${i}: ${o.error?.code} ${o.error?.details}`);
      assert.equal(o.replies[0].server, 'star-good');
    }
    assert.ok(aborts.countOf('Bidi') >= 2, 'Bidi calls should have hit the ABORTED backend first');

    let aborted = 0;
    for (let i = 0; i < 6; i++) {
      const o = await unary(client, { payload: `u${i}` });
      if (!o.ok) {
        assert.equal(o.code, grpc.status.ABORTED);
        aborted++;
      }
    }
    assert.ok(aborted >= 2, 'Unary (maxAttempts 1) should have surfaced the ABORTED answers');
    assert.equal(aborts.countOf('Unary'), aborted, 'a Unary call was retried despite maxAttempts 1');
  });

  it('an HTTP token in a method retryOn is a config error naming the path', () => {
    assert.throws(
      () =>
        createMesh({
          services: {
            echo: {
              protocol: 'grpc',
              endpoints: ['127.0.0.1:1'],
              methods: { [METHOD.unary]: { retry: { retryOn: ['gateway-error'] } } },
            },
          },
        }),
      (err: unknown) => {
        assert.ok(err instanceof MeshConfigError, String(err));
        assert.equal(err.path, `services.echo.methods["${METHOD.unary}"].retry.retryOn[0]`);
        assert.match(err.message, /gateway-error/);
        return true;
      },
    );
  });
});

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
    const { value: o, lagMs } = await withLag(() => unary(client, { payload: 'late' }, { deadline }));
    assert.ok(!o.ok, 'the call should fail');
    assert.equal(o.code, grpc.status.DEADLINE_EXCEEDED, `got ${o.code} ${o.error.details}`);
    assert.ok(
      o.ms <= DEADLINE_MS + SLACK_MS + lagMs,
      `DEADLINE_EXCEEDED after ${Math.round(o.ms)} ms (deadline ${DEADLINE_MS} ms, event-loop lag ${Math.round(lagMs)} ms)`,
    );
    assert.equal(slow.count, 1, 'DEADLINE_EXCEEDED is not retried');
    noAttemptAfter([slow], start + DEADLINE_MS + lagMs);
    // The server was told the deadline (grpc-timeout): not later than the caller's.
    const seen = slow.calls[0].deadline;
    assert.ok(Number.isFinite(seen), 'the server saw no deadline');
    // grpc-timeout is relative, counted again from the call's arrival: allow the transit time.
    assert.ok(seen <= deadline + 50 + lagMs, `the server's deadline is ${seen - deadline} ms after the caller's`);
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
    const { value: o, lagMs } = await withLag(() => unary(client, { payload: 'late' }));
    assert.ok(!o.ok, 'the call should fail');
    assert.equal(o.code, grpc.status.DEADLINE_EXCEEDED, `got ${o.code} ${o.error.details}`);
    assert.ok(
      o.ms <= DEADLINE_MS + SLACK_MS + lagMs,
      `DEADLINE_EXCEEDED after ${Math.round(o.ms)} ms (requestMs ${DEADLINE_MS}, event-loop lag ${Math.round(lagMs)} ms)`,
    );
    assert.equal(slow.count, 1, 'DEADLINE_EXCEEDED is not retried');
    noAttemptAfter([slow], start + DEADLINE_MS + lagMs);
    const seen = slow.calls[0].deadline;
    assert.ok(Number.isFinite(seen), 'the server saw no deadline: requestMs should travel as grpc-timeout');
    assert.ok(seen <= startEpoch + DEADLINE_MS + 50 + lagMs, `the server's deadline is later than requestMs`);

    // A caller deadline shorter than requestMs wins.
    slow.reset();
    const { value: shorter, lagMs: shorterLagMs } = await withLag(() =>
      unary(client, { payload: 'shorter' }, { deadline: Date.now() + 80 }),
    );
    assert.ok(!shorter.ok);
    assert.equal(shorter.code, grpc.status.DEADLINE_EXCEEDED);
    assert.ok(
      shorter.ms <= 80 + SLACK_MS + shorterLagMs,
      `the caller's 80 ms deadline ended the call after ${Math.round(shorter.ms)} ms (event-loop lag ${Math.round(shorterLagMs)} ms)`,
    );
  });

  it("a method's own timeout.requestMs (methods config) applies to that method only", async () => {
    const slow = await h.servers.start('slow-method');
    const mesh = h.mesh({
      services: {
        echo: {
          protocol: 'grpc',
          endpoints: [slow.address],
          methods: { [METHOD.unary]: { timeout: { requestMs: DEADLINE_MS } } },
        },
      },
    });
    const client = h.client(mesh, 'echo');
    assert.ok((await unary(client, { payload: 'warm', sleepMs: 1 })).ok);
    slow.reset();

    const startEpoch = Date.now();
    const { value: o, lagMs } = await withLag(() => unary(client, { payload: 'late', sleepMs: SLEEP_MS }));
    assert.ok(!o.ok, 'the call should fail');
    assert.equal(o.code, grpc.status.DEADLINE_EXCEEDED, `got ${o.code} ${o.error.details}`);
    assert.ok(
      o.ms <= DEADLINE_MS + SLACK_MS + lagMs,
      `DEADLINE_EXCEEDED after ${Math.round(o.ms)} ms (method requestMs 200, event-loop lag ${Math.round(lagMs)} ms)`,
    );
    assert.ok(
      slow.calls[0].deadline <= startEpoch + DEADLINE_MS + 50 + lagMs,
      'the method deadline did not reach the server',
    );
    // Another method keeps the service's 15 s: a 400 ms server stream completes.
    const ss = await serverStream(client, { payload: 'ok', messages: 2, sleepMs: 200 });
    assert.equal(ss.error, undefined, ss.error?.details);
    assert.equal(ss.replies.length, 2);
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
    const { value: o, lagMs } = await withLag(() => unary(client, { payload: 'late' }));
    assert.ok(!o.ok, 'the call should fail');
    // Either the deadline ended the call, or the engine declined a retry that could not fit in what
    // was left (its backoff plus the service's typical latency) and returned the last attempt's
    // per-try timeout (UNAVAILABLE) before the deadline.
    const meshletCode = (o.error as MeshServiceError).meshletCode;
    if (o.code === grpc.status.UNAVAILABLE) {
      assert.equal(meshletCode, 'MESHLET_ERR_UPSTREAM', o.error.details);
      assert.match(o.error.details, /MESHLET_ERR_PER_TRY_TIMEOUT/);
      assert.ok(mesh.stats().services.echo.retriesSkippedByDeadline >= 1, 'UNAVAILABLE without a retry skipped');
    } else {
      assert.equal(o.code, grpc.status.DEADLINE_EXCEEDED, `got ${o.code} ${o.error.details}`);
    }
    assert.ok(
      o.ms <= DEADLINE_MS + SLACK_MS + lagMs,
      `the call ended after ${Math.round(o.ms)} ms (event-loop lag ${Math.round(lagMs)} ms)`,
    );
    const attempts = slow.reduce((n, s) => n + s.count, 0);
    // A retry fits only if the first per-try timer fires near 60 ms: an event loop stalled for
    // longer than what is left after two tries (a loaded CI box) leaves no room for one.
    if (lagMs < DEADLINE_MS - 2 * 60) {
      assert.ok(
        attempts >= 2,
        `a per-try timeout is retryable: expected a retry within the deadline, got ${attempts} attempt(s)`,
      );
    }
    assert.ok(attempts <= 4, `${attempts} attempts of 60 ms cannot fit in ${DEADLINE_MS} ms`);
    noAttemptAfter(slow, start + DEADLINE_MS + lagMs);
    // Each attempt cut by its per-try timeout is cancelled at its server.
    await waitFor('every cut attempt to be cancelled at its server', () =>
      slow.every((s) => s.calls.every((c) => c.cancelled)),
    );
  });
});
