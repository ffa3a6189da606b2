// Scenario: the issue-8 examples as real processes on 127.0.0.1, calling each other through the
// mesh: gateway (Express, examples/express-service/gateway.ts) → orders (NestJS,
// examples/nest-service) → users (Express, examples/express-service/users.ts). Each is started the
// way its npm script starts it, configured by environment (PORT=0, MESHLET_CONFIG with the ports
// the previous process bound, MESHLET_ADMIN_PORT=0), plus one preload that registers a tracer
// provider writing every span as a JSON line to a shared file (test/fixtures/span-file.ts).
// Checked: routing across the three hops; one trace (same trace id, each span parented on the
// previous hop's); deadline propagation (gateway gives orders 300 ms, users sleeps 500 ms: the
// gateway gets MESHLET_ERR_DEADLINE at about 300 ms, and orders' call to users was given what was
// left of the 300 ms, not its own 15 s default); the inbound stats per caller on /stats.
import { after, before, describe, it } from 'node:test';
import assert from 'node:assert/strict';
import { mkdtemp, rm, writeFile } from 'node:fs/promises';
import { tmpdir } from 'node:os';
import { join } from 'node:path';
import type { InboundStats, MeshStats } from '@meshlet/core';
import { waitFor } from './fixtures/control.ts';
import { ExampleProcess, SPAN_PRELOAD, newTraceparent, readSpans } from './fixtures/examples.ts';
import type { SpanLine } from './fixtures/span-file.ts';

const SERVER = 1;
const CLIENT = 2;
const ERROR = 2;
const GATEWAY_BUDGET_MS = 300;
const USERS_SLEEP_MS = 500;

describe('examples: gateway (Express) → orders (Nest) → users (Express) through the mesh', () => {
  let dir: string;
  let spansFile: string;
  let users: ExampleProcess;
  let orders: ExampleProcess;
  let gateway: ExampleProcess;

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
    const gatewayConfig = join(dir, 'gateway.yaml');
    await writeFile(
      gatewayConfig,
      [
        'services:',
        '  orders:',
        `    endpoints: ['127.0.0.1:${orders.port}']`,
        '    timeout:',
        `      requestMs: ${GATEWAY_BUDGET_MS}`,
        '',
      ].join('\n'),
    );
    gateway = await ExampleProcess.start('gateway', {
      node: ['--import', 'tsx', '--import', SPAN_PRELOAD],
      script: 'express-service/gateway.ts',
      env: { ...common, MESHLET_SERVICE: 'gateway', MESHLET_CONFIG: gatewayConfig },
    });
  });

  after(async () => {
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
    assert.ok(typeof seen?.budgetMs === 'number' && seen.budgetMs > 0 && seen.budgetMs <= GATEWAY_BUDGET_MS, output());
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

  it('propagates the deadline: the gateway’s 300 ms cut the whole chain, not the 15 s default', async () => {
    const tp = newTraceparent();
    const started = performance.now();
    const res = await fetch(`${gateway.url}/orders/slow-1?delayMs=${USERS_SLEEP_MS}`, {
      headers: { traceparent: tp.header },
    });
    const body = (await res.json()) as any;
    const elapsed = performance.now() - started;

    // The first caller got MESHLET_ERR_DEADLINE at about its 300 ms (generous upper bound: this
    // is about the deadline firing, not about speed; users' 500 ms sleep would answer without it).
    assert.equal(res.status, 504, `${JSON.stringify(body)}\n${output()}`);
    assert.equal(body.error, 'MESHLET_ERR_DEADLINE', JSON.stringify(body));
    assert.ok(body.elapsedMs >= GATEWAY_BUDGET_MS - 5, `cut after ${body.elapsedMs} ms, before its deadline`);
    assert.ok(body.elapsedMs < 2000, `cut after ${body.elapsedMs} ms`);
    assert.ok(elapsed < 5000, `the test waited ${elapsed} ms`);

    // users was called by orders with what was left of the gateway's budget — so orders' outbound
    // call carried its remaining budget, not orders' own 15 s default (which would read 15000).
    const seen = await waitFor('users to log the slow request', () =>
      users.lines.find((l) => l.event === 'request' && l.id === 'slow-1'),
    );
    assert.equal(seen.caller, 'orders');
    assert.ok(
      typeof seen.budgetMs === 'number' && seen.budgetMs > 0 && seen.budgetMs <= GATEWAY_BUDGET_MS,
      `users got a budget of ${seen.budgetMs} ms`,
    );

    // orders' call to users ended in an error at about that budget, not after users' 500 ms answer
    // (which would have been a success) nor after 15 s. Whether orders' own deadline timer or the
    // gateway going away (which cancels calls made on its behalf) came first is a race of a
    // millisecond on loopback: either cuts the call at the budget.
    const ordersClient = await waitFor('orders’ client span of the slow request', () =>
      readSpans(spansFile).find((s) => s.traceId === tp.traceId && s.process === 'orders' && s.kind === CLIENT),
    );
    assert.equal(ordersClient.status.code, ERROR, JSON.stringify(ordersClient));
    assert.ok(ordersClient.durationMs < 2000, `orders' call lasted ${ordersClient.durationMs} ms`);
    const gatewayClient = readSpans(spansFile).find(
      (s) => s.traceId === tp.traceId && s.process === 'gateway' && s.kind === CLIENT,
    );
    assert.equal(gatewayClient?.status.code, ERROR, JSON.stringify(gatewayClient));
    assert.match(gatewayClient!.status.message ?? '', /deadline|MESHLET_ERR_DEADLINE/i);
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

    const gatewayStats = await gateway.admin<MeshStats>('/stats');
    const fromTest = row(gatewayStats, '/orders/:id', '(unknown)');
    assert.equal(fromTest?.requests, 3, JSON.stringify(gatewayStats.inbound));
    assert.equal(fromTest?.successes, 2);
    assert.equal(fromTest?.failures, 1, 'the gateway answered the deadline with a 504');
  });
});
