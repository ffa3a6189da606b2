// Scenario: the Express, Nest and gRPC examples started with a bad environment stop at start-up, with
// exit code 1 and one line naming the variable (and the file and config path), never later on a
// first request: a port that is no port, a config file that is missing, one that is invalid, an
// admin port out of range.
import { after, before, describe, it } from 'node:test';
import assert from 'node:assert/strict';
import { mkdtemp, rm, writeFile } from 'node:fs/promises';
import { tmpdir } from 'node:os';
import { join } from 'node:path';
import { ExampleProcess, type StartOptions } from './fixtures/examples.ts';

const GATEWAY: Omit<StartOptions, 'env'> = { node: ['--import', 'tsx'], script: 'express-service/gateway.ts' };
const USERS: Omit<StartOptions, 'env'> = { node: ['--import', 'tsx'], script: 'express-service/users.ts' };
const GRPC_SERVER: Omit<StartOptions, 'env'> = { node: ['--import', 'tsx'], script: 'grpc-service/server.ts' };
const GRPC_CLIENT: Omit<StartOptions, 'env'> = { node: ['--import', 'tsx'], script: 'grpc-service/client.ts' };
const ORDERS: Omit<StartOptions, 'env'> = {
  node: ['--import', 'tsx'],
  script: 'main.ts',
  cwd: 'examples/nest-service',
};

async function startupError(
  app: Omit<StartOptions, 'env'>,
  env: Record<string, string>,
): Promise<{ code: number | null; stderr: string }> {
  const p = ExampleProcess.spawn(app.script, { ...app, env: { PORT: '0', ...env } });
  const timer = setTimeout(() => p.child.kill('SIGKILL'), 60_000); // liveness bound: it must exit by itself
  const { code } = await p.exited;
  clearTimeout(timer);
  assert.equal(p.lines.filter((l) => l.event === 'listening').length, 0, 'it must not have started listening');
  return { code, stderr: p.stderr.trim() };
}

describe('examples: start-up errors name the variable, the file and the config path', () => {
  let dir: string;
  let invalid: string;

  before(async () => {
    dir = await mkdtemp(join(tmpdir(), 'meshlet-examples-startup-'));
    invalid = join(dir, 'mesh.yaml');
    await writeFile(invalid, 'services:\n  users:\n    endpoints: [1]\n');
  });

  after(async () => {
    await rm(dir, { recursive: true, force: true });
  });

  it('PORT that is not a port', async () => {
    const { code, stderr } = await startupError(GATEWAY, { PORT: 'abc' });
    assert.equal(code, 1);
    assert.equal(stderr, 'PORT: expected a port number from 0 to 65535, got "abc"');
  });

  it('MESHLET_CONFIG naming a missing file', async () => {
    const missing = join(dir, 'missing.yaml');
    const { code, stderr } = await startupError(USERS, { MESHLET_CONFIG: missing });
    assert.equal(code, 1);
    assert.equal(stderr, `MESHLET_CONFIG: ${missing}: not found: create the file or fix the path`);
  });

  it('MESHLET_CONFIG naming an invalid file (Nest: before the app starts)', async () => {
    const { code, stderr } = await startupError(ORDERS, { MESHLET_CONFIG: invalid });
    assert.equal(code, 1);
    assert.match(stderr, /^MESHLET_CONFIG: .*mesh\.yaml:3:17: services\.users\.endpoints\[0\]: expected a "host:port"/);
    assert.equal(stderr.split('\n').length, 1, stderr);
  });

  it('gRPC server: PORT that is not a port', async () => {
    const { code, stderr } = await startupError(GRPC_SERVER, { PORT: '70000' });
    assert.equal(code, 1);
    assert.equal(stderr, 'PORT: expected a port number from 0 to 65535, got "70000"');
  });

  it('gRPC client: MESHLET_CONFIG naming a missing file', async () => {
    const missing = join(dir, 'missing-client.yaml');
    const { code, stderr } = await startupError(GRPC_CLIENT, { MESHLET_CONFIG: missing });
    assert.equal(code, 1);
    assert.equal(stderr, `MESHLET_CONFIG: ${missing}: not found: create the file or fix the path`);
  });

  it('MESHLET_ADMIN_PORT out of range', async () => {
    const { code, stderr } = await startupError(USERS, { MESHLET_ADMIN_PORT: '99999' });
    assert.equal(code, 1);
    assert.equal(stderr, 'MESHLET_ADMIN_PORT: expected a port number from 0 to 65535, got "99999"');
  });
});
