// Scenario: the `meshlet` CLI as scripts use it (the built binary, packages/control/bin/meshlet.js):
// - `meshlet check --config` on a good file exits 0, on a bad file exits 1 naming file and path;
// - `meshlet check --control` on an address nothing listens on exits 2;
// - against a running `meshlet control` with one connected client: `check` exits 0, and
//   `endpoints <service> --json` and `status --json` print JSON that parses and says what the
//   server serves and who is connected (an unknown service exits 1).
import { after, before, describe, it } from 'node:test';
import assert from 'node:assert/strict';
import { writeFile } from 'node:fs/promises';
import { createMesh } from '@meshlet/core';
import { controlPlane } from '@meshlet/discovery';
import { SERVICE_TYPE_URL } from '@meshlet/discovery/protocol';
import type { Mesh } from './helpers/load.ts';
import { ConfigDir, ControlProcess, freePort, runCli, waitFor, type CliResult } from './fixtures/control.ts';

const GOOD = `services:
  users:
    endpoints: ["127.0.0.1:4001", { address: "127.0.0.1:4002", zone: "b", weight: 3 }]
    retry: { maxAttempts: 3 }
`;
const BAD = `services:
  users:
    endpoints: ["127.0.0.1:4001"]
    retry: { maxAttempts: 0 }
`;

const show = (r: CliResult): string => `exit ${r.code}\nstdout:\n${r.stdout}\nstderr:\n${r.stderr}`;

describe('meshlet CLI', () => {
  let config: ConfigDir;
  let control: ControlProcess;
  let mesh: Mesh;

  before(async () => {
    config = await ConfigDir.create(GOOD);
    await writeFile(config.path('bad.yaml'), BAD);
    control = await ControlProcess.start(config.configPath);
    mesh = createMesh({
      service: 'front',
      discovery: [controlPlane({ address: control.address, node: { id: 'front-1', zone: 'a' } })],
    });
    await mesh.ready({ timeoutMs: 10_000 });
  });

  after(async () => {
    await mesh?.close();
    await control?.kill();
    await config?.remove();
  });

  it('check: good file exits 0, bad file exits 1 naming file and path, unreachable server exits 2', async () => {
    const bad = config.path('bad.yaml');
    const unreachable = `127.0.0.1:${await freePort()}`;
    const [good, badHuman, badJson, down, downJson] = await Promise.all([
      runCli(['check', '--config', config.configPath]),
      runCli(['check', '--config', bad]),
      runCli(['check', '--config', bad, '--json']),
      runCli(['check', '--control', unreachable]),
      runCli(['check', '--control', unreachable, '--json']),
    ]);

    assert.equal(good.code, 0, show(good));
    assert.match(good.stdout, /valid mesh config \(1 service\)/);

    assert.equal(badHuman.code, 1, show(badHuman));
    assert.ok(badHuman.stdout.includes(bad), `the file is named:\n${badHuman.stdout}`);
    assert.match(badHuman.stdout, /services\.users\.retry\.maxAttempts/);
    assert.equal(badJson.code, 1, show(badJson));
    const parsed = JSON.parse(badJson.stdout) as {
      ok: boolean;
      exitCode: number;
      checks: Array<{ ok: boolean; message: string }>;
    };
    assert.equal(parsed.ok, false);
    assert.equal(parsed.exitCode, 1);
    assert.ok(parsed.checks.some((c) => !c.ok && c.message.includes('services.users.retry.maxAttempts')));

    assert.equal(down.code, 2, show(down));
    assert.ok(down.stdout.includes(unreachable), `the address is named:\n${down.stdout}`);
    assert.equal(downJson.code, 2, show(downJson));
    assert.equal((JSON.parse(downJson.stdout) as { exitCode: number }).exitCode, 2);
  });

  it('check, endpoints and status against a running server; --json parses', async () => {
    // Wait until the client has ACKed (else check may rightly call it behind).
    await waitFor('front-1 to ACK', async () => {
      const { body } = await control.admin('/clients');
      const me = (
        body as Array<{ nodeId: string; acked: Record<string, string>; current: Record<string, string> }>
      ).find((c) => c.nodeId === 'front-1');
      return me !== undefined && me.acked[SERVICE_TYPE_URL] === me.current[SERVICE_TYPE_URL];
    });
    const admin = control.adminAddress;
    const [check, endpoints, endpointsHuman, unknown, status, statusHuman] = await Promise.all([
      runCli(['check', '--config', config.configPath, '--control', admin]),
      runCli(['endpoints', 'users', '--control', admin, '--json']),
      runCli(['endpoints', 'users', '--control', admin]),
      runCli(['endpoints', 'nope', '--control', admin]),
      runCli(['status', '--control', admin, '--json']),
      runCli(['status', '--control', admin]),
    ]);

    assert.equal(check.code, 0, show(check));
    assert.match(check.stdout, /1 client connected, none NACKed or behind/);

    assert.equal(endpoints.code, 0, show(endpoints));
    const ep = JSON.parse(endpoints.stdout) as {
      service: string;
      configured: boolean;
      endpoints: Array<{ address: string; weight: number; zone: string; source: string }>;
    };
    assert.equal(ep.service, 'users');
    assert.equal(ep.configured, true);
    assert.deepEqual(
      ep.endpoints.map((e) => [e.address, e.weight, e.zone, e.source]),
      [
        ['127.0.0.1:4001', 1, '', 'static'],
        ['127.0.0.1:4002', 3, 'b', 'static'],
      ],
    );
    assert.equal(endpointsHuman.code, 0, show(endpointsHuman));
    assert.match(endpointsHuman.stdout, /127\.0\.0\.1:4002\s+3\s+b\s+static/);
    assert.equal(unknown.code, 1, show(unknown));
    assert.match(unknown.stderr, /nope/);

    assert.equal(status.code, 0, show(status));
    const st = JSON.parse(status.stdout) as {
      ready: boolean;
      config: { path: string; services: number; lastReloadError: unknown };
      clients: Array<{ nodeId: string; service: string; zone: string; acked: Record<string, string> }>;
    };
    assert.equal(st.ready, true);
    assert.equal(st.config.path, config.configPath);
    assert.equal(st.config.services, 1);
    assert.equal(st.config.lastReloadError, null);
    assert.deepEqual(
      st.clients.map((c) => [c.nodeId, c.service, c.zone]),
      [['front-1', 'front', 'a']],
    );
    assert.equal(statusHuman.code, 0, show(statusHuman));
    assert.match(statusHuman.stdout, /front-1/);
  });
});
