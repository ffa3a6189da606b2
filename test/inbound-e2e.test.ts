// Scenario: the issue-8 examples as real processes on 127.0.0.1, calling each other through the
// mesh: gateway (Express, examples/express-service/gateway.ts) → orders (NestJS,
// examples/nest-service) → users (Express, examples/express-service/users.ts). Each is started the
// way its npm script starts it, configured by environment (PORT=0, MESHLET_CONFIG with the ports
// the previous process bound, MESHLET_ADMIN_PORT=0), plus one preload that registers a tracer
// provider writing every span as a JSON line to a shared file (test/fixtures/span-file.ts).
// Checked: routing across the three hops; one trace (same trace id, each span parented on the
// previous hop's); deadline propagation (this test is the first caller, through a mesh of its own
// that gives the call 300 ms; users would sleep 5 s: the test gets MESHLET_ERR_DEADLINE at about
// 300 ms, and the gateway's and orders' outbound calls were given what was left of the 300 ms, not
// their own 2 s / 15 s); the inbound stats per route and caller on /stats.
import { after, before, describe, it } from 'node:test';
import assert from 'node:assert/strict';
import { mkdtemp, rm, writeFile } from 'node:fs/promises';
import { tmpdir } from 'node:os';
import { join } from 'node:path';
import { createMesh, MeshError, type InboundStats, type Mesh, type MeshStats } from '@meshlet/core';
import { createMeshFetch } from '@meshlet/http';
import { waitFor } from './fixtures/control.ts';
import { ExampleProcess, SPAN_PRELOAD, newTraceparent, readSpans } from './fixtures/examples.ts';
import type { SpanLine } from './fixtures/span-file.ts';

const SERVER = 1;
const CLIENT = 2;
const ERROR = 2;
const BUDGET_MS = 300;
// Long enough that users is still asleep when orders' cut call reaches it, even on a loaded machine
// (a CI run saw it arrive after a 500 ms sleep had ended, and users counted a success); the sleep
// ends as soon as the caller goes away, so the test does not wait for it.
const USERS_SLEEP_MS = 5000;

describe('examples: gateway (Express) → orders (Nest) → users (Express) through the mesh', () => {
  let dir: string;
  let spansFile: string;
  let users: ExampleProcess;
  let orders: ExampleProcess;
  let gateway: ExampleProcess;
  let client: Mesh | undefined;

  before(async () => {
    dir = await mkdtemp(join(tmpdir(), 'meshlet-inbound-e2e-'));
    spansFile = join(dir, 'spans.jsonl');
    const common = { MESHLET_TEST_SPANS: spansFile, MESHLET_ADMIN_PORT: '0', PORT: '0' };
    users = await ExampleProcess.start('users', {
      node: ['--import', 'tsx', '--import', SPAN_PRELOAD],
      script: 'express-service/users.ts',
      env: { ...common, MESHLET_SERVICE: 'users' },
    });
    const ordersConfig = join(dir, 'orders.yaml');
    await writeFile(ordersConfig, `services:\n  users:\n    endpoints: ['127.0.0.1:${users.port}']\n`);
    orders = await ExampleProcess.start('orders', {
      node: ['--import', 'tsx', '--import', SPAN_PRELOAD],
      script: 'main.ts',
      cwd: 'examples/nest-service', // as `npm run nest-service`: tsx reads this folder's tsconfig (decorators)
      env: { ...common, MESHLET_SERVICE: 'orders', MESHLET_CONFIG: ordersConfig },
    });
    // The example's own budget for orders (2 s, retries as gateway.mesh.yaml), at another port.
    const gatewayConfig = join(dir, 'gateway.yaml');
    await writeFile(
      gatewayConfig,
      `services:\n  orders:\n    endpoints: ['127.0.0.1:${orders.port}']\n    timeout:\n      requestMs: 2000\n`,
    );
    gateway = await ExampleProcess.start('gateway', {
      node: ['--import', 'tsx', '--import', SPAN_PRELOAD],
      script: 'express-service/gateway.ts',
      env: { ...common, MESHLET_SERVICE: 'gateway', MESHLET_CONFIG: gatewayConfig },
    });
  });

  after(async () => {
    await client?.close();
    await Promise.all([gateway?.stop(), orders?.stop(), users?.stop()]);
    if (dir !== undefined) await rm(dir, { recursive: true, force: true });
  });

  /** What each process printed, for assertion messages. */
  function output(): string {
    return [gateway, orders, users]
      .map((p) => `--- ${p.name}\n${p.stderr}${p.lines.map((l) => JSON.stringify(l)).join('\n')}`)
      .join('\n');
  }

  it('routes a request across the three hops', async () => {
    const res = await fetch(`${gateway.url}/orders/42`);
    const body = (await res.json()) as any;
    assert.equal(res.status, 200, `${JSON.stringify(body)}\n${output()}`);
    assert.equal(body.via, 'gateway');
    assert.equal(body.order.id, '42');
    assert.equal(body.order.servedBy, 'orders');
    assert.deepEqual(body.order.user, { id: '42', name: 'User 42', servedBy: `users@${users.port}` });
    // users saw orders as its caller (meshlet-caller), with a budget: what was left of the gateway's.
    const seen = users.lines.find((l) => l.event === 'request' && l.id === '42');
    assert.equal(seen?.caller, 'orders', output());
    assert.ok(typeof seen?.budgetMs === 'number' && seen.budgetMs > 0 && seen.budgetMs <= 2000, output());
  });

  it('continues one trace across the three hops, each span parented on the previous hop', async () => {
    const tp = newTraceparent();
    const res = await fetch(`${gateway.url}/orders/7`, { headers: { traceparent: tp.header } });
    assert.equal(res.status, 200, output());
    await res.arrayBuffer();
    // A server span ends when its response has been written: poll until all five are on file.
    const spans = await waitFor('the five spans of the trace', () => {
      const s = readSpans(spansFile).filter((x) => x.traceId === tp.traceId);
      return s.length >= 5 ? s : undefined;
    });
    const one = (process: string, kind: number): SpanLine => {
      const found = spans.filter((s) => s.process === process && s.kind === kind);
      assert.equal(found.length, 1, `one ${process} span of kind ${kind}: ${JSON.stringify(spans, null, 1)}`);
      return found[0]!;
    };
    const gatewayServer = one('gateway', SERVER);
    const gatewayClient = one('gateway', CLIENT);
    const ordersServer = one('orders', SERVER);
    const ordersClient = one('orders', CLIENT);
    const usersServer = one('users', SERVER);
    assert.equal(spans.length, 5, JSON.stringify(spans, null, 1));

    assert.equal(gatewayServer.parentSpanId, tp.spanId, 'the gateway continues the caller’s traceparent');
    assert.equal(gatewayClient.parentSpanId, gatewayServer.spanId);
    assert.equal(ordersServer.parentSpanId, gatewayClient.spanId);
    assert.equal(ordersClient.parentSpanId, ordersServer.spanId);
    assert.equal(usersServer.parentSpanId, ordersClient.spanId);

    // Server spans name the route template and the caller; client spans the service called.
    assert.equal(gatewayServer.name, 'GET /orders/:id');
    assert.equal(gatewayServer.attributes['http.route'], '/orders/:id');
    assert.equal(gatewayServer.attributes['meshlet.caller'], undefined, 'the test is not a mesh service');
    assert.equal(ordersServer.name, 'GET /orders/:id');
    assert.equal(ordersServer.attributes['http.route'], '/orders/:id');
    assert.equal(ordersServer.attributes['meshlet.caller'], 'gateway');
    assert.equal(usersServer.name, 'GET /users/:id');
    assert.equal(usersServer.attributes['http.route'], '/users/:id');
    assert.equal(usersServer.attributes['meshlet.caller'], 'orders');
    assert.equal(gatewayClient.attributes['meshlet.service'], 'orders');
    assert.equal(ordersClient.attributes['meshlet.service'], 'users');
    for (const s of spans) assert.notEqual(s.status.code, ERROR, `${s.process} ${s.name}: ${s.status.message}`);
  });

  it('propagates the deadline: the first caller’s 300 ms cut the whole chain, not the hops’ own defaults', async () => {
    // The first caller: a mesh client of its own (service e2e-client) giving gateway 300 ms.
    client = createMesh({
      service: 'e2e-client',
      services: {
        gateway: { endpoints: [`127.0.0.1:${gateway.port}`], timeout: { requestMs: BUDGET_MS } },
      },
    });
    const meshFetch = createMeshFetch(client);
    // Warm this process's mesh code and connection first (a route of the gateway's that is no
    // order: it shows in the gateway's stats as '(unmatched)'), so the 300 ms are spent downstream,
    // not in this process's first call.
    const warm = await meshFetch('http://gateway/warm-up');
    assert.equal(warm.status, 404);
    await warm.arrayBuffer();
    // No tracer in this process: the caller's own traceparent header goes through as it is.
    const tp = newTraceparent();
    const started = performance.now();
    const err = await meshFetch(`http://gateway/orders/slow-1?delayMs=${USERS_SLEEP_MS}`, {
      headers: { traceparent: tp.header },
    }).then(
      async (res) => assert.fail(`answered ${res.status} ${await res.text()}`),
      (e: unknown) => e,
    );
    const elapsed = performance.now() - started;
    // It got MESHLET_ERR_DEADLINE at about its 300 ms (a generous upper bound: this is about the
    // deadline firing, not about speed; users' 5 s sleep would have answered without it).
    assert.ok(err instanceof MeshError, String(err));
    assert.equal(err.code, 'MESHLET_ERR_DEADLINE', err.message);
    assert.ok(elapsed >= BUDGET_MS - 5, `cut after ${elapsed} ms, before its deadline`);
    assert.ok(elapsed < 2000, `cut after ${elapsed} ms`);

    // users was called by orders with what was left of the 300 ms: so the gateway's call carried
    // what was left to orders (not its own 2 s), and orders' call carried what was left to users
    // (not its own 15 s default).
    const seen = await waitFor('users to log the slow request', () =>
      users.lines.find((l) => l.event === 'request' && l.id === 'slow-1'),
    );
    assert.equal(seen.caller, 'orders', JSON.stringify(seen));
    assert.ok(
      typeof seen.budgetMs === 'number' && seen.budgetMs > 0 && seen.budgetMs <= BUDGET_MS,
      `users got a budget of ${seen.budgetMs} ms`,
    );

    // The middle hops' outbound calls ended in an error at about that budget, not at users' 5 s
    // answer (a success) nor at their own defaults. Whether a hop's own deadline timer or its caller
    // going away (which cancels calls made on its behalf) came first is a race of about a
    // millisecond on loopback: either cuts the call at the budget.
    const clientSpans = await waitFor('the middle hops’ client spans of the slow request', () => {
      const found = readSpans(spansFile).filter((s) => s.traceId === tp.traceId && s.kind === CLIENT);
      return found.length >= 2 ? found : undefined;
    });
    assert.deepEqual(clientSpans.map((s) => s.process).sort(), ['gateway', 'orders']);
    for (const span of clientSpans) {
      assert.equal(span.status.code, ERROR, JSON.stringify(span));
      assert.ok(span.durationMs < 2000, `${span.process}'s call lasted ${span.durationMs} ms`);
    }
  });

  it('reports the inbound stats per route and caller on /stats', async () => {
    // One direct call to users, from no mesh service: caller (unknown).
    const direct = await fetch(`${users.url}/users/1`);
    assert.equal(direct.status, 200);
    await direct.arrayBuffer();

    const row = (stats: MeshStats, route: string, caller: string): InboundStats | undefined =>
      stats.inbound.find((r) => r.route === route && r.caller === caller);

    // Earlier tests: 2 successful chains (42, 7) and one cut by the deadline (slow-1).
    const usersStats = await waitFor('users to record the cancelled request', async () => {
      const s = await users.admin<MeshStats>('/stats');
      const r = row(s, '/users/:id', 'orders');
      return r !== undefined && r.requests >= 3 && row(s, '/users/:id', '(unknown)') !== undefined ? s : undefined;
    });
    const fromOrders = row(usersStats, '/users/:id', 'orders')!;
    assert.equal(fromOrders.requests, 3, JSON.stringify(usersStats.inbound));
    assert.equal(fromOrders.successes, 2);
    assert.equal(fromOrders.failures, 0, 'the caller going away is a cancellation, not a failure of users');
    assert.equal(fromOrders.cancelled, 1);
    assert.equal(fromOrders.successRate, 1);
    assert.ok(fromOrders.latencyMs.p50 > 0 && fromOrders.latencyMs.p99 >= fromOrders.latencyMs.p50);
    const unknown = row(usersStats, '/users/:id', '(unknown)')!;
    assert.equal(unknown.requests, 1);
    assert.equal(unknown.successes, 1);

    const ordersStats = await waitFor('orders to record three requests', async () => {
      const s = await orders.admin<MeshStats>('/stats');
      const r = row(s, '/orders/:id', 'gateway');
      return r !== undefined && r.requests >= 3 ? s : undefined;
    });
    const fromGateway = row(ordersStats, '/orders/:id', 'gateway')!;
    assert.equal(fromGateway.requests, 3, JSON.stringify(ordersStats.inbound));
    assert.equal(fromGateway.successes, 2);
    assert.equal(ordersStats.inbound.length, 1, 'every request to orders came from the gateway');
    // orders' outbound side: its calls to users.
    assert.equal(ordersStats.services.users!.requests, 3);
    assert.equal(ordersStats.services.users!.successes, 2);

    const gatewayStats = await waitFor('the gateway to record the slow request', async () => {
      const s = await gateway.admin<MeshStats>('/stats');
      return row(s, '/orders/:id', 'e2e-client') !== undefined ? s : undefined;
    });
    const fromTest = row(gatewayStats, '/orders/:id', '(unknown)');
    assert.equal(fromTest?.requests, 2, JSON.stringify(gatewayStats.inbound));
    assert.equal(fromTest?.successes, 2);
    const fromClient = row(gatewayStats, '/orders/:id', 'e2e-client');
    assert.equal(fromClient?.requests, 1, JSON.stringify(gatewayStats.inbound));
    // Cut at its caller's deadline: a 504 of its own (a failure) or its caller gone first (499,
    // cancelled), whichever the gateway saw first: a race of about a millisecond here.
    assert.equal(fromClient!.failures + fromClient!.cancelled, 1, JSON.stringify(fromClient));
    assert.equal(fromClient?.successes, 0);
  });
});
