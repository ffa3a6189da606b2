// `meshlet status --admin host:port`: one process's admin endpoint (/stats, /readyz) read twice,
// rates from the difference. A real HTTP server on 127.0.0.1 serves scripted /stats documents;
// the clock and the sleep between the samples are the test's.
import { after, before, describe, it } from 'node:test';
import assert from 'node:assert/strict';
import { createServer, type Server } from 'node:http';
import type { AddressInfo } from 'node:net';
import { adminStatusView, renderAdminStatus, runAdminStatus, type Output } from '../src/commands.js';
import { main } from '../src/main.js';

function capture(): Output & { out: string[]; err: string[] } {
  const out: string[] = [];
  const err: string[] = [];
  return { out, err, stdout: (s) => void out.push(s), stderr: (s) => void err.push(s) };
}

const latency = (p50: number, p99: number) => ({ p50, p90: p50, p99 });

function service(requests: number, successes: number, failures: number, states: string[], recent = requests) {
  return {
    requests,
    successes,
    failures,
    cancelled: 0,
    inFlight: 2,
    recentRequests: recent,
    latencyMs: latency(1.25, 42),
    endpoints: states.map((state, i) => ({ address: `10.0.0.${i + 1}:80`, state, requests: 0, failures: 0 })),
  };
}

function inbound(route: string, caller: string, requests: number, successes: number, failures: number) {
  return {
    route,
    caller,
    requests,
    successes,
    failures,
    cancelled: 1,
    successRate: successes / Math.max(1, successes + failures),
    recentRequests: requests,
    rps: 7,
    latencyMs: latency(3, 120),
  };
}

const FIRST = {
  services: {
    users: service(1000, 990, 10, ['healthy', 'ejected', 'healthy', 'open']),
    idle: service(5, 4, 1, ['healthy'], 0),
  },
  inbound: [inbound('/users/:id', 'gateway', 200, 200, 0)],
};
const SECOND = {
  services: {
    users: service(1500, 1480, 20, ['healthy', 'ejected', 'healthy', 'open']),
    idle: service(5, 4, 1, ['healthy'], 0),
    fresh: service(3, 3, 0, ['half-open']),
  },
  inbound: [inbound('/users/:id', 'gateway', 300, 298, 2), inbound('(unmatched)', '(unknown)', 4, 4, 0)],
};

describe('meshlet status --admin: the view', () => {
  const view = adminStatusView('http://127.0.0.1:1', true, FIRST, SECOND, 2000);

  it('rates over the interval, success over the interval (else since start), endpoints by state', () => {
    const users = view.services.find((s) => s.service === 'users')!;
    assert.equal(users.rps, 250);
    assert.equal(users.successRate, 490 / 500);
    assert.equal(users.p50Ms, 1.25);
    assert.equal(users.p99Ms, 42);
    assert.equal(users.inFlight, 2);
    assert.deepEqual(users.endpoints, { healthy: 2, ejected: 1, open: 1 });

    const idle = view.services.find((s) => s.service === 'idle')!;
    assert.equal(idle.rps, 0);
    assert.equal(idle.successRate, 0.8, 'no calls in the interval: since start');
    assert.equal(idle.p50Ms, null, 'an empty recent window has no percentiles');

    const fresh = view.services.find((s) => s.service === 'fresh')!;
    assert.equal(fresh.rps, 0, 'not in the first sample: no rate to claim');
    assert.deepEqual(
      view.services.map((s) => s.service),
      ['fresh', 'idle', 'users'],
    );
  });

  it('inbound per route and caller', () => {
    assert.deepEqual(
      view.inbound.map((i) => [i.route, i.caller, i.rps, i.successRate, i.p99Ms, i.requests, i.failures]),
      [
        ['(unmatched)', '(unknown)', 7, 1, 120, 4, 0],
        ['/users/:id', 'gateway', 50, 98 / 100, 120, 300, 2],
      ],
    );
  });

  it('renders a readable table', () => {
    const text = renderAdminStatus(view);
    const lines = text.split('\n');
    assert.match(lines[0]!, /^meshlet process http:\/\/127\.0\.0\.1:1: ready · rates over 2\.0 s$/);
    const header = lines.find((l) => l.includes('SERVICE'))!;
    assert.match(header, /SERVICE\s+RPS\s+SUCCESS\s+P50\s+P99\s+IN FLIGHT\s+REQUESTS\s+FAILURES\s+ENDPOINTS/);
    const users = lines.find((l) => l.trimStart().startsWith('users'))!;
    assert.match(users, /users\s+250\s+98\.00%\s+1\.25ms\s+42\.0ms\s+2\s+1500\s+20\s+2 healthy, 1 ejected, 1 open$/);
    const fresh = lines.find((l) => l.trimStart().startsWith('fresh'))!;
    assert.match(fresh, /1 half-open$/);
    assert.match(
      lines.find((l) => l.trimStart().startsWith('idle'))!,
      /idle\s+0\.0\s+80\.00%\s+-\s+-/,
    );
    assert.match(text, /inbound: 2 route\/caller pairs/);
    assert.match(text, /\/users\/:id\s+gateway\s+50\.0\s+98\.00%\s+3\.00ms\s+120ms\s+300\s+2\s+1/);
  });
});

describe('meshlet status --admin: against an admin endpoint', () => {
  let server: Server;
  let base: string;
  let docs: unknown[] = [];
  let ready = 200;
  let statsReads = 0;

  before(async () => {
    server = createServer((req, res) => {
      if (req.url === '/stats') {
        const doc = docs[Math.min(statsReads++, docs.length - 1)];
        res.setHeader('content-type', 'application/json');
        res.end(JSON.stringify(doc));
      } else if (req.url === '/readyz') {
        res.statusCode = ready;
        res.end(JSON.stringify({ ready: ready === 200 }));
      } else {
        res.statusCode = 404;
        res.end('not found');
      }
    });
    await new Promise<void>((r) => server.listen(0, '127.0.0.1', r));
    base = `http://127.0.0.1:${(server.address() as AddressInfo).port}`;
  });
  after(() => new Promise<void>((r) => server.close(() => r())));

  function fakeTime() {
    let t = 10_000;
    return {
      now: () => t,
      sleep: async (ms: number) => {
        t += ms;
      },
    };
  }

  it('samples /stats twice, interval apart, and prints the table (exit 0)', async () => {
    docs = [FIRST, SECOND];
    statsReads = 0;
    ready = 200;
    const out = capture();
    const code = await runAdminStatus({ admin: base, json: false, intervalMs: 2000, ...fakeTime() }, out);
    assert.equal(code, 0, out.err.join('\n'));
    assert.equal(statsReads, 2);
    assert.match(out.out.join('\n'), /users\s+250\s+98\.00%/);
    assert.match(out.out.join('\n'), /: ready · rates over 2\.0 s/);
  });

  it('--json prints the view; not ready is shown', async () => {
    docs = [FIRST, SECOND];
    statsReads = 0;
    ready = 503;
    const out = capture();
    const code = await runAdminStatus({ admin: base, json: true, intervalMs: 1000, ...fakeTime() }, out);
    assert.equal(code, 0);
    const view = JSON.parse(out.out.join('')) as { ready: boolean; services: Array<{ service: string; rps: number }> };
    assert.equal(view.ready, false);
    assert.equal(view.services.find((s) => s.service === 'users')!.rps, 500);
  });

  it('--watch prints one view per interval until stopped', async () => {
    docs = [FIRST, SECOND, SECOND, SECOND];
    statsReads = 0;
    ready = 200;
    const out = capture();
    const stop = new AbortController();
    const time = fakeTime();
    let sleeps = 0;
    const code = await runAdminStatus(
      {
        admin: base,
        json: true,
        intervalMs: 1000,
        watch: true,
        signal: stop.signal,
        now: time.now,
        sleep: async (ms) => {
          if (++sleeps === 3) stop.abort();
          await time.sleep(ms);
        },
      },
      out,
    );
    assert.equal(code, 0);
    assert.equal(out.out.length, 2, 'two views before the stop');
    assert.equal((JSON.parse(out.out[1]!) as { services: Array<{ rps: number }> }).services[2]!.rps, 0);
  });

  it('an endpoint that is not a meshlet admin endpoint: exit 2 saying so', async () => {
    docs = [{ hello: 'world' }];
    statsReads = 0;
    const out = capture();
    const code = await runAdminStatus({ admin: base, json: false, intervalMs: 100, ...fakeTime() }, out);
    assert.equal(code, 2);
    assert.match(
      out.err.join(''),
      /without mesh stats: is http:\/\/127\.0\.0\.1:\d+ a process's meshlet admin endpoint/,
    );
  });

  it('the CLI: --admin against the endpoint, and its usage errors', async () => {
    docs = [FIRST, SECOND];
    statsReads = 0;
    const out = capture();
    assert.equal(await main(['status', '--admin', base.slice('http://'.length), '--interval', '100ms'], out), 0);
    assert.match(out.out.join('\n'), /users\s+[\d.]+\s+98\.00%/);

    const bad = capture();
    assert.equal(await main(['status', '--admin', 'nowhere'], bad), 2);
    assert.match(bad.err.join(''), /--admin must be host:port .*got "nowhere"/);
    const both = capture();
    assert.equal(await main(['status', '--admin', '127.0.0.1:1', '--control', '127.0.0.1:2'], both), 2);
    assert.match(both.err.join(''), /not both/);
    const interval = capture();
    assert.equal(await main(['status', '--admin', '127.0.0.1:1', '--interval', 'soon'], interval), 2);
    assert.match(interval.err.join(''), /--interval must be a duration .*got "soon"/);
    const watchAlone = capture();
    assert.equal(await main(['status', '--watch'], watchAlone), 2);
  });

  it('an admin endpoint nobody listens on: exit 2', async () => {
    const probe = createServer();
    await new Promise<void>((r) => probe.listen(0, '127.0.0.1', r));
    const port = (probe.address() as AddressInfo).port;
    await new Promise<void>((r) => probe.close(() => r()));
    const out = capture();
    assert.equal(await main(['status', '--admin', `127.0.0.1:${port}`, '--interval', '100ms'], out), 2);
    assert.match(
      out.err.join(''),
      /cannot reach the process's meshlet admin endpoint .*ECONNREFUSED.*MESHLET_ADMIN_PORT/,
    );
  });
});
