// Scenario: NestJS gRPC microservices with no meshlet code, started with `node --import
// meshlet/register` and configured by environment only, are meshed. Nest's gRPC transport builds
// its server inside @nestjs/microservices (`new grpcPackage.Server(options)`, then `bindAsync`) and
// its client with `new <generated client>(url, credentials, options)`, both from the grpc-js it
// resolves itself; register's patch (installGrpcZeroCode) must reach both. Two Nest microservices
// (test/fixtures/nest-grpc/server.mjs, plain JavaScript with Nest's decorators applied as
// functions) are the endpoints of `greeter` (`protocol: grpc`); a Nest app (client.mjs, Nest's
// ClientsModule / ClientGrpc with url `meshlet:///greeter`) calls it as service `web`. Checked:
// calls succeed and are balanced over both Nest instances (round robin), through the mesh's channel,
// counted in the client's /stats; each Nest server's /stats has an inbound row for the method with
// caller `web` and its share of the calls (meshlet's server interceptors are in Nest's server); the
// handlers saw `meshlet-caller: web`. A plain `127.0.0.1:port` url stays with grpc-js's own channel.
// Needs `npm run build` (meshlet/register loads from dist).
import { after, before, describe, it } from 'node:test';
import assert from 'node:assert/strict';
import { existsSync } from 'node:fs';
import { fileURLToPath } from 'node:url';
import type { InboundStats, MeshStats } from '@meshlet/core';
import { freePort, waitFor } from './fixtures/control.ts';
import {
  REGISTER,
  roundRobinGrpcService,
  runApp,
  startApp,
  stopApps,
  TempDir,
  type Child,
} from '../packages/meshlet/test/helpers.ts';

/** The Nest apps and their proto (they resolve @nestjs/* and grpc-js from the repository). */
const APPS = fileURLToPath(new URL('./fixtures/nest-grpc/', import.meta.url));
const ROUTE = '/demo.Greeter/SayHello';
const CALLS = 20;

interface Backend {
  name: string;
  app: Child;
  address: string;
  adminPort: number;
}

interface ClientOut {
  counts: Record<string, number>;
  callers: string[];
  channel: string;
  stats: MeshStats;
}

describe('zero-code gRPC: NestJS gRPC microservices under node --import meshlet/register', () => {
  let dir: TempDir;
  const backends: Backend[] = [];

  before(async () => {
    if (!existsSync(REGISTER)) throw new Error(`${REGISTER} is missing: run "npm run build" first (npm test does)`);
    dir = await TempDir.create();
    const empty = await dir.write('empty.yaml', 'services: {}\n');
    // Nest's ServerGrpc does not report the port bindAsync bound, so each app gets a free one.
    const started = ['n1', 'n2'].map(async (name) => {
      const [port, adminPort] = [await freePort(), await freePort()];
      const app = startApp(APPS, 'server.mjs', {
        NAME: name,
        PORT: String(port),
        MESHLET_SERVICE: 'greeter',
        MESHLET_CONFIG: empty,
        MESHLET_ADMIN_PORT: String(adminPort),
      });
      backends.push({ name, app, address: `127.0.0.1:${port}`, adminPort });
      await app.line(/"event":"listening"/);
    });
    await Promise.all(started);
    await dir.write(
      'mesh.yaml',
      roundRobinGrpcService(
        'greeter',
        backends.map((b) => b.address),
      ),
    );
  });

  after(async () => {
    await stopApps(backends.map((b) => b.app));
    await dir?.remove();
  });

  /** Runs the Nest client app under meshlet/register as service `web`, calling `target`; its parsed output. */
  async function runClient(target: string): Promise<ClientOut> {
    const { code, stdout, stderr } = await runApp(APPS, 'client.mjs', {
      TARGET: target,
      CALLS: String(CALLS),
      MESHLET_SERVICE: 'web',
      MESHLET_CONFIG: `${dir.path}/mesh.yaml`,
      MESHLET_ADMIN_PORT: String(await freePort()),
    });
    assert.equal(code, 0, `client.mjs ran and exited by itself; stdout: ${stdout}; stderr: ${stderr}`);
    assert.equal(stderr, '', 'client.mjs wrote nothing to stderr');
    return JSON.parse(stdout) as ClientOut;
  }

  /** A Nest server's inbound rows for caller `web`. */
  async function inbound(b: Backend): Promise<Array<Pick<InboundStats, 'route' | 'caller' | 'requests'>>> {
    const stats = await waitFor(`${b.name}'s /stats`, async () => {
      const res = await fetch(`http://127.0.0.1:${b.adminPort}/stats`);
      return res.ok ? ((await res.json()) as MeshStats) : undefined;
    });
    return stats.inbound
      .filter((r) => r.caller === 'web')
      .map(({ route, caller, requests }) => ({ route, caller, requests }));
  }

  it("Nest's ClientGrpc at meshlet:///greeter is meshed, and both Nest servers run meshlet's interceptors", async () => {
    const out = await runClient('meshlet:///greeter');

    assert.deepEqual(out.counts, { n1: CALLS / 2, n2: CALLS / 2 }, 'round robin over the two Nest instances');
    assert.deepEqual(out.callers, ['web'], 'the Nest handlers saw meshlet-caller: web');
    assert.equal(out.channel, 'MeshChannel', "Nest's grpc-js client got the mesh's channel");

    const greeter = out.stats.services.greeter;
    assert.ok(greeter, `the client's /stats has the gRPC service: ${JSON.stringify(out.stats.services)}`);
    assert.equal(greeter.requests, CALLS, 'one mesh call per call');
    assert.equal(greeter.successes, CALLS);
    assert.deepEqual(
      greeter.endpoints.map((e) => [e.address, e.requests]).sort(),
      backends.map((b) => [b.address, CALLS / 2]).sort(),
      'the client mesh rows per endpoint',
    );

    // Server side: meshlet's inbound interceptor ran in each Nest server, once per call.
    for (const b of backends) {
      assert.deepEqual(
        await inbound(b),
        [{ route: ROUTE, caller: 'web', requests: CALLS / 2 }],
        `${b.name}'s inbound rows`,
      );
    }
  });

  it("a plain 127.0.0.1:port url stays with grpc-js's own channel (no mesh call, no meshlet-caller)", async () => {
    const n1 = backends.find((b) => b.name === 'n1')!;
    const out = await runClient(n1.address);
    assert.deepEqual(out.counts, { n1: CALLS }, 'every call to the one address');
    assert.deepEqual(out.callers, [''], 'no meshlet-caller metadata');
    assert.equal(out.channel, 'ChannelImplementation');
    assert.equal(out.stats.services.greeter?.requests ?? 0, 0, 'no mesh call');
  });
});
