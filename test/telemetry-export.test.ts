// Scenario: docs/telemetry.md's SDK set-up (examples/telemetry/otel-sdk.ts: NodeSDK, OTLP/HTTP
// traces, a Prometheus reader, OpenTelemetry's http instrumentation) preloaded into the users
// example (meshMiddleware), as a user would run it. A fake OTLP collector on 127.0.0.1 receives the
// spans; the Prometheus reader is scraped. Checked: each request has exactly one SERVER span (the
// http instrumentation's, enriched by meshlet with meshlet.caller and the route template) and
// no second one from meshlet; the server duration is recorded once per request, by the http
// instrumentation's scope only; the per-caller stats still count every request.
import { after, before, describe, it } from 'node:test';
import assert from 'node:assert/strict';
import http from 'node:http';
import type { AddressInfo } from 'node:net';
import { join } from 'node:path';
import { pathToFileURL } from 'node:url';
import type { MeshStats } from '@meshlet/core';
import { ROOT, freePort, waitFor } from './fixtures/control.ts';
import { ExampleProcess } from './fixtures/examples.ts';

const SDK_PRELOAD = pathToFileURL(join(ROOT, 'examples/telemetry/otel-sdk.ts')).href;
const REQUESTS = 3;

interface OtlpSpan {
  name: string;
  kind: number;
  traceId: string;
  attributes: { key: string; value: Record<string, unknown> }[];
}

/** The OTLP/JSON spans a fake collector received, with their scope name. */
function spansOf(bodies: unknown[]): Array<OtlpSpan & { scope: string }> {
  const out: Array<OtlpSpan & { scope: string }> = [];
  for (const body of bodies as any[]) {
    for (const rs of body.resourceSpans ?? []) {
      for (const ss of rs.scopeSpans ?? []) {
        for (const span of ss.spans ?? []) out.push({ ...span, scope: ss.scope?.name });
      }
    }
  }
  return out;
}

function attr(span: OtlpSpan, key: string): unknown {
  const v = span.attributes.find((a) => a.key === key)?.value;
  return v === undefined ? undefined : Object.values(v)[0];
}

describe('the documented OpenTelemetry SDK set-up beside meshlet (docs/telemetry.md)', () => {
  const received: unknown[] = [];
  let collector: http.Server;
  let users: ExampleProcess | undefined;
  let promPort = 0;

  before(async () => {
    collector = http.createServer((req, res) => {
      let body = '';
      req.setEncoding('utf8').on('data', (c: string) => (body += c));
      req.on('end', () => {
        if (req.url === '/v1/traces') received.push(JSON.parse(body));
        res.writeHead(200, { 'content-type': 'application/json' }).end('{}');
      });
    });
    await new Promise<void>((resolve) => collector.listen(0, '127.0.0.1', resolve));
    promPort = await freePort();
    users = await ExampleProcess.start('users', {
      node: ['--import', 'tsx', '--import', SDK_PRELOAD],
      script: 'express-service/users.ts',
      env: {
        PORT: '0',
        MESHLET_SERVICE: 'users',
        MESHLET_ADMIN_PORT: '0',
        OTEL_EXPORTER_OTLP_ENDPOINT: `http://127.0.0.1:${(collector.address() as AddressInfo).port}`,
        OTEL_EXPORTER_PROMETHEUS_PORT: String(promPort),
        OTEL_BSP_SCHEDULE_DELAY: '50',
      },
    });
  });

  after(async () => {
    await users?.stop();
    collector.closeAllConnections();
    await new Promise((resolve) => collector.close(resolve));
  });

  it('one server span per request, enriched by meshlet; one duration point, from one scope', async () => {
    for (let i = 0; i < REQUESTS; i++) {
      const res = await fetch(`${users!.url}/users/${i}`, { headers: { 'meshlet-caller': 'gateway' } });
      assert.equal(res.status, 200);
      await res.arrayBuffer();
    }

    const servers = await waitFor('the server spans at the collector', () => {
      const s = spansOf(received).filter((x) => x.kind === 2 /* OTLP SPAN_KIND_SERVER */);
      return s.length >= REQUESTS ? s : undefined;
    });
    await new Promise((r) => setTimeout(r, 300)); // a second span per request would have arrived by now
    const all = spansOf(received).filter((x) => x.kind === 2);
    assert.equal(all.length, REQUESTS, JSON.stringify(all, null, 1));
    assert.equal(new Set(all.map((s) => s.traceId)).size, REQUESTS, 'one server span per request');
    for (const span of servers) {
      assert.equal(span.scope, '@opentelemetry/instrumentation-http', 'the instrumentation’s span, not a second one');
      assert.equal(span.name, 'GET /users/:id');
      assert.equal(attr(span, 'http.route'), '/users/:id');
      assert.equal(attr(span, 'meshlet.caller'), 'gateway');
    }

    const text = await (await fetch(`http://127.0.0.1:${promPort}/metrics`)).text();
    const scopes = new Set<string>();
    let count = 0;
    for (const m of text.matchAll(/^http_server_request_duration_count\{([^}]*)\} (\d+)/gm)) {
      scopes.add(/otel_scope_name="([^"]*)"/.exec(m[1]!)?.[1] ?? '?');
      count += Number(m[2]);
    }
    assert.deepEqual([...scopes], ['@opentelemetry/instrumentation-http'], text);
    assert.equal(count, REQUESTS, text);
    // meshlet recorded no duration point of its own either: not into the SDK's provider (above),
    // nor into the admin endpoint's (where the example's mesh records when MESHLET_ADMIN_PORT is set).
    const adminText = await (await fetch(`http://127.0.0.1:${users!.adminPort}/metrics`)).text();
    assert.doesNotMatch(adminText, /^http_server_request_duration/m, adminText);

    // meshlet still counts every request per caller, without recording the metric itself.
    const stats = await users!.admin<MeshStats>('/stats');
    const row = stats.inbound.find((r) => r.route === '/users/:id' && r.caller === 'gateway');
    assert.equal(row?.requests, REQUESTS, JSON.stringify(stats.inbound));
  });
});
