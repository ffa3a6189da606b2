// meshlet/register refuses a bad environment at start-up, in a real child process: a non-zero
// exit before the application's first line runs, and a message that names the variable, the
// file (with line:column) and the config path.
import { after, before, describe, it } from 'node:test';
import assert from 'node:assert/strict';
import { httpServer, runApp, TempDir, type TestServer } from './helpers.ts';

const APP = `process.stdout.write('APP STARTED\\n');\n`;

describe('meshlet/register: start-up errors', () => {
  let dir: TempDir;
  let taken: TestServer;

  before(async () => {
    dir = await TempDir.create();
    await dir.write('app.mjs', APP);
    await dir.write('good.yaml', 'services:\n  users:\n    endpoints: ["127.0.0.1:1"]\n');
    await dir.write('broken.yaml', 'services:\n  users:\n    endpoints: [127.0.0.1:1\n');
    await dir.write(
      'bad-path.yaml',
      'services:\n  users:\n    endpoints: ["127.0.0.1:1"]\n    retry:\n      maxAttempts: -1\n',
    );
    await dir.write(
      'bad.json',
      '{ "services": { "users": { "endpoints": ["127.0.0.1:1"], "loadBalancer": "fastest" } } }',
    );
    taken = await httpServer((_req, res) => res.end());
  });
  after(async () => {
    await taken.close();
    await dir.remove();
  });

  async function refused(env: Record<string, string>): Promise<string> {
    const r = await runApp(dir.path, 'app.mjs', env);
    assert.equal(r.code, 1, `exit code (stderr: ${r.stderr})`);
    assert.doesNotMatch(r.stdout, /APP STARTED/, 'the application must not run');
    assert.match(r.stderr, /^meshlet\/register: cannot start: /);
    return r.stderr;
  }

  it('a missing config file: names the variable and the file', async () => {
    const err = await refused({ MESHLET_CONFIG: 'missing.yaml' });
    assert.match(err, /MESHLET_CONFIG: missing\.yaml: not found/);
    assert.ok(err.includes(dir.path), 'says where it looked');
  });

  it('invalid YAML: names the variable, the file, line and column', async () => {
    const err = await refused({ MESHLET_CONFIG: 'broken.yaml' });
    assert.match(err, /MESHLET_CONFIG: broken\.yaml:\d+:\d+: invalid YAML/);
  });

  it('an invalid value in the config: names the variable, the file:line:column and the config path', async () => {
    const err = await refused({ MESHLET_CONFIG: 'bad-path.yaml' });
    assert.match(err, /MESHLET_CONFIG: bad-path\.yaml:5:\d+: services\.users\.retry\.maxAttempts: .*-1/);
  });

  it('an invalid value in a JSON config', async () => {
    const err = await refused({ MESHLET_CONFIG: 'bad.json' });
    assert.match(err, /MESHLET_CONFIG: bad\.json:1:\d+: services\.users\.loadBalancer: .*fastest/);
  });

  it('a bad admin port', async () => {
    const err = await refused({ MESHLET_CONFIG: 'good.yaml', MESHLET_ADMIN_PORT: '70000' });
    assert.match(err, /MESHLET_ADMIN_PORT: expected a port number from 0 to 65535 .*got "70000"/);
  });

  it('an admin port already taken: exits 1 naming the variable and the address', async () => {
    const r = await runApp(dir.path, 'app.mjs', {
      MESHLET_CONFIG: 'good.yaml',
      MESHLET_ADMIN_PORT: String(taken.port),
    });
    assert.equal(r.code, 1, r.stderr);
    assert.match(
      r.stderr,
      new RegExp(`MESHLET_ADMIN_PORT=${taken.port}: .*127\\.0\\.0\\.1:${taken.port} \\(EADDRINUSE`),
    );
  });

  it('a bad MESHLET_CONTROL_PLANE', async () => {
    const err = await refused({ MESHLET_CONTROL_PLANE: 'control-server' });
    assert.match(err, /MESHLET_CONTROL_PLANE: expected host:port .*got "control-server"/);
  });

  it('a bad service name, grace period and unknown-hosts mode, all reported at once', async () => {
    const err = await refused({
      MESHLET_CONFIG: 'good.yaml',
      MESHLET_SERVICE: 'Web_App',
      MESHLET_SHUTDOWN_GRACE_MS: '10s',
      MESHLET_UNKNOWN_HOSTS: 'drop',
    });
    assert.match(err, /MESHLET_SERVICE: .*"Web_App"/);
    assert.match(err, /MESHLET_SHUTDOWN_GRACE_MS: .*"10s"/);
    assert.match(err, /MESHLET_UNKNOWN_HOSTS: .*"drop"/);
  });

  it('no config source at all', async () => {
    const err = await refused({});
    assert.match(
      err,
      /MESHLET_CONFIG: meshlet\/register needs a config: set MESHLET_CONFIG .* or MESHLET_CONTROL_PLANE/,
    );
  });

  it('a misspelt variable is refused with the likely name', async () => {
    const err = await refused({ MESHLET_CONFIG: 'good.yaml', MESHLET_ADMIN_PROT: '9990' });
    assert.match(err, /MESHLET_ADMIN_PROT: is not a meshlet\/register variable: did you mean MESHLET_ADMIN_PORT/);
  });

  it('MESHLET_REGISTER without a service and a control plane', async () => {
    const err = await refused({ MESHLET_CONFIG: 'good.yaml', MESHLET_REGISTER: '127.0.0.1:8080' });
    assert.match(err, /MESHLET_REGISTER: .*set MESHLET_SERVICE too/);
    assert.match(err, /MESHLET_REGISTER: .*set MESHLET_CONTROL_PLANE too/);
  });

  it('a good environment starts the application', async () => {
    const r = await runApp(dir.path, 'app.mjs', { MESHLET_CONFIG: 'good.yaml' });
    assert.equal(r.code, 0, r.stderr);
    assert.match(r.stdout, /APP STARTED/);
    assert.equal(r.stderr, '');
  });
});
