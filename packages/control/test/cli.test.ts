// The `meshlet` binary, spawned for real (`node packages/control/bin/meshlet.js`, which imports
// dist/cli.js: run after the build, as `npm test` does).
import { after, before, describe, it } from 'node:test';
import assert from 'node:assert/strict';
import { spawn } from 'node:child_process';
import { mkdtemp, rm, writeFile } from 'node:fs/promises';
import { createServer } from 'node:net';
import { tmpdir } from 'node:os';
import { join } from 'node:path';
import { fileURLToPath } from 'node:url';
import {
  eventually,
  REGISTRATION_TYPE_URL,
  SERVICE_TYPE_URL,
  ENDPOINT_SET_TYPE_URL,
  startServer,
  TestClient,
  type TestServer,
} from './helpers.js';

const BIN = fileURLToPath(new URL('../bin/meshlet.js', import.meta.url));

const GOOD = `services:
  users:
    endpoints: ['127.0.0.1:4001']
`;
const BAD = `services:
  users:
    endpoints: ['127.0.0.1:4001']
    retry:
      maxAttempts: -1
`;

interface Run {
  code: number | null;
  signal: NodeJS.Signals | null;
  stdout: string;
  stderr: string;
}

function run(
  args: string[],
  opts: { timeoutMs?: number; onSpawn?: (child: ReturnType<typeof spawn>) => void } = {},
): Promise<Run> {
  return new Promise((resolve, reject) => {
    const child = spawn(process.execPath, [BIN, ...args], { stdio: ['ignore', 'pipe', 'pipe'] });
    let stdout = '';
    let stderr = '';
    child.stdout.on('data', (d) => (stdout += d));
    child.stderr.on('data', (d) => (stderr += d));
    const timer = setTimeout(() => {
      child.kill('SIGKILL');
      reject(new Error(`meshlet ${args.join(' ')} did not exit; stdout: ${stdout} stderr: ${stderr}`));
    }, opts.timeoutMs ?? 60_000); // a liveness bound, not a speed check: a CLI run takes seconds on a loaded machine
    child.on('error', reject);
    child.on('close', (code, signal) => {
      clearTimeout(timer);
      resolve({ code, signal, stdout, stderr });
    });
    opts.onSpawn?.(child);
  });
}

/** A port nothing listens on (bound, then closed). */
async function closedPort(): Promise<number> {
  const srv = createServer();
  await new Promise<void>((r) => srv.listen(0, '127.0.0.1', r));
  const { port } = srv.address() as { port: number };
  await new Promise<void>((r) => srv.close(() => r()));
  return port;
}

let dir: string;
let goodFile: string;
let badFile: string;
before(async () => {
  dir = await mkdtemp(join(tmpdir(), 'meshlet-cli-'));
  goodFile = join(dir, 'good.yaml');
  badFile = join(dir, 'bad.yaml');
  await writeFile(goodFile, GOOD);
  await writeFile(badFile, BAD);
});
after(async () => {
  await rm(dir, { recursive: true, force: true });
});

describe('meshlet check', () => {
  it('exits 0 on a valid file', async () => {
    const r = await run(['check', '--config', goodFile]);
    assert.equal(r.code, 0, r.stderr);
    assert.match(r.stdout, /√ .*good\.yaml is a valid mesh config \(1 service\)/);
    assert.match(r.stdout, /Status check results are √/);
  });

  it('exits 1 on an invalid file, naming the file and the path', async () => {
    const r = await run(['check', '--config', badFile]);
    assert.equal(r.code, 1);
    assert.match(r.stdout, /× .*bad\.yaml(?::\d+:\d+)?: services\.users\.retry\.maxAttempts/);
    const json = await run(['check', '--config', badFile, '--json']);
    assert.equal(json.code, 1);
    const doc = JSON.parse(json.stdout);
    assert.equal(doc.ok, false);
    assert.equal(doc.exitCode, 1);
    assert.match(doc.checks[0].message, /bad\.yaml(?::\d+:\d+)?: services\.users\.retry\.maxAttempts/);
  });

  it('exits 2 when the control server cannot be reached, and says where it looked', async () => {
    const port = await closedPort();
    const r = await run(['check', '--control', `127.0.0.1:${port}`]);
    assert.equal(r.code, 2);
    assert.match(
      r.stdout,
      new RegExp(`× cannot reach the control server's admin endpoint at http://127\\.0\\.0\\.1:${port}`),
    );
  });

  it('exits 2 on a usage error', async () => {
    const r = await run(['check', '--bogus']);
    assert.equal(r.code, 2);
    assert.match(r.stderr, /bogus/);
    assert.equal((await run(['frobnicate'])).code, 2);
  });

  describe('against a running server', () => {
    let s: TestServer;
    before(async () => {
      s = await startServer(GOOD, { behindGraceMs: 100 });
    });
    after(async () => {
      await s.close();
    });

    it('exits 0 when all is well, 1 when a client NACKed the current version, naming it and the reason', async () => {
      const control = `127.0.0.1:${s.server.adminAddress.port}`;
      const c = new TestClient(s.server.address.port);
      try {
        c.subscribe('cli-node', 'orders');
        const svc = await c.next(SERVICE_TYPE_URL);
        const eps = await c.next(ENDPOINT_SET_TYPE_URL);
        c.ack(svc);
        c.ack(eps);
        await eventually(async () => (await s.admin('/clients')).body[0]?.acked[ENDPOINT_SET_TYPE_URL] === '1');
        const ok = await run(['check', '--control', control]);
        assert.equal(ok.code, 0, ok.stdout);
        assert.match(ok.stdout, /√ 1 client connected, none NACKed or behind/);

        // A registration bumps EndpointSet; the client NACKs the new version.
        c.send({
          typeUrl: REGISTRATION_TYPE_URL,
          registrationRevision: 1,
          registrations: [{ service: 'users', endpoint: { address: '127.0.0.1:4002' } }],
        });
        const next = await c.nextOf(ENDPOINT_SET_TYPE_URL);
        c.send({
          typeUrl: ENDPOINT_SET_TYPE_URL,
          versionInfo: '1',
          responseNonce: next.response.nonce,
          errorDetail: { code: 3, message: 'users: no thanks' },
        });
        await eventually(async () => (await s.admin('/clients')).body[0]?.lastNack !== null);
        const bad = await run(['check', '--control', control, '--json']);
        assert.equal(bad.code, 1, bad.stdout);
        const doc = JSON.parse(bad.stdout);
        const problem = doc.checks.find((x: any) => !x.ok);
        assert.match(
          problem.message,
          /cli-node \(orders, .*\) rejected \(NACKed\) EndpointSet version 2: users: no thanks/,
        );

        const status = await run(['status', '--control', control]);
        assert.equal(status.code, 0);
        assert.match(status.stdout, /cli-node/);
        assert.match(status.stdout, /NACK: users: no thanks/);

        const eps2 = await run(['endpoints', 'users', '--control', control]);
        assert.equal(eps2.code, 0);
        assert.match(eps2.stdout, /127\.0\.0\.1:4002\s+1\s+-\s+registration\s+cli-node/);
        const unknown = await run(['endpoints', 'nobody', '--control', control]);
        assert.equal(unknown.code, 1);
        assert.match(unknown.stderr, /unknown service "nobody"/);
      } finally {
        c.close();
      }
    });

    it('exits 1 while the last reload failed, showing the error', async () => {
      await writeFile(s.configPath, BAD);
      await eventually(async () => (await s.admin('/config')).body.lastReloadError !== null);
      const r = await run(['check', '--control', `127.0.0.1:${s.server.adminAddress.port}`]);
      assert.equal(r.code, 1);
      assert.match(r.stdout, /× the last reload of .*mesh\.yaml failed/);
      assert.match(r.stdout, /services\.users\.retry\.maxAttempts/);
      await writeFile(s.configPath, GOOD);
      await eventually(async () => (await s.admin('/config')).body.lastReloadError === null);
    });
  });
});

describe('meshlet control', () => {
  it('exits 1 with a message naming the file and the path when the config is invalid', async () => {
    const r = await run(['control', '--config', badFile, '--port', '0', '--admin-port', '0', '--host', '127.0.0.1']);
    assert.equal(r.code, 1);
    assert.match(r.stderr, /bad\.yaml(?::\d+:\d+)?: services\.users\.retry\.maxAttempts/);
  });

  it('serves until SIGTERM, then stops gracefully with exit 0', async () => {
    let child: ReturnType<typeof spawn> | undefined;
    let out = '';
    const done = run(['control', '--config', goodFile, '--port', '0', '--admin-port', '0', '--host', '127.0.0.1'], {
      onSpawn: (c) => {
        child = c;
        c.stdout!.on('data', (d) => (out += d));
      },
    });
    const started = await eventually(() => {
      const line = out.split('\n').find((l) => l.includes('"event":"start"'));
      return line === undefined ? undefined : (JSON.parse(line) as { port: number; adminPort: number });
    }, 60_000); // a liveness bound: a loaded full run was seen to take more than 10 s to start it
    const health = await fetch(`http://127.0.0.1:${started.adminPort}/healthz`);
    assert.equal(health.status, 200);
    child!.kill('SIGTERM');
    const r = await done;
    assert.equal(r.code, 0, r.stderr);
    assert.match(r.stdout, /"event":"stopped"/);
  });

  it('prints help and the version', async () => {
    const help = await run(['--help']);
    assert.equal(help.code, 0);
    assert.match(help.stdout, /meshlet check/);
    const v = await run(['--version']);
    assert.equal(v.code, 0);
    assert.match(v.stdout.trim(), /^\d+\.\d+\.\d+/);
    const hc = await run(['help', 'check']);
    assert.match(hc.stdout, /--control is|admin address/);
  });
});
